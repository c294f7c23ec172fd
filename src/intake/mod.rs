//! Intake: the mail layer (template.md section 1), before any cryptography.
//!
//! Input: one RFC 5322 message as bytes. Output: an [`Inspected`] mail: the
//! headers needed to decide who may get a reply, every mail-layer finding
//! (4001, 4003-4007, 4011, 4012, 4014 and warning 3001) with body line
//! numbers, and the one cleartext-signed block, if there is exactly one.
//! Invariants: parsing is lenient (mail-parser) and never fails; a mail over
//! the size limit is not read past its header; nothing here is trusted: the
//! block still has to pass `auth`.

mod sources;

pub use sources::{MailSource, collect_sources, read_bounded};

use crate::config::MailSettings;
use crate::rejection::{Code, Rejection};
use mail_parser::{Message, MessageParser, MimeHeaders};

/// The headers regmail acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailHeaders {
    /// Subject, decoded.
    pub subject: Option<String>,
    /// First From address.
    pub from: Option<String>,
    /// Return-Path (envelope sender), `Some("")` for the null sender.
    pub return_path: Option<String>,
    /// Message-ID without angle brackets.
    pub message_id: Option<String>,
    /// Why the mail must never be answered (bounce, auto-reply, list), if so.
    pub automatic: Option<&'static str>,
    /// A delivery failure report: a `multipart/report` or a mail from
    /// MAILER-DAEMON / postmaster (an auto-reply is not one).
    pub bounce: bool,
}

/// A mail after the mail-layer checks.
#[derive(Debug, Clone, Default)]
pub struct Inspected {
    /// Headers.
    pub headers: MailHeaders,
    /// Every mail-layer finding (errors and warnings).
    pub findings: Vec<Rejection>,
    /// The single signed block (LF line ends), if exactly one was found.
    pub signed_block: Option<String>,
}

/// Most findings reported per code; the rest are summarised.
const MAX_PER_CODE: usize = 10;

/// Inspects a raw message.
pub fn inspect(raw: &[u8], settings: &MailSettings) -> Inspected {
    if raw.len() > settings.max_mail_bytes {
        let detail = format!("over the limit of {} bytes", settings.max_mail_bytes);
        return refused_unread(raw, detail);
    }
    if raw.iter().filter(|b| **b == b'\n').count() > settings.max_lines {
        let detail = format!("over the limit of {} lines", settings.max_lines);
        return refused_unread(raw, detail);
    }
    // One parse serves the header and the body; a mail the whole-message
    // parse refuses still gets what its header alone says.
    let parsed = MessageParser::default().parse(raw);
    let mut out = Inspected {
        headers: parsed
            .as_ref()
            .map_or_else(|| headers_of(raw), headers_from),
        ..Inspected::default()
    };
    if !subject_ok(out.headers.subject.as_deref()) {
        out.findings.push(Rejection::new(Code::NoRegistrarSubject));
    }
    let Some(body) = body_of(raw, parsed.as_ref(), &mut out.findings) else {
        return out;
    };
    check_lines(body, settings.max_line_length, &mut out.findings);
    out.signed_block = find_signed_block(body, &mut out.findings);
    out
}

/// A mail refused for its size (4014): only its header (at most 64 KiB) is read.
fn refused_unread(raw: &[u8], detail: String) -> Inspected {
    let head = &raw[..header_end(raw).min(HEAD_LIMIT)];
    Inspected {
        headers: headers_of(head),
        findings: vec![Rejection::new(Code::MailTooLarge).detail(detail)],
        signed_block: None,
    }
}

/// The most header bytes read of a mail refused for its size.
pub const HEAD_LIMIT: usize = 64 * 1024;

fn subject_ok(subject: Option<&str>) -> bool {
    subject.is_some_and(|s| s.trim_start().starts_with("REGISTRAR:"))
}

/// Offset just past the header block (or the whole mail if there is no body).
pub fn header_end(raw: &[u8]) -> usize {
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|p| p + 2);
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(raw.len()),
    }
}

/// The headers of a mail parsed for its header only.
fn headers_of(raw: &[u8]) -> MailHeaders {
    match MessageParser::default().parse_headers(raw) {
        Some(msg) => headers_from(&msg),
        None => MailHeaders {
            automatic: Some("unparsable message"),
            ..MailHeaders::default()
        },
    }
}

