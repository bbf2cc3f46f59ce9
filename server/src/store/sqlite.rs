//! The embedded store: SQLite in WAL mode, one connection behind a mutex.

use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, OptionalExtension, TransactionBehavior};
use zeroize::Zeroizing;

use super::*;

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

/// SQLite in WAL mode; one connection behind a mutex (every method is one transaction).
pub struct SqliteStore {
    conn: Mutex<rusqlite::Connection>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SqliteStore")
    }
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|_| StoreError::Corrupt(format!("{v} does not fit a database integer")))
}

fn to_u64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative value {v}")))
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and its schema, with
    /// [`Durability::Full`].
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens the database at `path` with the given durability.
    pub fn open_with(path: &Path, durability: Durability) -> Result<SqliteStore, StoreError> {
        let conn = rusqlite::Connection::open(path)?;
        Self::setup(conn, durability)
    }

    /// A private in-memory database (tests).
    pub fn in_memory() -> Result<SqliteStore, StoreError> {
        Self::setup(rusqlite::Connection::open_in_memory()?, Durability::Full)
    }

    fn setup(
        conn: rusqlite::Connection,
        durability: Durability,
    ) -> Result<SqliteStore, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
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
        // Deleted rows (a connection's keys) are overwritten with zeros, not left in free
        // space; per connection, so on every open.
        let secure: i64 = conn.query_row("PRAGMA secure_delete = ON", [], |r| r.get(0))?;
        if secure != 1 {
            return Err(StoreError::Corrupt(format!(
                "SQLite refused secure_delete (it answers {secure})"
            )));
        }
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
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        f(&mut guard)
    }
}

