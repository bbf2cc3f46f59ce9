//! The embedded store: SQLite in WAL mode. Concurrent writes are committed together, several
//! callers' transactions in one commit and one fsync (group commit); or, when configured,
//! each write is its own transaction on one connection behind a mutex.
//!
//! Group commit keeps what `durability = "full"` promises: a write method returns only after
//! the COMMIT that holds its transaction returned, and with `synchronous = FULL` that COMMIT
//! fsynced the WAL. What changes is that up to [`MAX_BATCH`] callers share that fsync. Each
//! caller's transaction runs in its own SAVEPOINT, in arrival order, so the callers of one
//! batch see each other's writes exactly as if they had committed one after the other (of
//! two registrations with one nonce, the second fails as replayed; of two compare-and-sets
//! on one counter, the second misses), and a failing one rolls back alone.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{ffi, params, Connection, OptionalExtension, TransactionBehavior};
use zeroize::Zeroizing;

use super::*;

/// The most transactions one group commit holds. Bounds how long one batch keeps the write
/// lock and how much one failed COMMIT takes down; with 16 terminals a batch rarely passes 16.
const MAX_BATCH: usize = 64;

const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS nonces (
    nonce   BLOB NOT NULL UNIQUE,
    seen_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS registration_counters (
    subject      BLOB PRIMARY KEY NOT NULL,
    last_counter INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS connections (
    cid          BLOB PRIMARY KEY NOT NULL,
    service      TEXT NOT NULL,
    subject      TEXT NOT NULL,
    scope        TEXT NOT NULL,
    expires_at   INTEGER NOT NULL,
    state        BLOB NOT NULL,
    up_counter   INTEGER NOT NULL,
    down_counter INTEGER NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS last_answers (
    cid       BLOB PRIMARY KEY NOT NULL,
    up_sha256 BLOB NOT NULL,
    down      BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS credentials (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    cid       BLOB NOT NULL,
    subject   TEXT NOT NULL,
    service   TEXT NOT NULL,
    issued_at INTEGER NOT NULL,
    sha256    BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    time     INTEGER NOT NULL,
    subject  TEXT NOT NULL,
    service  TEXT NOT NULL,
    decision TEXT NOT NULL,
    reason   TEXT NOT NULL,
    cid      TEXT
);
CREATE INDEX IF NOT EXISTS connections_by_subject ON connections (subject, service);
CREATE INDEX IF NOT EXISTS connections_by_expiry ON connections (expires_at);
CREATE INDEX IF NOT EXISTS nonces_by_time ON nonces (seen_at);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time);
";

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    pub durability: Durability,
    /// Concurrent writes are committed together (one fsync for all of them); false: each write is its own transaction and fsync, serialized on a mutex.
    pub group_commit: bool,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            durability: Durability::Full,
            group_commit: true,
        }
    }
}

/// SQLite in WAL mode; see the module documentation.
pub struct SqliteStore {
    mode: Mode,
    stats: Arc<Stats>,
}

enum Mode {
    /// One connection for reads and writes; one IMMEDIATE transaction (and, with
    /// `synchronous = FULL`, one fsync) per write. Also every in-memory database: a second
    /// connection could not see it.
    Direct(Mutex<Connection>),
    /// Writes go through the group-commit queue; reads use their own connection so that they
    /// never wait behind an fsync (WAL readers do not block the writer nor wait for it). A read
    /// that starts after a write returned sees it: the write's COMMIT had finished.
    Group {
        writer: Writer,
        reader: Mutex<Connection>,
    },
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.mode {
            Mode::Direct(_) => "SqliteStore(one transaction per write)",
            Mode::Group { .. } => "SqliteStore(group commit)",
        })
    }
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::Corrupt(format!("{v} does not fit a database integer")))
}

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative value {v}")))
}

/// Turns on `secure_delete` on `conn`: a per-connection setting, so on every open.
fn secure_delete(conn: &Connection) -> Result<(), StoreError> {
    // Deleted rows (a connection's keys) are overwritten with zeros, not left in free space.
    let secure: i64 = conn.query_row("PRAGMA secure_delete = ON", [], |r| r.get(0))?;
    if secure != 1 {
        return Err(StoreError::Corrupt(format!(
            "SQLite refused secure_delete (it answers {secure})"
        )));
    }
    Ok(())
}

