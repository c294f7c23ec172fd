//! Reads for WHOIS: a read-only connection and consistent snapshots of a
//! domain or a person with its sponsor's name and change date.
//!
//! Input: a domain name (lower-case ACE) or a handle (upper-case). Output:
//! [`WhoisDomain`] / [`WhoisPerson`] rows. Invariants: the connection is
//! opened read-only (`SQLITE_OPEN_READ_ONLY`), so the WHOIS server can never
//! write, migrate or take the write lock; each [`WhoisReader::snapshot`] runs
//! in one deferred read transaction, so every row of one answer comes from
//! the same committed state (WAL readers never block the writer, and the
//! writer never blocks them).

use super::reads::{load_domain, load_person};
use super::schema::CURRENT;
use super::{DomainRow, PersonRow, StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction};
use std::path::Path;
use std::time::Duration;

/// A domain as WHOIS shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoisDomain {
    /// The stored domain (status words, contacts, nameservers, dates).
    pub domain: DomainRow,
    /// Last change, RFC 3339.
    pub changed: String,
    /// The sponsoring registrar's name.
    pub registrar_name: String,
}

/// A person as stored, with the name of the registrar that created it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhoisPerson {
    /// Every stored field (the caller applies `whoishide*`).
    pub person: PersonRow,
    /// Last change, RFC 3339.
    pub changed: String,
    /// The creating registrar's name.
    pub registrar_name: String,
}

/// A read-only connection to the registry database.
#[derive(Debug)]
pub struct WhoisReader {
    conn: Connection,
}

/// One read transaction: every read sees the same committed state.
#[derive(Debug)]
pub struct WhoisSnapshot<'a> {
    tx: Transaction<'a>,
}

impl WhoisReader {
    /// Opens the database read-only; refuses a schema this build does not
    /// know (an older one is migrated by any other command, e.g. `init`).
    pub fn open(path: &Path, busy_timeout: Duration) -> StoreResult<WhoisReader> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(busy_timeout)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > CURRENT {
            return Err(StoreError::TooNew {
                found: version,
                supported: CURRENT,
            });
        }
        if version < CURRENT {
            return Err(StoreError::Corrupt(format!(
                "schema version {version}, this program needs {CURRENT}: run `regmail init` to migrate"
            )));
        }
        Ok(WhoisReader { conn })
    }

    /// Runs `f` in one read transaction (rolled back: nothing is written).
    pub fn snapshot<T>(
        &mut self,
        f: impl FnOnce(&WhoisSnapshot<'_>) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Deferred)?;
        let snapshot = WhoisSnapshot { tx };
        let value = f(&snapshot)?;
        snapshot.tx.rollback()?;
        Ok(value)
    }
}

impl WhoisSnapshot<'_> {
    fn registrar_name(&self, id: u32) -> StoreResult<String> {
        let name: Option<String> = self
            .tx
            .query_row("SELECT name FROM registrars WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()?;
        name.ok_or_else(|| StoreError::Corrupt(format!("no registrar {id}")))
    }

    /// The last change of an object: its `updated` column or its newest
    /// history row (a registry status flag, a lifecycle step), whichever is
    /// later. The stored instants share one format, so text order is time
    /// order.
    fn changed(&self, table: &str, key: &str, id: &str) -> StoreResult<String> {
        let sql = format!(
            "SELECT MAX(t) FROM (SELECT updated AS t FROM {table} WHERE {key} = ?1
               UNION ALL SELECT at FROM history WHERE object = ?1)"
        );
        let changed: Option<String> = self.tx.query_row(&sql, [id], |r| r.get(0))?;
        changed.ok_or_else(|| StoreError::Corrupt(format!("no change date for {id}")))
    }

    /// A domain (lower-case ACE name), with its last change and sponsor.
    pub fn domain(&self, name: &str) -> StoreResult<Option<WhoisDomain>> {
        let Some(domain) = load_domain(&self.tx, name)? else {
            return Ok(None);
        };
        let changed = self.changed("domains", "name", name)?;
        let registrar_name = self.registrar_name(domain.registrar_id)?;
        Ok(Some(WhoisDomain {
            domain,
            changed,
            registrar_name,
        }))
    }

    /// A person (upper-case handle), with its creator's name.
    pub fn person(&self, handle: &str) -> StoreResult<Option<WhoisPerson>> {
        let Some(person) = load_person(&self.tx, handle)? else {
            return Ok(None);
        };
        let registrar_name = self.registrar_name(person.registrar_id)?;
        let changed = self.changed("persons", "handle", handle)?;
        Ok(Some(WhoisPerson {
            person,
            changed,
            registrar_name,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn read_only_and_version_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let store = Store::open(&path, Duration::from_secs(1)).unwrap();
        let mut reader = WhoisReader::open(&path, Duration::from_secs(1)).unwrap();
        let found = reader.snapshot(|s| s.domain("nothing.at")).unwrap();
        assert_eq!(found, None);
        // The connection cannot write.
        let err = reader.conn.execute("DELETE FROM registrars", []);
        assert!(err.is_err());
        drop(store);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", CURRENT + 1)
            .unwrap();
        assert!(matches!(
            WhoisReader::open(&path, Duration::from_secs(1)),
            Err(StoreError::TooNew { .. })
        ));
    }
}
