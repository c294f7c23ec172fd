//! Domain rules and effects: create, update, nscupdate, renew, info.
//!
//! Invariants: only the sponsor changes a domain (6104); the status rules of
//! lifecycle.md section 6 apply (6105, 6106); contacts are handles the acting
//! registrar created (6102); a holder change waits for the objection period
//! (a pending `update`, 1002) instead of being executed.

use super::billing::{self, Item};
use super::render::{self, View};
use super::{Act, Decision, Op, Rules, sponsored, status_allows};
use crate::config::Profile;
use crate::rejection::{Code, Rejection};
use crate::reply::rfc3339;
use crate::store::{DomainRow, PendingRequest, StoreError, Tx};
use crate::template::{
    DomainCreate, DomainUpdate, Nameserver, Nscupdate, ObjectClass, Renew, Spec, Transaction,
    host_in_zone, split_zone,
};
use chrono::{DateTime, Duration, Months, Utc};

/// Each handle exists and was created by the acting registrar (6102).
fn check_handles(
    tx: &Tx<'_>,
    registrar_id: u32,
    handles: &[(&str, &str)],
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    for (key, handle) in handles {
        let why = match tx.person(handle)? {
            Some(p) if p.registrar_id == registrar_id => continue,
            Some(_) => "not yours",
            None => "unknown",
        };
        errors.push(
            Rejection::new(Code::HandleNotUsable)
                .key(key)
                .detail(format!("{handle}: {why}")),
        );
    }
    Ok(())
}

/// The nameserver rules on hosts (GRRP 3.1.2-3.1.8): a host under the
/// registry's zones belongs to the domain it is named under, so only that
/// domain's sponsor (or the domain being created) may create it or set its
/// addresses (6112; 6107 when no such domain exists); a host other
/// registrars' domains use keeps its addresses (6112).
fn check_hosts(
    tx: &Tx<'_>,
    registrar_id: u32,
    list: &[Nameserver],
    creating: Option<&str>,
    profile: &Profile,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let set = |v: &[String]| {
        v.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<String>>()
    };
    for ns in list {
        let stored = tx.host_addresses(&ns.host)?;
        let changes = stored
            .as_ref()
            .is_some_and(|a| !ns.addresses.is_empty() && set(a) != set(&ns.addresses));
        if (stored.is_none() || changes) && host_in_zone(&ns.host, profile) {
            check_glue_owner(tx, registrar_id, &ns.host, creating, profile, errors)?;
        }
        if changes && tx.host_used_by_others(&ns.host, registrar_id)? {
            let detail = format!("{}: addresses differ from the host's", ns.host);
            errors.push(
                Rejection::new(Code::HostInUse)
                    .key("nserver")
                    .detail(detail),
            );
        }
    }
    Ok(())
}

/// The registrable domain a host is named under (`ns1.muster.co.at` ->
/// `muster.co.at`), if it lies under one of the profile's zones.
fn superordinate(host: &str, profile: &Profile) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    (1..labels.len())
        .map(|k| labels[k..].join("."))
        .find(|candidate| split_zone(candidate, profile).is_some())
}

fn check_glue_owner(
    tx: &Tx<'_>,
    registrar_id: u32,
    host: &str,
    creating: Option<&str>,
    profile: &Profile,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let Some(parent) = superordinate(host, profile) else {
        return Ok(());
    };
    if creating == Some(parent.as_str()) {
        return Ok(());
    }
    match tx.domain(&parent)? {
        Some(d) if d.registrar_id == registrar_id => {}
        Some(_) => errors.push(
            Rejection::new(Code::HostInUse)
                .key("nserver")
                .detail(format!("{host}: under another registrar's domain")),
        ),
        None => errors.push(
            Rejection::new(Code::NameserverCheck)
                .key("nserver")
                .detail(format!("{host}: {parent} is not registered")),
        ),
    }
    Ok(())
}

/// A private-person holder must also be the admin contact where the profile
/// says so (.lv): 5201 without an admin-c, 6102 with another one.
fn check_holder_is_admin(
    tx: &Tx<'_>,
    profile: &Profile,
    registrant: &str,
    admin_c: Option<&str>,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    if !profile.natural_holder_is_admin {
        return Ok(());
    }
    let natural = tx
        .person(registrant)?
        .is_some_and(|p| p.data.kind == crate::template::PersonType::Nat);
    match admin_c {
        _ if !natural => {}
        None => errors.push(
            Rejection::new(Code::MandatoryMissing)
                .key("admin-c")
                .detail("a private-person holder is the admin-c"),
        ),
        Some(a) if a != registrant => errors.push(
            Rejection::new(Code::HandleNotUsable)
                .key("admin-c")
                .detail("must be the private-person holder"),
        ),
        Some(_) => {}
    }
    Ok(())
}

