//! The file store: the state as a snapshot file plus a journal of per-commit changes; the
//! commit (one append and one fdatasync), compaction, and loading (snapshot, then journal).
//!
//! A commit appends one journal entry and fdatasyncs the journal. A fresh snapshot replaces
//! the journal (compaction) instead when the shape of the state changed, when a whole state
//! is committed, when the snapshot is of an older version, at the first commit after the
//! store found a non-empty journal, after a failed append, and when the entry would take the
//! journal past its bound ([`Compaction`]). Compaction writes snapshot generation g+1 (`FILE.tmp`,
//! fsync, rename over `FILE`, fsync of the directory) and then empties the journal (and
//! fsyncs it): a kill between the two leaves entries of generation g, which are ignored.
//!
//! Loading never writes: `inspect`, or a campaign reading a running card's files, may load
//! at any time. It reads the snapshot, then applies the journal's entries for that snapshot
//! in order; a torn tail (an append that was cut, so never acknowledged) ends the journal; a
//! damaged entry before the end is an error.

use super::journal::{self, Entry, TornTail};
use super::snapshot::{self, SnapshotId};
use super::{Changes, Store, StoreError};
use crate::state::{CardState, ContainerId};
use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// When the journal is folded into a fresh snapshot: before an entry would take it past
/// `max(journal_bytes, snapshot_factor × the snapshot's size)` bytes or past `entries`
/// entries. The bound keeps loading (which replays the journal) and the disk space in
/// proportion to the card, and the snapshot's cost, spread over the entries, in proportion to
/// what they write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compaction {
    pub journal_bytes: u64,
    pub snapshot_factor: u64,
    pub entries: u64,
}

impl Default for Compaction {
    /// 1 MiB or twice the snapshot, and 4096 entries.
    fn default() -> Compaction {
        Compaction {
            journal_bytes: 1 << 20,
            snapshot_factor: 2,
            entries: 4096,
        }
    }
}

impl Compaction {
    /// Compact before the journal would pass `bytes` bytes, whatever the snapshot's size (a
    /// tiny bound makes compactions frequent: tests and crash campaigns).
    pub fn after_bytes(bytes: u64) -> Compaction {
        Compaction {
            journal_bytes: bytes,
            snapshot_factor: 0,
            entries: u64::MAX,
        }
    }

    fn bound(&self, snapshot_len: u64) -> u64 {
        self.journal_bytes
            .max(self.snapshot_factor.saturating_mul(snapshot_len))
    }
}

/// What the store knows of its files on disk, from the last load or commit.
#[derive(Debug, Default)]
struct Known {
    /// The snapshot entries are appended for; `None`: not a version-3 snapshot, or not known.
    snapshot: Option<SnapshotId>,
    /// The highest generation in the files (snapshot and entries); `None`: not read yet. The
    /// next snapshot takes the one after it, so no entry on disk can name it.
    highest: Option<u64>,
    snapshot_len: u64,
    /// Entries for that snapshot in the journal.
    entries: u64,
    /// Journal bytes holding them; nothing else is in the journal unless `compact`.
    journal_len: u64,
    /// The next commit writes a snapshot (the journal holds more than those entries, or may).
    compact: bool,
    /// Bytes of the journal after this offset are an append that failed: never part of the
    /// state, even if the failed write left them there.
    limit: Option<(SnapshotId, u64)>,
    /// The card tree's size and each container's identity and tree size: a state of
    /// another shape needs a snapshot.
    shape: Vec<(Option<ContainerId>, usize)>,
}

fn shape(state: &CardState) -> Vec<(Option<ContainerId>, usize)> {
    std::iter::once((None, state.files.len()))
        .chain(
            state
                .containers()
                .iter()
                .map(|c| (Some(c.id()), c.files.len())),
        )
        .collect()
}

fn same_shape(known: &[(Option<ContainerId>, usize)], state: &CardState) -> bool {
    known.len() == state.containers().len() + 1
        && known[0] == (None, state.files.len())
        && known[1..]
            .iter()
            .zip(state.containers())
            .all(|(k, c)| *k == (Some(c.id()), c.files.len()))
}

