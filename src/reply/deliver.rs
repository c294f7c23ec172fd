//! Delivery of queued mail: the `file`, `sendmail` and `smtp` transports.
//!
//! Three steps: [`claim`] leases due mails inside a transaction (the
//! template's own in `process` and `replay`, one of its own in [`deliver`]);
//! [`send`] hands them to the transport after that commit, touching no
//! database, so it may run on another thread; [`settle`] records the
//! results in a commit that need not wait for the disk (a lost record only
//! sends the mail again once the 10-minute lease ends).
//! Mail stays in the database's outbox until a transport accepts it; a failure
//! is recorded with the time of the next attempt (exponential back-off) and
//! never loses the mail. Mails nobody asked for (notices, answers to unsigned
//! mail) are held back once their recipient had `max_notices_per_hour` of them
//! in the last hour. The `file` transport itself (atomic, durable files,
//! several synced together) is `files.rs`.

use crate::config::{Config, Transport};
use crate::store::{OutboxMail, Settlement, Store, StoreError, Tx};
use chrono::{DateTime, Duration, Utc};
use lettre::address::Envelope as SmtpEnvelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{SendmailTransport, SmtpTransport, Transport as _};
use std::collections::HashMap;
use std::path::Path;

/// A fault of the outbox itself (the database); transport failures are counted, not raised.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The outbox could not be read or updated.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one delivery run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Accepted by the transport.
    pub delivered: usize,
    /// Left for a later attempt.
    pub deferred: usize,
    /// Held back by the recipient's hourly cap (not an attempt).
    pub held: usize,
}

/// Mails leased to one delivery attempt ([`claim`]).
#[derive(Debug, Default)]
pub struct Claim {
    /// The leased mails, to be [`send`]t once the claim is committed.
    pub mails: Vec<OutboxMail>,
    /// Held back by their recipient's hourly cap.
    pub held: usize,
    /// More mails were due than the limit took.
    pub more: bool,
}

/// What [`send`] did with claimed mails: the rows to settle and the counts.
#[derive(Debug, Default)]
pub struct Sent {
    /// One settlement per mail, for [`Tx::outbox_settle`].
    pub settlements: Vec<Settlement>,
    /// The counts (`held` stays 0: that is the claim's).
    pub report: DeliveryReport,
}

/// Delivers every due mail: claims, sends and settles up to [`CHUNK`]
/// mails at a time (a durable commit for the claim, a relaxed one for the
/// settlement: losing it only sends the mail again).
pub fn deliver(
    config: &Config,
    data_dir: &Path,
    store: &mut Store,
    now: DateTime<Utc>,
) -> Result<DeliveryReport, DeliveryError> {
    let mut report = DeliveryReport::default();
    loop {
        let claimed = store.write(|tx| claim(config, tx, now, CHUNK))?;
        let more = claimed.more;
        report.held += claimed.held;
        let sent = send(config, data_dir, &claimed.mails, now);
        settle(store, &sent, now)?;
        report.delivered += sent.report.delivered;
        report.deferred += sent.report.deferred;
        if !more {
            return Ok(report);
        }
    }
}

/// Leases up to `limit` due mails inside the caller's transaction (the
/// template's own, in pipe mode: the lease is durable with it), holding
/// back those over their recipient's hourly cap.
pub fn claim(
    config: &Config,
    tx: &mut Tx<'_>,
    now: DateTime<Utc>,
    limit: usize,
) -> Result<Claim, StoreError> {
    let stamp = super::rfc3339(now);
    // A lease lasts long enough for one attempt; a run that dies mid-attempt
    // leaves the mail to be retried when the lease ends.
    let lease = super::rfc3339(now + Duration::minutes(10));
    let due = tx.outbox_due(&stamp, limit)?;
    let mut claim = Claim {
        more: due.len() >= limit,
        ..Claim::default()
    };
    // Capped mails this attempt sends, by recipient: not yet marked
    // delivered when the next one's cap is checked.
    let mut sending: HashMap<String, u32> = HashMap::new();
    let mut sendable = Vec::with_capacity(due.len());
    for mail in due {
        let extra = sending.get(&mail.recipient).copied().unwrap_or(0);
        if let Some(until) = over_cap(config, tx, &mail, now, extra)? {
            tx.outbox_hold(mail.id, &until)?;
            claim.held += 1;
            continue;
        }
        if mail.capped {
            *sending.entry(mail.recipient.clone()).or_default() += 1;
        }
        sendable.push(mail);
    }
    let ids: Vec<i64> = sendable.iter().map(|m| m.id).collect();
    let leased = tx.outbox_claim(&ids, &stamp, &lease)?;
    claim.mails = sendable
        .into_iter()
        .filter(|m| leased.contains(&m.id))
        .collect();
    Ok(claim)
}

