//! `regmail serve` and `process`'s hand-over to it, through the built
//! binary: the mail is handled by the resident process with the same reply
//! and exit code, also for several runs at once; a refusal, a dead or
//! silent `serve` leaves `process` to handle the mail itself or to exit 75
//! with nothing written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use regmail::config::Config;
use regmail::store::{Store, StoreError};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const NOW: &str = "2026-11-22T08:15:00Z";
const MAIL: &str = "01-perscreate-holder.eml";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_regmail"))
}

/// A data directory with the test registrars and trent's registry key.
fn data_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    drop(support::registry(tmp.path(), Config::default()));
    tmp
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(support::root().join("fixtures").join(name)).unwrap()
}

/// `regmail process` with `mail` on stdin, logging at debug level.
fn process(dir: &Path, extra: &[&str], mail: &[u8]) -> Output {
    let mut child = Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["--now", NOW])
        .args(extra)
        .arg("process")
        .env("REGMAIL_LOG", "debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(mail).unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The run exited with `code` and its log (stderr) says `says`.
fn expect_run(out: &Output, code: i32, says: &[&str]) {
    let log = stderr(out);
    assert_eq!(out.status.code(), Some(code), "{log}");
    for text in says {
        assert!(log.contains(text), "no {text:?} in: {log}");
    }
}

/// The replies in the file outbox (none before the first).
fn outbox(dir: &Path) -> Vec<PathBuf> {
    let outbox = dir.join("outbox");
    if outbox.exists() {
        support::files(&outbox, "eml")
    } else {
        Vec::new()
    }
}

fn dump(dir: &Path) -> String {
    Store::open(&dir.join("regmail.sqlite"), Duration::from_secs(5))
        .unwrap()
        .dump()
        .unwrap()
}

/// A `regmail serve` child, its log in a file; killed when dropped.
struct Serve {
    child: Child,
    log: PathBuf,
}

impl Serve {
    fn start(dir: &Path) -> Serve {
        let log = dir.join("serve.log");
        let (child, at) = support::start_listening(
            Command::new(bin())
                .arg("--data-dir")
                .arg(dir)
                .args(["--now", NOW, "serve"])
                .env("REGMAIL_LOG", "info")
                .stderr(std::fs::File::create(&log).unwrap()),
        );
        let serve = Serve { child, log };
        assert_eq!(
            PathBuf::from(at),
            dir.join("regmail.sock"),
            "{}",
            serve.log()
        );
        serve
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }

    fn stop(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn process_hands_the_mail_to_serve() {
    let tmp = data_dir();
    let d = tmp.path();
    let serve = Serve::start(d);
    let mode = std::fs::metadata(d.join("regmail.sock")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600,
        "the socket is the owner's"
    );

    let out = process(d, &[], &fixture(MAIL));
    expect_run(&out, 0, &[]);
    assert!(
        !stderr(&out).contains("mail handled"),
        "the client handled nothing itself: {}",
        stderr(&out)
    );
    assert!(
        serve.log().contains("result=\"success\""),
        "{}",
        serve.log()
    );
    let replies = outbox(d);
    assert_eq!(replies.len(), 1);
    let (head, body) = support::split_mail(&std::fs::read(&replies[0]).unwrap());
    assert!(
        head.contains("To: hostmaster@alpine-domains.test"),
        "{head}"
    );
    let signed = support::verify_body(&body, &support::trent(), support::now()).unwrap();
    assert!(signed.contains("result:       success"), "{signed}");

    // The same mail again: a duplicate, handled by serve, no new reply.
    let out = process(d, &[], &fixture(MAIL));
    expect_run(&out, 0, &[]);
    assert!(
        serve.log().contains("result=\"duplicate\""),
        "{}",
        serve.log()
    );
    assert_eq!(outbox(d).len(), 1);

    // A second serve on the same data directory refuses to start.
    let second = Command::new(bin())
        .arg("--data-dir")
        .arg(d)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(
        stderr(&second).contains("already runs"),
        "{}",
        stderr(&second)
    );

    // Once serve is gone (its socket left behind), process works alone.
    serve.stop();
    let mail = signed_variant();
    let out = process(d, &[], &mail);
    expect_run(&out, 0, &["no `regmail serve`", "result=\"success\""]);
    assert_eq!(outbox(d).len(), 2);
}

/// Several `process` runs at once (Postfix starts them in parallel): serve
/// takes their mails one after the other, each run gets its own result,
/// and every mail has exactly one journal row and one reply.
#[test]
fn concurrent_process_runs_are_each_answered_once() {
    const RUNS: u32 = 6;
    let tmp = data_dir();
    let d = tmp.path();
    let mails: Vec<Vec<u8>> = (1..=RUNS).map(signed_person).collect();
    let serve = Serve::start(d);
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = mails
            .iter()
            .map(|mail| scope.spawn(move || process(d, &[], mail)))
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for out in &outputs {
        expect_run(out, 0, &[]);
        assert!(
            !stderr(out).contains("mail handled"),
            "serve handled every mail: {}",
            stderr(out)
        );
    }
    let log = serve.log();
    assert_eq!(
        log.matches("result=\"success\"").count(),
        RUNS as usize,
        "{log}"
    );
    let replies: Vec<String> = outbox(d)
        .iter()
        .map(|p| String::from_utf8(std::fs::read(p).unwrap()).unwrap())
        .collect();
    assert_eq!(replies.len(), RUNS as usize);
    for n in 1..=RUNS {
        let trid = format!("SRV-{n:04}");
        assert_eq!(
            replies.iter().filter(|r| r.contains(&trid)).count(),
            1,
            "one reply for {trid}"
        );
    }
    let dump = dump(d);
    for n in 1..=RUNS {
        let row = format!("| transaction | 1001 | SRV-{n:04} | perscreate |");
        assert_eq!(dump.matches(&row).count(), 1, "{dump}");
    }
}

/// Another configuration file than serve's: serve declines, process
/// handles the mail itself.
#[test]
fn serve_declines_another_configuration() {
    let tmp = data_dir();
    let d = tmp.path();
    let serve = Serve::start(d);
    let other = d.join("other.toml");
    std::fs::write(&other, "").unwrap();
    let out = process(d, &["--config", other.to_str().unwrap()], &fixture(MAIL));
    expect_run(&out, 0, &["did not take the mail", "result=\"success\""]);
    assert!(!serve.log().contains("mail handled"), "{}", serve.log());
    assert_eq!(outbox(d).len(), 1);
}

/// A database locked past the busy timeout while serve handles the mail:
/// exit 75 with serve's message, nothing written; serve picked the new
/// timeout up from the changed configuration file. The retry goes through.
#[test]
fn serve_reports_a_busy_database_as_75() {
    let tmp = data_dir();
    let d = tmp.path();
    let serve = Serve::start(d);
    std::fs::write(
        d.join("regmail.toml"),
        "[database]\nbusy_timeout_ms = 300\n",
    )
    .unwrap();
    let mut store = Store::open(&d.join("regmail.sqlite"), Duration::from_secs(5)).unwrap();
    let before = store.dump().unwrap();
    store
        .write(|_tx| -> Result<(), StoreError> {
            let out = process(d, &[], &fixture(MAIL));
            expect_run(&out, 75, &["temporary failure, nothing written"]);
            Ok(())
        })
        .unwrap();
    assert_eq!(store.dump().unwrap(), before, "nothing was written");
    assert!(outbox(d).is_empty());
    assert!(serve.log().contains("reloaded"), "{}", serve.log());
    let out = process(d, &[], &fixture(MAIL));
    expect_run(&out, 0, &[]);
    assert_eq!(outbox(d).len(), 1);
}

/// What a fake serve does with one connection.
#[derive(Clone, Copy)]
enum Fake {
    /// Closes at once: process handles the mail itself.
    ClosesAtOnce,
    /// Says `go`, reads the mail, closes without a result: 75.
    Vanishes,
}

/// A fake serve for one connection; gives up after 20 s without one (a
/// `process` that never came: the test's assertions then say why).
fn fake_serve(d: &Path, fake: Fake) -> std::thread::JoinHandle<()> {
    let listener = UnixListener::bind(d.join("regmail.sock")).unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(_) => return,
            }
        };
        stream.set_nonblocking(false).unwrap();
        if let Fake::Vanishes = fake {
            let mut input = BufReader::new(&stream);
            let mut line = String::new();
            while input.read_line(&mut line).unwrap() > 1 {
                line.clear();
            }
            (&stream).write_all(b"go\n").unwrap();
            // The whole chunked mail, up to its final `0\n`; then no answer.
            let mut wire = Vec::new();
            let mut byte = [0u8; 1];
            while !wire.ends_with(b"\n0\n") {
                input.read_exact(&mut byte).unwrap();
                wire.push(byte[0]);
            }
            assert!(String::from_utf8_lossy(&wire).contains("\nFrom: "));
        }
    })
}

