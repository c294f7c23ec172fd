//! Validation of a [`RawObject`] into a typed [`Spec`] for its transaction.
//!
//! Generic rules first (class, `command:`, unknown/forbidden/duplicate keys,
//! continuations, `source:`, mandatory keys), then the typed value rules of
//! template.md sections 5 and 6. Every error is collected, none stops the rest.

use super::keys::{Presence, key_rule, mandatory_keys};
use super::object::{RawAttr, RawObject};
use super::values::{self as v, host_in_zone};
use super::{ObjectClass, Transaction};
use crate::config::{IpRule, Profile};
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
    check_source(raw, profile, f);
    for key in mandatory_keys(class, t).filter(|k| *k != "source") {
        if !kept.iter().any(|a| a.key == key) {
            f.errors
                .push(Rejection::new(Code::MandatoryMissing).key(key));
        }
    }
    kept
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
            domain_create(attrs, p, f).map(Spec::DomainCreate)
        }
        (Transaction::Perscreate, ObjectClass::Person) => {
            person_create(attrs, f).map(Spec::PersonCreate)
        }
        (Transaction::Check, _) => check(class, attrs, p, f).map(Spec::Check),
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

fn check(
    class: ObjectClass,
    attrs: &[&RawAttr],
    p: &Profile,
    f: &mut Findings,
) -> Option<CheckSpec> {
    let (key, checked) = match class {
        ObjectClass::Domain => ("domain", None),
        ObjectClass::Person => ("nic-hdl", Some(())),
    };
    let attr = one(attrs, key)?;
    let name = match checked {
        None => v::check_domain_name(&attr.value, p).map(|n| f.norm(attr, n)),
        Some(()) => v::check_handle(&attr.value, &p.handle_suffix),
    };
    match name {
        Ok(name) => Some(CheckSpec { class, name }),
        Err(r) => {
            f.at(attr, r);
            None
        }
    }
}

fn handle_of(attr: &RawAttr, p: &Profile, f: &mut Findings) -> Option<String> {
    v::check_handle(&attr.value, &p.handle_suffix)
        .map_err(|r| f.at(attr, r))
        .ok()
}

fn domain_create(attrs: &[&RawAttr], p: &Profile, f: &mut Findings) -> Option<DomainCreate> {
    let name = one(attrs, "domain").and_then(|a| {
        v::check_domain_name(&a.value, p)
            .map(|n| f.norm(a, n))
            .map_err(|r| f.at(a, r))
            .ok()
    });
    let registrant = one(attrs, "registrant").and_then(|a| handle_of(a, p, f));
    let admin_c = one(attrs, "admin-c").map(|a| handle_of(a, p, f));
    let zone_c = one(attrs, "zone-c").map(|a| handle_of(a, p, f));
    let tech: Vec<&RawAttr> = values(attrs, "tech-c");
    if let Some(third) = tech.get(2) {
        f.at(
            third,
            Rejection::new(Code::OutOfRange).detail("at most 2 tech-c"),
        );
    }
    let tech_c: Vec<Option<String>> = tech.iter().map(|a| handle_of(a, p, f)).collect();
    let nameservers = nameservers(attrs, p, f);
    let period = match one(attrs, "period") {
        None => Some(1),
        Some(a) => match a.value.parse::<u32>() {
            Ok(n) if (1..=p.max_period).contains(&n) && !a.value.starts_with('0') => Some(n),
            _ => {
                f.at(
                    a,
                    Rejection::new(Code::OutOfRange)
                        .detail(format!("period must be 1..{} years", p.max_period)),
                );
                None
            }
        },
    };
    Some(DomainCreate {
        name: name?,
        registrant: registrant?,
        admin_c: admin_c.flatten(),
        tech_c: tech_c.into_iter().collect::<Option<Vec<_>>>()?,
        zone_c: zone_c.flatten(),
        nameservers: nameservers?,
        period: period?,
    })
}

/// `nserver` lines, each followed by its `remarks:` addresses.
fn nameservers(attrs: &[&RawAttr], p: &Profile, f: &mut Findings) -> Option<Vec<Nameserver>> {
    let before = f.errors.len();
    let mut list: Vec<(&RawAttr, Nameserver)> = Vec::new();
    for attr in attrs
        .iter()
        .copied()
        .filter(|a| a.key == "nserver" || a.key == "remarks")
    {
        if attr.key == "nserver" {
            match v::check_host_name(&attr.value) {
                Ok(n) => {
                    let host = f.norm(attr, n);
                    if list.iter().any(|(_, ns)| ns.host == host) {
                        f.at(
                            attr,
                            Rejection::new(Code::InvalidHost)
                                .detail(format!("{host:.40}: duplicate")),
                        );
                    }
                    list.push((
                        attr,
                        Nameserver {
                            host,
                            addresses: Vec::new(),
                        },
                    ));
                }
                Err(r) => f.at(attr, r),
            }
            continue;
        }
        let Some((_, ns)) = list.last_mut() else {
            f.at(
                attr,
                Rejection::new(Code::NameserverIp).detail("remarks: must follow an nserver: line"),
            );
            continue;
        };
        match v::check_ip(&attr.value) {
            Ok(n) => {
                let ip = f.norm(attr, n);
                if ns.addresses.contains(&ip) {
                    f.at(
                        attr,
                        Rejection::new(Code::InvalidIp).detail(format!("{ip}: duplicate")),
                    );
                } else if ns.addresses.len() >= p.max_ips_per_host {
                    f.at(
                        attr,
                        Rejection::new(Code::NameserverIp)
                            .detail(format!("at most {} addresses", p.max_ips_per_host)),
                    );
                } else {
                    ns.addresses.push(ip);
                }
            }
            Err(r) => f.at(attr, r),
        }
    }
    for (attr, ns) in &list {
        let inside = host_in_zone(&ns.host, p);
        let needs = inside || p.nameserver_ip_required == IpRule::All;
        if needs && ns.addresses.is_empty() {
            f.at(
                attr,
                Rejection::new(Code::NameserverIp)
                    .detail(format!("{:.40}: IP address required", ns.host)),
            );
        } else if !inside && p.nameserver_ip_required == IpRule::InZone && !ns.addresses.is_empty()
        {
            f.at(
                attr,
                Rejection::new(Code::NameserverIp).detail(format!(
                    "{:.40}: no IP for hosts outside the zones",
                    ns.host
                )),
            );
        }
    }
    let count = values(attrs, "nserver").len();
    if count > 0 && !(p.min_nameservers..=p.max_nameservers).contains(&count) {
        f.errors.push(
            Rejection::new(Code::NameserverCount)
                .key("nserver")
                .detail(format!(
                    "{count} given, {}..{} required",
                    p.min_nameservers, p.max_nameservers
                )),
        );
    }
    (f.errors.len() == before && count > 0).then(|| list.into_iter().map(|(_, ns)| ns).collect())
}

