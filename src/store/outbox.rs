//! The outbox: every mail to send, kept until a transport accepted it.
//!
//! Input: mails queued inside a template's transaction. Output: due mails,
//! leased to one delivery attempt at a time ([`Tx::outbox_claim`]), then
//! settled as delivered or deferred ([`Tx::outbox_settle`]). A mail's
//! message is written once, in `outbox_messages`; leasing and settling
//! change only its short `outbox` row. Invariants: a
//! mail is claimed by one run per lease (parallel `process` runs never send
//! it twice while the lease lasts); a claim that dies with its run ends with
//! the lease, so the mail is sent again, never lost; the due query walks the
//! partial index of undelivered rows only, never the delivered history.

use super::{Store, StoreResult, Tx};
use rusqlite::{OptionalExtension, params};

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

/// The result of one delivery attempt: `None` delivered, or
/// `Some((error, next attempt))`.
pub type Settlement = (i64, Option<(String, String)>);

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

/// The columns of [`OutboxMail`], from `outbox` (`o`) and its message
/// (`m`, in `outbox_messages`: schema version 7).
const OUTBOX_COLUMNS: &str = "o.id, o.server_trid, o.recipient, m.message, o.attempts, \
     o.delivered, o.last_error, o.capped";

/// The outbox rows with their messages.
const OUTBOX_FROM: &str = "outbox o JOIN outbox_messages m ON m.id = o.id";

impl Tx<'_> {
    /// Queues a mail; delivered later by the transport.
    pub fn queue_mail(
        &mut self,
        server_trid: &str,
        recipient: &str,
        message: &[u8],
        now: &str,
    ) -> StoreResult<i64> {
        self.tx
            .prepare_cached(
                "INSERT INTO outbox (server_trid, recipient, created, next_attempt)
                 VALUES (?1, ?2, ?3, ?3)",
            )?
            .execute(params![server_trid, recipient, now])?;
        let id = self.tx.last_insert_rowid();
        self.tx
            .prepare_cached("INSERT INTO outbox_messages (id, message) VALUES (?1, ?2)")?
            .execute(params![id, message])?;
        Ok(id)
    }

    /// At most `limit` undelivered mails due at `now`, oldest first.
    pub fn outbox_due(&self, now: &str, limit: usize) -> StoreResult<Vec<OutboxMail>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.tx.prepare_cached(&due_sql())?;
        let rows = stmt.query_map(params![now, limit], outbox_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Leases due mails to this attempt until `lease_until`; returns the ids
    /// leased (a mail another run leased or delivered first is left out).
    pub fn outbox_claim(
        &mut self,
        ids: &[i64],
        now: &str,
        lease_until: &str,
    ) -> StoreResult<Vec<i64>> {
        let mut stmt = self.tx.prepare_cached(
            "UPDATE outbox SET next_attempt = ?3
             WHERE id = ?1 AND delivered IS NULL AND next_attempt <= ?2",
        )?;
        let mut claimed = Vec::with_capacity(ids.len());
        for id in ids {
            if stmt.execute(params![id, now, lease_until])? == 1 {
                claimed.push(*id);
            }
        }
        Ok(claimed)
    }

    /// Records attempts: delivered at `now`, or deferred with the error and
    /// the next attempt. (A mail queued with [`Tx::purge_on_delivery`] loses
    /// its body once delivered: it carried a holder's one-time token.)
    pub fn outbox_settle(&mut self, outcomes: &[Settlement], now: &str) -> StoreResult<()> {
        for (id, outcome) in outcomes {
            match outcome {
                None => {
                    let purge: Option<bool> = self
                        .tx
                        .prepare_cached(
                            "UPDATE outbox SET delivered = ?2, attempts = attempts + 1,
                                last_error = NULL
                             WHERE id = ?1 RETURNING purge_on_delivery",
                        )?
                        .query_row(params![id, now], |r| r.get(0))
                        .optional()?;
                    if purge == Some(true) {
                        self.tx
                            .prepare_cached(
                                "UPDATE outbox_messages SET message = X'' WHERE id = ?1",
                            )?
                            .execute([id])?;
                    }
                }
                Some((error, next)) => {
                    self.tx
                        .prepare_cached(
                            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2,
                                next_attempt = ?3
                             WHERE id = ?1",
                        )?
                        .execute(params![id, error, next])?;
                }
            }
        }
        Ok(())
    }

    /// How many capped mails went to `recipient` since `since`, and the
    /// first of those delivery times (when the window frees a slot).
    pub fn capped_delivered_since(
        &self,
        recipient: &str,
        since: &str,
    ) -> StoreResult<(u32, Option<String>)> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT COUNT(*), MIN(delivered) FROM outbox
                 WHERE capped = 1 AND recipient = ?1 AND delivered IS NOT NULL
                   AND delivered > ?2",
            )?
            .query_row(params![recipient, since], |r| Ok((r.get(0)?, r.get(1)?)))?)
    }

    /// Holds a mail back until `until` without counting an attempt (the cap).
    pub fn outbox_hold(&mut self, id: i64, until: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE outbox SET next_attempt = ?2 WHERE id = ?1")?
            .execute(params![id, until])?;
        Ok(())
    }
}

