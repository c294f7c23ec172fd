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
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{SendmailTransport, SmtpTransport, Transport as _};
use std::borrow::Cow;
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
        Transport::Smtp => smtp(config, data_dir, mails),
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

/// The SMTP relay of the configuration, built once per delivery run. With
/// lettre's `pool` feature the run's mails share one connection (checked
/// with NOOP before each reuse; a refused mail's connection is closed and
/// the next mail opens another), and dropping the transport at the end of
/// the run sends QUIT: one TCP and TLS handshake per run, not per mail.
fn smtp_transport(config: &Config, data_dir: &Path) -> Result<SmtpTransport, String> {
    let d = &config.delivery;
    let mut b = SmtpTransport::builder_dangerous(d.smtp_host.as_str())
        .port(d.smtp_port)
        .timeout(Some(std::time::Duration::from_secs(30)));
    if d.smtp_starttls {
        b = b.tls(Tls::Required(tls_parameters(config, data_dir)?));
    } else if d.smtp_ca_file.is_some() {
        return Err(
            "smtp_ca_file is set but smtp_starttls is off: the mail would go \
                    without TLS; set smtp_starttls = true"
                .to_string(),
        );
    }
    if !d.smtp_user.is_empty() {
        if !d.smtp_starttls && !is_loopback(&d.smtp_host) {
            return Err(format!(
                "smtp_user is set but smtp_starttls is off: the password would cross \
                 the network in clear to {}; set smtp_starttls = true",
                d.smtp_host
            ));
        }
        b = b.credentials(Credentials::new(
            d.smtp_user.clone(),
            d.smtp_password.clone(),
        ));
    }
    Ok(b.build())
}

/// STARTTLS towards the relay: its certificate must name `smtp_host` and
/// chain to the public roots or, with `smtp_ca_file`, to those CAs only.
fn tls_parameters(config: &Config, data_dir: &Path) -> Result<TlsParameters, String> {
    let d = &config.delivery;
    let mut tls = TlsParameters::builder(d.smtp_host.clone());
    if let Some(file) = &d.smtp_ca_file {
        let path = data_dir.join(file);
        let pem = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        const BEGIN: &[u8] = b"-----BEGIN CERTIFICATE-----";
        if !pem.windows(BEGIN.len()).any(|w| w == BEGIN) {
            return Err(format!("{}: no PEM certificate in it", path.display()));
        }
        let cas = Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", path.display()))?;
        tls = tls
            .certificate_store(CertificateStore::None)
            .add_root_certificate(cas);
    }
    tls.build().map_err(|e| e.to_string())
}

/// `localhost` or a loopback address: a relay on this machine.
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Sends each mail through the SMTP relay.
fn smtp(config: &Config, data_dir: &Path, mails: &[OutboxMail]) -> Vec<Result<(), String>> {
    match smtp_transport(config, data_dir) {
        Ok(t) => mails
            .iter()
            .map(|m| {
                t.send_raw(&envelope(config, m)?, &wire_form(&m.message))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
            .collect(),
        Err(e) => mails.iter().map(|_| Err(e.clone())).collect(),
    }
}

/// The message as SMTP's DATA wants it from lettre: every line end CRLF
/// (RFC 5321 2.3.8: lettre doubles a leading dot only after CRLF, so a
/// bare LF followed by "." could end the data early at a lenient relay,
/// and a relay guarding against smuggling refuses bare LFs), without the
/// last one, which lettre sends itself before the final dot (with it, the
/// relay would store one empty line more than the outbox). The outbox
/// holds text mails with CRLF line ends (`reply::compose`); a lone CR is
/// passed on as it is.
fn wire_form(message: &[u8]) -> Cow<'_, [u8]> {
    let bare = |i: usize, b: &u8| *b == b'\n' && (i == 0 || message[i - 1] != b'\r');
    if !message.iter().enumerate().any(|(i, b)| bare(i, b)) {
        return Cow::Borrowed(message.strip_suffix(b"\r\n").unwrap_or(message));
    }
    let mut crlf = Vec::with_capacity(message.len() + message.len() / 32);
    for (i, b) in message.iter().enumerate() {
        if bare(i, b) {
            crlf.push(b'\r');
        }
        crlf.push(*b);
    }
    if crlf.ends_with(b"\r\n") {
        crlf.truncate(crlf.len() - 2);
    }
    Cow::Owned(crlf)
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

#[cfg(test)]
mod tests {
    use super::{is_loopback, smtp_transport, wire_form};
    use crate::config::Config;
    use std::path::Path;

    /// A password goes in clear only to a relay on this machine.
    #[test]
    fn credentials_without_starttls_stay_on_this_machine() {
        for (host, refused) in [
            ("relay.example", true),
            ("192.0.2.25", true),
            ("localhost", false),
            ("127.0.0.1", false),
            ("::1", false),
            ("[::1]", false),
        ] {
            let mut config = Config::default();
            config.delivery.smtp_host = host.to_string();
            config.delivery.smtp_user = "regmail".to_string();
            let result = smtp_transport(&config, Path::new("."));
            assert_eq!(result.is_err(), refused, "{host}");
            assert_eq!(is_loopback(host), !refused, "{host}");
            config.delivery.smtp_starttls = true;
            assert!(smtp_transport(&config, Path::new(".")).is_ok(), "{host}");
        }
    }

    /// A CA file asks for TLS: without STARTTLS nothing goes out.
    #[test]
    fn a_ca_file_without_starttls_is_refused() {
        let mut config = Config::default();
        config.delivery.smtp_ca_file = Some("relay-ca.pem".into());
        let refused = smtp_transport(&config, Path::new(".")).err();
        assert!(refused.is_some_and(|e| e.contains("smtp_starttls is off")));
    }

    #[test]
    fn the_wire_form_is_crlf_without_the_last_line_end() {
        assert_eq!(&*wire_form(b"A: b\r\n\r\nbody\r\n"), b"A: b\r\n\r\nbody");
        assert_eq!(&*wire_form(b"A: b\n\nbody\n"), b"A: b\r\n\r\nbody");
        assert_eq!(&*wire_form(b"A: b\r\n\nbody"), b"A: b\r\n\r\nbody");
        assert_eq!(&*wire_form(b"\n.\n"), b"\r\n.");
        assert_eq!(&*wire_form(b""), b"");
    }
}
