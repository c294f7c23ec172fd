//! Held requests and the registry's own timed acts (lifecycle.md 1-5): what
//! happens when a pending request executes or ends, and at a domain's
//! expiry, end of redemption, release and quality-control deadline.
//!
//! Input: a stored request or domain, the rules, and a [`Moment`] (the step's
//! due time, server-trid and a fresh secret). Output: the change, written
//! with history rows stamped with the due time (not the time the timer ran),
//! so applying a step late gives the same state as applying it on time.
//! Invariants: a request is closed before its change is written; a transfer
//! that does not execute is refunded; a deletion refunds the charges whose
//! grace period was running when it was requested.

use super::billing::{self, Item};
use super::{Act, Rules, domain, person};
use crate::config::Profile;
use crate::reply::rfc3339;
use crate::store::{Closing, DomainRow, HistoryEntry, RegistrarStatus, RequestRow, StoreError, Tx};
use crate::template::{DomainUpdate, PersonChanges};
use chrono::{DateTime, Duration, Months, Utc};

/// When and under which ids a step acts.
#[derive(Debug, Clone, Copy)]
pub struct Moment<'a> {
    /// The step's due time.
    pub at: DateTime<Utc>,
    /// The server-trid recorded with the change.
    pub server_trid: &'a str,
    /// A fresh secret (a transferred domain's new authinfo).
    pub secret: &'a str,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// Parses a stored time.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| corrupt(format!("time {s}")))
}

fn act_of<'a>(r: &'a RequestRow, m: Moment<'a>) -> Act<'a> {
    Act {
        registrar_id: r.registrar_id,
        now: m.at,
        server_trid: &r.server_trid,
        client_trid: r.client_trid.as_deref(),
        dry_run: false,
        secret: m.secret,
    }
}

/// Closes an open request (state, outcome); false if it was not open.
fn close(
    tx: &mut Tx<'_>,
    r: &RequestRow,
    (state, outcome): (&str, &str),
    note: Option<&str>,
    m: Moment<'_>,
) -> Result<bool, StoreError> {
    let at = rfc3339(m.at);
    let closing = Closing {
        state,
        outcome,
        at: &at,
        by: m.server_trid,
        note,
    };
    tx.close_request(r.id, &closing)
}

/// What became of a request that was due to execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Execution {
    /// Carried out.
    Done,
    /// Not carried out, ended and refunded, for the reason the event names:
    /// the registry locked the domain meanwhile (`status-prohibits`), or
    /// suspended the requesting registrar (`registrar-suspended`).
    Blocked(&'static str),
    /// No longer open.
    NotOpen,
}

/// Closes an open request as executed (`outcome` names how) and carries out
/// its change, unless the registry locked the domain meanwhile.
pub fn execute(
    tx: &mut Tx<'_>,
    r: &RequestRow,
    outcome: &str,
    note: Option<&str>,
    rules: Rules<'_>,
    m: Moment<'_>,
) -> Result<Execution, StoreError> {
    let locked =
        r.kind != "person-update" && tx.domain(&r.object)?.is_some_and(|d| d.flags.server_lock);
    let suspended = tx.registrar_status(r.registrar_id)? == Some(RegistrarStatus::Suspended);
    let blocked = match (locked, suspended) {
        (true, _) => Some("status-prohibits"),
        (false, true) => Some("registrar-suspended"),
        (false, false) => None,
    };
    if let Some(event) = blocked {
        return Ok(match end(tx, r, "rejected", event, note, m)? {
            true => Execution::Blocked(event),
            false => Execution::NotOpen,
        });
    }
    if !close(tx, r, ("executed", outcome), note, m)? {
        return Ok(Execution::NotOpen);
    }
    let act = act_of(r, m);
    match r.kind.as_str() {
        "transfer" => {
            super::transfer::execute(tx, &r.object, r.registrar_id, rules, act, false)?;
        }
        "update" => {
            let u: DomainUpdate = serde_json::from_str(&r.payload).map_err(corrupt)?;
            if let Some(d) = tx.domain(&r.object)? {
                domain::write_update(tx, &d, &u, rules.profile, act)?;
            }
        }
        "person-update" => {
            let c: PersonChanges = serde_json::from_str(&r.payload).map_err(corrupt)?;
            person::write_changes(tx, &r.object, &c, rules.profile, act)?;
        }
        "delete" => delete_now(tx, &r.object, parse_time(&r.requested)?, rules, act)?,
        other => return Err(corrupt(format!("pending kind {other}"))),
    }
    Ok(Execution::Done)
}