fn insert_audit(tx: &rusqlite::Connection, e: &AuditEntry) -> Result<(), StoreError> {
    tx.execute(
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
        let mut stmt = tx.prepare(select)?;
        let rows = stmt.query_map(params, |r| r.get::<_, Vec<u8>>(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let (mut connections, mut answers) = (0u64, 0u64);
    for cid in &cids {
        answers += tx.execute("DELETE FROM last_answers WHERE cid = ?1", params![cid])? as u64;
        connections += tx.execute("DELETE FROM connections WHERE cid = ?1", params![cid])? as u64;
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

impl Store for SqliteStore {
    fn commit_registration(&self, reg: &NewRegistration) -> Result<(), CommitError> {
        let mut guard = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        let tx = guard
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        match tx.execute(
            "INSERT INTO nonces (nonce, seen_at) VALUES (?1, ?2)",
            params![&reg.nonce[..], to_i64(reg.audit.time)?],
        ) {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Err(CommitError::ReplayedNonce),
            Err(e) => return Err(StoreError::from(e).into()),
        }
        let last: Option<i64> = tx
            .query_row(
                "SELECT last_counter FROM registration_counters WHERE subject = ?1",
                params![&reg.subject_id[..]],
                |r| r.get(0),
            )
            .optional()
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
        tx.execute(
            "INSERT INTO registration_counters (subject, last_counter) VALUES (?1, ?2)
             ON CONFLICT(subject) DO UPDATE SET last_counter = excluded.last_counter",
            params![&reg.subject_id[..], i64::from(reg.counter)],
        )
        .map_err(StoreError::from)?;
        if let Some(c) = &reg.connection {
            delete_connections(
                &tx,
                "SELECT cid FROM connections WHERE subject = ?1 AND service = ?2 AND cid <> ?3",
                params![c.subject, c.service, &c.cid[..]],
            )
            .map_err(StoreError::from)?;
            tx.execute(
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
        insert_audit(&tx, &reg.audit)?;
        tx.commit().map_err(StoreError::from)?;
        Ok(())
    }

    fn connection(&self, cid: &[u8; 16]) -> Result<Option<ConnectionRecord>, StoreError> {
        self.with(|conn| {
            let row = conn
                .query_row(
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
                )
                .optional()?;
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
        self.with(|conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = tx.execute(
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
                tx.execute(
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
            tx.execute(
                "INSERT OR REPLACE INTO last_answers (cid, up_sha256, down) VALUES (?1, ?2, ?3)",
                params![&msg.cid[..], &msg.answer.up_sha256[..], &msg.answer.down[..]],
            )?;
            insert_audit(&tx, &msg.audit)?;
            tx.commit()?;
            Ok(true)
        })
    }

    fn last_answer(&self, cid: &[u8; 16]) -> Result<Option<LastAnswer>, StoreError> {
        self.with(|conn| {
            let row = conn
                .query_row(
                    "SELECT up_sha256, down FROM last_answers WHERE cid = ?1",
                    params![&cid[..]],
                    |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)),
                )
                .optional()?;
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
        self.with(|conn| insert_audit(conn, entry))
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
        let max = to_i64(limits.max_rows)?;
        let nonce_cutoff = to_i64(now.saturating_sub(limits.nonce_retention_secs))?;
        let audit_cutoff = to_i64(now.saturating_sub(limits.audit_retention_secs))?;
        self.with(|conn| {
            let mut report = PruneReport::default();
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
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
            // what replaced connections left since the last run.
            let (busy, _, _): (i64, i64, i64) =
                conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?;
            report.wal_truncated = busy == 0;
            Ok(report)
        })
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
    fn replayed_nonce_and_stale_counter_commit_nothing() {
        let s = SqliteStore::in_memory().unwrap();
        s.commit_registration(&reg(1, 5, 1)).unwrap();
        assert!(matches!(
            s.commit_registration(&reg(1, 6, 2)),
            Err(CommitError::ReplayedNonce)
        ));
        assert!(matches!(
            s.commit_registration(&reg(2, 5, 3)),
            Err(CommitError::StaleCounter { got: 5, last: 5 })
        ));
        let c = s.counts().unwrap();
        assert_eq!((c.nonces, c.connections, c.audit), (1, 1, 1));
        // The next counter registers, and its connection replaces the first (same subject,
        // same service).
        s.commit_registration(&reg(3, 6, 4)).unwrap();
        assert_eq!(s.counts().unwrap().connections, 1);
        assert!(s.connection(&[1; 16]).unwrap().is_none());
        assert!(s.connection(&[4; 16]).unwrap().is_some());
    }

    #[test]
    fn counters_advance_by_compare_and_set_only() {
        let s = SqliteStore::in_memory().unwrap();
        s.commit_registration(&reg(1, 1, 9)).unwrap();
        let m = |expected_up| MessageCommit {
            cid: [9; 16],
            expected_up,
            new_up: expected_up + 1,
            new_down: expected_up + 1,
            new_state: Zeroizing::new(vec![8; 64]),
            credential: Some(IssuedCredential { sha256: [0; 32] }),
            answer: LastAnswer {
                up_sha256: [expected_up as u8; 32],
                down: vec![0x73, expected_up as u8],
            },
            audit: audit(AuditDecision::CallExecuted),
        };
        assert_eq!(s.last_answer(&[9; 16]).unwrap(), None);
        assert!(s.commit_message(&m(0)).unwrap());
        assert!(!s.commit_message(&m(0)).unwrap());
        // The refused compare-and-set left the first commit's answer.
        assert_eq!(s.last_answer(&[9; 16]).unwrap(), Some(m(0).answer));
        assert!(s.commit_message(&m(1)).unwrap());
        assert_eq!(s.last_answer(&[9; 16]).unwrap(), Some(m(1).answer));
        assert!(s.commit_message(&m(2)).is_ok());
        let c = s.connection(&[9; 16]).unwrap().unwrap();
        assert_eq!((c.up_counter, c.down_counter), (3, 3));
        assert_eq!(s.counts().unwrap().credentials, 3);
        assert!(!s.commit_message(&m(0)).unwrap());
        let c = s.connection(&[9; 16]).unwrap().unwrap();
        assert_eq!(c.scope, vec!["echo", "provision"]);
        assert!(s.connection(&[8; 16]).unwrap().is_none());
        let log = s.audit_log(10).unwrap();
        assert_eq!(log.last().unwrap().decision, AuditDecision::CallExecuted);
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
}
