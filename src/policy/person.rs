//! Person rules and effects: perscreate, persupdate, persdelete, info.
//!
//! Invariants: only the creating registrar changes or deletes a handle
//! (6202); a handle used as a domain's holder keeps its type, name,
//! organisation and country (6203), and a change of its other data waits for
//! the objection period (a pending `person-update`, 1002); a handle in use
//! cannot be deleted (6204); the registry's own addresses are refused (6205).

use super::render::{self, View};
use super::{Act, Decision, Rules};
use crate::config::{Config, Profile};
use crate::rejection::{Code, Rejection};
use crate::reply::rfc3339;
use crate::store::{PendingRequest, PersonRow, StoreError, Tx};
use crate::template::{
    DomainUpdate, ObjectClass, PersonChanges, PersonCreate, PersonType, PersonUpdate, Spec,
    Transaction,
};
use chrono::Duration;

/// `perscreate`.
pub(super) fn check_create(p: &PersonCreate, config: &Config, errors: &mut Vec<Rejection>) {
    if config.is_own_address(&p.email) {
        errors.push(Rejection::new(Code::RegistryAddress).key("e-mail"));
    }
}

/// The person if it exists and `registrar_id` created it (6201, 6202).
fn owned(
    tx: &Tx<'_>,
    registrar_id: u32,
    handle: &str,
    errors: &mut Vec<Rejection>,
) -> Result<Option<PersonRow>, StoreError> {
    match tx.person(handle)? {
        None => errors.push(
            Rejection::new(Code::HandleNotFound)
                .key("nic-hdl")
                .detail(handle.to_string()),
        ),
        Some(p) if p.registrar_id != registrar_id => errors.push(
            Rejection::new(Code::HandleNotYours)
                .key("nic-hdl")
                .detail(handle.to_string()),
        ),
        Some(p) => return Ok(Some(p)),
    }
    Ok(None)
}

/// The stored person with every given key replaced.
pub(super) fn merged(old: &PersonCreate, c: &PersonChanges) -> PersonCreate {
    let pick = |new: &Option<String>, old: &Option<String>| new.clone().or_else(|| old.clone());
    PersonCreate {
        kind: c.kind.unwrap_or(old.kind),
        personname: pick(&c.personname, &old.personname),
        organization: pick(&c.organization, &old.organization),
        street: c.street.clone().unwrap_or_else(|| old.street.clone()),
        postal_code: c
            .postal_code
            .clone()
            .unwrap_or_else(|| old.postal_code.clone()),
        city: c.city.clone().unwrap_or_else(|| old.city.clone()),
        country: c.country.clone().unwrap_or_else(|| old.country.clone()),
        phone: c.phone.clone().unwrap_or_else(|| old.phone.clone()),
        fax: pick(&c.fax, &old.fax),
        email: c.email.clone().unwrap_or_else(|| old.email.clone()),
        hide_phone: c.hide_phone.unwrap_or(old.hide_phone),
        hide_fax: c.hide_fax.unwrap_or(old.hide_fax),
        hide_email: c.hide_email.unwrap_or(old.hide_email),
        remarks: c.remarks.clone().unwrap_or_else(|| old.remarks.clone()),
    }
}

/// The domains whose waiting `update` names the handle, with the role
/// (`registrant` for a holder change).
fn pending_uses(tx: &Tx<'_>, handle: &str) -> Result<Vec<(String, &'static str)>, StoreError> {
    let mut uses = Vec::new();
    for (domain, payload) in tx.open_payloads("update")? {
        let u: DomainUpdate =
            serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let roles = [
            ("registrant", u.registrant.as_deref() == Some(handle)),
            ("admin-c", u.admin_c.as_deref() == Some(handle)),
            ("tech-c", u.tech_c.iter().flatten().any(|h| h == handle)),
            ("zone-c", u.zone_c.as_deref() == Some(handle)),
        ];
        uses.extend(
            roles
                .iter()
                .filter(|(_, named)| *named)
                .map(|(role, _)| (domain.clone(), *role)),
        );
    }
    Ok(uses)
}

/// A holder now, or the holder a waiting holder change will make it.
fn is_holder(tx: &Tx<'_>, handle: &str) -> Result<bool, StoreError> {
    let now = tx
        .handle_uses(handle)?
        .iter()
        .any(|(_, role)| role == "registrant");
    Ok(now
        || pending_uses(tx, handle)?
            .iter()
            .any(|(_, role)| *role == "registrant"))
}

