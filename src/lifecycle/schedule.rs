//! The timer's steps: which step is due next, and applying it.
//!
//! Sources of steps: open requests (reminders, faulty-data ends, deadlines,
//! deletions at expiry), domains (expiry, end of redemption, release) and
//! quality-control deadlines. Order: due time, then requests before
//! quality control before domains (a deletion at expiry wins over the
//! auto-renewal at the same instant), then id.

use super::notify::{Notice, Recipient};
use super::{Ctx, holder};
use crate::config::Profile;
use crate::policy::{self, Expiry, Moment, parse_time};
use crate::rejection::{Code, Rejection};
use crate::reply::{Outcome, rfc3339};
use crate::store::{LogEntry, QcRow, RequestRow, StoreError, Tx};
use chrono::{DateTime, Duration, Utc};

/// A step that is due.
#[derive(Debug, Clone)]
pub(super) enum Step {
    /// The holder's k-th reminder (0-based).
    Reminder(RequestRow, usize),
    /// No usable holder address, or the holder mail bounced.
    Abort(RequestRow),
    /// The request's deadline (or execution time).
    Deadline(RequestRow),
    /// A quality-control correction deadline passed.
    QcDeadline(QcRow),
    /// A domain expires.
    Expiry(String),
    /// A domain's redemption period ends.
    RedemptionEnd(String),
    /// A domain's name is released.
    Release(String),
}

/// A step with its due time.
#[derive(Debug, Clone)]
pub(super) struct Due {
    at: DateTime<Utc>,
    rank: u8,
    step: Step,
}

fn earlier(best: Option<Due>, cand: Due) -> Option<Due> {
    match best {
        Some(b) if (b.at, b.rank) <= (cand.at, cand.rank) => Some(b),
        _ => Some(cand),
    }
}

/// The first step of one open request. A deletion at `expiration` follows
/// the domain's current expiry (a renewal meanwhile moves it).
fn request_due(tx: &Tx<'_>, r: &RequestRow, profile: &Profile) -> Result<Due, StoreError> {
    let requested = parse_time(&r.requested)?;
    let mut when = parse_time(r.execute_at.as_deref().unwrap_or(&r.deadline))?;
    if r.kind == "delete" && r.mode.as_deref() == Some("expiration") {
        let deadline = parse_time(&r.deadline)?;
        if let Some(d) = tx.domain(&r.object)? {
            when = deadline.max(parse_time(&d.expires)?);
        }
    }
    let mut best = Due {
        at: when,
        rank: 0,
        step: Step::Deadline(r.clone()),
    };
    if r.kind == "transfer" && r.mode.as_deref() == Some("holder-confirmation") {
        let first = match &r.abort_at {
            Some(a) => Some((parse_time(a)?, Step::Abort(r.clone()))),
            None => {
                let k = r.reminders as usize;
                profile
                    .reminder_days
                    .get(k)
                    .map(|d| (requested + Duration::days(*d), Step::Reminder(r.clone(), k)))
            }
        };
        if let Some((at, step)) = first.filter(|(at, _)| *at < best.at) {
            best = Due { at, rank: 0, step };
        }
    }
    Ok(best)
}

/// The earliest step due at `now`, if any.
pub(super) fn next(
    tx: &Tx<'_>,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<Option<Due>, StoreError> {
    let stamp = rfc3339(now);
    let mut best: Option<Due> = None;
    for r in tx.due_requests(&stamp, &profile.reminder_days)? {
        let due = request_due(tx, &r, profile)?;
        if due.at <= now {
            best = earlier(best, due);
        }
    }
    if let Some(q) = tx.next_qc_deadline(&stamp)? {
        let at = parse_time(q.deadline.as_deref().unwrap_or_default())?;
        best = earlier(
            best,
            Due {
                at,
                rank: 1,
                step: Step::QcDeadline(q),
            },
        );
    }
    let domain_steps = [
        (tx.next_expiry(&stamp)?, 2),
        (tx.next_redemption_end(&stamp)?, 3),
        (tx.next_release(&stamp)?, 4),
    ];
    for (found, rank) in domain_steps {
        if let Some((name, at)) = found {
            let step = match rank {
                2 => Step::Expiry(name),
                3 => Step::RedemptionEnd(name),
                _ => Step::Release(name),
            };
            best = earlier(
                best,
                Due {
                    at: parse_time(&at)?,
                    rank,
                    step,
                },
            );
        }
    }
    Ok(best)
}

