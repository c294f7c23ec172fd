//! `replay`'s engine (`pipeline::handle_batch`: mails checked ahead on
//! worker threads, group commits of atomic units, one per mail) gives the
//! same records, replies and database as handling the same mails one by
//! one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use regmail::app::signed_mail;
use regmail::auth::SigningKey;
use regmail::clock::FixedClock;
use regmail::config::Config;
use regmail::pipeline::{self, BatchOptions, Handled, Mode};

/// Real signed mails a registrar could send, right and wrong: the fixtures
/// (successes, a replay, errors with line numbers, a tampered signature, a
/// TAB, an unknown signer), more signed templates, and one mail twice.
fn mails() -> Vec<Vec<u8>> {
    let mut mails: Vec<Vec<u8>> = std::fs::read_dir(support::root().join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let alice = alice();
    for i in 0..5 {
        let email = if i == 2 {
            "not-an-address"
        } else {
            "anna@example.at"
        };
        mails.push(perscreate(&alice, &format!("BATCH-{i}"), email));
    }
    mails.push(mails[0].clone());
    mails
}

/// Alice, who signs registrar 1001's templates.
fn alice() -> SigningKey {
    SigningKey::load(&support::root().join("keys/alice.sec.asc")).unwrap()
}

/// A signed `perscreate` of registrar 1001 for a person with `email`.
fn perscreate(alice: &SigningKey, trid: &str, email: &str) -> Vec<u8> {
    let text = support::perscreate_text(1001, trid, email);
    let clock = FixedClock(support::now());
    signed_mail(alice, 1001, "hostmaster@alpine-domains.test", &text, &clock).unwrap()
}

/// What a record says, signature bytes aside.
fn summary(h: &Handled) -> String {
    format!(
        "{} {:?} {:?} {:?}\n{}",
        h.server_trid,
        h.disposition,
        h.registrar_id,
        h.codes,
        h.machine_block.as_deref().unwrap_or("")
    )
}

/// Groups of 3 keep fixture 03 and its replay 07 apart; groups of 64 put
/// every mail in one group, so the replay repeats a reply of the same,
/// still uncommitted group.
#[test]
fn batch_equals_one_by_one() {
    for group in [3, 64] {
        let mails = mails();
        let one = one_by_one(&mails, |_| {});
        let expected: Vec<String> = one
            .results
            .iter()
            .map(|r| summary(r.as_ref().unwrap()))
            .collect();
        let batch = batched(&mails, group, |_| {});
        let got: Vec<String> = batch
            .results
            .iter()
            .map(|r| summary(r.as_ref().unwrap()))
            .collect();
        assert_eq!(got, expected, "groups of {group}");
        assert!(
            expected.iter().filter(|s| s.contains("error:")).count() >= 3,
            "the corpus holds refused mails, reported with their codes"
        );
        assert!(
            expected.last().unwrap().contains("Duplicate"),
            "the repeated mail is a duplicate"
        );
        assert_eq!(
            batch.reg.store.dump().unwrap(),
            one.reg.store.dump().unwrap()
        );
        assert_eq!(replies(&batch.reg), replies(&one.reg), "groups of {group}");
        assert_every_reply_stored(batch.dir.path());
        let outbox = batch.reg.store.outbox_all().unwrap();
        let message = |trid: &str| {
            outbox
                .iter()
                .find(|m| m.server_trid == trid)
                .map(|m| m.message.clone())
                .unwrap()
        };
        let (created, replayed) = (
            server_trid(&batch.results[2]),
            server_trid(&batch.results[6]),
        );
        assert_eq!(
            message(&created),
            message(&replayed),
            "fixture 07 replays 03: the same reply bytes, groups of {group}"
        );
        let files = |d: &std::path::Path| std::fs::read_dir(d.join("outbox")).unwrap().count();
        assert_eq!(files(batch.dir.path()), files(one.dir.path()));
    }
}

/// A reply that cannot be composed (registrar 1003's address is broken)
/// fails its mail alone, in a batch as one by one: the other mails of its
/// group stand.
#[test]
fn a_reply_that_cannot_be_composed_fails_its_mail_alone() {
    let break_1003 = |dir: &std::path::Path| {
        let db = rusqlite::Connection::open(dir.join("regmail.sqlite")).unwrap();
        db.execute(
            "UPDATE registrars SET email = 'not an address' WHERE id = 1003",
            [],
        )
        .unwrap();
    };
    let mails = mails();
    let one = one_by_one(&mails, break_1003);
    let batch = batched(&mails, 64, break_1003);
    let outcome = |results: &[Result<Handled, String>]| -> Vec<String> {
        results
            .iter()
            .map(|r| match r {
                Ok(h) => summary(h),
                Err(e) => format!("failed: {e}"),
            })
            .collect()
    };
    let expected = outcome(&one.results);
    assert_eq!(outcome(&batch.results), expected);
    assert!(
        expected[5].starts_with("failed: ") && expected[5].contains("not an address"),
        "fixture 06 (registrar 1003) fails: {}",
        expected[5]
    );
    assert_eq!(
        expected.iter().filter(|s| s.starts_with("failed")).count(),
        1
    );
    assert_eq!(
        batch.reg.store.dump().unwrap(),
        one.reg.store.dump().unwrap()
    );
    assert_eq!(replies(&batch.reg), replies(&one.reg));
    assert_every_reply_stored(batch.dir.path());
}

/// A registry after a run, and each mail's result (an error as its text).
struct Run {
    reg: regmail::pipeline::Registry,
    results: Vec<Result<Handled, String>>,
    dir: tempfile::TempDir,
}

fn one_by_one(mails: &[Vec<u8>], prepare: impl Fn(&std::path::Path)) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = support::registry(dir.path(), Config::default());
    prepare(dir.path());
    let results = mails
        .iter()
        .map(|m| pipeline::handle(&mut reg, m, Mode::Commit).map_err(|e| e.to_string()))
        .collect();
    Run { reg, results, dir }
}

