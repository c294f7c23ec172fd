//! Transfers (lifecycle.md sections 1 and 3): `regtransfer` by the gaining
//! registrar, `transferack` / `transfernack` by the losing one.
//!
//! Modes by profile: `holder-confirmation` and `losing-registrar` open a
//! pending transfer with its deadline (1001 / 1004) for the lifecycle engine;
//! `authinfo` executes at once when the domain's authinfo matches (6111). On
//! execution the domain gets the gaining registrar as sponsor and a new
//! authinfo, its contacts are copied to new handles of the gaining registrar,
//! and the transfer is charged. Nameserver hosts are registry-wide objects
//! named under their domain, so they move with it without a write.

use super::billing::{self, Item};
use super::{Act, Decision, Op, Rules, status_allows};
use crate::config::TransferMode;
use crate::rejection::{Code, Rejection};
use crate::reply::rfc3339;
use crate::store::{Closing, PendingRequest, StoreError, Tx};
use crate::template::Transfer;
use chrono::Duration;

/// `regtransfer`.
pub(super) fn check_transfer(
    tx: &Tx<'_>,
    registrar_id: u32,
    t: &Transfer,
    rules: Rules<'_>,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let Some(d) = tx.domain(&t.name)? else {
        errors.push(
            Rejection::new(Code::DomainNotFound)
                .key("domain")
                .detail(t.name.clone()),
        );
        return Ok(());
    };
    if d.registrar_id == registrar_id {
        errors.push(
            Rejection::new(Code::AlreadySponsor)
                .key("domain")
                .detail(t.name.clone()),
        );
        return Ok(());
    }
    status_allows(&d, Op::Transfer, errors);
    if rules.profile.transfer_mode == TransferMode::Authinfo {
        match &t.authinfo {
            None => errors.push(
                Rejection::new(Code::MandatoryMissing)
                    .key("authinfo")
                    .detail("required by this registry"),
            ),
            Some(a) if d.authinfo.as_deref() != Some(a.as_str()) => {
                errors.push(Rejection::new(Code::WrongAuthinfo).key("authinfo"))
            }
            Some(_) => {}
        }
    }
    billing::check_credit(tx, registrar_id, Item::Transfer, rules.profile, errors)
}

/// Executes at once (authinfo) or opens the pending transfer.
pub(super) fn transfer(
    tx: &mut Tx<'_>,
    t: &Transfer,
    rules: Rules<'_>,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    let Some(d) = tx.domain(&t.name)? else {
        return Ok(Decision::success(&t.name));
    };
    let profile = rules.profile;
    let (mode, code, deadline) = match profile.transfer_mode {
        TransferMode::Authinfo => return execute(tx, &t.name, act.registrar_id, rules, act, true),
        TransferMode::HolderConfirmation => (
            "holder-confirmation",
            Code::PendingHolder,
            act.now + Duration::hours(profile.confirmation_hours),
        ),
        TransferMode::LosingRegistrar => (
            "losing-registrar",
            Code::PendingLosing,
            act.now + Duration::days(profile.transfer_auto_approve_days),
        ),
    };
    if !act.dry_run {
        let payload = serde_json::to_string(&t.registrarinfo)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.insert_pending(&PendingRequest {
            kind: "transfer",
            object: &t.name,
            registrar_id: act.registrar_id,
            other_registrar: Some(d.registrar_id),
            server_trid: act.server_trid,
            client_trid: act.client_trid,
            requested: &rfc3339(act.now),
            deadline: &rfc3339(deadline),
            execute_at: None,
            mode: Some(mode),
            payload: &payload,
        })?;
    }
    // Charged now, with the request's server-trid; refunded if it never executes.
    let mut decision = Decision::pending(&t.name, code);
    let charged = billing::charge(tx, act, act.registrar_id, &t.name, Item::Transfer, profile)?;
    decision.infos.extend(charged);
    Ok(decision)
}

