//! The registry's Ed25519 signer, prepared once per loaded key.
//!
//! Input: an unencrypted Ed25519 secret key of a loaded TSK (legacy EdDSA or
//! RFC 9580 Ed25519). Output: a [`Prepared`] signer that sequoia's streaming
//! `Signer` drives like its own `KeyPair`. Why: sequoia's `KeyPair::sign`
//! unseals the in-memory-encrypted secret and derives the public point for
//! every signature, which was two thirds of the cost of signing a reply
//! (decision 87). Invariants: the signatures are encoded as sequoia's
//! (same MPI encoding, leading zeros stripped; v4 EdDSA or RFC 9580
//! Ed25519 by the key's algorithm); a key whose secret does not belong to
//! its public point is refused at load (sequoia would sign with it);
//! the secret lives only in `ed25519_dalek::SigningKey`, which zeroizes
//! itself on drop, and the temporary copy is zeroized; `Debug` never shows
//! it. Key selection (validity at the signature's time, revocation) stays
//! sequoia's: this only replaces the arithmetic.

use ed25519_dalek::Signer as _;
use openpgp::crypto::mpi;
use openpgp::packet::Key;
use openpgp::packet::key::{PublicParts, SecretKeyMaterial, SecretParts, UnspecifiedRole};
use openpgp::types::{Curve, HashAlgorithm, PublicKeyAlgorithm};
use sequoia_openpgp as openpgp;
use zeroize::Zeroize;

/// How the key's signatures are encoded (its algorithm).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// Legacy EdDSA (v4 keys): two MPIs.
    EdDsa,
    /// RFC 9580 Ed25519: 64 bytes.
    Ed25519,
}

/// An Ed25519 signing key with its public point computed once.
pub(super) struct Prepared {
    public: Key<PublicParts, UnspecifiedRole>,
    secret: ed25519_dalek::SigningKey,
    encoding: Encoding,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("fingerprint", &self.public.fingerprint().to_hex())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// The prepared signer of `key` if it is an unencrypted Ed25519 key
    /// (`Ok(None)`: another algorithm or an encrypted key, left to
    /// sequoia's `KeyPair`); `Err` if its secret is malformed or does not
    /// belong to its public point (every signature would fail to verify;
    /// sequoia would sign with it all the same).
    pub(super) fn of(
        key: &Key<SecretParts, UnspecifiedRole>,
    ) -> Result<Option<Prepared>, &'static str> {
        let SecretKeyMaterial::Unencrypted(unencrypted) = key.secret() else {
            return Ok(None);
        };
        let (encoding, public_point) = match (key.pk_algo(), key.mpis()) {
            (PublicKeyAlgorithm::Ed25519, mpi::PublicKey::Ed25519 { a }) => {
                (Encoding::Ed25519, a.to_vec())
            }
            #[allow(deprecated)]
            (PublicKeyAlgorithm::EdDSA, mpi::PublicKey::EdDSA { curve, q })
                if *curve == Curve::Ed25519 =>
            {
                let point = q
                    .decode_point(curve)
                    .map_err(|_| "malformed public point")?;
                (Encoding::EdDsa, point.0.to_vec())
            }
            _ => return Ok(None),
        };
        let secret = unencrypted
            .map(|material| {
                let mut bytes = [0u8; 32];
                let found = match material {
                    mpi::SecretKeyMaterial::Ed25519 { x } if x.len() == 32 => {
                        bytes.copy_from_slice(x);
                        true
                    }
                    // `value_padded` would cut a longer scalar silently.
                    mpi::SecretKeyMaterial::EdDSA { scalar } if scalar.value().len() <= 32 => {
                        bytes.copy_from_slice(&scalar.value_padded(32));
                        true
                    }
                    _ => false,
                };
                let key = found.then(|| ed25519_dalek::SigningKey::from_bytes(&bytes));
                bytes.zeroize();
                key
            })
            .ok_or("malformed Ed25519 secret")?;
        if secret.verifying_key().as_bytes()[..] != public_point[..] {
            return Err("the Ed25519 secret does not belong to its public key");
        }
        Ok(Some(Prepared {
            public: key.clone().take_secret().0.role_into_unspecified(),
            secret,
            encoding,
        }))
    }

    /// The key's fingerprint.
    pub(super) fn fingerprint(&self) -> openpgp::Fingerprint {
        self.public.fingerprint()
    }

    /// A signer for one signature stream.
    pub(super) fn signer(&self) -> Borrowed<'_> {
        Borrowed(self)
    }
}

/// A prepared key lent to one `sequoia` signing stream.
#[derive(Debug)]
pub(super) struct Borrowed<'k>(&'k Prepared);

