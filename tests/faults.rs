//! Faults that are not the sender's: each one makes `regmail` exit 75
//! (EX_TEMPFAIL, the MTA keeps the mail and retries) with the registry
//! unchanged, or, for delivery, commits the answer and defers the mail for a
//! later attempt. For each fault the test compares the database (the
//! product's dump, the files of the data dir) before and after, then removes
//! the fault and shows the same mail now handled exactly once (one journal
//! row for its raw SHA-256, one reply), and a second delivery of it a
//! duplicate.
//!
//! - read-only database: the child runs as uid/gid 65534 over a data dir it
//!   may read but not write (as root, modes do not stop us; not as root,
//!   plain `chmod a-w` does it);
//! - read-only outbox directory: the answer is committed, the file transport
//!   fails, the mail waits and `tick` delivers it once;
//! - database busy past `busy_timeout_ms`: `process`, `replay` and `tick`;
//! - disk full: the child runs under `ulimit -f 1` (writes past 512 bytes
//!   fail with EFBIG, as on a full disk), once when even SQLite's shared
//!   memory file cannot be made, once when it exists and the WAL write of
//!   the mail's transaction fails;
//! - failing `sendmail` transport: `process` exits 0, the reply waits with a
//!   back-off, `tick` before it sends nothing, a failing `tick` defers again,
//!   a `tick` with a working transport delivers it exactly once.
//!
//! Nothing here is opt-in: `cargo test --test faults`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hardening;
mod support;

use hardening::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;

/// The unprivileged user the read-only children run as (nobody).
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Sets `dir_mode` on the data dir and its `outbox/`, `file_mode` on every file.
fn chmod_data_dir(d: &Path, dir_mode: u32, file_mode: u32) {
    for e in std::fs::read_dir(d).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            chmod(&e.path(), file_mode);
        }
    }
    if d.join("outbox").exists() {
        chmod(&d.join("outbox"), dir_mode);
    }
    chmod(d, dir_mode);
}

/// After the fault is gone: the mail succeeds exactly once, its reply is
/// delivered as a file, and the same bytes again are a duplicate.
fn succeeds_once(d: &Path, mail: &[u8]) {
    process(d, mail, 0);
    let db = read_db(d);
    assert_invariants(d, &db, "after the fault");
    let row = assert_handled_once(&db, mail, "success");
    let reply = db.outbox_of(&row.server_trid)[0].clone();
    assert!(reply.delivered.is_some(), "{reply:?}");
    assert!(d.join("outbox").join(eml_name(&reply)).exists());
    process(d, mail, 0);
    let again = read_db(d);
    assert_handled_once(&again, mail, "success");
    assert_eq!(
        again.journal.len(),
        db.journal.len(),
        "a duplicate is not journaled"
    );
    assert_eq!(
        again.outbox.len(),
        db.outbox.len(),
        "a duplicate is not answered"
    );
}

/// A perscreate of alice and a directory holding it (for `replay`).
fn one_mail(n: usize) -> (Vec<u8>, tempfile::TempDir) {
    let mail = Signer::new(ALICE).mail(&perscreate(&ALICE, n), SIGNED_AT);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mail.eml"), &mail).unwrap();
    (mail, dir)
}

