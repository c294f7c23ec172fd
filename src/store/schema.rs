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
    // 2: the command set: history, pending requests, billing, domain lifecycle fields.
    r#"
    ALTER TABLE domains ADD COLUMN authinfo TEXT;
    ALTER TABLE domains ADD COLUMN billing TEXT NOT NULL DEFAULT 'registrar'
        CHECK (billing IN ('registrar', 'holder'));
    ALTER TABLE domains ADD COLUMN zone_delete INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE domains ADD COLUMN redemption_until TEXT;

    CREATE TABLE pending (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('transfer', 'update', 'delete', 'person-update')),
        object TEXT NOT NULL,
        registrar_id INTEGER NOT NULL REFERENCES registrars (id),
        other_registrar INTEGER REFERENCES registrars (id),
        server_trid TEXT NOT NULL,
        client_trid TEXT,
        requested TEXT NOT NULL,
        deadline TEXT NOT NULL,
        execute_at TEXT,
        mode TEXT,
        payload TEXT NOT NULL DEFAULT '',
        token_sha256 TEXT,
        state TEXT NOT NULL DEFAULT 'open'
            CHECK (state IN ('open', 'executed', 'rejected', 'expired', 'withdrawn')),
        closed TEXT
    );
    CREATE UNIQUE INDEX pending_open ON pending (object) WHERE state = 'open';

    CREATE TABLE history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        object TEXT NOT NULL,
        at TEXT NOT NULL,
        server_trid TEXT NOT NULL,
        client_trid TEXT,
        registrar_id INTEGER,
        action TEXT NOT NULL,
        before TEXT NOT NULL,
        after TEXT NOT NULL
    );
    CREATE INDEX history_object ON history (object, id);

    ALTER TABLE registrars ADD COLUMN credit_cents INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE ledger (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        registrar_id INTEGER NOT NULL REFERENCES registrars (id),
        at TEXT NOT NULL,
        server_trid TEXT,
        object TEXT,
        kind TEXT NOT NULL CHECK (kind IN ('credit', 'create', 'renew', 'transfer', 'restore', 'refund')),
        amount_cents INTEGER NOT NULL,
        balance_cents INTEGER NOT NULL
    );
    "#,
    // 3: the lifecycle engine (lifecycle.md): holder tokens, reminders,
    // outcomes, redemption and release, grace refunds, quality control, the
    // holders' bills and the lifecycle log. `pending.token_sha256` is
    // superseded by `tokens` (a request may have several live tokens:
    // the first mail's and each reminder's).
    r#"
    ALTER TABLE pending ADD COLUMN reminders INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE pending ADD COLUMN abort_at TEXT;
    ALTER TABLE pending ADD COLUMN outcome TEXT;
    ALTER TABLE pending ADD COLUMN closed_by TEXT;
    ALTER TABLE pending ADD COLUMN note TEXT;
    CREATE INDEX pending_server_trid ON pending (server_trid);
    CREATE INDEX pending_closed_by ON pending (closed_by) WHERE closed_by IS NOT NULL;
    CREATE INDEX pending_open_deadline ON pending (deadline) WHERE state = 'open';

    CREATE TABLE tokens (
        sha256 TEXT PRIMARY KEY,
        pending_id INTEGER NOT NULL REFERENCES pending (id),
        issued TEXT NOT NULL
    );
    -- The unguessable tag in a holder mail's Message-ID, so that a bounce
    -- of it can be told from a forged one.
    CREATE TABLE holder_mails (
        tag TEXT NOT NULL,
        pending_id INTEGER NOT NULL REFERENCES pending (id)
    );
    CREATE INDEX holder_mails_tag ON holder_mails (tag);
    ALTER TABLE outbox ADD COLUMN purge_on_delivery INTEGER NOT NULL DEFAULT 0;

    ALTER TABLE domains ADD COLUMN release_at TEXT;
    CREATE INDEX domains_expires ON domains (expires);
    CREATE INDEX domains_redemption ON domains (redemption_until) WHERE redemption_until IS NOT NULL;
    CREATE INDEX domains_release ON domains (release_at) WHERE release_at IS NOT NULL;

    ALTER TABLE ledger ADD COLUMN refund_of INTEGER REFERENCES ledger (id);
    CREATE INDEX ledger_object ON ledger (object, id);
    INSERT INTO sequences (name, value) VALUES ('creates', 0);

    CREATE TABLE qc (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        domain TEXT NOT NULL,
        registrar_id INTEGER NOT NULL REFERENCES registrars (id),
        server_trid TEXT NOT NULL,
        selected TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'selected'
            CHECK (state IN ('selected', 'correction', 'accepted', 'deleted')),
        reason TEXT,
        deadline TEXT,
        closed TEXT
    );
    CREATE UNIQUE INDEX qc_open ON qc (domain) WHERE state IN ('selected', 'correction');
    CREATE INDEX qc_deadline ON qc (deadline) WHERE state = 'correction';

    CREATE TABLE holder_bills (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        domain TEXT NOT NULL,
        holder TEXT NOT NULL,
        at TEXT NOT NULL,
        server_trid TEXT NOT NULL,
        years INTEGER NOT NULL,
        amount_cents INTEGER NOT NULL
    );

    CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        server_trid TEXT NOT NULL,
        object TEXT NOT NULL,
        event TEXT NOT NULL,
        actor TEXT NOT NULL,
        note TEXT
    );
    CREATE INDEX events_object ON events (object, id);
    "#,
    // 4: hardening. The raw mail's digest, so a mail the MTA delivers again
    // (after a crash, a kill or a lost exit status) is neither applied nor
    // answered twice; mails nobody asked for with a verified signature
    // (notices, answers to unsigned mail) are marked so a per-recipient
    // hourly cap can hold them back; key-expiry warnings are recorded once per key and
    // expiry; a rotated-out certificate keeps working until `retire_at`.
    r#"
    ALTER TABLE journal ADD COLUMN raw_sha256 TEXT;
    CREATE INDEX journal_raw_sha256 ON journal (raw_sha256) WHERE raw_sha256 IS NOT NULL;
    ALTER TABLE outbox ADD COLUMN capped INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX outbox_capped ON outbox (recipient, delivered) WHERE capped = 1;
    ALTER TABLE certificates ADD COLUMN retire_at TEXT;
    CREATE TABLE key_warnings (
        fingerprint TEXT NOT NULL,
        expires TEXT NOT NULL,
        warned TEXT NOT NULL,
        server_trid TEXT NOT NULL,
        PRIMARY KEY (fingerprint, expires)
    );
    "#,
    // 5: zone files. Per zone, the highest SOA serial ever handed out
    // (`issued`, taken before the file is written, so no serial is used
    // twice) and the last one whose file was written (`published`, with the
    // SHA-256 of that file's text without its serial): the serial moves only
    // when the content does.
    r#"
    CREATE TABLE zone_serials (
        zone TEXT PRIMARY KEY,
        issued INTEGER NOT NULL,
        published INTEGER,
        digest TEXT,
        published_at TEXT
    );
    "#,
    // 6: query plans (tests/plans.rs). The timer's and the transfer checks'
    // open requests walk only the open ones, in id order; a refund check
    // finds a charge's refund by index.
    r#"
    CREATE INDEX pending_open_id ON pending (id) WHERE state = 'open';
    CREATE INDEX ledger_refund_of ON ledger (refund_of) WHERE refund_of IS NOT NULL;
    "#,
    // 7: outgoing messages in a table of their own (decision 99): leasing
    // and settling a mail rewrite its short outbox row, not the page that
    // holds its message, so a group's settlements share a few pages.
    r#"
    CREATE TABLE outbox_messages (
        id INTEGER PRIMARY KEY REFERENCES outbox (id),
        message BLOB NOT NULL
    );
    INSERT INTO outbox_messages (id, message) SELECT id, message FROM outbox;
    ALTER TABLE outbox DROP COLUMN message;
    "#,
];