/// `create`.
pub(super) fn check_create(
    tx: &Tx<'_>,
    registrar_id: u32,
    d: &DomainCreate,
    rules: Rules<'_>,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    billing::check_credit(
        tx,
        registrar_id,
        Item::Create(d.period),
        rules.profile,
        errors,
    )?;
    check_holder_is_admin(
        tx,
        rules.profile,
        &d.registrant,
        d.admin_c.as_deref(),
        errors,
    )?;
    if tx.domain(&d.name)?.is_some() {
        errors.push(
            Rejection::new(Code::DomainExists)
                .key("domain")
                .detail(d.name.clone()),
        );
    }
    let mut handles: Vec<(&str, &str)> = vec![("registrant", d.registrant.as_str())];
    handles.extend(d.admin_c.iter().map(|h| ("admin-c", h.as_str())));
    handles.extend(d.tech_c.iter().map(|h| ("tech-c", h.as_str())));
    handles.extend(d.zone_c.iter().map(|h| ("zone-c", h.as_str())));
    check_handles(tx, registrar_id, &handles, errors)?;
    check_hosts(
        tx,
        registrar_id,
        &d.nameservers,
        Some(&d.name),
        rules.profile,
        errors,
    )
}

fn changes_contacts(u: &DomainUpdate) -> bool {
    u.registrant.is_some() || u.admin_c.is_some() || u.tech_c.is_some() || u.zone_c.is_some()
}

/// `update`.
pub(super) fn check_update(
    tx: &Tx<'_>,
    registrar_id: u32,
    u: &DomainUpdate,
    profile: &Profile,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let Some(d) = sponsored(tx, registrar_id, &u.name, errors)? else {
        return Ok(());
    };
    if u.registrant.is_some() || u.admin_c.is_some() {
        let registrant = u
            .registrant
            .clone()
            .or_else(|| d.role("registrant").into_iter().next());
        let admin = u
            .admin_c
            .clone()
            .or_else(|| d.role("admin-c").into_iter().next());
        if let Some(r) = registrant {
            check_holder_is_admin(tx, profile, &r, admin.as_deref(), errors)?;
        }
    }
    status_allows(
        &d,
        if changes_contacts(u) {
            Op::Update
        } else {
            Op::FlagsOnly
        },
        errors,
    );
    let mut handles: Vec<(&str, &str)> = Vec::new();
    handles.extend(u.registrant.iter().map(|h| ("registrant", h.as_str())));
    handles.extend(u.admin_c.iter().map(|h| ("admin-c", h.as_str())));
    handles.extend(u.tech_c.iter().flatten().map(|h| ("tech-c", h.as_str())));
    handles.extend(u.zone_c.iter().map(|h| ("zone-c", h.as_str())));
    check_handles(tx, registrar_id, &handles, errors)
}

/// `nscupdate`.
pub(super) fn check_nscupdate(
    tx: &Tx<'_>,
    registrar_id: u32,
    n: &Nscupdate,
    profile: &Profile,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let Some(d) = sponsored(tx, registrar_id, &n.name, errors)? else {
        return Ok(());
    };
    status_allows(&d, Op::Nameservers, errors);
    check_hosts(tx, registrar_id, &n.nameservers, None, profile, errors)
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("time {s}")))
}

/// A domain's expiry, for replies.
pub(super) fn expiry(d: &DomainRow) -> Result<Option<DateTime<Utc>>, StoreError> {
    parse_time(&d.expires).map(Some)
}

fn years(t: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    t.checked_add_months(Months::new(12 * n)).unwrap_or(t)
}

/// The expiry a renewal gives, if within `max_period` years from now (6109).
fn renewed(
    d: &DomainRow,
    r: &Renew,
    profile: &Profile,
    now: DateTime<Utc>,
) -> Result<Result<DateTime<Utc>, Rejection>, StoreError> {
    let new = years(parse_time(&d.expires)?, r.period);
    if new > years(now, profile.max_period) {
        let detail = format!("{} years from now at most", profile.max_period);
        return Ok(Err(Rejection::new(Code::PeriodExceeds)
            .key("period")
            .detail(detail)));
    }
    Ok(Ok(new))
}

/// `renew`.
pub(super) fn check_renew(
    tx: &Tx<'_>,
    registrar_id: u32,
    r: &Renew,
    rules: Rules<'_>,
    now: DateTime<Utc>,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let Some(d) = sponsored(tx, registrar_id, &r.name, errors)? else {
        return Ok(());
    };
    status_allows(&d, Op::Renew, errors);
    if let Err(e) = renewed(&d, r, rules.profile, now)? {
        errors.push(e);
    }
    billing::check_credit(
        tx,
        registrar_id,
        Item::Renew(r.period),
        rules.profile,
        errors,
    )
}

