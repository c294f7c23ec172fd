//! Schema migrations: an ordered list; `PRAGMA user_version` records how many ran.
//!
//! Invariant: migration N runs inside the same transaction that sets
//! `user_version = N`, so a crash leaves the schema at N-1 or N, never between.

use super::{StoreError, StoreResult};
use rusqlite::Connection;

/// The migrations, oldest first. Never edit one that has shipped; append.
const MIGRATIONS: &[&str] = &[
    // 1: the core pipeline.
    r#"
    CREATE TABLE sequences (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO sequences (name, value) VALUES ('server_trid', 0), ('handle', 1000);

    CREATE TABLE registrars (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        email TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
        created TEXT NOT NULL
    );
    CREATE INDEX registrars_email ON registrars (email COLLATE NOCASE);

    CREATE TABLE certificates (
        fingerprint TEXT PRIMARY KEY,
        registrar_id INTEGER NOT NULL REFERENCES registrars (id),
        cert BLOB NOT NULL,
        added TEXT NOT NULL
    );
    CREATE TABLE cert_keys (
        key_handle TEXT NOT NULL,
        fingerprint TEXT NOT NULL REFERENCES certificates (fingerprint) ON DELETE CASCADE,
        PRIMARY KEY (key_handle, fingerprint)
    );

    CREATE TABLE persons (
        handle TEXT PRIMARY KEY,
        registrar_id INTEGER NOT NULL REFERENCES registrars (id),
        type TEXT NOT NULL,
        personname TEXT,
        organization TEXT,
        street TEXT NOT NULL,
        postal_code TEXT NOT NULL,
        city TEXT NOT NULL,
        country TEXT NOT NULL,
        phone TEXT NOT NULL,
        fax TEXT,
        email TEXT NOT NULL,
        hide_phone INTEGER NOT NULL DEFAULT 0,
        hide_fax INTEGER NOT NULL DEFAULT 0,
        hide_email INTEGER NOT NULL DEFAULT 0,
        remarks TEXT NOT NULL DEFAULT '',
        created TEXT NOT NULL,
        updated TEXT NOT NULL
    );

    CREATE TABLE domains (
        name TEXT PRIMARY KEY,
        registrar_id INTEGER NOT NULL REFERENCES registrars (id),
        created TEXT NOT NULL,
        expires TEXT NOT NULL,
        updated TEXT NOT NULL,
        client_hold INTEGER NOT NULL DEFAULT 0,
        client_lock INTEGER NOT NULL DEFAULT 0,
        server_hold INTEGER NOT NULL DEFAULT 0,
        server_lock INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE domain_contacts (
        domain TEXT NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('registrant', 'admin-c', 'tech-c', 'zone-c')),
        pos INTEGER NOT NULL,
        handle TEXT NOT NULL REFERENCES persons (handle),
        PRIMARY KEY (domain, role, pos)
    );
    CREATE INDEX domain_contacts_handle ON domain_contacts (handle);

    CREATE TABLE hosts (name TEXT PRIMARY KEY, created TEXT NOT NULL);
    CREATE TABLE host_addresses (
        host TEXT NOT NULL REFERENCES hosts (name) ON DELETE CASCADE,
        pos INTEGER NOT NULL,
        address TEXT NOT NULL,
        PRIMARY KEY (host, pos)
    );
    CREATE TABLE domain_hosts (
        domain TEXT NOT NULL REFERENCES domains (name) ON DELETE CASCADE,
        pos INTEGER NOT NULL,
        host TEXT NOT NULL REFERENCES hosts (name),
        PRIMARY KEY (domain, pos)
    );
    CREATE INDEX domain_hosts_host ON domain_hosts (host);

    CREATE TABLE journal (
        server_trid TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('transaction', 'replayed', 'answered', 'dropped')),
        received TEXT NOT NULL,
        processed TEXT NOT NULL,
        registrar_id INTEGER,
        signer TEXT,
        client_trid TEXT,
        text_sha256 TEXT,
        transaction_name TEXT,
        object TEXT,
        result TEXT NOT NULL,
        codes TEXT NOT NULL,
        message_id TEXT,
        raw_mail BLOB NOT NULL,
        reply BLOB
    );
    CREATE UNIQUE INDEX journal_client_trid ON journal (registrar_id, client_trid)
        WHERE kind = 'transaction';

    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        server_trid TEXT NOT NULL,
        recipient TEXT NOT NULL,
        created TEXT NOT NULL,
        message BLOB NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt TEXT NOT NULL,
        delivered TEXT,
        last_error TEXT
    );
    CREATE INDEX outbox_undelivered ON outbox (next_attempt) WHERE delivered IS NULL;
    "#,
];

/// The newest schema version this build knows.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`CURRENT`], one transaction per migration.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > CURRENT {
            return Err(StoreError::TooNew {
                found: version,
                supported: CURRENT,
            });
        }
        let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            return Ok(());
        };
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}
