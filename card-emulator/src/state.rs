//! The card's persistent state: one serde struct, versioned by the store that writes it.
//!
//! Volatile state (selection, security status, pending responses) lives in `channel.rs`
//! and is never persisted.

use serde::{Deserialize, Serialize};

/// Index of a file in [`CardState::files`]; index 0 is always the MF.
pub type FileId = usize;

/// Everything the card remembers across power cycles and restarts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardState {
    /// Human name of the card, shown by `inspect`.
    pub label: String,
    /// ATR historical bytes (at most 15).
    #[serde(with = "hex_bytes")]
    pub historical_bytes: Vec<u8>,
    /// The file tree as an arena; `files[0]` is the MF, parents before children.
    pub files: Vec<FileNode>,
    pub pins: Vec<PinRecord>,
    /// Card-level data objects answered by GET DATA, by tag.
    pub data_objects: Vec<DataObject>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileNode {
    pub fid: u16,
    pub parent: Option<FileId>,
    /// DF name (application identifier) for DFs that have one.
    #[serde(
        default,
        with = "opt_hex_bytes",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<Vec<u8>>,
    /// Short EF identifier (1..30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sfi: Option<u8>,
    pub read: Access,
    pub update: Access,
    pub body: FileBody,
}

/// Access condition of one operation on one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Access {
    Always,
    /// Satisfied once the PIN with this reference was verified on the channel.
    Pin(u8),
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum FileBody {
    Df {
        children: Vec<FileId>,
    },
    Transparent {
        #[serde(with = "hex_bytes")]
        data: Vec<u8>,
    },
    /// Linear-fixed or cyclic records of one fixed length.
    Records {
        cyclic: bool,
        record_length: u8,
        max_records: u8,
        /// Record 1 first. For cyclic files record 1 is the most recently appended.
        #[serde(with = "vec_hex_bytes")]
        records: Vec<Vec<u8>>,
    },
}

impl FileNode {
    pub fn is_df(&self) -> bool {
        matches!(self.body, FileBody::Df { .. })
    }
}

/// A PIN with its retry counter and optional unblocking PUK. Values are stored salted
/// and hashed, never in clear.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    /// P2 of VERIFY (e.g. `81`).
    pub reference: u8,
    pub min_length: u8,
    pub max_length: u8,
    pub value: Secret,
    pub max_tries: u8,
    pub tries_left: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub puk: Option<PukRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PukRecord {
    pub value: Secret,
    pub max_tries: u8,
    pub tries_left: u8,
}

/// A salted SHA-256 of a PIN or PUK, with its length (CHANGE REFERENCE DATA splits
/// old || new at it).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret {
    pub length: u8,
    #[serde(with = "hex_bytes")]
    pub salt: Vec<u8>,
    #[serde(with = "hex_bytes")]
    pub digest: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes, redacted)", self.length)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataObject {
    pub tag: u16,
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
}

/// Serde as upper-case hex strings: readable state files, stable golden files.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&apdu_specs::hexfmt::upper(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        apdu_specs::hexfmt::parse(&text).map_err(serde::de::Error::custom)
    }
}

mod opt_hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match bytes {
            Some(b) => super::hex_bytes::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text = Option::<String>::deserialize(d)?;
        text.map(|t| apdu_specs::hexfmt::parse(&t).map_err(serde::de::Error::custom))
            .transpose()
    }
}

mod vec_hex_bytes {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[Vec<u8>], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(v.len()))?;
        for b in v {
            seq.serialize_element(&apdu_specs::hexfmt::upper(b))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|t| apdu_specs::hexfmt::parse(t).map_err(serde::de::Error::custom))
            .collect()
    }
}

impl CardState {
    /// Structural checks a loaded state must pass before the card trusts it: the
    /// arena is a tree rooted at the MF, bodies are consistent, counters within limits.
    pub fn validate(&self) -> Result<(), String> {
        let mf = self.files.first().ok_or("the file tree has no MF")?;
        if mf.parent.is_some() || !mf.is_df() || mf.fid != apdu_specs::ins::fid::MF {
            return Err("files[0] must be the MF 3F00, a DF without parent".into());
        }
        if self.historical_bytes.len() > 15 {
            return Err("more than 15 historical bytes".into());
        }
        for (i, f) in self.files.iter().enumerate() {
            if i > 0 {
                let p = f
                    .parent
                    .ok_or(format!("file {i} ({:04X}) has no parent", f.fid))?;
                if p >= i {
                    return Err(format!("file {i} has parent {p} that is not before it"));
                }
                match &self.files[p].body {
                    FileBody::Df { children } if children.contains(&i) => {}
                    _ => return Err(format!("file {i} is not listed by its parent DF {p}")),
                }
            }
            match &f.body {
                FileBody::Df { children } => {
                    if children.iter().any(|c| *c >= self.files.len() || *c == i) {
                        return Err(format!("DF {i} lists a child that does not exist"));
                    }
                }
                FileBody::Transparent { .. } => {}
                FileBody::Records {
                    record_length,
                    max_records,
                    records,
                    ..
                } => {
                    if records.len() > *max_records as usize
                        || records.iter().any(|r| r.len() != *record_length as usize)
                    {
                        return Err(format!("record file {:04X} is inconsistent", f.fid));
                    }
                }
            }
        }
        for p in &self.pins {
            if p.tries_left > p.max_tries || p.max_tries == 0 || p.max_tries > 15 {
                return Err(format!(
                    "PIN {:02X} has an invalid retry counter",
                    p.reference
                ));
            }
            if let Some(puk) = &p.puk {
                if puk.tries_left > puk.max_tries || puk.max_tries == 0 || puk.max_tries > 15 {
                    return Err(format!(
                        "PUK of PIN {:02X} has an invalid retry counter",
                        p.reference
                    ));
                }
            }
        }
        Ok(())
    }
}
