//! Reply: the signed answer to a registrar (reply.md), and its delivery.
//!
//! Input: a [`ReplyData`] made by the pipeline (result, ids, times, every
//! finding) and the registry's key. Output: the reply body (machine block,
//! human text in `de` or `en`, the quoted signed original), cleartext-signed,
//! wrapped in an RFC 5322 message by lettre ([`compose`]); [`deliver`] moves
//! queued mail out through the configured transport. Invariants: every line
//! is 7-bit ASCII and at most 78 characters; all times are UTC; the same data
//! at the same instant gives the same bytes, the signature aside (its time
//! is the injected clock's, but sequoia salts every signature with a random
//! notation, so two signatures of the same text differ).

mod deliver;
mod files;
mod human;
mod mail;

pub use deliver::{
    CHUNK, Claim, DeliveryError, DeliveryReport, Sent, claim, deliver, send, settle,
};
pub use mail::{ComposeError, Envelope, compose, compose_digest, seven_bit_body};

use crate::rejection::{Code, Rejection, Severity, printable};
use crate::template::Language;
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write as _;

/// The longest line of any mail we send.
pub const MAX_LINE: usize = 78;

/// The `result:` of a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Executed.
    Success,
    /// Accepted, waiting.
    Pending,
    /// Nothing changed; every problem listed.
    Failed,
    /// A temporary fault on our side.
    Exception,
}

impl Outcome {
    /// The word in the machine block and Subject.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Pending => "pending",
            Outcome::Failed => "failed",
            Outcome::Exception => "exception",
        }
    }
}

/// Everything a reply says.
#[derive(Debug, Clone)]
pub struct ReplyData {
    /// The result.
    pub outcome: Outcome,
    /// The registrar answered.
    pub registrar_id: Option<u32>,
    /// Transaction name, if known.
    pub transaction: Option<String>,
    /// Domain or handle, if known.
    pub object: Option<String>,
    /// The registrar's id, if known.
    pub client_trid: Option<String>,
    /// Ours.
    pub server_trid: String,
    /// When the mail arrived.
    pub received: DateTime<Utc>,
    /// When it was handled.
    pub processed: DateTime<Utc>,
    /// Assigned handle (perscreate).
    pub handle: Option<String>,
    /// New expiry (create, renew, regtransfer).
    pub expires: Option<DateTime<Utc>>,
    /// `check` answer.
    pub avail: Option<bool>,
    /// Infos, warnings and errors, in order.
    pub findings: Vec<Rejection>,
    /// Language of the human text.
    pub language: Language,
    /// The signed text of the original template, if it verified.
    pub quoted: Option<String>,
    /// The free text of the incoming Subject after `REGISTRAR:`, echoed.
    pub subject_echo: Option<String>,
    /// An object in template syntax, after the machine block (`info`).
    pub appendix: Option<String>,
    /// What happened, in a notification (lifecycle.md): `expired`, ...
    pub event: Option<String>,
    /// A notification's own human text, in place of the reply summary.
    pub notice: Option<String>,
}

impl ReplyData {
    /// A failed reply with nothing known yet but its server-trid and time.
    pub fn new(server_trid: &str, now: DateTime<Utc>) -> ReplyData {
        ReplyData {
            outcome: Outcome::Failed,
            registrar_id: None,
            transaction: None,
            object: None,
            client_trid: None,
            server_trid: server_trid.to_string(),
            received: now,
            processed: now,
            handle: None,
            expires: None,
            avail: None,
            findings: Vec::new(),
            language: Language::default(),
            quoted: None,
            subject_echo: None,
            appendix: None,
            event: None,
            notice: None,
        }
    }
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-22T08:15:02.123Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The free text of an incoming Subject to echo: after `REGISTRAR:`, printable
/// ASCII only, at most 60 characters.
pub fn subject_echo(subject: &str) -> String {
    let rest = subject.trim_start();
    let rest = rest.strip_prefix("REGISTRAR:").unwrap_or(rest).trim();
    printable(rest, 60).trim_end().to_string()
}

/// Keeps a header or machine-block value to safe characters.
pub fn safe_token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-_:@+".contains(*c))
        .take(64)
        .collect()
}

