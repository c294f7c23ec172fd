//! The DNS zone: an RFC 1035 master file of the delegations.
//!
//! Input: the zone's name, the profile's zones and `[zone]` settings, and
//! the domains under the zone as the store keeps them ([`ZoneDomain`]).
//! Output: a [`Zone`] (SOA, apex NS, sub-zone and domain delegations, glue),
//! its master-file text ([`Zone::render`]) and a serial ([`serial`]).
//! Invariants: a domain belongs to the most specific of the profile's zones
//! it is under; it is delegated only with nameservers and without a hold,
//! `zone-delete` or deletion; glue (A/AAAA) is written only for hosts inside
//! the exported zone and at or below a domain it delegates (GRRP 3.1.2 [4]);
//! records are deduplicated and sorted, so the same data gives the same
//! bytes; every name is absolute and escaped.

mod file;
mod name;
mod render;

pub use file::Staged;
pub use name::{Name, NameError};
pub use render::{Serial, serial};

use crate::config::ZoneSettings;
use crate::store::ZoneDomain;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// A fault of the zone export (never a registrar's mistake).
#[derive(Debug, thiserror::Error)]
pub enum ZoneError {
    /// The profile's `[zone]` settings cannot make a valid zone.
    #[error("profile [zone] settings: {0}")]
    Settings(String),
    /// A stored name or address is not usable (a bug or tampering).
    #[error("stored {what} {value:?} is not usable: {why}")]
    Stored {
        /// `domain`, `host` or `address`.
        what: &'static str,
        /// The value.
        value: String,
        /// Why.
        why: String,
    },
    /// No serial greater than the last one fits in 32 bits.
    #[error("the zone's serial {0} cannot be increased")]
    SerialExhausted(u32),
    /// Writing the zone file failed (the I/O error is the source).
    #[error("cannot write {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The SOA timers and TTL (seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// TTL of every record.
    pub ttl: u32,
    /// SOA refresh.
    pub refresh: u32,
    /// SOA retry.
    pub retry: u32,
    /// SOA expire.
    pub expire: u32,
    /// SOA minimum (negative caching).
    pub minimum: u32,
}

/// The registry's own part of each zone: SOA names, timers, apex nameservers
/// and the addresses of those under the profile's zones. Checked once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Apex {
    zones: Vec<Name>,
    primary: Name,
    hostmaster: Name,
    nameservers: BTreeSet<Name>,
    addresses: BTreeMap<Name, BTreeSet<IpAddr>>,
    timers: Timers,
}

fn setting(what: &str, value: &str, e: NameError) -> ZoneError {
    ZoneError::Settings(format!("{what} {value:?}: {e}"))
}

/// The addresses of the apex nameservers: exactly those under the zones
/// have some (GRRP 3.1.2 [3], [4]); each belongs to a nameserver.
fn apex_addresses(
    settings: &ZoneSettings,
    nameservers: &BTreeSet<Name>,
    zones: &[Name],
) -> Result<BTreeMap<Name, BTreeSet<IpAddr>>, ZoneError> {
    let mut addresses = BTreeMap::new();
    for (host, addrs) in &settings.addresses {
        let name = Name::parse(host).map_err(|e| setting("addresses for", host, e))?;
        if !nameservers.contains(&name) {
            return Err(ZoneError::Settings(format!(
                "addresses for {host:?}, which is not one of the nameservers"
            )));
        }
        if !addrs.is_empty() {
            addresses.insert(name, addrs.iter().copied().collect::<BTreeSet<_>>());
        }
    }
    for ns in nameservers {
        let inside = zones.iter().any(|z| ns.is_below(z));
        let why = match (inside, addresses.contains_key(ns)) {
            (true, false) => "is under the profile's zones and needs addresses",
            (false, true) => "is outside the profile's zones: no addresses (GRRP 3.1.2 [4])",
            _ => continue,
        };
        return Err(ZoneError::Settings(format!("nameserver {ns} {why}")));
    }
    Ok(addresses)
}

