//! The billing ledger: each registrar's prepaid credit, and one row for every
//! credit, charge and refund, with the balance after it.

use super::{Store, StoreResult, Tx};
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

fn book(tx: &rusqlite::Transaction<'_>, m: &Movement<'_>) -> StoreResult<i64> {
    let balance: i64 = tx.query_row(
        "UPDATE registrars SET credit_cents = credit_cents + ?2 WHERE id = ?1 RETURNING credit_cents",
        params![m.registrar_id, m.amount_cents],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO ledger (registrar_id, at, server_trid, object, kind, amount_cents, balance_cents)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![m.registrar_id, m.at, m.server_trid, m.object, m.kind, m.amount_cents, balance],
    )?;
    Ok(balance)
}

impl Tx<'_> {
    /// A registrar's balance in cents.
    pub fn balance(&self, registrar_id: u32) -> StoreResult<i64> {
        use rusqlite::OptionalExtension;
        let b: Option<i64> = self
            .tx
            .query_row(
                "SELECT credit_cents FROM registrars WHERE id = ?1",
                [registrar_id],
                |r| r.get(0),
            )
            .optional()?;
        Ok(b.unwrap_or(0))
    }

    /// The registrar and the amount (positive cents) a mail was charged for an
    /// object, if it was.
    pub fn charge_of(&self, server_trid: &str, object: &str) -> StoreResult<Option<(u32, i64)>> {
        use rusqlite::OptionalExtension;
        Ok(self
            .tx
            .query_row(
                "SELECT registrar_id, -amount_cents FROM ledger
                 WHERE server_trid = ?1 AND object = ?2 AND amount_cents < 0 ORDER BY id LIMIT 1",
                params![server_trid, object],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Books a movement; returns the new balance.
    pub fn book(&mut self, m: &Movement<'_>) -> StoreResult<i64> {
        book(&self.tx, m)
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
