//! Policy: the registry's rules about the current state (template.md 5-7,
//! lifecycle.md 6, reply.md 6xxx), and the application of an accepted template.
//!
//! Input: a typed [`Spec`], the acting registrar ([`Act`]), and a store
//! transaction. Output: a [`Decision`] (outcome, infos, handle, expiry,
//! availability, an object to append) or every 6xxx rejection. Invariants:
//! [`check`] only reads, so `regmail check` and dry runs can use it on
//! untrusted text; [`apply`] writes, and takes a [`VerifiedBody`], which only
//! `auth` can make; it runs [`check`] first and writes nothing if a rule
//! fails; every change it writes has a history row with before and after.

mod billing;
mod deletion;
mod domain;
mod held;
mod person;
mod render;
mod transfer;

pub use billing::money;
pub use held::{
    Execution, Expiry, Moment, end, end_redemption, execute, expire, parse_time, release,
};
pub use render::{View, person_data};

use crate::auth::VerifiedBody;
use crate::config::{Config, Profile};
use crate::rejection::{Code, Rejection};
use crate::reply::Outcome;
use crate::store::{DomainRow, RegistrarStatus, StoreError, Tx};
use crate::template::{ObjectClass, Spec};
use chrono::{DateTime, Utc};

/// What an accepted template does, for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// success or pending.
    pub outcome: Outcome,
    /// Info codes (1xxx).
    pub infos: Vec<Rejection>,
    /// The object named in the reply.
    pub object: String,
    /// Assigned handle (perscreate).
    pub handle: Option<String>,
    /// New expiry.
    pub expires: Option<DateTime<Utc>>,
    /// `check` answer.
    pub avail: Option<bool>,
    /// The object in template syntax (`info`).
    pub appendix: Option<String>,
}

impl Decision {
    fn success(object: &str) -> Decision {
        Decision {
            outcome: Outcome::Success,
            infos: vec![Rejection::new(Code::Executed)],
            object: object.to_string(),
            handle: None,
            expires: None,
            avail: None,
            appendix: None,
        }
    }

    fn pending(object: &str, code: Code) -> Decision {
        Decision {
            outcome: Outcome::Pending,
            infos: vec![Rejection::new(code)],
            ..Decision::success(object)
        }
    }
}

/// Who acts, when, under which ids.
#[derive(Debug, Clone, Copy)]
pub struct Act<'a> {
    /// The acting registrar.
    pub registrar_id: u32,
    /// The injected instant.
    pub now: DateTime<Utc>,
    /// This mail's server-trid.
    pub server_trid: &'a str,
    /// The registrar's client-trid.
    pub client_trid: Option<&'a str>,
    /// Check and report only.
    pub dry_run: bool,
    /// A fresh secret drawn for this mail (new authinfo values).
    pub secret: &'a str,
}

/// The settings a rule may need.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    /// The whole configuration (the registry's own addresses).
    pub config: &'a Config,
    /// The active profile.
    pub profile: &'a Profile,
}

/// Checks every rule against the current state without writing.
pub fn check(
    tx: &Tx<'_>,
    registrar_id: u32,
    spec: &Spec,
    rules: Rules<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<Rejection>, StoreError> {
    let mut errors = Vec::new();
    match tx.registrar_status(registrar_id)? {
        Some(RegistrarStatus::Active) => {}
        Some(RegistrarStatus::Suspended) => errors.push(Rejection::new(Code::RegistrarSuspended)),
        None => errors.push(Rejection::new(Code::KeyNotRegistered).detail("unknown registrar")),
    }
    match spec {
        Spec::DomainCreate(d) => domain::check_create(tx, registrar_id, d, rules, &mut errors)?,
        Spec::DomainUpdate(u) => {
            domain::check_update(tx, registrar_id, u, rules.profile, &mut errors)?
        }
        Spec::Nscupdate(n) => {
            domain::check_nscupdate(tx, registrar_id, n, rules.profile, &mut errors)?
        }
        Spec::Renew(r) => domain::check_renew(tx, registrar_id, r, rules, now, &mut errors)?,
        Spec::PersonCreate(p) => person::check_create(p, rules.config, &mut errors),
        Spec::PersonUpdate(u) => {
            person::check_update(tx, registrar_id, u, rules.config, &mut errors)?
        }
        Spec::PersonDelete(h) => person::check_delete(tx, registrar_id, h, &mut errors)?,
        Spec::Info(c) => check_exists(tx, c.class, &c.name, &mut errors)?,
        Spec::Check(_) => {}
        Spec::Delete(d) => deletion::check_delete(tx, registrar_id, d, &mut errors)?,
        Spec::Undelete(name) => {
            deletion::check_undelete(tx, registrar_id, name, rules, &mut errors)?
        }
        Spec::Withdraw(w) => deletion::check_withdraw(tx, registrar_id, w, &mut errors)?,
        Spec::Transfer(t) => transfer::check_transfer(tx, registrar_id, t, rules, &mut errors)?,
        Spec::TransferDecision(name, approve) => {
            transfer::check_decision(tx, registrar_id, name, *approve, &mut errors)?
        }
    }
    Ok(errors)
}

fn check_exists(
    tx: &Tx<'_>,
    class: ObjectClass,
    name: &str,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    match class {
        ObjectClass::Domain if tx.domain(name)?.is_none() => errors.push(
            Rejection::new(Code::DomainNotFound)
                .key("domain")
                .detail(name.to_string()),
        ),
        ObjectClass::Person if tx.person(name)?.is_none() => errors.push(
            Rejection::new(Code::HandleNotFound)
                .key("nic-hdl")
                .detail(name.to_string()),
        ),
        _ => {}
    }
    Ok(())
}

/// The domain, if it exists and `registrar_id` sponsors it (6103, 6104).
fn sponsored(
    tx: &Tx<'_>,
    registrar_id: u32,
    name: &str,
    errors: &mut Vec<Rejection>,
) -> Result<Option<DomainRow>, StoreError> {
    match tx.domain(name)? {
        None => {
            errors.push(
                Rejection::new(Code::DomainNotFound)
                    .key("domain")
                    .detail(name.to_string()),
            );
            Ok(None)
        }
        Some(d) if d.registrar_id != registrar_id => {
            errors.push(
                Rejection::new(Code::NotSponsor)
                    .key("domain")
                    .detail(name.to_string()),
            );
            Ok(None)
        }
        Some(d) => Ok(Some(d)),
    }
}

/// What an operation is, for the status rules of lifecycle.md section 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// An update that only sets the client flags (allowed under client flags).
    FlagsOnly,
    /// Any other update.
    Update,
    /// New nameservers.
    Nameservers,
    /// Renewal.
    Renew,
    /// Deletion.
    Delete,
    /// Transfer to another registrar.
    Transfer,
}