/// The headers regmail acts on, from a parsed mail.
fn headers_from(msg: &Message<'_>) -> MailHeaders {
    let text = |name: &str| msg.header_raw(name).map(|v| v.trim().to_string());
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .map(str::to_string);
    let return_path = text("Return-Path").map(|v| {
        v.trim_start_matches('<')
            .trim_end_matches('>')
            .trim()
            .to_string()
    });
    let auto = text("Auto-Submitted").map(|v| v.to_ascii_lowercase());
    let precedence = text("Precedence").map(|v| v.to_ascii_lowercase());
    let ctype = msg
        .content_type()
        .map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or("")).to_ascii_lowercase());
    let sender_local = from
        .as_deref()
        .and_then(|f| f.split('@').next())
        .map(|l| l.to_ascii_lowercase());
    let daemon = sender_local
        .as_deref()
        .is_some_and(|l| l == "mailer-daemon" || l == "postmaster");
    let bounce = daemon || ctype.as_deref() == Some("multipart/report");
    let automatic = if return_path.as_deref() == Some("") {
        Some("null return path (bounce)")
    } else if auto.as_deref().is_some_and(|a| !a.starts_with("no")) {
        Some("Auto-Submitted")
    } else if precedence
        .as_deref()
        .is_some_and(|p| ["bulk", "junk", "list"].contains(&p))
    {
        Some("Precedence bulk/junk/list")
    } else if ctype.as_deref() == Some("multipart/report") {
        Some("delivery status notification")
    } else if sender_local
        .as_deref()
        .is_some_and(|l| l == "mailer-daemon" || l == "postmaster")
    {
        Some("mail from a mailer daemon")
    } else if msg.header_raw("List-Id").is_some() {
        Some("mailing list")
    } else {
        None
    };
    MailHeaders {
        subject: msg.subject().map(str::to_string),
        from,
        return_path,
        message_id: msg.message_id().map(str::to_string),
        automatic,
        bounce,
    }
}

/// The body of a single text/plain part in 7bit, or a 4011/4003 finding.
fn body_of<'a>(
    raw: &'a [u8],
    parsed: Option<&Message<'_>>,
    findings: &mut Vec<Rejection>,
) -> Option<&'a [u8]> {
    let Some(msg) = parsed else {
        findings.push(Rejection::new(Code::MimeStructure).detail("not an RFC 5322 message"));
        return None;
    };
    let part = msg.root_part();
    let (ctype, subtype, charset) = match part.content_type() {
        Some(c) => (
            c.ctype().to_ascii_lowercase(),
            c.subtype().unwrap_or("").to_ascii_lowercase(),
            c.attribute("charset").map(str::to_ascii_lowercase),
        ),
        None => ("text".into(), "plain".into(), None),
    };
    if (ctype.as_str(), subtype.as_str()) != ("text", "plain") {
        findings.push(
            Rejection::new(Code::MimeStructure)
                .detail(format!("{ctype:.20}/{subtype:.20}; text/plain only")),
        );
        return None;
    }
    let cte = part
        .content_transfer_encoding()
        .map(str::to_ascii_lowercase);
    if cte.as_deref().is_some_and(|c| c != "7bit") {
        findings.push(Rejection::new(Code::MimeStructure).detail(format!(
            "transfer encoding {:.20}; 7bit only",
            cte.unwrap_or_default()
        )));
        return None;
    }
    if charset.as_deref().is_some_and(|c| c != "us-ascii") {
        findings.push(Rejection::new(Code::NonAscii).detail(format!(
            "charset {:.20}; us-ascii only",
            charset.unwrap_or_default()
        )));
    }
    let start = usize::try_from(part.offset_body).ok()?.min(raw.len());
    Some(&raw[start..])
}

/// Body lines without their line end, numbered from 1.
fn lines(body: &[u8]) -> impl Iterator<Item = (u32, &[u8])> {
    let body = body.strip_suffix(b"\n").unwrap_or(body);
    body.split(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (u32::try_from(i + 1).unwrap_or(u32::MAX), l))
}