fn cut(line: String) -> String {
    if line.len() <= MAX_LINE {
        return line;
    }
    let mut s: String = line.chars().take(MAX_LINE - 3).collect();
    s.push_str("...");
    s
}

/// One machine-block line: printable, no trailing space, cut to [`MAX_LINE`]
/// (a value may carry input text: a detail quoting a bad value).
fn field(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(
        out,
        "{}",
        fit(&format!("{:<14}{}", format!("{key}:"), value))
    );
}

/// A key as shown in replies: letters, digits, hyphens and single spaces.
fn safe_key(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(40)
        .collect()
}

/// One finding as in the machine block: `<code> [line <n>] [key "<k>"] <text>`.
///
/// The text is the code's stable description and the detail; where that does
/// not fit the line, the (more specific) detail alone, then a cut. Printable,
/// with no trailing space (a detail may quote input).
pub fn finding_text(r: &Rejection) -> String {
    let mut s = r.code.number().to_string();
    if let Some(n) = r.line {
        let _ = write!(s, " line {n}");
    }
    if let Some(k) = &r.key {
        let _ = write!(s, " key \"{}\"", safe_key(k));
    }
    let room = MAX_LINE.saturating_sub(15 + s.len());
    let full = match &r.detail {
        Some(d) => format!("{}: {d}", r.code.text_en()),
        None => r.code.text_en().to_string(),
    };
    let text = match &r.detail {
        Some(d) if full.len() > room => d.clone(),
        _ => full,
    };
    let _ = write!(s, " {text}");
    printable(&s, s.len()).trim_end().to_string()
}

/// The machine block, `%% REPLY 1.0` to `%% END`.
pub fn machine_block(d: &ReplyData) -> String {
    let mut out = String::from("%% REPLY 1.0\n");
    field(&mut out, "result", d.outcome.as_str());
    let opt = |v: &Option<String>| v.as_deref().map(safe_token).unwrap_or_else(|| "-".into());
    field(
        &mut out,
        "registrar-id",
        &d.registrar_id
            .map(|r| r.to_string())
            .unwrap_or_else(|| "-".into()),
    );
    field(&mut out, "transaction", &opt(&d.transaction));
    field(&mut out, "object", &opt(&d.object));
    field(&mut out, "client-trid", &opt(&d.client_trid));
    field(&mut out, "server-trid", &d.server_trid);
    field(&mut out, "received", &rfc3339(d.received));
    field(&mut out, "processed", &rfc3339(d.processed));
    if let Some(h) = &d.handle {
        field(&mut out, "handle", h);
    }
    if let Some(e) = d.expires {
        field(&mut out, "expires", &rfc3339(e));
    }
    if let Some(a) = d.avail {
        field(&mut out, "avail", if a { "yes" } else { "no" });
    }
    if let Some(e) = &d.event {
        field(&mut out, "event", &safe_token(e));
    }
    for r in &d.findings {
        let key = match r.code.severity() {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        field(&mut out, key, &finding_text(r));
    }
    out.push_str("%% END\n");
    out
}

/// The whole body before signing.
pub fn render_body(d: &ReplyData) -> String {
    let mut out = machine_block(d);
    out.push('\n');
    if let Some(a) = &d.appendix {
        for line in a.lines() {
            out.push_str(&fit(line));
            out.push('\n');
        }
        out.push('\n');
    }
    out.push_str(&human::text(d));
    if let Some(q) = &d.quoted {
        out.push('\n');
        for line in q.lines() {
            quote_line(&mut out, line);
        }
    }
    out
}

/// A line made printable and cut to [`MAX_LINE`].
fn fit(line: &str) -> String {
    cut(printable(line, line.len()).trim_end().to_string())
}

fn quote_line(out: &mut String, line: &str) {
    let clean = printable(line, line.len());
    let clean = clean.trim_end();
    if clean.is_empty() {
        out.push_str(">\n");
        return;
    }
    let mut rest = clean;
    while !rest.is_empty() {
        let take = rest.len().min(MAX_LINE - 2);
        let _ = writeln!(out, "> {}", rest[..take].trim_end());
        rest = &rest[take..];
    }
}

/// The Subject: `REGISTRY: <result> <transaction> <object> [<client-trid>]`.
pub fn subject(d: &ReplyData) -> String {
    let opt = |v: &Option<String>| {
        v.as_deref()
            .map(safe_token)
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "-".into())
    };
    let mut s = format!(
        "REGISTRY: {} {} {}",
        d.outcome.as_str(),
        opt(&d.transaction),
        opt(&d.object)
    );
    if let Some(t) = d
        .client_trid
        .as_deref()
        .map(safe_token)
        .filter(|s| !s.is_empty())
    {
        let _ = write!(s, " [{t}]");
    }
    s
}