/// lifecycle.md section 6: locks forbid update, transfer and delete; holds
/// forbid updates; the registrar's flags do not forbid clearing them; an open
/// transfer forbids everything (6106), any other open request and the
/// redemption period everything but renewal (6105).
fn status_allows(d: &DomainRow, op: Op, errors: &mut Vec<Rejection>) {
    use Op::*;
    let f = d.flags;
    let why = if d.redemption_until.is_some() {
        Some("redemptionPeriod".to_string())
    } else if d.release_at.is_some() {
        Some("pendingDelete".to_string())
    } else if op == Renew {
        // A renewal is allowed under every flag and pending request, so a
        // domain cannot expire while a transfer or an objection period runs.
        None
    } else if d.pending.as_deref() == Some("transfer") {
        return errors.push(Rejection::new(Code::TransferPending).key("domain"));
    } else if let Some(p) = d.pending.as_deref() {
        Some(format!("pending {p}"))
    } else if d.qc && op == Transfer {
        Some("in quality control".into())
    } else if f.server_lock {
        Some("serverLock".into())
    } else if f.server_hold && matches!(op, FlagsOnly | Update | Nameservers) {
        Some("serverHold".into())
    } else if f.client_lock && matches!(op, Update | Nameservers | Delete | Transfer) {
        Some("clientLock".into())
    } else if f.client_hold && matches!(op, Update | Nameservers) {
        Some("clientHold".into())
    } else {
        None
    };
    if let Some(why) = why {
        errors.push(
            Rejection::new(Code::StatusProhibits)
                .key("domain")
                .detail(why),
        );
    }
}

/// Records a change of `object` by the acting registrar, with the object's
/// text before and after (`""` for none).
fn history(
    tx: &mut Tx<'_>,
    act: Act<'_>,
    registrar_id: u32,
    object: &str,
    action: &str,
    texts: [&str; 2],
) -> Result<(), StoreError> {
    tx.insert_history(&crate::store::HistoryEntry {
        object,
        at: &crate::reply::rfc3339(act.now),
        server_trid: act.server_trid,
        client_trid: act.client_trid,
        registrar_id: Some(registrar_id),
        action,
        before: texts[0],
        after: texts[1],
    })
}

/// Answers a `check` (read-only).
pub fn answer(tx: &Tx<'_>, spec: &Spec) -> Result<Option<bool>, StoreError> {
    match spec {
        Spec::Check(c) if c.class == ObjectClass::Domain => Ok(Some(tx.domain(&c.name)?.is_none())),
        Spec::Check(c) => Ok(Some(tx.person(&c.name)?.is_none())),
        _ => Ok(None),
    }
}

/// Checks, then (with no rejection) applies the template; dry runs stop
/// before writing and report what would happen.
pub fn apply(
    tx: &mut Tx<'_>,
    body: &VerifiedBody,
    spec: &Spec,
    rules: Rules<'_>,
    act: Act<'_>,
) -> Result<Result<Decision, Vec<Rejection>>, StoreError> {
    let act = Act {
        registrar_id: body.signer().registrar_id,
        ..act
    };
    let errors = check(tx, act.registrar_id, spec, rules, act.now)?;
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let mut decision = match spec {
        Spec::Check(c) => Decision {
            avail: answer(tx, spec)?,
            ..Decision::success(&c.name)
        },
        Spec::Info(c) => Decision {
            appendix: info(tx, act.registrar_id, c.class, &c.name, rules)?,
            ..Decision::success(&c.name)
        },
        Spec::PersonCreate(_) | Spec::PersonUpdate(_) | Spec::PersonDelete(_) => {
            person::apply(tx, spec, rules, act)?
        }
        _ => domain::apply(tx, spec, rules, act)?,
    };
    if act.dry_run {
        decision.infos = vec![Rejection::new(Code::DryRun)];
    }
    Ok(Ok(decision))
}

/// The `info` appendix: the object as a ready-to-edit update template.
fn info(
    tx: &Tx<'_>,
    registrar_id: u32,
    class: ObjectClass,
    name: &str,
    rules: Rules<'_>,
) -> Result<Option<String>, StoreError> {
    Ok(match class {
        ObjectClass::Domain => tx
            .domain(name)?
            .map(|d| domain::info_text(&d, registrar_id, rules.profile)),
        ObjectClass::Person => tx
            .person(name)?
            .map(|p| person::info_text(&p, registrar_id, rules.profile)),
    })
}
