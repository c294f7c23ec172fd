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
    /// `update` of a domain.
    DomainUpdate(DomainUpdate),
    /// `nscupdate`.
    Nscupdate(Nscupdate),
    /// `delete` of a domain.
    Delete(Delete),
    /// `undelete`.
    Undelete(String),
    /// `renew`.
    Renew(Renew),
    /// `regtransfer`.
    Transfer(Transfer),
    /// `transferack` (true) or `transfernack` (false).
    TransferDecision(String, bool),
    /// `billwithdraw`.
    Withdraw(Withdraw),
    /// `perscreate`.
    PersonCreate(PersonCreate),
    /// `persupdate`.
    PersonUpdate(PersonUpdate),
    /// `persdelete` of a handle.
    PersonDelete(String),
    /// `check` of a domain name or a handle.
    Check(CheckSpec),
    /// `info` of a domain or a handle.
    Info(CheckSpec),
}

impl Spec {
    /// The object named in the reply (domain name or handle).
    pub fn object(&self) -> &str {
        match self {
            Spec::DomainCreate(d) => &d.name,
            Spec::DomainUpdate(d) => &d.name,
            Spec::Nscupdate(d) => &d.name,
            Spec::Delete(d) => &d.name,
            Spec::Renew(d) => &d.name,
            Spec::Transfer(d) => &d.name,
            Spec::Withdraw(d) => &d.name,
            Spec::Undelete(name) | Spec::TransferDecision(name, _) | Spec::PersonDelete(name) => {
                name
            }
            Spec::PersonCreate(_) => "AUTO",
            Spec::PersonUpdate(p) => &p.handle,
            Spec::Check(c) | Spec::Info(c) => &c.name,
        }
    }
}

/// A nameserver with its addresses (RFC 5952 form).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// An `update` of a domain: each key given replaces that whole set.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DomainUpdate {
    /// The domain.
    pub name: String,
    /// New holder (a holder change).
    pub registrant: Option<String>,
    /// New admin contact.
    pub admin_c: Option<String>,
    /// New technical contacts, 1..2.
    pub tech_c: Option<Vec<String>>,
    /// New zone contact.
    pub zone_c: Option<String>,
    /// `client-hold`.
    pub client_hold: Option<bool>,
    /// `client-lock`.
    pub client_lock: Option<bool>,
}

/// An `nscupdate`: the new nameserver set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nscupdate {
    /// The domain.
    pub name: String,
    /// The whole new set.
    pub nameservers: Vec<Nameserver>,
}

/// A `delete`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delete {
    /// The domain.
    pub name: String,
    /// `scheduledate: expiration` (the default) rather than `now`.
    pub at_expiration: bool,
}

/// A `renew`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Renew {
    /// The domain.
    pub name: String,
    /// Years.
    pub period: u32,
}

/// A `regtransfer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The domain.
    pub name: String,
    /// Free text for the holder and the losing registrar.
    pub registrarinfo: Option<String>,
    /// The domain's authinfo (profile mode `authinfo`).
    pub authinfo: Option<String>,
}

/// A `billwithdraw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Withdraw {
    /// The domain.
    pub name: String,
    /// Also take the domain out of the zone.
    pub zone_delete: bool,
}

/// Person fields as given (each `None` when absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PersonChanges {
    /// NAT, JUR or ROLE.
    pub kind: Option<PersonType>,
    /// Name.
    pub personname: Option<String>,
    /// Organisation.
    pub organization: Option<String>,
    /// All street lines.
    pub street: Option<Vec<String>>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// City.
    pub city: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// Fax.
    pub fax: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Hide phone.
    pub hide_phone: Option<bool>,
    /// Hide fax.
    pub hide_fax: Option<bool>,
    /// Hide e-mail.
    pub hide_email: Option<bool>,
    /// All remarks lines.
    pub remarks: Option<Vec<String>>,
}

/// A `persupdate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonUpdate {
    /// The handle.
    pub handle: String,
    /// The keys given, each replacing the stored value(s).
    pub changes: PersonChanges,
}

/// A `check` or `info` question.
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
    use Transaction as T;
    match (t, class) {
        (T::Perscreate, _) => person::person_create(attrs, f).map(Spec::PersonCreate),
        (T::Persupdate, _) => person::person_update(attrs, p, f).map(Spec::PersonUpdate),
        (T::Persdelete, _) => person::handle(attrs, p, f).map(Spec::PersonDelete),
        (T::Check, _) => domain::check(class, attrs, p, f).map(Spec::Check),
        (T::Info, _) => domain::check(class, attrs, p, f).map(Spec::Info),
        _ => domain::typed(t, attrs, p, f),
    }
}
