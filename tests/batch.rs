//! `replay`'s engine (`pipeline::handle_batch`: mails checked ahead on
//! worker threads, group commits with a savepoint per mail) gives the same
//! records, replies and database as handling the same mails one by one.
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

#[test]
fn batch_equals_one_by_one() {
    let mails = mails();
    let one_dir = tempfile::tempdir().unwrap();
    let mut one = support::registry(one_dir.path(), Config::default());
    let expected: Vec<String> = mails
        .iter()
        .map(|m| summary(&pipeline::handle(&mut one, m, Mode::Commit).unwrap()))
        .collect();

    let batch_dir = tempfile::tempdir().unwrap();
    let mut batch = support::registry(batch_dir.path(), Config::default());
    let mut got = vec![String::new(); mails.len()];
    let options = BatchOptions {
        group: 3,
        workers: 2,
    };
    pipeline::handle_batch(&mut batch, &mails, options, |i, r| {
        got[i] = summary(&r.unwrap());
    })
    .unwrap();

    assert_eq!(got, expected);
    assert!(
        expected.iter().filter(|s| s.contains("error:")).count() >= 3,
        "the corpus holds refused mails, reported with their codes"
    );
    assert!(
        expected.last().unwrap().contains("Duplicate"),
        "the repeated mail is a duplicate"
    );
    assert_eq!(batch.store.dump().unwrap(), one.store.dump().unwrap());
    let delivered = |r: &regmail::pipeline::Registry| {
        r.store
            .outbox_all()
            .unwrap()
            .iter()
            .map(|m| (m.recipient.clone(), m.server_trid.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(delivered(&batch), delivered(&one));
    let files = |d: &std::path::Path| std::fs::read_dir(d.join("outbox")).unwrap().count();
    assert_eq!(files(batch_dir.path()), files(one_dir.path()));
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
