//! Billing: the profile's price list, the credit check (6113) and the charge
//! (a ledger row, reported with info 1006), in the template's transaction.
//! A price of 0 is free: no check, no ledger row, no 1006.

use super::Act;
use crate::config::Profile;
use crate::rejection::{Code, Rejection};
use crate::reply::rfc3339;
use crate::store::{Movement, StoreError, Tx};

/// What is charged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Item {
    /// A registration of `n` years.
    Create(u32),
    /// A renewal of `n` years.
    Renew(u32),
    /// A transfer.
    Transfer,
    /// A restore from redemption.
    Restore,
}

impl Item {
    fn kind(self) -> &'static str {
        match self {
            Item::Create(_) => "create",
            Item::Renew(_) => "renew",
            Item::Transfer => "transfer",
            Item::Restore => "restore",
        }
    }

    /// The price in cents.
    pub(super) fn cents(self, profile: &Profile) -> i64 {
        let p = profile.prices;
        match self {
            Item::Create(n) => p.create * i64::from(n),
            Item::Renew(n) => p.renew * i64::from(n),
            Item::Transfer => p.transfer,
            Item::Restore => p.restore,
        }
    }
}

/// Cents as `12.50`.
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

/// 6113 when the registrar's credit does not cover the item.
pub(super) fn check_credit(
    tx: &Tx<'_>,
    registrar_id: u32,
    item: Item,
    profile: &Profile,
    errors: &mut Vec<Rejection>,
) -> Result<(), StoreError> {
    let cents = item.cents(profile);
    if cents == 0 {
        return Ok(());
    }
    let balance = tx.balance(registrar_id)?;
    if balance < cents {
        let detail = format!(
            "{} {} needed, {} left",
            money(cents),
            profile.currency,
            money(balance)
        );
        errors.push(Rejection::new(Code::InsufficientCredit).detail(detail));
    }
    Ok(())
}

/// Books the charge for `item` on `object` (the caller checked the credit);
/// returns the 1006 info, or `None` for a free item or a dry run.
pub(super) fn charge(
    tx: &mut Tx<'_>,
    act: Act<'_>,
    registrar_id: u32,
    object: &str,
    item: Item,
    profile: &Profile,
) -> Result<Option<Rejection>, StoreError> {
    let cents = item.cents(profile);
    if cents == 0 || act.dry_run {
        return Ok(None);
    }
    let balance = tx.book(&Movement {
        registrar_id,
        at: &rfc3339(act.now),
        server_trid: Some(act.server_trid),
        object: Some(object),
        kind: item.kind(),
        amount_cents: -cents,
    })?;
    let cur = &profile.currency;
    Ok(Some(Rejection::new(Code::Charged).detail(format!(
        "{} {cur}, balance {} {cur}",
        money(cents),
        money(balance)
    ))))
}

/// Refunds what the request `server_trid` was charged for `object` (a
/// transfer that did not execute); nothing if it was free.
pub(super) fn refund(
    tx: &mut Tx<'_>,
    act: Act<'_>,
    server_trid: &str,
    object: &str,
) -> Result<(), StoreError> {
    let Some(charge) = tx.open_charge_of(server_trid, object)? else {
        return Ok(());
    };
    tx.refund_charge(&charge, &rfc3339(act.now), act.server_trid)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_formatted_in_cents() {
        assert_eq!(money(0), "0.00");
        assert_eq!(money(1205), "12.05");
        assert_eq!(money(-50), "-0.50");
    }
}
