//! Parallel `regmail process` runs on one data dir, as Postfix starts them.
//!
//! - Two registrars (alice 1001, bob 1002) create the same new domain from
//!   two runs released at the same moment (a barrier), for several domains:
//!   exactly one gets `success` and sponsors the domain, the other's reply
//!   carries 6101 (domain exists); each mail is journaled once and answered once.
//! - 50 runs at once (distinct perscreates of both registrars, templates
//!   signed again, a refused perscreate, unsigned mails, a stranger's mail,
//!   exact byte copies): all exit 0 with the default busy timeout (none 75),
//!   every distinct mail is journaled exactly once (raw SHA-256), each
//!   answered mail has exactly one reply, server-trids are unique and
//!   gapless, each template applied once, every reply delivered in one file.
//!
//! Nothing here is opt-in: `cargo test --test concurrency`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hardening;

use hardening::*;
use std::collections::BTreeSet;
use std::time::Instant;

#[test]
fn two_registrars_create_the_same_domain_at_once() {
    let tmp = data_dir();
    let d = tmp.path();
    let signers = [Signer::new(ALICE), Signer::new(BOB)];
    // Each registrar's own registrant and tech contact.
    let handles: Vec<[String; 2]> = signers
        .iter()
        .map(|s| {
            [0, 1].map(|n| {
                let mail = s.mail(&perscreate(&s.registrar, n), SIGNED_AT);
                process(d, &mail, 0);
                let row = assert_handled_once(&read_db(d), &mail, "success");
                row.object.unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for round in 0..4 {
        let domain = format!("race-{}.at", letters(round));
        let mails: Vec<Vec<u8>> = signers
            .iter()
            .zip(&handles)
            .map(|(s, [registrant, tech])| {
                let trid = format!("{}-D{round}", s.registrar.prefix);
                let text = domain_create(&s.registrar, &trid, &domain, registrant, tech);
                s.mail(&text, SIGNED_AT)
            })
            .collect();
        for (code, stderr) in process_at_once(d, &mails) {
            assert_eq!(code, Some(0), "{domain}: {stderr}");
        }
        let db = read_db(d);
        assert_invariants(d, &db, &domain);
        let rows: Vec<JournalRow> = mails
            .iter()
            .map(|m| {
                let rows = db.rows_of(m);
                assert_eq!(rows.len(), 1, "{domain}: {rows:?}");
                rows[0].clone()
            })
            .collect();
        let won: Vec<usize> = (0..2).filter(|&i| rows[i].result == "success").collect();
        assert_eq!(
            won.len(),
            1,
            "{domain}: exactly one create succeeds: {rows:?}"
        );
        let (w, l) = (won[0], 1 - won[0]);
        assert_eq!(rows[l].result, "failed", "{rows:?}");
        assert!(
            rows[l].codes.split_whitespace().any(|c| c == "6101"),
            "{domain}: the loser is told the domain exists: {rows:?}"
        );
        assert!(
            rows[w].server_trid < rows[l].server_trid,
            "the first committed wins"
        );
        let reply = &db.outbox_of(&rows[l].server_trid)[0].message;
        assert!(String::from_utf8_lossy(reply).contains("6101"));
        assert_eq!(
            db.domains.get(&domain).copied(),
            Some(i64::from(signers[w].registrar.id)),
            "{domain}: sponsored by the winner"
        );
        winners.push(signers[w].registrar.id);
    }
    eprintln!("winners: {winners:?}");
}

#[test]
fn fifty_parallel_process_runs_each_mail_once() {
    let tmp = data_dir();
    let d = tmp.path();
    let signers = [Signer::new(ALICE), Signer::new(BOB)];
    let mut mails: Vec<Vec<u8>> = Vec::new();
    for n in 0..38 {
        let s = &signers[n % 2];
        mails.push(s.mail(&perscreate(&s.registrar, n), SIGNED_AT));
    }
    // The same templates signed again: one applies, the other is a replay.
    for n in 0..2 {
        let s = &signers[n % 2];
        mails.push(s.mail(&perscreate(&s.registrar, n), RESIGNED_AT));
    }
    mails.push(signers[0].mail(&perscreate_invalid(&ALICE, 100), SIGNED_AT));
    mails.push(unsigned_mail(&ALICE, 101));
    mails.push(unsigned_mail(&BOB, 102));
    mails.push(stranger_mail(103));
    // The MTA delivers some mails twice: the same bytes.
    for n in 2..8 {
        mails.push(mails[n].clone());
    }
    assert_eq!(mails.len(), 50);
    let mut rng = Rng::new(50);
    for i in (1..mails.len()).rev() {
        mails.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let distinct: BTreeSet<String> = mails.iter().map(|m| sha256_hex(m)).collect();
    assert_eq!(distinct.len(), 44);

    let t = Instant::now();
    let results = process_at_once(d, &mails);
    let took = t.elapsed();
    let exits: Vec<Option<i32>> = results.iter().map(|r| r.0).collect();
    assert!(
        exits.iter().all(|c| *c == Some(0)),
        "exits {exits:?}\n{}",
        results
            .iter()
            .map(|r| r.1.as_str())
            .collect::<Vec<_>>()
            .join("")
    );
    eprintln!("50 parallel process runs in {took:?}");

    let db = read_db(d);
    assert_invariants(d, &db, "after 50 parallel runs");
    assert_eq!(db.journal.len(), 44, "each distinct mail journaled once");
    for m in &mails {
        assert_eq!(db.rows_of(m).len(), 1);
    }
    for (kind, n) in [
        ("transaction", 39),
        ("replayed", 2),
        ("answered", 2),
        ("dropped", 1),
    ] {
        assert_eq!(db.kind(kind), n, "journal rows of kind {kind}");
    }
    assert_eq!(db.persons, 38, "each perscreate applied once");
    assert_eq!(db.outbox.len(), 43, "one reply per answered mail");
    assert!(
        db.outbox.iter().all(|o| o.delivered.is_some()),
        "every reply delivered by one of the runs"
    );
    assert_eq!(outbox_dir(d).files.len(), 43);
}
