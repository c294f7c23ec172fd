//! Typed rules for domain objects: every domain transaction, `check`/`info`
//! of a domain name or a handle, and the nameserver set (template.md section 5).
//!
//! Input: the attributes kept by the generic rules and the profile. Output: a
//! typed [`Spec`], or `None` with every error recorded in the [`Findings`]. Invariant: errors are recorded in attribute order, and a
//! spec is only returned when all its values were valid.

use super::{
    CheckSpec, Delete, DomainCreate, DomainUpdate, Findings, Nameserver, Nscupdate, Renew, Spec,
    Transfer, Withdraw, one, values,
};
use crate::config::{IpRule, Profile};
use crate::rejection::{Code, Rejection};
use crate::template::object::RawAttr;
use crate::template::values::{self as v, host_in_zone};
use crate::template::{ObjectClass, Transaction};

/// `check` of a domain name (domain class) or a handle (person class).
pub(super) fn check(
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

/// The typed spec of a domain transaction other than check/info.
pub(super) fn typed(
    t: Transaction,
    attrs: &[&RawAttr],
    p: &Profile,
    f: &mut Findings,
) -> Option<Spec> {
    use Transaction as T;
    match t {
        T::Create => domain_create(attrs, p, f).map(Spec::DomainCreate),
        T::Update => domain_update(attrs, p, f).map(Spec::DomainUpdate),
        T::Nscupdate => {
            let (name, ns) = (domain_name(attrs, p, f), nameservers(attrs, p, f));
            Some(Spec::Nscupdate(Nscupdate {
                name: name?,
                nameservers: ns?,
            }))
        }
        T::Delete => {
            let (name, at) = (domain_name(attrs, p, f), scheduledate(attrs, f));
            Some(Spec::Delete(Delete {
                name: name?,
                at_expiration: at?,
            }))
        }
        T::Undelete => domain_name(attrs, p, f).map(Spec::Undelete),
        T::Renew => {
            let (name, period) = (domain_name(attrs, p, f), period(attrs, p, f));
            Some(Spec::Renew(Renew {
                name: name?,
                period: period?,
            }))
        }
        T::Regtransfer => transfer(attrs, p, f).map(Spec::Transfer),
        T::Transferack | T::Transfernack => {
            domain_name(attrs, p, f).map(|n| Spec::TransferDecision(n, t == T::Transferack))
        }
        T::Billwithdraw => {
            let (name, zd) = (domain_name(attrs, p, f), yes_no(attrs, "zone-delete", f));
            Some(Spec::Withdraw(Withdraw {
                name: name?,
                zone_delete: zd?.unwrap_or(false),
            }))
        }
        _ => None,
    }
}

/// The `domain:` value, validated and normalised.
fn domain_name(attrs: &[&RawAttr], p: &Profile, f: &mut Findings) -> Option<String> {
    one(attrs, "domain").and_then(|a| {
        v::check_domain_name(&a.value, p)
            .map(|n| f.norm(a, n))
            .map_err(|r| f.at(a, r))
            .ok()
    })
}

/// An optional `Y`/`N` key: `Some(None)` if absent, `None` if invalid.
fn yes_no(attrs: &[&RawAttr], key: &str, f: &mut Findings) -> Option<Option<bool>> {
    match one(attrs, key) {
        None => Some(None),
        Some(a) => v::check_flag(&a.value)
            .map(Some)
            .map_err(|r| f.at(a, r))
            .ok(),
    }
}

/// `scheduledate:` `now` or `expiration` (the default); true for expiration.
fn scheduledate(attrs: &[&RawAttr], f: &mut Findings) -> Option<bool> {
    match one(attrs, "scheduledate").map(|a| (a, a.value.to_ascii_lowercase())) {
        None => Some(true),
        Some((_, v)) if v == "expiration" => Some(true),
        Some((_, v)) if v == "now" => Some(false),
        Some((a, _)) => {
            f.at(
                a,
                Rejection::new(Code::InvalidFlag).detail("use now or expiration"),
            );
            None
        }
    }
}

/// `update`: each key given replaces that set.
fn domain_update(attrs: &[&RawAttr], p: &Profile, f: &mut Findings) -> Option<DomainUpdate> {
    let name = domain_name(attrs, p, f);
    let registrant = one(attrs, "registrant").map(|a| handle_of(a, p, f));
    let admin_c = one(attrs, "admin-c").map(|a| handle_of(a, p, f));
    let zone_c = one(attrs, "zone-c").map(|a| handle_of(a, p, f));
    let tech_c = tech_contacts(attrs, p, f);
    let (hold, lock) = (
        yes_no(attrs, "client-hold", f),
        yes_no(attrs, "client-lock", f),
    );
    Some(DomainUpdate {
        name: name?,
        registrant: registrant.map(|h| h.ok_or(())).transpose().ok()?,
        admin_c: admin_c.map(|h| h.ok_or(())).transpose().ok()?,
        tech_c: tech_c?,
        zone_c: zone_c.map(|h| h.ok_or(())).transpose().ok()?,
        client_hold: hold?,
        client_lock: lock?,
    })
}

/// `tech-c:` lines, at most 2: `Some(None)` if absent, `None` if invalid.
fn tech_contacts(attrs: &[&RawAttr], p: &Profile, f: &mut Findings) -> Option<Option<Vec<String>>> {
    let tech: Vec<&RawAttr> = values(attrs, "tech-c");
    if tech.is_empty() {
        return Some(None);
    }
    if let Some(third) = tech.get(2) {
        f.at(
            third,
            Rejection::new(Code::OutOfRange).detail("at most 2 tech-c"),
        );
    }
    let handles: Vec<Option<String>> = tech.iter().map(|a| handle_of(a, p, f)).collect();
    let handles: Option<Vec<String>> = handles.into_iter().collect();
    handles.filter(|h| h.len() <= 2).map(Some)
}

/// `regtransfer`.
fn transfer(attrs: &[&RawAttr], p: &Profile, f: &mut Findings) -> Option<Transfer> {
    let name = domain_name(attrs, p, f);
    let info =
        one(attrs, "registrarinfo").map(|a| v::check_text(&a.value, 255).map_err(|r| f.at(a, r)));
    let authinfo =
        one(attrs, "authinfo").map(|a| v::check_text(&a.value, 64).map_err(|r| f.at(a, r)));
    Some(Transfer {
        name: name?,
        registrarinfo: info.transpose().ok()?,
        authinfo: authinfo.transpose().ok()?,
    })
}

/// `create` of a domain.
pub(super) fn domain_create(
    attrs: &[&RawAttr],
    p: &Profile,
    f: &mut Findings,
) -> Option<DomainCreate> {
    let name = domain_name(attrs, p, f);
    let registrant = one(attrs, "registrant").and_then(|a| handle_of(a, p, f));
    let admin_c = one(attrs, "admin-c").map(|a| handle_of(a, p, f));
    let zone_c = one(attrs, "zone-c").map(|a| handle_of(a, p, f));
    let tech_c = tech_contacts(attrs, p, f);
    let nameservers = nameservers(attrs, p, f);
    let period = period(attrs, p, f);
    Some(DomainCreate {
        name: name?,
        registrant: registrant?,
        admin_c: admin_c.flatten(),
        tech_c: tech_c??,
        zone_c: zone_c.flatten(),
        nameservers: nameservers?,
        period: period?,
    })
}

/// `period:` in years (1 if absent); `None` if given and out of range.
fn period(attrs: &[&RawAttr], p: &Profile, f: &mut Findings) -> Option<u32> {
    match one(attrs, "period") {
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
    }
}

/// The nameservers read so far, each with its `nserver:` attribute.
type NsList<'a> = Vec<(&'a RawAttr, Nameserver)>;