fn log(
    tx: &mut Tx<'_>,
    at: DateTime<Utc>,
    trid: &str,
    object: &str,
    event: &str,
) -> Result<(), StoreError> {
    tx.log_event(&LogEntry {
        at: &rfc3339(at),
        server_trid: trid,
        object,
        event,
        actor: "registry",
        note: None,
    })
}

/// Applies one due step.
pub(super) fn apply(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    due: Due,
    notices: &mut Vec<Notice>,
) -> Result<(), StoreError> {
    let at = due.at;
    match due.step {
        Step::Reminder(r, k) => {
            holder::remind(tx, ctx, &r, k, at, notices)?;
            tx.set_reminders(r.id, u32::try_from(k + 1).unwrap_or(u32::MAX))?;
            log(
                tx,
                at,
                &r.server_trid,
                &r.object,
                &format!("reminder-{}", k + 1),
            )
        }
        Step::Abort(r) => end_transfer(tx, &r, at, "faulty-data-abort", notices),
        Step::Deadline(r) => deadline(tx, ctx, &r, at, notices),
        Step::QcDeadline(q) => qc_deadline(tx, ctx, &q, at, notices),
        Step::Expiry(name) => expiry(tx, ctx, &name, at, notices),
        Step::RedemptionEnd(name) => domain_step(tx, ctx, &name, at, "pending-delete", notices),
        Step::Release(name) => domain_step(tx, ctx, &name, at, "released", notices),
    }
}

/// A holder-confirmation transfer ends unexecuted; both registrars are told.
fn end_transfer(
    tx: &mut Tx<'_>,
    r: &RequestRow,
    at: DateTime<Utc>,
    event: &str,
    notices: &mut Vec<Notice>,
) -> Result<(), StoreError> {
    let m = Moment {
        at,
        server_trid: &r.server_trid,
        secret: "",
    };
    if policy::end(tx, r, "expired", event, None, m)? {
        holder::tell_registrars(r, event, Outcome::Failed, notices);
        log(tx, at, &r.server_trid, &r.object, event)?;
    }
    Ok(())
}

fn deadline(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    r: &RequestRow,
    at: DateTime<Utc>,
    notices: &mut Vec<Notice>,
) -> Result<(), StoreError> {
    let mode = r.mode.as_deref().unwrap_or_default();
    if r.kind == "transfer" && mode == "holder-confirmation" {
        return end_transfer(tx, r, at, "expired", notices);
    }
    let event = if r.kind == "transfer" {
        "auto-approved"
    } else {
        "executed"
    };
    let secret = ctx.ids.secret();
    let m = Moment {
        at,
        server_trid: &r.server_trid,
        secret: &secret,
    };
    if holder::carry_out(tx, ctx, r, (event, None), m, notices)? != policy::Execution::Done {
        return Ok(());
    }
    if r.kind == "transfer" {
        holder::tell_registrars(r, event, Outcome::Success, notices);
    } else {
        let text = holder::outcome_text(r, event);
        notices.push(
            Notice::about(
                r,
                Recipient::Registrar(r.registrar_id),
                event,
                Outcome::Success,
                text,
            )
            .with(Rejection::new(Code::Executed)),
        );
    }
    log(tx, at, &r.server_trid, &r.object, event)
}

/// Requests a registry step ended with the domain (`domain-deleted`): the
/// registrars concerned are told.
fn tell_ended(tx: &Tx<'_>, trid: &str, notices: &mut Vec<Notice>) -> Result<(), StoreError> {
    for r in tx.requests_closed_by(trid)? {
        if r.kind == "transfer" {
            holder::tell_registrars(&r, "domain-deleted", Outcome::Failed, notices);
        } else {
            let text = holder::outcome_text(&r, "domain-deleted");
            let to = Recipient::Registrar(r.registrar_id);
            notices.push(Notice::about(
                &r,
                to,
                "domain-deleted",
                Outcome::Failed,
                text,
            ));
        }
    }
    Ok(())
}

