//! `regmail submit`: wraps a template into a mail that passes every mail-layer
//! rule, cleartext-signed with the registrar's key, written to stdout.

use super::EX_OK;
use crate::auth::SigningKey;
use crate::cli::SubmitArgs;
use crate::clock::Clock;
use crate::config::MailSettings;
use crate::template::parse_envelope;
use anyhow::{Context, bail};
use lettre::Message;
use lettre::message::Body;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use sha2::{Digest, Sha256};
use std::io::Write;

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

/// `regmail submit`
pub fn submit(args: &SubmitArgs, clock: &dyn Clock) -> anyhow::Result<u8> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    if !args.raw {
        let problems = layout_problems(&text, MailSettings::default().max_line_length);
        if !problems.is_empty() {
            bail!(
                "the template would be refused:\n  {}",
                problems.join("\n  ")
            );
        }
    }
    let key = SigningKey::load(&args.key)?;
    let mail = build(args, &text, &key, clock)?;
    std::io::stdout().write_all(&mail)?;
    Ok(EX_OK)
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
}
