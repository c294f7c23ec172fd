//! Crash safety of `regmail replay`: the run is killed with SIGKILL at random
//! instants and started again until a run completes; then the registry must
//! be exactly what a run that was never interrupted leaves.
//!
//! The workload is a directory of distinct mails made once with the test keys
//! (perscreates of alice 1001 and bob 1002 with distinct client-trids, some
//! refused perscreates, unsigned mails, mails from strangers, templates signed
//! again with other bytes, and exact byte copies). Each trial starts from a
//! fresh copy of one initialised data dir and kills the replay at a delay
//! drawn from a seeded generator, uniform over the time of a full run
//! (measured first, on a reference copy that is never killed); after each
//! kill it checks the invariants that must hold at any instant: an intact
//! database (`PRAGMA integrity_check`), each raw mail (SHA-256) journaled at
//! most once, the journaled mails are exactly a prefix of the directory's
//! distinct mails in name order, server-trids unique and gapless, each
//! answered mail with exactly one outbox row (a dropped one with none, no
//! outbox row without its journal row), one person per successful perscreate,
//! each delivered reply in exactly one file with its bytes. When a run
//! completes: `outbox flush` after the delivery lease (a reply whose
//! delivery was interrupted is retried), every mail is journaled exactly
//! once, counts per kind are as the workload says, every reply is delivered
//! in exactly one file, the dump equals the never-killed reference's, and one
//! more replay finds only duplicates.
//!
//! Always on: 120 mails, 3 trials (a few seconds). The full run is opt-in:
//!
//!     REGMAIL_KILL_TRIALS=20 cargo test --test crash -- --nocapture
//!
//! (`REGMAIL_KILL_MAILS`, default 1000: the number of mails; `REGMAIL_KILL_SEED`:
//! the generator's seed.) With `--nocapture` it reports where each kill landed.
//!
//! After the kills and the redelivery, `outbox/` holds nothing but the
//! delivered `.eml` files: an interrupted write leaves at most the row's own
//! temporary file, which the redelivery renames (this found a bug: the file
//! transport's random temporary names stayed behind).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hardening;

use hardening::*;
use std::collections::BTreeSet;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What the workload's mails must leave in the registry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Expect {
    files: usize,
    /// Exact byte copies of an earlier file.
    duplicates: usize,
    /// Journal rows by kind.
    transactions: usize,
    replayed: usize,
    answered: usize,
    dropped: usize,
    /// Successful perscreates.
    persons: usize,
    /// Refused perscreates.
    refused: usize,
}

impl Expect {
    fn distinct(&self) -> usize {
        self.files - self.duplicates
    }

    /// The summary line `replay` prints for the whole directory on a fresh registry.
    fn summary(&self) -> String {
        let mut words = vec![];
        for (word, n) in [
            ("dropped", self.dropped),
            ("duplicate", self.duplicates),
            ("failed", self.refused + self.answered),
            ("replayed", self.replayed),
            ("success", self.persons),
        ] {
            if n > 0 {
                words.push(format!("{word} {n}"));
            }
        }
        format!("summary: {} mails: {}\n", self.files, words.join(", "))
    }
}

#[derive(Debug)]
struct Workload {
    dir: tempfile::TempDir,
    /// Digests of the distinct mails, in name order of their first file.
    distinct: Vec<String>,
    expect: Expect,
}

/// `n` mails in `NNNNN.eml` files; the mix is drawn from `rng`.
fn workload(n: usize, rng: &mut Rng) -> Workload {
    let signers = [Signer::new(ALICE), Signer::new(BOB)];
    let dir = tempfile::tempdir().unwrap();
    let mut e = Expect {
        files: n,
        ..Expect::default()
    };
    let mut mails: Vec<Vec<u8>> = Vec::with_capacity(n);
    let mut templates: Vec<(usize, String)> = Vec::new();
    let mut distinct = Vec::new();
    let mut seen = BTreeSet::new();
    for p in 0..n {
        let who = p % 2;
        let r = signers[who].registrar;
        let roll = rng.below(100);
        let mail = if !mails.is_empty() && roll < 4 {
            // The MTA delivered the same mail again: the same bytes.
            mails[rng.below(mails.len() as u64) as usize].clone()
        } else if !templates.is_empty() && roll < 8 {
            // The registrar sent a template again: same text, other signature.
            let (s, text) = &templates[rng.below(templates.len() as u64) as usize];
            e.replayed += 1;
            signers[*s].mail(text, RESIGNED_AT)
        } else if roll < 11 {
            e.answered += 1;
            unsigned_mail(&r, p)
        } else if roll < 13 {
            e.dropped += 1;
            stranger_mail(p)
        } else if roll < 18 {
            e.transactions += 1;
            e.refused += 1;
            let text = perscreate_invalid(&r, p);
            templates.push((who, text.clone()));
            signers[who].mail(&text, SIGNED_AT)
        } else {
            e.transactions += 1;
            e.persons += 1;
            let text = perscreate(&r, p);
            templates.push((who, text.clone()));
            signers[who].mail(&text, SIGNED_AT)
        };
        let digest = sha256_hex(&mail);
        if seen.insert(digest.clone()) {
            distinct.push(digest);
        } else {
            e.duplicates += 1;
        }
        std::fs::write(dir.path().join(format!("{p:05}.eml")), &mail).unwrap();
        mails.push(mail);
    }
    assert_eq!(
        e.transactions + e.replayed + e.answered + e.dropped,
        e.distinct(),
        "a copy came out as other bytes: {e:?}"
    );
    Workload {
        dir,
        distinct,
        expect: e,
    }
}

