//! Reads of registry objects, shared by [`Store`] (queries) and [`Tx`]
//! (policy decisions inside the mail's transaction).

use super::{Store, StoreError, StoreResult, Tx};
use crate::template::{Nameserver, PersonCreate, PersonType};
use rusqlite::{Connection, OptionalExtension};

/// The registry's and the registrar's status flags of a domain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DomainFlags {
    /// Not in the zone (registrar).
    pub client_hold: bool,
    /// No update, transfer or delete (registrar).
    pub client_lock: bool,
    /// Not in the zone (registry).
    pub server_hold: bool,
    /// No update, transfer or delete (registry).
    pub server_lock: bool,
}

/// A stored domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRow {
    /// Name.
    pub name: String,
    /// Sponsoring registrar.
    pub registrar_id: u32,
    /// Created, RFC 3339.
    pub created: String,
    /// Expires, RFC 3339.
    pub expires: String,
    /// Contacts as (role, handle), in order.
    pub contacts: Vec<(String, String)>,
    /// Nameservers in order.
    pub nameservers: Vec<Nameserver>,
    /// Status flags.
    pub flags: DomainFlags,
    /// The kind of the open pending request (`transfer`, `update`, `delete`).
    pub pending: Option<String>,
    /// Status words (GRRP 3.1.10), `active` when none applies.
    pub status: Vec<String>,
    /// The secret that authorises a transfer (profile mode `authinfo`).
    pub authinfo: Option<String>,
    /// `registrar` or `holder` (after `billwithdraw`).
    pub billing: String,
    /// Taken out of the zone by `billwithdraw` with `zone-delete: Y`.
    pub zone_delete: bool,
    /// Deleted, restorable by `undelete` until then (RFC 3339).
    pub redemption_until: Option<String>,
    /// Past redemption: the name is released then (RFC 3339).
    pub release_at: Option<String>,
    /// Selected for quality control and not yet accepted.
    pub qc: bool,
}

impl DomainRow {
    /// The handles in one role.
    pub fn role(&self, role: &str) -> Vec<String> {
        self.contacts
            .iter()
            .filter(|(r, _)| r == role)
            .map(|(_, h)| h.clone())
            .collect()
    }
}

/// A stored person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    /// Handle.
    pub handle: String,
    /// Creating registrar.
    pub registrar_id: u32,
    /// Every field.
    pub data: PersonCreate,
    /// Created, RFC 3339.
    pub created: String,
    /// Last change, RFC 3339.
    pub updated: String,
}

/// Where a domain is in its life, besides its flags and open request.
#[derive(Debug, Clone, Copy)]
struct Phase {
    redemption: bool,
    released_soon: bool,
    qc: bool,
}

fn status_words(flags: DomainFlags, pending: Option<&str>, phase: Phase) -> Vec<String> {
    let mut words: Vec<String> = [
        (flags.client_hold, "clientHold"),
        (flags.client_lock, "clientLock"),
        (flags.server_hold, "serverHold"),
        (flags.server_lock, "serverLock"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, w)| w.to_string())
    .collect();
    match pending {
        Some("transfer") => words.push("pendingTransfer".into()),
        Some("delete") => words.push("pendingDelete".into()),
        Some(_) => words.push("pendingUpdate".into()),
        None => {}
    }
    if phase.redemption {
        words.push("redemptionPeriod".into());
    }
    if phase.released_soon {
        words.push("pendingDelete".into());
    }
    if phase.qc {
        words.push("qc".into());
    }
    words.dedup();
    if words.is_empty() {
        words.push("active".into());
    }
    words
}

/// The domain row's own columns.
struct DomainHead {
    name: String,
    registrar_id: u32,
    created: String,
    expires: String,
    flags: DomainFlags,
    authinfo: Option<String>,
    billing: String,
    zone_delete: bool,
    redemption_until: Option<String>,
    release_at: Option<String>,
}

fn domain_head(conn: &Connection, name: &str) -> StoreResult<Option<DomainHead>> {
    Ok(conn
        .prepare_cached(
            "SELECT name, registrar_id, created, expires, client_hold, client_lock, server_hold, server_lock,
                authinfo, billing, zone_delete, redemption_until, release_at
             FROM domains WHERE name = ?1")?.query_row([name],
            |r| {
                let flags = DomainFlags {
                    client_hold: r.get(4)?,
                    client_lock: r.get(5)?,
                    server_hold: r.get(6)?,
                    server_lock: r.get(7)?,
                };
                Ok(DomainHead {
                    name: r.get(0)?,
                    registrar_id: r.get(1)?,
                    created: r.get(2)?,
                    expires: r.get(3)?,
                    flags,
                    authinfo: r.get(8)?,
                    billing: r.get(9)?,
                    zone_delete: r.get(10)?,
                    redemption_until: r.get(11)?,
                    release_at: r.get(12)?,
                })
            },
        )
        .optional()?)
}

