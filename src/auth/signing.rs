//! Signing keys: the registry's own key (Ed25519, created by `regmail init`,
//! used to cleartext-sign every outgoing mail), and a registrar's key when
//! `regmail submit` signs a template. The creation time of each signature is
//! the injected clock's, so a reply is reproducible byte for byte.

use super::ed25519::Prepared;
use chrono::{DateTime, Utc};
use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;
use openpgp::serialize::SerializeInto;
use openpgp::serialize::stream::{Message, Signer};
use sequoia_openpgp as openpgp;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
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

fn pgp(e: anyhow::Error) -> SigningError {
    SigningError::Openpgp(e.to_string())
}

/// A secret key able to make signatures.
#[derive(Debug, Clone)]
pub struct SigningKey {
    tsk: openpgp::Cert,
    /// Its Ed25519 signing-capable secret keys, prepared once.
    prepared: Arc<[Prepared]>,
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
        Ok(SigningKey { tsk, prepared })
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
    pub fn clearsign(&self, text: &str, now: DateTime<Utc>) -> Result<String, SigningError> {
        let p = StandardPolicy::new();
        let at: SystemTime = now.into();
        let key = self
            .tsk
            .keys()
            .secret()
            .with_policy(&p, at)
            .supported()
            .alive()
            .revoked(false)
            .for_signing()
            .next()
            .ok_or_else(|| SigningError::Openpgp("no signing-capable key valid now".into()))?
            .key()
            .clone();
        let fingerprint = key.fingerprint();
        match self
            .prepared
            .iter()
            .find(|k| k.fingerprint() == fingerprint)
        {
            Some(prepared) => clearsign_with(prepared.signer(), text, at),
            None => clearsign_with(key.into_keypair().map_err(pgp)?, text, at),
        }
    }
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