#[test]
fn a_serve_that_closes_at_once_leaves_the_mail_to_process() {
    let tmp = data_dir();
    let d = tmp.path();
    let fake = fake_serve(d, Fake::ClosesAtOnce);
    let out = process(d, &[], &fixture(MAIL));
    fake.join().unwrap();
    expect_run(&out, 0, &["did not take the mail"]);
    assert_eq!(outbox(d).len(), 1);
}

#[test]
fn a_serve_that_vanishes_with_the_mail_means_75_and_nothing_written() {
    let tmp = data_dir();
    let d = tmp.path();
    let before = dump(d);
    let fake = fake_serve(d, Fake::Vanishes);
    let out = process(d, &[], &fixture(MAIL));
    fake.join().unwrap();
    expect_run(&out, 75, &["no result"]);
    assert_eq!(dump(d), before);
    assert!(outbox(d).is_empty());
}

/// A `process` run that goes away in the middle of its mail (as one that
/// gave up waiting for `go` does): serve handles nothing, and goes on.
#[test]
fn serve_handles_nothing_of_a_mail_that_did_not_arrive_whole() {
    let tmp = data_dir();
    let d = tmp.path();
    let serve = Serve::start(d);
    let before = dump(d);
    let name = |p: &Path| {
        std::fs::canonicalize(p)
            .unwrap_or_else(|_| std::path::absolute(p).unwrap())
            .display()
            .to_string()
    };
    let header = format!(
        "regmail-process/1 {}\ndata-dir {}\nconfig {}\nnow {NOW}\n\n",
        env!("CARGO_PKG_VERSION"),
        name(d),
        name(&d.join("regmail.toml"))
    );
    let mail = fixture(MAIL);
    {
        let stream = std::os::unix::net::UnixStream::connect(d.join("regmail.sock")).unwrap();
        (&stream).write_all(header.as_bytes()).unwrap();
        let mut go = String::new();
        BufReader::new(&stream).read_line(&mut go).unwrap();
        assert_eq!(go, "go\n");
        (&stream)
            .write_all(format!("{}\n", mail.len()).as_bytes())
            .unwrap();
        (&stream).write_all(&mail[..mail.len() / 2]).unwrap();
    }
    // serve answers the next run, so it has dealt with the broken one.
    let out = process(d, &[], &signed_variant());
    expect_run(&out, 0, &[]);
    assert!(serve.log().contains("went away"), "{}", serve.log());
    assert_eq!(
        serve.log().matches("mail handled").count(),
        1,
        "{}",
        serve.log()
    );
    assert_eq!(outbox(d).len(), 1, "only the second mail's reply");
    assert_ne!(dump(d), before);
}

