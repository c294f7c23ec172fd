//! Typed rules for domain objects: `create` of a domain, `check` of a domain
//! name or a handle, and the nameserver set (template.md sections 5 and 6).
//!
//! Input: the attributes kept by the generic rules and the profile. Output: a
//! [`DomainCreate`] or [`CheckSpec`], or `None` with every error recorded in
//! the [`Findings`]. Invariant: errors are recorded in attribute order, and a
//! spec is only returned when all its values were valid.

use super::{CheckSpec, DomainCreate, Findings, Nameserver, one, values};
use crate::config::{IpRule, Profile};
use crate::rejection::{Code, Rejection};
use crate::template::ObjectClass;
use crate::template::object::RawAttr;
use crate::template::values::{self as v, host_in_zone};

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

/// `create` of a domain.
pub(super) fn domain_create(
    attrs: &[&RawAttr],
    p: &Profile,
    f: &mut Findings,
) -> Option<DomainCreate> {
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
    let period = period(attrs, p, f);
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
