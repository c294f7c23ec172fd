//! The lifecycle's rows: pending requests in full, holder tokens, the
//! domain timeline (expiry, redemption, release), grace refunds, quality
//! control, the holders' bills and the lifecycle log (lifecycle.md).
//!
//! Invariant: every time is an RFC 3339 UTC string of one fixed format
//! (milliseconds, `Z`), so SQL compares them as text.

use super::{StoreResult, Tx};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// A pending request with every column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// Row id.
    pub id: i64,
    /// `transfer`, `update`, `delete` or `person-update`.
    pub kind: String,
    /// Domain or handle.
    pub object: String,
    /// The requesting registrar.
    pub registrar_id: u32,
    /// The other registrar concerned (the losing one of a transfer).
    pub other_registrar: Option<u32>,
    /// The request's server-trid.
    pub server_trid: String,
    /// The registrar's client-trid.
    pub client_trid: Option<String>,
    /// When it was requested.
    pub requested: String,
    /// Its deadline.
    pub deadline: String,
    /// When it executes, if later than the deadline (deletion at expiry).
    pub execute_at: Option<String>,
    /// Transfer mode, or `objection`, `now`, `expiration`.
    pub mode: Option<String>,
    /// The held change (JSON).
    pub payload: String,
    /// Reminders sent so far.
    pub reminders: u32,
    /// When it ends for faulty holder data, if it will.
    pub abort_at: Option<String>,
    /// `open`, `executed`, `rejected`, `expired`, `withdrawn`.
    pub state: String,
    /// The event that closed it (`confirmed`, `objected`, ...).
    pub outcome: Option<String>,
    /// When it closed.
    pub closed: Option<String>,
    /// The operator's note.
    pub note: Option<String>,
}

const REQUEST_COLUMNS: &str = "id, kind, object, registrar_id, other_registrar, server_trid, client_trid, \
     requested, deadline, execute_at, mode, payload, reminders, abort_at, state, outcome, closed, note";

fn request_row(r: &Row<'_>) -> rusqlite::Result<RequestRow> {
    Ok(RequestRow {
        id: r.get(0)?,
        kind: r.get(1)?,
        object: r.get(2)?,
        registrar_id: r.get(3)?,
        other_registrar: r.get(4)?,
        server_trid: r.get(5)?,
        client_trid: r.get(6)?,
        requested: r.get(7)?,
        deadline: r.get(8)?,
        execute_at: r.get(9)?,
        mode: r.get(10)?,
        payload: r.get(11)?,
        reminders: r.get(12)?,
        abort_at: r.get(13)?,
        state: r.get(14)?,
        outcome: r.get(15)?,
        closed: r.get(16)?,
        note: r.get(17)?,
    })
}

fn requests_where(conn: &Connection, filter: &str, arg: &str) -> StoreResult<Vec<RequestRow>> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM pending WHERE {filter} ORDER BY id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([arg], request_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// How a request ends.
#[derive(Debug, Clone, Copy)]
pub struct Closing<'a> {
    /// `executed`, `rejected`, `expired` or `withdrawn`.
    pub state: &'a str,
    /// The event (`confirmed`, `objected`, `expired`, ...).
    pub outcome: &'a str,
    /// When.
    pub at: &'a str,
    /// The server-trid of the mail or step that closed it.
    pub by: &'a str,
    /// The operator's note, if any.
    pub note: Option<&'a str>,
}

/// A quality-control case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QcRow {
    /// Row id.
    pub id: i64,
    /// The domain.
    pub domain: String,
    /// The registrar that created it.
    pub registrar_id: u32,
    /// The create's server-trid.
    pub server_trid: String,
    /// When it was selected.
    pub selected: String,
    /// `selected`, `correction`, `accepted` or `deleted`.
    pub state: String,
    /// The operator's reason for a correction.
    pub reason: Option<String>,
    /// The correction deadline.
    pub deadline: Option<String>,
}

fn qc_row(r: &Row<'_>) -> rusqlite::Result<QcRow> {
    Ok(QcRow {
        id: r.get(0)?,
        domain: r.get(1)?,
        registrar_id: r.get(2)?,
        server_trid: r.get(3)?,
        selected: r.get(4)?,
        state: r.get(5)?,
        reason: r.get(6)?,
        deadline: r.get(7)?,
    })
}

const QC_COLUMNS: &str = "id, domain, registrar_id, server_trid, selected, state, reason, deadline";