/// `transferack` / `transfernack`: the sponsor decides an open transfer in
/// `losing-registrar` mode; the gaining registrar may withdraw its request
/// with `transfernack` in any mode (6103, 6104; 6105 when nothing waits).
pub(super) fn check_decision(
    tx: &Tx<'_>,
    registrar_id: u32,
    name: &str,
    approve: bool,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let open = tx.pending_on(name)?.filter(|p| p.kind == "transfer");
    let why = match (tx.domain(name)?, open) {
        (None, _) => Rejection::new(Code::DomainNotFound)
            .key("domain")
            .detail(name.to_string()),
        (Some(_), Some(p)) if !approve && p.registrar_id == registrar_id => return Ok(()),
        (Some(d), _) if d.registrar_id != registrar_id => Rejection::new(Code::NotSponsor)
            .key("domain")
            .detail(name.to_string()),
        (Some(_), Some(p)) if p.mode.as_deref() == Some("losing-registrar") => return Ok(()),
        (Some(_), _) => Rejection::new(Code::StatusProhibits)
            .key("domain")
            .detail("no transfer awaits your decision"),
    };
    errors.push(why);
    Ok(())
}

/// Carries out the decision: executes, rejects, or withdraws (the gaining
/// registrar's own `transfernack`); a transfer that does not execute is refunded.
pub(super) fn decide(
    tx: &mut Tx<'_>,
    name: &str,
    approve: bool,
    rules: Rules<'_>,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    let Some(p) = tx.pending_on(name)? else {
        return Ok(Decision::success(name));
    };
    if act.dry_run {
        return Ok(Decision::success(name));
    }
    let state = match (approve, p.registrar_id == act.registrar_id) {
        (true, _) => "executed",
        (false, true) => "withdrawn",
        (false, false) => "rejected",
    };
    tx.close_request(
        p.id,
        &Closing {
            state,
            outcome: state,
            at: &rfc3339(act.now),
            by: act.server_trid,
            note: None,
        },
    )?;
    if approve {
        execute(tx, name, p.registrar_id, rules, act, false)?;
    } else {
        billing::refund(tx, act, &p.server_trid, name)?;
    }
    Ok(Decision::success(name))
}

/// Moves the domain to `gaining`: contacts copied to its handles, new
/// authinfo, history row, charge. Returns the reply's decision.
pub(super) fn execute(
    tx: &mut Tx<'_>,
    name: &str,
    gaining: u32,
    rules: Rules<'_>,
    act: Act<'_>,
    charge: bool,
) -> Result<Decision, StoreError> {
    let Some(d) = tx.domain(name)? else {
        return Ok(Decision::success(name));
    };
    let mut decision = Decision {
        expires: super::domain::expiry(&d)?,
        ..Decision::success(name)
    };
    if act.dry_run {
        return Ok(decision);
    }
    let at = rfc3339(act.now);
    let before = super::domain::text(&d, rules.profile);
    copy_contacts(tx, &d, gaining, rules, act, &at)?;
    tx.set_sponsor(name, gaining, act.secret)?;
    super::domain::record(tx, act, name, "transfer", &before, rules.profile)?;
    if !charge {
        return Ok(decision);
    }
    decision.infos.extend(billing::charge(
        tx,
        act,
        gaining,
        name,
        Item::Transfer,
        rules.profile,
    )?);
    Ok(decision)
}

/// Copies every contact of the domain to a new handle of `gaining` and puts
/// the copies in place of the originals.
fn copy_contacts(
    tx: &mut Tx<'_>,
    d: &crate::store::DomainRow,
    gaining: u32,
    rules: Rules<'_>,
    act: Act<'_>,
    at: &str,
) -> Result<(), StoreError> {
    let mut copies: Vec<(String, String)> = Vec::new();
    for (_, handle) in &d.contacts {
        if !copies.iter().any(|(old, _)| old == handle) {
            let new = super::person::copy_for(tx, handle, gaining, rules.profile, act, at)?;
            copies.push((handle.clone(), new));
        }
    }
    for role in ["registrant", "admin-c", "tech-c", "zone-c"] {
        let mapped: Vec<String> = d
            .role(role)
            .iter()
            .map(|h| {
                copies
                    .iter()
                    .find(|(old, _)| old == h)
                    .map_or_else(|| h.clone(), |(_, n)| n.clone())
            })
            .collect();
        if !mapped.is_empty() {
            tx.replace_contacts(&d.name, role, &mapped)?;
        }
    }
    Ok(())
}
