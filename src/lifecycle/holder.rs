//! The holder's part (lifecycle.md 1 and 2): one-time tokens, the mails
//! that ask for a confirmation or announce an objection period, reminders,
//! the `CONFIRM` / `REJECT` / `OBJECT <token>` answers, and bounces.
//!
//! Invariants: a token is a 128-bit secret; only its SHA-256 is stored; an
//! answer is accepted from any sender (the token is the proof), but every
//! mail about it goes to the addresses on file, never to the sender; a token
//! works once, while its request is open.

use super::Ctx;
use super::notify::{Notice, Recipient};
use crate::policy::{self, Moment, parse_time};
use crate::rejection::{Code, Rejection};
use crate::reply::{Outcome, rfc3339};
use crate::store::{LogEntry, RequestRow, StoreError, Tx};
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// What a holder's answer says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// `CONFIRM <token>`: the transfer may go ahead.
    Confirm,
    /// `REJECT <token>`: the transfer must not.
    Reject,
    /// `OBJECT <token>`: the held change must not happen.
    Object,
}

/// Finds `CONFIRM|REJECT|OBJECT <token>` in a Subject (any case, any
/// prefix such as `Re:`); the token is 32 hex digits.
pub fn parse_answer(subject: &str) -> Option<(Verb, String)> {
    let words: Vec<&str> = subject.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let verb = match w[0]
            .to_ascii_uppercase()
            .trim_matches(|c: char| !c.is_ascii_alphabetic())
        {
            "CONFIRM" => Verb::Confirm,
            "REJECT" => Verb::Reject,
            "OBJECT" => Verb::Object,
            _ => return None,
        };
        let token = w[1].trim_matches(|c: char| !c.is_ascii_alphanumeric());
        (token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| (verb, token.to_ascii_lowercase()))
    })
}

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.to_ascii_lowercase().as_bytes()))
}

/// The holder a request concerns and the address on file, if usable: not
/// empty, not the registry's, not a registrar's.
fn holder_address(
    tx: &Tx<'_>,
    ctx: &Ctx<'_>,
    r: &RequestRow,
) -> Result<Option<String>, StoreError> {
    let handle = if r.kind == "person-update" {
        Some(r.object.clone())
    } else {
        tx.domain(&r.object)?
            .and_then(|d| d.role("registrant").first().cloned())
    };
    let Some(person) = handle.map(|h| tx.person(&h)).transpose()?.flatten() else {
        return Ok(None);
    };
    // Not usable: the registry's own addresses, and any registrar's
    // registered address (a registrar must not confirm for the holder).
    let email = person.data.email.trim().to_string();
    let usable = email.contains('@')
        && !ctx.config.is_own_address(&email)
        && !tx.is_registrar_address(&email)?;
    Ok(usable.then_some(email))
}

fn issue_token(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    r: &RequestRow,
    at: DateTime<Utc>,
) -> Result<String, StoreError> {
    let token = ctx.ids.secret();
    tx.insert_token(&digest(&token), r.id, &rfc3339(at))?;
    Ok(token)
}

fn how_to_answer(ctx: &Ctx<'_>, r: &RequestRow, token: &str) -> String {
    let robot = &ctx.config.registry.email;
    if r.kind == "transfer" {
        format!(
            "Registrar {} asks to take over the domain {} from its current registrar. You are its \
             holder, so the transfer needs your consent.\n\nTo agree, send a mail from any address \
             to {robot} with this Subject (a Re: in front is fine):\n\nCONFIRM {token}\n\nTo refuse:\
             \n\nREJECT {token}\n\nWithout an answer the request ends unexecuted.",
            r.registrar_id, r.object
        )
    } else {
        format!(
            "Registrar {} asked for a change ({}) of {}, of which you are the holder:\n\n{}\n\n\
             It will be carried out on {} unless you object. To object, send a mail from any \
             address to {robot} with this Subject (a Re: in front is fine):\n\nOBJECT {token}",
            r.registrar_id,
            super::notify::transaction_of(&r.kind),
            r.object,
            what_changes(r),
            r.execute_at.as_deref().unwrap_or(&r.deadline)
        )
    }
}

