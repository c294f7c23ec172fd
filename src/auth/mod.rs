//! Auth: OpenPGP verification of a registrar's cleartext-signed block, and the
//! registry's own signing key.
//!
//! Input: the one signed block found by `intake`, the certificates registered
//! in the `store` (looked up by the signature's issuer key handles only: cost
//! per mail does not grow with the number of registrars), and the clock.
//! Output: a [`VerifiedBody`] (the signed text, dash-escaping undone, and the
//! registrar whose registered key made the signature) or a [`Refusal`] with
//! 4008/4009/4010/4013 (expired, revoked, or retired by a key rotation after
//! its overlap period). Invariant: a `VerifiedBody` can only be made here, and
//! only after sequoia verified the signature, so nothing unverified can reach
//! `policy` or `store`. The registry's own key (`signing`) cleartext-signs
//! every outgoing mail; its Ed25519 keys are prepared once per load
//! (`ed25519`, decision 87) and a key file whose secret does not belong to
//! its public key is refused.

mod ed25519;
mod keyring;
mod signing;

pub use keyring::{ParsedCert, is_revoked, merge_certificate, parse_certificate, signing_expiry};
pub use signing::{SigningError, SigningKey};

use crate::rejection::{Code, Rejection};
use crate::store::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};
use openpgp::KeyHandle;
use openpgp::cert::Cert;
use openpgp::cert::amalgamation::ValidAmalgamation;
use openpgp::cert::amalgamation::key::ValidErasedKeyAmalgamation;
use openpgp::packet::key;
use openpgp::parse::Parse;
use openpgp::parse::stream::{
    MessageLayer, MessageStructure, VerificationError, VerificationHelper, VerifierBuilder,
};
use openpgp::policy::StandardPolicy;
use sequoia_openpgp as openpgp;
use std::io::Read;
use std::time::SystemTime;

/// Signed text whose signature verified against a registered certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedBody {
    text: String,
    signer: Signer,
}

impl VerifiedBody {
    /// The signed text (LF line ends, dash-escaping undone).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Who signed it.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }
}

/// The registrar whose registered certificate made a signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// The registrar owning the certificate.
    pub registrar_id: u32,
    /// The certificate's fingerprint (upper-case hex).
    pub fingerprint: String,
    /// When the signature was made.
    pub signed_at: DateTime<Utc>,
}

/// Why a signed block was not accepted; `signer` is set when the signature's
/// mathematics verified with a registered key (the mail can then be answered).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The 4xxx finding.
    pub rejection: Rejection,
    /// The registrar attributable from the signature, if any.
    pub signer: Option<Signer>,
}

/// A fault of ours while verifying (the caller exits 75).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The certificate lookup failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The signature-time window of template.md section 1.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// Oldest acceptable age.
    pub max_age: Duration,
    /// Furthest acceptable future.
    pub max_future: Duration,
}

/// What the verifier helper learned.
struct Helper<'a> {
    store: &'a Store,
    /// The fetched certificates: fingerprint (hex) and owning registrar.
    owners: Vec<(String, u32)>,
    /// Fingerprints of certificates a rotation retired before `now`.
    retired: Vec<String>,
    fault: Option<StoreError>,
    outcome: Option<Verdict>,
    now: SystemTime,
}

#[derive(Debug, Clone)]
enum Verdict {
    Good {
        fingerprint: String,
        signed_at: SystemTime,
        still_valid: bool,
    },
    Bad {
        code: Code,
        why: String,
        attributable: Option<(String, SystemTime)>,
    },
}

fn to_utc(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

fn policy() -> StandardPolicy<'static> {
    StandardPolicy::new()
}

/// Verifies a cleartext-signed block at `now`.
pub fn verify(
    block: &str,
    store: &Store,
    now: DateTime<Utc>,
    window: Window,
) -> Result<Result<VerifiedBody, Refusal>, AuthError> {
    // sequoia refuses signatures made after its reference time, so it runs at
    // the window's far end; `accept` then applies the window itself.
    let horizon = now + window.max_future;
    let (text, read, helper) = match run_verifier(block, store, now.into(), horizon.into()) {
        Ok(run) => run,
        Err(e) => return Ok(Err(unattributed(Code::BadSignature, &short(&e)))),
    };
    if let Some(fault) = helper.fault {
        return Err(AuthError::Store(fault));
    }
    let (owners, retired) = (helper.owners, helper.retired);
    Ok(match helper.outcome {
        Some(Verdict::Good {
            fingerprint,
            signed_at,
            still_valid,
        }) => match owner(&owners, &fingerprint) {
            None => Err(unattributed(Code::KeyNotRegistered, "unknown key")),
            Some(registrar_id) => {
                let retired = retired.contains(&fingerprint);
                let signer = Signer {
                    registrar_id,
                    fingerprint,
                    signed_at: to_utc(signed_at),
                };
                if retired {
                    return Ok(Err(Refusal {
                        rejection: Rejection::new(Code::KeyExpiredRevoked)
                            .detail("key retired by a key rotation"),
                        signer: Some(signer),
                    }));
                }
                accept(signer, still_valid, now, window, read.is_ok(), text)
            }
        },
        Some(Verdict::Bad {
            code,
            why,
            attributable,
        }) => Err(Refusal {
            rejection: Rejection::new(code).detail(why),
            signer: attributable.and_then(|(fpr, at)| signer_of(&owners, fpr, at)),
        }),
        None => Err(unattributed(
            Code::BadSignature,
            &read
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "no signature".into()),
        )),
    })
}