impl Apex {
    /// Checks the settings against the profile's zones: names valid, at
    /// least one nameserver, addresses exactly for the nameservers under
    /// the zones (GRRP 3.1.2 [3], [4]), times within RFC 2181's 2^31 - 1.
    pub fn new(settings: &ZoneSettings, zones: &[String]) -> Result<Apex, ZoneError> {
        let zones = zones
            .iter()
            .map(|z| Name::parse(z).map_err(|e| setting("zone", z, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let primary =
            Name::parse(&settings.primary).map_err(|e| setting("primary", &settings.primary, e))?;
        let hostmaster = Name::mailbox(&settings.hostmaster)
            .map_err(|e| setting("hostmaster", &settings.hostmaster, e))?;
        let mut nameservers = BTreeSet::new();
        for ns in &settings.nameservers {
            nameservers.insert(Name::parse(ns).map_err(|e| setting("nameserver", ns, e))?);
        }
        if nameservers.is_empty() {
            return Err(ZoneError::Settings("nameservers must not be empty".into()));
        }
        let addresses = apex_addresses(settings, &nameservers, &zones)?;
        let timers = Timers {
            ttl: settings.ttl,
            refresh: settings.refresh,
            retry: settings.retry,
            expire: settings.expire,
            minimum: settings.minimum,
        };
        let t = timers;
        if [t.ttl, t.refresh, t.retry, t.expire, t.minimum]
            .iter()
            .any(|t| *t > i32::MAX as u32)
        {
            return Err(ZoneError::Settings(
                "times must be at most 2147483647 seconds".into(),
            ));
        }
        Ok(Apex {
            zones,
            primary,
            hostmaster,
            nameservers,
            addresses,
            timers,
        })
    }
}

/// Record data of the records after the SOA.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Data {
    /// A delegation (or the apex's own nameserver).
    Ns(Name),
    /// An IPv4 address.
    A(std::net::Ipv4Addr),
    /// An IPv6 address.
    Aaaa(std::net::Ipv6Addr),
}

/// One record; ordered by owner (canonical order), then type (NS, A,
/// AAAA), then data: the file's order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    /// Owner name.
    pub owner: Name,
    /// Type and data.
    pub data: Data,
}

impl Record {
    fn address(owner: &Name, ip: IpAddr) -> Record {
        let data = match ip {
            IpAddr::V4(a) => Data::A(a),
            IpAddr::V6(a) => Data::Aaaa(a),
        };
        Record {
            owner: owner.clone(),
            data,
        }
    }
}

/// What the export left out, for the operator's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Domains delegated.
    pub delegated: usize,
    /// Domains of this zone on hold (client or server).
    pub held: usize,
    /// Domains of this zone deleted (redemption, pendingDelete) or taken
    /// out by `billwithdraw` with `zone-delete`.
    pub withdrawn: usize,
    /// Domains of this zone without nameservers.
    pub without_nameservers: usize,
    /// Glue records written for the domains' hosts.
    pub glue: usize,
}

/// One zone, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    origin: Name,
    primary: Name,
    hostmaster: Name,
    timers: Timers,
    records: BTreeSet<Record>,
    /// What went in and what stayed out.
    pub counts: Counts,
}

/// Why a domain of the zone is not delegated, if it is not.
pub fn left_out(d: &ZoneDomain) -> Option<&'static str> {
    if d.server_hold || d.client_hold {
        Some("held")
    } else if d.deleted || d.zone_delete {
        Some("withdrawn")
    } else if d.nameservers.is_empty() {
        Some("without nameservers")
    } else {
        None
    }
}

fn stored(what: &'static str, value: &str, why: impl ToString) -> ZoneError {
    ZoneError::Stored {
        what,
        value: value.to_string(),
        why: why.to_string(),
    }
}

fn stored_name(what: &'static str, value: &str) -> Result<Name, ZoneError> {
    Name::parse(value).map_err(|e| stored(what, value, e))
}

/// The apex's NS records, the delegations of the profile's zones directly
/// below `origin`, and the addresses of the apex nameservers inside it.
fn apex_records(origin: &Name, apex: &Apex) -> BTreeSet<Record> {
    let mut records = BTreeSet::new();
    let children = apex
        .zones
        .iter()
        .filter(|z| z.owner_zone(&apex.zones) == Some(origin));
    for owner in std::iter::once(origin).chain(children) {
        for ns in &apex.nameservers {
            records.insert(Record {
                owner: owner.clone(),
                data: Data::Ns(ns.clone()),
            });
        }
    }
    for (host, addrs) in &apex.addresses {
        if host.is_below(origin) {
            records.extend(addrs.iter().map(|ip| Record::address(host, *ip)));
        }
    }
    records
}

/// The zone `zone` (one of the apex's zones) from the domains under it.
pub fn build(zone: &str, apex: &Apex, domains: &[ZoneDomain]) -> Result<Zone, ZoneError> {
    let origin = stored_name("zone", zone)?;
    let mut records = apex_records(&origin, apex);
    let mut counts = Counts::default();
    let mut cuts = BTreeSet::new();
    let mut hosts: BTreeMap<Name, &[String]> = BTreeMap::new();
    for d in domains {
        let name = stored_name("domain", &d.name)?;
        if name.owner_zone(&apex.zones) != Some(&origin) {
            continue;
        }
        match left_out(d) {
            Some("held") => counts.held += 1,
            Some("withdrawn") => counts.withdrawn += 1,
            Some(_) => counts.without_nameservers += 1,
            None => {
                counts.delegated += 1;
                for h in &d.nameservers {
                    let host = stored_name("host", &h.name)?;
                    records.insert(Record {
                        owner: name.clone(),
                        data: Data::Ns(host.clone()),
                    });
                    hosts.insert(host, &h.addresses);
                }
                cuts.insert(name);
            }
        }
    }
    // Glue: hosts in this zone (not in a sub-zone, not elsewhere) at or
    // below a domain delegated here.
    for (host, addrs) in hosts {
        if host.owner_zone(&apex.zones) != Some(&origin) || !host.is_at_or_below_one_of(&cuts) {
            continue;
        }
        for a in addrs {
            let ip: IpAddr = a.parse().map_err(|e| stored("address", a, e))?;
            counts.glue += usize::from(records.insert(Record::address(&host, ip)));
        }
    }
    Ok(Zone {
        origin,
        primary: apex.primary.clone(),
        hostmaster: apex.hostmaster.clone(),
        timers: apex.timers,
        records,
        counts,
    })
}

#[cfg(test)]
mod tests;
