//! Registry objects: persons (contacts), domains, nameserver hosts.

use super::{Store, StoreResult, Tx};
use crate::template::{DomainCreate, PersonCreate};
use rusqlite::{OptionalExtension, params};

/// A stored person, for queries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    /// Handle.
    pub handle: String,
    /// Creating registrar.
    pub registrar_id: u32,
    /// Every stored field as (name, value), in template order.
    pub fields: Vec<(String, String)>,
}

/// A stored domain, for queries.
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
    /// Contacts as (role, handle).
    pub contacts: Vec<(String, String)>,
    /// Nameservers as (host, addresses).
    pub nameservers: Vec<(String, Vec<String>)>,
    /// Status words.
    pub status: Vec<String>,
}

impl Tx<'_> {
    /// Next value of a named sequence.
    pub fn next_sequence(&mut self, name: &str) -> StoreResult<i64> {
        Ok(self.tx.query_row(
            "UPDATE sequences SET value = value + 1 WHERE name = ?1 RETURNING value",
            [name],
            |r| r.get(0),
        )?)
    }

    /// Whether a domain is registered.
    pub fn domain_exists(&self, name: &str) -> StoreResult<bool> {
        Ok(self
            .tx
            .query_row("SELECT 1 FROM domains WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// A person's creating registrar, if the handle exists.
    pub fn person_owner(&self, handle: &str) -> StoreResult<Option<u32>> {
        Ok(self
            .tx
            .query_row(
                "SELECT registrar_id FROM persons WHERE handle = ?1",
                [handle],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Stores a new person under `handle`.
    pub fn insert_person(
        &mut self,
        handle: &str,
        registrar_id: u32,
        p: &PersonCreate,
        now: &str,
    ) -> StoreResult<()> {
        self.tx.execute(
            "INSERT INTO persons (handle, registrar_id, type, personname, organization, street, postal_code,
                city, country, phone, fax, email, hide_phone, hide_fax, hide_email, remarks, created, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?17)",
            params![
                handle,
                registrar_id,
                p.kind.as_str(),
                p.personname,
                p.organization,
                p.street.join("\n"),
                p.postal_code,
                p.city,
                p.country,
                p.phone,
                p.fax,
                p.email,
                p.hide_phone,
                p.hide_fax,
                p.hide_email,
                p.remarks.join("\n"),
                now
            ],
        )?;
        Ok(())
    }

    /// The stored addresses of a host, or None if the host does not exist.
    pub fn host_addresses(&self, host: &str) -> StoreResult<Option<Vec<String>>> {
        let exists = self
            .tx
            .query_row("SELECT 1 FROM hosts WHERE name = ?1", [host], |_| Ok(()))
            .optional()?;
        if exists.is_none() {
            return Ok(None);
        }
        let mut stmt = self
            .tx
            .prepare_cached("SELECT address FROM host_addresses WHERE host = ?1 ORDER BY pos")?;
        let rows = stmt.query_map([host], |r| r.get(0))?;
        Ok(Some(rows.collect::<Result<Vec<_>, _>>()?))
    }

    /// Registrars other than `registrar_id` whose domains use the host.
    pub fn host_used_by_others(&self, host: &str, registrar_id: u32) -> StoreResult<bool> {
        Ok(self
            .tx
            .query_row(
                "SELECT 1 FROM domain_hosts h JOIN domains d ON d.name = h.domain
                 WHERE h.host = ?1 AND d.registrar_id <> ?2 LIMIT 1",
                params![host, registrar_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Stores a new domain with its contacts and nameservers (hosts are shared).
    pub fn insert_domain(
        &mut self,
        d: &DomainCreate,
        registrar_id: u32,
        now: &str,
        expires: &str,
    ) -> StoreResult<()> {
        self.tx.execute(
            "INSERT INTO domains (name, registrar_id, created, expires, updated) VALUES (?1, ?2, ?3, ?4, ?3)",
            params![d.name, registrar_id, now, expires],
        )?;
        let mut contacts: Vec<(&str, &str)> = vec![("registrant", d.registrant.as_str())];
        contacts.extend(d.admin_c.iter().map(|h| ("admin-c", h.as_str())));
        contacts.extend(d.tech_c.iter().map(|h| ("tech-c", h.as_str())));
        contacts.extend(d.zone_c.iter().map(|h| ("zone-c", h.as_str())));
        for (pos, (role, handle)) in contacts.iter().enumerate() {
            self.tx.execute(
                "INSERT INTO domain_contacts (domain, role, pos, handle) VALUES (?1, ?2, ?3, ?4)",
                params![d.name, role, pos, handle],
            )?;
        }
        for (pos, ns) in d.nameservers.iter().enumerate() {
            self.tx.execute(
                "INSERT OR IGNORE INTO hosts (name, created) VALUES (?1, ?2)",
                params![ns.host, now],
            )?;
            if !ns.addresses.is_empty() {
                self.tx
                    .execute("DELETE FROM host_addresses WHERE host = ?1", [&ns.host])?;
                for (i, addr) in ns.addresses.iter().enumerate() {
                    self.tx.execute(
                        "INSERT INTO host_addresses (host, pos, address) VALUES (?1, ?2, ?3)",
                        params![ns.host, i, addr],
                    )?;
                }
            }
            self.tx.execute(
                "INSERT INTO domain_hosts (domain, pos, host) VALUES (?1, ?2, ?3)",
                params![d.name, pos, ns.host],
            )?;
        }
        Ok(())
    }
}

impl Store {
    /// A domain with its contacts, hosts and status.
    pub fn domain(&self, name: &str) -> StoreResult<Option<DomainRow>> {
        let row = self
            .conn
            .query_row(
                "SELECT name, registrar_id, created, expires, client_hold, client_lock, server_hold, server_lock
                 FROM domains WHERE name = ?1",
                [name],
                |r| {
                    let flags: [bool; 4] = [r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?];
                    Ok((r.get::<_, String>(0)?, r.get::<_, u32>(1)?, r.get(2)?, r.get(3)?, flags))
                },
            )
            .optional()?;
        let Some((name, registrar_id, created, expires, flags)) = row else {
            return Ok(None);
        };
        let mut stmt = self
            .conn
            .prepare("SELECT role, handle FROM domain_contacts WHERE domain = ?1 ORDER BY pos")?;
        let contacts = stmt
            .query_map([&name], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut stmt = self.conn.prepare(
            "SELECT h.host, COALESCE(GROUP_CONCAT(a.address, ' '), '') FROM domain_hosts h
             LEFT JOIN host_addresses a ON a.host = h.host WHERE h.domain = ?1 GROUP BY h.pos ORDER BY h.pos",
        )?;
        let nameservers = stmt
            .query_map([&name], |r| {
                let addrs: String = r.get(1)?;
                Ok((
                    r.get(0)?,
                    addrs.split_whitespace().map(str::to_string).collect(),
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let words = ["clientHold", "clientLock", "serverHold", "serverLock"];
        let mut status: Vec<String> = words
            .iter()
            .zip(flags)
            .filter(|(_, on)| *on)
            .map(|(w, _)| w.to_string())
            .collect();
        if status.is_empty() {
            status.push("active".into());
        }
        Ok(Some(DomainRow {
            name,
            registrar_id,
            created,
            expires,
            contacts,
            nameservers,
            status,
        }))
    }

    /// A person with every field.
    pub fn person(&self, handle: &str) -> StoreResult<Option<PersonRow>> {
        let row = self
            .conn
            .query_row(
                "SELECT handle, registrar_id, type, COALESCE(personname, ''), COALESCE(organization, ''), street,
                    postal_code, city, country, phone, COALESCE(fax, ''), email, hide_phone, hide_fax, hide_email,
                    remarks, created, updated FROM persons WHERE handle = ?1",
                [handle],
                |r| {
                    let mut fields = Vec::new();
                    let names = [
                        "type", "personname", "organization", "street address", "postal code", "city", "country",
                        "phone", "fax-no", "e-mail",
                    ];
                    for (i, n) in names.iter().enumerate() {
                        fields.push((n.to_string(), r.get::<_, String>(i + 2)?));
                    }
                    for (i, n) in ["whoishidephone", "whoishidefax", "whoishide"].iter().enumerate() {
                        let v: bool = r.get(i + 12)?;
                        fields.push((n.to_string(), if v { "Y" } else { "N" }.to_string()));
                    }
                    for (i, n) in ["remarks", "created", "updated"].iter().enumerate() {
                        fields.push((n.to_string(), r.get::<_, String>(i + 15)?));
                    }
                    Ok(PersonRow { handle: r.get(0)?, registrar_id: r.get(1)?, fields })
                },
            )
            .optional()?;
        Ok(row)
    }
}