impl openpgp::crypto::Signer for Borrowed<'_> {
    fn public(&self) -> &Key<PublicParts, UnspecifiedRole> {
        &self.0.public
    }

    fn sign(&mut self, _hash: HashAlgorithm, digest: &[u8]) -> openpgp::Result<mpi::Signature> {
        let signature = self.0.secret.sign(digest).to_bytes();
        Ok(match self.0.encoding {
            Encoding::Ed25519 => mpi::Signature::Ed25519 {
                s: Box::new(signature),
            },
            Encoding::EdDsa => mpi::Signature::EdDSA {
                r: mpi::MPI::new(&signature[..32]),
                s: mpi::MPI::new(&signature[32..]),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Prepared;
    use crate::auth::signing::clearsign_with;
    use openpgp::Profile;
    use openpgp::cert::{CertBuilder, CipherSuite};
    use openpgp::parse::Parse;
    use openpgp::parse::stream::{
        MessageLayer, MessageStructure, VerificationHelper, VerifierBuilder,
    };
    use openpgp::policy::StandardPolicy;
    use sequoia_openpgp as openpgp;
    use std::time::{Duration, SystemTime};

    /// Accepts exactly one good signature by `cert`.
    struct OneGood(openpgp::Cert, bool);

    impl VerificationHelper for &mut OneGood {
        fn get_certs(&mut self, _: &[openpgp::KeyHandle]) -> openpgp::Result<Vec<openpgp::Cert>> {
            Ok(vec![self.0.clone()])
        }
        fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
            for layer in structure {
                if let MessageLayer::SignatureGroup { results } = layer {
                    self.1 = results.len() == 1 && results.iter().all(|r| r.is_ok());
                }
            }
            Ok(())
        }
    }

    /// Every Ed25519 signing key of `tsk` makes what sequoia's own
    /// `KeyPair` makes: the same framed text and a signature that verifies
    /// (the bytes differ: sequoia salts every v4 signature at random).
    /// Returns how many keys were compared.
    fn same_as_sequoia(tsk: &openpgp::Cert) -> usize {
        let p = StandardPolicy::new();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000);
        let text = "registry reply\n- dash-escaped line\ntrailing space \n";
        let framed = |s: &str| s[..s.find("-----BEGIN PGP SIGNATURE").expect("sig")].to_string();
        let mut compared = 0;
        for ka in tsk
            .keys()
            .unencrypted_secret()
            .with_policy(&p, at)
            .for_signing()
        {
            let key = ka.key().clone().role_into_unspecified();
            let prepared = Prepared::of(&key).expect("sound").expect("Ed25519");
            let ours = clearsign_with(prepared.signer(), text, at).expect("ours");
            let keypair = key.into_keypair().expect("keypair");
            let theirs = clearsign_with(keypair, text, at).expect("sequoia");
            assert_eq!(framed(&ours), framed(&theirs));
            let mut helper = OneGood(tsk.clone(), false);
            let mut v = VerifierBuilder::from_bytes(ours.as_bytes())
                .expect("parse")
                .with_policy(&p, at, &mut helper)
                .expect("verify");
            let mut body = Vec::new();
            std::io::copy(&mut v, &mut body).expect("read");
            drop(v);
            assert!(helper.1, "our signature verifies");
            assert_eq!(body, text.replace(" \n", "\n").as_bytes());
            compared += 1;
        }
        compared
    }

    #[test]
    fn trent_signs_as_sequoia_does() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/keys/trent.sec.asc");
        let tsk = openpgp::Cert::from_file(path).expect("trent");
        assert!(same_as_sequoia(&tsk) >= 1);
    }

    #[test]
    fn rfc9580_ed25519_keys_sign_as_sequoia_does() {
        let created = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for profile in [Profile::RFC4880, Profile::RFC9580] {
            let (tsk, _) = CertBuilder::new()
                .set_profile(profile)
                .expect("profile")
                .set_cipher_suite(CipherSuite::Cv25519)
                .set_creation_time(created)
                .add_userid("Trent <trent@registry.test>")
                .add_signing_subkey()
                .generate()
                .expect("key");
            assert!(same_as_sequoia(&tsk) >= 1, "{profile:?}");
        }
    }

    #[test]
    fn a_secret_of_another_key_is_refused() {
        let generate = || {
            CertBuilder::new()
                .set_cipher_suite(CipherSuite::Cv25519)
                .add_signing_subkey()
                .generate()
                .expect("key")
                .0
        };
        let signing = |tsk: &openpgp::Cert| {
            let p = StandardPolicy::new();
            let ka = tsk.keys().unencrypted_secret().with_policy(&p, None);
            let key = ka.for_signing().next().expect("signing key");
            key.key().clone().role_into_unspecified()
        };
        let (public, _) = signing(&generate()).take_secret();
        let (_, secret) = signing(&generate()).take_secret();
        let mixed = public.add_secret(secret).0;
        assert!(Prepared::of(&mixed).is_err());
    }

    #[test]
    fn other_algorithms_are_left_to_sequoia() {
        let (tsk, _) = CertBuilder::new()
            .set_cipher_suite(CipherSuite::P256)
            .add_signing_subkey()
            .generate()
            .expect("key");
        for ka in tsk.keys().unencrypted_secret() {
            let key = ka.key().clone().role_into_unspecified();
            assert!(Prepared::of(&key).expect("sound").is_none());
        }
    }
}