/// What a held request will change, one `field: value` line each.
fn what_changes(r: &RequestRow) -> String {
    if r.kind == "delete" {
        return format!("the domain {} will be deleted", r.object);
    }
    let value: serde_json::Value = serde_json::from_str(&r.payload).unwrap_or_default();
    let lines: Vec<String> = value
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, v)| !v.is_null() && *k != "name" && *k != "handle")
                .map(|(k, v)| match v {
                    serde_json::Value::String(s) => format!("new {k}: {s}"),
                    other => format!("new {k}: {other}"),
                })
                .collect()
        })
        .unwrap_or_default();
    if lines.is_empty() {
        "(no field changes)".into()
    } else {
        lines.join("\n")
    }
}

/// Mails the holder a new token (`at`: the step's due time).
fn holder_notice(
    ctx: &mut Ctx<'_>,
    tx: &mut Tx<'_>,
    r: &RequestRow,
    (event, at): (&str, DateTime<Utc>),
    notices: &mut Vec<Notice>,
) -> Result<bool, StoreError> {
    let Some(email) = holder_address(tx, ctx, r)? else {
        return Ok(false);
    };
    let token = issue_token(tx, ctx, r, at)?;
    let code = if r.kind == "transfer" {
        Code::PendingHolder
    } else {
        Code::PendingObjection
    };
    let text = how_to_answer(ctx, r, &token);
    let mut notice = Notice::about(r, Recipient::Holder(email), event, Outcome::Pending, text)
        .with(Rejection::new(code));
    notice.bounce_tag = Some((ctx.ids.secret(), r.id));
    notices.push(notice);
    Ok(true)
}

/// Executes a request (`policy::execute`); if it is blocked (the registry
/// locked the domain or suspended the requesting registrar meanwhile), the
/// registrars are told why. Returns what became of it.
pub(super) fn carry_out(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    r: &RequestRow,
    (event, note): (&str, Option<&str>),
    m: Moment<'_>,
    notices: &mut Vec<Notice>,
) -> Result<policy::Execution, StoreError> {
    let execution = policy::execute(tx, r, event, note, ctx.rules(), m)?;
    match execution {
        policy::Execution::Done | policy::Execution::NotOpen => {}
        policy::Execution::Blocked(ev) => {
            if r.kind == "transfer" {
                tell_registrars(r, ev, Outcome::Failed, notices);
            } else {
                let to = Recipient::Registrar(r.registrar_id);
                notices.push(Notice::about(
                    r,
                    to,
                    ev,
                    Outcome::Failed,
                    outcome_text(r, ev),
                ));
            }
            log(tx, r, &rfc3339(m.at), ev, "registry", None)?;
        }
    }
    Ok(execution)
}

/// Notices to both registrars of a transfer (or the requester alone).
pub(super) fn tell_registrars(
    r: &RequestRow,
    event: &str,
    outcome: Outcome,
    notices: &mut Vec<Notice>,
) {
    let mut to = vec![r.registrar_id];
    to.extend(r.other_registrar.filter(|o| *o != r.registrar_id));
    let info = match outcome {
        Outcome::Success => Some(Rejection::new(Code::Executed)),
        Outcome::Pending if r.mode.as_deref() == Some("losing-registrar") => {
            Some(Rejection::new(Code::PendingLosing))
        }
        Outcome::Pending => Some(Rejection::new(Code::PendingHolder)),
        _ => None,
    };
    for id in to {
        let mut n = Notice::about(
            r,
            Recipient::Registrar(id),
            event,
            outcome,
            outcome_text(r, event),
        );
        n.infos.extend(info.clone());
        notices.push(n);
    }
}

/// The registrars' text for an event.
pub(super) fn outcome_text(r: &RequestRow, event: &str) -> String {
    let what = format!(
        "The {} of {} (server-trid {})",
        super::notify::transaction_of(&r.kind),
        r.object,
        r.server_trid
    );
    match event {
        "confirmation-requested" => format!("{what} waits for the holder's confirmation."),
        e if e.starts_with("reminder-") => {
            format!(
                "{what} still waits for the holder's confirmation; the holder was reminded ({e})."
            )
        }
        "transfer-requested" => format!(
            "{what}, requested by registrar {}, waits for the losing registrar's transferack or transfernack.",
            r.registrar_id
        ),
        "confirmed" => format!("{what} was confirmed by the holder."),
        "executed" | "auto-approved" => format!("{what} was carried out ({event})."),
        "objected" => format!("{what} was refused by the holder and not carried out."),
        "rejected" => format!("{what} was refused and not carried out."),
        "withdrawn" => format!("{what} was withdrawn by the requesting registrar."),
        "expired" => format!("{what} ended without an answer and was not carried out."),
        "domain-deleted" => format!("{what} ended unexecuted: the domain was deleted."),
        "status-prohibits" => {
            format!("{what} was not carried out: the domain's status (serverLock) prohibits it.")
        }
        "registrar-suspended" => {
            format!("{what} was not carried out: the registry suspended the requesting registrar.")
        }
        "faulty-data-abort" => format!(
            "{what} ended: the holder has no usable e-mail address or the mail to the holder \
             bounced. Please correct the holder's data."
        ),
        _ => format!("{what}: {event}."),
    }
}

