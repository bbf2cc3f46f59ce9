//! The snapshot file: the whole card state in one JSON envelope checked by CRC-32, format
//! versions 1 to 3.
//!
//! ```text
//! {
//! "format": "vse-card-state",
//! "version": 3,
//! "generation": 7,
//! "crc32": "1A2B3C4D",
//! "state": { .. }
//! }
//! ```
//!
//! Version 1: card-global files and PINs. Version 2: adds enhanced containers and the EID.
//! Version 3: adds `generation`, the number of the snapshot (each compaction writes the
//! next), which journal entries name; its `crc32` covers the generation in decimal, a line
//! feed, then the state's JSON text as stored (versions 1 and 2: the state's text alone).

use super::StoreError;
use crate::state::CardState;
use serde::Deserialize;

/// The `format` field every state file carries.
pub const FORMAT: &str = "vse-card-state";
/// The state format this build writes. It reads every version from 1.
pub const VERSION: u32 = 3;

/// Which snapshot a journal entry applies to: its generation and its CRC-32 (which covers
/// the generation), so that entries written for another snapshot, or another card, are
/// never applied to this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SnapshotId {
    pub generation: u64,
    pub crc32: u32,
}

/// A decoded snapshot file.
pub(crate) struct Snapshot {
    pub state: CardState,
    pub version: u64,
    /// `None` for versions 1 and 2, which no journal entry can name.
    pub id: Option<SnapshotId>,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    format: String,
    version: u64,
    #[serde(default)]
    generation: Option<u64>,
    crc32: String,
    #[serde(borrow)]
    state: &'a serde_json::value::RawValue,
}

fn crc(generation: Option<u64>, state_text: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    if let Some(g) = generation {
        h.update(format!("{g}\n").as_bytes());
    }
    h.update(state_text);
    h.finalize()
}

/// The bytes of a version-3 snapshot of `state` with `generation`, and its identity.
pub(crate) fn encode_snapshot(state: &CardState, generation: u64) -> (Vec<u8>, SnapshotId) {
    // Hex doubles the file contents; reserving that up front avoids regrowing the buffer.
    let contents: usize = state
        .files
        .iter()
        .chain(state.containers().iter().flat_map(|c| c.files.iter()))
        .map(crate::fs::size)
        .sum();
    let mut out = Vec::with_capacity(2 * contents + 4096 + 512 * state.files.len());
    out.extend_from_slice(
        format!(
            "{{\n\"format\": \"{FORMAT}\",\n\"version\": {VERSION},\n\"generation\": {generation},\n\"crc32\": \""
        )
        .as_bytes(),
    );
    let crc_at = out.len();
    out.extend_from_slice(b"00000000\",\n\"state\": ");
    let body_at = out.len();
    // Serializing plain data with string keys into memory cannot fail.
    let _ = serde_json::to_writer_pretty(&mut out, state);
    let crc32 = crc(Some(generation), &out[body_at..]);
    out[crc_at..crc_at + 8].copy_from_slice(format!("{crc32:08X}").as_bytes());
    out.extend_from_slice(b"\n}\n");
    (out, SnapshotId { generation, crc32 })
}

/// Serialize a state into the bytes of a state file on its own (a version-3 snapshot of
/// generation 1, what `card-emulator init` writes).
pub fn encode(state: &CardState) -> Vec<u8> {
    encode_snapshot(state, 1).0
}

/// The generation in a snapshot file's bytes, unchecked (0 if none can be read).
pub(crate) fn peek_generation(bytes: &[u8]) -> u64 {
    #[derive(Deserialize)]
    struct Peek {
        #[serde(default)]
        generation: Option<u64>,
    }
    serde_json::from_slice::<Peek>(bytes)
        .ok()
        .and_then(|p| p.generation)
        .unwrap_or(0)
}

/// Parse and check the bytes of a snapshot file, any version. `path` only names the file in
/// errors.
pub(crate) fn decode_snapshot(bytes: &[u8], path: &str) -> Result<Snapshot, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_string(),
        reason,
    };
    let env: EnvelopeIn = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(format!("not a card state file ({e})")))?;
    if env.format != FORMAT {
        return Err(corrupt(format!(
            "format is {:?}, expected {FORMAT:?}",
            env.format
        )));
    }
    // Version 1 is version 2 without containers (serde defaults fill them in); version 3
    // is version 2 with a generation.
    if !(1..=VERSION as u64).contains(&env.version) {
        return Err(StoreError::UnknownVersion {
            path: path.to_string(),
            found: env.version,
        });
    }
    let generation = match (env.version, env.generation) {
        (3.., Some(g)) => Some(g),
        (3.., None) => return Err(corrupt("a version 3 file without generation".into())),
        (_, _) => None,
    };
    let digest = crc(generation, env.state.get().as_bytes());
    if !format!("{digest:08X}").eq_ignore_ascii_case(&env.crc32) {
        return Err(corrupt(
            "checksum mismatch (the file was altered or damaged)".into(),
        ));
    }
    let state: CardState = serde_json::from_str(env.state.get())
        .map_err(|e| corrupt(format!("state does not parse ({e})")))?;
    state.validate().map_err(corrupt)?;
    Ok(Snapshot {
        state,
        version: env.version,
        id: generation.map(|generation| SnapshotId {
            generation,
            crc32: digest,
        }),
    })
}

/// Parse and check the bytes of a state file on its own: the snapshot, without the journal
/// beside it (a card's current state is [`super::FileStore`]'s `load`). `path` only names
/// the file in errors.
pub fn decode(bytes: &[u8], path: &str) -> Result<CardState, StoreError> {
    decode_snapshot(bytes, path).map(|s| s.state)
}