/// WAL mode, durability, secure delete and the schema (created, or checked) on the
/// connection that writes.
fn configure(conn: &Connection, durability: Durability) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if mode != "wal" && mode != "memory" {
        return Err(StoreError::Corrupt(format!(
            "SQLite refused WAL mode (journal_mode is {mode})"
        )));
    }
    conn.execute_batch(match durability {
        Durability::Full => "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        Durability::Normal => "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
    })?;
    secure_delete(conn)?;
    conn.execute_batch(SCHEMA)?;
    let version: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    match version {
        None => {
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)",
                params![SCHEMA_VERSION.to_string()],
            )?;
        }
        Some(v) if v == SCHEMA_VERSION.to_string() => {}
        Some(v) => {
            return Err(StoreError::Corrupt(format!(
                "schema version {v}, this server reads version {SCHEMA_VERSION}"
            )))
        }
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and its schema, with
    /// [`Durability::Full`] and group commit.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with_options(path, SqliteOptions::default())
    }

    /// Opens the database at `path` with the given durability, and group commit.
    pub fn open_with(path: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        Self::open_with_options(
            path,
            SqliteOptions {
                durability,
                ..SqliteOptions::default()
            },
        )
    }

    /// Opens the database at `path` with these options.
    pub fn open_with_options(
        path: &Path,
        options: SqliteOptions,
    ) -> Result<SqliteStore, StoreError> {
        let conn = Connection::open(path)?;
        configure(&conn, options.durability)?;
        let stats = Arc::new(Stats::new());
        if !options.group_commit {
            return Ok(SqliteStore {
                mode: Mode::Direct(Mutex::new(conn)),
                stats,
            });
        }
        let reader = Connection::open(path)?;
        reader.busy_timeout(BUSY_TIMEOUT)?;
        reader.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        secure_delete(&reader)?;
        // A write through this connection would bypass the writer and its batching.
        reader.execute_batch("PRAGMA query_only = ON")?;
        Ok(SqliteStore {
            mode: Mode::Group {
                writer: Writer::new(conn, stats.clone()),
                reader: Mutex::new(reader),
            },
            stats,
        })
    }

    /// A private in-memory database (tests), one transaction per write.
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory()?;
        configure(&conn, Durability::Full)?;
        Ok(SqliteStore {
            mode: Mode::Direct(Mutex::new(conn)),
            stats: Arc::new(Stats::new()),
        })
    }

    /// Whether writes go through group commit.
    pub fn group_commit(&self) -> bool {
        matches!(self.mode, Mode::Group { .. })
    }

    /// Latency of the write methods since the store was opened, from the call to its durable
    /// answer (queueing, the batch's other transactions and the fsync included).
    pub fn commit_latency_snapshot(&self) -> CommitLatency {
        self.stats.snapshot()
    }

    /// Runs a read on the reading connection.
    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = match &self.mode {
            Mode::Direct(conn) => conn,
            Mode::Group { reader, .. } => reader,
        };
        let guard = conn.lock().map_err(|_| StoreError::Poisoned)?;
        f(&guard)
    }

    /// Runs `body` as one write and answers once it is durable. `keep` tells from the body's
    /// result whether its writes stay (otherwise they are rolled back). An `alone` body
    /// (prune) runs outside any transaction and manages its own.
    fn write<T, E, F>(&self, alone: bool, keep: fn(&Result<T, E>) -> bool, body: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        let started = Instant::now();
        let result = match &self.mode {
            Mode::Direct(conn) => {
                let mut guard = conn.lock().map_err(|_| StoreError::Poisoned)?;
                write_direct(&mut guard, alone, keep, body, &self.stats)
            }
            Mode::Group { writer, .. } => writer.submit(alone, keep, body),
        };
        if !alone {
            self.stats.record(started.elapsed());
        }
        result
    }
}

/// One write on the mutex-held connection: its own IMMEDIATE transaction, one fsync.
fn write_direct<T, E>(
    conn: &mut Connection,
    alone: bool,
    keep: fn(&Result<T, E>) -> bool,
    body: impl FnOnce(&Connection) -> Result<T, E>,
    stats: &Stats,
) -> Result<T, E>
where
    E: From<StoreError>,
{
    // A panicking body rolls its transaction back (the Transaction's drop) and answers an
    // error instead of poisoning the mutex, as with group commit.
    let panicked =
        || Err(StoreError::Writer("the operation panicked and was rolled back".into()).into());
    if alone {
        let r = catch_unwind(AssertUnwindSafe(|| body(conn))).unwrap_or_else(|_| panicked());
        if !conn.is_autocommit() {
            conn.execute_batch("ROLLBACK").map_err(StoreError::from)?;
        }
        return r;
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::from)?;
    let r = catch_unwind(AssertUnwindSafe(|| body(&tx))).unwrap_or_else(|_| panicked());
    if keep(&r) {
        tx.commit().map_err(StoreError::from)?;
        stats.transactions.fetch_add(1, Ordering::Relaxed);
    }
    r
}

/// Group commit without a thread of its own (the leader/follower scheme of LevelDB's write
/// queue): callers queue their writes; the one that finds no leader becomes the leader,
/// commits the batch at the head of the queue (its own write first) on the write
/// connection, answers the others, and passes the lead to the caller whose write is now
/// first. A write alone is thus committed at once on its caller's thread, with no hand-off
/// to wait for (which costs milliseconds on a loaded machine); under load, the writes that
/// queued during one fsync share the next one. Nothing waits for more writes to come.
struct Writer {
    conn: Mutex<Connection>,
    queue: Mutex<Queue>,
    stats: Arc<Stats>,
    #[cfg(test)]
    submitted: AtomicU64,
}

struct Queue {
    jobs: VecDeque<Box<dyn Job>>,
    /// A caller is committing. It passes the lead on when it is done if writes wait, else
    /// clears this: so writes never wait without a leader.
    leading: bool,
}

/// What a queued caller is told.
enum Reply<T, E> {
    Answer(Result<T, E>),
    /// Its write is first in the queue and nobody leads: it commits the next batch.
    Lead,
}

impl Writer {
    fn new(conn: Connection, stats: Arc<Stats>) -> Writer {
        Writer {
            conn: Mutex::new(conn),
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                leading: false,
            }),
            stats,
            #[cfg(test)]
            submitted: AtomicU64::new(0),
        }
    }

    /// Queues the write and waits for its answer, leading a batch when it is its turn.
    fn submit<T, E, F>(&self, alone: bool, keep: fn(&Result<T, E>) -> bool, body: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&Connection) -> Result<T, E> + Send + 'static,
    {
        // At most one message (Lead) before the answer, and each is read before the next.
        let (reply, replies) = mpsc::sync_channel(1);
        let job: Box<dyn Job> = Box::new(Call {
            body: Some(body),
            keep,
            alone,
            result: None,
            reply,
        });
        let lead_now = {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.jobs.push_back(job);
            #[cfg(test)]
            self.submitted.fetch_add(1, Ordering::SeqCst);
            !std::mem::replace(&mut queue.leading, true)
        };
        let unanswered =
            || Err(StoreError::Writer("the write was dropped unanswered".into()).into());
        if !lead_now {
            match replies.recv() {
                Ok(Reply::Answer(result)) => return result,
                Ok(Reply::Lead) => {}
                Err(_) => return unanswered(),
            }
        }
        self.lead();
        match replies.try_recv() {
            Ok(Reply::Answer(result)) => result,
            _ => unanswered(),
        }
    }

    /// Commits the batch at the head of the queue, then passes the lead on.
    fn lead(&self) {
        // Passed on even if something below panicked: writes would wait forever otherwise.
        struct PassOn<'a>(&'a Writer);
        impl Drop for PassOn<'_> {
            fn drop(&mut self) {
                let mut queue = self.0.queue.lock().unwrap_or_else(PoisonError::into_inner);
                match queue.jobs.front() {
                    Some(next) => next.promote(),
                    None => queue.leading = false,
                }
            }
        }
        let _pass_on = PassOn(self);
        let mut batch: Vec<Box<dyn Job>> = Vec::new();
        {
            let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            // A write that runs alone (prune) is a batch of its own.
            while let Some(job) = queue.jobs.pop_front() {
                let alone = job.alone();
                batch.push(job);
                let next_alone = queue.jobs.front().is_some_and(|j| j.alone());
                if alone || next_alone || batch.len() == MAX_BATCH {
                    break;
                }
            }
        }
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if !conn.is_autocommit() {
            // Left open by a leader that panicked outside the jobs.
            let _ = conn.execute_batch("ROLLBACK");
        }
        match batch.pop() {
            Some(job) if job.alone() => run_alone(&conn, job),
            Some(job) => {
                batch.push(job);
                commit_batch(&conn, &mut batch, &self.stats);
            }
            None => {}
        }
    }
}

