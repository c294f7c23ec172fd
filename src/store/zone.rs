//! Reads and serial bookkeeping for the zone export (`regmail zone export`).
//!
//! Input: a zone name (`at`), serials and digests from [`crate::zone`].
//! Output: every domain under the zone with the flags that decide whether
//! it is delegated, its nameservers in order and their addresses; the
//! zone's serial state. Invariants: `issued` never decreases; `published`
//! is only ever set to a serial that was issued.

use super::{StoreError, StoreResult, Tx};
use rusqlite::OptionalExtension;

/// A nameserver host of a domain, with its stored addresses in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneHost {
    /// Host name.
    pub name: String,
    /// Addresses (RFC 5952 / dotted quad), possibly none.
    pub addresses: Vec<String>,
}

/// A domain as the zone export sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneDomain {
    /// Name, lower case.
    pub name: String,
    /// `client-hold` set by the registrar.
    pub client_hold: bool,
    /// `serverHold` set by the registry.
    pub server_hold: bool,
    /// Taken out of the zone by `billwithdraw` with `zone-delete: Y`.
    pub zone_delete: bool,
    /// Deleted: in the redemption period or `pendingDelete` before release.
    pub deleted: bool,
    /// Nameservers in the registrar's order.
    pub nameservers: Vec<ZoneHost>,
}

/// The stored serial state of one zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneSerialRow {
    /// The highest serial handed out.
    pub issued: u32,
    /// The last serial written to a file or standard output.
    pub published: Option<u32>,
    /// SHA-256 (hex) of that export's text without its serial.
    pub digest: Option<String>,
}

fn serial(v: i64) -> StoreResult<u32> {
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("zone serial {v}")))
}

type Row = (
    String,
    bool,
    bool,
    bool,
    bool,
    Option<String>,
    Option<String>,
);

fn group(rows: Vec<Row>) -> Vec<ZoneDomain> {
    let mut out: Vec<ZoneDomain> = Vec::new();
    for (name, client_hold, server_hold, zone_delete, deleted, host, address) in rows {
        if out.last().is_none_or(|d| d.name != name) {
            out.push(ZoneDomain {
                name,
                client_hold,
                server_hold,
                zone_delete,
                deleted,
                nameservers: Vec::new(),
            });
        }
        let (Some(d), Some(host)) = (out.last_mut(), host) else {
            continue;
        };
        if d.nameservers.last().is_none_or(|h| h.name != host) {
            d.nameservers.push(ZoneHost {
                name: host,
                addresses: Vec::new(),
            });
        }
        if let (Some(h), Some(a)) = (d.nameservers.last_mut(), address) {
            h.addresses.push(a);
        }
    }
    out
}

impl Tx<'_> {
    /// Every domain whose name ends in `.zone` (sub-zones included; the
    /// caller picks the most specific zone), by name, hosts in order.
    pub fn zone_domains(&self, zone: &str) -> StoreResult<Vec<ZoneDomain>> {
        let mut stmt = self.tx.prepare(
            "SELECT d.name, d.client_hold, d.server_hold, d.zone_delete,
                    d.redemption_until IS NOT NULL OR d.release_at IS NOT NULL,
                    h.host, a.address
             FROM domains d
             LEFT JOIN domain_hosts h ON h.domain = d.name
             LEFT JOIN host_addresses a ON a.host = h.host
             WHERE length(d.name) > length(?1) + 1
               AND substr(d.name, -length(?1) - 1) = '.' || ?1
             ORDER BY d.name, h.pos, a.pos",
        )?;
        let rows = stmt.query_map([zone], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        Ok(group(rows.collect::<Result<Vec<Row>, _>>()?))
    }

    /// The zone's serial state; `None` before its first export.
    pub fn zone_serial(&self, zone: &str) -> StoreResult<Option<ZoneSerialRow>> {
        let row: Option<(i64, Option<i64>, Option<String>)> = self
            .tx
            .query_row(
                "SELECT issued, published, digest FROM zone_serials WHERE zone = ?1",
                [zone],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(issued, published, digest)| {
            Ok(ZoneSerialRow {
                issued: serial(issued)?,
                published: published.map(serial).transpose()?,
                digest,
            })
        })
        .transpose()
    }

    /// Records that `issued` was handed out (never lowers the stored value).
    pub fn issue_zone_serial(&self, zone: &str, issued: u32) -> StoreResult<()> {
        self.tx.execute(
            "INSERT INTO zone_serials (zone, issued) VALUES (?1, ?2)
             ON CONFLICT (zone) DO UPDATE SET issued = MAX(issued, excluded.issued)",
            rusqlite::params![zone, issued],
        )?;
        Ok(())
    }

    /// Records that the export with `serial` and `digest` was written at
    /// `at`, unless a greater serial was published meanwhile; false then.
    pub fn publish_zone_serial(
        &self,
        zone: &str,
        serial: u32,
        digest: &str,
        at: &str,
    ) -> StoreResult<bool> {
        let n = self.tx.execute(
            "UPDATE zone_serials SET published = ?2, digest = ?3, published_at = ?4
             WHERE zone = ?1 AND (published IS NULL OR published <= ?2)",
            rusqlite::params![zone, serial, digest, at],
        )?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Store;

    #[test]
    fn serial_state_round_trips_and_never_goes_down() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .write(|tx| -> StoreResult<()> {
                assert_eq!(tx.zone_serial("at")?, None);
                tx.issue_zone_serial("at", 2026112200)?;
                tx.issue_zone_serial("at", 2026112100)?;
                let row = tx.zone_serial("at")?.unwrap();
                assert_eq!((row.issued, row.published), (2026112200, None));
                assert!(tx.publish_zone_serial("at", 2026112200, "abc", "2026-11-22T08:15:00Z")?);
                // An older export finishing late does not undo a newer one.
                assert!(!tx.publish_zone_serial(
                    "at",
                    2026112100,
                    "old",
                    "2026-11-22T08:16:00Z"
                )?);
                let row = tx.zone_serial("at")?.unwrap();
                assert_eq!(row.published, Some(2026112200));
                assert_eq!(row.digest.as_deref(), Some("abc"));
                assert_eq!(tx.zone_serial("co.at")?, None);
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn rows_group_into_domains_and_hosts() {
        let row = |d: &str, h: Option<&str>, a: Option<&str>| -> Row {
            (
                d.into(),
                false,
                d == "held.at",
                false,
                false,
                h.map(Into::into),
                a.map(Into::into),
            )
        };
        let domains = group(vec![
            row("a.at", Some("ns1.a.at"), Some("192.0.2.1")),
            row("a.at", Some("ns1.a.at"), Some("2001:db8::1")),
            row("a.at", Some("ns.example.net"), None),
            row("bare.at", None, None),
            row("held.at", Some("ns.example.net"), None),
        ]);
        assert_eq!(domains.len(), 3);
        assert_eq!(domains[0].nameservers.len(), 2);
        assert_eq!(
            domains[0].nameservers[0].addresses,
            ["192.0.2.1", "2001:db8::1"]
        );
        assert!(domains[0].nameservers[1].addresses.is_empty());
        assert!(domains[1].nameservers.is_empty());
        assert!(domains[2].server_hold);
    }
}
