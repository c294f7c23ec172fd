//! The journal (one row per handled mail) and the outbox (every mail to send),
//! plus the deterministic text dump that golden tests compare.

use super::{Store, StoreError, StoreResult, Tx};
use rusqlite::{Connection, OptionalExtension, params};
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

/// A mail waiting in (or delivered from) the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMail {
    /// Row id.
    pub id: i64,
    /// The server-trid it belongs to.
    pub server_trid: String,
    /// Envelope recipient.
    pub recipient: String,
    /// The full message.
    pub message: Vec<u8>,
    /// Delivery attempts so far.
    pub attempts: i64,
    /// Delivered at, RFC 3339.
    pub delivered: Option<String>,
    /// Last transport error.
    pub last_error: Option<String>,
    /// Counts against the recipient's hourly cap (a notice, or an answer to
    /// unsigned mail), see [`Tx::cap_per_hour`].
    pub capped: bool,
}

/// SHA-256 of a raw mail, hex: how the journal recognises the same mail.
pub fn raw_digest(raw: &[u8]) -> String {
    hex::encode(Sha256::digest(raw))
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

    /// Queues a mail; delivered later by the transport.
    pub fn queue_mail(
        &mut self,
        server_trid: &str,
        recipient: &str,
        message: &[u8],
        now: &str,
    ) -> StoreResult<i64> {
        self.tx.prepare_cached(
            "INSERT INTO outbox (server_trid, recipient, created, message, next_attempt) VALUES (?1, ?2, ?3, ?4, ?3)")?.execute(params![server_trid, recipient, now, message],
        )?;
        Ok(self.tx.last_insert_rowid())
    }
}

fn outbox_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxMail> {
    Ok(OutboxMail {
        id: r.get(0)?,
        server_trid: r.get(1)?,
        recipient: r.get(2)?,
        message: r.get(3)?,
        attempts: r.get(4)?,
        delivered: r.get(5)?,
        last_error: r.get(6)?,
        capped: r.get(7)?,
    })
}

const OUTBOX_COLUMNS: &str =
    "id, server_trid, recipient, message, attempts, delivered, last_error, capped";

impl Store {
    /// Undelivered mail due at `now`, oldest first.
    pub fn outbox_due(&self, now: &str) -> StoreResult<Vec<OutboxMail>> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM outbox WHERE delivered IS NULL AND next_attempt <= ?1 ORDER BY id"
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([now], outbox_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Every outbox row (newest last).
    pub fn outbox_all(&self) -> StoreResult<Vec<OutboxMail>> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], outbox_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Claims due mails for one delivery attempt until `lease_until`, in one
    /// commit; returns the ids claimed (a mail another run claimed or
    /// delivered first is left out: parallel `process` runs).
    pub fn outbox_claim_all(
        &mut self,
        ids: &[i64],
        now: &str,
        lease_until: &str,
    ) -> StoreResult<Vec<i64>> {
        self.write(|tx| {
            let mut stmt = tx.tx.prepare_cached(
                "UPDATE outbox SET next_attempt = ?3 WHERE id = ?1 AND delivered IS NULL AND next_attempt <= ?2",
            )?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                if stmt.execute(params![id, now, lease_until])? == 1 {
                    claimed.push(*id);
                }
            }
            Ok::<_, StoreError>(claimed)
        })
    }

    /// Records attempts in one commit: `None` delivered at `now`, or
    /// `Some((error, next attempt))`. (A mail queued with
    /// [`Tx::purge_on_delivery`] loses its body once delivered: it carried a
    /// holder's one-time token.)
    pub fn outbox_settle(
        &mut self,
        outcomes: &[(i64, Option<(String, String)>)],
        now: &str,
    ) -> StoreResult<()> {
        self.write(|tx| {
            for (id, outcome) in outcomes {
                match outcome {
                    None => delivered(&tx.tx, *id, now)?,
                    Some((error, next)) => {
                        tx.tx.prepare_cached(
                            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt = ?3 WHERE id = ?1")?.execute(params![id, error, next],
                        )?;
                    }
                }
            }
            Ok::<_, StoreError>(())
        })
    }

    /// How many capped mails went to `recipient` since `since`, and the
    /// first of those delivery times (when the window frees a slot).
    pub fn capped_delivered_since(
        &self,
        recipient: &str,
        since: &str,
    ) -> StoreResult<(u32, Option<String>)> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT COUNT(*), MIN(delivered) FROM outbox
             WHERE capped = 1 AND recipient = ?1 AND delivered IS NOT NULL AND delivered > ?2",
            )?
            .query_row(params![recipient, since], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    /// Holds a mail back until `until` without counting an attempt (the cap).
    pub fn outbox_hold(&mut self, id: i64, until: &str) -> StoreResult<()> {
        self.conn
            .prepare_cached("UPDATE outbox SET next_attempt = ?2 WHERE id = ?1")?
            .execute(params![id, until])?;
        Ok(())
    }

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

/// Marks one outbox row delivered (a delivered purge-on-delivery mail keeps
/// no body).
fn delivered(conn: &Connection, id: i64, now: &str) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE outbox SET delivered = ?2, attempts = attempts + 1, last_error = NULL,
            message = CASE WHEN purge_on_delivery = 1 THEN X'' ELSE message END
         WHERE id = ?1",
    )?
    .execute(params![id, now])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One mail claimed through the batch claim: whether it was.
    fn claim(store: &mut Store, id: i64, now: &str, lease: &str) -> bool {
        store.outbox_claim_all(&[id], now, lease).unwrap() == vec![id]
    }

    #[test]
    fn a_queued_mail_is_claimed_once_per_lease() {
        let mut store = Store::open_in_memory().unwrap();
        let now = "2026-11-22T08:15:00.000Z";
        let id = store
            .write(|tx| tx.queue_mail("RM0000000001", "a@example.test", b"mail", now))
            .unwrap();
        let lease = "2026-11-22T08:25:00.000Z";
        assert!(claim(&mut store, id, now, lease));
        assert!(
            !claim(&mut store, id, now, lease),
            "a second run must not send it too"
        );
        assert!(store.outbox_due(now).unwrap().is_empty());
        // A run that died mid-attempt: after the lease the mail is due again.
        assert!(claim(&mut store, id, lease, "2026-11-22T08:35:00.000Z"));
        store.outbox_settle(&[(id, None)], lease).unwrap();
        assert!(!claim(
            &mut store,
            id,
            "2026-11-22T09:00:00.000Z",
            "2026-11-22T09:10:00.000Z"
        ));
    }
}
