//! The built binary driven as an MTA and an operator would: stdin, exit codes
//! (cli.md section 3), the outbox, and the reply's signature checked against
//! `regmail key export`, with sequoia and with GnuPG.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use sequoia_openpgp::parse::Parse;
use snapbox::cmd::Command;
use std::path::{Path, PathBuf};

const NOW: &str = "2026-11-22T08:15:00Z";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_regmail"))
}

fn regmail(data: &Path) -> Command {
    Command::new(bin())
        .arg("--data-dir")
        .arg(data)
        .arg("--now")
        .arg(NOW)
}

/// An initialised data dir with the registrars alice (1001) and bob (1002).
fn data_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    regmail(d).arg("init").assert().success();
    for (id, name, email, key) in [
        (1001, "Alpine", "hostmaster@alpine-domains.test", "alice"),
        (1002, "Blue", "robot@blue-registrar.test", "bob"),
    ] {
        let key = support::root().join(format!("keys/{key}.pub.asc"));
        regmail(d)
            .args([
                "registrar",
                "add",
                "--id",
                &id.to_string(),
                "--name",
                name,
                "--email",
                email,
                "--key",
            ])
            .arg(key)
            .assert()
            .success();
    }
    tmp
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(support::root().join("fixtures").join(name)).unwrap()
}

/// Pipes a fixture into `process` and expects an exit code.
fn process(d: &Path, name: &str, code: i32) {
    regmail(d)
        .arg("process")
        .stdin(fixture(name))
        .assert()
        .code(code);
}