/// What the verifier produced: the signed text, how reading it went, the helper.
type Run<'a> = (Vec<u8>, std::io::Result<usize>, Helper<'a>);

/// Runs sequoia's verifier over the block at `horizon`; keys and signatures are
/// judged at `now` in `judge`. `Err` if the verifier could not be set up.
fn run_verifier<'a>(
    block: &str,
    store: &'a Store,
    now: SystemTime,
    horizon: SystemTime,
) -> openpgp::Result<Run<'a>> {
    let p = policy();
    let helper = Helper {
        store,
        owners: Vec::new(),
        retired: Vec::new(),
        fault: None,
        outcome: None,
        now,
    };
    let mut verifier = VerifierBuilder::from_bytes(block.as_bytes())
        .and_then(|b| b.with_policy(&p, Some(horizon), helper))?;
    let mut text = Vec::new();
    let read = verifier.read_to_end(&mut text);
    Ok((text, read, verifier.into_helper()))
}

/// The registrar owning the certificate with this fingerprint, if fetched.
fn owner(owners: &[(String, u32)], fpr: &str) -> Option<u32> {
    owners.iter().find(|(c, _)| c == fpr).map(|(_, r)| *r)
}

/// The signer of an attributable signature, if its certificate is registered.
fn signer_of(owners: &[(String, u32)], fingerprint: String, at: SystemTime) -> Option<Signer> {
    owner(owners, &fingerprint).map(|registrar_id| Signer {
        registrar_id,
        fingerprint,
        signed_at: to_utc(at),
    })
}

/// A refusal that names no signer.
fn unattributed(code: Code, why: &str) -> Refusal {
    Refusal {
        rejection: Rejection::new(code).detail(why),
        signer: None,
    }
}

/// A good signature by a registered key: checks its time, the key's validity
/// now, and the signed text, in that order.
fn accept(
    signer: Signer,
    still_valid: bool,
    now: DateTime<Utc>,
    window: Window,
    read_ok: bool,
    text: Vec<u8>,
) -> Result<VerifiedBody, Refusal> {
    let signed = signer.signed_at;
    let refusal = |code: Code, why: String| Refusal {
        rejection: Rejection::new(code).detail(why),
        signer: Some(signer.clone()),
    };
    if signed < now - window.max_age || signed > now + window.max_future {
        return Err(refusal(
            Code::SignatureTime,
            format!("signed {}", signed.format("%Y-%m-%dT%H:%M:%SZ")),
        ));
    }
    if !still_valid {
        return Err(refusal(Code::KeyExpiredRevoked, "key not valid now".into()));
    }
    if !read_ok {
        return Err(unattributed(Code::BadSignature, "unreadable signed text"));
    }
    match String::from_utf8(text) {
        Ok(text) => Ok(VerifiedBody { text, signer }),
        Err(_) => Err(unattributed(Code::NonAscii, "signed text is not ASCII")),
    }
}

fn short(e: &anyhow::Error) -> String {
    let s = e.to_string();
    s.chars().take(50).collect()
}

impl VerificationHelper for Helper<'_> {
    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        let handles: Vec<String> = ids.iter().map(KeyHandle::to_hex).collect();
        let mut certs = Vec::new();
        match self.store.certs_for_key_handles(&handles) {
            Ok(rows) => {
                for row in rows {
                    let retired = row
                        .retire_at
                        .as_deref()
                        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
                        .is_some_and(|at| at <= to_utc(self.now));
                    if retired {
                        self.retired.push(row.fingerprint.clone());
                    }
                    if let Ok(cert) = keyring::stored_cert(&row.cert) {
                        self.owners
                            .push((cert.fingerprint().to_hex(), row.registrar_id));
                        certs.push(cert);
                    }
                }
            }
            Err(e) => self.fault = Some(e),
        }
        Ok(certs)
    }

    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        let mut best: Option<Verdict> = None;
        for layer in structure.into_iter() {
            let MessageLayer::SignatureGroup { results } = layer else {
                continue;
            };
            for result in results {
                let verdict = judge(result, self.now);
                let good = matches!(verdict, Verdict::Good { .. });
                if good || best.is_none() {
                    best = Some(verdict);
                }
                if good {
                    break;
                }
            }
        }
        self.outcome = best;
        Ok(())
    }
}

