//! `regmail submit`: wraps a template into a mail that passes every mail-layer
//! rule, cleartext-signed with the registrar's key.
//!
//! Input: a template file, the registrar's secret key, the clock. Output: the
//! mail on stdout, in an `.eml` file (`--output`, written atomically) or piped
//! to `sendmail -i -t` (`--sendmail`). Invariants: unless `--raw`, the
//! template's mail-layer and envelope problems are reported before anything
//! is signed, and the finished mail is inspected as `process` would
//! (`intake::inspect`) before it leaves: nothing is written or sent that the
//! mail layer would refuse.

use super::EX_OK;
use crate::auth::SigningKey;
use crate::cli::SubmitArgs;
use crate::clock::Clock;
use crate::config::{Limits, MailSettings};
use crate::rejection::Rejection;
use crate::template::parse_envelope;
use anyhow::{Context, bail};
use lettre::Message;
use lettre::message::Body;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Mail-layer problems of a template text, as messages.
fn layout_problems(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        // Dash-escaping adds "- " in front of lines starting with '-'.
        let len = line.len() + if line.starts_with('-') { 2 } else { 0 };
        if line.contains('\t') {
            out.push(format!("line {n}: TAB (4005)"));
        }
        if line
            .bytes()
            .any(|b| b != b'\t' && !(0x20..=0x7e).contains(&b))
        {
            out.push(format!("line {n}: non-ASCII byte (4003)"));
        }
        if len > max {
            out.push(format!("line {n}: {len} characters, limit {max} (4004)"));
        }
        if line.ends_with(' ') {
            out.push(format!("line {n}: trailing space (4006)"));
        }
    }
    out
}

/// A template signed by `key` into a mail from registrar `registrar` at the
/// clock's instant (the scenario and property tests' registrars).
pub fn signed_mail(
    key: &SigningKey,
    registrar: u32,
    from: &str,
    text: &str,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<u8>> {
    let args = SubmitArgs {
        key: std::path::PathBuf::new(),
        registrar,
        from: from.to_string(),
        to: "robot@registry.example".into(),
        raw: false,
        output: None,
        sendmail: None,
        file: std::path::PathBuf::new(),
    };
    build(&args, text, key, clock)
}

/// Builds the signed mail.
pub fn build(
    args: &SubmitArgs,
    text: &str,
    key: &SigningKey,
    clock: &dyn Clock,
) -> anyhow::Result<Vec<u8>> {
    let now = clock.now();
    let (fields, _) = parse_envelope(text, &crate::config::Limits::default());
    let transaction = fields.transaction.map_or("unknown", |t| t.name());
    let trid = fields.client_trid.unwrap_or_else(|| "-".into());
    let signed = key.clearsign(text, now)?;
    let digest = hex::encode(Sha256::digest(signed.as_bytes()));
    let message = Message::builder()
        .from(
            args.from
                .parse()
                .with_context(|| format!("--from {}", args.from))?,
        )
        .to(args
            .to
            .parse()
            .with_context(|| format!("--to {}", args.to))?)
        .subject(format!(
            "REGISTRAR: {} {transaction} {trid}",
            args.registrar
        ))
        .message_id(Some(format!("<{}@submit.regmail.invalid>", &digest[..24])))
        .date(now.into())
        .header(ContentType::parse("text/plain; charset=us-ascii")?)
        .header(ContentTransferEncoding::SevenBit)
        .body(body(args.raw, signed)?)?;
    Ok(message.formatted())
}

/// The mail body; with `--raw`, exactly the signed text even where it breaks
/// the mail layer's rules (for making test mails).
fn body(raw: bool, signed: String) -> anyhow::Result<Body> {
    if raw {
        let crlf = signed.replace("\r\n", "\n").replace('\n', "\r\n");
        return Ok(Body::dangerous_pre_encoded(
            crlf.into_bytes(),
            ContentTransferEncoding::SevenBit,
        ));
    }
    crate::reply::seven_bit_body(&signed, 998)
        .ok_or_else(|| anyhow::anyhow!("the signed template does not fit a 7bit mail body"))
}

/// A finding as one line: code, text, line, key, detail.
fn describe(r: &Rejection) -> String {
    let mut s = format!("{} {}", r.code, r.code.text_en());
    if let Some(line) = r.line {
        s.push_str(&format!(" (line {line})"));
    }
    if let Some(key) = &r.key {
        s.push_str(&format!(" key {key:?}"));
    }
    if let Some(detail) = &r.detail {
        s.push_str(&format!(": {detail}"));
    }
    s
}

/// Everything about the template that `process` would refuse before it
/// reaches the registry's rules: the mail layer, the envelope, and a header
/// that does not fit `--registrar` or still holds the placeholder trid.
fn template_problems(text: &str, registrar: u32) -> Vec<String> {
    let mut out = layout_problems(text, MailSettings::default().max_line_length);
    if text.contains("-----BEGIN PGP SIGNED MESSAGE-----") {
        out.push("the file is already signed: give the unsigned template".into());
        return out;
    }
    let (fields, envelope) = parse_envelope(text, &Limits::default());
    if let Err(findings) = envelope {
        out.extend(findings.iter().filter(|r| r.is_error()).map(describe));
    }
    if let Some(id) = fields.registrar_id.filter(|id| *id != registrar) {
        out.push(format!(
            "<registrar-id> is {id} but --registrar is {registrar}"
        ));
    }
    if let Some(trid) = fields.client_trid.filter(|t| t.starts_with("CHANGE-ME")) {
        out.push(format!(
            "<client-trid> is still the placeholder {trid}: give a fresh one"
        ));
    }
    out
}

/// The mail-layer errors `process` would find in the finished mail.
fn mail_problems(mail: &[u8]) -> Vec<String> {
    crate::intake::inspect(mail, &MailSettings::default())
        .findings
        .iter()
        .filter(|r| r.is_error())
        .map(describe)
        .collect()
}

/// `regmail submit`
pub fn submit(args: &SubmitArgs, clock: &dyn Clock) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    if !args.raw {
        let problems = template_problems(&text, args.registrar);
        if !problems.is_empty() {
            bail!(
                "the template would be refused:\n  {}",
                problems.join("\n  ")
            );
        }
    }
    let key = SigningKey::load(&args.key)?;
    let mail = build(args, &text, &key, clock)?;
    if !args.raw {
        let problems = mail_problems(&mail);
        if !problems.is_empty() {
            bail!(
                "the signed mail would be refused:\n  {}",
                problems.join("\n  ")
            );
        }
    }
    if let Some(path) = &args.output {
        write_atomically(path, &mail)?;
    } else if let Some(command) = &args.sendmail {
        sendmail(command, &mail)?;
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(&mail)?;
        out.flush()?;
    }
    Ok(EX_OK)
}