/// One entry of the journal as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryInfo {
    pub offset: u64,
    pub bytes: u64,
    pub generation: u64,
    pub seq: u64,
    /// Applied to the snapshot (false: written for another snapshot, ignored).
    pub applied: bool,
    /// What it replaces: `card`, `container AID`, `file TREE#INDEX (FID)`.
    pub summary: String,
}

/// How a card's state is stored: the snapshot, the journal and its entries.
#[derive(Debug, Clone)]
pub struct Storage {
    pub snapshot_path: PathBuf,
    pub journal_path: PathBuf,
    /// Format version of the snapshot file.
    pub version: u64,
    /// Its generation (version 3).
    pub generation: Option<u64>,
    pub snapshot_bytes: u64,
    pub journal_bytes: u64,
    pub entries: Vec<EntryInfo>,
    pub torn: Option<TornTail>,
}

impl Storage {
    /// Entries applied to the snapshot.
    pub fn applied(&self) -> usize {
        self.entries.iter().filter(|e| e.applied).count()
    }

    /// Entries written for another snapshot (a compaction cut between its snapshot and
    /// emptying the journal).
    pub fn stale(&self) -> usize {
        self.entries.len() - self.applied()
    }
}

/// Entries `inspect` lists (the latest ones).
const LISTED: usize = 64;

impl std::fmt::Display for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "storage:")?;
        match self.generation {
            Some(g) => writeln!(
                f,
                "  snapshot {}: format version {}, generation {g}, {} bytes",
                self.snapshot_path.display(),
                self.version,
                self.snapshot_bytes
            )?,
            None => writeln!(
                f,
                "  snapshot {}: format version {}, {} bytes (rewritten as version {} at the card's next commit)",
                self.snapshot_path.display(),
                self.version,
                self.snapshot_bytes,
                snapshot::VERSION
            )?,
        }
        writeln!(
            f,
            "  journal {}: {} bytes, {} entries applied to the snapshot{}",
            self.journal_path.display(),
            self.journal_bytes,
            self.applied(),
            match self.stale() {
                0 => String::new(),
                n => format!(", {n} of an older snapshot (ignored)"),
            }
        )?;
        let skip = self.entries.len().saturating_sub(LISTED);
        if skip > 0 {
            writeln!(f, "    ({skip} earlier entries not listed)")?;
        }
        for e in &self.entries[skip..] {
            writeln!(
                f,
                "    @{:<8} generation {} seq {:<5} {:>6} bytes  {}{}",
                e.offset,
                e.generation,
                e.seq,
                e.bytes,
                e.summary,
                if e.applied { "" } else { "  (ignored)" }
            )?;
        }
        if let Some(t) = &self.torn {
            writeln!(
                f,
                "    @{:<8} {} bytes never acknowledged ({}): ignored, removed at the next commit",
                t.offset, t.bytes, t.reason
            )?;
        }
        Ok(())
    }
}

/// A merged read of both files.
struct Loaded {
    state: CardState,
    snapshot: Option<SnapshotId>,
    /// The highest generation of the snapshot and of every entry.
    highest: u64,
    storage: Storage,
    /// End of the last entry applied (where the next one goes).
    journal_len: u64,
}

/// The state in a snapshot file and its journal (`FILE.journal`), both mode 0600.
pub struct FileStore {
    path: PathBuf,
    tmp: PathBuf,
    journal_path: PathBuf,
    dir: File,
    /// The journal, opened for append at the first write.
    journal: Option<File>,
    compaction: Compaction,
    known: RefCell<Known>,
    /// The frame being written (kept to spare an allocation per commit).
    buf: Vec<u8>,
}