/// Runs a check on an optional attribute; `Err(())` if it was given and invalid.
fn opt<T>(
    attr: Option<&RawAttr>,
    f: &mut Findings,
    check: impl FnOnce(&RawAttr, &mut Findings) -> Result<T, Rejection>,
) -> Result<Option<T>, ()> {
    match attr {
        None => Ok(None),
        Some(a) => match check(a, f) {
            Ok(v) => Ok(Some(v)),
            Err(r) => {
                f.at(a, r);
                Err(())
            }
        },
    }
}

fn person_create(attrs: &[&RawAttr], f: &mut Findings) -> Option<PersonCreate> {
    if let Some(h) = one(attrs, "nic-hdl").filter(|a| !a.value.eq_ignore_ascii_case("AUTO")) {
        f.at(
            h,
            Rejection::new(Code::InvalidHandle).detail("use AUTO: the registry assigns the handle"),
        );
    }
    let kind =
        opt(one(attrs, "type"), f, |a, _| match a.value.as_str() {
            "NAT" => Ok(PersonType::Nat),
            "JUR" => Ok(PersonType::Jur),
            "ROLE" => Ok(PersonType::Role),
            other => Err(Rejection::new(Code::InvalidFlag)
                .detail(format!("{other:.20}: use NAT, JUR or ROLE"))),
        });
    let text =
        |key: &str, f: &mut Findings| opt(one(attrs, key), f, |a, _| v::check_text(&a.value, 255));
    let personname = text("personname", f);
    let organization = text("organization", f);
    let city = text("city", f);
    let postal_code = opt(one(attrs, "postal code"), f, |a, _| {
        let ok = (2..=16).contains(&a.value.len())
            && a.value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-');
        if ok {
            Ok(a.value.clone())
        } else {
            Err(Rejection::new(Code::OutOfRange).detail("2..16 letters, digits, spaces, hyphens"))
        }
    });
    let country = opt(one(attrs, "country"), f, |a, _| v::check_country(&a.value));
    let phone = opt(one(attrs, "phone"), f, |a, f| {
        v::check_phone(&a.value).map(|n| f.norm(a, n))
    });
    let fax = opt(one(attrs, "fax-no"), f, |a, f| {
        v::check_phone(&a.value).map(|n| f.norm(a, n))
    });
    let email = opt(one(attrs, "e-mail"), f, |a, _| v::check_email(&a.value));
    let flag = |key: &str, f: &mut Findings| {
        opt(one(attrs, key), f, |a, _| v::check_flag(&a.value)).map(|o| o.unwrap_or(false))
    };
    let (hide_phone, hide_fax, hide_email) = (
        flag("whoishidephone", f),
        flag("whoishidefax", f),
        flag("whoishide", f),
    );
    let street_attrs = values(attrs, "street address");
    if let Some(fifth) = street_attrs.get(4) {
        f.at(
            fifth,
            Rejection::new(Code::OutOfRange).detail("at most 4 street address lines"),
        );
    }
    let street: Vec<String> = street_attrs
        .iter()
        .filter_map(|a| v::check_text(&a.value, 255).map_err(|r| f.at(a, r)).ok())
        .collect();
    let remarks: Vec<String> = values(attrs, "remarks")
        .iter()
        .filter_map(|a| v::check_text(&a.value, 255).map_err(|r| f.at(a, r)).ok())
        .collect();
    let (kind, personname, organization) = (kind.ok()??, personname.ok()?, organization.ok()?);
    let needs_name = kind != PersonType::Jur;
    if needs_name && personname.is_none() {
        f.errors.push(
            Rejection::new(Code::MandatoryMissing)
                .key("personname")
                .detail(format!("mandatory for {}", kind.as_str())),
        );
    }
    if kind == PersonType::Jur && organization.is_none() {
        f.errors.push(
            Rejection::new(Code::MandatoryMissing)
                .key("organization")
                .detail("mandatory for JUR"),
        );
    }
    if let (PersonType::Role, Some(a)) = (kind, one(attrs, "organization")) {
        f.at(
            a,
            Rejection::new(Code::KeyNotAllowed).detail("not allowed for ROLE"),
        );
    }
    Some(PersonCreate {
        kind,
        personname,
        organization,
        street,
        postal_code: postal_code.ok()??,
        city: city.ok()??,
        country: country.ok()??,
        phone: phone.ok()??,
        fax: fax.ok()?,
        email: email.ok()??,
        hide_phone: hide_phone.ok()?,
        hide_fax: hide_fax.ok()?,
        hide_email: hide_email.ok()?,
        remarks,
    })
}