/// Ends an open request without executing it (`rejected`, `expired`,
/// `withdrawn`); a transfer's charge is refunded. False if it was not open.
pub fn end(
    tx: &mut Tx<'_>,
    r: &RequestRow,
    state: &str,
    outcome: &str,
    note: Option<&str>,
    m: Moment<'_>,
) -> Result<bool, StoreError> {
    if !close(tx, r, (state, outcome), note, m)? {
        return Ok(false);
    }
    if r.kind == "transfer" {
        let act = Act {
            server_trid: m.server_trid,
            ..act_of(r, m)
        };
        billing::refund(tx, act, &r.server_trid, &r.object)?;
    }
    Ok(true)
}

/// The grace rules of lifecycle.md 4 at a deletion requested at
/// `requested`: every create, renewal and transfer charge of the sponsor
/// whose grace period was still running then (and any renewal booked since)
/// is refunded. True if the domain was still in its add grace period.
fn refund_grace(
    tx: &mut Tx<'_>,
    d: &DomainRow,
    requested: DateTime<Utc>,
    profile: &Profile,
    act: Act<'_>,
) -> Result<bool, StoreError> {
    let at = rfc3339(act.now);
    let add_grace = parse_time(&d.created)? + Duration::days(profile.add_grace_days) > requested;
    let mut charges = Vec::new();
    for (kind, days) in [
        ("create", profile.add_grace_days),
        ("renew", profile.renew_grace_days),
        ("transfer", profile.transfer_grace_days),
    ] {
        let since = rfc3339(requested - Duration::days(days));
        charges.extend(tx.open_charges(&d.name, kind, &since)?);
    }
    // A waiting transfer is charged when requested, but its grace runs from
    // its execution.
    let since = rfc3339(requested - Duration::days(profile.transfer_grace_days));
    for trid in tx.executed_since(&d.name, "transfer", &since)? {
        charges.extend(tx.open_charge_of(&trid, &d.name)?);
    }
    charges.sort_by_key(|c| c.id);
    charges.dedup_by_key(|c| c.id);
    for c in charges.iter().filter(|c| c.registrar_id == d.registrar_id) {
        tx.refund_charge(c, &at, act.server_trid)?;
    }
    Ok(add_grace)
}

/// Deletes a domain: within its add grace period it is removed at once,
/// otherwise it enters redemption. Grace charges are refunded.
pub(super) fn delete_now(
    tx: &mut Tx<'_>,
    name: &str,
    requested: DateTime<Utc>,
    rules: Rules<'_>,
    act: Act<'_>,
) -> Result<(), StoreError> {
    let Some(d) = tx.domain(name)? else {
        return Ok(());
    };
    let profile = rules.profile;
    let before = domain::text(&d, profile);
    if refund_grace(tx, &d, requested, profile, act)? {
        remove(tx, name, "delete", &before, act.now, act.server_trid)?;
        return Ok(());
    }
    let until = act.now + Duration::days(profile.redemption_days);
    end_open_requests(tx, name, act.now, act.server_trid)?;
    tx.set_redemption(name, &rfc3339(until))?;
    domain::record(tx, act, name, "delete", &before, profile)
}

/// A request still open on a domain that is deleted (into redemption or for
/// good) ends with it, refunded (`domain-deleted`).
fn end_open_requests(
    tx: &mut Tx<'_>,
    name: &str,
    at: DateTime<Utc>,
    server_trid: &str,
) -> Result<(), StoreError> {
    if let Some(r) = tx.open_request_on(name)? {
        let m = Moment {
            at,
            server_trid,
            secret: "",
        };
        end(tx, &r, "expired", "domain-deleted", None, m)?;
    }
    Ok(())
}

