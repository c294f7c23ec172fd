//! Golden cases: `tests/cases/<case>/` holds input mails (`NN-*.eml`, handled in
//! name order on a fresh test registry), the expected replies (`NN-*.reply`, the
//! whole mail with its verified signature replaced by a marker) and the expected
//! database (`db.txt`). Each case runs twice: with LF and with CRLF line ends.
//! A `regmail.toml` in the folder replaces the default configuration, and a
//! `credit.toml` (`registrar-id = cents`) gives registrars prepaid credit first.
//! `REGMAIL_BLESS=1 cargo test --test golden` rewrites the expected files; a
//! mismatch leaves `<file>.actual` beside the expected one to diff.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use regmail::config::Config;
use regmail::pipeline::{self, Disposition, Mode};
use regmail::reply::Outcome;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    Lf,
    Crlf,
}

fn bless() -> bool {
    std::env::var_os("REGMAIL_BLESS").is_some()
}

use support::{case_dirs, files};

fn with_ending(raw: &[u8], ending: Ending) -> Vec<u8> {
    let lf: Vec<u8> = String::from_utf8_lossy(raw)
        .replace("\r\n", "\n")
        .into_bytes();
    // Keep non-UTF-8 bytes intact: work on bytes.
    let lf = if std::str::from_utf8(raw).is_ok() {
        lf
    } else {
        raw.iter().copied().filter(|b| *b != b'\r').collect()
    };
    match ending {
        Ending::Lf => lf,
        Ending::Crlf => lf
            .iter()
            .flat_map(|b| {
                if *b == b'\n' {
                    vec![b'\r', b'\n']
                } else {
                    vec![*b]
                }
            })
            .collect(),
    }
}

/// Compares (or blesses) one expected file; records a failure with an `.actual` file.
fn expect(path: &Path, actual: &str, ending: Ending, failures: &mut Vec<String>) {
    let actual_path = PathBuf::from(format!("{}.actual", path.display()));
    if bless() && ending == Ending::Lf {
        std::fs::write(path, actual).unwrap();
        let _ = std::fs::remove_file(&actual_path);
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        let _ = std::fs::remove_file(&actual_path);
    } else {
        std::fs::write(&actual_path, actual).unwrap();
        failures.push(format!(
            "{} ({ending:?}): differs, see {}",
            path.display(),
            actual_path.display()
        ));
    }
}

const OBJECT_TABLES: &[&str] = &[
    "[persons]",
    "[domains]",
    "[domain_contacts]",
    "[hosts]",
    "[host_addresses]",
    "[domain_hosts]",
];

/// The registry objects part of a dump (not journal, not outbox).
fn objects(dump: &str) -> String {
    let mut keep = false;
    let mut out = String::new();
    for line in dump.lines() {
        if line.starts_with('[') {
            keep = OBJECT_TABLES.iter().any(|t| line.starts_with(t));
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn run_case(dir: &Path, ending: Ending, failures: &mut Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let config = match std::fs::read_to_string(dir.join("regmail.toml")) {
        Ok(text) => Config::parse(&text).unwrap(),
        Err(_) => Config::default(),
    };
    let mut reg = support::registry(tmp.path(), config);
    if let Ok(text) = std::fs::read_to_string(dir.join("credit.toml")) {
        let credits: std::collections::BTreeMap<String, i64> = toml::from_str(&text).unwrap();
        for (id, cents) in credits {
            reg.store
                .add_credit(id.parse().unwrap(), cents, "2026-11-22T08:00:00.000Z")
                .unwrap()
                .unwrap();
        }
    }
    let trent = support::trent();
    for eml in files(dir, "eml") {
        let raw = with_ending(&std::fs::read(&eml).unwrap(), ending);
        let dump_before = reg.store.dump().unwrap();
        let before = objects(&dump_before);
        let queued_before = reg.store.outbox_all().unwrap().len();
        let handled = pipeline::handle(&mut reg, &raw, Mode::Commit).unwrap();
        let dump_after = reg.store.dump().unwrap();
        let after = objects(&dump_after);
        if handled.disposition == Disposition::Duplicate && dump_before != dump_after {
            failures.push(format!(
                "{} ({ending:?}): a redelivered mail wrote something",
                eml.display()
            ));
        }
        let changes_nothing = matches!(
            handled.disposition,
            Disposition::Answered(Outcome::Failed)
                | Disposition::Dropped(_)
                | Disposition::Replayed
        );
        if changes_nothing && before != after {
            failures.push(format!(
                "{} ({ending:?}): a refused mail changed the registry",
                eml.display()
            ));
        }
        let mail = reg
            .store
            .outbox_all()
            .unwrap()
            .into_iter()
            .skip(queued_before)
            .find(|m| m.server_trid == handled.server_trid);
        let actual = match mail {
            Some(m) => support::verified_reply(&m.message, &trent)
                .unwrap_or_else(|e| format!("SIGNATURE CHECK FAILED: {e}\n")),
            None => format!("(no reply: {:?})\n", handled.disposition),
        };
        expect(&eml.with_extension("reply"), &actual, ending, failures);
    }
    expect(
        &dir.join("db.txt"),
        &reg.store.dump().unwrap(),
        ending,
        failures,
    );
}

#[test]
fn golden_cases_with_lf_and_crlf() {
    let mut failures = Vec::new();
    let dirs = case_dirs();
    assert!(dirs.len() >= 25, "the golden corpus is missing");
    for dir in &dirs {
        for ending in [Ending::Lf, Ending::Crlf] {
            run_case(dir, ending, &mut failures);
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every 4xxx, 5xxx and 6xxx code is produced by at least one golden case
/// (issues 2 and 3).
#[test]
fn golden_cases_cover_every_required_code() {
    let mut seen = BTreeSet::new();
    for dir in case_dirs() {
        for reply in files(&dir, "reply") {
            let text = std::fs::read_to_string(reply).unwrap();
            let codes = text
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("error:")
                        .or_else(|| l.strip_prefix("warning:"))
                })
                .filter_map(|rest| rest.split_whitespace().next()?.parse::<u16>().ok());
            seen.extend(codes);
        }
    }
    let required = regmail::rejection::Code::ALL
        .iter()
        .map(|c| c.number())
        .filter(|n| (4000..7000).contains(n));
    let missing: Vec<u16> = required.filter(|n| !seen.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "codes without a golden case: {missing:?}"
    );
}