impl Store {
    /// Every outbox row (newest last).
    pub fn outbox_all(&self) -> StoreResult<Vec<OutboxMail>> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM {OUTBOX_FROM} ORDER BY o.id");
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], outbox_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}

/// `+id`: ordering by the rowid must not make SQLite walk the whole table
/// (every delivered mail's overflow pages) instead of the partial index of
/// undelivered rows.
fn due_sql() -> String {
    format!(
        "SELECT {OUTBOX_COLUMNS} FROM {OUTBOX_FROM}
         WHERE o.delivered IS NULL AND o.next_attempt <= ?1 ORDER BY +o.id LIMIT ?2"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreError;

    /// One mail claimed in its own commit: whether it was.
    fn claim(store: &mut Store, id: i64, now: &str, lease: &str) -> bool {
        store
            .write(|tx| tx.outbox_claim(&[id], now, lease))
            .unwrap()
            == vec![id]
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
        let due = store.simulate(|tx| tx.outbox_due(now, 10)).unwrap();
        assert!(due.is_empty());
        // A run that died mid-attempt: after the lease the mail is due again.
        assert!(claim(&mut store, id, lease, "2026-11-22T08:35:00.000Z"));
        store
            .write(|tx| tx.outbox_settle(&[(id, None)], lease))
            .unwrap();
        assert!(!claim(
            &mut store,
            id,
            "2026-11-22T09:00:00.000Z",
            "2026-11-22T09:10:00.000Z"
        ));
    }

    /// A holder mail (its one-time token) loses its body once delivered,
    /// not before; every other mail keeps its body.
    #[test]
    fn a_purged_mail_loses_its_body_only_when_delivered() {
        let mut store = Store::open_in_memory().unwrap();
        let now = "2026-11-22T08:15:00.000Z";
        let (token, reply) = store
            .write(|tx| {
                let token = tx.queue_mail("RM1", "holder@example.test", b"token", now)?;
                tx.purge_on_delivery(token)?;
                let reply = tx.queue_mail("RM1", "a@example.test", b"reply", now)?;
                Ok::<_, StoreError>((token, reply))
            })
            .unwrap();
        let body = |store: &Store, id: i64| {
            let all = store.outbox_all().unwrap();
            all.into_iter().find(|m| m.id == id).unwrap().message
        };
        let deferred = Some(("421 busy".to_string(), now.to_string()));
        store
            .write(|tx| tx.outbox_settle(&[(token, deferred)], now))
            .unwrap();
        assert_eq!(body(&store, token), b"token", "not delivered yet");
        store
            .write(|tx| tx.outbox_settle(&[(token, None), (reply, None)], now))
            .unwrap();
        assert_eq!(body(&store, token), b"");
        assert_eq!(body(&store, reply), b"reply");
    }

    /// The due query walks the partial index, whatever the delivered
    /// history holds (it once scanned every row, bodies included).
    #[test]
    fn the_due_query_uses_the_undelivered_index() {
        let store = Store::open_in_memory().unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {}", due_sql());
        let plan: Vec<String> = store
            .conn
            .prepare(&sql)
            .unwrap()
            .query_map(params!["x", 1], |r| r.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|p| p.contains("outbox_undelivered")),
            "{plan:?}"
        );
    }
}