/// The newest schema version this build knows.
pub const CURRENT: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`CURRENT`], one transaction per migration.
pub fn migrate(conn: &mut Connection) -> StoreResult<()> {
    // The common case (already current) takes no write lock: parallel
    // `process` runs only read the version.
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == CURRENT {
        return Ok(());
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, CURRENT);
        conn.pragma_update(None, "user_version", CURRENT + 1)
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(StoreError::TooNew { .. })));
    }

    /// Version 7 moves every queued or delivered message, byte for byte,
    /// into `outbox_messages`, and `outbox` keeps no copy.
    #[test]
    fn messages_move_out_of_the_outbox_row() {
        let mut conn = Connection::open_in_memory().unwrap();
        for (v, sql) in MIGRATIONS.iter().enumerate().take(6) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", v + 1).unwrap();
        }
        conn.execute(
            "INSERT INTO outbox (id, server_trid, recipient, created, message, next_attempt)
             VALUES (7, 'RM1', 'a@example.test', 'T', X'00FF0A', 'T')",
            [],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let moved: Vec<u8> = conn
            .query_row(
                "SELECT message FROM outbox_messages WHERE id = 7",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(moved, [0x00, 0xFF, 0x0A]);
        let columns: i64 = conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('outbox') WHERE name = 'message'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(columns, 0);
    }
}