fn log(
    tx: &mut Tx<'_>,
    r: &RequestRow,
    at: &str,
    event: &str,
    actor: &str,
    note: Option<&str>,
) -> Result<(), StoreError> {
    tx.log_event(&LogEntry {
        at,
        server_trid: &r.server_trid,
        object: &r.object,
        event,
        actor,
        note,
    })
}

/// A request was opened by a template: tell the holder and the registrars.
pub(super) fn opened(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    r: &RequestRow,
    notices: &mut Vec<Notice>,
) -> Result<(), StoreError> {
    let at = rfc3339(ctx.now);
    let event = match (r.kind.as_str(), r.mode.as_deref()) {
        ("transfer", Some("losing-registrar")) => "transfer-requested",
        ("transfer", _) => "confirmation-requested",
        _ => "objection-period",
    };
    // The holder is asked in holder-confirmation mode and told of an
    // objection period; a losing-registrar transfer is the registrars' affair.
    let now = ctx.now;
    let told = event != "transfer-requested" && holder_notice(ctx, tx, r, (event, now), notices)?;
    if r.kind == "transfer" {
        if !told && event == "confirmation-requested" {
            let abort = parse_time(&r.requested)? + Duration::hours(ctx.profile.faulty_data_hours);
            tx.set_abort_at(r.id, &rfc3339(abort))?;
        }
        tell_registrars(r, event, Outcome::Pending, notices);
    }
    log(tx, r, &at, event, "registry", None)
}

/// A reminder to the holder (a fresh token; earlier ones stay valid); both
/// registrars are told.
pub(super) fn remind(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    r: &RequestRow,
    k: usize,
    at: DateTime<Utc>,
    notices: &mut Vec<Notice>,
) -> Result<(), StoreError> {
    let event = format!("reminder-{}", k + 1);
    holder_notice(ctx, tx, r, (&event, at), notices)?;
    // Both registrars follow every step of the transfer.
    tell_registrars(r, &event, Outcome::Pending, notices);
    Ok(())
}

/// A request closed by a template: the other party is told.
pub(super) fn closed_by_mail(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    r: &RequestRow,
    notices: &mut Vec<Notice>,
) -> Result<(), StoreError> {
    let event = r.outcome.clone().unwrap_or_else(|| r.state.clone());
    let at = r.closed.clone().unwrap_or_else(|| rfc3339(ctx.now));
    let to = match (r.kind.as_str(), event.as_str()) {
        ("transfer", "withdrawn") => r.other_registrar,
        ("transfer", _) => Some(r.registrar_id),
        _ => None,
    };
    if let Some(id) = to {
        let outcome = if event == "executed" {
            Outcome::Success
        } else {
            Outcome::Failed
        };
        let mut n = Notice::about(
            r,
            Recipient::Registrar(id),
            &event,
            outcome,
            outcome_text(r, &event),
        );
        if outcome == Outcome::Success {
            n.infos.push(Rejection::new(Code::Executed));
        }
        notices.push(n);
    }
    log(
        tx,
        r,
        &at,
        &event,
        &format!("registrar {}", r.registrar_id),
        None,
    )
}

/// What became of a holder's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Applied: the event (`confirmed`, `objected`) and the object.
    Applied(String, String),
    /// No request has this token.
    Unknown,
    /// The request already ended.
    Closed,
    /// The verb does not fit the request (CONFIRM of an objection period).
    NotApplicable,
}

