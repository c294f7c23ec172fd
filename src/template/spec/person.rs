//! Typed rules for `perscreate` (template.md sections 5 and 6).
//!
//! Input: the attributes kept by the generic rules. Output: a
//! [`PersonCreate`], or `None` with every error recorded in the [`Findings`].
//! Invariants: the handle must be `AUTO` (the registry assigns it); a name is
//! mandatory for NAT and ROLE, an organisation for JUR and refused for ROLE;
//! errors are recorded in the same order as the checks below.

use super::{Findings, PersonCreate, PersonType, one, values};
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

/// `perscreate`.
pub(super) fn person_create(attrs: &[&RawAttr], f: &mut Findings) -> Option<PersonCreate> {
    check_auto_handle(attrs, f);
    let kind = person_type(attrs, f);
    let text =
        |key: &str, f: &mut Findings| opt(one(attrs, key), f, |a, _| v::check_text(&a.value, 255));
    let personname = text("personname", f);
    let organization = text("organization", f);
    let city = text("city", f);
    let postal_code = postal_code(attrs, f);
    let country = opt(one(attrs, "country"), f, |a, _| v::check_country(&a.value));
    let phone_no = |key: &str, f: &mut Findings| {
        opt(one(attrs, key), f, |a, f| {
            v::check_phone(&a.value).map(|n| f.norm(a, n))
        })
    };
    let (phone, fax) = (phone_no("phone", f), phone_no("fax-no", f));
    let email = opt(one(attrs, "e-mail"), f, |a, _| v::check_email(&a.value));
    let flag = |key: &str, f: &mut Findings| {
        opt(one(attrs, key), f, |a, _| v::check_flag(&a.value)).map(|o| o.unwrap_or(false))
    };
    let (hide_phone, hide_fax, hide_email) = (
        flag("whoishidephone", f),
        flag("whoishidefax", f),
        flag("whoishide", f),
    );
    let street = street(attrs, f);
    let remarks = text_lines(&values(attrs, "remarks"), f);
    let (kind, personname, organization) = (kind.ok()??, personname.ok()?, organization.ok()?);
    check_names(kind, &personname, &organization, attrs, f);
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

/// `street address:` at most 4 lines; the valid ones.
fn street(attrs: &[&RawAttr], f: &mut Findings) -> Vec<String> {
    let street_attrs = values(attrs, "street address");
    if let Some(fifth) = street_attrs.get(4) {
        f.at(
            fifth,
            Rejection::new(Code::OutOfRange).detail("at most 4 street address lines"),
        );
    }
    text_lines(&street_attrs, f)
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