/// `persupdate`.
pub(super) fn check_update(
    tx: &Tx<'_>,
    registrar_id: u32,
    u: &PersonUpdate,
    config: &Config,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let Some(p) = owned(tx, registrar_id, &u.handle, errors)? else {
        return Ok(());
    };
    if let Some(open) = tx.pending_on(&u.handle)? {
        // One open request per object: the holder's objection period runs.
        let detail = format!("pending {}", open.kind);
        errors.push(
            Rejection::new(Code::StatusProhibits)
                .key("nic-hdl")
                .detail(detail),
        );
        return Ok(());
    }
    let new = merged(&p.data, &u.changes);
    if is_holder(tx, &u.handle)? {
        check_fixed_fields(&p.data, &new, errors);
    }
    if u.changes.email.is_some() && config.is_own_address(&new.email) {
        errors.push(Rejection::new(Code::RegistryAddress).key("e-mail"));
    }
    if new.kind != PersonType::Jur && new.personname.is_none() {
        errors.push(
            Rejection::new(Code::MandatoryMissing)
                .key("personname")
                .detail(format!("mandatory for {}", new.kind.as_str())),
        );
    }
    if new.kind == PersonType::Jur && new.organization.is_none() {
        errors.push(
            Rejection::new(Code::MandatoryMissing)
                .key("organization")
                .detail("mandatory for JUR"),
        );
    }
    if new.kind == PersonType::Role && new.organization.is_some() {
        errors.push(
            Rejection::new(Code::KeyNotAllowed)
                .key("organization")
                .detail("not allowed for ROLE"),
        );
    }
    Ok(())
}

/// A holder's type, name, organisation and country do not change (6203).
fn check_fixed_fields(old: &PersonCreate, new: &PersonCreate, errors: &mut Vec<Rejection>) {
    let fixed = [
        ("type", old.kind != new.kind),
        ("personname", old.personname != new.personname),
        ("organization", old.organization != new.organization),
        ("country", old.country != new.country),
    ];
    for (key, _) in fixed.iter().filter(|(_, changed)| *changed) {
        errors.push(
            Rejection::new(Code::ImmutableHolderField)
                .key(key)
                .detail("the handle is a domain holder"),
        );
    }
}

/// `persdelete`.
pub(super) fn check_delete(
    tx: &Tx<'_>,
    registrar_id: u32,
    handle: &str,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    if owned(tx, registrar_id, handle, errors)?.is_none() {
        return Ok(());
    }
    if let Some(open) = tx.pending_on(handle)? {
        let detail = format!("pending {}", open.kind);
        errors.push(
            Rejection::new(Code::StatusProhibits)
                .key("nic-hdl")
                .detail(detail),
        );
    }
    let mut uses = tx.handle_uses(handle)?;
    uses.extend(
        pending_uses(tx, handle)?
            .into_iter()
            .map(|(d, r)| (d, format!("waiting {r}"))),
    );
    if let Some((domain, role)) = uses.first() {
        errors.push(
            Rejection::new(Code::HandleInUse)
                .key("nic-hdl")
                .detail(format!("{role} of {domain}")),
        );
    }
    Ok(())
}

fn text(p: &PersonRow, profile: &Profile) -> String {
    render::object_text(
        &render::person_pairs(p, View::Full),
        ObjectClass::Person,
        Transaction::Persupdate,
        &profile.source,
    )
}

fn record(
    tx: &mut Tx<'_>,
    act: Act<'_>,
    handle: &str,
    action: &str,
    before: &str,
    profile: &Profile,
) -> Result<(), StoreError> {
    let after = tx
        .person(handle)?
        .map(|p| text(&p, profile))
        .unwrap_or_default();
    super::history(tx, act, act.registrar_id, handle, action, [before, &after])
}

/// Carries out a checked person template (a dry run only computes the reply).
pub(super) fn apply(
    tx: &mut Tx<'_>,
    spec: &Spec,
    rules: Rules<'_>,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    let profile = rules.profile;
    match spec {
        // A dry run assigns no handle: the sequence must not move.
        Spec::PersonCreate(_) if act.dry_run => Ok(Decision::success("AUTO")),
        Spec::PersonCreate(p) => {
            let handle = new_handle(tx, p, profile)?;
            tx.insert_person(&handle, act.registrar_id, p, &rfc3339(act.now))?;
            record(tx, act, &handle, "perscreate", "", profile)?;
            Ok(Decision {
                handle: Some(handle.clone()),
                ..Decision::success(&handle)
            })
        }
        Spec::PersonUpdate(u) => update(tx, u, profile, act),
        Spec::PersonDelete(h) => {
            if !act.dry_run {
                let before = tx.person(h)?.map(|p| text(&p, profile)).unwrap_or_default();
                tx.delete_person(h)?;
                record(tx, act, h, "persdelete", &before, profile)?;
            }
            Ok(Decision::success(h))
        }
        _ => Ok(Decision::success(spec.object())),
    }
}