/// One write queued for the leader.
trait Job: Send {
    /// Runs alone, outside any transaction (prune: it ends with a checkpoint).
    fn alone(&self) -> bool;
    /// Tells the waiting caller to lead the next batch.
    fn promote(&self);
    /// Runs the body (once); whether its writes are to be kept.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller: with the body's result, or with `failed` when the transaction
    /// that held the body did not commit.
    fn answer(self: Box<Self>, failed: Option<&rusqlite::Error>);
}

struct Call<T, E, F> {
    body: Option<F>,
    keep: fn(&Result<T, E>) -> bool,
    alone: bool,
    result: Option<Result<T, E>>,
    reply: mpsc::SyncSender<Reply<T, E>>,
}

impl<T, E, F> Job for Call<T, E, F>
where
    T: Send,
    E: From<StoreError> + Send,
    F: FnOnce(&Connection) -> Result<T, E> + Send,
{
    fn alone(&self) -> bool {
        self.alone
    }

    fn promote(&self) {
        let _ = self.reply.send(Reply::Lead);
    }

    fn run(&mut self, conn: &Connection) -> bool {
        let Some(body) = self.body.take() else {
            return false;
        };
        let result = body(conn);
        let keep = (self.keep)(&result);
        self.result = Some(result);
        keep
    }

    fn answer(self: Box<Self>, failed: Option<&rusqlite::Error>) {
        let answer = match (failed, self.result) {
            (Some(e), _) => Err(StoreError::Db(duplicate(e)).into()),
            (None, Some(result)) => result,
            (None, None) => {
                Err(StoreError::Writer("the operation panicked and was rolled back".into()).into())
            }
        };
        // A caller that is gone (it cannot be: it waits) needs no answer.
        let _ = self.reply.send(Reply::Answer(answer));
    }
}

/// The same error again, for each caller of a batch that failed as a whole
/// (`rusqlite::Error` is not `Clone`).
fn duplicate(e: &rusqlite::Error) -> rusqlite::Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            rusqlite::Error::SqliteFailure(*code, message.clone())
        }
        other => rusqlite::Error::SqliteFailure(
            ffi::Error::new(ffi::SQLITE_ERROR),
            Some(other.to_string()),
        ),
    }
}

/// Runs each job of `batch` in its own savepoint of one IMMEDIATE transaction, commits
/// once, then answers every job (all with the error if the COMMIT failed: none is durable).
fn commit_batch(conn: &Connection, batch: &mut Vec<Box<dyn Job>>, stats: &Stats) {
    // The jobs that ran in the transaction now open, waiting for its COMMIT.
    let mut open: Vec<Box<dyn Job>> = Vec::with_capacity(batch.len());
    // A write alone needs no savepoint: its transaction is its own.
    let single = batch.len() == 1;
    let mut jobs = batch.drain(..);
    while let Some(mut job) = jobs.next() {
        if conn.is_autocommit() {
            if let Err(e) = sql(conn, "BEGIN IMMEDIATE") {
                job.answer(Some(&e));
                jobs.by_ref().for_each(|job| job.answer(Some(&e)));
                return;
            }
        }
        if !single {
            if let Err(e) = sql(conn, "SAVEPOINT job") {
                job.answer(Some(&e));
                continue;
            }
        }
        let keep = catch_unwind(AssertUnwindSafe(|| job.run(conn))).unwrap_or(false);
        if conn.is_autocommit() {
            // SQLite rolled the whole transaction back on the job's error (I/O error, full
            // disk): the jobs before it in this transaction are lost too.
            let lost = rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_ABORT),
                Some("rolled back with a failed operation of the same group commit".into()),
            );
            open.drain(..).for_each(|job| job.answer(Some(&lost)));
            job.answer(if keep { Some(&lost) } else { None });
            continue;
        }
        let end = match (single, keep) {
            (true, true) => Ok(()),
            (true, false) => sql(conn, "ROLLBACK"),
            (false, true) => sql(conn, "RELEASE job"),
            (false, false) => sql(conn, "ROLLBACK TO job").and_then(|_| sql(conn, "RELEASE job")),
        };
        if let Err(e) = end {
            // Which of the transaction's writes would stay is unknown: none do.
            let _ = conn.execute_batch("ROLLBACK");
            open.drain(..).for_each(|job| job.answer(Some(&e)));
            job.answer(Some(&e));
            continue;
        }
        open.push(job);
    }
    if conn.is_autocommit() {
        // A write alone that kept nothing was rolled back: answered without a COMMIT.
        open.drain(..).for_each(|job| job.answer(None));
        return;
    }
    match sql(conn, "COMMIT") {
        Ok(()) => {
            stats.transactions.fetch_add(1, Ordering::Relaxed);
            open.drain(..).for_each(|job| job.answer(None));
        }
        Err(e) => {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            open.drain(..).for_each(|job| job.answer(Some(&e)));
        }
    }
}

