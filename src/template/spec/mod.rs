//! Validation of a [`RawObject`] into a typed [`Spec`] for its transaction.
//!
//! Generic rules first (class, `command:`, unknown/forbidden/duplicate keys,
//! continuations, `source:`, mandatory keys), then the typed value rules of
//! template.md sections 5 and 6. Every error is collected, none stops the rest.
//! This module holds the spec types, [`validate`] and the generic key rules;
//! the typed rules live in `domain` (create, check, nameservers) and `person`
//! (perscreate).

mod domain;
mod person;

use super::keys::{Presence, key_rule, mandatory_keys};
use super::object::{RawAttr, RawObject};
use super::values as v;
use super::{ObjectClass, Transaction};
use crate::config::Profile;
use crate::rejection::{Code, Rejection};

/// A validated template, ready for `policy`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// `create` of a domain.
    DomainCreate(DomainCreate),
    /// `perscreate`.
    PersonCreate(PersonCreate),
    /// `check` of a domain name or a handle.
    Check(CheckSpec),
    /// A transaction whose rules this build does not implement yet.
    Unsupported {
        /// The transaction.
        transaction: Transaction,
        /// The object's name (domain or handle).
        object: String,
    },
}

impl Spec {
    /// The object named in the reply (domain name or handle).
    pub fn object(&self) -> &str {
        match self {
            Spec::DomainCreate(d) => &d.name,
            Spec::PersonCreate(_) => "AUTO",
            Spec::Check(c) => &c.name,
            Spec::Unsupported { object, .. } => object,
        }
    }
}

/// A nameserver with its addresses (RFC 5952 form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nameserver {
    /// Host name, lower-case ACE.
    pub host: String,
    /// Addresses, 0..4.
    pub addresses: Vec<String>,
}

/// A domain to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainCreate {
    /// Lower-case ACE name.
    pub name: String,
    /// Holder handle.
    pub registrant: String,
    /// Admin contact.
    pub admin_c: Option<String>,
    /// Technical contacts, 1..2.
    pub tech_c: Vec<String>,
    /// Zone contact.
    pub zone_c: Option<String>,
    /// Nameservers in order.
    pub nameservers: Vec<Nameserver>,
    /// Years.
    pub period: u32,
}

/// The kind of a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersonType {
    /// A private person.
    Nat,
    /// An organisation.
    Jur,
    /// A role.
    Role,
}

impl PersonType {
    /// The template word.
    pub fn as_str(self) -> &'static str {
        match self {
            PersonType::Nat => "NAT",
            PersonType::Jur => "JUR",
            PersonType::Role => "ROLE",
        }
    }
}

/// A contact to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonCreate {
    /// NAT, JUR or ROLE.
    pub kind: PersonType,
    /// Name (mandatory for NAT and ROLE).
    pub personname: Option<String>,
    /// Organisation (mandatory for JUR).
    pub organization: Option<String>,
    /// 1..4 lines.
    pub street: Vec<String>,
    /// Postal code.
    pub postal_code: String,
    /// City.
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// `+` and digits.
    pub phone: String,
    /// `+` and digits.
    pub fax: Option<String>,
    /// addr-spec.
    pub email: String,
    /// Hide phone in public queries.
    pub hide_phone: bool,
    /// Hide fax.
    pub hide_fax: bool,
    /// Hide e-mail.
    pub hide_email: bool,
    /// Free text lines.
    pub remarks: Vec<String>,
}

/// A `check` question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// Domain or person.
    pub class: ObjectClass,
    /// Normalised domain name or handle.
    pub name: String,
}

/// Collects errors and warnings while validating.
#[derive(Debug, Default)]
struct Findings {
    errors: Vec<Rejection>,
    warnings: Vec<Rejection>,
}

impl Findings {
    fn at(&mut self, attr: &RawAttr, r: Rejection) {
        self.errors.push(r.at(attr.line).key(&attr.key));
    }

    /// Records a normalisation warning and returns the value.
    fn norm(&mut self, attr: &RawAttr, (value, changed): v::Normalised) -> String {
        if changed {
            self.warnings.push(
                Rejection::new(Code::ValueNormalised)
                    .at(attr.line)
                    .key(&attr.key)
                    .detail(format!("now {value:.40}")),
            );
        }
        value
    }
}

/// Validates the raw object for the transaction under the profile.
pub fn validate(
    t: Transaction,
    raw: &RawObject,
    profile: &Profile,
) -> Result<(Spec, Vec<Rejection>), Vec<Rejection>> {
    let mut f = Findings::default();
    let Some(first) = raw.attrs.first() else {
        return Err(vec![Rejection::new(Code::ObjectCount).detail("no object")]);
    };
    let class = match first.key.as_str() {
        "domain" => ObjectClass::Domain,
        "nic-hdl" => ObjectClass::Person,
        _ => {
            f.at(
                first,
                Rejection::new(Code::ObjectCount)
                    .detail("the object must begin with domain: or nic-hdl:"),
            );
            return Err(f.errors);
        }
    };
    if !t.accepts(class) {
        // The key tables of another class would only add noise.
        f.at(
            first,
            Rejection::new(Code::UnknownTransaction)
                .detail(format!("{} needs another object", t.name())),
        );
        return Err(f.errors);
    }
    let attrs = generic(t, class, raw, profile, &mut f);
    let spec = typed(t, class, &attrs, profile, &mut f);
    match spec {
        Some(spec) if f.errors.is_empty() => Ok((spec, f.warnings)),
        _ => {
            f.errors.extend(f.warnings);
            Err(f.errors)
        }
    }
}

