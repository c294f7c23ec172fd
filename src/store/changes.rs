//! Changes to existing objects (update, nameserver set, expiry, person data,
//! deletion), the history of every change, and pending requests.
//! Invariant: hosts that no domain uses any more are removed in the same
//! transaction that stopped using them.

use super::objects::{PERSON_COLUMNS, person_values, put_nameservers};
use super::{Store, StoreResult, Tx};
use crate::template::{Nameserver, PersonCreate};
use rusqlite::params;

/// One change of an object, with the object before and after (template text).
#[derive(Debug, Clone)]
pub struct HistoryEntry<'a> {
    /// Domain name or handle.
    pub object: &'a str,
    /// RFC 3339.
    pub at: &'a str,
    /// Ours.
    pub server_trid: &'a str,
    /// The registrar's.
    pub client_trid: Option<&'a str>,
    /// Who changed it (None: the registry).
    pub registrar_id: Option<u32>,
    /// What happened (`create`, `update`, ..., `set-status`).
    pub action: &'a str,
    /// The object before ("" when created).
    pub before: &'a str,
    /// The object after ("" when deleted).
    pub after: &'a str,
}

/// A request waiting for a person or a deadline (lifecycle.md).
#[derive(Debug, Clone)]
pub struct PendingRequest<'a> {
    /// `transfer`, `update`, `delete` or `person-update`.
    pub kind: &'a str,
    /// Domain name or handle.
    pub object: &'a str,
    /// The requesting registrar.
    pub registrar_id: u32,
    /// The other registrar concerned (losing registrar of a transfer).
    pub other_registrar: Option<u32>,
    /// The request's server-trid (follow-up mails carry it).
    pub server_trid: &'a str,
    /// The registrar's client-trid.
    pub client_trid: Option<&'a str>,
    /// RFC 3339.
    pub requested: &'a str,
    /// When the lifecycle engine decides (RFC 3339).
    pub deadline: &'a str,
    /// When to carry it out if not the deadline (e.g. at expiration).
    pub execute_at: Option<&'a str>,
    /// Transfer mode or scheduling detail.
    pub mode: Option<&'a str>,
    /// The change to carry out (JSON).
    pub payload: &'a str,
}