/// The object text of a domain for the history: the full view with its
/// state lines, without the authinfo (a secret).
pub(super) fn text(d: &DomainRow, profile: &Profile) -> String {
    render::object_text(
        &state_pairs(d, View::Full),
        ObjectClass::Domain,
        Transaction::Update,
        &profile.source,
    )
}

/// Records a change of the domain (`before` is its text before): touches it
/// and writes the history row with the text after.
pub(super) fn record(
    tx: &mut Tx<'_>,
    act: Act<'_>,
    name: &str,
    action: &str,
    before: &str,
    profile: &Profile,
) -> Result<(), StoreError> {
    let after = text_now(tx, name, profile)?;
    tx.touch_domain(name, &rfc3339(act.now))?;
    super::history(tx, act, act.registrar_id, name, action, [before, &after])
}

/// The domain's text as stored now (empty if it is gone).
fn text_now(tx: &Tx<'_>, name: &str, profile: &Profile) -> Result<String, StoreError> {
    Ok(tx
        .domain(name)?
        .map(|d| text(&d, profile))
        .unwrap_or_default())
}

/// Carries out a checked domain template (a dry run only computes the reply).
pub(super) fn apply(
    tx: &mut Tx<'_>,
    spec: &Spec,
    rules: Rules<'_>,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    match spec {
        Spec::DomainCreate(d) => create(tx, d, rules.profile, act),
        Spec::DomainUpdate(u) => update(tx, u, rules.profile, act),
        Spec::Nscupdate(n) => {
            if !act.dry_run {
                let before = tx
                    .domain(&n.name)?
                    .map(|d| text(&d, rules.profile))
                    .unwrap_or_default();
                tx.replace_nameservers(&n.name, &n.nameservers, &rfc3339(act.now))?;
                record(tx, act, &n.name, "nscupdate", &before, rules.profile)?;
            }
            Ok(Decision::success(&n.name))
        }
        Spec::Renew(r) => renew(tx, r, rules.profile, act),
        Spec::Delete(d) => super::deletion::delete(tx, d, rules, act),
        Spec::Undelete(name) => super::deletion::undelete(tx, name, rules, act),
        Spec::Withdraw(w) => super::deletion::withdraw(tx, w, rules.profile, act),
        Spec::Transfer(t) => super::transfer::transfer(tx, t, rules, act),
        Spec::TransferDecision(name, approve) => {
            super::transfer::decide(tx, name, *approve, rules, act)
        }
        _ => Ok(Decision::success(spec.object())),
    }
}

fn create(
    tx: &mut Tx<'_>,
    d: &DomainCreate,
    profile: &Profile,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    let expires = years(act.now, d.period);
    let mut decision = Decision {
        expires: Some(expires),
        ..Decision::success(&d.name)
    };
    if !act.dry_run {
        tx.insert_domain(
            d,
            act.registrar_id,
            &rfc3339(act.now),
            &rfc3339(expires),
            act.secret,
        )?;
        // Inserted with `updated` = now: nothing to touch.
        let after = text_now(tx, &d.name, profile)?;
        super::history(tx, act, act.registrar_id, &d.name, "create", ["", &after])?;
        decision
            .infos
            .extend(select_for_qc(tx, &d.name, profile, act)?);
        let item = Item::Create(d.period);
        decision.infos.extend(billing::charge(
            tx,
            act,
            act.registrar_id,
            &d.name,
            item,
            profile,
        )?);
    }
    Ok(decision)
}

/// lifecycle.md 5: every `qc_every`-th successful create is selected (1003).
fn select_for_qc(
    tx: &mut Tx<'_>,
    name: &str,
    profile: &Profile,
    act: Act<'_>,
) -> Result<Option<Rejection>, StoreError> {
    let n = tx.next_sequence("creates")?;
    if profile.qc_every == 0 || n % i64::from(profile.qc_every) != 0 {
        return Ok(None);
    }
    tx.insert_qc(name, act.registrar_id, act.server_trid, &rfc3339(act.now))?;
    Ok(Some(Rejection::new(Code::QualityControl)))
}

