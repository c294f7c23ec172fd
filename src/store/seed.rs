//! Synthetic registry data for load measurements (`cargo bench --bench
//! pipeline`): a registry's worth of domains written in a few statements.
//!
//! Input: the owning registrar, a holder handle, how many domains. Output:
//! rows shaped like real creates (a holder person; per domain its registrant
//! and tech-c, two out-of-zone nameservers, a one-year expiry). Invariants:
//! never used on the mail path; one transaction; names `PREFIX<n>.at`.

use super::{Store, StoreError, StoreResult};
use rusqlite::params;

/// What to seed.
#[derive(Debug, Clone, Copy)]
pub struct Seed<'a> {
    /// The registrar owning every row.
    pub registrar_id: u32,
    /// The holder (and tech-c) handle, created here.
    pub holder: &'a str,
    /// Domain names are `<prefix><n>.at`, n from 1.
    pub prefix: &'a str,
    /// How many domains.
    pub domains: u64,
    /// Creation instant (RFC 3339).
    pub now: &'a str,
    /// Expiry instant (RFC 3339).
    pub expires: &'a str,
}

impl Store {
    /// Writes the seed in one transaction.
    pub fn seed(&mut self, s: &Seed<'_>) -> StoreResult<()> {
        self.write(|tx| {
            let c = &tx.tx;
            c.execute(
                "INSERT INTO persons (handle, registrar_id, type, personname, street,
                     postal_code, city, country, phone, email, created, updated)
                 VALUES (?1, ?2, 'NAT', 'Seed Holder', 'Hauptstrasse 1', '1010', 'Wien',
                     'AT', '+43 1 5056416', 'seed@example.at', ?3, ?3)",
                params![s.holder, s.registrar_id, s.now],
            )?;
            c.execute(
                "INSERT OR IGNORE INTO hosts (name, created)
                 VALUES ('ns1.seed.example', ?1), ('ns2.seed.example', ?1)",
                [s.now],
            )?;
            c.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO domains (name, registrar_id, created, expires, updated, authinfo)
                 SELECT ?2 || i || '.at', ?3, ?4, ?5, ?4, 'seed' FROM n",
                params![s.domains, s.prefix, s.registrar_id, s.now, s.expires],
            )?;
            let pattern = format!("{}%", s.prefix);
            c.execute(
                "INSERT INTO domain_contacts (domain, role, pos, handle)
                 SELECT name, role, 0, ?2 FROM domains, (SELECT 'registrant' AS role
                     UNION ALL SELECT 'tech-c') WHERE name LIKE ?1",
                params![pattern, s.holder],
            )?;
            c.execute(
                "INSERT INTO domain_hosts (domain, pos, host)
                 SELECT name, pos, 'ns' || (pos + 1) || '.seed.example' FROM domains,
                     (SELECT 0 AS pos UNION ALL SELECT 1) WHERE name LIKE ?1",
                [pattern],
            )?;
            Ok::<_, StoreError>(())
        })
    }
}