/// A holder's data change waits for the objection period; others apply now.
fn update(
    tx: &mut Tx<'_>,
    u: &PersonUpdate,
    profile: &Profile,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    let Some(p) = tx.person(&u.handle)? else {
        return Ok(Decision::success(&u.handle));
    };
    let new = merged(&p.data, &u.changes);
    if new == p.data || act.dry_run && !is_holder(tx, &u.handle)? {
        return Ok(Decision::success(&u.handle));
    }
    if is_holder(tx, &u.handle)? {
        if !act.dry_run {
            let payload = serde_json::to_string(&u.changes)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            tx.insert_pending(&PendingRequest {
                kind: "person-update",
                object: &u.handle,
                registrar_id: act.registrar_id,
                other_registrar: None,
                server_trid: act.server_trid,
                client_trid: act.client_trid,
                requested: &rfc3339(act.now),
                deadline: &rfc3339(act.now + Duration::days(profile.objection_period_days)),
                execute_at: None,
                mode: Some("objection"),
                payload: &payload,
            })?;
        }
        return Ok(Decision::pending(&u.handle, Code::PendingObjection));
    }
    let before = text(&p, profile);
    tx.update_person(&u.handle, &new, &rfc3339(act.now))?;
    record(tx, act, &u.handle, "persupdate", &before, profile)?;
    Ok(Decision::success(&u.handle))
}

/// Writes a person's changes (a held holder's data change too) with history.
pub(super) fn write_changes(
    tx: &mut Tx<'_>,
    handle: &str,
    c: &PersonChanges,
    profile: &Profile,
    act: Act<'_>,
) -> Result<(), StoreError> {
    let Some(p) = tx.person(handle)? else {
        return Ok(());
    };
    let new = merged(&p.data, c);
    let before = text(&p, profile);
    tx.update_person(handle, &new, &rfc3339(act.now))?;
    record(tx, act, handle, "persupdate", &before, profile)
}

/// Copies a person to a new handle created by `registrar_id` (transfers);
/// returns the new handle.
pub(super) fn copy_for(
    tx: &mut Tx<'_>,
    handle: &str,
    registrar_id: u32,
    profile: &Profile,
    act: Act<'_>,
    at: &str,
) -> Result<String, StoreError> {
    let Some(p) = tx.person(handle)? else {
        return Ok(handle.to_string());
    };
    let new = new_handle(tx, &p.data, profile)?;
    tx.insert_person(&new, registrar_id, &p.data, at)?;
    let after = tx
        .person(&new)?
        .map(|c| text(&c, profile))
        .unwrap_or_default();
    super::history(tx, act, registrar_id, &new, "transfer-copy", ["", &after])?;
    Ok(new)
}

/// `<initials><number>-<suffix>`: initials from the name (or organisation).
fn new_handle(tx: &mut Tx<'_>, p: &PersonCreate, profile: &Profile) -> Result<String, StoreError> {
    let source = p
        .personname
        .as_deref()
        .or(p.organization.as_deref())
        .unwrap_or("");
    let words: Vec<&str> = source
        .split_whitespace()
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic()))
        .collect();
    let mut initials: String = match words.as_slice() {
        [] => String::new(),
        [one] => one
            .chars()
            .filter(char::is_ascii_alphabetic)
            .take(2)
            .collect(),
        [first, .., last] => [first, last]
            .iter()
            .filter_map(|w| w.chars().next())
            .collect(),
    };
    initials.make_ascii_uppercase();
    if initials.len() < 2 {
        initials = "XX".into();
    }
    let n = tx.next_sequence("handle")?;
    Ok(format!("{initials}{n}-{}", profile.handle_suffix))
}

/// The `info` appendix of a person: the creator's or the public view.
pub(super) fn info_text(p: &PersonRow, registrar_id: u32, profile: &Profile) -> String {
    let view = if p.registrar_id == registrar_id {
        View::Full
    } else {
        View::Public
    };
    let object = render::object_text(
        &render::person_pairs(p, view),
        ObjectClass::Person,
        Transaction::Persupdate,
        &profile.source,
    );
    render::template(Transaction::Persupdate, registrar_id, &object)
}
