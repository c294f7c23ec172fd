//! The journal (one row per handled mail: what came in, what was answered),
//! plus the deterministic text dump that golden tests compare. The outbox
//! is `outbox.rs`.

use super::{Store, StoreError, StoreResult, Tx};
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;

/// Why a journal row exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JournalKind {
    /// A template that used up its client-trid (whatever its result).
    Transaction,
    /// The same client-trid and text again: the stored reply was resent.
    Replayed,
    /// Answered without using up a client-trid (mail-layer refusals, header
    /// errors, 6001, dry runs).
    Answered,
    /// Not answered on purpose (bounce, auto-reply, unattributable); kept.
    Dropped,
}

impl JournalKind {
    fn as_str(self) -> &'static str {
        match self {
            JournalKind::Transaction => "transaction",
            JournalKind::Replayed => "replayed",
            JournalKind::Answered => "answered",
            JournalKind::Dropped => "dropped",
        }
    }
}

/// One handled mail.
#[derive(Debug, Clone)]
pub struct JournalEntry<'a> {
    /// Our id.
    pub server_trid: &'a str,
    /// Why the row exists.
    pub kind: JournalKind,
    /// RFC 3339.
    pub received: &'a str,
    /// RFC 3339.
    pub processed: &'a str,
    /// The attributed registrar.
    pub registrar_id: Option<u32>,
    /// The signing certificate's fingerprint.
    pub signer: Option<&'a str>,
    /// The registrar's id for the transaction.
    pub client_trid: Option<&'a str>,
    /// SHA-256 of the signed text (replay detection).
    pub text_sha256: Option<&'a str>,
    /// Transaction name.
    pub transaction: Option<&'a str>,
    /// Domain or handle.
    pub object: Option<&'a str>,
    /// success, pending, failed, dropped.
    pub result: &'a str,
    /// Space-separated codes.
    pub codes: &'a str,
    /// The incoming Message-ID.
    pub message_id: Option<&'a str>,
    /// The mail as received.
    pub raw_mail: &'a [u8],
    /// [`raw_digest`] of `raw_mail` (computed once per mail by the caller).
    pub raw_sha256: &'a str,
    /// The reply as queued.
    pub reply: Option<&'a [u8]>,
}

/// What is known of an earlier use of a client-trid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriorTransaction {
    /// Its server-trid.
    pub server_trid: String,
    /// SHA-256 of its signed text.
    pub text_sha256: String,
    /// The reply sent then.
    pub reply: Option<Vec<u8>>,
}

/// SHA-256 of a raw mail, hex: how the journal recognises the same mail.
pub fn raw_digest(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
}

/// SHA-256 of a template's text, hex: how the journal tells a replay (the
/// same client-trid and text) from a reused client-trid (other text), for
/// `process` and `check` alike.
pub fn text_digest(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Tx<'_> {
    /// The earlier transaction with this client-trid, if any.
    pub fn prior_transaction(
        &self,
        registrar_id: u32,
        client_trid: &str,
    ) -> StoreResult<Option<PriorTransaction>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT server_trid, text_sha256, reply FROM journal
                 WHERE registrar_id = ?1 AND client_trid = ?2 AND kind = 'transaction'",
            )?
            .query_row(params![registrar_id, client_trid], |r| {
                Ok(PriorTransaction {
                    server_trid: r.get(0)?,
                    text_sha256: r.get(1)?,
                    reply: r.get(2)?,
                })
            })
            .optional()?)
    }

    /// The server-trid of the journaled mail whose bytes have this
    /// [`raw_digest`], if any: the same delivery again (an MTA retry after a
    /// crash or a lost exit status).
    pub fn mail_seen(&self, raw_sha256: &str) -> StoreResult<Option<String>> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT server_trid FROM journal WHERE raw_sha256 = ?1 ORDER BY server_trid LIMIT 1")?.query_row([raw_sha256],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Writes the journal row (with the raw mail's digest).
    pub fn insert_journal(&mut self, e: &JournalEntry<'_>) -> StoreResult<()> {
        self.tx.prepare_cached(
            "INSERT INTO journal (server_trid, kind, received, processed, registrar_id, signer, client_trid,
                text_sha256, transaction_name, object, result, codes, message_id, raw_mail, reply,
                raw_sha256)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)")?.execute(params![
                e.server_trid,
                e.kind.as_str(),
                e.received,
                e.processed,
                e.registrar_id,
                e.signer,
                e.client_trid,
                e.text_sha256,
                e.transaction,
                e.object,
                e.result,
                e.codes,
                e.message_id,
                e.raw_mail,
                e.reply,
                e.raw_sha256
            ],
        )?;
        Ok(())
    }
}