/// The findings that are errors, for the journal's code list.
pub fn code_list(findings: &[Rejection]) -> String {
    let mut codes: Vec<u16> = findings.iter().map(|r| r.code.number()).collect();
    codes.dedup();
    codes
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The info code for an outcome.
pub fn info_for(outcome: Outcome) -> Option<Rejection> {
    match outcome {
        Outcome::Success => Some(Rejection::new(Code::Executed)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn data() -> ReplyData {
        let t = Utc.with_ymd_and_hms(2026, 11, 22, 8, 15, 2).unwrap();
        ReplyData {
            outcome: Outcome::Failed,
            registrar_id: Some(1001),
            transaction: Some("create".into()),
            object: Some("example.at".into()),
            client_trid: Some("T-1".into()),
            server_trid: "RM0000000001".into(),
            received: t,
            processed: t,
            handle: None,
            expires: None,
            avail: None,
            findings: vec![
                Rejection::new(Code::InvalidDomain)
                    .at(4)
                    .key("domain")
                    .detail("x".repeat(100)),
            ],
            language: Language::En,
            quoted: Some(format!("short\n{}\n\n", "y".repeat(100))),
            subject_echo: Some(subject_echo("REGISTRAR: 1001 create T-1 \u{e9}")),
            appendix: None,
            event: None,
            notice: None,
        }
    }

    #[test]
    fn every_line_fits() {
        for lang in [Language::De, Language::En] {
            let body = render_body(&ReplyData {
                language: lang,
                ..data()
            });
            for line in body.lines() {
                assert!(
                    line.len() <= MAX_LINE && line.is_ascii() && !line.ends_with(' '),
                    "{line:?}"
                );
            }
        }
    }

    #[test]
    fn huge_line_numbers_and_long_keys_fit() {
        let r = Rejection::new(Code::UnknownKey)
            .at(u32::MAX)
            .key(&"k".repeat(60))
            .detail("d".repeat(90));
        let d = ReplyData {
            findings: vec![r],
            ..data()
        };
        assert!(machine_block(&d).lines().all(|l| l.len() <= MAX_LINE));
    }

    #[test]
    fn machine_block_shape() {
        let block = machine_block(&data());
        assert!(block.starts_with("%% REPLY 1.0\nresult:       failed\nregistrar-id: 1001\n"));
        assert!(block.contains("received:     2026-11-22T08:15:02.000Z\n"));
        // The detail does not fit beside the code text: the detail alone, cut.
        assert!(
            block.contains("error:        5202 line 4 key \"domain\" xxxxxxxx"),
            "{block}"
        );
        assert!(block.lines().all(|l| l.len() <= MAX_LINE));
        assert!(block.ends_with("%% END\n"));
        assert_eq!(subject(&data()), "REGISTRY: failed create example.at [T-1]");
    }
}
