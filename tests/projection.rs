//! Property (lifecycle.md, first paragraph): for random scenarios, the state
//! read at T without any tick equals the state after ticking at T (and at
//! random instants before), then reading.
//!
//! Two registries get the same mails at the same instants; registry A is
//! also ticked at random points and at T, registry B never. Their database
//! dumps at T (B's projected) must be identical, outbox aside.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::Duration;
use proptest::prelude::*;
use regmail::pipeline;
use support::scenario::{Runner, config_of};

const DOMAINS: [&str; 3] = ["eins.at", "zwei.at", "drei.at"];
const HOLDERS: [&str; 2] = ["anna@example.at", "berta@example.at"];

#[derive(Debug, Clone)]
enum Step {
    Wait(i64),
    Tick,
    Transfer(usize),
    Answer(usize, &'static str),
    Delete(usize, bool),
    Undelete(usize),
    HolderChange(usize),
    DataChange(usize),
    Renew(usize),
    Decide(usize, bool),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1i64..600).prop_map(Step::Wait),
        1 => (1i64..400).prop_map(|d| Step::Wait(d * 24)),
        3 => Just(Step::Tick),
        3 => (0..3usize).prop_map(Step::Transfer),
        3 => (0..2usize, prop_oneof![Just("CONFIRM"), Just("REJECT"), Just("OBJECT")])
            .prop_map(|(h, v)| Step::Answer(h, v)),
        2 => (0..3usize, any::<bool>()).prop_map(|(d, now)| Step::Delete(d, now)),
        1 => (0..3usize).prop_map(Step::Undelete),
        1 => (0..3usize).prop_map(Step::HolderChange),
        1 => (0..2usize).prop_map(Step::DataChange),
        1 => (0..3usize).prop_map(Step::Renew),
        1 => (0..3usize, any::<bool>()).prop_map(|(d, ack)| Step::Decide(d, ack)),
    ]
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The token of the newest request notice (not a reminder: reminders, and
/// how notices are merged into digests, depend on when the timer ran) to
/// `email` carrying `verb`. A digest holds one section per notice.
fn request_token(r: &Runner, email: &str, verb: &str) -> Option<String> {
    let lookup = match verb {
        "REJECT" | "OBJECT" => verb,
        _ => "CONFIRM",
    };
    let prefix = format!("{lookup} ");
    r.log.iter().rev().filter(|s| s.to == email).find_map(|s| {
        s.body.rsplit("%% REPLY 1.0").find_map(|section| {
            let reminder = section
                .lines()
                .any(|l| l.starts_with("event:") && l.contains("reminder"));
            if reminder {
                return None;
            }
            section.lines().find_map(|l| {
                l.trim()
                    .strip_prefix(&prefix)
                    .filter(|t| t.len() == 32)
                    .map(str::to_string)
            })
        })
    })
}

fn answer(r: &mut Runner, email: &str, verb: &str, token: &str) {
    let mail = format!(
        "From: someone@elsewhere.example\r\nTo: robot@registry.example\r\nSubject: Re: {verb} {token}\r\n\
         Message-ID: <a-{token}@elsewhere.example>\r\nDate: Sun, 22 Nov 2026 08:00:00 +0000\r\n\r\n{email}\r\n"
    );
    r.process(mail.as_bytes());
}

fn setup(dir: &std::path::Path, mode: &str) -> Runner {
    let config = config_of(&format!(
        "profile transfer_mode = \"{mode}\"\nprofile qc_every = 2\nprice create 1000\nprice renew 800\n\
         price transfer 500\nprice restore 2000\n"
    ));
    let mut r = Runner::new(dir, config, support::now());
    for who in ["alice", "bob"] {
        let id = support::scenario::registrar(who).unwrap().0;
        r.reg
            .store
            .add_credit(id, 100_000, "2026-11-22T00:00:00.000Z")
            .unwrap()
            .unwrap();
    }
    r.send(
        "alice",
        "perscreate",
        &pairs(&[("name", "Anna Muster"), ("email", HOLDERS[0])]),
    );
    r.send(
        "alice",
        "perscreate",
        &pairs(&[("name", "Berta Berg"), ("email", HOLDERS[1])]),
    );
    for (i, d) in DOMAINS.iter().enumerate() {
        let holder = if i == 1 {
            "BB1002-NICAT"
        } else {
            "AM1001-NICAT"
        };
        r.send(
            "alice",
            "create",
            &pairs(&[("domain", d), ("holder", holder)]),
        );
    }
    r
}

/// The registrar sponsoring a domain now (projected), or alice.
fn sponsor(r: &mut Runner, d: &str) -> &'static str {
    let id = pipeline::project(&mut r.reg, |tx| {
        Ok::<_, regmail::store::StoreError>(tx.domain(d)?.map(|d| d.registrar_id))
    })
    .unwrap();
    if id == Some(1002) { "bob" } else { "alice" }
}