fn renew(
    tx: &mut Tx<'_>,
    r: &Renew,
    profile: &Profile,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    let Some(d) = tx.domain(&r.name)? else {
        return Ok(Decision::success(&r.name));
    };
    let expires = match renewed(&d, r, profile, act.now)? {
        Ok(t) => t,
        Err(_) => parse_time(&d.expires)?,
    };
    if !act.dry_run {
        let before = text(&d, profile);
        tx.set_expires(&r.name, &rfc3339(expires))?;
        record(tx, act, &r.name, "renew", &before, profile)?;
    }
    let mut decision = Decision {
        expires: Some(expires),
        ..Decision::success(&r.name)
    };
    let item = Item::Renew(r.period);
    decision.infos.extend(billing::charge(
        tx,
        act,
        act.registrar_id,
        &r.name,
        item,
        profile,
    )?);
    Ok(decision)
}

/// An update; a holder change waits for the objection period.
fn update(
    tx: &mut Tx<'_>,
    u: &DomainUpdate,
    profile: &Profile,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    let Some(d) = tx.domain(&u.name)? else {
        return Ok(Decision::success(&u.name));
    };
    let holder_change = u
        .registrant
        .as_ref()
        .is_some_and(|r| d.role("registrant").first() != Some(r));
    if holder_change {
        if !act.dry_run {
            let payload =
                serde_json::to_string(u).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let deadline = rfc3339(act.now + Duration::days(profile.objection_period_days));
            tx.insert_pending(&PendingRequest {
                kind: "update",
                object: &u.name,
                registrar_id: act.registrar_id,
                other_registrar: None,
                server_trid: act.server_trid,
                client_trid: act.client_trid,
                requested: &rfc3339(act.now),
                deadline: &deadline,
                execute_at: None,
                mode: Some("objection"),
                payload: &payload,
            })?;
        }
        return Ok(Decision::pending(&u.name, Code::PendingObjection));
    }
    if !act.dry_run {
        write_update(tx, &d, u, profile, act)?;
    }
    Ok(Decision::success(&u.name))
}

/// Writes an update (a held holder change too) with its history row.
pub(super) fn write_update(
    tx: &mut Tx<'_>,
    d: &DomainRow,
    u: &DomainUpdate,
    profile: &Profile,
    act: Act<'_>,
) -> Result<(), StoreError> {
    let before = text(d, profile);
    let new_holder = u
        .registrant
        .clone()
        .filter(|r| d.role("registrant").first() != Some(r));
    for (role, value) in [
        ("registrant", &new_holder),
        ("admin-c", &u.admin_c),
        ("zone-c", &u.zone_c),
    ] {
        if let Some(h) = value {
            tx.replace_contacts(&u.name, role, std::slice::from_ref(h))?;
        }
    }
    if let Some(tech) = &u.tech_c {
        tx.replace_contacts(&u.name, "tech-c", tech)?;
    }
    tx.set_client_flags(&u.name, u.client_hold, u.client_lock)?;
    record(tx, act, &u.name, "update", &before, profile)
}

/// A domain as `update` pairs with its state as `#` comment lines after
/// `command:` (status, expiry, sponsor, and who pays once that is the
/// holder); the public view leaves out the registrar's own flags.
fn state_pairs(d: &DomainRow, view: View) -> Vec<(String, String)> {
    let mut pairs = render::domain_pairs(d, "update");
    let note = |k: &str, v: String| ("#".to_string(), format!("{k}: {v}"));
    let status: Vec<&str> = d
        .status
        .iter()
        .map(String::as_str)
        .filter(|w| view == View::Full || !w.starts_with("client"))
        .collect();
    let status = if status.is_empty() {
        "active".to_string()
    } else {
        status.join(" ")
    };
    let mut notes = vec![
        note("status", status),
        note("expires", d.expires.clone()),
        note("sponsor", d.registrar_id.to_string()),
    ];
    if d.billing == "holder" {
        notes.push(note(
            "billing",
            format!(
                "holder, zone-delete {}",
                if d.zone_delete { "Y" } else { "N" }
            ),
        ));
    }
    pairs.splice(2..2, notes);
    if view == View::Public {
        pairs.retain(|(k, _)| k != "client-hold" && k != "client-lock");
    }
    pairs
}

/// The `info` appendix of a domain: the sponsor's view (with the authinfo)
/// or the public view, as a ready-to-edit update template.
pub(super) fn info_text(d: &DomainRow, registrar_id: u32, profile: &Profile) -> String {
    let view = if d.registrar_id == registrar_id {
        View::Full
    } else {
        View::Public
    };
    let mut pairs = state_pairs(d, view);
    if let (View::Full, Some(a)) = (view, &d.authinfo) {
        pairs.insert(5, ("#".to_string(), format!("authinfo: {a}")));
    }
    let object = render::object_text(
        &pairs,
        ObjectClass::Domain,
        Transaction::Update,
        &profile.source,
    );
    render::template(Transaction::Update, registrar_id, &object)
}
