//! Template: the signed text's XML envelope, its RPSL-like object, typed specs.
//!
//! Input: a [`crate::auth::VerifiedBody`] (only `auth` can make one). Output:
//! an [`Envelope`] (header fields and the CDATA object text), a [`RawObject`]
//! (lenient: every line with its number), and a typed [`Spec`] per transaction,
//! or the full list of [`Rejection`]s. Invariants: nothing is expanded (no
//! DOCTYPE, no entities); every error of a template is reported, each with the
//! line number counted from 1 at the first line after `<![CDATA[` and its key.

mod envelope;
mod keys;
mod object;
mod render;
mod spec;
mod values;

pub use envelope::{Envelope, HeaderFields, parse_envelope};
pub use keys::{KeyRule, Presence, key_rule};
pub use object::{RawAttr, RawObject, parse_object};
pub use render::{pairs, render_body, render_object};
pub use spec::{
    CheckSpec, Delete, DomainCreate, DomainUpdate, Nameserver, Nscupdate, PersonChanges,
    PersonCreate, PersonType, PersonUpdate, Renew, Spec, Transfer, Withdraw, validate,
};
pub use values::{
    check_domain_name, check_email, check_handle, check_host_name, host_in_zone, split_zone,
};

use crate::config::Limits;
use crate::rejection::Rejection;

/// The transactions of template.md section 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transaction {
    /// Register a domain.
    Create,
    /// Change contacts or client flags.
    Update,
    /// Replace the nameserver set.
    Nscupdate,
    /// Delete a domain.
    Delete,
    /// Withdraw a pending deletion.
    Undelete,
    /// Extend a registration.
    Renew,
    /// Move a domain to the sending registrar.
    Regtransfer,
    /// The losing registrar approves.
    Transferack,
    /// The losing registrar rejects.
    Transfernack,
    /// The registrar stops paying.
    Billwithdraw,
    /// Create a contact.
    Perscreate,
    /// Change a contact.
    Persupdate,
    /// Delete a contact.
    Persdelete,
    /// Is a name or handle taken?
    Check,
    /// An object's data.
    Info,
}

/// The class of an object, named by its first key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectClass {
    /// First key `domain:`.
    Domain,
    /// First key `nic-hdl:`.
    Person,
}

impl Transaction {
    /// Every transaction.
    pub const ALL: &'static [Transaction] = &[
        Transaction::Create,
        Transaction::Update,
        Transaction::Nscupdate,
        Transaction::Delete,
        Transaction::Undelete,
        Transaction::Renew,
        Transaction::Regtransfer,
        Transaction::Transferack,
        Transaction::Transfernack,
        Transaction::Billwithdraw,
        Transaction::Perscreate,
        Transaction::Persupdate,
        Transaction::Persdelete,
        Transaction::Check,
        Transaction::Info,
    ];

    /// The name used in `<transaction>`.
    pub fn name(self) -> &'static str {
        match self {
            Transaction::Create => "create",
            Transaction::Update => "update",
            Transaction::Nscupdate => "nscupdate",
            Transaction::Delete => "delete",
            Transaction::Undelete => "undelete",
            Transaction::Renew => "renew",
            Transaction::Regtransfer => "regtransfer",
            Transaction::Transferack => "transferack",
            Transaction::Transfernack => "transfernack",
            Transaction::Billwithdraw => "billwithdraw",
            Transaction::Perscreate => "perscreate",
            Transaction::Persupdate => "persupdate",
            Transaction::Persdelete => "persdelete",
            Transaction::Check => "check",
            Transaction::Info => "info",
        }
    }

    /// Looks a transaction up by name (exact, lower-case).
    pub fn from_name(name: &str) -> Option<Transaction> {
        Transaction::ALL.iter().copied().find(|t| t.name() == name)
    }

    /// The `command:` word this transaction requires.
    pub fn command(self) -> &'static str {
        match self {
            Transaction::Create | Transaction::Perscreate => "create",
            Transaction::Update | Transaction::Persupdate => "update",
            Transaction::Nscupdate => "nscupdate",
            Transaction::Delete | Transaction::Persdelete => "delete",
            Transaction::Undelete => "undelete",
            Transaction::Renew => "renew",
            Transaction::Regtransfer => "transfer",
            Transaction::Transferack => "ack",
            Transaction::Transfernack => "nack",
            Transaction::Billwithdraw => "withdraw",
            Transaction::Check => "check",
            Transaction::Info => "info",
        }
    }

    /// Whether the transaction works on objects of this class.
    pub fn accepts(self, class: ObjectClass) -> bool {
        match self {
            Transaction::Check | Transaction::Info => true,
            Transaction::Perscreate | Transaction::Persupdate | Transaction::Persdelete => {
                class == ObjectClass::Person
            }
            _ => class == ObjectClass::Domain,
        }
    }
}

/// The language of the reply's human text (`accept-language`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Language {
    /// German (the default).
    #[default]
    De,
    /// English.
    En,
}

/// A validated spec with its warnings, or every rejection found.
pub type Parsed = Result<(Spec, Vec<Rejection>), Vec<Rejection>>;

/// Parses and validates a whole verified template text: envelope, object, spec.
///
/// Returns the envelope's header fields (as far as they could be read, for the
/// reply) and either the typed spec with any warnings, or every rejection found.
/// An object over the size limits is refused (4014) without being parsed.
pub fn parse_template(
    text: &str,
    profile: &crate::config::Profile,
    limits: &Limits,
) -> (HeaderFields, Parsed) {
    let (mut fields, envelope) = parse_envelope(text, limits);
    let mut errors = envelope.err().unwrap_or_default();
    let (Some(t), Some(body)) = (fields.transaction, fields.body.clone()) else {
        return (fields, Err(sorted(errors)));
    };
    if let Some(too_large) = oversized(&body, limits) {
        errors.push(too_large);
        return (fields, Err(sorted(errors)));
    }
    let (raw, found) = parse_object(&body);
    fields.object = raw
        .as_ref()
        .and_then(|r| r.attrs.first())
        .map(|a| a.value.clone())
        .filter(|v| !v.is_empty());
    errors.extend(found);
    let result = match raw.map(|raw| validate(t, &raw, profile)) {
        Some(Ok((spec, warnings))) if !crate::rejection::any_error(&errors) => {
            errors.extend(warnings);
            Ok((spec, errors))
        }
        Some(Ok((_, more)) | Err(more)) => {
            errors.extend(more);
            Err(errors)
        }
        None => Err(errors),
    };
    (fields, result.map_err(sorted))
}

/// 4014 if the object text is over `max_object_bytes` or `max_object_lines`.
fn oversized(body: &str, limits: &Limits) -> Option<Rejection> {
    let detail = if body.len() > limits.max_object_bytes {
        format!("object over the limit of {} bytes", limits.max_object_bytes)
    } else if body.lines().count() > limits.max_object_lines {
        format!("object over the limit of {} lines", limits.max_object_lines)
    } else {
        return None;
    };
    Some(
        Rejection::new(crate::rejection::Code::MailTooLarge)
            .key("regbody")
            .detail(detail),
    )
}

fn sorted(mut list: Vec<Rejection>) -> Vec<Rejection> {
    list.sort_by_key(|r| (r.line.unwrap_or(0), r.code));
    list.dedup();
    list
}