fn other(who: &str) -> &'static str {
    if who == "bob" { "alice" } else { "bob" }
}

/// Applies a step to one registry (ticks only if `ticking`).
fn apply(r: &mut Runner, s: &Step, ticking: bool) {
    match s {
        Step::Wait(h) => r.advance(Duration::hours(*h)),
        Step::Tick if ticking => {
            pipeline::tick(&mut r.reg).unwrap();
            r.collect();
        }
        Step::Tick => {}
        Step::Transfer(d) => {
            let gaining = other(sponsor(r, DOMAINS[*d]));
            r.send(gaining, "regtransfer", &pairs(&[("domain", DOMAINS[*d])]));
        }
        Step::Answer(h, verb) => {
            if let Some(token) = request_token(r, HOLDERS[*h], verb) {
                answer(r, HOLDERS[*h], verb, &token);
            }
        }
        Step::Delete(d, now) => {
            let who = sponsor(r, DOMAINS[*d]);
            let when = if *now { "now" } else { "expiration" };
            r.send(
                who,
                "delete",
                &pairs(&[("domain", DOMAINS[*d]), ("scheduledate", when)]),
            );
        }
        Step::Undelete(d) => {
            let who = sponsor(r, DOMAINS[*d]);
            r.send(who, "undelete", &pairs(&[("domain", DOMAINS[*d])]));
        }
        Step::HolderChange(d) => {
            let holder = if *d == 1 {
                "AM1001-NICAT"
            } else {
                "BB1002-NICAT"
            };
            r.send(
                "alice",
                "update",
                &pairs(&[("domain", DOMAINS[*d]), ("registrant", holder)]),
            );
        }
        Step::DataChange(p) => {
            let handle = if *p == 0 {
                "AM1001-NICAT"
            } else {
                "BB1002-NICAT"
            };
            r.send(
                "alice",
                "persupdate",
                &pairs(&[("handle", handle), ("city", "Graz")]),
            );
        }
        Step::Renew(d) => {
            let who = sponsor(r, DOMAINS[*d]);
            r.send(
                who,
                "renew",
                &pairs(&[("domain", DOMAINS[*d]), ("period", "1")]),
            );
        }
        Step::Decide(d, ack) => {
            let who = sponsor(r, DOMAINS[*d]);
            let t = if *ack { "transferack" } else { "transfernack" };
            r.send(who, t, &pairs(&[("domain", DOMAINS[*d])]));
        }
    }
}

/// A 32-hex-digit secret (a domain's authinfo) as a placeholder: secrets are
/// fresh random values whenever they are drawn, and no projected read shows
/// them (`query` and `check` do not print authinfo).
fn mask(line: &str) -> String {
    line.split(" | ")
        .map(|c| {
            if c.len() == 32 && c.bytes().all(|b| b.is_ascii_hexdigit()) {
                "<secret>"
            } else {
                c
            }
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The database at the runner's instant (projected), outbox left out,
/// secrets masked.
fn state(r: &mut Runner) -> String {
    let dump = pipeline::project(&mut r.reg, |tx| tx.dump()).unwrap();
    let mut keep = true;
    dump.lines()
        .filter(|l| {
            if l.starts_with('[') {
                keep = !l.starts_with("[outbox]");
            }
            keep
        })
        .map(|l| format!("{}\n", mask(l)))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn a_read_projects_what_a_tick_applies(
        holder_mode in any::<bool>(),
        steps in proptest::collection::vec(step(), 1..18),
        last in 0i64..900,
    ) {
        let mode = if holder_mode { "holder-confirmation" } else { "losing-registrar" };
        let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (mut a, mut b) = (setup(da.path(), mode), setup(db.path(), mode));
        for s in &steps {
            apply(&mut a, s, true);
            apply(&mut b, s, false);
        }
        a.advance(Duration::hours(last));
        b.advance(Duration::hours(last));
        pipeline::tick(&mut a.reg).unwrap();
        let (ticked, projected) = (state(&mut a), state(&mut b));
        if ticked != projected {
            let diff: Vec<String> = ticked
                .lines()
                .zip(projected.lines())
                .filter(|(x, y)| x != y)
                .take(6)
                .map(|(x, y)| format!("ticked:    {x}\nprojected: {y}"))
                .collect();
            prop_assert!(false, "states differ:\n{}", diff.join("\n"));
        }
        // Ticking again at the same instant changes nothing and sends nothing.
        let before = a.reg.store.outbox_all().unwrap().len();
        pipeline::tick(&mut a.reg).unwrap();
        prop_assert_eq!(a.reg.store.outbox_all().unwrap().len(), before);
        prop_assert_eq!(state(&mut a), ticked);
    }
}