/// A notice from the registry about a domain, to its sponsor.
fn domain_notice(
    d: &crate::store::DomainRow,
    trid: &str,
    event: &str,
    outcome: Outcome,
    text: String,
) -> Notice {
    Notice {
        to: Recipient::Registrar(d.registrar_id),
        event: event.to_string(),
        outcome,
        transaction: if event == "auto-renewed" {
            "renew"
        } else {
            "delete"
        }
        .to_string(),
        object: d.name.clone(),
        registrar_id: Some(d.registrar_id),
        client_trid: None,
        server_trid: trid.to_string(),
        infos: Vec::new(),
        text,
        bounce_tag: None,
    }
}

fn expiry(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    name: &str,
    at: DateTime<Utc>,
    notices: &mut Vec<Notice>,
) -> Result<(), StoreError> {
    let Some(d) = tx.domain(name)? else {
        return Ok(());
    };
    let trid = tx.next_server_trid()?;
    let m = Moment {
        at,
        server_trid: &trid,
        secret: "",
    };
    let (event, outcome, text) = match policy::expire(tx, &d, ctx.rules(), m)? {
        Expiry::Renewed => (
            "auto-renewed",
            Outcome::Success,
            format!(
                "{name} reached its expiry date and was renewed for one year; your account was charged."
            ),
        ),
        Expiry::RenewedHolderBilled => (
            "auto-renewed",
            Outcome::Success,
            format!(
                "{name} reached its expiry date and was renewed for one year; the holder is billed directly."
            ),
        ),
        Expiry::Deleted => (
            "expired",
            Outcome::Success,
            format!(
                "{name} reached its expiry date and was not renewed (auto-renew is off or your credit does \
             not cover it). It is deleted and can be restored with undelete during the redemption period."
            ),
        ),
    };
    tell_ended(tx, &trid, notices)?;
    let mut notice = domain_notice(&d, &trid, event, outcome, text);
    if let Some(e) = tx.domain(name)?.and_then(|d| parse_time(&d.expires).ok()) {
        notice
            .infos
            .push(Rejection::new(Code::Executed).detail(format!("expires {}", rfc3339(e))));
    }
    notices.push(notice);
    log(tx, at, &trid, name, event)
}

fn domain_step(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    name: &str,
    at: DateTime<Utc>,
    event: &str,
    notices: &mut Vec<Notice>,
) -> Result<(), StoreError> {
    let Some(d) = tx.domain(name)? else {
        return Ok(());
    };
    let trid = tx.next_server_trid()?;
    let m = Moment {
        at,
        server_trid: &trid,
        secret: "",
    };
    let text = if event == "released" {
        policy::release(tx, &d, "released", ctx.rules(), m)?;
        format!("{name} was deleted for good; the name is free.")
    } else {
        policy::end_redemption(tx, &d, ctx.rules(), m)?;
        format!(
            "The redemption period of {name} ended; it can no longer be restored and will be released."
        )
    };
    notices.push(domain_notice(&d, &trid, event, Outcome::Success, text));
    log(tx, at, &trid, name, event)
}

fn qc_deadline(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    q: &QcRow,
    at: DateTime<Utc>,
    notices: &mut Vec<Notice>,
) -> Result<(), StoreError> {
    let Some(d) = tx.domain(&q.domain)? else {
        tx.set_qc(
            q.id,
            "deleted",
            None,
            q.deadline.as_deref(),
            Some(&rfc3339(at)),
        )?;
        return Ok(());
    };
    let trid = tx.next_server_trid()?;
    let m = Moment {
        at,
        server_trid: &trid,
        secret: "",
    };
    policy::release(tx, &d, "qc-deleted", ctx.rules(), m)?;
    tell_ended(tx, &trid, notices)?;
    let text = format!(
        "{} was not corrected within the quality-control period and was deleted. Reason given: {}",
        q.domain,
        q.reason.as_deref().unwrap_or("-")
    );
    notices.push(domain_notice(
        &d,
        &trid,
        "qc-deleted",
        Outcome::Success,
        text,
    ));
    log(tx, at, &trid, &q.domain, "qc-deleted")
}
