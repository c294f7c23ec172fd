//! Shared helpers of the hardening tests (`tests/crash.rs`, `tests/faults.rs`,
//! `tests/concurrency.rs`): a test registry driven through the built binary,
//! signed mails made in-process with the test keys, a seeded generator, and
//! the exactly-once invariants read straight from the database.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use regmail::auth::SigningKey;
use regmail::clock::FixedClock;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod db;

pub use db::*;

/// The instant every run of the binary is pinned to.
pub const NOW: &str = "2026-11-22T08:15:00Z";
/// When the registrars signed their mails.
pub const SIGNED_AT: &str = "2026-11-22T08:00:00Z";
/// When a registrar signed a template again (a replay with other bytes).
pub const RESIGNED_AT: &str = "2026-11-22T08:05:00Z";

/// A test registrar of `keys/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registrar {
    pub id: u32,
    pub key: &'static str,
    pub email: &'static str,
    pub name: &'static str,
    /// Prefix of its client-trids.
    pub prefix: &'static str,
}

pub const ALICE: Registrar = Registrar {
    id: 1001,
    key: "alice",
    email: "hostmaster@alpine-domains.test",
    name: "Alpine",
    prefix: "ALP",
};

pub const BOB: Registrar = Registrar {
    id: 1002,
    key: "bob",
    email: "robot@blue-registrar.test",
    name: "Blue",
    prefix: "BLU",
};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_regmail"))
}

/// `regmail --data-dir DIR --now NOW`.
pub fn regmail(dir: &Path) -> Command {
    regmail_at(dir, NOW)
}

/// `regmail --data-dir DIR --now AT`.
pub fn regmail_at(dir: &Path, at: &str) -> Command {
    let mut c = Command::new(bin());
    c.arg("--data-dir").arg(dir).arg("--now").arg(at);
    c
}

/// Runs `cmd` with `stdin` (none: empty), capturing its output.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A child that fails early may not read its input: ignore a broken pipe.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

/// Asserts the exit code, showing the output otherwise.
pub fn expect_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `regmail process` of one mail; returns the output after checking the exit code.
pub fn process(dir: &Path, mail: &[u8], code: i32) -> Output {
    let out = run(regmail(dir).arg("process"), mail);
    expect_code(&out, code, "process");
    out
}

/// An initialised data dir with the registrars alice (1001) and bob (1002).
pub fn data_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    init_data_dir(tmp.path());
    tmp
}

/// Initialises `dir` and registers alice and bob.
pub fn init_data_dir(dir: &Path) {
    expect_code(&run(regmail(dir).arg("init"), b""), 0, "init");
    for r in [ALICE, BOB] {
        let key = root().join(format!("keys/{}.pub.asc", r.key));
        let out = run(
            regmail(dir)
                .args(["registrar", "add", "--id", &r.id.to_string()])
                .args(["--name", r.name, "--email", r.email, "--key"])
                .arg(key),
            b"",
        );
        expect_code(&out, 0, "registrar add");
    }
}

/// Copies an idle data dir (no `-wal`: the last connection checkpointed it).
pub fn copy_data_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_file() {
            assert!(!name.ends_with("-wal"), "copying a data dir in use: {name}");
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// A registrar with its secret test key, making signed mails in-process.
#[derive(Debug)]
pub struct Signer {
    pub registrar: Registrar,
    key: SigningKey,
}

impl Signer {
    pub fn new(registrar: Registrar) -> Signer {
        let key =
            SigningKey::load(&root().join(format!("keys/{}.sec.asc", registrar.key))).unwrap();
        Signer { registrar, key }
    }

    /// `text` clearsigned at `at` into a mail from the registrar's address.
    pub fn mail(&self, text: &str, at: &str) -> Vec<u8> {
        let clock = FixedClock(instant(at));
        regmail::app::signed_mail(
            &self.key,
            self.registrar.id,
            self.registrar.email,
            text,
            &clock,
        )
        .unwrap()
    }
}

pub fn instant(at: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// A person's name made of letters only, distinct for each `n`.
pub fn letters(mut n: usize) -> String {
    let mut s = String::new();
    loop {
        s.insert(0, char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return s;
        }
    }
}

fn regframe(r: &Registrar, transaction: &str, client_trid: &str, object: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n<regframe>\n<regheader>\n\
         <version>1.1</version>\n<transaction>{transaction}</transaction>\n<count>1</count>\n\
         <accept-language>en</accept-language>\n<registrar-id>{}</registrar-id>\n\
         <client-trid>{client_trid}</client-trid>\n</regheader>\n<regbody><![CDATA[\n\
         Template Version: 5.0\n\n{object}source:         AT-DOM\n\n\
         currentNicAtTermsAndConditionsAccepted: Y\n]]></regbody>\n</regframe>\n",
        r.id
    )
}

/// The client-trid of the `n`-th perscreate of `r`.
pub fn perscreate_trid(r: &Registrar, n: usize) -> String {
    format!("{}-P{n:05}", r.prefix)
}

/// A valid perscreate (a new person, handle AUTO) with client-trid [`perscreate_trid`].
pub fn perscreate(r: &Registrar, n: usize) -> String {
    person(r, n, "person@example.at")
}

/// A perscreate refused for a bad e-mail value (5208): it still uses up its client-trid.
pub fn perscreate_invalid(r: &Registrar, n: usize) -> String {
    person(r, n, "not-an-address")
}

fn person(r: &Registrar, n: usize, email: &str) -> String {
    let object = format!(
        "nic-hdl:        AUTO\ncommand:        create\ntype:           NAT\n\
         personname:     Anna {} {}\nstreet address: Hauptstrasse 1\npostal code:    1010\n\
         city:           Wien\ncountry:        AT\nphone:          +43 1 5056416\n\
         e-mail:         {email}\n",
        r.name,
        letters(n)
    );
    regframe(r, "perscreate", &perscreate_trid(r, n), &object)
}

/// A domain create with two nameservers outside the zone (no glue needed).
pub fn domain_create(
    r: &Registrar,
    client_trid: &str,
    domain: &str,
    registrant: &str,
    tech: &str,
) -> String {
    let object = format!(
        "domain:         {domain}\ncommand:        create\nregistrant:     {registrant}\n\
         tech-c:         {tech}\nnserver:        ns1.example.net\nnserver:        ns2.example.net\n"
    );
    regframe(r, "create", client_trid, &object)
}

/// A mail from a registrar's address with no signed template: answered (4xxx).
pub fn unsigned_mail(r: &Registrar, n: usize) -> Vec<u8> {
    format!(
        "From: {}\nTo: robot@registry.example\nSubject: REGISTRAR: question {n}\n\
         Message-ID: <unsigned-{n}@test.invalid>\n\nplease create person {n}\n",
        r.email
    )
    .into_bytes()
}

/// A mail from nobody we know: journaled and dropped, never answered.
pub fn stranger_mail(n: usize) -> Vec<u8> {
    format!(
        "From: someone@stranger.test\nTo: robot@registry.example\nSubject: hello {n}\n\
         Message-ID: <stranger-{n}@test.invalid>\n\nbuy cheap domains {n}\n"
    )
    .into_bytes()
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A small seeded generator (xorshift64*): the same seed, the same choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