impl Tx<'_> {
    /// Replaces the handles of one contact role of a domain.
    pub fn replace_contacts(
        &mut self,
        domain: &str,
        role: &str,
        handles: &[String],
    ) -> StoreResult<()> {
        self.tx
            .prepare_cached("DELETE FROM domain_contacts WHERE domain = ?1 AND role = ?2")?
            .execute(params![domain, role])?;
        let base: i64 = self
            .tx
            .prepare_cached(
                "SELECT COALESCE(MAX(pos), -1) + 1 FROM domain_contacts WHERE domain = ?1",
            )?
            .query_row([domain], |r| r.get(0))?;
        for (i, h) in handles.iter().enumerate() {
            self.tx.prepare_cached(
                "INSERT INTO domain_contacts (domain, role, pos, handle) VALUES (?1, ?2, ?3, ?4)")?.execute(params![domain, role, base + i as i64, h],
            )?;
        }
        Ok(())
    }

    /// Sets the registrar's flags that are given.
    pub fn set_client_flags(
        &mut self,
        domain: &str,
        hold: Option<bool>,
        lock: Option<bool>,
    ) -> StoreResult<()> {
        if let Some(h) = hold {
            self.tx
                .prepare_cached("UPDATE domains SET client_hold = ?2 WHERE name = ?1")?
                .execute(params![domain, h])?;
        }
        if let Some(l) = lock {
            self.tx
                .prepare_cached("UPDATE domains SET client_lock = ?2 WHERE name = ?1")?
                .execute(params![domain, l])?;
        }
        Ok(())
    }

    /// Replaces a domain's nameserver set and removes unused hosts.
    pub fn replace_nameservers(
        &mut self,
        domain: &str,
        list: &[Nameserver],
        now: &str,
    ) -> StoreResult<()> {
        let before = self.domain_host_names(domain)?;
        put_nameservers(&self.tx, domain, list, now)?;
        self.remove_unused_hosts(&before)
    }

    /// The hosts a domain delegates to.
    pub(super) fn domain_host_names(&self, domain: &str) -> StoreResult<Vec<String>> {
        let mut stmt = self
            .tx
            .prepare_cached("SELECT host FROM domain_hosts WHERE domain = ?1")?;
        let rows = stmt.query_map([domain], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Removes those of `candidates` (hosts a changed domain used) that no
    /// domain uses any more: by index, never a walk over every host.
    pub(super) fn remove_unused_hosts(&mut self, candidates: &[String]) -> StoreResult<()> {
        let mut stmt = self.tx.prepare_cached(
            "DELETE FROM hosts WHERE name = ?1
             AND NOT EXISTS (SELECT 1 FROM domain_hosts WHERE host = ?1)",
        )?;
        for host in candidates {
            stmt.execute([host])?;
        }
        Ok(())
    }

    /// Sets a domain's expiry.
    pub fn set_expires(&mut self, domain: &str, expires: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE domains SET expires = ?2 WHERE name = ?1")?
            .execute(params![domain, expires])?;
        Ok(())
    }

    /// Records that a domain changed now.
    pub fn touch_domain(&mut self, domain: &str, now: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE domains SET updated = ?2 WHERE name = ?1")?
            .execute(params![domain, now])?;
        Ok(())
    }

    /// Replaces every field of a person.
    pub fn update_person(&mut self, handle: &str, p: &PersonCreate, now: &str) -> StoreResult<()> {
        let set: Vec<String> = PERSON_COLUMNS
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c} = ?{}", i + 2))
            .collect();
        let sql = format!(
            "UPDATE persons SET {}, updated = ?{} WHERE handle = ?1",
            set.join(", "),
            PERSON_COLUMNS.len() + 2
        );
        let mut values: Vec<rusqlite::types::Value> = vec![handle.to_string().into()];
        values.extend(person_values(p));
        values.push(now.to_string().into());
        self.tx
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(values))?;
        Ok(())
    }

    /// Deletes a person (the caller checked that no domain uses it).
    pub fn delete_person(&mut self, handle: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached("DELETE FROM persons WHERE handle = ?1")?
            .execute([handle])?;
        Ok(())
    }

    /// Records a change.
    pub fn insert_history(&mut self, h: &HistoryEntry<'_>) -> StoreResult<()> {
        self.tx.prepare_cached(
            "INSERT INTO history (object, at, server_trid, client_trid, registrar_id, action, before, after)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?.execute(params![h.object, h.at, h.server_trid, h.client_trid, h.registrar_id, h.action, h.before, h.after],
        )?;
        Ok(())
    }

    /// Opens a pending request; at most one per object is open.
    pub fn insert_pending(&mut self, p: &PendingRequest<'_>) -> StoreResult<i64> {
        self.tx.prepare_cached(
            "INSERT INTO pending (kind, object, registrar_id, other_registrar, server_trid, client_trid, requested,
                deadline, execute_at, mode, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")?.execute(params![
                p.kind,
                p.object,
                p.registrar_id,
                p.other_registrar,
                p.server_trid,
                p.client_trid,
                p.requested,
                p.deadline,
                p.execute_at,
                p.mode,
                p.payload
            ],
        )?;
        Ok(self.tx.last_insert_rowid())
    }

    /// The kind of the open pending request on an object, if any.
    pub fn open_pending(&self, object: &str) -> StoreResult<Option<String>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .tx
            .prepare_cached("SELECT kind FROM pending WHERE object = ?1 AND state = 'open'")?
            .query_row([object], |r| r.get(0))
            .optional()?)
    }
}

/// An open pending request, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenPending {
    /// Row id.
    pub id: i64,
    /// Its kind.
    pub kind: String,
    /// The requesting registrar.
    pub registrar_id: u32,
    /// The other registrar concerned.
    pub other_registrar: Option<u32>,
    /// Transfer mode or scheduling detail.
    pub mode: Option<String>,
    /// The request's server-trid.
    pub server_trid: String,
}