/// Classifies one signature's result into a verdict.
fn judge(
    result: Result<openpgp::parse::stream::GoodChecksum<'_>, VerificationError<'_>>,
    now: SystemTime,
) -> Verdict {
    match result {
        Ok(good) => good_verdict(&good, now),
        Err(VerificationError::MissingKey { .. }) => {
            unattributable(Code::KeyNotRegistered, "signing key not registered".into())
        }
        Err(VerificationError::UnboundKey { cert, sig, .. }) => Verdict::Bad {
            code: Code::KeyExpiredRevoked,
            why: "key not valid when signing".into(),
            attributable: math_holds_cert(sig, cert).then(|| {
                (
                    cert.fingerprint().to_hex(),
                    sig.signature_creation_time().unwrap_or(now),
                )
            }),
        },
        Err(VerificationError::BadKey { ka, .. }) if !ka.for_signing() => {
            unattributable(Code::BadSignature, "the key is not signing capable".into())
        }
        Err(VerificationError::BadKey { sig, ka, .. }) => Verdict::Bad {
            code: Code::KeyExpiredRevoked,
            why: "key expired or revoked".into(),
            attributable: sig.verify_document(ka.key()).is_ok().then(|| {
                (
                    ka.cert().fingerprint().to_hex(),
                    sig.signature_creation_time().unwrap_or(now),
                )
            }),
        },
        Err(VerificationError::BadSignature { sig, ka, .. }) => bad_signature(sig, &ka, now),
        Err(e) => unattributable(Code::BadSignature, e.to_string().chars().take(50).collect()),
    }
}

/// A bad verdict no registrar can be named for.
fn unattributable(code: Code, why: String) -> Verdict {
    Verdict::Bad {
        code,
        why,
        attributable: None,
    }
}

/// A signature whose mathematics verified: good, noting whether the
/// certificate and the signing key itself are still valid (alive, not revoked)
/// and the signature not expired at `now` (or at its creation, if later).
fn good_verdict(good: &openpgp::parse::stream::GoodChecksum<'_>, now: SystemTime) -> Verdict {
    let p = policy();
    let signed_at = good.sig.signature_creation_time().unwrap_or(now);
    let cert = good.ka.cert();
    let signing_key = good.ka.key().fingerprint();
    let revoked = |s: openpgp::types::RevocationStatus<'_>| {
        matches!(s, openpgp::types::RevocationStatus::Revoked(_))
    };
    let still_valid = cert.with_policy(&p, now).is_ok_and(|vc| {
        let key_valid = vc
            .keys()
            .key_handle(signing_key)
            .next()
            .is_some_and(|k| k.alive().is_ok() && !revoked(k.revocation_status()));
        vc.alive().is_ok()
            && !revoked(vc.revocation_status())
            && key_valid
            && good
                .sig
                .signature_alive(now.max(signed_at), std::time::Duration::ZERO)
                .is_ok()
    });
    Verdict::Good {
        fingerprint: cert.fingerprint().to_hex(),
        signed_at,
        still_valid,
    }
}

/// A signature not alive at `now`: attributable (signed in the future, or
/// expired) if its mathematics holds, else a mismatch with the text.
fn bad_signature(
    sig: &openpgp::packet::Signature,
    ka: &ValidErasedKeyAmalgamation<'_, key::PublicParts>,
    now: SystemTime,
) -> Verdict {
    let signed_at = sig.signature_creation_time().unwrap_or(now);
    if sig.verify_document(ka.key()).is_ok() {
        // The mathematics holds: the signature is not alive at `now`.
        let future = signed_at > now;
        Verdict::Bad {
            code: if future {
                Code::SignatureTime
            } else {
                Code::KeyExpiredRevoked
            },
            why: if future {
                "signed in the future".into()
            } else {
                "signature expired".into()
            },
            attributable: Some((ka.cert().fingerprint().to_hex(), signed_at)),
        }
    } else {
        unattributable(
            Code::BadSignature,
            "signature does not match the text".into(),
        )
    }
}

fn math_holds_cert(sig: &openpgp::packet::Signature, cert: &Cert) -> bool {
    cert.keys().any(|k| sig.verify_document(k.key()).is_ok())
}
