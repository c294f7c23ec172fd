//! Policy: the registry's rules about the current state (template.md 5-7,
//! reply.md 6xxx), and the application of an accepted template.
//!
//! Input: a typed [`Spec`], the acting registrar, and a store transaction.
//! Output: a [`Decision`] (outcome, infos, handle, expiry, availability) or
//! every 6xxx rejection. Invariants: [`check`] only reads, so `regmail check`
//! and dry runs can use it on untrusted text; [`apply`] writes, and takes a
//! [`VerifiedBody`], which only `auth` can make; it runs [`check`] first and
//! writes nothing if any rule fails.

use crate::auth::VerifiedBody;
use crate::config::{Config, Profile};
use crate::rejection::{Code, Rejection};
use crate::reply::{Outcome, rfc3339};
use crate::store::{RegistrarStatus, StoreError, Tx};
use crate::template::{DomainCreate, ObjectClass, PersonCreate, Spec};
use chrono::{DateTime, Months, Utc};

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
        }
    }
}

/// Checks every rule against the current state without writing.
pub fn check(
    tx: &Tx<'_>,
    registrar_id: u32,
    spec: &Spec,
    config: &Config,
) -> Result<Vec<Rejection>, StoreError> {
    let mut errors = Vec::new();
    match tx.registrar_status(registrar_id)? {
        Some(RegistrarStatus::Active) => {}
        Some(RegistrarStatus::Suspended) => errors.push(Rejection::new(Code::RegistrarSuspended)),
        None => errors.push(Rejection::new(Code::KeyNotRegistered).detail("unknown registrar")),
    }
    match spec {
        Spec::DomainCreate(d) => check_domain_create(tx, registrar_id, d, &mut errors)?,
        Spec::PersonCreate(p) => check_person_create(p, config, &mut errors),
        Spec::Check(_) => {}
        Spec::Unsupported { transaction, .. } => errors.push(
            Rejection::new(Code::UnknownTransaction)
                .key("command")
                .detail(format!(
                    "{} is not supported by this registry yet",
                    transaction.name()
                )),
        ),
    }
    Ok(errors)
}

fn check_domain_create(
    tx: &Tx<'_>,
    registrar_id: u32,
    d: &DomainCreate,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    if tx.domain_exists(&d.name)? {
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
    for (key, handle) in handles {
        match tx.person_owner(handle)? {
            Some(owner) if owner == registrar_id => {}
            Some(_) => errors.push(
                Rejection::new(Code::HandleNotUsable)
                    .key(key)
                    .detail(format!("{handle}: not yours")),
            ),
            None => errors.push(
                Rejection::new(Code::HandleNotUsable)
                    .key(key)
                    .detail(format!("{handle}: unknown")),
            ),
        }
    }
    for ns in &d.nameservers {
        let stored = tx.host_addresses(&ns.host)?;
        let changes = stored
            .as_ref()
            .is_some_and(|a| !ns.addresses.is_empty() && !same_set(a, &ns.addresses));
        if changes && tx.host_used_by_others(&ns.host, registrar_id)? {
            errors.push(
                Rejection::new(Code::HostInUse)
                    .key("nserver")
                    .detail(format!("{}: addresses differ from the host's", ns.host)),
            );
        }
    }
    Ok(())
}

/// Whether two address lists hold the same addresses, in any order.
fn same_set(a: &[String], b: &[String]) -> bool {
    let set = |v: &[String]| {
        v.iter()
            .cloned()
            .collect::<std::collections::BTreeSet<String>>()
    };
    set(a) == set(b)
}

fn check_person_create(p: &PersonCreate, config: &Config, errors: &mut Vec<Rejection>) {
    if config.is_own_address(&p.email) {
        errors.push(Rejection::new(Code::RegistryAddress).key("e-mail"));
    }
}

/// Answers a `check` (read-only).
pub fn answer(tx: &Tx<'_>, spec: &Spec) -> Result<Option<bool>, StoreError> {
    match spec {
        Spec::Check(c) if c.class == ObjectClass::Domain => Ok(Some(!tx.domain_exists(&c.name)?)),
        Spec::Check(c) => Ok(Some(tx.person_owner(&c.name)?.is_none())),
        _ => Ok(None),
    }
}

/// Checks, then (with no rejection) applies the template; dry runs stop before writing.
pub fn apply(
    tx: &mut Tx<'_>,
    body: &VerifiedBody,
    spec: &Spec,
    config: &Config,
    profile: &Profile,
    now: DateTime<Utc>,
    dry_run: bool,
) -> Result<Result<Decision, Vec<Rejection>>, StoreError> {
    let registrar_id = body.signer().registrar_id;
    let errors = check(tx, registrar_id, spec, config)?;
    if !errors.is_empty() {
        return Ok(Err(errors));
    }
    let stamp = rfc3339(now);
    let mut decision = match spec {
        Spec::DomainCreate(d) => {
            let expires = now
                .checked_add_months(Months::new(12 * d.period))
                .unwrap_or(now);
            if !dry_run {
                tx.insert_domain(d, registrar_id, &stamp, &rfc3339(expires))?;
            }
            Decision {
                expires: Some(expires),
                ..Decision::success(&d.name)
            }
        }
        // A dry run assigns no handle: the sequence must not move.
        Spec::PersonCreate(_) if dry_run => Decision::success("AUTO"),
        Spec::PersonCreate(p) => {
            let handle = new_handle(tx, p, profile)?;
            tx.insert_person(&handle, registrar_id, p, &stamp)?;
            Decision {
                handle: Some(handle.clone()),
                ..Decision::success(&handle)
            }
        }
        Spec::Check(c) => Decision {
            avail: answer(tx, spec)?,
            ..Decision::success(&c.name)
        },
        Spec::Unsupported { object, .. } => Decision::success(object),
    };
    if dry_run {
        decision.infos = vec![Rejection::new(Code::DryRun)];
    }
    Ok(Ok(decision))
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
