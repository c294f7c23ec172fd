//! Store: the registry's SQLite database. All SQL of the product lives here.
//!
//! Input: typed, verified specs from `template`/`policy`, journal and outbox
//! rows from the pipeline, the lifecycle's rows (`timeline`: requests, tokens,
//! redemption, refunds, quality control, the lifecycle log). Output: rows,
//! and the deterministic text dump used
//! by golden tests. Invariants: the schema is versioned (`PRAGMA user_version`)
//! and every migration runs inside one transaction; the database runs in WAL
//! mode with a busy timeout; a template's change, its journal row and its
//! outgoing mails are written in ONE `BEGIN IMMEDIATE` transaction ([`Store::write`]).

mod changes;
mod journal;
mod ledger;
mod objects;
mod outbox;
mod reads;
mod registry;
mod schema;
mod seed;
mod timeline;
mod whois;
mod zone;

pub use changes::{HistoryEntry, OpenPending, PendingRequest, ServerFlag};
pub use journal::{JournalEntry, JournalKind, PriorTransaction, raw_digest, text_digest};
pub use ledger::Movement;
pub use outbox::{OutboxMail, Settlement};
pub use reads::{DomainFlags, DomainRow, PersonRow};
pub use registry::{CertRow, NewRegistrar, Refused, Registrar, RegistrarStatus};
pub use seed::Seed;
pub use timeline::{Charge, Closing, LogEntry, QcRow, RequestRow};
pub use whois::{WhoisDomain, WhoisPerson, WhoisReader, WhoisSnapshot};
pub use zone::{ZoneDomain, ZoneHost, ZoneSerialRow};

use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A fault of the store: never the user's mistake; the caller exits 75.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database stayed locked past the busy timeout.
    #[error("database busy past the timeout")]
    Busy,
    /// Any other SQLite failure (I/O, disk full, read-only, corruption).
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    /// The database was written by a newer regmail.
    #[error("database schema version {found} is newer than this program ({supported})")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// Stored data that cannot be read back (a bug or tampering).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The database's files outside SQLite (syncing the WAL).
    #[error("database file: {0}")]
    File(std::io::Error),
    /// A unit of a group commit not run: an earlier unit failed, and the
    /// group is rolled back and applied again ([`Store::write_group`]).
    #[error("not run: the group is applied again")]
    Skipped,
    /// A unit of a group commit not run, or not ended: a savepoint failed,
    /// and the whole group is rolled back; [`Store::write_group`] returns
    /// the savepoint's own error.
    #[error("not run: a savepoint failed and the group is rolled back")]
    Abandoned,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => StoreError::Busy,
            _ => StoreError::Sqlite(e),
        }
    }
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Prepared statements kept per connection: every statement of a mail's
/// path stays prepared across mails.
const STATEMENT_CACHE: usize = 256;

/// An open registry database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// Commits do not wait for the disk ([`Store::defer_sync`]).
    deferred: bool,
}

/// An open write transaction; dropped without [`Store::write`] returning Ok, it rolls back.
#[derive(Debug)]
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
}

/// SQLite's default `wal_autocheckpoint`, in pages.
const WAL_AUTOCHECKPOINT: u32 = 1000;

/// A connection that only copies committed WAL frames into the database
/// file ([`Store::checkpointer`]). It never writes rows, so it cannot
/// break a transaction; a checkpoint it cannot finish (a reader still on
/// old frames) is simply continued by the next one.
#[derive(Debug)]
pub struct Checkpointer {
    conn: Connection,
    /// The database's write-ahead log.
    wal: PathBuf,
}

impl Checkpointer {
    /// A passive checkpoint: copies what it can without waiting for the
    /// writer or readers (`synchronous=FULL`: synced before and after).
    pub fn passive(&self) -> StoreResult<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(StoreError::from)
    }

    /// What syncs this database's WAL, for another thread.
    pub fn wal_sync(&self) -> WalSync {
        WalSync {
            wal: self.wal.clone(),
        }
    }
}

/// Syncs a database's write-ahead log ([`Checkpointer::wal_sync`]).
#[derive(Debug, Clone)]
pub struct WalSync {
    wal: PathBuf,
}