fn open_qc(conn: &Connection) -> StoreResult<Vec<QcRow>> {
    let sql = format!(
        "SELECT {QC_COLUMNS} FROM qc WHERE state IN ('selected', 'correction') ORDER BY id"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([], qc_row)?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A charge still open for a refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    /// Ledger row id.
    pub id: i64,
    /// `create`, `renew`, `transfer`, `restore`.
    pub kind: String,
    /// Cents charged (positive).
    pub cents: i64,
    /// When.
    pub at: String,
    /// The registrar charged.
    pub registrar_id: u32,
}

/// A ledger charge row: id, kind, -amount, at, registrar.
pub(super) fn charge_row(r: &Row<'_>) -> rusqlite::Result<Charge> {
    Ok(Charge {
        id: r.get(0)?,
        kind: r.get(1)?,
        cents: r.get(2)?,
        at: r.get(3)?,
        registrar_id: r.get(4)?,
    })
}

/// One line of the lifecycle log.
#[derive(Debug, Clone, Copy)]
pub struct LogEntry<'a> {
    /// When.
    pub at: &'a str,
    /// The request's or step's server-trid.
    pub server_trid: &'a str,
    /// Domain or handle.
    pub object: &'a str,
    /// The event.
    pub event: &'a str,
    /// `registry`, `holder`, `operator` or `registrar <id>`.
    pub actor: &'a str,
    /// A note (the operator's).
    pub note: Option<&'a str>,
}

