//! Signing keys: the registry's own key (Ed25519, created by `regmail init`,
//! used to cleartext-sign every outgoing mail), and a registrar's key when
//! `regmail submit` signs a template. The creation time of each signature is
//! the injected clock's, so a reply is reproducible byte for byte.

use super::ed25519::Prepared;
use chrono::{DateTime, Utc};
use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::packet::key::{SecretParts, UnspecifiedRole};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::serialize::stream::{Message, Signer};
use sequoia_openpgp as openpgp;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A fault with the registry key (the caller exits 75).
#[derive(Debug, thiserror::Error)]
pub enum SigningError {
    /// The key file cannot be read or written.
    #[error("registry key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// OpenPGP failed (bad key file, no signing-capable key, ...).
    #[error("registry key: {0}")]
    Openpgp(String),
}

/// A secret key of the registry's certificate.
type SecretKey = openpgp::packet::Key<SecretParts, UnspecifiedRole>;

fn pgp(e: anyhow::Error) -> SigningError {
    SigningError::Openpgp(e.to_string())
}

/// A secret key able to make signatures.
#[derive(Debug, Clone)]
pub struct SigningKey {
    tsk: openpgp::Cert,
    /// Its Ed25519 signing-capable secret keys, prepared once.
    prepared: Arc<[Prepared]>,
    /// The last choice of signing key: the second it was made for and the
    /// prepared key chosen ([`SigningKey::clearsign`]).
    chosen: Arc<Mutex<Option<(i64, usize)>>>,
}

impl SigningKey {
    /// Generates a new Ed25519 key for `user_id`, valid from `now`.
    pub fn generate(user_id: &str, now: DateTime<Utc>) -> Result<SigningKey, SigningError> {
        let created: SystemTime = (now - chrono::Duration::minutes(1)).into();
        let (tsk, _) = CertBuilder::new()
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_creation_time(created)
            .add_userid(user_id)
            .add_signing_subkey()
            .generate()
            .map_err(pgp)?;
        SigningKey::new(tsk)
    }

    /// Loads the key from an armoured TSK file.
    pub fn load(path: &Path) -> Result<SigningKey, SigningError> {
        let data = std::fs::read(path).map_err(|source| SigningError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let tsk = openpgp::Cert::from_bytes(&data).map_err(pgp)?;
        if !tsk.is_tsk() {
            return Err(SigningError::Openpgp(
                "the registry key file holds no secret key".into(),
            ));
        }
        SigningKey::new(tsk)
    }

    fn new(tsk: openpgp::Cert) -> Result<SigningKey, SigningError> {
        let prepared = tsk
            .keys()
            .unencrypted_secret()
            .filter_map(|k| Prepared::of(k.key().role_as_unspecified()).transpose())
            .collect::<Result<_, _>>()
            .map_err(|why| SigningError::Openpgp(why.into()))?;
        Ok(SigningKey {
            tsk,
            prepared,
            chosen: Arc::default(),
        })
    }

    /// Writes the secret key, armoured, readable by the owner only.
    pub fn save(&self, path: &Path) -> Result<(), SigningError> {
        let armored = self.tsk.as_tsk().armored().to_vec().map_err(pgp)?;
        let io = |source| SigningError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut file =
            tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new("."))).map_err(io)?;
        set_private(file.as_file()).map_err(io)?;
        file.write_all(&armored).map_err(io)?;
        file.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }

    /// The public certificate, armoured (`regmail key export`).
    pub fn public_armored(&self) -> Result<String, SigningError> {
        let bytes = self.tsk.armored().to_vec().map_err(pgp)?;
        String::from_utf8(bytes).map_err(|e| SigningError::Openpgp(e.to_string()))
    }

    /// The fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        self.tsk.fingerprint().to_hex()
    }

    /// Cleartext-signs `text` with a signature made at `now`.
    ///
    /// The signature states whole seconds, so the key is chosen for the
    /// second it will state; the choice holds for that whole second (every
    /// OpenPGP time a key's validity depends on is a whole second too), so
    /// it is made once per second and reused (decision 95).
    pub fn clearsign(&self, text: &str, now: DateTime<Utc>) -> Result<String, SigningError> {
        let second = now.timestamp();
        let at: SystemTime = DateTime::<Utc>::from_timestamp(second, 0)
            .unwrap_or(now)
            .into();
        let remembered = self.chosen.lock().ok().and_then(|c| *c);
        if let Some(prepared) = remembered
            .filter(|(s, _)| *s == second)
            .and_then(|(_, i)| self.prepared.get(i))
        {
            return clearsign_with(prepared.signer(), text, at);
        }
        let key = self.choose(at)?;
        let fingerprint = key.fingerprint();
        match self
            .prepared
            .iter()
            .position(|k| k.fingerprint() == fingerprint)
        {
            Some(i) => {
                if let Ok(mut c) = self.chosen.lock() {
                    *c = Some((second, i));
                }
                let prepared = self.prepared.get(i).ok_or_else(no_key)?;
                clearsign_with(prepared.signer(), text, at)
            }
            None => clearsign_with(key.into_keypair().map_err(pgp)?, text, at),
        }
    }

    /// The signing-capable key valid at `at` (sequoia's choice).
    fn choose(&self, at: SystemTime) -> Result<SecretKey, SigningError> {
        let p = StandardPolicy::new();
        Ok(self
            .tsk
            .keys()
            .secret()
            .with_policy(&p, at)
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .ok_or_else(no_key)?
            .key()
            .clone())
    }
}