/// Hands claimed mails to the transport (no database access: this may run
/// on its own thread); a failure defers the mail with exponential back-off.
pub fn send(config: &Config, data_dir: &Path, mails: &[OutboxMail], now: DateTime<Utc>) -> Sent {
    let mut sent = Sent::default();
    if mails.is_empty() {
        return sent;
    }
    for (mail, result) in mails.iter().zip(send_all(config, data_dir, mails)) {
        sent.settlements.push(match result {
            Ok(()) => {
                sent.report.delivered += 1;
                (mail.id, None)
            }
            Err(e) => {
                let wait = Duration::minutes(5 * (1_i64 << mail.attempts.clamp(0, 8)));
                tracing::warn!(id = mail.id, error = %e, "delivery deferred");
                sent.report.deferred += 1;
                (mail.id, Some((e, super::rfc3339(now + wait))))
            }
        });
    }
    sent
}

/// Records what [`send`] did, in a relaxed commit of its own.
pub fn settle(store: &mut Store, sent: &Sent, now: DateTime<Utc>) -> Result<(), StoreError> {
    if sent.settlements.is_empty() {
        return Ok(());
    }
    let stamp = super::rfc3339(now);
    store.write_relaxed(|tx| tx.outbox_settle(&sent.settlements, &stamp))
}

/// Most mails claimed, sent and settled together.
pub const CHUNK: usize = 256;

/// Sends each mail; one result per mail, in order.
fn send_all(config: &Config, data_dir: &Path, mails: &[OutboxMail]) -> Vec<Result<(), String>> {
    let d = &config.delivery;
    match d.transport {
        Transport::File => super::files::write_files(&data_dir.join(&d.file_dir), mails),
        Transport::Sendmail => mails.iter().map(|m| sendmail(config, m)).collect(),
        Transport::Smtp => smtp(config, mails),
    }
}

/// When a capped mail may go, if its recipient had the hour's quota already.
fn over_cap(
    config: &Config,
    tx: &Tx<'_>,
    mail: &OutboxMail,
    now: DateTime<Utc>,
    extra: u32,
) -> Result<Option<String>, StoreError> {
    if !mail.capped || config.delivery.max_notices_per_hour == 0 {
        return Ok(None);
    }
    let since = super::rfc3339(now - Duration::hours(1));
    let (count, first) = tx.capped_delivered_since(&mail.recipient, &since)?;
    if count + extra < config.delivery.max_notices_per_hour {
        return Ok(None);
    }
    let first = first
        .and_then(|f| DateTime::parse_from_rfc3339(&f).ok())
        .map_or(now, |f| f.with_timezone(&Utc));
    Ok(Some(super::rfc3339(
        first.max(now - Duration::hours(1)) + Duration::hours(1),
    )))
}

/// Pipes one mail to the sendmail command.
fn sendmail(config: &Config, mail: &OutboxMail) -> Result<(), String> {
    let t = SendmailTransport::new_with_command(config.delivery.sendmail_command.as_os_str());
    t.send_raw(&envelope(config, mail)?, &mail.message)
        .map_err(|e| e.to_string())
}

/// The SMTP relay of the configuration, built once per delivery run.
fn smtp_transport(config: &Config) -> Result<SmtpTransport, String> {
    let d = &config.delivery;
    let mut b = SmtpTransport::builder_dangerous(d.smtp_host.as_str())
        .port(d.smtp_port)
        .timeout(Some(std::time::Duration::from_secs(30)));
    if d.smtp_starttls {
        let tls = TlsParameters::new(d.smtp_host.clone()).map_err(|e| e.to_string())?;
        b = b.tls(Tls::Required(tls));
    }
    if !d.smtp_user.is_empty() {
        b = b.credentials(Credentials::new(
            d.smtp_user.clone(),
            d.smtp_password.clone(),
        ));
    }
    Ok(b.build())
}

/// Sends each mail through the SMTP relay.
fn smtp(config: &Config, mails: &[OutboxMail]) -> Vec<Result<(), String>> {
    match smtp_transport(config) {
        Ok(t) => mails
            .iter()
            .map(|m| {
                t.send_raw(&envelope(config, m)?, &m.message)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .collect(),
        Err(e) => mails.iter().map(|_| Err(e.clone())).collect(),
    }
}

fn envelope(config: &Config, mail: &OutboxMail) -> Result<SmtpEnvelope, String> {
    let from = config
        .registry
        .email
        .parse()
        .map_err(|e| format!("from: {e}"))?;
    let to = mail.recipient.parse().map_err(|e| format!("to: {e}"))?;
    SmtpEnvelope::new(Some(from), vec![to]).map_err(|e| e.to_string())
}
