//! Key-expiry warnings: a registrar is told `key_expiry_warning_days`
//! (profile) before its certificate can no longer sign, so it can register
//! a new key (`registrar key add`) in time.
//!
//! Input: the registered certificates (not those being rotated out) and the
//! clock. Output: one notice per certificate and expiry, to the registrar,
//! recorded in `key_warnings` so it is sent once. Invariant: a timer step
//! only (`tick`): it changes no registry object, so reads need not project it.

use super::Ctx;
use super::notify::{Notice, Recipient};
use crate::auth::signing_expiry;
use crate::reply::{Outcome, rfc3339};
use crate::store::{StoreError, Tx};
use chrono::Duration;

/// Queues a warning for every certificate that expires within the warning
/// period and was not warned of for this expiry.
pub fn warn_expiring(
    tx: &mut Tx<'_>,
    ctx: &Ctx<'_>,
    notices: &mut Vec<Notice>,
) -> Result<(), StoreError> {
    let days = ctx.profile.key_expiry_warning_days;
    if days <= 0 {
        return Ok(());
    }
    for cert in tx.live_certificates()? {
        let Some(expires) = signing_expiry(&cert.cert, ctx.now) else {
            continue;
        };
        let at = rfc3339(expires);
        if expires - ctx.now > Duration::days(days) || tx.key_warned(&cert.fingerprint, &at)? {
            continue;
        }
        let trid = tx.next_server_trid()?;
        tx.record_key_warning(&cert.fingerprint, &at, &rfc3339(ctx.now), &trid)?;
        notices.push(Notice {
            to: Recipient::Registrar(cert.registrar_id),
            event: "key-expiry-warning".into(),
            outcome: Outcome::Success,
            transaction: "certificate".into(),
            object: cert.fingerprint.clone(),
            registrar_id: Some(cert.registrar_id),
            client_trid: None,
            server_trid: trid,
            infos: Vec::new(),
            text: format!(
                "Your OpenPGP certificate {} can no longer sign from {at}: templates \
                 signed with it after that are refused (4013).\n\nSend the registry \
                 a new certificate (or an update of this one with a later expiry) \
                 before then; the registry registers it with `registrar key add`, \
                 and both keys work during the overlap.",
                cert.fingerprint
            ),
            bounce_tag: None,
        });
    }
    Ok(())
}
