//! Delivery of queued mail: the `file`, `sendmail` and `smtp` transports.
//!
//! Mail stays in the database's outbox until a transport accepts it; a failure
//! is recorded with the time of the next attempt (exponential back-off) and
//! never loses the mail. Mails nobody asked for (notices, answers to unsigned
//! mail) are held back once their recipient had `max_notices_per_hour` of them
//! in the last hour. File names are ours (outbox row id and server-trid),
//! never taken from input.

use crate::config::{Config, Transport};
use crate::store::{OutboxMail, Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use lettre::address::Envelope as SmtpEnvelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{SendmailTransport, SmtpTransport, Transport as _};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
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

/// Delivers every due mail.
pub fn deliver(
    config: &Config,
    data_dir: &Path,
    store: &mut Store,
    now: DateTime<Utc>,
) -> Result<DeliveryReport, DeliveryError> {
    let stamp = super::rfc3339(now);
    let mut report = DeliveryReport::default();
    // A claim lasts long enough for one attempt; a run that dies mid-attempt
    // leaves the mail to be retried when the lease ends.
    let lease = super::rfc3339(now + Duration::minutes(10));
    for mail in store.outbox_due(&stamp)? {
        if let Some(until) = over_cap(config, store, &mail, now)? {
            store.outbox_hold(mail.id, &until)?;
            report.held += 1;
            continue;
        }
        if !store.outbox_claim(mail.id, &stamp, &lease)? {
            continue;
        }
        match send(config, data_dir, &mail) {
            Ok(()) => {
                store.outbox_delivered(mail.id, &stamp)?;
                report.delivered += 1;
            }
            Err(e) => {
                let wait = Duration::minutes(5 * (1_i64 << mail.attempts.clamp(0, 8)));
                tracing::warn!(id = mail.id, error = %e, "delivery deferred");
                store.outbox_failed(mail.id, &e, &super::rfc3339(now + wait))?;
                report.deferred += 1;
            }
        }
    }
    Ok(report)
}

/// When a capped mail may go, if its recipient had the hour's quota already.
fn over_cap(
    config: &Config,
    store: &Store,
    mail: &OutboxMail,
    now: DateTime<Utc>,
) -> Result<Option<String>, DeliveryError> {
    if !mail.capped || config.delivery.max_notices_per_hour == 0 {
        return Ok(None);
    }
    let since = super::rfc3339(now - Duration::hours(1));
    let (count, first) = store.capped_delivered_since(&mail.recipient, &since)?;
    if count < config.delivery.max_notices_per_hour {
        return Ok(None);
    }
    let first = first
        .and_then(|f| DateTime::parse_from_rfc3339(&f).ok())
        .map_or(now, |f| f.with_timezone(&Utc));
    Ok(Some(super::rfc3339(
        first.max(now - Duration::hours(1)) + Duration::hours(1),
    )))
}

fn send(config: &Config, data_dir: &Path, mail: &OutboxMail) -> Result<(), String> {
    let d = &config.delivery;
    match d.transport {
        Transport::File => write_file(&data_dir.join(&d.file_dir), mail).map_err(|e| e.to_string()),
        Transport::Sendmail => {
            let t = SendmailTransport::new_with_command(d.sendmail_command.as_os_str());
            t.send_raw(&envelope(config, mail)?, &mail.message)
                .map_err(|e| e.to_string())
        }
        Transport::Smtp => {
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
            b.build()
                .send_raw(&envelope(config, mail)?, &mail.message)
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
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

/// Writes `<dir>/<id>-<server-trid>.eml` atomically and durably.
fn write_file(dir: &Path, mail: &OutboxMail) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let trid: String = mail
        .server_trid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let name = format!("{:08}-{trid}.eml", mail.id);
    // One temporary name per row (its claim lets one run at a time write
    // it): a run killed mid-write leaves at most this file, and the
    // redelivery after the lease truncates, rewrites and renames it.
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    file.write_all(&mail.message)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(&name))?;
    // The new name is durable before the row is marked delivered.
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
