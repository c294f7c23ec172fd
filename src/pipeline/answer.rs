//! Mail that is not a registrar's template but matters to the lifecycle: a
//! holder's `CONFIRM` / `REJECT` / `OBJECT <token>` answer, and a bounce of
//! a holder mail; and the notices a handled template causes.
//!
//! Invariants: an answer is taken from any sender (the token is the proof)
//! but never answered to the sender: the receipt goes to the address on
//! file; automatic mail (auto-replies quoting the Subject) is never taken as
//! an answer.

use super::{Assessed, Ctx, Disposition, Handled, PipelineError, journal_base};
use crate::lifecycle::{self, Answer, Notice};
use crate::reply::{self, Outcome};
use crate::store::{JournalEntry, JournalKind, Tx};

/// A holder's answer in the Subject of a non-automatic, non-template mail.
pub(super) fn holder_answer(a: &Assessed) -> Option<(lifecycle::Verb, String)> {
    let h = &a.inspected.headers;
    if h.automatic.is_some() {
        return None;
    }
    let subject = h.subject.as_deref()?;
    if subject.trim_start().starts_with("REGISTRAR:") {
        return None;
    }
    lifecycle::parse_answer(subject)
}

/// Carries out a holder's answer and journals it.
pub(super) fn holder(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    life: &mut lifecycle::Ctx<'_>,
    trid: &str,
    a: &Assessed,
    (verb, token): (lifecycle::Verb, &str),
    notices: &mut Vec<Notice>,
) -> Result<Handled, PipelineError> {
    let answer = lifecycle::answer_mail(tx, life, verb, token, trid, notices)?;
    let (disposition, object, result) = match &answer {
        Answer::Applied(event, object) => (
            Disposition::Answered(Outcome::Success),
            Some(object.clone()),
            event.as_str(),
        ),
        Answer::Unknown => (Disposition::Dropped("unknown token"), None, "dropped"),
        Answer::Closed => (
            Disposition::Dropped("request already ended"),
            None,
            "dropped",
        ),
        Answer::NotApplicable => (
            Disposition::Dropped("answer does not fit the request"),
            None,
            "dropped",
        ),
    };
    let stamp = reply::rfc3339(ctx.now);
    let kind = match answer {
        Answer::Applied(..) => JournalKind::Answered,
        _ => JournalKind::Dropped,
    };
    tx.insert_journal(&JournalEntry {
        kind,
        transaction: Some("holder-answer"),
        object: object.as_deref(),
        result,
        ..journal_base(ctx, trid, a, &stamp)
    })?;
    Ok(Handled {
        server_trid: trid.to_string(),
        disposition,
        registrar_id: None,
        transaction: Some("holder-answer".into()),
        codes: Vec::new(),
        machine_block: None,
    })
}

/// After a mail was handled: the notices for the requests its template
/// opened or closed; for a dropped bounce, the holder mails it reports.
pub(super) fn follow_up(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    life: &mut lifecycle::Ctx<'_>,
    handled: &Handled,
    a: &Assessed,
    notices: &mut Vec<Notice>,
) -> Result<(), PipelineError> {
    match handled.disposition {
        Disposition::Answered(_) => {
            notices.extend(lifecycle::after_template(tx, life, &handled.server_trid)?);
        }
        // A bounce after the 2 h ends the transfer at once.
        Disposition::Dropped(_)
            if a.inspected.headers.bounce && !lifecycle::bounced(tx, life, ctx.raw)?.is_empty() =>
        {
            notices.extend(lifecycle::catch_up(tx, life)?);
        }
        _ => {}
    }
    Ok(())
}
