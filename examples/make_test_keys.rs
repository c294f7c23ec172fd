//! Makes the sequoia-generated TEST keys in `keys/` (never use them for real):
//! `cargo run --example make_test_keys -- keys`. The GnuPG-made keys (bob,
//! carol) come from `keys/make-gpg-keys.sh`. Keys are random, so existing key
//! files are kept: delete one to make it anew (then re-sign its fixtures).

use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::serialize::SerializeInto;
use openpgp::types::{KeyFlags, ReasonForRevocation};
use sequoia_openpgp as openpgp;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn at(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix)
}

const JAN_1_2026: u64 = 1_767_225_600;
const NOV_22_2026_0805: u64 = 1_795_334_700;
const NOV_22_2026_0810: u64 = 1_795_335_000;

/// True if the key exists already: existing keys are kept (fixtures depend on them).
fn exists(dir: &Path, name: &str) -> bool {
    dir.join(format!("{name}.sec.asc")).exists()
}

fn write(dir: &Path, name: &str, cert: &openpgp::Cert) -> openpgp::Result<()> {
    std::fs::write(
        dir.join(format!("{name}.sec.asc")),
        cert.as_tsk().armored().to_vec()?,
    )?;
    std::fs::write(
        dir.join(format!("{name}.pub.asc")),
        cert.armored().to_vec()?,
    )?;
    println!("{name}: {}", cert.fingerprint());
    Ok(())
}

fn builder(uid: &str) -> CertBuilder<'static> {
    CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(at(JAN_1_2026))
        .add_userid(uid)
        .add_signing_subkey()
}

fn main() -> openpgp::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "keys".into());
    let dir = Path::new(&dir);
    for (name, uid) in [
        (
            "alice",
            "Alice Example (regmail TEST key) <alice@alpine-domains.test>",
        ),
        (
            "frank",
            "Frank Example (regmail TEST key) <frank@frozen-names.test>",
        ),
        (
            "mallory",
            "Mallory Example (regmail TEST key) <mallory@attacker.test>",
        ),
        (
            "trent",
            "Example Registry (regmail TEST key) <robot@registry.example>",
        ),
    ] {
        if exists(dir, name) {
            continue;
        }
        let (cert, _) = builder(uid).generate()?;
        write(dir, name, &cert)?;
    }
    if !exists(dir, "dave") {
        dave(dir)?;
    }
    if !exists(dir, "erin") {
        erin(dir)?;
    }
    if !exists(dir, "heidi") {
        heidi(dir)?;
    }
    Ok(())
}

fn dave(dir: &Path) -> openpgp::Result<()> {
    // Dave's key expires at 2026-11-22T08:05:00Z: valid when the fixture was
    // signed (08:00), expired when it is processed (08:15): 4013.
    let (dave, _) = builder("Dave Example (regmail TEST key) <dave@dusty-domains.test>")
        .set_validity_period(Duration::from_secs(NOV_22_2026_0805 - JAN_1_2026))
        .generate()?;
    write(dir, "dave", &dave)
}

fn erin(dir: &Path) -> openpgp::Result<()> {
    // Erin's key is revoked (retired) at 08:10, after signing, before processing.
    let (erin, _) =
        builder("Erin Example (regmail TEST key) <erin@eager-names.test>").generate()?;
    let mut signer = erin
        .primary_key()
        .key()
        .clone()
        .parts_into_secret()?
        .into_keypair()?;
    let rev = openpgp::cert::CertRevocationBuilder::new()
        .set_signature_creation_time(at(NOV_22_2026_0810))?
        .set_reason_for_revocation(ReasonForRevocation::KeyRetired, b"rotated")?
        .build(&mut signer, &erin, None)?;
    let erin = erin.insert_packets(rev)?.0;
    write(dir, "erin", &erin)
}

fn heidi(dir: &Path) -> openpgp::Result<()> {
    // Heidi's certificate stays valid, but its signing subkey expires at
    // 2026-11-22T08:05:00Z: signed at 08:00, processed at 08:15: 4013.
    let (heidi, _) = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(at(JAN_1_2026))
        .add_userid("Heidi Example (regmail TEST key) <heidi@harbour-names.test>")
        .add_subkey(
            KeyFlags::empty().set_signing(),
            Some(Duration::from_secs(NOV_22_2026_0805 - JAN_1_2026)),
            None,
        )
        .generate()?;
    write(dir, "heidi", &heidi)
}
