//! The billing ledger: each registrar's prepaid credit, and one row for every
//! credit, charge and refund, with the balance after it.

use super::timeline::charge_row;
use super::{Charge, Store, StoreResult, Tx};
use rusqlite::params;

/// One ledger movement.
#[derive(Debug, Clone, Copy)]
pub struct Movement<'a> {
    /// The registrar.
    pub registrar_id: u32,
    /// RFC 3339.
    pub at: &'a str,
    /// The mail's server-trid (None for an operator's credit).
    pub server_trid: Option<&'a str>,
    /// The domain concerned.
    pub object: Option<&'a str>,
    /// `credit`, `create`, `renew`, `transfer`, `restore` or `refund`.
    pub kind: &'a str,
    /// Cents: positive adds to the balance (credit, refund), negative charges.
    pub amount_cents: i64,
}

pub(super) fn book(tx: &rusqlite::Transaction<'_>, m: &Movement<'_>) -> StoreResult<i64> {
    let balance: i64 = tx.prepare_cached(
        "UPDATE registrars SET credit_cents = credit_cents + ?2 WHERE id = ?1 RETURNING credit_cents")?.query_row(params![m.registrar_id, m.amount_cents],
        |r| r.get(0),
    )?;
    tx.prepare_cached(
        "INSERT INTO ledger (registrar_id, at, server_trid, object, kind, amount_cents, balance_cents)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?.execute(params![m.registrar_id, m.at, m.server_trid, m.object, m.kind, m.amount_cents, balance],
    )?;
    Ok(balance)
}

impl Tx<'_> {
    /// A registrar's balance in cents.
    pub fn balance(&self, registrar_id: u32) -> StoreResult<i64> {
        use rusqlite::OptionalExtension;
        let b: Option<i64> = self
            .tx
            .prepare_cached("SELECT credit_cents FROM registrars WHERE id = ?1")?
            .query_row([registrar_id], |r| r.get(0))
            .optional()?;
        Ok(b.unwrap_or(0))
    }

    /// Books a movement; returns the new balance.
    pub fn book(&mut self, m: &Movement<'_>) -> StoreResult<i64> {
        book(&self.tx, m)
    }

    /// The charge a mail made on an object, if it was not refunded yet.
    pub fn open_charge_of(&self, server_trid: &str, object: &str) -> StoreResult<Option<Charge>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .tx
            .prepare_cached(
                "SELECT l.id, l.kind, -l.amount_cents, l.at, l.registrar_id FROM ledger l
                 WHERE l.server_trid = ?1 AND l.object = ?2 AND l.amount_cents < 0
                   AND NOT EXISTS (SELECT 1 FROM ledger r WHERE r.refund_of = l.id)
                 ORDER BY l.id LIMIT 1",
            )?
            .query_row(params![server_trid, object], charge_row)
            .optional()?)
    }

    /// Refunds a charge (a `refund` row that names it); returns the balance.
    pub fn refund_charge(&mut self, c: &Charge, at: &str, server_trid: &str) -> StoreResult<i64> {
        let balance = book(
            &self.tx,
            &Movement {
                registrar_id: c.registrar_id,
                at,
                server_trid: Some(server_trid),
                object: None,
                kind: "refund",
                amount_cents: c.cents,
            },
        )?;
        self.tx.prepare_cached(
            "UPDATE ledger SET refund_of = ?1, object = (SELECT object FROM ledger WHERE id = ?1)
             WHERE id = last_insert_rowid()")?.execute([c.id],
        )?;
        Ok(balance)
    }
}

impl Store {
    /// Adds prepaid credit (`registrar credit`); returns the new balance, or
    /// `Err(balance)` if the credit would end below zero or overflow.
    pub fn add_credit(
        &mut self,
        registrar_id: u32,
        cents: i64,
        at: &str,
    ) -> StoreResult<Result<i64, i64>> {
        self.write(|tx| {
            let before = tx.balance(registrar_id)?;
            if before.checked_add(cents).is_none_or(|after| after < 0) {
                return Ok(Err(before));
            }
            let m = Movement {
                registrar_id,
                at,
                server_trid: None,
                object: None,
                kind: "credit",
                amount_cents: cents,
            };
            book(&tx.tx, &m).map(Ok)
        })
    }
}