fn domain_nameservers(conn: &Connection, name: &str) -> StoreResult<Vec<Nameserver>> {
    let mut stmt = conn.prepare_cached(
        "SELECT h.host, COALESCE(GROUP_CONCAT(a.address, ' '), '') FROM domain_hosts h
         LEFT JOIN host_addresses a ON a.host = h.host WHERE h.domain = ?1 GROUP BY h.pos ORDER BY h.pos",
    )?;
    let rows = stmt.query_map([name], |r| {
        let addrs: String = r.get(1)?;
        Ok(Nameserver {
            host: r.get(0)?,
            addresses: addrs.split_whitespace().map(str::to_string).collect(),
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// A domain with its contacts, hosts, flags and pending request.
pub(super) fn load_domain(conn: &Connection, name: &str) -> StoreResult<Option<DomainRow>> {
    let Some(h) = domain_head(conn, name)? else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT role, handle FROM domain_contacts WHERE domain = ?1 ORDER BY pos",
    )?;
    let contacts = stmt
        .query_map([&h.name], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let pending: Option<String> = conn
        .prepare_cached("SELECT kind FROM pending WHERE object = ?1 AND state = 'open'")?
        .query_row([&h.name], |r| r.get(0))
        .optional()?;
    let nameservers = domain_nameservers(conn, &h.name)?;
    let qc = conn
        .prepare_cached(
            "SELECT 1 FROM qc WHERE domain = ?1 AND state IN ('selected', 'correction')",
        )?
        .query_row([&h.name], |_| Ok(()))
        .optional()?
        .is_some();
    let phase = Phase {
        redemption: h.redemption_until.is_some(),
        released_soon: h.release_at.is_some(),
        qc,
    };
    let status = status_words(h.flags, pending.as_deref(), phase);
    Ok(Some(DomainRow {
        name: h.name,
        registrar_id: h.registrar_id,
        created: h.created,
        expires: h.expires,
        contacts,
        nameservers,
        flags: h.flags,
        pending,
        status,
        authinfo: h.authinfo,
        billing: h.billing,
        zone_delete: h.zone_delete,
        redemption_until: h.redemption_until,
        release_at: h.release_at,
        qc,
    }))
}

fn person_type(s: &str) -> StoreResult<PersonType> {
    match s {
        "NAT" => Ok(PersonType::Nat),
        "JUR" => Ok(PersonType::Jur),
        "ROLE" => Ok(PersonType::Role),
        other => Err(StoreError::Corrupt(format!("person type {other}"))),
    }
}

fn lines(s: String) -> Vec<String> {
    s.split('\n')
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// A person with every field.
pub(super) fn load_person(conn: &Connection, handle: &str) -> StoreResult<Option<PersonRow>> {
    type Raw = (PersonRow, String);
    let row: Option<Raw> = conn
        .prepare_cached(
            "SELECT handle, registrar_id, type, personname, organization, street, postal_code, city, country,
                phone, fax, email, hide_phone, hide_fax, hide_email, remarks, created, updated
             FROM persons WHERE handle = ?1")?.query_row([handle],
            |r| {
                let data = PersonCreate {
                    kind: PersonType::Nat,
                    personname: r.get(3)?,
                    organization: r.get(4)?,
                    street: lines(r.get(5)?),
                    postal_code: r.get(6)?,
                    city: r.get(7)?,
                    country: r.get(8)?,
                    phone: r.get(9)?,
                    fax: r.get(10)?,
                    email: r.get(11)?,
                    hide_phone: r.get(12)?,
                    hide_fax: r.get(13)?,
                    hide_email: r.get(14)?,
                    remarks: lines(r.get(15)?),
                };
                let row = PersonRow { handle: r.get(0)?, registrar_id: r.get(1)?, data, created: r.get(16)?, updated: r.get(17)? };
                Ok((row, r.get(2)?))
            },
        )
        .optional()?;
    row.map(|(mut p, kind)| {
        p.data.kind = person_type(&kind)?;
        Ok(p)
    })
    .transpose()
}

impl Store {
    /// A domain.
    pub fn domain(&self, name: &str) -> StoreResult<Option<DomainRow>> {
        load_domain(&self.conn, name)
    }

    /// A person.
    pub fn person(&self, handle: &str) -> StoreResult<Option<PersonRow>> {
        load_person(&self.conn, handle)
    }
}

impl Tx<'_> {
    /// A domain, inside the transaction.
    pub fn domain(&self, name: &str) -> StoreResult<Option<DomainRow>> {
        load_domain(&self.tx, name)
    }

    /// A person, inside the transaction.
    pub fn person(&self, handle: &str) -> StoreResult<Option<PersonRow>> {
        load_person(&self.tx, handle)
    }

    /// The domains using a handle in any role, with the roles.
    pub fn handle_uses(&self, handle: &str) -> StoreResult<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT domain, role FROM domain_contacts WHERE handle = ?1 ORDER BY domain, role",
        )?;
        let rows = stmt.query_map([handle], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}