/// One statement of the batch's transaction control, prepared once per connection.
fn sql(conn: &Connection, statement: &str) -> Result<(), rusqlite::Error> {
    run(conn, statement, [])?;
    Ok(())
}

/// Statements each connection keeps prepared: every one the flows run (about twenty),
/// with room; the store's SQL is fixed text, so the cache never churns.
const STATEMENT_CACHE: usize = 64;

/// Executes one statement of the store's fixed SQL, prepared once per connection: a
/// flow runs the same dozen statements, and parsing them again each time cost about a
/// tenth of the server's CPU.
fn run(
    conn: &Connection,
    statement: &str,
    params: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    conn.prepare_cached(statement)?.execute(params)
}

/// [`run`] for a query of at most one row.
fn row<T>(
    conn: &Connection,
    statement: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Option<T>> {
    conn.prepare_cached(statement)?
        .query_row(params, f)
        .optional()
}

/// Runs a job that manages its own transaction; a transaction its panic left open is
/// rolled back.
fn run_alone(conn: &Connection, mut job: Box<dyn Job>) {
    let _ = catch_unwind(AssertUnwindSafe(|| job.run(conn)));
    if !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    job.answer(None);
}

/// Commit latency of the write methods of a [`SqliteStore`] since it was opened.
/// Percentiles are upper bounds of histogram buckets (at most 12.5 % above the true value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitLatency {
    /// Writes answered (registrations, messages, audit entries; pruning runs are not counted).
    pub writes: u64,
    /// Transactions committed for them: with group commit, fewer than `writes`.
    pub transactions: u64,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Exact below 16 µs, then 8 buckets per power of two.
const BUCKETS: usize = 16 + 8 * 60;

fn bucket(micros: u64) -> usize {
    if micros < 16 {
        return micros as usize;
    }
    let exp = 63 - micros.leading_zeros() as usize;
    let sub = ((micros >> (exp - 3)) & 7) as usize;
    (16 + (exp - 4) * 8 + sub).min(BUCKETS - 1)
}

fn bucket_upper(i: usize) -> u64 {
    if i < 16 {
        return i as u64;
    }
    let (exp, sub) = ((i - 16) / 8 + 4, (i - 16) % 8);
    ((9 + sub as u64) << (exp - 3)) - 1
}

/// Counters kept by the store, lock-free (the callers record concurrently). The PostgreSQL
/// store keeps the same ones.
pub(super) struct Stats {
    latency_micros: Box<[AtomicU64; BUCKETS]>,
    max_micros: AtomicU64,
    transactions: AtomicU64,
}

impl Stats {
    pub(super) fn new() -> Stats {
        Stats {
            latency_micros: Box::new(std::array::from_fn(|_| AtomicU64::new(0))),
            max_micros: AtomicU64::new(0),
            transactions: AtomicU64::new(0),
        }
    }

    fn record(&self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.latency_micros[bucket(micros)].fetch_add(1, Ordering::Relaxed);
        self.max_micros.fetch_max(micros, Ordering::Relaxed);
    }

    /// One write committed in a transaction of its own (PostgreSQL).
    pub(super) fn record_alone(&self, took: Duration, committed: bool) {
        self.record(took);
        if committed {
            self.transactions.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(super) fn snapshot(&self) -> CommitLatency {
        let counts: Vec<u64> = self
            .latency_micros
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let max = self.max_micros.load(Ordering::Relaxed);
        let percentile = |p: u64| {
            let rank = (total * p).div_ceil(100).max(1);
            let mut seen = 0;
            for (i, n) in counts.iter().enumerate() {
                seen += n;
                if seen >= rank {
                    return Duration::from_micros(bucket_upper(i).min(max));
                }
            }
            Duration::ZERO
        };
        CommitLatency {
            writes: total,
            transactions: self.transactions.load(Ordering::Relaxed),
            p50: percentile(50),
            p95: percentile(95),
            p99: percentile(99),
            max: Duration::from_micros(max),
        }
    }
}

fn insert_audit(tx: &rusqlite::Connection, e: &AuditEntry) -> Result<(), StoreError> {
    run(tx,
        "INSERT INTO audit (time, subject, service, decision, reason, cid) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![to_i64(e.time)?, e.subject, e.service, e.decision.as_str(), e.reason, e.cid],
    )?;
    Ok(())
}

/// Deletes the connections whose CIDs `select` yields, and their last answers; how many of
/// each. (With `secure_delete`, their bytes are zeroed in the pages.)
fn delete_connections(
    tx: &rusqlite::Connection,
    select: &str,
    params: impl rusqlite::Params,
) -> Result<(u64, u64), rusqlite::Error> {
    let cids: Vec<Vec<u8>> = {
        let mut stmt = tx.prepare_cached(select)?;
        let rows = stmt.query_map(params, |r| r.get::<_, Vec<u8>>(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let (mut connections, mut answers) = (0u64, 0u64);
    for cid in &cids {
        answers += run(tx, "DELETE FROM last_answers WHERE cid = ?1", params![cid])? as u64;
        connections += run(tx, "DELETE FROM connections WHERE cid = ?1", params![cid])? as u64;
    }
    Ok((connections, answers))
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(
        e,
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

/// The writes of one registration, in the transaction (or savepoint) open on `conn`.
fn register(conn: &Connection, reg: &NewRegistration) -> Result<(), CommitError> {
    match run(
        conn,
        "INSERT INTO nonces (nonce, seen_at) VALUES (?1, ?2)",
        params![&reg.nonce[..], to_i64(reg.audit.time)?],
    ) {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Err(CommitError::ReplayedNonce),
        Err(e) => return Err(StoreError::from(e).into()),
    }
    let last: Option<i64> = row(
        conn,
        "SELECT last_counter FROM registration_counters WHERE subject = ?1",
        params![&reg.subject_id[..]],
        |r| r.get(0),
    )
    .map_err(StoreError::from)?;
    if let Some(last) = last {
        let last = u32::try_from(last)
            .map_err(|_| StoreError::Corrupt(format!("registration counter {last}")))?;
        if reg.counter <= last {
            return Err(CommitError::StaleCounter {
                got: reg.counter,
                last,
            });
        }
    }
    run(
        conn,
        "INSERT INTO registration_counters (subject, last_counter) VALUES (?1, ?2)
         ON CONFLICT(subject) DO UPDATE SET last_counter = excluded.last_counter",
        params![&reg.subject_id[..], i64::from(reg.counter)],
    )
    .map_err(StoreError::from)?;
    if let Some(c) = &reg.connection {
        delete_connections(
            conn,
            "SELECT cid FROM connections WHERE subject = ?1 AND service = ?2 AND cid <> ?3",
            params![c.subject, c.service, &c.cid[..]],
        )
        .map_err(StoreError::from)?;
        run(conn,
            "INSERT INTO connections (cid, service, subject, scope, expires_at, state, up_counter, down_counter, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                &c.cid[..],
                c.service,
                c.subject,
                c.scope.join(","),
                to_i64(c.expires_at)?,
                &c.state[..],
                to_i64(c.up_counter)?,
                to_i64(c.down_counter)?,
                to_i64(c.created_at)?,
            ],
        )
        .map_err(StoreError::from)?;
    }
    insert_audit(conn, &reg.audit)?;
    Ok(())
}

/// The compare-and-set of one message and, if it passed, its writes.
fn message(conn: &Connection, msg: &MessageCommit) -> Result<bool, StoreError> {
    let changed = run(
        conn,
        "UPDATE connections SET up_counter = ?2, down_counter = ?3, state = ?5
         WHERE cid = ?1 AND up_counter = ?4",
        params![
            &msg.cid[..],
            to_i64(msg.new_up)?,
            to_i64(msg.new_down)?,
            to_i64(msg.expected_up)?,
            &msg.new_state[..]
        ],
    )?;
    if changed != 1 {
        return Ok(false);
    }
    if let Some(c) = &msg.credential {
        run(conn,
            "INSERT INTO credentials (cid, subject, service, issued_at, sha256) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                &msg.cid[..],
                msg.audit.subject,
                msg.audit.service,
                to_i64(msg.audit.time)?,
                &c.sha256[..]
            ],
        )?;
    }
    run(
        conn,
        "INSERT OR REPLACE INTO last_answers (cid, up_sha256, down) VALUES (?1, ?2, ?3)",
        params![
            &msg.cid[..],
            &msg.answer.up_sha256[..],
            &msg.answer.down[..]
        ],
    )?;
    insert_audit(conn, &msg.audit)?;
    Ok(true)
}

/// One pruning run in its own transaction, then the truncating checkpoint (which cannot
/// run inside a transaction).
fn prune(conn: &Connection, now: u64, limits: &PruneLimits) -> Result<PruneReport, StoreError> {
    let max = to_i64(limits.max_rows)?;
    let nonce_cutoff = to_i64(now.saturating_sub(limits.nonce_retention_secs))?;
    let audit_cutoff = to_i64(now.saturating_sub(limits.audit_retention_secs))?;
    let mut report = PruneReport::default();
    let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    // A connection is valid while now < expires_at (mutual-auth.md).
    (report.connections, report.last_answers) = delete_connections(
        &tx,
        "SELECT cid FROM connections WHERE expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
        params![to_i64(now)?, max],
    )?;
    report.nonces = tx.execute(
        "DELETE FROM nonces WHERE rowid IN
         (SELECT rowid FROM nonces WHERE seen_at < ?1 ORDER BY seen_at LIMIT ?2)",
        params![nonce_cutoff, max],
    )? as u64;
    report.audit = tx.execute(
        "DELETE FROM audit WHERE id IN
         (SELECT id FROM audit WHERE time < ?1 ORDER BY time LIMIT ?2)",
        params![audit_cutoff, max],
    )? as u64;
    report.more = [report.connections, report.nonces, report.audit]
        .iter()
        .any(|&n| n >= limits.max_rows);
    tx.commit()?;
    // The deleted pages (zeroed) replace the old ones in the database file, and the WAL,
    // which may still hold old copies of those pages, is cut to zero bytes. Also removes
    // what replaced connections left since the last run. (A reader in the middle of a read
    // makes it fail; the next run tries again.)
    let (busy, _, _): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    report.wal_truncated = busy == 0;
    Ok(report)
}

impl Store for SqliteStore {
    fn commit_registration(&self, reg: &NewRegistration) -> Result<(), CommitError> {
        // Owned, for whichever caller leads the batch (a copy of a few hundred bytes; the fsync costs ms).
        let reg = reg.clone();
        self.write(false, Result::is_ok, move |conn| register(conn, &reg))
    }

    fn connection(&self, cid: &[u8; 16]) -> Result<Option<ConnectionRecord>, StoreError> {
        self.with(|conn| {
            let row = row(
                conn,
                "SELECT service, subject, scope, expires_at, state, up_counter, down_counter, created_at
                 FROM connections WHERE cid = ?1",
                params![&cid[..]],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                        Zeroizing::new(r.get::<_, Vec<u8>>(4)?),
                        r.get::<_, i64>(5)?,
                        r.get::<_, i64>(6)?,
                        r.get::<_, i64>(7)?,
                    ))
                },
            )?;
            let Some((service, subject, scope, expires_at, state, up, down, created)) = row else {
                return Ok(None);
            };
            Ok(Some(ConnectionRecord {
                cid: *cid,
                service,
                subject,
                scope: scope
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
                expires_at: to_u64(expires_at)?,
                state,
                up_counter: to_u64(up)?,
                down_counter: to_u64(down)?,
                created_at: to_u64(created)?,
            }))
        })
    }

    fn commit_message(&self, msg: &MessageCommit) -> Result<bool, StoreError> {
        let msg = msg.clone();
        // A missed compare-and-set keeps nothing (it wrote nothing either).
        self.write(
            false,
            |r| matches!(r, Ok(true)),
            move |conn| message(conn, &msg),
        )
    }

    fn last_answer(&self, cid: &[u8; 16]) -> Result<Option<LastAnswer>, StoreError> {
        self.with(|conn| {
            let row = row(
                conn,
                "SELECT up_sha256, down FROM last_answers WHERE cid = ?1",
                params![&cid[..]],
                |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )?;
            let Some((hash, down)) = row else {
                return Ok(None);
            };
            let up_sha256 = hash.try_into().map_err(|h: Vec<u8>| {
                StoreError::Corrupt(format!("a last answer's hash has {} bytes", h.len()))
            })?;
            Ok(Some(LastAnswer { up_sha256, down }))
        })
    }

    fn audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.write(false, Result::is_ok, move |conn| insert_audit(conn, &entry))
    }

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.with(|conn| {
            let mut stmt = conn.prepare(
                "SELECT time, subject, service, decision, reason, cid FROM
                 (SELECT * FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id ASC",
            )?;
            let rows = stmt.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (time, subject, service, decision, reason, cid) = row?;
                let decision = AuditDecision::parse(&decision).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown audit decision `{decision}`"))
                })?;
                out.push(AuditEntry {
                    time: to_u64(time)?,
                    subject,
                    service,
                    decision,
                    reason,
                    cid,
                });
            }
            Ok(out)
        })
    }

    fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.with(|conn| {
            let count = |table: &str| -> Result<u64, StoreError> {
                let n: i64 =
                    conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))?;
                to_u64(n)
            };
            Ok(StoreCounts {
                nonces: count("nonces")?,
                connections: count("connections")?,
                credentials: count("credentials")?,
                audit: count("audit")?,
            })
        })
    }

    fn prune(&self, now: u64, limits: &PruneLimits) -> Result<PruneReport, StoreError> {
        let limits = *limits;
        self.write(true, Result::is_ok, move |conn| prune(conn, now, &limits))
    }

    fn commit_latency(&self) -> Option<CommitLatency> {
        Some(self.commit_latency_snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(decision: AuditDecision) -> AuditEntry {
        AuditEntry {
            time: 10,
            subject: "s".into(),
            service: "demo".into(),
            decision,
            reason: "r".into(),
            cid: None,
        }
    }

    fn conn(cid: u8) -> ConnectionRecord {
        ConnectionRecord {
            cid: [cid; 16],
            service: "demo".into(),
            subject: "s".into(),
            scope: vec!["echo".into(), "provision".into()],
            expires_at: 100,
            state: Zeroizing::new(vec![7; 64]),
            up_counter: 0,
            down_counter: 0,
            created_at: 10,
        }
    }

    fn reg(nonce: u8, counter: u32, cid: u8) -> NewRegistration {
        NewRegistration {
            nonce: [nonce; 16],
            subject_id: [1; 26],
            counter,
            connection: Some(conn(cid)),
            audit: audit(AuditDecision::Registered),
        }
    }

    #[test]
    fn a_file_database_is_in_wal_mode_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.db");
        {
            let s = SqliteStore::open(&path).unwrap();
            s.commit_registration(&reg(1, 1, 1)).unwrap();
        }
        let s = SqliteStore::open(&path).unwrap();
        assert!(s.connection(&[1; 16]).unwrap().is_some());
        let mode: String = s
            .with(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(mode, "wal");
        let secure: i64 = s
            .with(|c| Ok(c.query_row("PRAGMA secure_delete", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(secure, 1);
    }

    #[test]
    fn every_decision_name_round_trips() {
        for d in AuditDecision::ALL {
            assert_eq!(AuditDecision::parse(d.as_str()), Some(*d));
        }
    }

    // Group commit and its invariants, on file databases (fsyncs included).

    use std::sync::{Arc, Barrier};
    use std::thread;

    const THREADS: usize = 16;

    fn file_store(dir: &tempfile::TempDir, group_commit: bool) -> SqliteStore {
        SqliteStore::open_with_options(
            &dir.path().join("server.db"),
            SqliteOptions {
                durability: Durability::Full,
                group_commit,
            },
        )
        .unwrap()
    }

    /// A registration of its own container (`subject`), without a connection.
    fn reg_of(subject: u32, nonce: [u8; 16], counter: u32) -> NewRegistration {
        let mut subject_id = [0; 26];
        subject_id[..4].copy_from_slice(&subject.to_be_bytes());
        NewRegistration {
            nonce,
            subject_id,
            counter,
            connection: None,
            audit: audit(AuditDecision::Registered),
        }
    }

    fn nonce(n: u32) -> [u8; 16] {
        let mut nonce = [0xEE; 16];
        nonce[..4].copy_from_slice(&n.to_be_bytes());
        nonce
    }

    fn msg(cid: u8, expected_up: u64, tag: u8) -> MessageCommit {
        MessageCommit {
            cid: [cid; 16],
            expected_up,
            new_up: expected_up + 1,
            new_down: expected_up + 1,
            new_state: Zeroizing::new(vec![tag; 64]),
            credential: Some(IssuedCredential { sha256: [tag; 32] }),
            answer: LastAnswer {
                up_sha256: [tag; 32],
                down: vec![0x73, tag],
            },
            audit: audit(AuditDecision::CallExecuted),
        }
    }

    fn submitted(s: &SqliteStore) -> u64 {
        match &s.mode {
            Mode::Group { writer, .. } => writer.submitted.load(Ordering::SeqCst),
            Mode::Direct(_) => panic!("not a group-commit store"),
        }
    }

    /// Waits until `n` writes in all were queued (the writer being held, they wait in the
    /// queue and will form one batch).
    fn wait_submitted(s: &SqliteStore, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while submitted(s) < n {
            assert!(Instant::now() < deadline, "{n} writes never queued");
            thread::yield_now();
        }
    }

    /// A write that holds the lead (and the write connection) until the returned sender is dropped;
    /// `setup` runs first, in that write's transaction.
    fn hold_writer(
        s: &Arc<SqliteStore>,
        setup: &'static str,
    ) -> (mpsc::Sender<()>, thread::JoinHandle<()>) {
        let (inside, entered) = mpsc::channel();
        let (release, gate) = mpsc::channel::<()>();
        let held = {
            let s = s.clone();
            thread::spawn(move || {
                s.write(false, Result::is_ok, move |conn| {
                    conn.execute_batch(setup)?;
                    inside.send(()).unwrap();
                    let _ = gate.recv();
                    Ok::<(), StoreError>(())
                })
                .unwrap()
            })
        };
        entered.recv().unwrap();
        (release, held)
    }

    #[test]
    fn one_batch_of_registrations_with_one_nonce_grants_exactly_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(file_store(&dir, true));
        let (release, held) = hold_writer(&s, "");
        let threads: Vec<_> = (0..2 * THREADS as u32)
            .map(|i| {
                let s = s.clone();
                thread::spawn(move || s.commit_registration(&reg_of(i, nonce(7), 1)))
            })
            .collect();
        wait_submitted(&s, 1 + 2 * THREADS as u64);
        drop(release);
        held.join().unwrap();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
        assert!(results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(CommitError::ReplayedNonce))));
        // The held write, then all of them in one transaction.
        let l = s.commit_latency_snapshot();
        assert_eq!((l.writes, l.transactions), (1 + 2 * THREADS as u64, 2));
        let c = s.counts().unwrap();
        assert_eq!((c.nonces, c.audit), (1, 1));
    }

    #[test]
    fn one_batch_of_messages_with_one_expected_counter_passes_exactly_one() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(file_store(&dir, true));
        s.commit_registration(&reg(1, 1, 9)).unwrap();
        let (release, held) = hold_writer(&s, "");
        let threads: Vec<_> = (0..2 * THREADS as u8)
            .map(|tag| {
                let s = s.clone();
                thread::spawn(move || (tag, s.commit_message(&msg(9, 0, tag)).unwrap()))
            })
            .collect();
        wait_submitted(&s, 2 + 2 * THREADS as u64);
        drop(release);
        held.join().unwrap();
        let winners: Vec<u8> = threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&(_, passed)| passed)
            .map(|(tag, _)| tag)
            .collect();
        assert_eq!(winners.len(), 1);
        assert_eq!(s.commit_latency_snapshot().transactions, 3);
        // Only the winner wrote: its state, its answer, one credential, one audit entry.
        let c = s.connection(&[9; 16]).unwrap().unwrap();
        assert_eq!((c.up_counter, c.state[0]), (1, winners[0]));
        assert_eq!(
            s.last_answer(&[9; 16]).unwrap(),
            Some(msg(9, 0, winners[0]).answer)
        );
        let counts = s.counts().unwrap();
        assert_eq!((counts.credentials, counts.audit), (1, 2));
    }

    #[test]
    fn a_failing_write_rolls_back_alone_and_the_rest_of_its_batch_commits() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(file_store(&dir, true));
        let (release, held) = hold_writer(&s, "");
        // Queued one after the other, so the batch runs them in this order.
        let mut queued = 1;
        let mut threads = Vec::new();
        let mut queue = |f: Box<dyn FnOnce(&SqliteStore) -> String + Send>| {
            let s2 = s.clone();
            threads.push(thread::spawn(move || f(&s2)));
            queued += 1;
            wait_submitted(&s, queued);
        };
        let show = |r: Result<(), CommitError>| format!("{r:?}");
        queue(Box::new(move |s| {
            show(s.commit_registration(&reg_of(1, nonce(1), 5)))
        }));
        queue(Box::new(move |s| {
            show(s.commit_registration(&reg_of(2, nonce(1), 1)))
        }));
        queue(Box::new(move |s| {
            show(s.commit_registration(&reg_of(1, nonce(2), 5)))
        }));
        queue(Box::new(|s| {
            let r = s.write(false, Result::is_ok, |conn| {
                conn.execute("INSERT INTO nonces VALUES (x'AA', 1)", [])?;
                panic!("a bug in a write");
                #[allow(unreachable_code)]
                Ok::<(), StoreError>(())
            });
            format!("{r:?}")
        }));
        queue(Box::new(|s| {
            let r = s.write(false, Result::is_ok, |conn| {
                conn.execute("INSERT INTO nonces VALUES (x'BB', 1)", [])?;
                conn.execute("INSERT INTO audit (time) VALUES (1)", [])?;
                Ok::<(), StoreError>(())
            });
            format!("{r:?}")
        }));
        queue(Box::new(|s| {
            format!("{:?}", s.commit_message(&msg(3, 0, 1)))
        }));
        queue(Box::new(move |s| {
            show(s.commit_registration(&reg_of(3, nonce(3), 1)))
        }));
        drop(release);
        held.join().unwrap();
        let results: Vec<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(results[0], "Ok(())");
        assert_eq!(results[1], "Err(ReplayedNonce)");
        assert_eq!(results[2], "Err(StaleCounter { got: 5, last: 5 })");
        assert!(results[3].contains("panicked"), "{}", results[3]);
        assert!(results[4].contains("NOT NULL"), "{}", results[4]);
        assert_eq!(results[5], "Ok(false)");
        assert_eq!(results[6], "Ok(())");
        assert_eq!(s.commit_latency_snapshot().transactions, 2);
        // Another connection reads from the file what was answered Ok, and nothing else.
        let other = Connection::open(dir.path().join("server.db")).unwrap();
        let mut stmt = other
            .prepare("SELECT nonce FROM nonces ORDER BY nonce")
            .unwrap();
        let nonces: Vec<Vec<u8>> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(nonces, vec![nonce(1).to_vec(), nonce(3).to_vec()]);
        // The panic did not wedge the store.
        s.commit_registration(&reg_of(4, nonce(4), 1)).unwrap();
        assert_eq!(s.counts().unwrap().nonces, 3);
    }

    #[test]
    fn a_failed_commit_answers_every_write_of_its_batch_with_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(file_store(&dir, true));
        // A deferred foreign key: violated by a write, checked only at COMMIT.
        let (release, held) = hold_writer(
            &s,
            "CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TEMP TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        );
        let mut threads = Vec::new();
        for i in 0..3u32 {
            let s2 = s.clone();
            threads.push(thread::spawn(move || {
                if i == 1 {
                    s2.write(false, Result::is_ok, |conn| {
                        conn.execute("INSERT INTO child VALUES (1)", [])?;
                        Ok::<(), StoreError>(())
                    })
                    .map_err(CommitError::from)
                } else {
                    s2.commit_registration(&reg_of(i, nonce(i), 1))
                }
            }));
            wait_submitted(&s, 2 + u64::from(i));
        }
        drop(release);
        held.join().unwrap();
        for t in threads {
            let r = t.join().unwrap();
            assert!(
                matches!(&r, Err(CommitError::Store(StoreError::Db(e))) if e.to_string().contains("FOREIGN KEY")),
                "{r:?}"
            );
        }
        // None is durable, and the writer goes on: the nonces were not burnt.
        assert_eq!(s.counts().unwrap().nonces, 0);
        s.commit_registration(&reg_of(0, nonce(0), 1)).unwrap();
        s.commit_registration(&reg_of(2, nonce(2), 1)).unwrap();
    }

    /// 16 threads, rounds started together: of the registrations of one round (one nonce),
    /// one passes; of the messages of one round (one expected counter), one passes; and
    /// each thread reads its own writes at once.
    fn concurrent_writers_keep_the_invariants(group_commit: bool) {
        const ROUNDS: u32 = 8;
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(file_store(&dir, group_commit));
        s.commit_registration(&reg(200, 1, 9)).unwrap();
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS as u32)
            .map(|t| {
                let (s, barrier) = (s.clone(), barrier.clone());
                thread::spawn(move || {
                    let (mut registered, mut passed) = (0, 0);
                    for round in 0..ROUNDS {
                        barrier.wait();
                        let counter = round + 1;
                        if s.commit_registration(&reg_of(t, nonce(round), counter))
                            .is_ok()
                        {
                            registered += 1;
                        }
                        barrier.wait();
                        let m = msg(9, u64::from(round), t as u8);
                        if s.commit_message(&m).unwrap() {
                            passed += 1;
                            // Read-your-writes: nobody else can pass this round.
                            assert_eq!(s.last_answer(&[9; 16]).unwrap(), Some(m.answer));
                        }
                        assert!(
                            s.connection(&[9; 16]).unwrap().unwrap().up_counter > u64::from(round)
                        );
                    }
                    (registered, passed)
                })
            })
            .collect();
        let (mut registered, mut passed) = (0, 0);
        for t in threads {
            let (r, p) = t.join().unwrap();
            registered += r;
            passed += p;
        }
        assert_eq!((registered, passed), (ROUNDS, ROUNDS));
        let c = s.counts().unwrap();
        assert_eq!(
            (c.nonces, c.credentials),
            (u64::from(ROUNDS) + 1, u64::from(ROUNDS))
        );
        let l = s.commit_latency_snapshot();
        assert_eq!(l.writes, 1 + 2 * u64::from(ROUNDS) * THREADS as u64);
        assert!(l.p50 <= l.p95 && l.p95 <= l.p99 && l.p99 <= l.max, "{l:?}");
    }

    #[test]
    fn concurrent_writers_keep_the_invariants_with_group_commit() {
        concurrent_writers_keep_the_invariants(true);
    }

    #[test]
    fn concurrent_writers_keep_the_invariants_one_transaction_per_write() {
        concurrent_writers_keep_the_invariants(false);
    }

    #[test]
    fn an_answered_write_is_in_the_file_for_another_connection() {
        for group_commit in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let s = file_store(&dir, group_commit);
            assert_eq!(s.group_commit(), group_commit);
            s.commit_registration(&reg(1, 1, 9)).unwrap();
            assert!(s.commit_message(&msg(9, 0, 1)).unwrap());
            s.audit(&audit(AuditDecision::Malformed)).unwrap();
            // Read while the store is still open, through a connection of its own.
            let other = Connection::open(dir.path().join("server.db")).unwrap();
            let count = |sql: &str| other.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
            assert_eq!(count("SELECT COUNT(*) FROM nonces"), 1);
            assert_eq!(count("SELECT up_counter FROM connections"), 1);
            assert_eq!(count("SELECT COUNT(*) FROM audit"), 3);
            // The store closes, and the file opens again.
            drop(s);
            let s = file_store(&dir, group_commit);
            assert_eq!(s.counts().unwrap().audit, 3);
        }
    }

    #[test]
    fn pruning_runs_between_batches_and_truncates_the_wal() {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(file_store(&dir, true));
        s.commit_registration(&reg(1, 1, 9)).unwrap();
        let limits = PruneLimits {
            max_rows: 10,
            nonce_retention_secs: 0,
            audit_retention_secs: 1000,
        };
        let threads: Vec<_> = (0..THREADS as u32)
            .map(|t| {
                let s = s.clone();
                thread::spawn(move || s.commit_registration(&reg_of(t + 10, nonce(t + 10), 1)))
            })
            .collect();
        let r = s.prune(100, &limits).unwrap();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert_eq!(r.connections, 1);
        assert!(s.prune(100, &limits).unwrap().wal_truncated);
        let wal = std::fs::metadata(dir.path().join("server.db-wal")).unwrap();
        assert_eq!(wal.len(), 0);
    }

    #[test]
    fn latency_buckets_cover_every_value_once() {
        for i in 0..BUCKETS - 1 {
            assert_eq!(bucket(bucket_upper(i)), i);
            assert_eq!(bucket(bucket_upper(i) + 1), i + 1);
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        // At most 1/8 above the value.
        for v in [16u64, 17, 1000, 123_456, 9_999_999] {
            assert!(bucket_upper(bucket(v)) - v <= v / 8, "{v}");
        }
    }
}