/// 4003 bytes, 4005 TAB, 4004 length, 4006 trailing space: every line, capped per code.
fn check_lines(body: &[u8], max_len: usize, findings: &mut Vec<Rejection>) {
    let mut hits: Vec<(Code, u32)> = Vec::new();
    for (n, line) in lines(body) {
        if line.contains(&b'\t') {
            hits.push((Code::Tab, n));
        }
        if line
            .iter()
            .any(|b| *b != b'\t' && *b != b'\r' && !(0x20..=0x7e).contains(b))
        {
            hits.push((Code::NonAscii, n));
        }
        if line.len() > max_len {
            hits.push((Code::LineTooLong, n));
        }
        if line.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            hits.push((Code::TrailingWhitespace, n));
        }
    }
    for code in [
        Code::NonAscii,
        Code::LineTooLong,
        Code::Tab,
        Code::TrailingWhitespace,
    ] {
        let at: Vec<u32> = hits
            .iter()
            .filter(|(c, _)| *c == code)
            .map(|(_, n)| *n)
            .collect();
        for n in at.iter().take(MAX_PER_CODE) {
            let r = Rejection::new(code).at(*n);
            findings.push(if code == Code::LineTooLong {
                r.detail(format!("limit {max_len}"))
            } else {
                r
            });
        }
        if at.len() > MAX_PER_CODE {
            findings.push(
                Rejection::new(code).detail(format!("and {} more lines", at.len() - MAX_PER_CODE)),
            );
        }
    }
}

const BEGIN: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const END: &[u8] = b"-----END PGP SIGNATURE-----";

