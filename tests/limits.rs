//! Hostile sizes (issue 5, item 6): a 10 MiB mail, a mail of too many lines,
//! and the `[limits]` table. Each is refused with 4014 (or 5001 for the XML
//! limits, see the golden case `hostile-limits`), answered only to the
//! registrar whose registered address sent it, and changes no object. How
//! fast the refusals are is measured by `cargo bench --bench hostile`, not
//! asserted here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use regmail::config::{Config, Limits};
use regmail::pipeline::{self, Disposition, Mode};
use snapbox::cmd::Command;

const FROM_ALICE: &str = "hostmaster@alpine-domains.test";

/// A mail of `lines` body lines of `width` characters from alice's address.
fn big_mail(lines: usize, width: usize) -> Vec<u8> {
    let mut m = format!(
        "From: {FROM_ALICE}\nTo: robot@registry.example\nSubject: REGISTRAR: 1001 create big\n\
         Message-ID: <big-{lines}-{width}@alpine-domains.test>\n\n"
    )
    .into_bytes();
    let line = format!("{}\n", "x".repeat(width));
    for _ in 0..lines {
        m.extend_from_slice(line.as_bytes());
    }
    m
}

fn objects_and_codes(config: Config, raw: &[u8]) -> (Vec<u16>, String, String, usize) {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = support::registry(tmp.path(), config);
    let before = reg.store.dump().unwrap();
    let h = pipeline::handle(&mut reg, raw, Mode::Commit).unwrap();
    assert!(matches!(h.disposition, Disposition::Answered(_)));
    let after = reg.store.dump().unwrap();
    let outbox = reg.store.outbox_all().unwrap();
    let reply = String::from_utf8(outbox.last().unwrap().message.clone()).unwrap();
    (h.codes, section(&before), section(&after), reply.len())
}

/// The persons and domains part of a dump.
fn section(dump: &str) -> String {
    dump.lines()
        .skip_while(|l| !l.starts_with("[persons]"))
        .take_while(|l| !l.starts_with("[journal]"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_ten_mib_mail_is_refused_unread_with_4014() {
    let raw = big_mail(10 * 1024 * 1024 / 64, 63);
    assert!(raw.len() >= 10 * 1024 * 1024);
    let (codes, before, after, reply_len) = objects_and_codes(Config::default(), &raw);
    assert_eq!(codes, vec![4014]);
    assert_eq!(before, after);
    assert!(reply_len < 8 * 1024, "the reply quotes nothing of it");
}

#[test]
fn too_many_lines_are_refused_with_4014() {
    let mut config = Config::default();
    config.mail.max_lines = 100;
    let (codes, before, after, _) = objects_and_codes(config, &big_mail(101, 10));
    assert_eq!(codes, vec![4014]);
    assert_eq!(before, after);
    // The default allows a normal mail of that size: it fails later, for
    // having no signature (4007), not for its size.
    let (codes, ..) = objects_and_codes(Config::default(), &big_mail(101, 10));
    assert_eq!(codes, vec![4007]);
}

#[test]
fn the_limits_table_is_configurable_and_has_safe_defaults() {
    let c = Config::parse(
        "[mail]\nmax_lines = 900\n[limits]\nmax_object_bytes = 4096\nmax_xml_depth = 3\n",
    )
    .unwrap();
    assert_eq!(c.mail.max_lines, 900);
    assert_eq!(c.limits.max_object_bytes, 4096);
    assert_eq!(c.limits.max_xml_depth, 3);
    assert_eq!(
        c.limits.max_xml_elements,
        Limits::default().max_xml_elements
    );
    let d = Config::default();
    assert!(d.mail.max_mail_bytes <= 1024 * 1024);
    assert!(d.limits.max_xml_depth >= 3 && d.limits.max_xml_depth <= 16);
    assert!(Config::parse("[limits]\nmax_entities = 5\n").is_err());
}

#[test]
fn process_drains_a_ten_mib_pipe_and_answers_4014() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_regmail"))
            .arg("--data-dir")
            .arg(d)
            .arg("--now")
            .arg("2026-11-22T08:15:00Z")
            .args(args)
    };
    run(&["init"]).assert().success();
    let key = support::root().join("keys/alice.pub.asc");
    run(&[
        "registrar",
        "add",
        "--id",
        "1001",
        "--name",
        "Alpine",
        "--email",
        FROM_ALICE,
        "--key",
        key.to_str().unwrap(),
    ])
    .assert()
    .success();
    run(&["process"])
        .stdin(big_mail(10 * 1024 * 1024 / 64, 63))
        .assert()
        .code(0);
    let replies: Vec<_> = std::fs::read_dir(d.join("outbox")).unwrap().collect();
    assert_eq!(replies.len(), 1);
    let reply = std::fs::read_to_string(replies[0].as_ref().unwrap().path()).unwrap();
    assert!(
        reply.contains("error:        4014 mail too large"),
        "{reply}"
    );
}
