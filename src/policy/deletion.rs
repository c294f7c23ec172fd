//! Deletion and billing withdrawal: `delete`, `undelete`, `billwithdraw`.
//!
//! A `delete` is a pending request for the lifecycle engine: the holder may
//! object during the objection period (1002); it is carried out at the end of
//! it (`scheduledate: now`) or at expiration, whichever is later. `undelete`
//! withdraws an open deletion, or restores a domain in its redemption period
//! (charged); otherwise 6108. A domain whose hosts serve other domains cannot
//! be deleted (6112).

use super::billing::{self, Item};
use super::domain;
use super::{Act, Decision, Op, Rules, sponsored, status_allows};
use crate::config::Profile;
use crate::rejection::{Code, Rejection};
use crate::reply::rfc3339;
use crate::store::{Closing, PendingRequest, StoreError, Tx};
use crate::template::{Delete, Withdraw};
use chrono::{DateTime, Duration, Utc};

/// `delete`.
pub(super) fn check_delete(
    tx: &Tx<'_>,
    registrar_id: u32,
    d: &Delete,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let Some(domain) = sponsored(tx, registrar_id, &d.name, errors)? else {
        return Ok(());
    };
    status_allows(&domain, Op::Delete, errors);
    for host in tx.hosts_serving_others(&d.name)? {
        errors.push(
            Rejection::new(Code::HostInUse)
                .key("domain")
                .detail(format!("{host} serves other domains")),
        );
    }
    Ok(())
}

fn parse(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| StoreError::Corrupt(format!("time {s}")))
}

/// Opens the pending deletion with its deadline and execution time.
pub(super) fn delete(
    tx: &mut Tx<'_>,
    d: &Delete,
    rules: Rules<'_>,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    let Some(domain) = tx.domain(&d.name)? else {
        return Ok(Decision::success(&d.name));
    };
    let created = parse(&domain.created)?;
    if act.now < created + Duration::days(rules.profile.add_grace_days) {
        // lifecycle.md 4: within the add grace period a delete removes the
        // domain at once and refunds the create.
        if !act.dry_run {
            super::held::delete_now(tx, &d.name, act.now, rules, act)?;
        }
        return Ok(Decision::success(&d.name));
    }
    let deadline = act.now + Duration::days(rules.profile.objection_period_days);
    let execute_at = if d.at_expiration {
        deadline.max(parse(&domain.expires)?)
    } else {
        deadline
    };
    if !act.dry_run {
        tx.insert_pending(&PendingRequest {
            kind: "delete",
            object: &d.name,
            registrar_id: act.registrar_id,
            other_registrar: None,
            server_trid: act.server_trid,
            client_trid: act.client_trid,
            requested: &rfc3339(act.now),
            deadline: &rfc3339(deadline),
            execute_at: Some(&rfc3339(execute_at)),
            mode: Some(if d.at_expiration { "expiration" } else { "now" }),
            payload: "",
        })?;
    }
    Ok(Decision::pending(&d.name, Code::PendingObjection))
}

/// `undelete`: an open deletion to withdraw, or a redemption to end (6108).
pub(super) fn check_undelete(
    tx: &Tx<'_>,
    registrar_id: u32,
    name: &str,
    rules: Rules<'_>,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let Some(domain) = sponsored(tx, registrar_id, name, errors)? else {
        return Ok(());
    };
    if domain.pending.as_deref() == Some("delete") {
        return Ok(());
    }
    if domain.redemption_until.is_some() {
        return billing::check_credit(tx, registrar_id, Item::Restore, rules.profile, errors);
    }
    errors.push(
        Rejection::new(Code::NotPendingDelete)
            .key("domain")
            .detail(name.to_string()),
    );
    Ok(())
}

/// Withdraws the deletion or restores the domain.
pub(super) fn undelete(
    tx: &mut Tx<'_>,
    name: &str,
    rules: Rules<'_>,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    let mut decision = Decision::success(name);
    if act.dry_run {
        return Ok(decision);
    }
    let at = rfc3339(act.now);
    if let Some(p) = tx.pending_on(name)?.filter(|p| p.kind == "delete") {
        tx.close_request(
            p.id,
            &Closing {
                state: "withdrawn",
                outcome: "withdrawn",
                at: &at,
                by: act.server_trid,
                note: None,
            },
        )?;
        return Ok(decision);
    }
    let before = tx
        .domain(name)?
        .map(|d| domain::text(&d, rules.profile))
        .unwrap_or_default();
    tx.clear_redemption(name)?;
    // A domain deleted at its expiry comes back renewed past today (the
    // restore fee covers it), or it would expire again at once.
    if let Some(d) = tx.domain(name)? {
        let mut expires = parse(&d.expires)?;
        while expires <= act.now {
            expires = expires
                .checked_add_months(chrono::Months::new(12))
                .unwrap_or(act.now + Duration::days(365));
        }
        tx.set_expires(name, &rfc3339(expires))?;
    }
    let charged = billing::charge(
        tx,
        act,
        act.registrar_id,
        name,
        Item::Restore,
        rules.profile,
    )?;
    decision.infos.extend(charged);
    domain::record(tx, act, name, "restore", &before, rules.profile)?;
    Ok(decision)
}

/// `billwithdraw`: sponsor only, not while a transfer is pending.
pub(super) fn check_withdraw(
    tx: &Tx<'_>,
    registrar_id: u32,
    w: &Withdraw,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let Some(domain) = sponsored(tx, registrar_id, &w.name, errors)? else {
        return Ok(());
    };
    if domain.pending.as_deref() == Some("transfer") {
        errors.push(Rejection::new(Code::TransferPending).key("domain"));
    }
    Ok(())
}

/// The holder is billed from now on; `zone-delete: Y` takes it out of the zone.
pub(super) fn withdraw(
    tx: &mut Tx<'_>,
    w: &Withdraw,
    profile: &Profile,
    act: Act<'_>,
) -> Result<Decision, StoreError> {
    if !act.dry_run {
        let before = tx
            .domain(&w.name)?
            .map(|d| domain::text(&d, profile))
            .unwrap_or_default();
        tx.set_billing(&w.name, true, w.zone_delete)?;
        domain::record(tx, act, &w.name, "billwithdraw", &before, profile)?;
    }
    Ok(Decision::success(&w.name))
}