/// `nserver` lines, each followed by its `remarks:` addresses.
fn nameservers(attrs: &[&RawAttr], p: &Profile, f: &mut Findings) -> Option<Vec<Nameserver>> {
    let before = f.errors.len();
    let mut list: NsList<'_> = Vec::new();
    for attr in attrs
        .iter()
        .copied()
        .filter(|a| a.key == "nserver" || a.key == "remarks")
    {
        if attr.key == "nserver" {
            add_host(&mut list, attr, f);
        } else {
            add_address(&mut list, attr, p, f);
        }
    }
    check_address_rule(&list, p, f);
    let count = values(attrs, "nserver").len();
    check_count(count, p, f);
    (f.errors.len() == before && count > 0).then(|| list.into_iter().map(|(_, ns)| ns).collect())
}

/// An `nserver:` line: a valid, not yet listed host name starts a nameserver.
fn add_host<'a>(list: &mut NsList<'a>, attr: &'a RawAttr, f: &mut Findings) {
    match v::check_host_name(&attr.value) {
        Ok(n) => {
            let host = f.norm(attr, n);
            if list.iter().any(|(_, ns)| ns.host == host) {
                f.at(
                    attr,
                    Rejection::new(Code::InvalidHost).detail(format!("{host:.40}: duplicate")),
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
}

/// A `remarks:` line: an address of the last nameserver.
fn add_address(list: &mut NsList<'_>, attr: &RawAttr, p: &Profile, f: &mut Findings) {
    let Some((_, ns)) = list.last_mut() else {
        f.at(
            attr,
            Rejection::new(Code::NameserverIp).detail("remarks: must follow an nserver: line"),
        );
        return;
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

/// Addresses are required inside the zones (or everywhere, per profile) and,
/// under the in-zone rule, refused outside them.
fn check_address_rule(list: &NsList<'_>, p: &Profile, f: &mut Findings) {
    for (attr, ns) in list {
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
}

/// The number of `nserver:` lines, if any, must be within the profile's range.
fn check_count(count: usize, p: &Profile, f: &mut Findings) {
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
}