impl Store {
    /// Journal rows about an object, oldest first: (server-trid, processed, registrar, transaction, result).
    pub fn history(&self, object: &str) -> StoreResult<Vec<[String; 5]>> {
        mail_history(&self.conn, object)
    }

    /// A deterministic text dump of the registry's state (golden tests, `check`).
    ///
    /// Blobs are summarised by length; the outbox by recipient and server-trid.
    pub fn dump(&self) -> StoreResult<String> {
        dump(&self.conn)
    }
}

impl Tx<'_> {
    /// [`Store::history`] inside a transaction (a projected read).
    pub fn mail_history(&self, object: &str) -> StoreResult<Vec<[String; 5]>> {
        mail_history(&self.tx, object)
    }

    /// [`Store::dump`] inside a transaction (a projected read).
    pub fn dump(&self) -> StoreResult<String> {
        dump(&self.tx)
    }
}

fn mail_history(conn: &rusqlite::Connection, object: &str) -> StoreResult<Vec<[String; 5]>> {
    let mut stmt = conn.prepare(
            "SELECT server_trid, processed, COALESCE(registrar_id, ''), COALESCE(transaction_name, ''), result
             FROM journal WHERE object = ?1 ORDER BY server_trid",
        )?;
    let rows = stmt.query_map([object], |r| {
        Ok([
            r.get(0)?,
            r.get(1)?,
            r.get::<_, rusqlite::types::Value>(2).map(value_text)?,
            r.get(3)?,
            r.get(4)?,
        ])
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

fn dump(conn: &rusqlite::Connection) -> StoreResult<String> {
    let tables: &[(&str, &str)] = &[
            ("registrars", "SELECT id, name, email, status FROM registrars ORDER BY id"),
            ("persons", "SELECT * FROM persons ORDER BY handle"),
            ("domains", "SELECT * FROM domains ORDER BY name"),
            ("domain_contacts", "SELECT * FROM domain_contacts ORDER BY domain, pos"),
            ("hosts", "SELECT * FROM hosts ORDER BY name"),
            ("host_addresses", "SELECT * FROM host_addresses ORDER BY host, pos"),
            ("domain_hosts", "SELECT * FROM domain_hosts ORDER BY domain, pos"),
            (
                "journal",
                "SELECT server_trid, kind, registrar_id, client_trid, transaction_name, object, result, codes
                 FROM journal ORDER BY server_trid",
            ),
            ("outbox", "SELECT id, server_trid, recipient FROM outbox ORDER BY id"),
            (
                "pending",
                "SELECT id, kind, object, registrar_id, other_registrar, server_trid, requested, deadline, execute_at,
                    mode, payload, state, reminders, abort_at, outcome, closed, closed_by, note FROM pending ORDER BY id",
            ),
            ("tokens", "SELECT pending_id, issued FROM tokens ORDER BY pending_id, issued"),
            ("qc", "SELECT * FROM qc ORDER BY id"),
            ("holder_bills", "SELECT * FROM holder_bills ORDER BY id"),
            ("events", "SELECT at, server_trid, object, event, actor, note FROM events ORDER BY id"),
            ("history", "SELECT object, at, server_trid, registrar_id, action, before, after FROM history ORDER BY id"),
            ("ledger", "SELECT * FROM ledger ORDER BY id"),
        ];
    let mut out = String::new();
    for (name, sql) in tables {
        let mut stmt = conn.prepare(sql)?;
        let cols: Vec<String> = stmt.column_names().iter().map(|c| c.to_string()).collect();
        let _ = writeln!(out, "[{name}] {}", cols.join(" | "));
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let mut cells = Vec::with_capacity(cols.len());
            for i in 0..cols.len() {
                cells.push(value_text(row.get::<_, rusqlite::types::Value>(i)?));
            }
            let _ = writeln!(out, "{}", cells.join(" | "));
        }
    }
    Ok(out)
}

fn value_text(v: rusqlite::types::Value) -> String {
    use rusqlite::types::Value;
    match v {
        Value::Null => "NULL".into(),
        Value::Integer(i) => i.to_string(),
        Value::Real(f) => f.to_string(),
        Value::Text(t) => t.replace('\n', "\\n"),
        Value::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

impl From<std::convert::Infallible> for StoreError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}
