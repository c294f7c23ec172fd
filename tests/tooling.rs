//! Registrar tooling and packaging, driven through the built binary:
//! `template new|list` (blank templates filled in pass `check`), `submit`
//! (`--output`, `--sendmail`, problems found before signing, the mail passes
//! the mail layer and `process` executes it), `generate man|completions`,
//! and the systemd units of `contrib/` (each `ExecStart=` is a command line
//! regmail's own parser accepts).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use clap::{CommandFactory, Parser};
use regmail::cli::{Cli, Command as Sub, WhoisCommand};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const NOW: &str = "2026-11-22T08:15:00Z";
const SIGNED_AT: &str = "2026-11-22T08:10:00Z";
const ALICE: &str = "hostmaster@alpine-domains.test";

fn regmail(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_regmail"));
    c.args(args);
    c
}

fn run(c: &mut Command) -> Output {
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `--data-dir D --now NOW ARGS...`
fn at(d: &Path, args: &[&str]) -> Command {
    let mut c = regmail(&["--now", NOW, "--data-dir"]);
    c.arg(d).args(args);
    c
}

/// An initialised data dir with registrar 1001 (alice's test key).
fn data_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    assert!(run(&mut at(d, &["init"])).status.success());
    let key = support::root().join("keys/alice.pub.asc");
    let out = run(
        at(d, &["registrar", "add", "--id", "1001", "--name", "Alpine"])
            .args(["--email", ALICE, "--key"])
            .arg(key),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    tmp
}

/// `template new ARGS` printed, as text.
fn blank(args: &[&str]) -> String {
    let out = run(regmail(&["template", "new"]).args(args));
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

/// A blank template filled in: registrar 1001, `trid`, and each `key: value`
/// on the first still-empty line of that key (a key twice: two lines).
fn fill(blank: &str, trid: &str, values: &[(&str, &str)]) -> String {
    let mut t = blank
        .replace("<registrar-id>1234<", "<registrar-id>1001<")
        .replace("CHANGE-ME-0001", trid);
    for (key, value) in values {
        let empty = format!("\n{key}:\n");
        assert!(t.contains(&empty), "no empty {key}: line");
        t = t.replacen(&empty, &format!("\n{key}: {value}\n"), 1);
    }
    t
}

/// `check FILE` on a template text: the exit code and the machine block.
fn check(d: &Path, name: &str, template: &str) -> (i32, String) {
    let file = d.join(name);
    std::fs::write(&file, template).unwrap();
    let out = run(at(d, &["check"]).arg(&file));
    (out.status.code().unwrap(), text(&out.stdout))
}

/// `submit` of a template text by alice, with extra arguments.
fn submit(d: &Path, template: &str, extra: &[&str]) -> Output {
    let file = d.join("submit.txt");
    std::fs::write(&file, template).unwrap();
    let key = support::root().join("keys/alice.sec.asc");
    run(
        regmail(&["--now", SIGNED_AT, "submit", "--registrar", "1001"])
            .args(["--from", ALICE, "--key"])
            .arg(key)
            .args(extra)
            .arg(file),
    )
}

/// `process` of a mail: its exit code and the newest reply in the outbox.
fn process(d: &Path, mail: &[u8]) -> String {
    use std::io::Write;
    let mut child = at(d, &["process"]).stdin(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(mail).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let mut files: Vec<PathBuf> = std::fs::read_dir(d.join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    std::fs::read_to_string(files.last().unwrap()).unwrap()
}

fn perscreate() -> String {
    fill(
        &blank(&["perscreate"]),
        "TOOL-0001",
        &[
            ("type", "NAT"),
            ("personname", "Anna Muster"),
            ("street address", "Hauptstrasse 1"),
            ("postal code", "1010"),
            ("city", "Wien"),
            ("country", "AT"),
            ("phone", "+43 1 5056416"),
            ("e-mail", "anna@example.at"),
        ],
    )
}

/// Every name of `template list` prints its file of `templates/` unchanged;
/// mistakes are usage errors that name what would work.
#[test]
fn template_list_and_new() {
    let out = run(&mut regmail(&["template", "list"]));
    assert!(out.status.success());
    let list = text(&out.stdout);
    let names: Vec<&str> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names.len(), 17, "{list}");
    for name in &names {
        let file = support::root().join(format!("templates/{name}.txt"));
        assert_eq!(blank(&[name]), std::fs::read_to_string(file).unwrap());
    }
    assert_eq!(blank(&["check"]), blank(&["check-domain"]));
    assert_eq!(
        blank(&["info", "--handle", "AM1-NICAT"]),
        blank(&["info-person", "--handle", "AM1-NICAT"])
    );
    for args in [
        &["regtransfer2"][..],
        &["perscreate", "--handle", "AM1-NICAT"],
        &["create", "--handle", "AM1-NICAT"],
        &["persdelete", "--domain", "example.at"],
        &["create", "--domain", "a b.at"],
        &["create", "--domain", "x.at", "--handle", "AM1-NICAT"],
    ] {
        let out = run(regmail(&["template", "new"]).args(args));
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = run(&mut regmail(&["template", "new", "transfer"]));
    assert!(text(&out.stderr).contains("regtransfer, transferack"));
}

/// Blank templates filled in with real values pass `check`; a perscreate
/// made with `submit --output` is executed by `process`.
#[test]
fn filled_in_templates_pass_check_and_submit_executes() {
    let tmp = data_dir();
    let d = tmp.path();
    let person = perscreate();
    let (code, block) = check(d, "p.txt", &person);
    assert_eq!(code, 0, "{block}");
    assert!(block.contains("result:       success"), "{block}");

    let eml = d.join("mails/perscreate.eml");
    std::fs::create_dir(d.join("mails")).unwrap();
    let out = submit(d, &person, &["--output", eml.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let mail = std::fs::read(&eml).unwrap();
    assert_mail_layer_ok(&mail, "REGISTRAR: 1001 perscreate TOOL-0001");
    let reply = process(d, &mail);
    assert!(reply.contains("result:       success"), "{reply}");
    let handle = reply
        .lines()
        .find_map(|l| l.strip_prefix("handle:"))
        .unwrap()
        .trim()
        .to_string();

    let domain = fill(
        &blank(&["create", "--domain", "alpine-tooling.at"]),
        "TOOL-0002",
        &[
            ("registrant", &handle),
            ("tech-c", &handle),
            ("nserver", "ns1.example.com"),
            ("nserver", "ns2.example.net"),
        ],
    );
    let (code, block) = check(d, "c.txt", &domain);
    assert_eq!(code, 0, "{block}");
    assert!(block.contains("object:       alpine-tooling.at"), "{block}");
    for (args, trid) in [
        (&["check", "--domain", "alpine-tooling.at"][..], "TOOL-0003"),
        (&["info", "--handle", &handle], "TOOL-0004"),
        (&["persupdate", "--handle", &handle], "TOOL-0005"),
    ] {
        let (code, block) = check(d, "q.txt", &fill(&blank(args), trid, &[]));
        assert_eq!(code, 0, "{args:?}: {block}");
    }
    // The blank as printed (registrar 1234, no values) is refused.
    let (code, _) = check(d, "b.txt", &blank(&["renew"]));
    assert_eq!(code, 1);
}

/// Every mail-layer rule, as `process` applies them, and by hand.
fn assert_mail_layer_ok(mail: &[u8], subject: &str) {
    let inspected = regmail::intake::inspect(mail, &regmail::config::MailSettings::default());
    assert!(inspected.findings.is_empty(), "{:?}", inspected.findings);
    assert!(inspected.signed_block.is_some());
    let (head, body) = support::split_mail(mail);
    assert!(head.contains(&format!("\nSubject: {subject}\n")), "{head}");
    assert!(head.contains("Content-Type: text/plain; charset=us-ascii"));
    assert!(head.contains("Content-Transfer-Encoding: 7bit"));
    assert!(
        mail.iter()
            .all(|b| matches!(b, b'\r' | b'\n' | 0x20..=0x7e))
    );
    assert!(body.lines().all(|l| l.len() <= 78 && !l.ends_with(' ')));
    assert_eq!(
        body.matches("-----BEGIN PGP SIGNED MESSAGE-----").count(),
        1
    );
    assert_eq!(body.matches("-----BEGIN PGP SIGNATURE-----").count(), 1);
}

/// `--sendmail CMD`: the mail and `-i -t` reach the command, and `process`
/// executes what it received; a failing command is an error with its status.
#[test]
fn submit_pipes_to_sendmail() {
    let tmp = data_dir();
    let d = tmp.path();
    let script = d.join("fake-sendmail");
    let spool = d.join("spool");
    std::fs::create_dir(&spool).unwrap();
    let write_script = |body: String| {
        support::install_script(&script, &body);
    };
    let s = spool.display();
    write_script(format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > {s}/args\ncat > {s}/mail\n"
    ));
    let person = perscreate();
    let out = submit(d, &person, &["--sendmail", script.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let args = std::fs::read_to_string(spool.join("args")).unwrap();
    assert_eq!(args, "-i\n-t\n");
    let mail = std::fs::read(spool.join("mail")).unwrap();
    assert!(!mail.contains(&b'\r'), "LF line ends for a local sendmail");
    assert_mail_layer_ok(&mail, "REGISTRAR: 1001 perscreate TOOL-0001");
    assert!(process(d, &mail).contains("result:       success"));

    write_script("#!/bin/sh\ncat > /dev/null\nexit 3\n".into());
    let out = submit(d, &person, &["--sendmail", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("exit status: 3"),
        "{}",
        text(&out.stderr)
    );
    // A command that reads nothing and fails: still its status, not EPIPE.
    write_script("#!/bin/sh\nexit 4\n".into());
    let out = submit(d, &person, &["--sendmail", script.to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("exit status: 4"),
        "{}",
        text(&out.stderr)
    );
    let out = submit(d, &person, &["--sendmail", "/nonexistent/sendmail"]);
    assert_eq!(out.status.code(), Some(1));
}

/// Template problems are reported before anything is signed (the key is
/// not even read), and nothing is written.
#[test]
fn submit_refuses_before_signing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let eml = d.join("out.eml");
    let person = perscreate();
    for (template, expect) in [
        (person.replace("city: Wien", "city:\tWien"), "TAB (4005)"),
        (person.replace("Anna Muster", "Anna M\u{fc}ster"), "(4003)"),
        (
            person.replace("city: Wien", "city: Wien "),
            "trailing space",
        ),
        (person.replace("TOOL-0001", "CHANGE-ME-0001"), "placeholder"),
        (person.replace(">1001<", ">1002<"), "--registrar is 1001"),
        (person.replace("<count>1<", "<count>2<"), "5004"),
    ] {
        let file = d.join("t.txt");
        std::fs::write(&file, &template).unwrap();
        let out = run(regmail(&["submit", "--registrar", "1001", "--key"])
            .arg(d.join("no-such-key.asc"))
            .arg("--output")
            .arg(&eml)
            .arg(&file));
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{expect}");
        assert!(
            err.contains("would be refused") && err.contains(expect),
            "{err}"
        );
        assert!(!eml.exists());
    }
    // An --output in a missing directory: an error, no stray file.
    let out = submit(d, &person, &["--output", "/nonexistent/dir/x.eml"]);
    assert_eq!(out.status.code(), Some(1));
}

/// The names of every visible subcommand path: `regmail-registrar-key-add`.
fn page_names(cmd: &clap::Command, prefix: &str, out: &mut Vec<String>) {
    let name = format!("{prefix}{}", cmd.get_name());
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        page_names(sub, &format!("{name}-"), out);
    }
    out.push(name);
}

#[test]
fn man_pages_and_completions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("man/man1");
    let out = run(regmail(&["generate", "man"]).arg(&dir));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut expected = Vec::new();
    page_names(&Cli::command(), "", &mut expected);
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    let mut expected: Vec<String> = expected.iter().map(|n| format!("{n}.1")).collect();
    expected.sort();
    assert_eq!(written, expected);
    let top = std::fs::read_to_string(dir.join("regmail.1")).unwrap();
    assert!(top.contains("\n.TH regmail 1 "), "{top}");
    assert!(top.contains(".SH \"EXIT STATUS\"") && top.contains("EX_TEMPFAIL"));
    let process = std::fs::read_to_string(dir.join("regmail-process.1")).unwrap();
    assert!(process.contains(".TH regmail-process 1"), "{process}");
    let serve = std::fs::read_to_string(dir.join("regmail-whois-serve.1")).unwrap();
    assert!(serve.contains("rate\\-per\\-minute"), "{serve}");

    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&mut regmail(&["generate", "completions", shell]));
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(
            script.contains("tick") && script.contains("data-dir"),
            "{shell}"
        );
    }
    let out = run(&mut regmail(&["generate", "completions", "tcsh"]));
    assert_eq!(out.status.code(), Some(64));
}

/// The bash script is valid bash (where bash is installed).
#[test]
fn bash_completion_is_valid_bash() {
    let Ok(bash) = which("bash") else { return };
    let out = run(&mut regmail(&["generate", "completions", "bash"]));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("regmail.bash");
    std::fs::write(&file, &out.stdout).unwrap();
    let syntax = run(Command::new(bash).arg("-n").arg(&file));
    assert!(syntax.status.success(), "{}", text(&syntax.stderr));
}

fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|p| p.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// `Key=value` lines of a unit file (comments and sections left out).
fn unit(name: &str) -> Vec<(String, String)> {
    let path = support::root().join("contrib").join(name);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('[') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn value<'a>(unit: &'a [(String, String)], key: &str) -> Vec<&'a str> {
    unit.iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// A service's `ExecStart=` parsed by regmail's own parser; its data dir is
/// the one writable path, and the sandbox is on.
fn exec_start(name: &str) -> Cli {
    let u = unit(name);
    let exec = value(&u, "ExecStart");
    assert_eq!(exec.len(), 1, "{name}");
    // No quoting, variables or specifiers: splitting at spaces is what systemd does.
    assert!(!exec[0].contains(['"', '\'', '$', '%', '\\']), "{name}");
    let words: Vec<&str> = exec[0].split_whitespace().collect();
    assert_eq!(words[0], "/usr/local/bin/regmail", "{name}");
    let cli = Cli::try_parse_from(std::iter::once("regmail").chain(words[1..].iter().copied()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        value(&u, "ReadWritePaths"),
        [cli.data_dir.to_str().unwrap()]
    );
    for (key, want) in [
        ("User", "regmail"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
    ] {
        assert_eq!(value(&u, key), [want], "{name} {key}");
    }
    cli
}

#[test]
fn systemd_units_run_real_commands() {
    let tick = exec_start("regmail-tick.service");
    assert!(matches!(tick.command, Sub::Tick));
    assert_eq!(value(&unit("regmail-tick.service"), "Type"), ["oneshot"]);
    let timer = unit("regmail-tick.timer");
    assert_eq!(value(&timer, "Unit"), ["regmail-tick.service"]);
    assert_eq!(value(&timer, "Persistent"), ["true"]);
    assert_eq!(value(&timer, "OnCalendar").len(), 1);

    let whois = exec_start("regmail-whois.service");
    let Sub::Whois(args) = whois.command else {
        panic!("not whois: {:?}", whois.command)
    };
    let Some(WhoisCommand::Serve(serve)) = args.command else {
        panic!("not whois serve")
    };
    assert_eq!(
        serve.listen.parse::<std::net::SocketAddr>().unwrap().port(),
        43
    );
    let u = unit("regmail-whois.service");
    assert_eq!(value(&u, "AmbientCapabilities"), ["CAP_NET_BIND_SERVICE"]);
    assert_eq!(value(&u, "CapabilityBoundingSet"), ["CAP_NET_BIND_SERVICE"]);
    // A renamed flag would fail here: the parser is the binary's.
    assert!(Cli::try_parse_from(["regmail", "whois", "serve", "--port", "43"]).is_err());

    // `serve` answers on the data directory `process` looks in: the MTA's
    // pipe command (README, "Postfix") names the same one.
    let serve = exec_start("regmail-serve.service");
    assert!(matches!(serve.command, Sub::Serve), "{:?}", serve.command);
    assert_eq!(serve.data_dir.to_str(), Some("/var/lib/regmail"));
    assert_eq!(value(&unit("regmail-serve.service"), "UMask"), ["0077"]);
}

/// A `--now` that is not an RFC 3339 instant is a usage error (64) for every
/// command, before anything is opened, touched or listened on.
#[test]
fn an_invalid_now_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().to_str().unwrap();
    for command in ["process", "serve", "tick"] {
        let out = run(&mut regmail(&[
            "--data-dir",
            d,
            "--now",
            "yesterday",
            command,
        ]));
        assert_eq!(out.status.code(), Some(64), "{command}");
        assert!(
            text(&out.stderr).contains("RFC 3339"),
            "{command}: {}",
            text(&out.stderr)
        );
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