/// Exactly one cleartext-signed block (4007 / 4012); text outside it is 3001.
fn find_signed_block(body: &[u8], findings: &mut Vec<Rejection>) -> Option<String> {
    let all: Vec<(u32, &[u8])> = lines(body).collect();
    let begins: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, (_, l))| l.trim_ascii_end() == BEGIN)
        .map(|(i, _)| i)
        .collect();
    let start = match begins.as_slice() {
        [] => {
            findings.push(Rejection::new(Code::NoSignature));
            return None;
        }
        [one] => *one,
        [_, second, ..] => {
            findings.push(Rejection::new(Code::MultipleSigned).at(all[*second].0));
            return None;
        }
    };
    let Some(end) = all[start..]
        .iter()
        .position(|(_, l)| l.trim_ascii_end() == END)
        .map(|p| p + start)
    else {
        findings.push(
            Rejection::new(Code::NoSignature)
                .at(all[start].0)
                .detail("signature block not terminated"),
        );
        return None;
    };
    let outside = all[..start]
        .iter()
        .chain(&all[end + 1..])
        .find(|(_, l)| !l.trim_ascii().is_empty());
    if let Some((n, _)) = outside {
        findings.push(Rejection::new(Code::UnsignedTextIgnored).at(*n));
    }
    let mut block = String::new();
    for (_, l) in &all[start..=end] {
        block.push_str(&String::from_utf8_lossy(l));
        block.push('\n');
    }
    Some(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(headers: &str, body: &str) -> Vec<u8> {
        format!("From: a@example.at\nSubject: REGISTRAR: 1 create x\n{headers}\n{body}")
            .into_bytes()
    }

    const SIGNED: &str = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nhello\n-----BEGIN PGP SIGNATURE-----\n\nxx\n-----END PGP SIGNATURE-----\n";

    type Found = Vec<(u16, Option<u32>)>;

    /// Every mail of the repository's corpora (fixtures, golden cases, fuzz
    /// regressions), as it is and with CRLF line ends.
    fn corpus() -> Vec<Vec<u8>> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![
            root.join("fixtures"),
            root.join("tests/fuzz-cases/pipeline"),
        ];
        for entry in std::fs::read_dir(root.join("tests/cases")).unwrap() {
            dirs.push(entry.unwrap().path());
        }
        let mut mails = Vec::new();
        for dir in dirs.iter().filter(|d| d.is_dir()) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                let fuzz = path.starts_with(root.join("tests/fuzz-cases"));
                if fuzz || path.extension().is_some_and(|x| x == "eml") {
                    mails.push(std::fs::read(path).unwrap());
                }
            }
        }
        let crlf: Vec<Vec<u8>> = mails
            .iter()
            .map(|m| {
                String::from_utf8_lossy(m)
                    .replace('\n', "\r\n")
                    .into_bytes()
            })
            .collect();
        mails.extend(crlf);
        mails.extend([
            b"".to_vec(),
            b"no header at all".to_vec(),
            b"Subject: x".to_vec(),
        ]);
        mails
    }

    /// The one whole-message parse gives the same headers as parsing the
    /// header alone (what intake did before it parsed each mail once).
    #[test]
    fn one_parse_gives_the_headers_a_header_parse_gives() {
        let mails = corpus();
        assert!(mails.len() > 200, "{} mails", mails.len());
        for raw in &mails {
            if let Some(msg) = MessageParser::default().parse(raw) {
                assert_eq!(
                    headers_from(&msg),
                    headers_of(raw),
                    "{}",
                    String::from_utf8_lossy(raw)
                );
            }
        }
    }

    fn codes(raw: &[u8]) -> Found {
        inspect(raw, &MailSettings::default())
            .findings
            .iter()
            .map(|r| (r.code.number(), r.line))
            .collect()
    }

    #[test]
    fn clean_mail_has_one_block() {
        let i = inspect(&mail("", SIGNED), &MailSettings::default());
        assert!(i.findings.is_empty(), "{:?}", i.findings);
        assert_eq!(i.signed_block.as_deref(), Some(SIGNED));
        assert_eq!(i.headers.from.as_deref(), Some("a@example.at"));
    }

    #[test]
    fn line_rules_table() {
        let long = "x".repeat(79);
        let cases: Vec<(String, Found)> = vec![
            (
                format!("a\tb\n{SIGNED}"),
                vec![(4005, Some(1)), (3001, Some(1))],
            ),
            (
                format!("caf\u{e9}\n{SIGNED}"),
                vec![(4003, Some(1)), (3001, Some(1))],
            ),
            (
                format!("{long}\n{SIGNED}"),
                vec![(4004, Some(1)), (3001, Some(1))],
            ),
            (
                format!("ok \n{SIGNED}"),
                vec![(4006, Some(1)), (3001, Some(1))],
            ),
            ("no signature here\n".into(), vec![(4007, None)]),
            (format!("{SIGNED}{SIGNED}"), vec![(4012, Some(9))]),
            (format!("before\n{SIGNED}"), vec![(3001, Some(1))]),
        ];
        for (body, want) in cases {
            assert_eq!(codes(&mail("", &body)), want, "{body:?}");
        }
    }

    #[test]
    fn crlf_counts_like_lf() {
        let body = format!("ok \n{SIGNED}").replace('\n', "\r\n");
        let raw = mail("", &body)
            .iter()
            .flat_map(|b| {
                if *b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![*b]
                }
            })
            .collect::<Vec<u8>>();
        let raw: Vec<u8> = String::from_utf8(raw)
            .unwrap()
            .replace("\r\r\n", "\r\n")
            .into_bytes();
        assert_eq!(codes(&raw), vec![(4006, Some(1)), (3001, Some(1))]);
    }

    #[test]
    fn mime_and_subject() {
        assert_eq!(
            codes(&mail("Content-Type: text/html\n", SIGNED)),
            vec![(4011, None)]
        );
        assert_eq!(
            codes(&mail("Content-Transfer-Encoding: base64\n", SIGNED)),
            vec![(4011, None)]
        );
        assert_eq!(
            codes(&mail("Content-Type: text/plain; charset=utf-8\n", SIGNED)),
            vec![(4003, None)]
        );
        let raw = format!("From: a@example.at\nSubject: hello\n\n{SIGNED}");
        assert_eq!(codes(raw.as_bytes()), vec![(4001, None)]);
    }

    #[test]
    fn unparsable_mail_is_a_finding() {
        assert_eq!(codes(b""), vec![(4001, None), (4011, None)]);
    }

    #[test]
    fn too_large_is_not_read() {
        let settings = MailSettings {
            max_mail_bytes: 100,
            ..MailSettings::default()
        };
        let i = inspect(&mail("", &"x".repeat(500)), &settings);
        assert_eq!(i.findings.len(), 1);
        assert_eq!(i.findings[0].code, Code::MailTooLarge);
        assert!(i.signed_block.is_none());
    }

    #[test]
    fn automatic_mail_is_recognised() {
        for h in [
            "Auto-Submitted: auto-replied\n",
            "Precedence: bulk\n",
            "Return-Path: <>\n",
        ] {
            assert!(
                inspect(&mail(h, SIGNED), &MailSettings::default())
                    .headers
                    .automatic
                    .is_some(),
                "{h}"
            );
        }
        assert!(
            inspect(
                &mail("Auto-Submitted: no\n", SIGNED),
                &MailSettings::default()
            )
            .headers
            .automatic
            .is_none()
        );
    }
}