impl WalSync {
    /// Makes every transaction committed so far durable: syncs the WAL
    /// file, whatever connection wrote it (fdatasync reaches the file, not
    /// the descriptor). Pairs with [`Store::defer_sync`].
    pub fn sync(&self) -> StoreResult<()> {
        std::fs::OpenOptions::new()
            .write(true)
            .open(&self.wal)
            .and_then(|f| f.sync_data())
            .map_err(StoreError::File)
    }
}

/// A group commit in progress ([`Store::write_group`]).
#[derive(Debug)]
pub struct Group<'a> {
    tx: Tx<'a>,
    /// A savepoint could not be set, released or rolled back (its error):
    /// the whole group is rolled back, whatever the units returned.
    broken: Option<StoreError>,
    /// Each unit in a savepoint of its own (the second attempt); without,
    /// a failed unit spoils the attempt instead.
    careful: bool,
    /// A unit failed without a savepoint: this attempt is rolled back and
    /// the group applied again, carefully.
    spoiled: bool,
}

impl Group<'_> {
    /// Runs `f` as one atomic unit of the group: kept if it returns Ok,
    /// rolled back alone (the rest of the group stands) if it returns Err.
    /// The first attempt at a group runs its units without savepoints
    /// (saving each unit's copies of the pages it changes); a unit that
    /// fails there makes [`Store::write_group`] roll the attempt back and
    /// apply the group again, each unit in a savepoint, so that only the
    /// failed unit is left out.
    pub fn unit<T, E>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        if self.broken.is_some() {
            return Err(StoreError::Abandoned.into());
        }
        if self.spoiled {
            return Err(StoreError::Skipped.into());
        }
        if !self.careful {
            let value = f(&mut self.tx);
            self.spoiled = value.is_err();
            return value;
        }
        self.savepoint(&["SAVEPOINT unit"])?;
        let value = f(&mut self.tx);
        let end: &[&str] = if value.is_ok() {
            &["RELEASE unit"]
        } else {
            &["ROLLBACK TO unit", "RELEASE unit"]
        };
        self.savepoint(end)?;
        value
    }

    /// Whether this is the second, careful attempt at the group (the first
    /// was rolled back because a unit failed).
    pub fn again(&self) -> bool {
        self.careful
    }

    /// Runs savepoint statements (prepared once per connection).
    fn savepoint(&mut self, statements: &[&str]) -> Result<(), StoreError> {
        let run = |sql: &str| -> rusqlite::Result<()> {
            self.tx.tx.prepare_cached(sql)?.execute([]).map(drop)
        };
        statements.iter().try_for_each(|sql| run(sql)).map_err(|e| {
            self.broken = Some(StoreError::from(e));
            StoreError::Abandoned
        })
    }
}