impl Tx<'_> {
    /// The open pending request on an object, if any.
    pub fn pending_on(&self, object: &str) -> StoreResult<Option<OpenPending>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .tx
            .prepare_cached(
                "SELECT id, kind, registrar_id, other_registrar, mode, server_trid FROM pending
                 WHERE object = ?1 AND state = 'open'",
            )?
            .query_row([object], |r| {
                Ok(OpenPending {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    registrar_id: r.get(2)?,
                    other_registrar: r.get(3)?,
                    mode: r.get(4)?,
                    server_trid: r.get(5)?,
                })
            })
            .optional()?)
    }

    /// The payloads of open requests of a kind, with their objects.
    pub fn open_payloads(&self, kind: &str) -> StoreResult<Vec<(String, String)>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT object, payload FROM pending WHERE kind = ?1 AND state = 'open' ORDER BY id",
        )?;
        let rows = stmt.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Hosts named under `domain` that other domains use as nameservers.
    /// The suffix match walks the host names (one row per host), not their
    /// uses (one row per domain and nameserver, many times more); each
    /// match is then looked up in `domain_hosts` by its index.
    pub fn hosts_serving_others(&self, domain: &str) -> StoreResult<Vec<String>> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT name FROM hosts WHERE name LIKE '%.' || ?1
             AND EXISTS (SELECT 1 FROM domain_hosts WHERE host = hosts.name AND domain <> ?1)
             ORDER BY name",
        )?;
        let rows = stmt.query_map([domain], |r| r.get(0))?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Gives a domain to another registrar with a new authinfo; the new
    /// sponsor bills (a `billwithdraw` of the old one ends).
    pub fn set_sponsor(
        &mut self,
        domain: &str,
        registrar_id: u32,
        authinfo: &str,
    ) -> StoreResult<()> {
        self.tx.prepare_cached(
            "UPDATE domains SET registrar_id = ?2, authinfo = ?3, billing = 'registrar', zone_delete = 0
             WHERE name = ?1")?.execute(params![domain, registrar_id, authinfo],
        )?;
        Ok(())
    }

    /// Who pays, and whether the domain is out of the zone (`billwithdraw`).
    pub fn set_billing(
        &mut self,
        domain: &str,
        holder: bool,
        zone_delete: bool,
    ) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE domains SET billing = ?2, zone_delete = ?3 WHERE name = ?1")?
            .execute(params![
                domain,
                if holder { "holder" } else { "registrar" },
                zone_delete
            ])?;
        Ok(())
    }

    /// Ends a redemption period (`undelete` restored the domain).
    pub fn clear_redemption(&mut self, domain: &str) -> StoreResult<()> {
        self.tx
            .prepare_cached("UPDATE domains SET redemption_until = NULL WHERE name = ?1")?
            .execute([domain])?;
        Ok(())
    }
}

/// A flag the registry sets on a domain (`regmail domain set-status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFlag {
    /// Not in the zone.
    Hold,
    /// No update, transfer or delete.
    Lock,
}

impl Tx<'_> {
    /// Sets a registry flag; false if the domain does not exist.
    pub fn set_server_flag(
        &mut self,
        domain: &str,
        flag: ServerFlag,
        on: bool,
    ) -> StoreResult<bool> {
        let sql = match flag {
            ServerFlag::Hold => "UPDATE domains SET server_hold = ?2 WHERE name = ?1",
            ServerFlag::Lock => "UPDATE domains SET server_lock = ?2 WHERE name = ?1",
        };
        Ok(self.tx.prepare_cached(sql)?.execute(params![domain, on])? == 1)
    }
}

impl Store {
    /// An object's changes, oldest first: (at, server-trid, registrar, action).
    pub fn object_history(&self, object: &str) -> StoreResult<Vec<[String; 4]>> {
        object_history(&self.conn, object)
    }
}

impl Tx<'_> {
    /// [`Store::object_history`] inside a transaction (a projected read).
    pub fn object_history(&self, object: &str) -> StoreResult<Vec<[String; 4]>> {
        object_history(&self.tx, object)
    }
}

fn object_history(conn: &rusqlite::Connection, object: &str) -> StoreResult<Vec<[String; 4]>> {
    {
        let mut stmt = conn.prepare(
            "SELECT at, server_trid, COALESCE(CAST(registrar_id AS TEXT), 'registry'), action
             FROM history WHERE object = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([object], |r| {
            Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?])
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }
}
