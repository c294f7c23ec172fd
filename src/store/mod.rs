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
mod reads;
mod registry;
mod schema;
mod timeline;
mod whois;
mod zone;

pub use changes::{HistoryEntry, OpenPending, PendingRequest, ServerFlag};
pub use journal::{JournalEntry, JournalKind, OutboxMail, PriorTransaction, raw_digest};
pub use ledger::Movement;
pub use reads::{DomainFlags, DomainRow, PersonRow};
pub use registry::{CertRow, NewRegistrar, Refused, Registrar, RegistrarStatus};
pub use timeline::{Charge, Closing, LogEntry, QcRow, RequestRow};

use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use std::path::Path;
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

/// An open registry database.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

/// An open write transaction; dropped without [`Store::write`] returning Ok, it rolls back.
#[derive(Debug)]
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
}

impl Store {
    /// Opens (creating if needed) the database file and migrates it.
    pub fn open(path: &Path, busy_timeout: Duration) -> StoreResult<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(busy_timeout)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
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
        Ok(Store { conn })
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

    /// The schema version of the open database.
    pub fn schema_version(&self) -> StoreResult<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}