impl Store {
    /// Opens (creating if needed) the database file and migrates it.
    pub fn open(path: &Path, busy_timeout: Duration) -> StoreResult<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Savepoint and statement journals in memory: they only serve a
        // rollback inside an open transaction, never recovery, and on disk
        // every unit of a group commit wrote its pages to a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Self::migrated(conn)
    }

    /// An in-memory database (tests, fuzzing, `check`).
    pub fn open_in_memory() -> StoreResult<Store> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Self::migrated(conn)
    }

    fn migrated(mut conn: Connection) -> StoreResult<Store> {
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn,
            deferred: false,
        })
    }

    /// Runs `f` in one IMMEDIATE transaction and commits only if it returns Ok.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let mut tx = Tx { tx };
        let value = f(&mut tx)?;
        tx.tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    /// [`Store::write`] without waiting for the disk at the commit
    /// (`synchronous=NORMAL` for this one commit): for bookkeeping whose loss
    /// in a power failure only repeats work, such as marking mails delivered
    /// (the mail is then sent again). A later durable commit makes it
    /// durable too.
    pub fn write_relaxed<T, E>(
        &mut self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let relax = |conn: &Connection, level: &str| {
            conn.pragma_update(None, "synchronous", level)
                .map_err(StoreError::from)
        };
        if self.deferred {
            return self.write(f);
        }
        relax(&self.conn, "NORMAL")?;
        let value = self.write(f);
        relax(&self.conn, "FULL")?;
        value
    }

    /// Stops (`true`) or resumes (`false`) waiting for the disk at each
    /// commit of this connection (`synchronous=NORMAL`, still atomic and
    /// consistent): while deferred, a commit is durable only once a
    /// [`WalSync::sync`] that started after it returned, and
    /// nothing that depends on it may leave before (a batch's courier).
    pub fn defer_sync(&mut self, on: bool) -> StoreResult<()> {
        let level = if on { "NORMAL" } else { "FULL" };
        self.conn.pragma_update(None, "synchronous", level)?;
        self.deferred = on;
        Ok(())
    }

    /// Runs `f` in one IMMEDIATE transaction holding several independently
    /// atomic units ([`Group::unit`]) and commits once: a group commit. A
    /// unit whose closure fails is rolled back alone: `f` then runs a
    /// second time, in a new transaction, after the first was rolled back
    /// ([`Group::again`]); only that run's value and writes count.
    pub fn write_group<T>(&mut self, mut f: impl FnMut(&mut Group<'_>) -> T) -> StoreResult<T> {
        match self.group_attempt(false, &mut f)? {
            Some(value) => Ok(value),
            None => self
                .group_attempt(true, &mut f)?
                .ok_or_else(|| StoreError::Corrupt("a careful group spoiled".into())),
        }
    }

    /// One attempt at a group: its value if committed, `None` if a unit
    /// failed without a savepoint (everything rolled back).
    fn group_attempt<T>(
        &mut self,
        careful: bool,
        f: &mut impl FnMut(&mut Group<'_>) -> T,
    ) -> StoreResult<Option<T>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut group = Group {
            tx: Tx { tx },
            broken: None,
            careful,
            spoiled: false,
        };
        let value = f(&mut group);
        if let Some(e) = group.broken {
            // Dropping the transaction rolls every unit back.
            return Err(e);
        }
        if group.spoiled {
            return Ok(None);
        }
        group.tx.tx.commit()?;
        Ok(Some(value))
    }

    /// Stops (`false`) or resumes (`true`, SQLite's default of 1,000 pages)
    /// the checkpoints this connection runs after its commits; while they
    /// are stopped, a [`Checkpointer`] keeps the WAL short.
    pub fn auto_checkpoint(&self, on: bool) -> StoreResult<()> {
        let pages = if on { WAL_AUTOCHECKPOINT } else { 0 };
        self.conn
            .pragma_update(None, "wal_autocheckpoint", pages)
            .map_err(StoreError::from)
    }

    /// A connection that checkpoints the WAL from another thread (a batch:
    /// the writing thread then only appends); `None` for an in-memory
    /// database.
    pub fn checkpointer(&self, busy_timeout: Duration) -> StoreResult<Option<Checkpointer>> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE;
        let Some(conn) = self.second_connection(flags, busy_timeout)? else {
            return Ok(None);
        };
        conn.pragma_update(None, "synchronous", "FULL")?;
        let wal = PathBuf::from(format!("{}-wal", conn.path().unwrap_or_default()));
        Ok(Some(Checkpointer { conn, wal }))
    }

    /// A second connection to the same database file for reading on another
    /// thread; `None` for an in-memory database.
    pub fn reader(&self, busy_timeout: Duration) -> StoreResult<Option<Store>> {
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
        let Some(conn) = self.second_connection(flags, busy_timeout)? else {
            return Ok(None);
        };
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Some(Store {
            conn,
            deferred: false,
        }))
    }

    /// Another connection to this database file, for one other thread;
    /// `None` for an in-memory database.
    fn second_connection(
        &self,
        flags: rusqlite::OpenFlags,
        busy_timeout: Duration,
    ) -> StoreResult<Option<Connection>> {
        let Some(path) = self.conn.path().filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let flags = flags | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(busy_timeout)?;
        Ok(Some(conn))
    }

    /// Runs `f` in a transaction that is always rolled back (dry runs, `check`).
    pub fn simulate<T, E>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)
            .map_err(StoreError::from)?;
        let mut tx = Tx { tx };
        let value = f(&mut tx)?;
        tx.tx.rollback().map_err(StoreError::from)?;
        Ok(value)
    }

    /// Calls `f` with every statement this connection runs (diagnostics;
    /// the query-plan test); `None` stops it.
    pub fn trace_statements(&self, f: Option<fn(rusqlite::trace::TraceEvent<'_>)>) {
        self.conn
            .trace_v2(rusqlite::trace::TraceEventCodes::SQLITE_TRACE_STMT, f);
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> StoreResult<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-22T08:15:00.000Z";

    fn synchronous(store: &Store) -> i64 {
        store
            .conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    /// Deferred commits stay deferred through a relaxed write, and
    /// durable commits come back after; the checkpointer syncs the WAL.
    #[test]
    fn deferred_sync_is_undone_and_the_wal_can_be_synced() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("r.sqlite"), Duration::from_secs(1)).unwrap();
        let (normal, full) = (1, 2);
        assert_eq!(synchronous(&store), full);
        store.defer_sync(true).unwrap();
        store
            .write_relaxed(|tx| tx.outbox_settle(&[], NOW))
            .unwrap();
        assert_eq!(
            synchronous(&store),
            normal,
            "a relaxed write keeps the deferral"
        );
        let checkpointer = store.checkpointer(Duration::from_secs(1)).unwrap().unwrap();
        checkpointer.wal_sync().sync().unwrap();
        store.defer_sync(false).unwrap();
        assert_eq!(synchronous(&store), full);
        store
            .write_relaxed(|tx| tx.outbox_settle(&[], NOW))
            .unwrap();
        assert_eq!(synchronous(&store), full, "a relaxed write restores FULL");
        // A checkpointer whose WAL is gone says so: a fault, not a success.
        let gone = Checkpointer {
            wal: dir.path().join("missing-wal"),
            ..checkpointer
        };
        assert!(matches!(gone.wal_sync().sync(), Err(StoreError::File(_))));
    }

    /// A unit that fails is rolled back alone; the units around it are
    /// committed with the group. The group is applied twice then (first
    /// without savepoints), and once when no unit fails.
    #[test]
    fn a_failed_unit_rolls_back_alone() {
        let mut store = Store::open_in_memory().unwrap();
        let mut attempts = Vec::new();
        let results = store
            .write_group(|g| {
                attempts.push(g.again());
                let mut queued = Vec::new();
                for (i, fail) in [false, true, false].into_iter().enumerate() {
                    queued.push(g.unit(|tx| {
                        let id =
                            tx.queue_mail(&format!("RM{i}"), "a@example.test", b"mail", NOW)?;
                        if fail {
                            return Err(StoreError::Corrupt("this unit fails".into()));
                        }
                        Ok(id)
                    }));
                }
                queued
            })
            .unwrap();
        assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
        assert_eq!(attempts, [false, true]);
        let mut again = Vec::new();
        store
            .write_group(|g| {
                again.push(g.again());
                g.unit(|tx| tx.queue_mail("RM3", "a@example.test", b"mail", NOW))
            })
            .unwrap()
            .unwrap();
        assert_eq!(again, [false], "a group without a failed unit runs once");
        let trids: Vec<String> = store
            .outbox_all()
            .unwrap()
            .into_iter()
            .map(|m| m.server_trid)
            .collect();
        assert_eq!(trids, ["RM0", "RM2", "RM3"]);
    }

    /// A savepoint that cannot be ended abandons the group: the later units
    /// are not run, nothing is committed, and `write_group` returns the
    /// savepoint's own error (SQLite's), not a text made of it.
    #[test]
    fn a_broken_savepoint_abandons_the_group() {
        let mut store = Store::open_in_memory().unwrap();
        let mut later = Vec::new();
        let result = store.write_group(|g| {
            // The first attempt fails a unit, so the group runs carefully.
            let careful = g.again();
            let _ = g.unit(|tx| -> StoreResult<()> {
                tx.queue_mail("RM0", "a@example.test", b"mail", NOW)?;
                match careful {
                    true => Ok(()),
                    false => Err(StoreError::Corrupt("fails once".into())),
                }
            });
            // Releasing the unit's savepoint from inside makes the store's
            // own RELEASE fail.
            let _ = g.unit(|tx| {
                tx.tx
                    .execute_batch("RELEASE unit")
                    .map_err(StoreError::from)
            });
            later.push(g.unit(|tx| tx.queue_mail("RM2", "a@example.test", b"mail", NOW)));
        });
        assert!(
            matches!(result, Err(StoreError::Sqlite(_))),
            "the savepoint's error: {result:?}"
        );
        assert!(matches!(later.last(), Some(Err(StoreError::Abandoned))));
        assert!(store.outbox_all().unwrap().is_empty(), "nothing committed");
    }
}
