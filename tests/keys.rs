//! Registrar keys over time (issue 5, item 7), driven through the binary as
//! an operator would: rotation with an overlap period (`registrar key add
//! --retire`), a certificate update that adds a revocation (merged, so it
//! applies and cannot be undone by the old copy), and the warning mail before
//! a key expires. Expired and revoked keys at signing time are the golden
//! cases `expired-revoked-4013` and `subkey-expired-4013`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::{DateTime, Duration, Utc};
use openpgp::cert::{CertBuilder, CipherSuite};
use openpgp::serialize::SerializeInto;
use regmail::app::signed_mail;
use regmail::auth::SigningKey;
use regmail::clock::FixedClock;
use sequoia_openpgp as openpgp;
use snapbox::cmd::Command;
use std::path::Path;

const ALICE: &str = "hostmaster@alpine-domains.test";

fn at(days: i64) -> DateTime<Utc> {
    support::now() + Duration::days(days)
}

fn regmail(d: &Path, now: DateTime<Utc>) -> Command {
    Command::new(env!("CARGO_BIN_EXE_regmail"))
        .arg("--data-dir")
        .arg(d)
        .arg("--now")
        .arg(now.to_rfc3339())
}

fn stdout(cmd: Command) -> String {
    let out = cmd.assert().success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

/// A data dir with registrar 1001 registered with `cert` (armoured file).
fn registry_with(d: &Path, cert: &Path) {
    regmail(d, at(0)).arg("init").assert().success();
    regmail(d, at(0))
        .args(["registrar", "add", "--id", "1001", "--name", "Alpine"])
        .args(["--email", ALICE, "--key"])
        .arg(cert)
        .assert()
        .success();
}

/// A new Ed25519 certificate, created a minute before `created`, valid for
/// `days` (None: no expiry); returns the secret key, the public certificate
/// file, and its revocation certificate.
fn new_key(
    dir: &Path,
    name: &str,
    created: DateTime<Utc>,
    days: Option<u64>,
) -> (SigningKey, std::path::PathBuf, openpgp::Packet) {
    let mut b = CertBuilder::new()
        .set_cipher_suite(CipherSuite::Cv25519)
        .set_creation_time(std::time::SystemTime::from(created - Duration::minutes(1)))
        .add_userid(format!("{name} <{ALICE}>"))
        .add_signing_subkey();
    if let Some(days) = days {
        b = b.set_validity_period(std::time::Duration::from_secs(days * 86_400));
    }
    let (cert, rev) = b.generate().unwrap();
    let secret = dir.join(format!("{name}.sec.asc"));
    std::fs::write(&secret, cert.as_tsk().armored().to_vec().unwrap()).unwrap();
    let public = dir.join(format!("{name}.pub.asc"));
    std::fs::write(&public, cert.armored().to_vec().unwrap()).unwrap();
    (SigningKey::load(&secret).unwrap(), public, rev.into())
}

fn template(trid: &str) -> String {
    support::perscreate_text(1001, trid, "anna@example.at")
}

/// Sends a template signed by `key` at `now`; returns the codes of the
/// newest reply in the outbox.
fn send(d: &Path, key: &SigningKey, trid: &str, now: DateTime<Utc>) -> String {
    let mail = signed_mail(key, 1001, ALICE, &template(trid), &FixedClock(now)).unwrap();
    regmail(d, now).arg("process").stdin(mail).assert().code(0);
    newest_reply(d)
}

fn newest_reply(d: &Path) -> String {
    let mut files: Vec<_> = std::fs::read_dir(d.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let text = std::fs::read_to_string(files.last().unwrap()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("result:") || l.starts_with("error:") || l.starts_with("event:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn rotation_keeps_the_old_key_for_the_overlap_only() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (old, old_pub, _) = new_key(d, "old", at(0), None);
    registry_with(d, &old_pub);
    let (new, new_pub, _) = new_key(d, "new", at(0), None);
    let out = stdout(
        regmail(d, at(0))
            .args(["registrar", "key", "add", "--id", "1001", "--key"])
            .arg(&new_pub)
            .args(["--retire", &old.fingerprint(), "--overlap-days", "7"]),
    );
    assert!(out.contains("retires 2026-11-29T08:15:00.000Z"), "{out}");
    assert!(send(d, &old, "ROT-1", at(1)).contains("result:       success"));
    assert!(send(d, &new, "ROT-2", at(1)).contains("result:       success"));
    let refused = send(d, &old, "ROT-3", at(8));
    assert!(refused.contains("error:        4013"), "{refused}");
    assert!(refused.contains("retired"), "{refused}");
    assert!(send(d, &new, "ROT-4", at(8)).contains("result:       success"));
    let list = stdout(regmail(d, at(8)).args(["registrar", "list"]));
    assert!(list.contains("retires 2026-11-29"), "{list}");
    // Retiring a key that is not the registrar's is refused.
    regmail(d, at(8))
        .args(["registrar", "key", "add", "--id", "1001", "--key"])
        .arg(&new_pub)
        .args(["--retire", "0000000000000000000000000000000000000000"])
        .assert()
        .failure();
}

#[test]
fn an_update_adding_a_revocation_is_applied_and_stays() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (key, public, revocation) = new_key(d, "anna", at(0), None);
    registry_with(d, &public);
    assert!(send(d, &key, "REV-1", at(0)).contains("result:       success"));
    // The registrar publishes its revocation: the operator adds the update.
    let cert = openpgp::Cert::from_bytes(&std::fs::read(&public).unwrap()).unwrap();
    let revoked = cert.insert_packets(revocation).unwrap().0;
    let revoked_file = d.join("revoked.pub.asc");
    std::fs::write(&revoked_file, revoked.armored().to_vec().unwrap()).unwrap();
    regmail(d, at(1))
        .args(["registrar", "key", "add", "--id", "1001", "--key"])
        .arg(&revoked_file)
        .assert()
        .success();
    let refused = send(d, &key, "REV-2", at(1) + Duration::minutes(5));
    assert!(refused.contains("error:        4013"), "{refused}");
    let list = stdout(regmail(d, at(1)).args(["registrar", "list"]));
    assert!(list.contains("REVOKED"), "{list}");
    // Adding the old, unrevoked copy again cannot undo the revocation.
    regmail(d, at(2))
        .args(["registrar", "key", "add", "--id", "1001", "--key"])
        .arg(&public)
        .assert()
        .success();
    let still = send(d, &key, "REV-3", at(2) + Duration::minutes(5));
    assert!(still.contains("error:        4013"), "{still}");
}

use openpgp::parse::Parse;

#[test]
fn a_registrar_is_warned_once_before_its_key_expires() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (_, public, _) = new_key(d, "short", at(0), Some(40));
    registry_with(d, &public);
    let count = |d: &Path| std::fs::read_dir(d.join("outbox")).unwrap().count();
    // 40 days of validity, warned 30 days before: nothing yet at day 9.
    regmail(d, at(9)).arg("tick").assert().success();
    assert_eq!(count(d), 0);
    regmail(d, at(11)).arg("tick").assert().success();
    assert_eq!(count(d), 1);
    let warning = newest_reply(d);
    assert!(
        warning.contains("event:        key-expiry-warning"),
        "{warning}"
    );
    regmail(d, at(12)).arg("tick").assert().success();
    regmail(d, at(39)).arg("tick").assert().success();
    assert_eq!(count(d), 1, "one warning per key and expiry");
    // After the expiry there is nothing left to warn of.
    regmail(d, at(41)).arg("tick").assert().success();
    assert_eq!(count(d), 1);
}