#[test]
fn read_only_database_exits_75_and_writes_nothing() {
    let tmp = data_dir();
    let d = tmp.path();
    let (mail, mails) = one_mail(1);
    let before = dump(d);
    let root = is_root();
    if root {
        // Readable by nobody, writable by root only (the key too, for this test:
        // the child must get as far as the database).
        chmod_data_dir(d, 0o755, 0o644);
        chmod(mails.path(), 0o755);
        chmod(&mails.path().join("mail.eml"), 0o644);
    } else {
        chmod_data_dir(d, 0o555, 0o444);
    }
    let files = file_hashes(d);
    let replay_arg = mails.path().to_path_buf();
    let runs: [(&[&str], &[u8]); 3] = [
        (&["process"], &mail),
        (&["replay", replay_arg.to_str().unwrap()], b""),
        (&["tick"], b""),
    ];
    for (args, stdin) in runs {
        let mut cmd = regmail(d);
        cmd.args(args);
        if root {
            cmd.uid(NOBODY).gid(NOBODY);
        }
        let out = run(&mut cmd, stdin);
        expect_code(&out, 75, &format!("{args:?} on a read-only database"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("readonly"), "{args:?}: {stderr}");
        assert_eq!(file_hashes(d), files, "{args:?} wrote a file");
    }
    chmod_data_dir(d, 0o755, 0o644);
    chmod(&d.join(regmail::app::KEY_FILE), 0o600);
    assert_eq!(dump(d), before, "nothing was written");
    succeeds_once(d, &mail);
}

#[test]
fn read_only_outbox_directory_defers_the_reply() {
    let tmp = data_dir();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("outbox")).unwrap();
    let (mail, _mails) = one_mail(2);
    let root = is_root();
    if root {
        // nobody owns the data dir and the database, not the outbox.
        chmod(d, 0o755);
        std::os::unix::fs::chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::os::unix::fs::chown(e.path(), Some(NOBODY), Some(NOBODY)).unwrap();
            }
        }
        chmod(&d.join("outbox"), 0o755);
    } else {
        chmod(&d.join("outbox"), 0o555);
    }
    let mut cmd = regmail(d);
    cmd.arg("process");
    if root {
        cmd.uid(NOBODY).gid(NOBODY);
    }
    let out = run(&mut cmd, &mail);
    expect_code(&out, 0, "process with a read-only outbox directory");
    if !root {
        chmod(&d.join("outbox"), 0o755);
    }
    let db = read_db(d);
    assert_invariants(d, &db, "after a failed delivery");
    let row = assert_handled_once(&db, &mail, "success");
    let reply = db.outbox_of(&row.server_trid)[0].clone();
    assert_eq!(reply.delivered, None);
    assert_eq!(reply.attempts, 1);
    assert!(reply.last_error.is_some());
    assert_eq!(
        reply.next_attempt, "2026-11-22T08:20:00.000Z",
        "5 minutes back-off"
    );
    assert!(outbox_dir(d).files.is_empty());
    // The next tick after the back-off delivers it, once.
    for (at, delivered) in [("2026-11-22T08:21:00Z", 1), ("2026-11-22T09:00:00Z", 0)] {
        let out = run(regmail_at(d, at).arg("tick"), b"");
        expect_code(&out, 0, "tick");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!(", {delivered} delivered")),
            "{stdout}"
        );
    }
    let db = read_db(d);
    assert_invariants(d, &db, "after the tick");
    assert!(db.outbox.iter().all(|o| o.delivered.is_some()));
    assert_eq!(outbox_dir(d).files.len(), 1);
    process(d, &mail, 0);
    assert_eq!(read_db(d).outbox.len(), db.outbox.len(), "a duplicate");
}

#[test]
fn busy_database_exits_75_for_process_replay_and_tick() {
    let tmp = data_dir();
    let d = tmp.path();
    std::fs::write(
        d.join("regmail.toml"),
        "[database]\nbusy_timeout_ms = 300\n",
    )
    .unwrap();
    let (mail, mails) = one_mail(3);
    let before = dump(d);
    let lock = open_db(d);
    lock.execute_batch("BEGIN IMMEDIATE").unwrap();
    let runs: [(&[&str], &[u8]); 3] = [
        (&["process"], &mail),
        (&["replay", mails.path().to_str().unwrap()], b""),
        (&["tick"], b""),
    ];
    for (args, stdin) in runs {
        let t = std::time::Instant::now();
        let out = run(regmail(d).args(args), stdin);
        expect_code(&out, 75, &format!("{args:?} on a busy database"));
        assert!(
            t.elapsed() >= std::time::Duration::from_millis(300),
            "{args:?} gave up before the busy timeout"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("busy"), "{args:?}: {stderr}");
    }
    lock.execute_batch("ROLLBACK").unwrap();
    drop(lock);
    assert_eq!(dump(d), before, "nothing was written");
    assert!(outbox_dir(d).files.is_empty());
    succeeds_once(d, &mail);
    let out = run(regmail(d).arg("tick"), b"");
    expect_code(&out, 0, "tick");
    let out = run(regmail(d).arg("replay").arg(mails.path()), b"");
    expect_code(&out, 0, "replay");
    assert!(String::from_utf8_lossy(&out.stdout).contains("summary: 1 mails: duplicate 1"));
}

/// `regmail --data-dir D --now NOW ARGS` with file writes limited to 512 bytes
/// (`ulimit -f 1`; SIGXFSZ ignored, so a write past it fails with EFBIG).
fn limited(d: &Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new("sh");
    c.arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1 && exec \"$0\" \"$@\"")
        .arg(bin())
        .arg("--data-dir")
        .arg(d)
        .args(["--now", NOW])
        .args(args);
    c
}