/// Carries out a holder's answer; `trid` is the answer mail's server-trid.
pub fn answer_mail(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    verb: Verb,
    token: &str,
    trid: &str,
    notices: &mut Vec<Notice>,
) -> Result<Answer, StoreError> {
    let Some(r) = tx
        .token_request(&digest(token))?
        .map(|id| tx.request(id))
        .transpose()?
        .flatten()
    else {
        return Ok(Answer::Unknown);
    };
    if r.state != "open" {
        return Ok(Answer::Closed);
    }
    let confirmable = r.kind == "transfer" && r.mode.as_deref() == Some("holder-confirmation");
    let m = Moment {
        at: ctx.now,
        server_trid: trid,
        secret: "",
    };
    let event = match verb {
        Verb::Confirm if !confirmable => return Ok(Answer::NotApplicable),
        Verb::Confirm => {
            let secret = ctx.ids.secret();
            let m = Moment {
                secret: &secret,
                ..m
            };
            let done = carry_out(tx, ctx, &r, ("confirmed", None), m, notices)?;
            if done == policy::Execution::Done {
                tell_registrars(&r, "confirmed", Outcome::Success, notices);
                tell_registrars(&r, "executed", Outcome::Success, notices);
            }
            "confirmed"
        }
        Verb::Reject | Verb::Object => {
            policy::end(tx, &r, "rejected", "objected", None, m)?;
            if r.kind == "transfer" {
                tell_registrars(&r, "objected", Outcome::Failed, notices);
            } else {
                notices.push(Notice::about(
                    &r,
                    Recipient::Registrar(r.registrar_id),
                    "objected",
                    Outcome::Failed,
                    outcome_text(&r, "objected"),
                ));
            }
            "objected"
        }
    };
    if let Some(email) = holder_address(tx, ctx, &r)? {
        let text = format!(
            "Your answer was recorded: {} ({event}). Thank you.",
            r.object
        );
        notices.push(Notice::about(
            &r,
            Recipient::Holder(email),
            &format!("{event}-receipt"),
            Outcome::Success,
            text,
        ));
    }
    log(tx, &r, &rfc3339(ctx.now), event, "holder", None)?;
    Ok(Answer::Applied(event.to_string(), r.object.clone()))
}

/// A bounce of a holder mail, found by the unguessable tag in the
/// Message-ID we gave it (`<tag.holder@domain>`; a forged or guessed one
/// matches nothing): the transfer ends as `faulty-data-abort` 2 h after the
/// request, or at once if that time has passed. Returns the tags found.
pub fn bounced(tx: &mut Tx<'_>, ctx: &Ctx<'_>, raw: &[u8]) -> Result<Vec<String>, StoreError> {
    let text = String::from_utf8_lossy(raw);
    let marker = format!(".holder@{}", ctx.config.registry.domain);
    let mut found: Vec<String> = Vec::new();
    for (pos, _) in text.match_indices(&marker) {
        let Some(tag) = pos.checked_sub(32).and_then(|start| text.get(start..pos)) else {
            continue;
        };
        if !tag.bytes().all(|b| b.is_ascii_hexdigit()) || found.iter().any(|f| f == tag) {
            continue;
        }
        found.push(tag.to_string());
        for id in tx.holder_mail_requests(tag)? {
            let Some(r) = tx.request(id)? else { continue };
            if r.state == "open"
                && r.kind == "transfer"
                && r.mode.as_deref() == Some("holder-confirmation")
            {
                let at = (parse_time(&r.requested)?
                    + Duration::hours(ctx.profile.faulty_data_hours))
                .max(ctx.now);
                tx.set_abort_at(r.id, &rfc3339(at))?;
                log(tx, &r, &rfc3339(ctx.now), "bounced", "registry", None)?;
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_found_in_any_subject() {
        let t = "0123456789abcdef0123456789ABCDEF";
        let low = t.to_ascii_lowercase();
        for (subject, want) in [
            (format!("CONFIRM {t}"), Some((Verb::Confirm, low.clone()))),
            (
                format!("Re: confirm {t}"),
                Some((Verb::Confirm, low.clone())),
            ),
            (
                format!("AW: Re: REJECT {t}."),
                Some((Verb::Reject, low.clone())),
            ),
            (
                format!("[ext] OBJECT <{t}>"),
                Some((Verb::Object, low.clone())),
            ),
            (format!("CONFIRM {}", &t[..31]), None),
            (format!("CONFIRMED {t}"), None),
            ("REGISTRAR: 1001 create X".to_string(), None),
        ] {
            assert_eq!(parse_answer(&subject), want, "{subject}");
        }
    }

    #[test]
    fn tokens_are_stored_as_their_digest_whatever_the_case() {
        let t = "0123456789abcdef0123456789abcdef";
        assert_eq!(digest(t), digest(&t.to_ascii_uppercase()));
        assert_eq!(digest(t).len(), 64);
        assert_ne!(digest(t), t);
    }
}
