//! Notifications (reply.md 4): the mails the lifecycle sends to registrars
//! and holders, with the request's server-trid and an `event:` line.
//!
//! Input: [`Notice`]s collected during one run. Output: signed mails in the
//! outbox, in the caller's transaction. Invariants: notices to one address
//! in one run become one digest mail; nothing is sent to an address of the
//! registry's own configuration, nor to an empty one.

use crate::auth::SigningKey;
use crate::config::Config;
use crate::rejection::Rejection;
use crate::reply::{self, ComposeError, Envelope, Outcome, ReplyData};
use crate::store::{RequestRow, StoreError, Tx};
use crate::template::Language;
use chrono::{DateTime, Utc};

/// A fault while queueing notifications (the run exits 75).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Building or signing a mail.
    #[error(transparent)]
    Compose(#[from] ComposeError),
}

/// Who a notice goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    /// A registrar's registered reply address.
    Registrar(u32),
    /// A domain holder (or a holder contact), at the address on file.
    Holder(String),
}

/// One notification.
#[derive(Debug, Clone)]
pub struct Notice {
    /// Recipient.
    pub to: Recipient,
    /// `confirmation-requested`, `reminder-1`, `expired`, ...
    pub event: String,
    /// The `result:` line.
    pub outcome: Outcome,
    /// The transaction concerned.
    pub transaction: String,
    /// Domain or handle.
    pub object: String,
    /// The requesting registrar.
    pub registrar_id: Option<u32>,
    /// The request's client-trid.
    pub client_trid: Option<String>,
    /// The request's (or the step's) server-trid.
    pub server_trid: String,
    /// Info lines.
    pub infos: Vec<Rejection>,
    /// The human text (paragraphs separated by blank lines).
    pub text: String,
    /// A holder mail: the unguessable Message-ID tag (for bounces) and the
    /// request it is about.
    pub bounce_tag: Option<(String, i64)>,
}

/// The template transaction a request kind came from.
pub fn transaction_of(kind: &str) -> &'static str {
    match kind {
        "transfer" => "regtransfer",
        "update" => "update",
        "person-update" => "persupdate",
        _ => "delete",
    }
}

impl Notice {
    /// A notice about a request, to `to`.
    pub fn about(
        r: &RequestRow,
        to: Recipient,
        event: &str,
        outcome: Outcome,
        text: String,
    ) -> Notice {
        Notice {
            to,
            event: event.to_string(),
            outcome,
            transaction: transaction_of(&r.kind).to_string(),
            object: r.object.clone(),
            registrar_id: Some(r.registrar_id),
            client_trid: r.client_trid.clone(),
            server_trid: r.server_trid.clone(),
            infos: Vec::new(),
            text,
            bounce_tag: None,
        }
    }

    /// Adds an info line.
    pub fn with(mut self, info: Rejection) -> Notice {
        self.infos.push(info);
        self
    }

    fn data(&self, now: DateTime<Utc>) -> ReplyData {
        ReplyData {
            outcome: self.outcome,
            registrar_id: self.registrar_id,
            transaction: Some(self.transaction.clone()),
            object: Some(self.object.clone()),
            client_trid: self.client_trid.clone(),
            findings: self.infos.clone(),
            language: Language::En,
            event: Some(self.event.clone()),
            notice: Some(self.text.clone()),
            ..ReplyData::new(&self.server_trid, now)
        }
    }

    fn tag(&self) -> String {
        let who = match &self.to {
            Recipient::Registrar(id) => format!("r{id}"),
            Recipient::Holder(_) => "h".into(),
        };
        format!(
            "{}.{}.{who}",
            self.server_trid,
            reply::safe_token(&self.event)
        )
    }
}

/// Signs and queues the notices: one mail per recipient address (a digest
/// when there are several); returns how many mails were queued.
pub fn queue(
    tx: &mut Tx<'_>,
    config: &Config,
    key: &SigningKey,
    notices: Vec<Notice>,
    now: DateTime<Utc>,
) -> Result<usize, NotifyError> {
    let mut groups: Vec<(String, Vec<Notice>)> = Vec::new();
    for n in notices {
        let address = match &n.to {
            Recipient::Registrar(id) => tx.registrar_email(*id)?.unwrap_or_default(),
            Recipient::Holder(email) => email.clone(),
        };
        if address.is_empty() || config.is_own_address(&address) {
            tracing::warn!(event = %n.event, object = %n.object, "notice not sent: no usable address");
            continue;
        }
        match groups
            .iter_mut()
            .find(|(a, _)| a.eq_ignore_ascii_case(&address))
        {
            Some((_, list)) => list.push(n),
            None => groups.push((address, vec![n])),
        }
    }
    let stamp = reply::rfc3339(now);
    let count = groups.len();
    for (address, list) in groups {
        let Some(first) = list.first() else { continue };
        let tag = match &first.bounce_tag {
            Some((t, _)) => format!("{t}.holder"),
            None => first.tag(),
        };
        if let Some((group_tag, _)) = &first.bounce_tag {
            for (_, request) in list.iter().filter_map(|n| n.bounce_tag.as_ref()) {
                tx.insert_holder_mail(group_tag, *request)?;
            }
        }
        let trid = first.server_trid.clone();
        let message = if list.len() == 1 {
            let env = Envelope {
                to: &address,
                in_reply_to: None,
                message_id: Some(&tag),
            };
            reply::compose(config, key, &first.data(now), &env, now)?
        } else {
            let id = format!("digest.{tag}");
            let env = Envelope {
                to: &address,
                in_reply_to: None,
                message_id: Some(&id),
            };
            let parts: Vec<ReplyData> = list.iter().map(|n| n.data(now)).collect();
            reply::compose_digest(config, key, &parts, &env, now)?
        };
        let id = tx.queue_mail(&trid, &address, &message, &stamp)?;
        tx.cap_per_hour(id)?;
        if first.bounce_tag.is_some() {
            tx.purge_on_delivery(id)?;
        }
    }
    Ok(count)
}
