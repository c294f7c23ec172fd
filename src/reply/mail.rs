//! Wraps a signed body into an RFC 5322 message with lettre's builder.

use super::{ReplyData, render_body, subject};
use crate::auth::{SigningError, SigningKey};
use crate::config::Config;
use chrono::{DateTime, Utc};
use lettre::Message;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox};

/// A fault building a mail (the caller exits 75).
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    /// Signing failed.
    #[error(transparent)]
    Signing(#[from] SigningError),
    /// An address in the configuration or the registrar table is invalid.
    #[error("invalid address {0:?}")]
    Address(String),
    /// lettre refused the message.
    #[error("cannot build mail: {0}")]
    Build(String),
}

/// Where a mail goes and what it answers.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    /// The registered reply address.
    pub to: &'a str,
    /// The incoming Message-ID, without brackets.
    pub in_reply_to: Option<&'a str>,
    /// Our Message-ID's left part (default: the server-trid); notifications
    /// share their request's server-trid, so they name the event too.
    pub message_id: Option<&'a str>,
}

#[derive(Debug, Clone)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-replied".into())
    }
}

#[derive(Debug, Clone)]
struct Precedence;

impl Header for Precedence {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Precedence")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Precedence)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "bulk".into())
    }
}

fn mailbox(name: Option<&str>, addr: &str) -> Result<Mailbox, ComposeError> {
    let address = addr
        .parse()
        .map_err(|_| ComposeError::Address(addr.to_string()))?;
    Ok(Mailbox::new(name.map(str::to_string), address))
}

/// A Message-ID is kept only if it is a plain `left@right` token.
fn clean_id(id: &str) -> Option<String> {
    let ok = !id.is_empty()
        && id.len() <= 250
        && id.contains('@')
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>\"\\()[],;".contains(&b));
    ok.then(|| format!("<{id}>"))
}

/// A 7bit body with CRLF line ends, if every line is printable ASCII of at
/// most `max` characters. lettre's own chooser refuses 7bit for lines of 75+
/// characters (and its `.body(String)` panics then), so regmail checks the
/// rules of RFC 5322 and reply.md itself and hands lettre the encoded bytes.
pub fn seven_bit_body(text: &str, max: usize) -> Option<Body> {
    let text = text.replace("\r\n", "\n");
    let ok = text
        .lines()
        .all(|l| l.len() <= max && l.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    ok.then(|| {
        Body::dangerous_pre_encoded(
            text.replace('\n', "\r\n").into_bytes(),
            ContentTransferEncoding::SevenBit,
        )
    })
}

/// Renders, signs and wraps a reply; returns the message bytes.
pub fn compose(
    config: &Config,
    key: &SigningKey,
    data: &ReplyData,
    env: &Envelope<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, ComposeError> {
    let id = env.message_id.unwrap_or(&data.server_trid);
    wrap(
        config,
        key,
        &subject(data),
        &render_body(data),
        id,
        env,
        now,
    )
}

/// Several notifications to one recipient in one signed mail: each with its
/// machine block and text, in order (reply.md 4, the timer's digest).
pub fn compose_digest(
    config: &Config,
    key: &SigningKey,
    parts: &[ReplyData],
    env: &Envelope<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, ComposeError> {
    let bodies: Vec<String> = parts.iter().map(render_body).collect();
    let subject = format!("REGISTRY: digest {} notifications", parts.len());
    let id = env.message_id.unwrap_or("digest");
    wrap(config, key, &subject, &bodies.join("\n"), id, env, now)
}

fn wrap(
    config: &Config,
    key: &SigningKey,
    subject: &str,
    text: &str,
    id: &str,
    env: &Envelope<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<u8>, ComposeError> {
    let body = key.clearsign(text, now)?;
    let message_id = format!("<{id}@{}>", config.registry.domain);
    let mut builder = Message::builder()
        .from(mailbox(
            Some(&config.registry.name),
            &config.registry.email,
        )?)
        .to(mailbox(None, env.to)?)
        .subject(subject)
        .message_id(Some(message_id))
        .date(now.into())
        .header(AutoSubmitted)
        .header(Precedence)
        .header(
            ContentType::parse("text/plain; charset=us-ascii")
                .map_err(|e| ComposeError::Build(e.to_string()))?,
        )
        .header(ContentTransferEncoding::SevenBit);
    if let Some(id) = env.in_reply_to.and_then(clean_id) {
        builder = builder.in_reply_to(id.clone()).references(id);
    }
    let body = seven_bit_body(&body, super::MAX_LINE)
        .ok_or_else(|| ComposeError::Build("reply body is not 7bit".into()))?;
    let message = builder
        .body(body)
        .map_err(|e| ComposeError::Build(e.to_string()))?;
    Ok(message.formatted())
}
