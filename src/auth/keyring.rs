//! Registrar certificates: parsing a certificate file for registration, and the
//! key handles (every key's fingerprint and key ID) it is indexed by.

use openpgp::cert::Cert;
use openpgp::parse::Parse;
use openpgp::serialize::Marshal;
use sequoia_openpgp as openpgp;

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
