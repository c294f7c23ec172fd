//! Pipeline: one mail through every stage, in one database transaction.
//!
//! Input: the raw bytes of one message and an open [`Registry`]. Output: a
//! [`Handled`] record (server-trid, what was done, the queued reply), with the
//! change, its journal row and its outgoing mail committed together, or a
//! [`PipelineError`] (the caller exits 75; nothing was written).
//! Data flow: intake -> auth -> (who may get a reply) -> lifecycle catch-up
//! -> template -> policy -> store, reply, lifecycle notices; a holder's
//! `CONFIRM`/`REJECT`/`OBJECT <token>` mail goes to `answer` instead; see
//! ARCHITECTURE.md. `batch` runs many mails (`replay`): checks ahead on
//! worker threads, several mails per commit; `record` writes what a handled
//! mail leaves (journal row, queued reply). `timer` runs the lifecycle
//! without a mail (tick, projected reads, operator decisions). Invariants: a reply only ever goes
//! to a registrar's registered address (notices: also a holder's address on
//! file); unattributable and automatic mail is journaled and dropped; the
//! same bytes twice are one mail (`Duplicate`: nothing written); only a
//! [`VerifiedBody`] reaches `template`/`policy`.

use crate::auth::{self, AuthError, SigningKey, VerifiedBody, Window};
use crate::clock::Clock;
use crate::config::{Config, ConfigError, Profile};
use crate::ids::IdSource;
use crate::intake::{self, Inspected};
use crate::lifecycle;
use crate::policy;
use crate::rejection::{Code, Rejection, any_error};
use crate::reply::{self, ComposeError, Outcome, ReplyData};
use crate::store::{self, JournalKind, Registrar, Store, StoreError, Tx};
use crate::template::{self, HeaderFields, Parsed};
use chrono::{DateTime, Duration, Utc};
use std::path::{Path, PathBuf};
use std::time::Instant;

mod answer;
mod batch;
mod check;
mod durable;
mod record;
mod timer;

pub use batch::{BatchOptions, handle_batch};
pub use check::check_template;
pub use durable::Unconfirmed;
use record::{answer, drop_mail, duplicate, journal_base, ordered, replayed};
pub use timer::{TickReport, operate, project, tick};

/// Everything a run of regmail works with.
#[derive(Debug)]
pub struct Registry {
    /// The configuration.
    pub config: Config,
    /// The database.
    pub store: Store,
    /// The registry's signing key.
    pub key: SigningKey,
    /// The injected clock.
    pub clock: Box<dyn Clock>,
    /// The injected source of secrets.
    pub ids: Box<dyn IdSource>,
    /// The data directory (outbox files live below it).
    pub data_dir: PathBuf,
}

/// A fault of ours: the MTA must retry (exit 75).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Verification infrastructure.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Building or signing the reply.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// Configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Queueing notifications.
    #[error(transparent)]
    Notify(#[from] lifecycle::notify::NotifyError),
    /// A batch thread could not be started.
    #[error("cannot start a batch thread: {0}")]
    Thread(std::io::Error),
    /// Not applied: the group commit holding it failed (see the log).
    #[error("not applied: the commit of its group failed")]
    GroupAbandoned,
    /// Applied in a batch, but its group could not be made durable (the
    /// WAL sync failed): its reply was not sent, and after a crash the
    /// change may be missing. The cause is in the message, not also a
    /// `source` (a chain would print it twice), as for `Thread`.
    #[error("applied, but not known to be on disk: {0}")]
    NotDurable(Unconfirmed),
}

/// What was done with a mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Answered with this result.
    Answered(Outcome),
    /// A repeated template: the stored reply was sent again.
    Replayed,
    /// Not answered on purpose (the reason); journaled and kept.
    Dropped(&'static str),
    /// Exactly these bytes were handled before (the MTA delivered the mail
    /// again): nothing is applied, queued or journaled a second time.
    Duplicate,
}

/// The record of one handled mail.
#[derive(Debug, Clone)]
pub struct Handled {
    /// Our id for it.
    pub server_trid: String,
    /// What was done.
    pub disposition: Disposition,
    /// The registrar answered.
    pub registrar_id: Option<u32>,
    /// The transaction of the template, if one was read.
    pub transaction: Option<String>,
    /// Every code reported.
    pub codes: Vec<u16>,
    /// The machine block of the reply, if one was made.
    pub machine_block: Option<String>,
}

/// Commit the outcome, or roll it back (`regmail check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Commit, then deliver.
    Commit,
    /// Do everything, then roll back; deliver nothing.
    Simulate,
}

/// The result of the stages before the database transaction.
struct Assessed {
    inspected: Inspected,
    findings: Vec<Rejection>,
    verified: Option<Verified>,
    signer: Option<(u32, String)>,
    recipient: Option<Registrar>,
}

