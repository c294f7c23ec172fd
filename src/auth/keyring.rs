//! Registrar certificates: parsing a certificate file for registration,
//! merging an update into the stored certificate (so a revocation it carries
//! is applied), the key handles (every key's fingerprint and key ID) a
//! certificate is indexed by, and when it stops being able to sign; and the
//! stored certificates parsed for verification, remembered per thread.
//!
//! Invariants: only public material is stored; an update never drops what
//! the stored certificate already had (sequoia's `merge_public`); a
//! remembered certificate is keyed by its exact stored bytes, so an updated
//! or revoked certificate is parsed afresh.

use chrono::{DateTime, Utc};
use openpgp::cert::Cert;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::Marshal;
use openpgp::types::RevocationStatus;
use sequoia_openpgp as openpgp;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::SystemTime;

/// Most certificates a thread keeps parsed (a batch's registrars; a
/// `process` run parses one).
const REMEMBERED: usize = 256;

thread_local! {
    static PARSED: RefCell<HashMap<Vec<u8>, Cert>> = RefCell::new(HashMap::new());
}

/// A stored certificate, parsed: sequoia's parse checks every self-signature
/// of it, so a thread verifying many mails (a `replay` worker) parses each
/// certificate once, and reuses what it checked.
pub fn stored_cert(bytes: &[u8]) -> openpgp::Result<Cert> {
    if let Some(cert) = PARSED.with(|p| p.borrow().get(bytes).cloned()) {
        return Ok(cert);
    }
    let cert = Cert::from_bytes(bytes)?;
    PARSED.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() >= REMEMBERED {
            p.clear();
        }
        p.insert(bytes.to_vec(), cert.clone());
    });
    Ok(cert)
}

/// A certificate ready to be stored.
#[derive(Debug, Clone)]
pub struct ParsedCert {
    /// Primary key fingerprint, upper-case hex.
    pub fingerprint: String,
    /// Binary (transferable public key) form, secrets stripped.
    pub bytes: Vec<u8>,
    /// Fingerprints and key IDs of every key, upper-case hex.
    pub key_handles: Vec<String>,
    /// The first user ID, for listings.
    pub user_id: String,
}

/// Parses an armoured or binary certificate; secret key material is dropped.
pub fn parse_certificate(data: &[u8]) -> Result<ParsedCert, String> {
    let cert = Cert::from_bytes(data).map_err(|e| format!("not an OpenPGP certificate: {e}"))?;
    describe(cert)
}

/// The stored certificate with an update merged in (new subkeys, new
/// signatures, revocations); both must have the same primary key.
pub fn merge_certificate(stored: &[u8], update: &[u8]) -> Result<ParsedCert, String> {
    let old = Cert::from_bytes(stored).map_err(|e| format!("stored certificate: {e}"))?;
    let new = Cert::from_bytes(update).map_err(|e| format!("not an OpenPGP certificate: {e}"))?;
    let merged = old
        .merge_public(new)
        .map_err(|e| format!("cannot merge the update: {e}"))?;
    describe(merged)
}

fn describe(cert: Cert) -> Result<ParsedCert, String> {
    let cert = cert.strip_secret_key_material();
    let mut bytes = Vec::new();
    cert.serialize(&mut bytes)
        .map_err(|e| format!("cannot serialise certificate: {e}"))?;
    let mut key_handles = Vec::new();
    for key in cert.keys() {
        key_handles.push(key.key().fingerprint().to_hex());
        key_handles.push(key.key().keyid().to_hex());
    }
    key_handles.sort();
    key_handles.dedup();
    let user_id = cert
        .userids()
        .next()
        .map(|u| String::from_utf8_lossy(u.userid().value()).into_owned())
        .unwrap_or_default();
    Ok(ParsedCert {
        fingerprint: cert.fingerprint().to_hex(),
        bytes,
        key_handles,
        user_id,
    })
}

/// Whether a stored certificate is revoked (shown by `registrar list`).
pub fn is_revoked(cert: &[u8], now: DateTime<Utc>) -> bool {
    let p = StandardPolicy::new();
    Cert::from_bytes(cert).is_ok_and(|c| {
        matches!(
            c.revocation_status(&p, SystemTime::from(now)),
            RevocationStatus::Revoked(_)
        )
    })
}

/// When the certificate stops making signatures regmail accepts: the latest
/// expiry of its live signing keys, no later than the certificate's own.
/// `None` if it never expires, or cannot sign now anyway (expired, revoked,
/// no live signing key): there is nothing to warn of.
pub fn signing_expiry(cert: &[u8], now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let cert = Cert::from_bytes(cert).ok()?;
    let p = StandardPolicy::new();
    let vc = cert.with_policy(&p, SystemTime::from(now)).ok()?;
    if vc.alive().is_err() || matches!(vc.revocation_status(), RevocationStatus::Revoked(_)) {
        return None;
    }
    // None: no live signing key yet; Some(None): one never expires.
    let mut signing: Option<Option<SystemTime>> = None;
    for ka in vc.keys().for_signing().alive().revoked(false) {
        let t = ka.key_expiration_time();
        signing = Some(match (signing, t) {
            (None, t) => t,
            (Some(None), _) | (_, None) => None,
            (Some(Some(a)), Some(b)) => Some(a.max(b)),
        });
    }
    let until = match (signing?, vc.primary_key().key_expiration_time()) {
        (None, None) => return None,
        (Some(t), None) | (None, Some(t)) => t,
        (Some(a), Some(b)) => a.min(b),
    };
    Some(DateTime::<Utc>::from(until))
}