#[test]
fn disk_full_before_the_database_opens_exits_75() {
    let tmp = data_dir();
    let d = tmp.path();
    let (mail, _mails) = one_mail(4);
    let before = dump(d);
    let files = file_hashes(d);
    let out = run(&mut limited(d, &["process"]), &mail);
    expect_code(&out, 75, "process on a full disk");
    eprintln!(
        "full disk, no shared memory file: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(file_hashes(d), files, "a file of the data dir changed");
    assert_eq!(dump(d), before, "nothing was written");
    succeeds_once(d, &mail);
}

#[test]
fn disk_full_at_commit_exits_75_and_writes_nothing() {
    let tmp = data_dir();
    let d = tmp.path();
    let (mail, _mails) = one_mail(5);
    let before = dump(d);
    // Another connection keeps SQLite's files open (as a parallel run would):
    // the shared memory file exists at its full size; the WAL is empty, so
    // the mail's transaction must grow it.
    let other = open_db(d);
    let journaled = read_conn(&other).journal.len();
    other
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    assert_eq!(
        std::fs::metadata(d.join("regmail.sqlite-wal"))
            .unwrap()
            .len(),
        0
    );
    let db_file = sha256_hex(&std::fs::read(db_path(d)).unwrap());
    let out = run(&mut limited(d, &["process"]), &mail);
    expect_code(&out, 75, "process on a full disk");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("full disk at commit: {stderr}");
    assert!(
        stderr.contains("temporary failure, nothing written"),
        "the failure should come from handling the mail, after the database opened: {stderr}"
    );
    assert_eq!(
        sha256_hex(&std::fs::read(db_path(d)).unwrap()),
        db_file,
        "the database file changed"
    );
    let seen = read_conn(&other);
    assert_eq!(seen.journal.len(), journaled, "a reader sees no new row");
    assert_eq!(seen.integrity, "ok");
    drop(other);
    assert!(outbox_dir(d).files.is_empty());
    assert_eq!(dump(d), before, "nothing was written");
    succeeds_once(d, &mail);
}

#[test]
fn failing_sendmail_defers_and_tick_delivers_exactly_once() {
    let tmp = data_dir();
    let d = tmp.path();
    let (script, spool) = support::fake_sendmail(d);
    let sendmail = |ok: bool| {
        let body = if ok {
            format!(
                "#!/bin/sh\ncat > \"$(mktemp {}/mail.XXXXXX)\"\n",
                spool.display()
            )
        } else {
            "#!/bin/sh\ncat > /dev/null\necho 'queue file write error' >&2\nexit 75\n".to_string()
        };
        support::install_script(&script, &body);
    };
    let spooled = || std::fs::read_dir(&spool).unwrap().count();
    sendmail(false);
    let (mail, _mails) = one_mail(6);
    process(d, &mail, 0);
    let db = read_db(d);
    assert_db_invariants(&db, "after a failed delivery");
    let row = assert_handled_once(&db, &mail, "success");
    let reply = db.outbox_of(&row.server_trid)[0].clone();
    assert_eq!(reply.delivered, None);
    assert_eq!(reply.attempts, 1);
    assert_eq!(reply.next_attempt, "2026-11-22T08:20:00.000Z");
    assert!(reply.last_error.is_some());

    let tick = |at: &str| {
        let out = run(regmail_at(d, at).arg("tick"), b"");
        expect_code(&out, 0, &format!("tick at {at}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Still failing at the next attempt: deferred again, 10 minutes.
    let t = tick("2026-11-22T08:21:00Z");
    assert!(t.contains("0 delivered, 1 deferred"), "{t}");
    let r = read_db(d).outbox_of(&row.server_trid)[0].clone();
    assert_eq!(
        (r.attempts, r.next_attempt.as_str()),
        (2, "2026-11-22T08:31:00.000Z")
    );
    sendmail(true);
    // Before the back-off ends nothing is sent.
    let t = tick("2026-11-22T08:25:00Z");
    assert!(t.contains("0 delivered, 0 deferred"), "{t}");
    assert_eq!(spooled(), 0);
    let t = tick("2026-11-22T08:31:00Z");
    assert!(t.contains("1 delivered"), "{t}");
    assert_eq!(spooled(), 1);
    let t = tick("2026-11-22T09:31:00Z");
    assert!(t.contains("0 delivered"), "{t}");
    process(d, &mail, 0);
    assert_eq!(spooled(), 1, "delivered exactly once");
    let db = read_db(d);
    assert_db_invariants(&db, "after the delivery");
    let r = db.outbox_of(&row.server_trid)[0].clone();
    assert_eq!(r.attempts, 3);
    assert!(r.delivered.is_some());
    let sent = std::fs::read_dir(&spool)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(std::fs::read(sent).unwrap(), r.message);
}
