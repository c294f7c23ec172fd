//! Registry objects created: persons (contacts), domains, nameserver hosts.
//! Reads are in `reads`, changes to existing objects in `changes`.

use super::{StoreResult, Tx};
use crate::template::{DomainCreate, PersonCreate};
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, params, params_from_iter};

impl Tx<'_> {
    /// Next value of a named sequence.
    pub fn next_sequence(&mut self, name: &str) -> StoreResult<i64> {
        Ok(self
            .tx
            .prepare_cached(
                "UPDATE sequences SET value = value + 1 WHERE name = ?1 RETURNING value",
            )?
            .query_row([name], |r| r.get(0))?)
    }

    /// Whether a domain is registered.
    pub fn domain_exists(&self, name: &str) -> StoreResult<bool> {
        Ok(self
            .tx
            .prepare_cached("SELECT 1 FROM domains WHERE name = ?1")?
            .query_row([name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// A person's creating registrar, if the handle exists.
    pub fn person_owner(&self, handle: &str) -> StoreResult<Option<u32>> {
        Ok(self
            .tx
            .prepare_cached("SELECT registrar_id FROM persons WHERE handle = ?1")?
            .query_row([handle], |r| r.get(0))
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
        let cols = PERSON_COLUMNS.join(", ");
        let marks: Vec<String> = (3..PERSON_COLUMNS.len() + 3)
            .map(|i| format!("?{i}"))
            .collect();
        let sql = format!(
            "INSERT INTO persons (handle, registrar_id, {cols}, created, updated)
             VALUES (?1, ?2, {}, ?{n}, ?{n})",
            marks.join(", "),
            n = PERSON_COLUMNS.len() + 3
        );
        let mut values: Vec<Value> =
            vec![handle.to_string().into(), i64::from(registrar_id).into()];
        values.extend(person_values(p));
        values.push(now.to_string().into());
        self.tx
            .prepare_cached(&sql)?
            .execute(params_from_iter(values))?;
        Ok(())
    }

    /// The stored addresses of a host, or None if the host does not exist.
    pub fn host_addresses(&self, host: &str) -> StoreResult<Option<Vec<String>>> {
        let exists = self
            .tx
            .prepare_cached("SELECT 1 FROM hosts WHERE name = ?1")?
            .query_row([host], |_| Ok(()))
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
            .prepare_cached(
                "SELECT 1 FROM domain_hosts h JOIN domains d ON d.name = h.domain
                 WHERE h.host = ?1 AND d.registrar_id <> ?2 LIMIT 1",
            )?
            .query_row(params![host, registrar_id], |_| Ok(()))
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
        authinfo: &str,
    ) -> StoreResult<()> {
        self.tx.prepare_cached(
            "INSERT INTO domains (name, registrar_id, created, expires, updated, authinfo) VALUES (?1, ?2, ?3, ?4, ?3, ?5)")?.execute(params![d.name, registrar_id, now, expires, authinfo],
        )?;
        let mut contacts: Vec<(&str, &str)> = vec![("registrant", d.registrant.as_str())];
        contacts.extend(d.admin_c.iter().map(|h| ("admin-c", h.as_str())));
        contacts.extend(d.tech_c.iter().map(|h| ("tech-c", h.as_str())));
        contacts.extend(d.zone_c.iter().map(|h| ("zone-c", h.as_str())));
        for (pos, (role, handle)) in contacts.iter().enumerate() {
            self.tx.prepare_cached(
                "INSERT INTO domain_contacts (domain, role, pos, handle) VALUES (?1, ?2, ?3, ?4)")?.execute(params![d.name, role, pos, handle],
            )?;
        }
        put_nameservers(&self.tx, &d.name, &d.nameservers, now)?;
        Ok(())
    }
}

/// The data columns of `persons`, in the order of [`person_values`].
pub(super) const PERSON_COLUMNS: [&str; 14] = [
    "type",
    "personname",
    "organization",
    "street",
    "postal_code",
    "city",
    "country",
    "phone",
    "fax",
    "email",
    "hide_phone",
    "hide_fax",
    "hide_email",
    "remarks",
];

/// A person's data, in the order of [`PERSON_COLUMNS`] (multi-line fields
/// joined with newlines).
pub(super) fn person_values(p: &PersonCreate) -> Vec<Value> {
    vec![
        p.kind.as_str().to_string().into(),
        p.personname.clone().into(),
        p.organization.clone().into(),
        p.street.join("\n").into(),
        p.postal_code.clone().into(),
        p.city.clone().into(),
        p.country.clone().into(),
        p.phone.clone().into(),
        p.fax.clone().into(),
        p.email.clone().into(),
        p.hide_phone.into(),
        p.hide_fax.into(),
        p.hide_email.into(),
        p.remarks.join("\n").into(),
    ]
}

/// Writes a domain's nameserver set: hosts are shared and created on first
/// use; given addresses replace a host's addresses.
pub(super) fn put_nameservers(
    tx: &rusqlite::Transaction<'_>,
    domain: &str,
    list: &[crate::template::Nameserver],
    now: &str,
) -> StoreResult<()> {
    tx.prepare_cached("DELETE FROM domain_hosts WHERE domain = ?1")?
        .execute([domain])?;
    for (pos, ns) in list.iter().enumerate() {
        tx.prepare_cached("INSERT OR IGNORE INTO hosts (name, created) VALUES (?1, ?2)")?
            .execute(params![ns.host, now])?;
        if !ns.addresses.is_empty() {
            tx.prepare_cached("DELETE FROM host_addresses WHERE host = ?1")?
                .execute([&ns.host])?;
            for (i, addr) in ns.addresses.iter().enumerate() {
                tx.prepare_cached(
                    "INSERT INTO host_addresses (host, pos, address) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![ns.host, i, addr])?;
            }
        }
        tx.prepare_cached("INSERT INTO domain_hosts (domain, pos, host) VALUES (?1, ?2, ?3)")?
            .execute(params![domain, pos, ns.host])?;
    }
    Ok(())
}