/// A verified template, its digest and its parse: none of them needs the
/// database, so they are made in `assess`, ahead of the writing thread in
/// a batch.
struct Verified {
    body: VerifiedBody,
    /// SHA-256 of the signed text, hex: what a replay is recognised by.
    text_sha256: String,
    fields: HeaderFields,
    parsed: Parsed,
}

/// One mail after the stages that write nothing: its bytes (cut to the
/// limit), their digest, its instant and what intake and auth found.
struct Prepared<'m> {
    raw: &'m [u8],
    raw_sha256: String,
    now: DateTime<Utc>,
    assessed: Assessed,
    started: Instant,
}

/// What applying a mail borrows of the registry.
struct Parts<'r> {
    config: &'r Config,
    profile: &'r Profile,
    key: &'r SigningKey,
    ids: &'r mut dyn IdSource,
}

/// Intake, signature and recipient of one mail: reads only, so it can run
/// on another thread with its own connection ([`handle_batch`]).
fn prepare<'m>(
    config: &Config,
    store: &Store,
    raw: &'m [u8],
    now: DateTime<Utc>,
) -> Result<Prepared<'m>, PipelineError> {
    let started = Instant::now();
    // A mail over the limit is refused unread: no stage (nor the journal)
    // sees more of it than `process` keeps of its pipe.
    let raw = &raw[..raw.len().min(config.mail.max_mail_bytes.saturating_add(1))];
    let assessed = assess(config, store, raw, now)?;
    Ok(Prepared {
        raw,
        raw_sha256: store::raw_digest(raw),
        now,
        assessed,
        started,
    })
}

/// Handles one mail.
pub fn handle(reg: &mut Registry, raw: &[u8], mode: Mode) -> Result<Handled, PipelineError> {
    let now = reg.clock.now();
    let mail = prepare(&reg.config, &reg.store, raw, now)?;
    let Registry {
        config,
        store,
        key,
        ids,
        ..
    } = reg;
    let mut parts = Parts {
        config,
        profile: config.profile()?,
        key,
        ids: ids.as_mut(),
    };
    let (handled, claim) = match mode {
        // The replies are leased to this run in the template's own commit.
        Mode::Commit => store.write(|tx| {
            let handled = apply_mail(tx, &mut parts, &mail)?;
            let claim = reply::claim(config, tx, now, reply::CHUNK)?;
            Ok::<_, PipelineError>((handled, Some(claim)))
        })?,
        Mode::Simulate => store
            .simulate(|tx| Ok::<_, PipelineError>((apply_mail(tx, &mut parts, &mail)?, None)))?,
    };
    log_handled(&handled, mail.started);
    if let Some(claim) = claim {
        send_claimed(&reg.config, &reg.data_dir, &mut reg.store, claim, now);
    }
    Ok(handled)
}

/// Sends mails leased in a committed transaction, settles them, and
/// delivers whatever else is due if the lease did not take it all.
fn send_claimed(
    config: &Config,
    data_dir: &Path,
    store: &mut Store,
    claim: reply::Claim,
    now: DateTime<Utc>,
) {
    let sent = reply::send(config, data_dir, &claim.mails, now);
    record_sent(store, &sent, now);
    if claim.more {
        deliver_outbox(config, data_dir, store, now);
    }
}

/// Applies one prepared mail inside the caller's transaction.
fn apply_mail(
    tx: &mut Tx<'_>,
    parts: &mut Parts<'_>,
    mail: &Prepared<'_>,
) -> Result<Handled, PipelineError> {
    if let Some(prior) = tx.mail_seen(&mail.raw_sha256)? {
        return Ok(duplicate(prior));
    }
    let (config, key, now) = (parts.config, parts.key, mail.now);
    // What fell due before this mail is applied first, so the mail sees
    // the same state whether or not the timer ran (lifecycle.md).
    let mut life = lifecycle::Ctx {
        config,
        profile: parts.profile,
        ids: &mut *parts.ids,
        now,
    };
    let mut notices = lifecycle::catch_up(tx, &mut life)?;
    let secret = life.ids.secret();
    let trid = tx.next_server_trid()?;
    let ctx = Ctx {
        config,
        key,
        now,
        raw: mail.raw,
        raw_sha256: &mail.raw_sha256,
        secret: &secret,
    };
    let assessed = &mail.assessed;
    let handled = match answer::holder_answer(assessed) {
        Some((verb, token)) => answer::holder(
            tx,
            &ctx,
            &mut life,
            &trid,
            assessed,
            (verb, &token),
            &mut notices,
        )?,
        None => {
            let handled = decide(tx, &ctx, &trid, assessed)?;
            answer::follow_up(tx, &ctx, &mut life, &handled, assessed, &mut notices)?;
            handled
        }
    };
    lifecycle::notify::queue(tx, config, key, notices, now)?;
    Ok(handled)
}