fn outbox_files(d: &Path) -> Vec<PathBuf> {
    let mut f: Vec<PathBuf> = std::fs::read_dir(d.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    f.sort();
    f
}

#[test]
fn process_as_an_mta_pipe_and_verify_the_reply() {
    let tmp = data_dir();
    let d = tmp.path();
    process(d, "01-perscreate-holder.eml", 0);
    let files = outbox_files(d);
    assert_eq!(files.len(), 1, "one reply in the outbox");
    let reply = std::fs::read(&files[0]).unwrap();

    let exported = regmail(d)
        .args(["key", "export"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let cert = sequoia_openpgp::Cert::from_bytes(&exported).unwrap();
    let (head, body) = support::split_mail(&reply);
    assert!(
        head.contains("To: hostmaster@alpine-domains.test"),
        "{head}"
    );
    assert!(head.contains("Auto-Submitted: auto-replied"));
    let signed = support::verify_body(&body, &cert, support::now()).unwrap();
    assert!(signed.contains("result:       success"), "{signed}");
    assert!(signed.contains("handle:       AM1001-NICAT"));

    // GnuPG verifies the same reply against the exported key.
    let home = tempfile::tempdir().unwrap();
    let key_file = home.path().join("registry.asc");
    let body_file = home.path().join("reply.txt");
    std::fs::write(&key_file, &exported).unwrap();
    std::fs::write(&body_file, &body).unwrap();
    let gpg = |args: &[&str]| {
        std::process::Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args([
                "--batch",
                "--no-autostart",
                "--faked-system-time",
                "20261122T081600!",
            ])
            .args(args)
            .output()
            .expect("gpg is installed on every machine of this project")
    };
    assert!(
        gpg(&["--import", key_file.to_str().unwrap()])
            .status
            .success()
    );
    let verify = gpg(&["--verify", body_file.to_str().unwrap()]);
    assert!(
        verify.status.success(),
        "gpg --verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(String::from_utf8_lossy(&verify.stderr).contains("Good signature"));
}

#[test]
fn exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("not-initialised");
    // Not initialised: not the sender's fault, the MTA keeps the mail.
    regmail(&missing)
        .arg("process")
        .stdin(fixture("01-perscreate-holder.eml"))
        .assert()
        .code(75);
    // Wrong command-line use.
    Command::new(bin()).arg("frobnicate").assert().code(64);
    Command::new(bin())
        .args(["--now", "yesterday", "process"])
        .assert()
        .code(64);
    // Refused, dropped and garbage mail are all handled: 0.
    let tmp = data_dir();
    for name in ["10-tampered-signature.eml", "12-unknown-signer-dropped.eml"] {
        regmail(tmp.path())
            .arg("process")
            .stdin(fixture(name))
            .assert()
            .code(0);
    }
    regmail(tmp.path())
        .arg("process")
        .stdin(b"\x00\xff garbage".to_vec())
        .assert()
        .code(0);
}

#[test]
fn replay_reads_directories_mbox_and_maildir() {
    let tmp = data_dir();
    let d = tmp.path();
    let src = tempfile::tempdir().unwrap();
    // An mbox of two mails and a maildir of one.
    let mut mbox = Vec::new();
    for name in ["01-perscreate-holder.eml", "02-perscreate-tech.eml"] {
        mbox.extend_from_slice(b"From hostmaster@alpine-domains.test Sun Nov 22 08:00:00 2026\n");
        mbox.extend_from_slice(
            &String::from_utf8(fixture(name))
                .unwrap()
                .replace("\r\n", "\n")
                .into_bytes(),
        );
        mbox.push(b'\n');
    }
    std::fs::write(src.path().join("in.mbox"), mbox).unwrap();
    let maildir = src.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(
        maildir.join("new/1763798400.1.host"),
        fixture("03-create-domain.eml"),
    )
    .unwrap();
    let out = regmail(d)
        .arg("replay")
        .arg(src.path().join("in.mbox"))
        .arg(&maildir)
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("summary: 3 mails: success 3"), "{stdout}");
    // A directory, in name order. The three mails above come again: the two
    // whose bytes differ from the mbox copies (line ends) are replayed (stored
    // reply resent), the maildir's very bytes are a duplicate (nothing sent);
    // fixture 07 (03's text in a new mail) is replayed; carol (1003) is not a
    // registrar here and mallory never is: dropped.
    let out = regmail(d)
        .arg("replay")
        .arg(support::root().join("fixtures"))
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout
            .contains("summary: 12 mails: dropped 2, duplicate 1, failed 4, replayed 3, success 2"),
        "{stdout}"
    );
}

#[test]
fn check_changes_nothing() {
    let tmp = data_dir();
    let d = tmp.path();
    let mail = support::root().join("fixtures/01-perscreate-holder.eml");
    let out = regmail(d).arg("check").arg(&mail).assert().code(0);
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("result:       success"));
    // Plain template text, unsigned: checked for the registrar in its header.
    let plain = support::root().join("tests/cases/domain-values/01-every-value-wrong.txt");
    let out = regmail(d).arg("check").arg(&plain).assert().code(1);
    assert!(
        String::from_utf8_lossy(&out.get_output().stdout).contains("error:        5202 line 3")
    );
    // Nothing was written: the same mail still succeeds for real, once.
    process(d, "01-perscreate-holder.eml", 0);
    assert_eq!(outbox_files(d).len(), 1);
    regmail(d)
        .args(["query", "handle", "AM1001-NICAT"])
        .assert()
        .success();
}

/// 12 `process` runs at once on one data dir: each exits 0 or 75 (then the MTA
/// retries); in the end every mail is applied exactly once.
#[test]
fn twelve_parallel_process_runs() {
    let tmp = data_dir();
    let d = tmp.path().to_path_buf();
    let mails: Vec<Vec<u8>> = (0..12).map(|i| signed_perscreate(i % 9)).collect();
    let mut pending: Vec<usize> = (0..mails.len()).collect();
    for _round in 0..5 {
        let children: Vec<(usize, std::process::Child)> = pending
            .iter()
            .map(|&i| {
                let mut c = std::process::Command::new(bin())
                    .arg("--data-dir")
                    .arg(&d)
                    .args(["--now", NOW, "process"])
                    .stdin(std::process::Stdio::piped())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .spawn()
                    .unwrap();
                use std::io::Write;
                c.stdin.take().unwrap().write_all(&mails[i]).unwrap();
                (i, c)
            })
            .collect();
        let mut again = Vec::new();
        for (i, mut c) in children {
            match c.wait().unwrap().code() {
                Some(0) => {}
                Some(75) => again.push(i),
                other => panic!("process exited {other:?}"),
            }
        }
        pending = again;
        if pending.is_empty() {
            break;
        }
    }
    assert!(pending.is_empty(), "mails still deferred after 5 rounds");
    let store =
        regmail::store::Store::open(&d.join("regmail.sqlite"), std::time::Duration::from_secs(5))
            .unwrap();
    let dump = store.dump().unwrap();
    let section = |name: &str| -> Vec<String> {
        dump.split(&format!("[{name}]"))
            .nth(1)
            .unwrap()
            .lines()
            .skip(1)
            .take_while(|l| !l.starts_with('['))
            .map(str::to_string)
            .collect()
    };
    // 9 distinct templates (3 sent twice): 9 persons, 9 transactions, 3 replays, 12 replies.
    assert_eq!(section("persons").len(), 9, "{dump}");
    let journal = section("journal");
    assert_eq!(
        journal
            .iter()
            .filter(|l| l.contains("| transaction |"))
            .count(),
        9
    );
    assert_eq!(
        journal
            .iter()
            .filter(|l| l.contains("| replayed |"))
            .count(),
        3
    );
    assert_eq!(section("outbox").len(), 12);
}

