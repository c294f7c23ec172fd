//! `cargo bench --bench keyring`: the cost of finding a mail's signer.
//!
//! Compares (a) parsing a whole keyring of N registrar certificates, as a
//! keyring-file design would per mail, with (b) regmail's lookup: the
//! signature's issuer key handle -> the one stored certificate -> parse it.
//! Prints the figures and their ratio, measured in the same run.

use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::parse::Parse;
use openpgp::serialize::{Marshal, SerializeInto};
use regmail::auth::parse_certificate;
use regmail::store::Store;
use sequoia_openpgp as openpgp;
use std::time::{Duration, Instant};

const CERTS: u32 = 1000;

fn time<T>(rounds: u32, mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(f());
    }
    start.elapsed() / rounds
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut store = Store::open_in_memory()?;
    let mut keyring = Vec::new();
    let mut handles = Vec::new();
    for id in 1..=CERTS {
        let (cert, _) = CertBuilder::new()
            .set_cipher_suite(CipherSuite::Cv25519)
            .add_userid(format!("registrar {id} <r{id}@example.test>"))
            .add_signing_subkey()
            .generate()?;
        cert.serialize(&mut keyring)?;
        let parsed = parse_certificate(&cert.to_vec()?).map_err(|e| e.to_string())?;
        store.add_registrar(
            id,
            "r",
            &format!("r{id}@example.test"),
            "2026-01-01T00:00:00Z",
        )?;
        let _ = store.add_certificate(
            id,
            &parsed.fingerprint,
            &parsed.bytes,
            &parsed.key_handles,
            "2026-01-01T00:00:00Z",
        )?;
        handles.push(parsed.key_handles[0].clone());
    }
    let whole = time(5, || {
        openpgp::cert::CertParser::from_bytes(&keyring).map(|p| p.count())
    });
    let mut i = 0;
    let lookup = time(2000, || {
        i = (i + 1) % handles.len();
        let rows = store
            .certs_for_key_handles(std::slice::from_ref(&handles[i]))
            .unwrap_or_default();
        rows.first()
            .map(|r| openpgp::Cert::from_bytes(&r.cert).is_ok())
    });
    println!("keyring of {CERTS} certificates");
    println!(
        "  parse the whole keyring:           {:>10.3} ms",
        whole.as_secs_f64() * 1e3
    );
    println!(
        "  look up by key handle, parse one:  {:>10.3} ms",
        lookup.as_secs_f64() * 1e3
    );
    println!(
        "  ratio:                             {:>10.0}x",
        whole.as_secs_f64() / lookup.as_secs_f64()
    );
    Ok(())
}