/// One log line per handled mail: who, what, the result, codes, time taken.
fn log_handled(handled: &Handled, started: Instant) {
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    let codes: Vec<String> = handled.codes.iter().map(u16::to_string).collect();
    tracing::info!(
        registrar = handled.registrar_id.map_or_else(|| "-".to_string(), |r| r.to_string()),
        transaction = handled.transaction.as_deref().unwrap_or("-"),
        result = disposition_word(handled.disposition),
        codes = codes.join(","),
        server_trid = %handled.server_trid,
        ms = format!("{:.2}", started.elapsed().as_secs_f64() * 1e3),
        "mail handled"
    );
}

/// The word for a disposition (`replay` lines, the log).
pub fn disposition_word(d: Disposition) -> &'static str {
    match d {
        Disposition::Answered(o) => o.as_str(),
        Disposition::Replayed => "replayed",
        Disposition::Dropped(_) => "dropped",
        Disposition::Duplicate => "duplicate",
    }
}

/// Records what was sent; a failure only means the mails are sent again
/// when their lease ends.
fn record_sent(store: &mut Store, sent: &reply::Sent, now: DateTime<Utc>) {
    if let Err(e) = reply::settle(store, sent, now) {
        tracing::warn!(error = %e, "delivery not recorded; the mail will be sent again");
    }
}

/// Tries to deliver the outbox after a commit; a failure leaves it queued.
fn deliver_outbox(config: &Config, data_dir: &Path, store: &mut Store, now: DateTime<Utc>) {
    if let Err(e) = reply::deliver(config, data_dir, store, now) {
        tracing::warn!(error = %e, "delivery postponed; the mail stays in the outbox");
    }
}

/// Mail layer, signature, and who may be answered: no writes.
fn assess(
    config: &Config,
    store: &Store,
    raw: &[u8],
    now: DateTime<Utc>,
) -> Result<Assessed, PipelineError> {
    let inspected = intake::inspect(raw, &config.mail);
    let mut findings = inspected.findings.clone();
    let window = Window {
        max_age: Duration::hours(config.mail.signature_max_age_hours),
        max_future: Duration::minutes(config.mail.signature_max_future_minutes),
    };
    let (mut verified, mut signer) = (None, None);
    if let Some(block) = &inspected.signed_block {
        match auth::verify(block, store, now, window)? {
            Ok(body) => {
                signer = Some((
                    body.signer().registrar_id,
                    body.signer().fingerprint.clone(),
                ));
                verified = Some(body);
            }
            Err(refusal) => {
                signer = refusal.signer.map(|s| (s.registrar_id, s.fingerprint));
                findings.push(refusal.rejection);
            }
        }
    }
    let recipient = match (&inspected.headers.automatic, &signer) {
        (Some(_), _) => None,
        (None, Some((id, _))) => store.registrar(*id)?,
        (None, None) => by_address(store, &inspected)?,
    };
    if any_error(&findings) {
        verified = None;
    }
    let verified = match verified {
        Some(body) => Some(parse_verified(config, body)?),
        None => None,
    };
    Ok(Assessed {
        inspected,
        findings,
        verified,
        signer,
        recipient,
    })
}

/// Digests, parses and validates a verified template (the envelope, the
/// object, the typed spec).
fn parse_verified(config: &Config, body: VerifiedBody) -> Result<Verified, PipelineError> {
    let (fields, parsed) = template::parse_template(body.text(), config.profile()?, &config.limits);
    Ok(Verified {
        text_sha256: store::text_digest(body.text()),
        body,
        fields,
        parsed,
    })
}