/// A perscreate template for person `n`, signed by alice at 08:00.
fn signed_perscreate(n: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(
        support::root().join("tests/cases/perscreate-nat/01-perscreate.txt"),
    )
    .unwrap()
    .replace("ALP-0001", &format!("PAR-{n:04}"))
    .replace("Anna Muster", &format!("Anna Muster{n}"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.txt");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(bin())
        .args([
            "--now",
            "2026-11-22T08:00:00Z",
            "submit",
            "--registrar",
            "1001",
            "--from",
            "hostmaster@alpine-domains.test",
            "--key",
        ])
        .arg(support::root().join("keys/alice.sec.asc"))
        .arg(&file)
        .assert()
        .success();
    out.get_output().stdout.clone()
}

/// A database that stays locked past the busy timeout: exit 75, nothing written.
#[test]
fn busy_database_exits_75_and_writes_nothing() {
    let tmp = data_dir();
    let d = tmp.path();
    std::fs::write(
        d.join("regmail.toml"),
        "[database]\nbusy_timeout_ms = 300\n",
    )
    .unwrap();
    let mut store =
        regmail::store::Store::open(&d.join("regmail.sqlite"), std::time::Duration::from_secs(5))
            .unwrap();
    let before = store.dump().unwrap();
    store
        .write(|_tx| -> Result<(), regmail::store::StoreError> {
            // The lock is held while another process tries to handle a mail.
            regmail(d)
                .arg("process")
                .stdin(fixture("01-perscreate-holder.eml"))
                .assert()
                .code(75);
            Ok(())
        })
        .unwrap();
    assert_eq!(store.dump().unwrap(), before, "nothing was written");
    // Once the lock is gone the retried mail goes through.
    process(d, "01-perscreate-holder.eml", 0);
}

/// The `sendmail` transport: the reply is piped to the command; a failing
/// command leaves it queued, and `outbox flush` retries it.
#[test]
fn sendmail_transport_delivers_or_keeps_the_mail() {
    let tmp = data_dir();
    let d = tmp.path();
    let (script, spool) = support::fake_sendmail(d);
    let write_script = |ok: bool| {
        let body = if ok {
            format!(
                "#!/bin/sh\necho \"$@\" > {0}/args\ncat > {0}/mail.eml\n",
                spool.display()
            )
        } else {
            "#!/bin/sh\ncat > /dev/null\nexit 1\n".to_string()
        };
        support::install_script(&script, &body);
    };
    write_script(false);
    process(d, "01-perscreate-holder.eml", 0);
    let listing = regmail(d)
        .args(["outbox", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(
        String::from_utf8_lossy(&listing).contains("attempts 1  queued"),
        "{}",
        String::from_utf8_lossy(&listing)
    );
    write_script(true);
    // The back-off is 5 minutes after the first failure.
    Command::new(bin())
        .arg("--data-dir")
        .arg(d)
        .args(["--now", "2026-11-22T08:21:00Z", "outbox", "flush"])
        .assert()
        .success();
    let sent = std::fs::read_to_string(spool.join("mail.eml")).unwrap();
    assert!(
        sent.contains("Subject: REGISTRY: success perscreate AM1001-NICAT [ALP-0010]"),
        "{sent}"
    );
    let args = std::fs::read_to_string(spool.join("args")).unwrap();
    assert!(args.contains("hostmaster@alpine-domains.test"), "{args}");
}

/// `registrar add` with a key owned by another registrar leaves nothing behind.
#[test]
fn registrar_add_is_all_or_nothing() {
    let tmp = data_dir();
    let d = tmp.path();
    let alice = support::root().join("keys/alice.pub.asc");
    let add = |id: &str, key: &Path| {
        regmail(d)
            .args([
                "registrar",
                "add",
                "--id",
                id,
                "--name",
                "X",
                "--email",
                "x@example.test",
                "--key",
            ])
            .arg(key)
            .assert()
    };
    add("1003", &alice).code(1);
    let list = regmail(d)
        .args(["registrar", "list"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(
        !String::from_utf8_lossy(&list).contains("1003"),
        "no half-registered registrar"
    );
    add("1003", &support::root().join("keys/carol.pub.asc")).success();
}

/// `check` of a plain template reports 6001 for a used client-trid, as `process` would.
#[test]
fn check_reports_a_used_client_trid() {
    let tmp = data_dir();
    let d = tmp.path();
    process(d, "01-perscreate-holder.eml", 0);
    let used = support::root().join("tests/cases/create-domain/01-perscreate.txt");
    // The same text: would be a replay, not an error.
    regmail(d).arg("check").arg(&used).assert().code(0);
    let other = tempfile::tempdir().unwrap();
    let file = other.path().join("t.txt");
    std::fs::write(
        &file,
        std::fs::read_to_string(&used)
            .unwrap()
            .replace("Anna Muster", "Otto Other"),
    )
    .unwrap();
    let out = regmail(d).arg("check").arg(&file).assert().code(1);
    assert!(
        String::from_utf8_lossy(&out.get_output().stdout)
            .contains("error:        6001 key \"client-trid\"")
    );
}

/// `registrar credit`, `domain set-status` and `query` with the history.
#[test]
fn credit_set_status_and_history() {
    let tmp = data_dir();
    let d = tmp.path();
    let out = regmail(d)
        .args(["registrar", "credit", "--id", "1001", "25.50"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("balance 25.50 EUR"));
    let out = regmail(d)
        .args(["registrar", "credit", "--id", "1001", "-0.50"])
        .assert()
        .success();
    assert!(String::from_utf8_lossy(&out.get_output().stdout).contains("balance 25.00 EUR"));
    regmail(d)
        .args(["registrar", "credit", "--id", "1001", "12,50"])
        .assert()
        .code(1);
    // Never below zero, never an overflow.
    regmail(d)
        .args(["registrar", "credit", "--id", "1001", "-100"])
        .assert()
        .code(1);
    regmail(d)
        .args([
            "registrar",
            "credit",
            "--id",
            "1001",
            "92233720368547758.99",
        ])
        .assert()
        .code(1);
    for name in [
        "01-perscreate-holder.eml",
        "02-perscreate-tech.eml",
        "03-create-domain.eml",
    ] {
        process(d, name, 0);
    }
    regmail(d)
        .args([
            "domain",
            "set-status",
            "muster-handel.at",
            "serverLock",
            "on",
        ])
        .assert()
        .success();
    regmail(d)
        .args(["domain", "set-status", "nirgendwo.at", "serverLock", "on"])
        .assert()
        .code(1);
    let out = regmail(d)
        .args(["query", "domain", "muster-handel.at"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(text.contains("status:       serverLock"), "{text}");
    assert!(text.contains("create by 1001"), "{text}");
    assert!(text.contains("set-status by registry"), "{text}");
}

/// `check` of a plain template for an unknown registrar while billing is on:
/// a refusal, not a database error.
#[test]
fn check_with_an_unknown_registrar_and_billing() {
    let tmp = data_dir();
    let d = tmp.path();
    std::fs::write(
        d.join("regmail.toml"),
        "[profiles.at.prices]\ncreate = 1000\n",
    )
    .unwrap();
    let text =
        std::fs::read_to_string(support::root().join("tests/cases/create-domain/03-create.txt"))
            .unwrap()
            .replace(
                "<registrar-id>1001</registrar-id>",
                "<registrar-id>4242</registrar-id>",
            );
    let file = d.join("t.txt");
    std::fs::write(&file, text).unwrap();
    let out = regmail(d).arg("check").arg(&file).assert().code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("result:       failed"), "{stdout}");
    assert!(stdout.contains("error:        4009"), "{stdout}");
}

fn stdout_of(d: &Path, now: &str, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("--data-dir")
        .arg(d)
        .arg("--now")
        .arg(now)
        .args(args)
        .assert()
        .success();
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

/// The lifecycle through the binary: a transfer waits for the holder; a
/// query at a later `--now` projects the outcome without writing it; `tick`
/// sends the due reminder once; a written consent executes the transfer.
#[test]
fn tick_pending_and_projected_query() {
    let tmp = data_dir();
    let d = tmp.path();
    for name in [
        "01-perscreate-holder.eml",
        "02-perscreate-tech.eml",
        "03-create-domain.eml",
    ] {
        process(d, name, 0);
    }
    let pairs = vec![("domain".to_string(), "muster-handel.at".to_string())];
    let text = support::scenario::template(1002, "BLU-7001", "regtransfer", &pairs);
    let file = d.join("transfer.txt");
    std::fs::write(&file, text).unwrap();
    let key = support::root().join("keys/bob.sec.asc");
    let mail = regmail(d)
        .args([
            "submit",
            "--registrar",
            "1002",
            "--from",
            "robot@blue-registrar.test",
            "--key",
        ])
        .arg(&key)
        .arg(&file)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    regmail(d).arg("process").stdin(mail).assert().code(0);
    let list = stdout_of(d, NOW, &["pending", "list"]);
    assert!(
        list.contains("muster-handel.at") && list.contains("holder-confirmation"),
        "{list}"
    );
    // 23 days later the request has expired: a read shows it, and writes nothing.
    let later = "2026-12-15T08:15:00Z";
    let q = stdout_of(d, later, &["query", "domain", "muster-handel.at"]);
    assert!(
        q.contains("status:       active") && q.contains("expired by registry"),
        "{q}"
    );
    let list = stdout_of(d, NOW, &["pending", "list"]);
    assert!(
        list.contains("muster-handel.at"),
        "the projection wrote: {list}"
    );
    let q = stdout_of(d, NOW, &["query", "domain", "muster-handel.at"]);
    assert!(q.contains("status:       pendingTransfer"), "{q}");
    // The first reminder is due after 5 days (to the holder, and both
    // registrars are told); a second tick sends nothing.
    let before = outbox_files(d).len();
    let reminder = "2026-11-27T08:15:00Z";
    let t = stdout_of(d, reminder, &["tick"]);
    assert!(t.contains("3 notification mail(s) queued"), "{t}");
    assert_eq!(outbox_files(d).len(), before + 3);
    let t = stdout_of(d, reminder, &["tick"]);
    assert!(
        t.contains("0 notification mail(s) queued, 0 delivered"),
        "{t}"
    );
    assert_eq!(outbox_files(d).len(), before + 3);
    // The operator records the holder's fax.
    let list = stdout_of(d, reminder, &["pending", "list"]);
    let id = list
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let out = stdout_of(
        d,
        reminder,
        &["pending", "confirm", &id, "--note", "fax 17"],
    );
    assert!(out.contains("confirmed"), "{out}");
    let q = stdout_of(d, reminder, &["query", "domain", "muster-handel.at"]);
    assert!(
        q.contains("registrar:    1002") && q.contains("(fax 17)"),
        "{q}"
    );
    regmail(d)
        .args(["pending", "confirm", &id, "--note", "again"])
        .assert()
        .code(1);
    regmail(d)
        .args(["qc", "accept", "muster-handel.at"])
        .assert()
        .code(1);
    assert!(stdout_of(d, reminder, &["qc", "list"]).is_empty());
}
