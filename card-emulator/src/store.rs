//! Durable storage of the card state: one versioned file, replaced atomically.
//!
//! A commit writes the whole state to `FILE.tmp`, fsyncs it, renames it over `FILE`
//! and fsyncs the directory: after SIGKILL or power loss at any instant the file holds
//! the state before or after the commit, never a mix. A file that fails any check is
//! refused and left untouched.

use crate::state::{CardState, ContainerId, FileId};
use crate::vm::Tree;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The `format` field every state file carries.
pub const FORMAT: &str = "vse-card-state";
/// The state format this build writes. Older versions it can read are listed in `decode`.
/// 1: card-global files and PINs. 2: adds enhanced containers and the EID.
pub const VERSION: u32 = 2;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("state file {0} does not exist; create a card with `card-emulator init --state {0}`")]
    Missing(String),
    #[error("state file {0} already exists; pass --force to replace it")]
    AlreadyExists(String),
    #[error("cannot read state file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("state file {path} is corrupt: {reason}. It was left untouched; restore a backup or create a new card with `card-emulator init --state {path} --force`")]
    Corrupt { path: String, reason: String },
    #[error("state file {path} has format version {found}; this card-emulator reads version {VERSION} and older. Use a newer card-emulator")]
    UnknownVersion { path: String, found: u64 },
    #[error("cannot write state file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// What one transaction changed, as the virtual machine recorded it: a store may write
/// only these parts of the state (a journal entry) instead of all of it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Card-global objects other than files: PINs, GlobalPlatform keys and counters, ...
    pub global: bool,
    /// Containers whose objects other than files changed (state, nickname, PINs, trust
    /// anchors, the authentication applet's state), by identity.
    pub containers: BTreeSet<ContainerId>,
    /// Single file nodes, by tree and arena index.
    pub files: BTreeSet<(Tree, FileId)>,
    /// The shape changed (a container added or removed): only a whole state describes it.
    pub structure: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        !self.global && !self.structure && self.containers.is_empty() && self.files.is_empty()
    }

    /// Everything changed: what a store must assume when it is told nothing.
    pub fn everything() -> Changes {
        Changes {
            structure: true,
            ..Changes::default()
        }
    }
}

/// Where a card keeps its persistent state.
pub trait Store: Send {
    /// The last committed state.
    fn load(&self) -> Result<CardState, StoreError>;
    /// Make `state` durable, atomically.
    fn commit(&mut self, state: &CardState) -> Result<(), StoreError>;
    /// Make `state` durable, atomically, knowing that only `changes` differ from the last
    /// commit. The default writes everything.
    fn commit_changes(&mut self, state: &CardState, changes: &Changes) -> Result<(), StoreError> {
        let _ = changes;
        self.commit(state)
    }
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    format: String,
    version: u64,
    crc32: String,
    #[serde(borrow)]
    state: &'a serde_json::value::RawValue,
}

/// Serialize a state into the bytes of a state file:
/// `{"format": .., "version": .., "crc32": .., "state": {..}}`.
pub fn encode(state: &CardState) -> Vec<u8> {
    // Hex doubles the file contents; reserving that up front avoids regrowing the buffer.
    let contents: usize = state.files.iter().map(crate::fs::size).sum();
    let mut out = Vec::with_capacity(2 * contents + 4096 + 512 * state.files.len());
    out.extend_from_slice(
        format!("{{\n\"format\": \"{FORMAT}\",\n\"version\": {VERSION},\n\"crc32\": \"").as_bytes(),
    );
    let crc_at = out.len();
    out.extend_from_slice(b"00000000\",\n\"state\": ");
    let body_at = out.len();
    // Serializing plain data with string keys into memory cannot fail.
    let _ = serde_json::to_writer_pretty(&mut out, state);
    let crc = format!("{:08X}", crc32fast::hash(&out[body_at..]));
    out[crc_at..crc_at + 8].copy_from_slice(crc.as_bytes());
    out.extend_from_slice(b"\n}\n");
    out
}

/// Parse and check the bytes of a state file. `path` only names the file in errors.
pub fn decode(bytes: &[u8], path: &str) -> Result<CardState, StoreError> {
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
    // Version 1 is version 2 without containers: serde defaults fill them in.
    if !(1..=VERSION as u64).contains(&env.version) {
        return Err(StoreError::UnknownVersion {
            path: path.to_string(),
            found: env.version,
        });
    }
    let digest = format!("{:08X}", crc32fast::hash(env.state.get().as_bytes()));
    if !digest.eq_ignore_ascii_case(&env.crc32) {
        return Err(corrupt(
            "checksum mismatch (the file was altered or damaged)".into(),
        ));
    }
    let state: CardState = serde_json::from_str(env.state.get())
        .map_err(|e| corrupt(format!("state does not parse ({e})")))?;
    state.validate().map_err(corrupt)?;
    Ok(state)
}

/// The state in one file on disk.
pub struct FileStore {
    path: PathBuf,
    tmp: PathBuf,
    dir: File,
}

impl FileStore {
    /// Open an existing state file (it is loaded and checked by [`Store::load`]).
    pub fn open(path: &Path) -> Result<FileStore, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        Self::at(path)
    }

    /// Create a new state file holding `state`; refuses to replace one unless `force`.
    pub fn create(path: &Path, state: &CardState, force: bool) -> Result<FileStore, StoreError> {
        if path.exists() && !force {
            return Err(StoreError::AlreadyExists(path.display().to_string()));
        }
        let mut store = Self::at(path)?;
        store.commit(state)?;
        Ok(store)
    }

    fn at(path: &Path) -> Result<FileStore, StoreError> {
        let dir_path = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = File::open(&dir_path).map_err(|source| StoreError::Read {
            path: dir_path.display().to_string(),
            source,
        })?;
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        Ok(FileStore {
            path: path.to_path_buf(),
            tmp: PathBuf::from(tmp),
            dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_err(&self, source: std::io::Error) -> StoreError {
        StoreError::Write {
            path: self.path.display().to_string(),
            source,
        }
    }
}

impl Store for FileStore {
    fn load(&self) -> Result<CardState, StoreError> {
        let name = self.path.display().to_string();
        let bytes = std::fs::read(&self.path).map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => StoreError::Missing(name.clone()),
            _ => StoreError::Read {
                path: name.clone(),
                source,
            },
        })?;
        decode(&bytes, &name)
    }

    fn commit(&mut self, state: &CardState) -> Result<(), StoreError> {
        let bytes = encode(state);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.tmp)
            .map_err(|e| self.write_err(e))?;
        f.write_all(&bytes).map_err(|e| self.write_err(e))?;
        f.sync_data().map_err(|e| self.write_err(e))?;
        drop(f);
        std::fs::rename(&self.tmp, &self.path).map_err(|e| self.write_err(e))?;
        self.dir.sync_all().map_err(|e| self.write_err(e))
    }
}

/// A state kept in memory only: for tests, benchmarks and throwaway cards.
pub struct MemoryStore {
    committed: CardState,
    /// How many commits happened (tests assert that writes are durable points).
    pub commits: u64,
}

impl MemoryStore {
    pub fn new(state: CardState) -> MemoryStore {
        MemoryStore {
            committed: state,
            commits: 0,
        }
    }
}

impl Store for MemoryStore {
    fn load(&self) -> Result<CardState, StoreError> {
        Ok(self.committed.clone())
    }

    fn commit(&mut self, state: &CardState) -> Result<(), StoreError> {
        self.committed = state.clone();
        self.commits += 1;
        Ok(())
    }
}
