//! Record: what a handled mail leaves behind, in its transaction.
//!
//! Input: the assessed mail, the verdict of the stages, the open `Tx`.
//! Output: the journal row, the signed reply queued in the outbox, and the
//! [`Handled`] record. Invariants: every handled mail gets exactly one
//! journal row; a reply goes only to the registrar found by `assess`;
//! errors win over infos (a failed reply carries no info codes).

use super::{Assessed, Ctx, Disposition, Handled, PipelineError, Verdict};
use crate::rejection::{Rejection, Severity, any_error};
use crate::reply::{self, Outcome};
use crate::store::{JournalEntry, JournalKind, Registrar, Tx};

/// Orders findings: infos, warnings, errors; each by line.
pub(super) fn ordered(mut findings: Vec<Rejection>) -> Vec<Rejection> {
    let rank = |r: &Rejection| match r.code.severity() {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Error => 2,
    };
    findings.sort_by_key(|r| (rank(r), r.line.unwrap_or(0), r.code));
    findings.dedup();
    findings
}

/// The journal fields every handled mail shares; callers fill in the rest.
pub(super) fn journal_base<'a>(
    ctx: &'a Ctx<'_>,
    trid: &'a str,
    a: &'a Assessed,
    stamp: &'a str,
) -> JournalEntry<'a> {
    JournalEntry {
        server_trid: trid,
        kind: JournalKind::Answered,
        received: stamp,
        processed: stamp,
        registrar_id: a.signer.as_ref().map(|(id, _)| *id),
        signer: a.signer.as_ref().map(|(_, f)| f.as_str()),
        client_trid: None,
        text_sha256: None,
        transaction: None,
        object: None,
        result: "dropped",
        codes: "",
        message_id: a.inspected.headers.message_id.as_deref(),
        raw_mail: ctx.raw,
        raw_sha256: ctx.raw_sha256,
        reply: None,
    }
}

pub(super) fn answer(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    trid: &str,
    a: &Assessed,
    to: &Registrar,
    mut v: Verdict,
) -> Result<Handled, PipelineError> {
    v.data.findings = ordered(std::mem::take(&mut v.data.findings));
    if any_error(&v.data.findings) {
        v.data.outcome = Outcome::Failed;
        v.data
            .findings
            .retain(|r| r.code.severity() != Severity::Info);
    }
    let envelope = reply::Envelope {
        to: &to.email,
        in_reply_to: a.inspected.headers.message_id.as_deref(),
        message_id: None,
    };
    let message = reply::compose(ctx.config, ctx.key, &v.data, &envelope, ctx.now)?;
    let stamp = reply::rfc3339(ctx.now);
    let queued = tx.queue_mail(trid, &to.email, &message, &stamp)?;
    if a.signer.is_none() {
        // Nobody proved they asked for this answer: it could be reflected
        // off a forged sender or loop with an auto-responder.
        tx.cap_per_hour(queued)?;
    }
    let codes: Vec<u16> = v.data.findings.iter().map(|r| r.code.number()).collect();
    let code_text = reply::code_list(&v.data.findings);
    tx.insert_journal(&JournalEntry {
        kind: v.kind,
        registrar_id: Some(to.id),
        client_trid: v.data.client_trid.as_deref(),
        text_sha256: v.text_sha256.as_deref(),
        transaction: v.data.transaction.as_deref(),
        object: v.data.object.as_deref(),
        result: v.data.outcome.as_str(),
        codes: &code_text,
        reply: Some(&message),
        ..journal_base(ctx, trid, a, &stamp)
    })?;
    Ok(Handled {
        server_trid: trid.to_string(),
        disposition: Disposition::Answered(v.data.outcome),
        registrar_id: Some(to.id),
        transaction: v.data.transaction.clone(),
        codes,
        machine_block: Some(reply::machine_block(&v.data)),
    })
}

pub(super) fn replayed(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    trid: &str,
    a: &Assessed,
    to: &Registrar,
    prior: Option<Vec<u8>>,
) -> Result<Handled, PipelineError> {
    let stamp = reply::rfc3339(ctx.now);
    if let Some(message) = &prior {
        tx.queue_mail(trid, &to.email, message, &stamp)?;
    }
    tx.insert_journal(&JournalEntry {
        kind: JournalKind::Replayed,
        registrar_id: Some(to.id),
        result: "replayed",
        reply: prior.as_deref(),
        ..journal_base(ctx, trid, a, &stamp)
    })?;
    Ok(Handled {
        server_trid: trid.to_string(),
        disposition: Disposition::Replayed,
        registrar_id: Some(to.id),
        transaction: None,
        codes: Vec::new(),
        machine_block: None,
    })
}

/// The record of a mail handled before as `prior`.
pub(super) fn duplicate(prior: String) -> Handled {
    Handled {
        server_trid: prior,
        disposition: Disposition::Duplicate,
        registrar_id: None,
        transaction: None,
        codes: Vec::new(),
        machine_block: None,
    }
}

pub(super) fn drop_mail(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    trid: &str,
    a: &Assessed,
    reason: &'static str,
) -> Result<Handled, PipelineError> {
    let stamp = reply::rfc3339(ctx.now);
    let codes = reply::code_list(&a.findings);
    tx.insert_journal(&JournalEntry {
        kind: JournalKind::Dropped,
        codes: &codes,
        ..journal_base(ctx, trid, a, &stamp)
    })?;
    Ok(Handled {
        server_trid: trid.to_string(),
        disposition: Disposition::Dropped(reason),
        registrar_id: None,
        transaction: None,
        codes: a.findings.iter().map(|r| r.code.number()).collect(),
        machine_block: None,
    })
}
