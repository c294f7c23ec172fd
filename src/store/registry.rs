//! Registrars and their certificates, indexed by every key handle.

use super::{Store, StoreError, StoreResult, Tx};
use rusqlite::{OptionalExtension, params};

/// A registrar's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistrarStatus {
    /// May send templates.
    Active,
    /// Refused with 6002.
    Suspended,
}

impl RegistrarStatus {
    fn parse(s: &str) -> StoreResult<Self> {
        match s {
            "active" => Ok(RegistrarStatus::Active),
            "suspended" => Ok(RegistrarStatus::Suspended),
            other => Err(StoreError::Corrupt(format!("registrar status {other}"))),
        }
    }

    /// The stored word.
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrarStatus::Active => "active",
            RegistrarStatus::Suspended => "suspended",
        }
    }
}

/// A registered registrar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrar {
    /// The registrar-id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// The registered reply address.
    pub email: String,
    /// Standing.
    pub status: RegistrarStatus,
}

/// A stored certificate.
#[derive(Debug, Clone)]
pub struct CertRow {
    /// Owner.
    pub registrar_id: u32,
    /// Primary fingerprint.
    pub fingerprint: String,
    /// Binary certificate.
    pub cert: Vec<u8>,
    /// When it was registered (RFC 3339).
    pub added: String,
    /// When a rotation retires it (RFC 3339); refused from then on (4013).
    pub retire_at: Option<String>,
}

const CERT_COLUMNS: &str = "c.registrar_id, c.fingerprint, c.cert, c.added, c.retire_at";

fn cert_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CertRow> {
    Ok(CertRow {
        registrar_id: r.get(0)?,
        fingerprint: r.get(1)?,
        cert: r.get(2)?,
        added: r.get(3)?,
        retire_at: r.get(4)?,
    })
}

fn registrar_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(u32, String, String, String)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn to_registrar(
    (id, name, email, status): (u32, String, String, String),
) -> StoreResult<Registrar> {
    Ok(Registrar {
        id,
        name,
        email,
        status: RegistrarStatus::parse(&status)?,
    })
}

impl Store {
    /// Registers a registrar with its first certificate, atomically.
    pub fn register(
        &mut self,
        r: &NewRegistrar<'_>,
        now: &str,
    ) -> StoreResult<Result<(), Refused>> {
        self.write(|tx| {
            let taken = tx
                .tx
                .prepare_cached("SELECT 1 FROM registrars WHERE id = ?1")?
                .query_row([r.id], |_| Ok(()))
                .optional()?;
            if taken.is_some() {
                return Ok(Err(Refused::IdTaken));
            }
            if let Some(other) = cert_owner(tx, r.fingerprint)? {
                return Ok(Err(Refused::KeyOwnedBy(other)));
            }
            tx.tx
                .prepare_cached(
                    "INSERT INTO registrars (id, name, email, created) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![r.id, r.name, r.email, now])?;
            insert_cert(tx, r.id, r.fingerprint, r.cert, r.key_handles, now)?;
            Ok::<_, StoreError>(Ok(()))
        })
    }

    /// Adds a registrar; false if the id is taken.
    pub fn add_registrar(
        &mut self,
        id: u32,
        name: &str,
        email: &str,
        now: &str,
    ) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx.tx.prepare_cached(
                "INSERT OR IGNORE INTO registrars (id, name, email, created) VALUES (?1, ?2, ?3, ?4)")?.execute(params![id, name, email, now],
            )?;
            Ok::<_, StoreError>(n == 1)
        })
    }

    /// All registrars by id.
    pub fn registrars(&self) -> StoreResult<Vec<Registrar>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, name, email, status FROM registrars ORDER BY id")?;
        let rows = stmt
            .query_map([], registrar_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(to_registrar).collect()
    }

    /// One registrar.
    pub fn registrar(&self, id: u32) -> StoreResult<Option<Registrar>> {
        let row = self
            .conn
            .prepare_cached("SELECT id, name, email, status FROM registrars WHERE id = ?1")?
            .query_row([id], registrar_row)
            .optional()?;
        row.map(to_registrar).transpose()
    }

    /// The registrar whose registered address this is, if exactly one.
    pub fn registrar_by_email(&self, email: &str) -> StoreResult<Option<Registrar>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, name, email, status FROM registrars WHERE email = ?1 COLLATE NOCASE",
        )?;
        let rows = stmt
            .query_map([email], registrar_row)?
            .collect::<Result<Vec<_>, _>>()?;
        match <[_; 1]>::try_from(rows) {
            Ok([one]) => Ok(Some(to_registrar(one)?)),
            Err(_) => Ok(None),
        }
    }

    /// Sets a registrar's standing; false if unknown.
    pub fn set_registrar_status(&mut self, id: u32, status: RegistrarStatus) -> StoreResult<bool> {
        let n = self
            .conn
            .prepare_cached("UPDATE registrars SET status = ?2 WHERE id = ?1")?
            .execute(params![id, status.as_str()])?;
        Ok(n == 1)
    }

    /// Registers a certificate for a registrar; Err message if owned by another.
    pub fn add_certificate(
        &mut self,
        registrar_id: u32,
        fingerprint: &str,
        cert: &[u8],
        key_handles: &[String],
        now: &str,
    ) -> StoreResult<Result<(), u32>> {
        self.write(|tx| {
            if let Some(other) = cert_owner(tx, fingerprint)?.filter(|o| *o != registrar_id) {
                return Ok(Err(other));
            }
            insert_cert(tx, registrar_id, fingerprint, cert, key_handles, now)?;
            Ok::<_, StoreError>(Ok(()))
        })
    }

    /// Removes a registrar's certificate; false if it was not theirs.
    pub fn remove_certificate(
        &mut self,
        registrar_id: u32,
        fingerprint: &str,
    ) -> StoreResult<bool> {
        let n = self
            .conn
            .prepare_cached(
                "DELETE FROM certificates WHERE registrar_id = ?1 AND fingerprint = ?2",
            )?
            .execute(params![registrar_id, fingerprint])?;
        Ok(n == 1)
    }

    /// The certificates of a registrar, oldest first.
    pub fn certificates_of(&self, registrar_id: u32) -> StoreResult<Vec<CertRow>> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates c WHERE c.registrar_id = ?1
             ORDER BY c.added, c.fingerprint"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([registrar_id], cert_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The stored certificate with this primary fingerprint.
    pub fn certificate(&self, fingerprint: &str) -> StoreResult<Option<CertRow>> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates c WHERE c.fingerprint = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([fingerprint], cert_row)
            .optional()?)
    }

    /// Sets (or clears) when a registrar's certificate retires; false if not theirs.
    pub fn set_retire_at(
        &mut self,
        registrar_id: u32,
        fingerprint: &str,
        at: Option<&str>,
    ) -> StoreResult<bool> {
        let n = self.conn.prepare_cached(
            "UPDATE certificates SET retire_at = ?3 WHERE registrar_id = ?1 AND fingerprint = ?2")?.execute(params![registrar_id, fingerprint, at],
        )?;
        Ok(n == 1)
    }

    /// The certificates holding any of these key handles (fingerprints or key IDs).
    pub fn certs_for_key_handles(&self, handles: &[String]) -> StoreResult<Vec<CertRow>> {
        let sql = format!(
            "SELECT DISTINCT {CERT_COLUMNS} FROM cert_keys k
             JOIN certificates c ON c.fingerprint = k.fingerprint WHERE k.key_handle = ?1"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut out: Vec<CertRow> = Vec::new();
        for h in handles {
            let rows = stmt.query_map([h.to_ascii_uppercase()], cert_row)?;
            for row in rows {
                let row = row?;
                if !out.iter().any(|o| o.fingerprint == row.fingerprint) {
                    out.push(row);
                }
            }
        }
        Ok(out)
    }
}