/// The generic rules; returns the non-empty, allowed attributes.
fn generic<'a>(
    t: Transaction,
    class: ObjectClass,
    raw: &'a RawObject,
    profile: &Profile,
    f: &mut Findings,
) -> Vec<&'a RawAttr> {
    check_command(t, raw, f);
    let kept = allowed_attrs(t, class, raw, f);
    check_source(raw, profile, f);
    check_mandatory(t, class, &kept, f);
    kept
}

/// `command:` must be the second key and name the transaction's command.
fn check_command(t: Transaction, raw: &RawObject, f: &mut Findings) {
    match raw.attrs.get(1) {
        Some(a) if a.key == "command" => {
            if a.value.to_ascii_lowercase() != t.command() {
                f.at(
                    a,
                    Rejection::new(Code::UnknownTransaction).detail(format!(
                        "{} needs command: {}",
                        t.name(),
                        t.command()
                    )),
                );
            }
        }
        other => {
            let line = other.map_or(raw.attrs[0].line, |a| a.line);
            f.errors.push(
                Rejection::new(Code::UnknownTransaction)
                    .at(line)
                    .key("command")
                    .detail("command: must be the second key"),
            );
        }
    }
}

/// The key-table rules per attribute; returns the non-empty, allowed ones.
fn allowed_attrs<'a>(
    t: Transaction,
    class: ObjectClass,
    raw: &'a RawObject,
    f: &mut Findings,
) -> Vec<&'a RawAttr> {
    let mut kept: Vec<&RawAttr> = Vec::new();
    for attr in &raw.attrs {
        if !attr.key_ok {
            f.at(attr, Rejection::new(Code::BadKey));
            continue;
        }
        let Some(rule) = key_rule(class, t, &attr.key) else {
            f.at(attr, Rejection::new(Code::UnknownKey));
            continue;
        };
        if rule.presence == Presence::Forbidden {
            f.at(
                attr,
                Rejection::new(Code::KeyNotAllowed).detail(format!("not allowed in {}", t.name())),
            );
            continue;
        }
        if let (false, Some(line)) = (rule.continuable, attr.continuations.first()) {
            f.errors.push(
                Rejection::new(Code::ContinuationNotAllowed)
                    .at(*line)
                    .key(&attr.key),
            );
        }
        if attr.value.is_empty() {
            continue;
        }
        if !rule.repeatable && kept.iter().any(|k| k.key == attr.key) {
            f.at(attr, Rejection::new(Code::DuplicateKey));
            continue;
        }
        kept.push(attr);
    }
    kept
}

/// Every mandatory key (but `source`, checked on its own) must be kept.
fn check_mandatory(t: Transaction, class: ObjectClass, kept: &[&RawAttr], f: &mut Findings) {
    for key in mandatory_keys(class, t).filter(|k| *k != "source") {
        if !kept.iter().any(|a| a.key == key) {
            f.errors
                .push(Rejection::new(Code::MandatoryMissing).key(key));
        }
    }
}

fn check_source(raw: &RawObject, profile: &Profile, f: &mut Findings) {
    let sources: Vec<&RawAttr> = raw.attrs.iter().filter(|a| a.key == "source").collect();
    match (sources.as_slice(), raw.attrs.last()) {
        ([], _) => f
            .errors
            .push(Rejection::new(Code::Source).key("source").detail("missing")),
        ([one], Some(last)) if std::ptr::eq(*one, last) => {
            if one.value != profile.source {
                f.at(
                    one,
                    Rejection::new(Code::Source).detail(format!("must be {}", profile.source)),
                );
            }
        }
        (list, _) => {
            if let Some(first) = list.first() {
                f.at(
                    first,
                    Rejection::new(Code::Source).detail("source: must be the last key, once"),
                );
            }
        }
    }
}

fn values<'a>(attrs: &[&'a RawAttr], key: &str) -> Vec<&'a RawAttr> {
    attrs.iter().copied().filter(|a| a.key == key).collect()
}

fn one<'a>(attrs: &[&'a RawAttr], key: &str) -> Option<&'a RawAttr> {
    attrs.iter().copied().find(|a| a.key == key)
}

fn typed(
    t: Transaction,
    class: ObjectClass,
    attrs: &[&RawAttr],
    p: &Profile,
    f: &mut Findings,
) -> Option<Spec> {
    match (t, class) {
        (Transaction::Create, ObjectClass::Domain) => {
            domain::domain_create(attrs, p, f).map(Spec::DomainCreate)
        }
        (Transaction::Perscreate, ObjectClass::Person) => {
            person::person_create(attrs, f).map(Spec::PersonCreate)
        }
        (Transaction::Check, _) => domain::check(class, attrs, p, f).map(Spec::Check),
        _ => {
            let object = one(
                attrs,
                if class == ObjectClass::Domain {
                    "domain"
                } else {
                    "nic-hdl"
                },
            );
            Some(Spec::Unsupported {
                transaction: t,
                object: object.map(|a| a.value.clone()).unwrap_or_default(),
            })
        }
    }
}