fn write_err(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Write {
        path: path.display().to_string(),
        source,
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

impl FileStore {
    /// Open an existing state file (it is loaded and checked by [`Store::load`]).
    pub fn open(path: &Path) -> Result<FileStore, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        Self::at(path)
    }

    /// Create a new state file holding `state`, with an empty journal; refuses to replace
    /// one unless `force`.
    pub fn create(path: &Path, state: &CardState, force: bool) -> Result<FileStore, StoreError> {
        if path.exists() && !force {
            return Err(StoreError::AlreadyExists(path.display().to_string()));
        }
        let mut store = Self::at(path)?;
        store.commit(state)?;
        Ok(store)
    }

    /// The same store with another compaction bound.
    pub fn with_compaction(mut self, compaction: Compaction) -> FileStore {
        self.compaction = compaction;
        self
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
        Ok(FileStore {
            path: path.to_path_buf(),
            tmp: with_suffix(path, ".tmp"),
            journal_path: with_suffix(path, ".journal"),
            dir,
            journal: None,
            compaction: Compaction::default(),
            known: RefCell::default(),
            buf: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn journal_path(&self) -> &Path {
        &self.journal_path
    }

    /// The state and how it is stored (for `inspect`); reads only.
    pub fn inspect(&self) -> Result<(CardState, Storage), StoreError> {
        let l = self.read(None)?;
        Ok((l.state, l.storage))
    }

    /// The state (snapshot and journal merged) as the bytes of one version-3 state file, of
    /// the snapshot's generation; reads only. Entries name their snapshot by its checksum,
    /// so the journal never applies to such a copy.
    pub fn dump(&self) -> Result<Vec<u8>, StoreError> {
        let l = self.read(None)?;
        let generation = l.storage.generation.unwrap_or(1);
        Ok(snapshot::encode_snapshot(&l.state, generation).0)
    }

    /// Read both files, the journal up to `limit` when the snapshot is that one. A snapshot
    /// replaced while the journal was read (a compaction of a running card) is read again.
    fn read(&self, limit: Option<(SnapshotId, u64)>) -> Result<Loaded, StoreError> {
        let name = self.path.display().to_string();
        let read_err = |path: &Path, source: std::io::Error| match source.kind() {
            std::io::ErrorKind::NotFound if path == self.path => StoreError::Missing(name.clone()),
            _ => StoreError::Read {
                path: path.display().to_string(),
                source,
            },
        };
        let mut attempts = 0;
        let (snap, mut log) = loop {
            let mut f = File::open(&self.path).map_err(|e| read_err(&self.path, e))?;
            let seen = f.metadata().map_err(|e| read_err(&self.path, e))?;
            let mut snap = Vec::with_capacity(seen.len() as usize + 1);
            f.read_to_end(&mut snap)
                .map_err(|e| read_err(&self.path, e))?;
            let log = match std::fs::read(&self.journal_path) {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(read_err(&self.journal_path, e)),
            };
            let now = std::fs::metadata(&self.path).map_err(|e| read_err(&self.path, e))?;
            attempts += 1;
            if (now.dev(), now.ino()) == (seen.dev(), seen.ino()) {
                break (snap, log);
            }
            if attempts == 8 {
                return Err(StoreError::Read {
                    path: name.clone(),
                    source: std::io::Error::other(
                        "it was replaced 8 times while it was read; try again",
                    ),
                });
            }
        };
        let s = snapshot::decode_snapshot(&snap, &name)?;
        let mut storage = Storage {
            snapshot_path: self.path.clone(),
            journal_path: self.journal_path.clone(),
            version: s.version,
            generation: s.id.map(|i| i.generation),
            snapshot_bytes: snap.len() as u64,
            journal_bytes: log.len() as u64,
            entries: Vec::new(),
            torn: None,
        };
        let mut state = s.state;
        if let Some((id, at)) = limit {
            if s.id == Some(id) && (at as usize) < log.len() {
                // An append this store saw fail: its bytes are not a commit.
                storage.torn = Some(TornTail {
                    offset: at,
                    bytes: log.len() as u64 - at,
                    reason: "an append that failed",
                });
                log.truncate(at as usize);
            }
        }
        let journal_len = self.replay(&mut state, s.id, &log, &mut storage)?;
        let highest = storage
            .entries
            .iter()
            .map(|e| e.generation)
            .chain(storage.generation)
            .max()
            .unwrap_or(0);
        Ok(Loaded {
            state,
            snapshot: s.id,
            highest,
            storage,
            journal_len,
        })
    }

    /// Apply the journal's entries for snapshot `id` to `state`, in order; the end of the
    /// last one applied.
    fn replay(
        &self,
        state: &mut CardState,
        id: Option<SnapshotId>,
        log: &[u8],
        storage: &mut Storage,
    ) -> Result<u64, StoreError> {
        let mut applied = 0u64;
        let damaged = |offset: u64, applied: u64, reason: String| StoreError::Journal {
            path: self.journal_path.display().to_string(),
            snapshot: self.path.display().to_string(),
            offset,
            kept: applied,
            reason,
        };
        let (frames, ending) = journal::frames(log);
        let mut end = 0;
        let mut first = None;
        for f in &frames {
            let entry = journal::parse(f).map_err(|d| damaged(d.offset, applied, d.reason))?;
            let current = id.is_some_and(|i| entry.applies_to(i));
            storage.entries.push(EntryInfo {
                offset: f.offset,
                bytes: f.end() - f.offset,
                generation: entry.generation,
                seq: entry.seq,
                applied: current,
                summary: entry.summary(),
            });
            if !current {
                continue;
            }
            if entry.seq != applied + 1 {
                return Err(damaged(
                    f.offset,
                    applied,
                    format!(
                        "entry {} of generation {} follows entry {applied}",
                        entry.seq, entry.generation
                    ),
                ));
            }
            entry.apply(state).map_err(|r| {
                damaged(
                    f.offset,
                    applied,
                    format!("an entry that does not apply: {r}"),
                )
            })?;
            first.get_or_insert(f.offset);
            applied += 1;
            end = f.end();
        }
        match ending {
            journal::End::Clean => {}
            journal::End::Torn(t) => storage.torn = storage.torn.or(Some(t)),
            journal::End::Damaged(d) => return Err(damaged(d.offset, applied, d.reason)),
        }
        if applied > 0 {
            state.validate().map_err(|r| {
                damaged(
                    first.unwrap_or(0),
                    0,
                    format!("the state after its {applied} entries fails a check: {r}"),
                )
            })?;
        }
        Ok(end)
    }

    /// The journal, opened for append, mode 0600 (created, its name made durable, if missing).
    fn journal_file(&mut self) -> std::io::Result<&mut File> {
        if self.journal.is_none() {
            let existed = self.journal_path.exists();
            let f = OpenOptions::new()
                .append(true)
                .create(true)
                .mode(0o600)
                .open(&self.journal_path)?;
            if existed {
                // It holds keys: private even if someone widened it.
                f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            } else {
                self.dir.sync_all()?;
            }
            self.journal = Some(f);
        }
        self.journal
            .as_mut()
            .ok_or_else(|| std::io::Error::other("no journal"))
    }

    /// The highest generation the files name, read without checks (for a store that
    /// writes before it loaded: `init --force` over an old card).
    fn peek_highest(&self) -> u64 {
        let snap = std::fs::read(&self.path).unwrap_or_default();
        let log = std::fs::read(&self.journal_path).unwrap_or_default();
        let (frames, _) = journal::frames(&log);
        frames
            .iter()
            .filter_map(|f| journal::parse(f).ok().map(|e| e.generation))
            .chain([snapshot::peek_generation(&snap)])
            .max()
            .unwrap_or(0)
    }

    /// Compaction: `state` as snapshot generation g+1, then an empty journal.
    fn write_snapshot(&mut self, state: &CardState) -> Result<(), StoreError> {
        let highest = match self.known.get_mut().highest {
            Some(h) => h,
            None => self.peek_highest(),
        };
        let generation = highest + 1;
        let (bytes, id) = snapshot::encode_snapshot(state, generation);
        let err = |e| write_err(&self.path, e);
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.tmp)
            .map_err(err)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
        f.write_all(&bytes).map_err(err)?;
        f.sync_data().map_err(err)?;
        drop(f);
        std::fs::rename(&self.tmp, &self.path).map_err(err)?;
        // From here the new snapshot is the state; the journal's entries name the old one.
        *self.known.get_mut() = Known {
            snapshot: Some(id),
            highest: Some(generation),
            snapshot_len: bytes.len() as u64,
            entries: 0,
            journal_len: 0,
            compact: true,
            limit: None,
            shape: shape(state),
        };
        self.dir.sync_all().map_err(err)?;
        let emptied = self.journal_file().and_then(|j| {
            j.set_len(0)?;
            j.sync_all()
        });
        match emptied {
            Ok(()) => self.known.get_mut().compact = false,
            // The commit is durable in the snapshot; the next one compacts again.
            Err(e) => tracing::warn!(
                "cannot empty the journal {} after a snapshot ({e}); its entries are of an older snapshot and ignored",
                self.journal_path.display()
            ),
        }
        Ok(())
    }

    /// One entry for `changes`, appended and fdatasynced; a snapshot instead when the entry
    /// cannot say it or would take the journal past its bound.
    fn append(&mut self, state: &CardState, changes: &Changes) -> Result<(), StoreError> {
        let k = self.known.get_mut();
        let (Some(id), None) = (k.snapshot, k.limit) else {
            return self.write_snapshot(state);
        };
        let entry = match Entry::new(state, changes, id, k.entries + 1) {
            Ok(e) => e,
            Err(why) => {
                tracing::debug!("snapshot instead of a journal entry: {why}");
                return self.write_snapshot(state);
            }
        };
        let mut buf = std::mem::take(&mut self.buf);
        journal::frame(&mut buf, &entry);
        let k = self.known.get_mut();
        let after = k.journal_len + buf.len() as u64;
        if after > self.compaction.bound(k.snapshot_len) || k.entries >= self.compaction.entries {
            self.buf = buf;
            return self.write_snapshot(state);
        }
        let good = k.journal_len;
        let written = self.journal_file().and_then(|j| {
            j.write_all(&buf)?;
            j.sync_data()
        });
        self.buf = buf;
        match written {
            Ok(()) => {
                let k = self.known.get_mut();
                k.journal_len = after;
                k.entries += 1;
                Ok(())
            }
            Err(e) => {
                // Whatever the failed write left after `good` is not a commit: cut it if we
                // can, never read it, and compact at the next commit.
                if let Some(j) = self.journal.as_mut() {
                    let _ = j.set_len(good);
                }
                let k = self.known.get_mut();
                k.limit = Some((id, good));
                k.compact = true;
                Err(write_err(&self.journal_path, e))
            }
        }
    }
}

impl Store for FileStore {
    fn load(&self) -> Result<CardState, StoreError> {
        let limit = self.known.borrow().limit;
        let l = self.read(limit)?;
        let limit = limit.filter(|(id, _)| l.snapshot == Some(*id));
        let mut k = self.known.borrow_mut();
        *k = Known {
            snapshot: l.snapshot,
            highest: Some(l.highest),
            snapshot_len: l.storage.snapshot_bytes,
            entries: l.storage.applied() as u64,
            journal_len: l.journal_len,
            // Compaction at open: the first commit folds a non-empty journal (entries, an
            // older snapshot's entries, a torn tail) into a fresh snapshot; so does the
            // commit after a failed append.
            compact: l.storage.journal_bytes > 0 || limit.is_some(),
            limit,
            shape: shape(&l.state),
        };
        Ok(l.state)
    }

    fn commit(&mut self, state: &CardState) -> Result<(), StoreError> {
        self.write_snapshot(state)
    }

    fn commit_changes(&mut self, state: &CardState, changes: &Changes) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let k = self.known.get_mut();
        if changes.structure || k.compact || !same_shape(&k.shape, state) {
            return self.write_snapshot(state);
        }
        self.append(state, changes)
    }
}