/// Writes `data` to `path` through a temporary file in the same directory,
/// so that `path` is either absent, the old file, or the whole mail.
fn write_atomically(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let context = || format!("writing {}", path.display());
    let mut file = tempfile::NamedTempFile::new_in(dir).with_context(context)?;
    file.write_all(data).with_context(context)?;
    file.as_file().sync_all().with_context(context)?;
    file.persist(path)
        .map_err(|e| e.error)
        .with_context(context)?;
    Ok(())
}

/// Pipes the mail, with LF line ends as local sendmail programs expect, to
/// `command -i -t` (recipients from the header, a lone `.` is no end).
fn sendmail(command: &Path, mail: &[u8]) -> anyhow::Result<()> {
    let shown = command.display();
    let mut child = Command::new(command)
        .args(["-i", "-t"])
        .stdin(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {shown}"))?;
    let written = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&lf_line_ends(mail)));
    let status = child
        .wait()
        .with_context(|| format!("waiting for {shown}"))?;
    if !status.success() {
        bail!("{shown} -i -t failed ({status}): the mail was not sent");
    }
    if let Some(Err(e)) = written {
        return Err(e).with_context(|| format!("piping the mail to {shown}"));
    }
    Ok(())
}

/// `mail` with every CRLF turned into LF.
fn lf_line_ends(mail: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(mail.len());
    for (i, &b) in mail.iter().enumerate() {
        if b != b'\r' || mail.get(i + 1) != Some(&b'\n') {
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_rules() {
        assert!(layout_problems("ok\n", 78).is_empty());
        let p = layout_problems("a\tb\n-x\nend \n", 3);
        // TAB; "-x" grows to 4 when dash-escaped; "end " is too long and ends in a space.
        assert_eq!(p.len(), 4, "{p:?}");
    }

    #[test]
    fn header_problems_before_signing() {
        let good = include_str!("../../templates/check-domain.txt")
            .replace("<registrar-id>1234<", "<registrar-id>1001<")
            .replace("CHANGE-ME-0001", "RG-0001");
        assert_eq!(template_problems(&good, 1001), Vec::<String>::new());
        assert_eq!(template_problems(&good, 1002).len(), 1);
        let blank = include_str!("../../templates/check-domain.txt");
        // 1234 is not 1001, and the trid is the placeholder.
        assert_eq!(template_problems(blank, 1001).len(), 2);
        let broken = good.replace("<count>1</count>", "<count>2</count>");
        let p = template_problems(&broken, 1001);
        assert!(p.len() == 1 && p[0].starts_with("5004"), "{p:?}");
        let signed = format!("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n{good}");
        assert_eq!(template_problems(&signed, 1001).len(), 1);
    }

    #[test]
    fn line_ends_for_sendmail() {
        assert_eq!(lf_line_ends(b"a\r\nb\rc\r\n"), b"a\nb\rc\n");
    }
}