fn batched(mails: &[Vec<u8>], group: usize, prepare: impl Fn(&std::path::Path)) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut reg = support::registry(dir.path(), Config::default());
    prepare(dir.path());
    let mut got: Vec<Result<Handled, String>> = vec![Err(String::new()); mails.len()];
    let options = BatchOptions { group, workers: 2 };
    pipeline::handle_batch(&mut reg, mails, options, |i, r| {
        got[i] = r.map_err(|e| e.to_string());
    })
    .unwrap();
    Run {
        reg,
        results: got,
        dir,
    }
}

fn server_trid(r: &Result<Handled, String>) -> String {
    r.as_ref().unwrap().server_trid.clone()
}

/// Every reply in the outbox, its signature verified and set aside.
fn replies(reg: &regmail::pipeline::Registry) -> Vec<(String, String)> {
    let trent = support::trent();
    reg.store
        .outbox_all()
        .unwrap()
        .iter()
        .map(|m| {
            let text = support::verified_reply(&m.message, &trent).unwrap();
            (m.server_trid.clone(), text)
        })
        .collect()
}

/// Every answered mail's outbox row and journal row hold its reply.
fn assert_every_reply_stored(dir: &std::path::Path) {
    let db = rusqlite::Connection::open(dir.join("regmail.sqlite")).unwrap();
    let count = |sql: &str| db.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(
        count(
            "SELECT count(*) FROM outbox o LEFT JOIN outbox_messages m ON m.id = o.id
             WHERE m.message IS NULL OR length(m.message) = 0"
        ),
        0
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM journal WHERE kind IN ('transaction', 'answered') AND reply IS NULL"
        ),
        0
    );
    assert!(count("SELECT count(*) FROM outbox") > 5);
}

/// The writer's own checkpoints are off during a batch and a checkpointing
/// thread checkpoints the WAL every few groups: the batch's pages reach the
/// database file while it runs (left alone, the WAL would hold them all and
/// the database file would stay empty: 4 KiB for these mails).
#[test]
fn batch_checkpoints_as_it_goes() {
    const MAILS: usize = 240;
    let alice = alice();
    let mails: Vec<Vec<u8>> = (0..MAILS)
        .map(|i| perscreate(&alice, &format!("WAL-{i}"), "anna@example.at"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let mut reg = support::registry(dir.path(), Config::default());
    let size = |suffix: &str| {
        std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .map(|p| std::fs::metadata(p).unwrap().len())
            .sum::<u64>()
    };
    let options = BatchOptions {
        group: 8,
        workers: 1,
    };
    let mut handled = 0;
    pipeline::handle_batch(&mut reg, &mails, options, |_, r| {
        assert!(r.is_ok());
        handled += 1;
    })
    .unwrap();
    assert_eq!(handled, MAILS);
    let (wal, db) = (size(".sqlite-wal"), size(".sqlite"));
    assert!(wal > 0, "the database runs in WAL mode");
    // Checkpointed by the writer or by the checkpointing thread: 1.8-2.4 MiB.
    assert!(
        db > 1 << 20,
        "database file of {db} bytes after {MAILS} mails"
    );
}
