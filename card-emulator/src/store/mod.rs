//! Durable storage of the card state: the `Store` trait, what a transaction changed, and
//! the stores (a snapshot file with its journal, or memory).
//!
//! [`FileStore`] keeps the state in two files: a snapshot `FILE` (the whole state, one JSON
//! envelope, replaced atomically: `FILE.tmp`, fsync, rename, fsync of the directory) and a
//! journal `FILE.journal` (one framed entry per committed transaction holding only what it
//! changed, appended and fdatasynced once). After SIGKILL or power loss at any instant the
//! pair describes the state before or after each commit, never a mix. Formats: `snapshot`
//! (versions 1 to 3) and `journal` (version 3); the store logic is in `file`. A file that
//! fails any check is refused and left untouched, with an error that names it and the fix.

mod file;
mod journal;
mod snapshot;

pub use file::{Compaction, EntryInfo, FileStore, Storage};
pub use journal::TornTail;
pub use snapshot::{decode, encode, FORMAT, VERSION};

use crate::state::{CardState, ContainerId, FileId};
use crate::vm::Tree;
use std::collections::BTreeSet;
use thiserror::Error;

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
    #[error("journal {path} is damaged at byte {offset}: {reason}. It and the state file {snapshot} were left untouched. To keep the {kept} commit(s) before the damage and lose the ones after it, run `truncate -s {offset} {path}`; or restore a backup of both files")]
    Journal {
        /// The journal file.
        path: String,
        /// The snapshot it belongs to.
        snapshot: String,
        /// Where the damage starts: the length that keeps every entry before it.
        offset: u64,
        /// Commits (entries of the current snapshot) before the damage.
        kept: u64,
        reason: String,
    },
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
    /// The pending SGP.22 notifications and their sequence counter.
    pub notifications: bool,
    /// Containers whose objects other than files changed (state, nickname, PINs, trust
    /// anchors, the authentication applet's state), by identity.
    pub container_cores: BTreeSet<ContainerId>,
    /// Single file nodes, by tree and arena index.
    pub files: BTreeSet<(Tree, FileId)>,
    /// Loaded applets' storage, by container and instance AID.
    pub applet_storage: BTreeSet<(ContainerId, Vec<u8>)>,
    /// The shape changed (a container added or removed, an applet loaded, installed or
    /// deleted): only a whole state describes it.
    pub structure: bool,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        !self.global
            && !self.notifications
            && !self.structure
            && self.container_cores.is_empty()
            && self.files.is_empty()
            && self.applet_storage.is_empty()
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