/// A registrar to register with its first certificate.
#[derive(Debug, Clone, Copy)]
pub struct NewRegistrar<'a> {
    /// registrar-id.
    pub id: u32,
    /// Name.
    pub name: &'a str,
    /// Registered reply address.
    pub email: &'a str,
    /// Certificate fingerprint.
    pub fingerprint: &'a str,
    /// Binary certificate.
    pub cert: &'a [u8],
    /// Every key's fingerprint and key ID.
    pub key_handles: &'a [String],
}

/// Why a registration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The registrar-id exists.
    IdTaken,
    /// The certificate belongs to another registrar.
    KeyOwnedBy(u32),
}

fn cert_owner(tx: &Tx<'_>, fingerprint: &str) -> StoreResult<Option<u32>> {
    Ok(tx
        .tx
        .prepare_cached("SELECT registrar_id FROM certificates WHERE fingerprint = ?1")?
        .query_row([fingerprint], |r| r.get(0))
        .optional()?)
}

fn insert_cert(
    tx: &Tx<'_>,
    registrar_id: u32,
    fingerprint: &str,
    cert: &[u8],
    handles: &[String],
    now: &str,
) -> StoreResult<()> {
    tx.tx.prepare_cached(
        "INSERT INTO certificates (fingerprint, registrar_id, cert, added) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (fingerprint) DO UPDATE SET cert = excluded.cert")?.execute(params![fingerprint, registrar_id, cert, now],
    )?;
    for handle in handles {
        tx.tx
            .prepare_cached(
                "INSERT OR IGNORE INTO cert_keys (key_handle, fingerprint) VALUES (?1, ?2)",
            )?
            .execute(params![handle, fingerprint])?;
    }
    Ok(())
}

impl Tx<'_> {
    /// Every certificate not being rotated out (key-expiry warnings).
    pub fn live_certificates(&self) -> StoreResult<Vec<CertRow>> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates c WHERE c.retire_at IS NULL
             ORDER BY c.registrar_id, c.fingerprint"
        );
        let mut stmt = self.tx.prepare(&sql)?;
        let rows = stmt.query_map([], cert_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Whether this key's expiry at `expires` was warned of already.
    pub fn key_warned(&self, fingerprint: &str, expires: &str) -> StoreResult<bool> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM key_warnings WHERE fingerprint = ?1 AND expires = ?2")?
            .query_row(params![fingerprint, expires], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Records a key-expiry warning.
    pub fn record_key_warning(
        &mut self,
        fingerprint: &str,
        expires: &str,
        warned: &str,
        server_trid: &str,
    ) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO key_warnings (fingerprint, expires, warned, server_trid)
             VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![fingerprint, expires, warned, server_trid])?;
        Ok(())
    }

    /// The registrar's standing inside a transaction.
    pub fn registrar_status(&self, id: u32) -> StoreResult<Option<RegistrarStatus>> {
        let s: Option<String> = self
            .tx
            .prepare_cached("SELECT status FROM registrars WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?;
        s.map(|s| RegistrarStatus::parse(&s)).transpose()
    }
}