fn no_key() -> SigningError {
    SigningError::Openpgp("no signing-capable key valid now".into())
}

/// The cleartext signature framework around one signer.
pub(super) fn clearsign_with<S>(
    signer: S,
    text: &str,
    at: SystemTime,
) -> Result<String, SigningError>
where
    S: openpgp::crypto::Signer + Send + Sync,
{
    let mut out = Vec::new();
    {
        let message = Message::new(&mut out);
        let mut signer = Signer::new(message, signer)
            .map_err(pgp)?
            .cleartext()
            .creation_time(at)
            .build()
            .map_err(pgp)?;
        signer
            .write_all(text.as_bytes())
            .map_err(|e| SigningError::Openpgp(e.to_string()))?;
        signer.finalize().map_err(pgp)?;
    }
    String::from_utf8(out).map_err(|e| SigningError::Openpgp(e.to_string()))
}

#[cfg(unix)]
fn set_private(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use openpgp::Cert;
    use openpgp::parse::stream::{
        MessageLayer, MessageStructure, VerificationHelper, VerifierBuilder,
    };
    use openpgp::types::KeyFlags;
    use std::time::Duration;

    /// Trent's key whose only signing key expires 100 s after its creation.
    fn expiring() -> (SigningKey, DateTime<Utc>) {
        let created = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("time");
        let (tsk, _) = CertBuilder::new()
            .set_cipher_suite(CipherSuite::Cv25519)
            .set_creation_time(SystemTime::from(created))
            .add_userid("Trent <trent@registry.test>")
            .add_subkey(
                KeyFlags::empty().set_signing(),
                Duration::from_secs(100),
                None,
            )
            .generate()
            .expect("key");
        (SigningKey::new(tsk).expect("prepared"), created)
    }

    /// The creation time of the good signature of a cleartext-signed text.
    fn signed_at(signed: &str, key: &SigningKey) -> SystemTime {
        struct Times(openpgp::Cert, Vec<SystemTime>);
        impl VerificationHelper for &mut Times {
            fn get_certs(&mut self, _: &[openpgp::KeyHandle]) -> openpgp::Result<Vec<Cert>> {
                Ok(vec![self.0.clone()])
            }
            fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
                for layer in structure {
                    if let MessageLayer::SignatureGroup { results } = layer {
                        for good in results.into_iter().flatten() {
                            self.1.extend(good.sig.signature_creation_time());
                        }
                    }
                }
                Ok(())
            }
        }
        let p = StandardPolicy::new();
        let mut times = Times(key.tsk.clone(), Vec::new());
        let mut v = VerifierBuilder::from_bytes(signed.as_bytes())
            .expect("parse")
            .with_policy(&p, None, &mut times)
            .expect("verify");
        std::io::copy(&mut v, &mut std::io::sink()).expect("read");
        drop(v);
        times.1.pop().expect("a good signature")
    }

    #[test]
    fn a_signature_states_the_second_its_key_was_chosen_for() {
        let (key, created) = expiring();
        let whole = created + chrono::Duration::seconds(50);
        let within = whole + chrono::Duration::milliseconds(700);
        let signed = key.clearsign("text\n", within).expect("signed");
        assert_eq!(signed_at(&signed, &key), SystemTime::from(whole));
        let again = key.clearsign("text\n", whole).expect("signed");
        assert_eq!(signed_at(&again, &key), SystemTime::from(whole));
    }

    #[test]
    fn the_remembered_key_is_chosen_again_for_another_second() {
        let (key, created) = expiring();
        let last = created + chrono::Duration::milliseconds(99_001);
        assert!(key.clearsign("text\n", last).is_ok());
        let end = last + chrono::Duration::milliseconds(998);
        assert!(key.clearsign("text\n", end).is_ok(), "same second");
        let expired = created + chrono::Duration::seconds(100);
        assert!(matches!(
            key.clearsign("text\n", expired),
            Err(SigningError::Openpgp(_))
        ));
        assert!(key.clearsign("text\n", last).is_ok(), "chosen afresh");
    }
}