/// Removes a domain for good, with a history row by the registry.
fn remove(
    tx: &mut Tx<'_>,
    name: &str,
    action: &str,
    before: &str,
    at: DateTime<Utc>,
    server_trid: &str,
) -> Result<(), StoreError> {
    let stamp = rfc3339(at);
    end_open_requests(tx, name, at, server_trid)?;
    if let Some(q) = tx.qc_of(name)? {
        tx.set_qc(q.id, "deleted", None, q.deadline.as_deref(), Some(&stamp))?;
    }
    tx.remove_domain(name)?;
    tx.insert_history(&HistoryEntry {
        object: name,
        at: &stamp,
        server_trid,
        client_trid: None,
        registrar_id: None,
        action,
        before,
        after: "",
    })
}

/// A change by the registry itself, with its history row.
fn registry_change(
    tx: &mut Tx<'_>,
    name: &str,
    action: &str,
    before: &str,
    profile: &Profile,
    m: Moment<'_>,
) -> Result<(), StoreError> {
    let stamp = rfc3339(m.at);
    let after = tx
        .domain(name)?
        .map(|d| domain::text(&d, profile))
        .unwrap_or_default();
    tx.touch_domain(name, &stamp)?;
    tx.insert_history(&HistoryEntry {
        object: name,
        at: &stamp,
        server_trid: m.server_trid,
        client_trid: None,
        registrar_id: None,
        action,
        before,
        after: &after,
    })
}

/// What happened at a domain's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// Renewed for a year, charged to the sponsor.
    Renewed,
    /// Renewed for a year; the holder is billed directly (after `billwithdraw`).
    RenewedHolderBilled,
    /// Not renewed (auto-renew off, or the sponsor's credit does not cover
    /// it): deleted, in redemption.
    Deleted,
}

/// lifecycle.md 4 `auto_renew`: at expiry the domain is renewed for one
/// year and the sponsor charged, or the holder billed after `billwithdraw`.
pub fn expire(
    tx: &mut Tx<'_>,
    d: &DomainRow,
    rules: Rules<'_>,
    m: Moment<'_>,
) -> Result<Expiry, StoreError> {
    let profile = rules.profile;
    let before = domain::text(d, profile);
    let price = Item::Renew(1).cents(profile);
    let holder_pays = d.billing == "holder";
    let covered = holder_pays || price == 0 || tx.balance(d.registrar_id)? >= price;
    if !profile.auto_renew || !covered {
        let until = m.at + Duration::days(profile.redemption_days);
        end_open_requests(tx, &d.name, m.at, m.server_trid)?;
        tx.set_redemption(&d.name, &rfc3339(until))?;
        registry_change(tx, &d.name, "expire", &before, profile, m)?;
        return Ok(Expiry::Deleted);
    }
    let old = parse_time(&d.expires)?;
    let new = old.checked_add_months(Months::new(12)).unwrap_or(old);
    tx.set_expires(&d.name, &rfc3339(new))?;
    registry_change(tx, &d.name, "autorenew", &before, profile, m)?;
    if holder_pays {
        let holder = d.role("registrant").first().cloned().unwrap_or_default();
        tx.insert_holder_bill(&d.name, &holder, &rfc3339(m.at), m.server_trid, price)?;
        return Ok(Expiry::RenewedHolderBilled);
    }
    let act = Act {
        registrar_id: d.registrar_id,
        now: m.at,
        server_trid: m.server_trid,
        client_trid: None,
        dry_run: false,
        secret: m.secret,
    };
    billing::charge(tx, act, d.registrar_id, &d.name, Item::Renew(1), profile)?;
    Ok(Expiry::Renewed)
}

/// The redemption period ended: the domain waits `pending_delete_days`.
pub fn end_redemption(
    tx: &mut Tx<'_>,
    d: &DomainRow,
    rules: Rules<'_>,
    m: Moment<'_>,
) -> Result<(), StoreError> {
    let before = domain::text(d, rules.profile);
    let release = m.at + Duration::days(rules.profile.pending_delete_days);
    tx.set_release(&d.name, &rfc3339(release))?;
    registry_change(tx, &d.name, "pending-delete", &before, rules.profile, m)
}

/// The name is free: the domain is removed (`released`), or removed at a
/// quality-control deadline (`qc-deleted`).
pub fn release(
    tx: &mut Tx<'_>,
    d: &DomainRow,
    action: &str,
    rules: Rules<'_>,
    m: Moment<'_>,
) -> Result<(), StoreError> {
    let before = domain::text(d, rules.profile);
    remove(tx, &d.name, action, &before, m.at, m.server_trid)
}