impl Tx<'_> {
    /// The next server-trid: `RM` and ten digits from a sequence.
    pub fn next_server_trid(&mut self) -> StoreResult<String> {
        Ok(format!("RM{:010}", self.next_sequence("server_trid")?))
    }

    /// A registrar's registered reply address.
    pub fn registrar_email(&self, id: u32) -> StoreResult<Option<String>> {
        Ok(self
            .tx
            .prepare_cached("SELECT email FROM registrars WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    /// Whether an address is some registrar's registered reply address.
    pub fn is_registrar_address(&self, email: &str) -> StoreResult<bool> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM registrars WHERE email = ?1 COLLATE NOCASE")?
            .query_row([email], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Every open request, oldest first.
    pub fn open_requests(&self) -> StoreResult<Vec<RequestRow>> {
        requests_where(&self.tx, "state = 'open' AND ?1 = ?1", "")
    }

    /// Every request, oldest first.
    pub fn all_requests(&self) -> StoreResult<Vec<RequestRow>> {
        requests_where(&self.tx, "?1 = ?1", "")
    }

    /// The open requests that may have a step due at `now`: the deadline
    /// passed, the faulty-data end passed, or (a holder-confirmation
    /// transfer) the next of `reminder_days` passed. Every step of a request
    /// is at or after one of these, so nothing due is missed; the caller
    /// computes the exact times. The per-mail cost follows the due requests,
    /// not all open ones.
    pub fn due_requests(&self, now: &str, reminder_days: &[i64]) -> StoreResult<Vec<RequestRow>> {
        let day = |k: usize| reminder_days.get(k).copied().unwrap_or(0);
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM pending WHERE state = 'open' AND (
                deadline <= ?1 OR abort_at <= ?1
                OR (kind = 'transfer' AND mode = 'holder-confirmation' AND abort_at IS NULL
                    AND reminders < ?2
                    AND strftime('%Y-%m-%dT%H:%M:%fZ', requested, '+' ||
                        (CASE reminders WHEN 0 THEN ?3 WHEN 1 THEN ?4 ELSE ?5 END) || ' days') <= ?1))
             ORDER BY id"
        );
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let len = i64::try_from(reminder_days.len()).unwrap_or(0);
        let rows = stmt.query_map(params![now, len, day(0), day(1), day(2)], request_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The open request on an object, in full.
    pub fn open_request_on(&self, object: &str) -> StoreResult<Option<RequestRow>> {
        Ok(requests_where(&self.tx, "state = 'open' AND object = ?1", object)?.pop())
    }

    /// One request by id.
    pub fn request(&self, id: i64) -> StoreResult<Option<RequestRow>> {
        Ok(requests_where(&self.tx, "id = CAST(?1 AS INTEGER)", &id.to_string())?.pop())
    }

    /// Requests opened by a mail.
    pub fn requests_opened_by(&self, server_trid: &str) -> StoreResult<Vec<RequestRow>> {
        requests_where(&self.tx, "server_trid = ?1", server_trid)
    }

    /// Requests closed by a mail or step.
    pub fn requests_closed_by(&self, server_trid: &str) -> StoreResult<Vec<RequestRow>> {
        requests_where(&self.tx, "closed_by = ?1", server_trid)
    }

    /// Closes an open request; false if it was not open.
    pub fn close_request(&mut self, id: i64, c: &Closing<'_>) -> StoreResult<bool> {
        Ok(self.tx.prepare_cached(
            "UPDATE pending SET state = ?2, outcome = ?3, closed = ?4, closed_by = ?5, note = ?6
             WHERE id = ?1 AND state = 'open'")?.execute(params![id, c.state, c.outcome, c.at, c.by, c.note],
        )? == 1)
    }

    /// Records how many reminders went out.
    pub fn set_reminders(&mut self, id: i64, n: u32) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE pending SET reminders = ?2 WHERE id = ?1")?
            .execute(params![id, n])?;
        Ok(())
    }

    /// Schedules the faulty-data end of a request.
    pub fn set_abort_at(&mut self, id: i64, at: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE pending SET abort_at = ?2 WHERE id = ?1 AND state = 'open'")?
            .execute(params![id, at])?;
        Ok(())
    }

    /// Stores a token's hash for a request.
    pub fn insert_token(&mut self, sha256: &str, pending_id: i64, issued: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached("INSERT INTO tokens (sha256, pending_id, issued) VALUES (?1, ?2, ?3)")?
            .execute(params![sha256, pending_id, issued])?;
        Ok(())
    }

    /// Marks a queued mail to lose its body once delivered (a holder mail:
    /// its token must not stay readable in the database).
    pub fn purge_on_delivery(&mut self, outbox_id: i64) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE outbox SET purge_on_delivery = 1 WHERE id = ?1")?
            .execute([outbox_id])?;
        Ok(())
    }

    /// Marks a queued mail as counting against its recipient's hourly cap.
    pub fn cap_per_hour(&mut self, outbox_id: i64) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE outbox SET capped = 1 WHERE id = ?1")?
            .execute([outbox_id])?;
        Ok(())
    }

    /// Records that the holder mail with Message-ID tag `tag` concerns a request.
    pub fn insert_holder_mail(&mut self, tag: &str, pending_id: i64) -> StoreResult<()> {
        self.tx
            .prepare_cached("INSERT INTO holder_mails (tag, pending_id) VALUES (?1, ?2)")?
            .execute(params![tag, pending_id])?;
        Ok(())
    }

    /// The requests a holder mail (by its Message-ID tag) concerned.
    pub fn holder_mail_requests(&self, tag: &str) -> StoreResult<Vec<i64>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT pending_id FROM holder_mails WHERE tag = ?1 ORDER BY pending_id",
        )?;
        let rows = stmt.query_map([tag], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The request a token's hash belongs to.
    pub fn token_request(&self, sha256: &str) -> StoreResult<Option<i64>> {
        Ok(self
            .tx
            .prepare_cached("SELECT pending_id FROM tokens WHERE sha256 = ?1")?
            .query_row([sha256], |r| r.get(0))
            .optional()?)
    }

    /// The earliest-expiring domain not in redemption or pending delete
    /// whose expiry is due.
    pub fn next_expiry(&self, now: &str) -> StoreResult<Option<(String, String)>> {
        self.next_due(
            "expires",
            "redemption_until IS NULL AND release_at IS NULL",
            now,
        )
    }

    /// The earliest due end of a redemption period.
    pub fn next_redemption_end(&self, now: &str) -> StoreResult<Option<(String, String)>> {
        self.next_due("redemption_until", "redemption_until IS NOT NULL", now)
    }

    /// The earliest due release (end of pending delete).
    pub fn next_release(&self, now: &str) -> StoreResult<Option<(String, String)>> {
        self.next_due("release_at", "release_at IS NOT NULL", now)
    }

    fn next_due(
        &self,
        col: &str,
        filter: &str,
        now: &str,
    ) -> StoreResult<Option<(String, String)>> {
        let sql = format!(
            "SELECT name, {col} FROM domains WHERE {filter} AND {col} <= ?1 ORDER BY {col}, name LIMIT 1"
        );
        Ok(self
            .tx
            .prepare_cached(&sql)?
            .query_row([now], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Starts the redemption period of a deleted domain.
    pub fn set_redemption(&mut self, domain: &str, until: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "UPDATE domains SET redemption_until = ?2, release_at = NULL WHERE name = ?1",
            )?
            .execute(params![domain, until])?;
        Ok(())
    }

    /// Ends the redemption period: the domain waits for its release.
    pub fn set_release(&mut self, domain: &str, at: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "UPDATE domains SET redemption_until = NULL, release_at = ?2 WHERE name = ?1",
            )?
            .execute(params![domain, at])?;
        Ok(())
    }

    /// Removes a domain (its contact links and nameserver set go with it;
    /// hosts no other domain uses are removed).
    pub fn remove_domain(&mut self, domain: &str) -> StoreResult<()> {
        let hosts = self.domain_host_names(domain)?;
        self.tx
            .prepare_cached("DELETE FROM domains WHERE name = ?1")?
            .execute([domain])?;
        self.remove_unused_hosts(&hosts)
    }

    /// Charges of `kinds` on a domain since `since`, not yet refunded.
    pub fn open_charges(&self, domain: &str, kind: &str, since: &str) -> StoreResult<Vec<Charge>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT l.id, l.kind, -l.amount_cents, l.at, l.registrar_id FROM ledger l
             WHERE l.object = ?1 AND l.kind = ?2 AND l.at >= ?3 AND l.amount_cents < 0
               AND NOT EXISTS (SELECT 1 FROM ledger r WHERE r.refund_of = l.id)
             ORDER BY l.id",
        )?;
        let rows = stmt.query_map(params![domain, kind, since], charge_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// The server-trids of requests of a kind on an object executed since a time.
    pub fn executed_since(
        &self,
        object: &str,
        kind: &str,
        since: &str,
    ) -> StoreResult<Vec<String>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT server_trid FROM pending WHERE object = ?1 AND kind = ?2 AND state = 'executed'
               AND closed >= ?3 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![object, kind, since], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Selects a domain for quality control.
    pub fn insert_qc(
        &mut self,
        domain: &str,
        registrar_id: u32,
        server_trid: &str,
        at: &str,
    ) -> StoreResult<()> {
        self.tx.prepare_cached(
            "INSERT INTO qc (domain, registrar_id, server_trid, selected) VALUES (?1, ?2, ?3, ?4)")?.execute(params![domain, registrar_id, server_trid, at],
        )?;
        Ok(())
    }

    /// The open quality-control case of a domain.
    pub fn qc_of(&self, domain: &str) -> StoreResult<Option<QcRow>> {
        let sql = format!(
            "SELECT {QC_COLUMNS} FROM qc WHERE domain = ?1 AND state IN ('selected', 'correction')"
        );
        Ok(self
            .tx
            .prepare_cached(&sql)?
            .query_row([domain], qc_row)
            .optional()?)
    }

    /// Every open quality-control case.
    pub fn qc_open(&self) -> StoreResult<Vec<QcRow>> {
        open_qc(&self.tx)
    }

    /// Moves a quality-control case on.
    pub fn set_qc(
        &mut self,
        id: i64,
        state: &str,
        reason: Option<&str>,
        deadline: Option<&str>,
        closed: Option<&str>,
    ) -> StoreResult<()> {
        self.tx.prepare_cached(
            "UPDATE qc SET state = ?2, reason = COALESCE(?3, reason), deadline = ?4, closed = ?5 WHERE id = ?1")?.execute(params![id, state, reason, deadline, closed],
        )?;
        Ok(())
    }

    /// The earliest due correction deadline.
    pub fn next_qc_deadline(&self, now: &str) -> StoreResult<Option<QcRow>> {
        let sql = format!(
            "SELECT {QC_COLUMNS} FROM qc WHERE state = 'correction' AND deadline <= ?1
             ORDER BY deadline, id LIMIT 1"
        );
        Ok(self
            .tx
            .prepare_cached(&sql)?
            .query_row([now], qc_row)
            .optional()?)
    }

    /// Records that the holder is billed directly for a renewal.
    pub fn insert_holder_bill(
        &mut self,
        domain: &str,
        holder: &str,
        at: &str,
        server_trid: &str,
        cents: i64,
    ) -> StoreResult<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO holder_bills (domain, holder, at, server_trid, years, amount_cents)
             VALUES (?1, ?2, ?3, ?4, 1, ?5)",
            )?
            .execute(params![domain, holder, at, server_trid, cents])?;
        Ok(())
    }

    /// Writes a line of the lifecycle log.
    pub fn log_event(&mut self, e: &LogEntry<'_>) -> StoreResult<()> {
        self.tx.prepare_cached(
            "INSERT INTO events (at, server_trid, object, event, actor, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")?.execute(params![e.at, e.server_trid, e.object, e.event, e.actor, e.note],
        )?;
        Ok(())
    }

    /// The lifecycle log of an object: (at, server-trid, event, actor, note).
    pub fn events_of(&self, object: &str) -> StoreResult<Vec<[String; 5]>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT at, server_trid, event, actor, COALESCE(note, '') FROM events WHERE object = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([object], |r| {
            Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// A domain's holder bills (after `billwithdraw`): (holder, at, cents).
    pub fn holder_bills(&self, domain: &str) -> StoreResult<Vec<(String, String, i64)>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT holder, at, amount_cents FROM holder_bills WHERE domain = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([domain], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}
