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
//! in the last hour. File names are ours (outbox row id and server-trid),
//! never taken from input.

use crate::config::{Config, Transport};
use crate::store::{OutboxMail, Settlement, Store, StoreError, Tx};
use chrono::{DateTime, Duration, Utc};
use lettre::address::Envelope as SmtpEnvelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{SendmailTransport, SmtpTransport, Transport as _};
use std::collections::HashMap;
use std::fs::File;
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
        Transport::File => write_files(&data_dir.join(&d.file_dir), mails),
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

/// Writes each mail to `<dir>/<id>-<server-trid>.eml`, atomically and
/// durably: every file is written under a temporary name, all are made
/// durable together ([`sync_written`]), renamed, and the directory is synced
/// once before any row is marked delivered.
fn write_files(dir: &Path, mails: &[OutboxMail]) -> Vec<Result<(), String>> {
    // Opened before the files are written: `syncfs` on it reports every
    // writeback error of the file system since then.
    let handle = std::fs::create_dir_all(dir).and_then(|()| File::open(dir));
    let handle = match handle {
        Ok(h) => h,
        Err(e) => return mails.iter().map(|_| Err(e.to_string())).collect(),
    };
    let written: Vec<std::io::Result<(File, String)>> =
        mails.iter().map(|m| write_temporary(dir, m)).collect();
    let files: Vec<&File> = written.iter().flatten().map(|(f, _)| f).collect();
    let mut synced = sync_written(&handle, &files).into_iter();
    let mut results: Vec<Result<(), String>> = written
        .iter()
        .map(|w| match w {
            Err(e) => Err(e.to_string()),
            Ok((_, name)) => match synced.next() {
                Some(Ok(())) => std::fs::rename(dir.join(format!(".{name}.tmp")), dir.join(name))
                    .map_err(|e| e.to_string()),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("not synced".into()),
            },
        })
        .collect();
    // The new names are durable before the rows are marked delivered.
    if let Err(e) = handle.sync_all() {
        for r in &mut results {
            *r = Err(e.to_string());
        }
    }
    results
}

/// Makes the written files durable; one result per file, in order. One
/// file is synced alone; several by one `syncfs(2)` of their file system:
/// one writeback pass and one device flush for the whole group, where one
/// `fsync` per file cost a flush and a wakeup each (decision 95). If
/// `syncfs` fails, each file is synced alone, so that only the files that
/// cannot be made durable are deferred.
fn sync_written(dir: &File, files: &[&File]) -> Vec<std::io::Result<()>> {
    if files.len() > 1 {
        match sync_file_system(dir) {
            Ok(()) => return files.iter().map(|_| Ok(())).collect(),
            Err(e) => tracing::debug!(error = %e, "syncfs failed; syncing file by file"),
        }
    }
    files.iter().map(|f| f.sync_all()).collect()
}

/// `syncfs(2)` on the file system holding `dir`.
#[cfg(target_os = "linux")]
fn sync_file_system(dir: &File) -> std::io::Result<()> {
    rustix::fs::syncfs(dir).map_err(std::io::Error::from)
}

/// Elsewhere there is no `syncfs`: every file is synced alone.
#[cfg(not(target_os = "linux"))]
fn sync_file_system(_dir: &File) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

/// Writes one mail under its temporary name; the file and its final name.
fn write_temporary(dir: &Path, mail: &OutboxMail) -> std::io::Result<(File, String)> {
    let trid: String = mail
        .server_trid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let name = format!("{:08}-{trid}.eml", mail.id);
    // One temporary name per row (its claim lets one run at a time write
    // it): a run killed mid-write leaves at most this file, and the
    // redelivery after the lease truncates, rewrites and renames it.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(dir.join(format!(".{name}.tmp")))?;
    file.write_all(&mail.message)?;
    Ok((file, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(id: i64) -> OutboxMail {
        OutboxMail {
            id,
            server_trid: format!("RM-{id}"),
            recipient: "hostmaster@alpine-domains.test".into(),
            message: format!("mail {id}\r\n").into_bytes(),
            attempts: 0,
            delivered: None,
            last_error: None,
            capped: false,
        }
    }

    /// One mail and a group (synced together) end the same way: each under
    /// its final name with its bytes, no temporary file left.
    #[test]
    fn one_mail_and_a_group_are_written_whole() {
        for count in [1, 5] {
            let dir = tempfile::tempdir().expect("dir");
            let outbox = dir.path().join("outbox");
            let mails: Vec<OutboxMail> = (1..=count).map(mail).collect();
            let results = write_files(&outbox, &mails);
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            let mut names: Vec<String> = std::fs::read_dir(&outbox)
                .expect("outbox")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            let expected: Vec<String> = (1..=count).map(|i| format!("{i:08}-RM{i}.eml")).collect();
            assert_eq!(names, expected);
            for (m, name) in mails.iter().zip(&names) {
                assert_eq!(std::fs::read(outbox.join(name)).expect("file"), m.message);
            }
        }
    }

    /// A directory that cannot be made fails every mail of the group.
    #[test]
    fn an_outbox_that_cannot_be_made_defers_every_mail() {
        let dir = tempfile::tempdir().expect("dir");
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"").expect("file");
        let results = write_files(&blocker.join("outbox"), &[mail(1), mail(2)]);
        assert_eq!(results.len(), 2);
        assert!(results.iter().all(Result::is_err));
    }
}