/// Wrong mails a registrar could send get the same reply, every code and
/// line number, whether `process` handles them alone or hands them over.
#[test]
fn wrong_mails_get_the_same_replies_through_serve() {
    let alone = data_dir();
    let served = data_dir();
    let serve = Serve::start(served.path());
    let names = [
        "08-create-with-errors.eml",
        "09-object-grammar-errors.eml",
        "11-tab-in-template.eml",
    ];
    for name in names {
        expect_run(&process(alone.path(), &[], &fixture(name)), 0, &[]);
        expect_run(&process(served.path(), &[], &fixture(name)), 0, &[]);
    }
    assert_eq!(serve.log().matches("mail handled").count(), names.len());
    let texts = |d: &Path| -> Vec<String> {
        outbox(d)
            .iter()
            .map(|f| {
                let (_, body) = support::split_mail(&std::fs::read(f).unwrap());
                support::verify_body(&body, &support::trent(), support::now()).unwrap()
            })
            .collect()
    };
    let (a, b) = (texts(alone.path()), texts(served.path()));
    assert_eq!(a.len(), names.len());
    assert_eq!(a, b);
    assert!(
        a.iter().all(|t| t.contains("result:       failed")),
        "{a:?}"
    );
    assert!(a.iter().any(|t| t.contains("line")), "line numbers: {a:?}");
}

/// Another signed mail than [`MAIL`]: a perscreate of a new person.
fn signed_variant() -> Vec<u8> {
    signed_person(1)
}

/// A signed `perscreate` of registrar 1001 with client-trid `SRV-000n`.
fn signed_person(n: u32) -> Vec<u8> {
    let text = std::fs::read_to_string(
        support::root().join("tests/cases/perscreate-nat/01-perscreate.txt"),
    )
    .unwrap()
    .replace("ALP-0001", &format!("SRV-{n:04}"))
    .replace("Anna Muster", &format!("Anna Serve {n}"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.txt");
    std::fs::write(&file, text).unwrap();
    let out = Command::new(bin())
        .args(["--now", "2026-11-22T08:00:00Z", "submit"])
        .args([
            "--registrar",
            "1001",
            "--from",
            "hostmaster@alpine-domains.test",
        ])
        .arg("--key")
        .arg(support::root().join("keys/alice.sec.asc"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    out.stdout
}