/// The registrar whose registered address sent the mail (envelope sender first).
fn by_address(store: &Store, inspected: &Inspected) -> Result<Option<Registrar>, StoreError> {
    let h = &inspected.headers;
    for addr in [h.return_path.as_deref(), h.from.as_deref()]
        .into_iter()
        .flatten()
    {
        if let Some(r) = store.registrar_by_email(addr)? {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

struct Ctx<'a> {
    config: &'a Config,
    key: &'a SigningKey,
    now: DateTime<Utc>,
    raw: &'a [u8],
    raw_sha256: &'a str,
    secret: &'a str,
}

/// What the transaction will record and answer.
struct Verdict {
    kind: JournalKind,
    data: ReplyData,
    text_sha256: Option<String>,
}

fn decide(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    trid: &str,
    a: &Assessed,
) -> Result<Handled, PipelineError> {
    let Some(recipient) = a.recipient.clone() else {
        let reason = a
            .inspected
            .headers
            .automatic
            .unwrap_or("sender is not a registrar");
        return drop_mail(tx, ctx, trid, a, reason);
    };
    let base = ReplyData {
        registrar_id: Some(recipient.id),
        findings: a.findings.clone(),
        subject_echo: a
            .inspected
            .headers
            .subject
            .as_deref()
            .map(reply::subject_echo),
        ..ReplyData::new(trid, ctx.now)
    };
    let verdict = match &a.verified {
        None => Verdict {
            kind: JournalKind::Answered,
            data: base,
            text_sha256: None,
        },
        Some(verified) => match template_verdict(tx, ctx, verified, base)? {
            Ok(v) => v,
            Err(prior_reply) => return replayed(tx, ctx, trid, a, &recipient, prior_reply),
        },
    };
    answer(tx, ctx, trid, a, &recipient, verdict)
}

/// Parses and applies a verified template; `Err` carries the stored reply of a replay.
fn template_verdict(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    Verified {
        body,
        text_sha256,
        fields,
        parsed,
    }: &Verified,
    mut data: ReplyData,
) -> Result<Result<Verdict, Option<Vec<u8>>>, PipelineError> {
    let profile = ctx.config.profile()?;
    fill_from_header(&mut data, fields);
    data.quoted = Some(body.text().to_string());
    let sha = text_sha256.clone();
    let signer_id = body.signer().registrar_id;
    if fields.registrar_id.is_some_and(|id| id != signer_id) {
        data.findings.push(
            Rejection::new(Code::KeyNotRegistered)
                .key("registrar-id")
                .detail(format!("signed by registrar {signer_id}")),
        );
        return Ok(Ok(answered(data, sha)));
    }
    let binds = fields.client_trid.is_some() && fields.registrar_id.is_some() && !fields.dry_run;
    let prior = match (binds, &fields.client_trid) {
        (true, Some(trid)) => tx.prior_transaction(signer_id, trid)?,
        _ => None,
    };
    if let Some(prior) = prior {
        if prior.text_sha256 == sha {
            return Ok(Err(prior.reply));
        }
        data.findings.push(
            Rejection::new(Code::DuplicateClientTrid)
                .key("client-trid")
                .detail(format!("used by {}", prior.server_trid)),
        );
        return Ok(Ok(answered(data, sha)));
    }
    let kind = if binds {
        JournalKind::Transaction
    } else {
        JournalKind::Answered
    };
    let verified = VerifiedTemplate {
        body,
        profile,
        dry_run: fields.dry_run,
    };
    apply_parsed(tx, ctx, &verified, parsed, &mut data)?;
    Ok(Ok(Verdict {
        kind,
        data,
        text_sha256: Some(sha),
    }))
}

/// An answer (no transaction bound) to the template with this digest.
fn answered(data: ReplyData, sha: String) -> Verdict {
    Verdict {
        kind: JournalKind::Answered,
        data,
        text_sha256: Some(sha),
    }
}

/// The verified template being applied, with what `policy` needs of it.
struct VerifiedTemplate<'a> {
    body: &'a VerifiedBody,
    profile: &'a Profile,
    dry_run: bool,
}

/// Records the parse result and, for a valid spec, what `policy` decided.
fn apply_parsed(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    t: &VerifiedTemplate<'_>,
    parsed: &Parsed,
    data: &mut ReplyData,
) -> Result<(), PipelineError> {
    match parsed {
        Err(errors) => data.findings.extend(errors.iter().cloned()),
        Ok((spec, warnings)) => {
            data.findings.extend(warnings.iter().cloned());
            data.object = Some(spec.object().to_string());
            let (server_trid, client_trid) = (data.server_trid.clone(), data.client_trid.clone());
            let rules = policy::Rules {
                config: ctx.config,
                profile: t.profile,
            };
            let act = policy::Act {
                registrar_id: t.body.signer().registrar_id,
                now: ctx.now,
                server_trid: &server_trid,
                client_trid: client_trid.as_deref(),
                dry_run: t.dry_run,
                secret: ctx.secret,
            };
            match policy::apply(tx, t.body, spec, rules, act)? {
                Err(errors) => data.findings.extend(errors),
                Ok(decision) => {
                    data.outcome = decision.outcome;
                    data.object = Some(decision.object);
                    data.handle = decision.handle;
                    data.expires = decision.expires;
                    data.avail = decision.avail;
                    data.appendix = decision.appendix;
                    data.findings.extend(decision.infos);
                }
            }
        }
    }
    Ok(())
}

fn fill_from_header(data: &mut ReplyData, fields: &HeaderFields) {
    data.transaction = fields.transaction.map(|t| t.name().to_string());
    data.client_trid = fields.client_trid.clone();
    data.object = fields.object.clone();
    data.language = fields.language;
}