/// Where one kill landed.
#[derive(Debug, Clone, Copy)]
struct Kill {
    /// Mails journaled before this run started and when it was killed.
    before: usize,
    after: usize,
}

/// The state after an interrupted or completed run: the invariants, and the
/// journaled mails are exactly the first distinct mails in name order.
fn check_prefix(dir: &Path, w: &Workload, when: &str) -> hardening::Db {
    let db = read_db(dir);
    assert_invariants(dir, &db, when);
    let journaled: Vec<&str> = db
        .journal
        .iter()
        .map(|j| j.raw_sha256.as_deref().unwrap())
        .collect();
    let m = journaled.len();
    assert!(m <= w.distinct.len(), "{when}: {m} journal rows");
    let want: Vec<&str> = w.distinct[..m].iter().map(String::as_str).collect();
    assert!(
        journaled == want,
        "{when}: the journal is not the first {m} distinct mails in order"
    );
    db
}

fn replay(data: &Path, mails: &Path) -> std::process::Child {
    regmail(data)
        .arg("replay")
        .arg(mails)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Delivers what an interrupted delivery left leased (after the 10-minute lease).
fn flush_after_lease(data: &Path) {
    let out = run(
        regmail_at(data, "2026-11-22T08:26:00Z").args(["outbox", "flush"]),
        b"",
    );
    expect_code(&out, 0, "outbox flush");
}

/// Everything the complete workload must leave.
fn check_complete(data: &Path, w: &Workload, reference: Option<&str>, when: &str) {
    let db = check_prefix(data, w, when);
    let e = &w.expect;
    assert_eq!(db.journal.len(), e.distinct(), "{when}: journal rows");
    for (kind, n) in [
        ("transaction", e.transactions),
        ("replayed", e.replayed),
        ("answered", e.answered),
        ("dropped", e.dropped),
    ] {
        assert_eq!(db.kind(kind), n, "{when}: journal rows of kind {kind}");
    }
    assert_eq!(db.persons, e.persons as i64, "{when}: persons");
    assert_eq!(db.outbox.len(), e.distinct() - e.dropped, "{when}: outbox");
    let undelivered: Vec<i64> = db
        .outbox
        .iter()
        .filter(|o| o.delivered.is_none())
        .map(|o| o.id)
        .collect();
    assert!(
        undelivered.is_empty(),
        "{when}: undelivered {undelivered:?}"
    );
    let files = outbox_dir(data);
    assert_eq!(files.files.len(), db.outbox.len(), "{when}: outbox files");
    if let Some(reference) = reference {
        assert!(
            dump(data) == reference,
            "{when}: the registry differs from the never-killed run's"
        );
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: a number")))
}

/// What the kill trials found.
#[derive(Debug, Default)]
struct Report {
    kills: Vec<(usize, Kill)>,
    /// Files in `outbox/` that are no `<id>-<server-trid>.eml` (after the final flush).
    strays: Vec<String>,
    /// Runs that completed before their kill (not counted as trials).
    unkilled: usize,
}

/// `trials` trials of the workload of `n` mails (see the module doc).
fn kill_trials(trials: usize, n: usize, seed: u64) -> Report {
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let w = workload(n, &mut rng);
    let made = started.elapsed();

    let base = data_dir();
    // The reference: one run never killed; its time calibrates the kills.
    let reference = tempfile::tempdir().unwrap();
    copy_data_dir(base.path(), reference.path());
    let t0 = Instant::now();
    let out = run(
        regmail(reference.path()).arg("replay").arg(w.dir.path()),
        b"",
    );
    let reference_run = t0.elapsed();
    expect_code(&out, 0, "reference replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&w.expect.summary()),
        "expected `{}`:\n{stdout}",
        w.expect.summary()
    );
    flush_after_lease(reference.path());
    let reference_dump = dump(reference.path());
    check_complete(reference.path(), &w, None, "reference run");

    let mut full = reference_run;
    let mut report = Report::default();
    let mut trial = 0;
    while trial < trials {
        let tmp = tempfile::tempdir().unwrap();
        let data: PathBuf = tmp.path().join("data");
        copy_data_dir(base.path(), &data);
        let landed = kill_until_complete(&data, &w, &mut full, &mut rng, trial, &mut report.kills);
        flush_after_lease(&data);
        report.strays.extend(
            outbox_dir(&data)
                .strays
                .into_iter()
                .map(|s| format!("trial {trial}: {s}")),
        );
        check_complete(&data, &w, Some(&reference_dump), &format!("trial {trial}"));
        if landed == 0 {
            // The run beat its kill (the machine got faster): not a trial;
            // the next one uses the time this run took.
            report.unkilled += 1;
            assert!(report.unkilled <= trials + 5, "the kills never land");
            continue;
        }
        // The MTA delivers everything again: nothing is applied or answered twice.
        let out = run(regmail(&data).arg("replay").arg(w.dir.path()), b"");
        expect_code(&out, 0, "replay again");
        let again = format!("summary: {0} mails: duplicate {0}\n", w.expect.files);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(&again),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        check_complete(&data, &w, Some(&reference_dump), &format!("trial {trial}"));
        trial += 1;
    }
    let mid_work = report
        .kills
        .iter()
        .filter(|(_, k)| k.after > k.before && k.after < w.distinct.len())
        .count();
    eprintln!(
        "{trials} trials, {n} mails ({} distinct: {:?}), reference run {reference_run:?}, \
         mails made in {made:?}; {} kills ({mid_work} with new work committed before them and \
         mails left after them), {} run(s) beat their kill (recalibrated), \
         {} stray file(s) in outbox/; {:?} in all",
        w.distinct.len(),
        w.expect,
        report.kills.len(),
        report.unkilled,
        report.strays.len(),
        started.elapsed()
    );
    assert!(report.kills.len() >= trials);
    report
}

#[test]
fn sigkill_during_replay_loses_and_doubles_nothing() {
    let (trials, n) = match env_number("REGMAIL_KILL_TRIALS") {
        Some(t) => (
            t as usize,
            env_number("REGMAIL_KILL_MAILS").unwrap_or(1000) as usize,
        ),
        None => (3, 120),
    };
    let seed = env_number("REGMAIL_KILL_SEED").unwrap_or(0x5eed_c0de);
    let report = kill_trials(trials, n, seed);
    assert!(
        report.strays.is_empty(),
        "stray files left in outbox/ by killed deliveries: {:?}",
        report.strays
    );
}

/// Runs `replay` on `data` again and again, each run killed with SIGKILL
/// after a random delay, until a run completes; checks the state after each
/// kill; returns the number of kills.
fn kill_until_complete(
    data: &Path,
    w: &Workload,
    full: &mut Duration,
    rng: &mut Rng,
    trial: usize,
    kills: &mut Vec<(usize, Kill)>,
) -> usize {
    let mut landed = 0;
    loop {
        let before = read_db(data).journal.len();
        // A trial's first run is killed within the time a full run takes
        // (a trial that no kill reached would prove nothing); a rerun
        // anywhere in that time (it has less to do, so it may complete),
        // a time that grows with every tenth kill: on a machine slowed down
        // after the calibrating run, a rerun could otherwise outlast every
        // delay and never complete.
        let span = (full.as_micros().max(100) as u64).saturating_mul(1 + landed as u64 / 10);
        let delay = Duration::from_micros(if landed == 0 {
            span / 50 + rng.below(span * 9 / 10 - span / 50)
        } else {
            rng.below(span)
        });
        let mut child = replay(data, w.dir.path());
        let t = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() >= delay {
                child.kill().unwrap();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        if status.signal() != Some(9) {
            assert_eq!(status.code(), Some(0), "trial {trial}: replay {status:?}");
            if landed == 0 {
                *full = t.elapsed();
            }
            return landed;
        }
        let when = format!("trial {trial}, after kill {landed} at {delay:?}");
        let after = check_prefix(data, w, &when).journal.len();
        eprintln!(
            "trial {trial}: kill {landed} at {:>7.1} ms: {before} -> {after} of {} mails journaled",
            delay.as_secs_f64() * 1000.0,
            w.distinct.len()
        );
        kills.push((trial, Kill { before, after }));
        landed += 1;
        assert!(landed < 200, "no run completes");
    }
}
