//! The operator's lifecycle commands (cli.md `pending`, lifecycle.md 1 and
//! 5): a written (fax) consent or refusal for a waiting request, and the
//! quality-control decisions.
//!
//! Invariants: each decision is written with the operator's note in the
//! lifecycle log; the registrars are told as for the holder's own answer;
//! a decision on something no longer open changes nothing.

use super::Ctx;
use super::holder::{carry_out, outcome_text, tell_registrars};
use super::notify::{Notice, Recipient};
use crate::policy::{self, Moment};
use crate::rejection::{Code, Rejection};
use crate::reply::{Outcome, rfc3339};
use crate::store::{LogEntry, QcRow, StoreError, Tx};
use chrono::Duration;

/// Why an operator's command changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No open request with that id.
    #[error("no open request with that id")]
    NoRequest,
    /// The domain is not in quality control.
    #[error("the domain is not in quality control")]
    NoQc,
    /// The request could not be carried out and ended unexecuted
    /// (`status-prohibits`: the registry locked the domain;
    /// `registrar-suspended`: the requesting registrar is suspended).
    #[error("the request ended unexecuted: {0}")]
    Blocked(&'static str),
}

fn log(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    trid: &str,
    object: &str,
    event: &str,
    note: Option<&str>,
) -> Result<(), StoreError> {
    tx.log_event(&LogEntry {
        at: &rfc3339(ctx.now),
        server_trid: trid,
        object,
        event,
        actor: "operator",
        note,
    })
}

/// `pending confirm ID --note`: executes the request now (written consent).
pub fn confirm(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    id: i64,
    note: &str,
    notices: &mut Vec<Notice>,
) -> Result<Result<String, Refusal>, StoreError> {
    let Some(r) = tx.request(id)?.filter(|r| r.state == "open") else {
        return Ok(Err(Refusal::NoRequest));
    };
    let trid = tx.next_server_trid()?;
    let secret = ctx.ids.secret();
    let m = Moment {
        at: ctx.now,
        server_trid: &trid,
        secret: &secret,
    };
    match carry_out(tx, ctx, &r, ("confirmed", Some(note)), m, notices)? {
        policy::Execution::Done => {}
        policy::Execution::Blocked(event) => return Ok(Err(Refusal::Blocked(event))),
        policy::Execution::NotOpen => return Ok(Err(Refusal::NoRequest)),
    }
    if r.kind == "transfer" {
        tell_registrars(&r, "confirmed", Outcome::Success, notices);
        tell_registrars(&r, "executed", Outcome::Success, notices);
    } else {
        let n = Notice::about(
            &r,
            Recipient::Registrar(r.registrar_id),
            "executed",
            Outcome::Success,
            outcome_text(&r, "executed"),
        );
        notices.push(n.with(Rejection::new(Code::Executed)));
    }
    log(tx, ctx, &r.server_trid, &r.object, "confirmed", Some(note))?;
    Ok(Ok(r.object))
}

/// `pending reject ID --note`: ends the request unexecuted (refunded).
pub fn reject(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    id: i64,
    note: &str,
    notices: &mut Vec<Notice>,
) -> Result<Result<String, Refusal>, StoreError> {
    let Some(r) = tx.request(id)?.filter(|r| r.state == "open") else {
        return Ok(Err(Refusal::NoRequest));
    };
    let trid = tx.next_server_trid()?;
    let m = Moment {
        at: ctx.now,
        server_trid: &trid,
        secret: "",
    };
    policy::end(tx, &r, "rejected", "rejected", Some(note), m)?;
    if r.kind == "transfer" {
        tell_registrars(&r, "rejected", Outcome::Failed, notices);
    } else {
        notices.push(Notice::about(
            &r,
            Recipient::Registrar(r.registrar_id),
            "rejected",
            Outcome::Failed,
            outcome_text(&r, "rejected"),
        ));
    }
    log(tx, ctx, &r.server_trid, &r.object, "rejected", Some(note))?;
    Ok(Ok(r.object))
}

fn qc_notice(q: &QcRow, event: &str, text: String) -> Notice {
    Notice {
        to: Recipient::Registrar(q.registrar_id),
        event: event.to_string(),
        outcome: if event == "qc-accepted" {
            Outcome::Success
        } else {
            Outcome::Pending
        },
        transaction: "create".into(),
        object: q.domain.clone(),
        registrar_id: Some(q.registrar_id),
        client_trid: None,
        server_trid: q.server_trid.clone(),
        infos: vec![Rejection::new(Code::QualityControl)],
        text,
        bounce_tag: None,
    }
}

/// `qc accept DOMAIN`.
pub fn qc_accept(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    domain: &str,
    notices: &mut Vec<Notice>,
) -> Result<Result<(), Refusal>, StoreError> {
    let Some(q) = tx.qc_of(domain)? else {
        return Ok(Err(Refusal::NoQc));
    };
    let at = rfc3339(ctx.now);
    tx.set_qc(q.id, "accepted", None, q.deadline.as_deref(), Some(&at))?;
    notices.push(qc_notice(
        &q,
        "qc-accepted",
        format!("The quality control of {domain} is complete: accepted."),
    ));
    log(tx, ctx, &q.server_trid, domain, "qc-accepted", None)?;
    Ok(Ok(()))
}

/// `qc request-correction DOMAIN --reason TEXT`: the registrar has
/// `qc_correction_days` to correct the data; then the domain is deleted.
pub fn qc_request_correction(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    domain: &str,
    reason: &str,
    notices: &mut Vec<Notice>,
) -> Result<Result<String, Refusal>, StoreError> {
    let Some(q) = tx.qc_of(domain)? else {
        return Ok(Err(Refusal::NoQc));
    };
    let deadline = rfc3339(ctx.now + Duration::days(ctx.profile.qc_correction_days));
    tx.set_qc(q.id, "correction", Some(reason), Some(&deadline), None)?;
    let text = format!(
        "Quality control of {domain}: please correct the data with update or persupdate by \
         {deadline}; otherwise the domain will be deleted.\n\nReason: {reason}"
    );
    notices.push(qc_notice(&q, "qc-correction-requested", text));
    log(
        tx,
        ctx,
        &q.server_trid,
        domain,
        "qc-correction-requested",
        Some(reason),
    )?;
    Ok(Ok(deadline))
}
