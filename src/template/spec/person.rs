//! Typed rules for person objects: `perscreate`, `persupdate`, and the handle
//! of `persdelete`/`info`/`check` (template.md section 6).
//!
//! Input: the attributes kept by the generic rules. Output: a
//! [`PersonCreate`] or [`PersonUpdate`], or `None` with every error recorded
//! in the [`Findings`].
//! Invariants: the handle must be `AUTO` (the registry assigns it); a name is
//! mandatory for NAT and ROLE, an organisation for JUR and refused for ROLE;
//! errors are recorded in the same order as the checks below.

use super::{Findings, PersonChanges, PersonCreate, PersonType, PersonUpdate, one, values};
use crate::config::Profile;
use crate::rejection::{Code, Rejection};
use crate::template::object::RawAttr;
use crate::template::values as v;

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

/// Every person field that is given, validated; `None` if any given value
/// is invalid (each error recorded).
pub(super) fn person_fields(attrs: &[&RawAttr], f: &mut Findings) -> Option<PersonChanges> {
    let kind = person_type(attrs, f);
    let text =
        |key: &str, f: &mut Findings| opt(one(attrs, key), f, |a, _| v::check_text(&a.value, 255));
    let (personname, organization, city) = (
        text("personname", f),
        text("organization", f),
        text("city", f),
    );
    let postal_code = postal_code(attrs, f);
    let country = opt(one(attrs, "country"), f, |a, _| v::check_country(&a.value));
    let phone_no = |key: &str, f: &mut Findings| {
        opt(one(attrs, key), f, |a, f| {
            v::check_phone(&a.value).map(|n| f.norm(a, n))
        })
    };
    let (phone, fax) = (phone_no("phone", f), phone_no("fax-no", f));
    let email = opt(one(attrs, "e-mail"), f, |a, _| v::check_email(&a.value));
    let flag =
        |key: &str, f: &mut Findings| opt(one(attrs, key), f, |a, _| v::check_flag(&a.value));
    let (hide_phone, hide_fax, hide_email) = (
        flag("whoishidephone", f),
        flag("whoishidefax", f),
        flag("whoishide", f),
    );
    let street = street(attrs, f);
    let remarks = values(attrs, "remarks");
    let remarks = (!remarks.is_empty()).then(|| text_lines(&remarks, f));
    Some(PersonChanges {
        kind: kind.ok()?,
        personname: personname.ok()?,
        organization: organization.ok()?,
        street,
        postal_code: postal_code.ok()?,
        city: city.ok()?,
        country: country.ok()?,
        phone: phone.ok()?,
        fax: fax.ok()?,
        email: email.ok()?,
        hide_phone: hide_phone.ok()?,
        hide_fax: hide_fax.ok()?,
        hide_email: hide_email.ok()?,
        remarks,
    })
}

/// `perscreate`: the fields, with the mandatory ones present (the generic
/// rules reported any missing) and the name rules of the type.
pub(super) fn person_create(attrs: &[&RawAttr], f: &mut Findings) -> Option<PersonCreate> {
    check_auto_handle(attrs, f);
    let c = person_fields(attrs, f)?;
    let kind = c.kind?;
    check_names(kind, &c.personname, &c.organization, attrs, f);
    Some(PersonCreate {
        kind,
        personname: c.personname,
        organization: c.organization,
        street: c.street.unwrap_or_default(),
        postal_code: c.postal_code?,
        city: c.city?,
        country: c.country?,
        phone: c.phone?,
        fax: c.fax,
        email: c.email?,
        hide_phone: c.hide_phone.unwrap_or(false),
        hide_fax: c.hide_fax.unwrap_or(false),
        hide_email: c.hide_email.unwrap_or(false),
        remarks: c.remarks.unwrap_or_default(),
    })
}

/// The handle named in `nic-hdl:` (persupdate, persdelete, info).
pub(super) fn handle(attrs: &[&RawAttr], p: &Profile, f: &mut Findings) -> Option<String> {
    let a = one(attrs, "nic-hdl")?;
    v::check_handle(&a.value, &p.handle_suffix)
        .map_err(|r| f.at(a, r))
        .ok()
}

/// `persupdate`: the handle and the fields to replace.
pub(super) fn person_update(
    attrs: &[&RawAttr],
    p: &Profile,
    f: &mut Findings,
) -> Option<PersonUpdate> {
    let handle = handle(attrs, p, f);
    let changes = person_fields(attrs, f);
    if let (Some(PersonType::Role), Some(a)) = (
        changes.as_ref().and_then(|c| c.kind),
        one(attrs, "organization"),
    ) {
        f.at(
            a,
            Rejection::new(Code::KeyNotAllowed).detail("not allowed for ROLE"),
        );
    }
    Some(PersonUpdate {
        handle: handle?,
        changes: changes?,
    })
}

/// `nic-hdl:` must be `AUTO`: the registry assigns the handle.
fn check_auto_handle(attrs: &[&RawAttr], f: &mut Findings) {
    if let Some(h) = one(attrs, "nic-hdl").filter(|a| !a.value.eq_ignore_ascii_case("AUTO")) {
        f.at(
            h,
            Rejection::new(Code::InvalidHandle).detail("use AUTO: the registry assigns the handle"),
        );
    }
}

/// `type:` NAT, JUR or ROLE.
fn person_type(attrs: &[&RawAttr], f: &mut Findings) -> Result<Option<PersonType>, ()> {
    opt(one(attrs, "type"), f, |a, _| match a.value.as_str() {
        "NAT" => Ok(PersonType::Nat),
        "JUR" => Ok(PersonType::Jur),
        "ROLE" => Ok(PersonType::Role),
        other => {
            Err(Rejection::new(Code::InvalidFlag)
                .detail(format!("{other:.20}: use NAT, JUR or ROLE")))
        }
    })
}

/// `postal code:` 2..16 letters, digits, spaces, hyphens.
fn postal_code(attrs: &[&RawAttr], f: &mut Findings) -> Result<Option<String>, ()> {
    opt(one(attrs, "postal code"), f, |a, _| {
        let ok = (2..=16).contains(&a.value.len())
            && a.value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b' ' || b == b'-');
        if ok {
            Ok(a.value.clone())
        } else {
            Err(Rejection::new(Code::OutOfRange).detail("2..16 letters, digits, spaces, hyphens"))
        }
    })
}

/// `street address:` at most 4 lines; the valid ones (`None` if none given).
fn street(attrs: &[&RawAttr], f: &mut Findings) -> Option<Vec<String>> {
    let street_attrs = values(attrs, "street address");
    if street_attrs.is_empty() {
        return None;
    }
    if let Some(fifth) = street_attrs.get(4) {
        f.at(
            fifth,
            Rejection::new(Code::OutOfRange).detail("at most 4 street address lines"),
        );
    }
    Some(text_lines(&street_attrs, f))
}

/// The valid free-text values of the attributes, each error recorded.
fn text_lines(attrs: &[&RawAttr], f: &mut Findings) -> Vec<String> {
    attrs
        .iter()
        .filter_map(|a| v::check_text(&a.value, 255).map_err(|r| f.at(a, r)).ok())
        .collect()
}

/// A name for NAT and ROLE, an organisation for JUR, none for ROLE.
fn check_names(
    kind: PersonType,
    personname: &Option<String>,
    organization: &Option<String>,
    attrs: &[&RawAttr],
    f: &mut Findings,
) {
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
}
