//! Runs every scenario in `tests/scenarios/*.scn` (format: tests/support/scenario.rs):
//! lifecycle.md row by row, on a movable clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::{DateTime, Duration, Utc};
use regmail::pipeline;
use regmail::store::StoreError;
use support::scenario::{Runner, Sent, config_of, registrar, words};

fn parse_time(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn duration(s: &str) -> Duration {
    let (n, unit) = s.split_at(s.len() - 1);
    let n: i64 = n.trim_start_matches('+').parse().unwrap();
    match unit {
        "d" => Duration::days(n),
        "h" => Duration::hours(n),
        "m" => Duration::minutes(n),
        _ => panic!("unit {unit}"),
    }
}

fn cents(s: &str) -> i64 {
    let (whole, frac) = s.split_once('.').unwrap_or((s, "00"));
    whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

/// The value of a state field, read through a projection at the runner's clock.
fn state(r: &mut Runner, object: &str, field: &str) -> String {
    let object = r.resolve(object);
    let field = field.to_string();
    pipeline::project(&mut r.reg, |tx| -> Result<String, StoreError> {
        if field == "email" || field == "owner" {
            return Ok(match (tx.person(&object)?, field.as_str()) {
                (None, _) => "gone".into(),
                (Some(p), "email") => p.data.email,
                (Some(p), _) => p.registrar_id.to_string(),
            });
        }
        let Some(d) = tx.domain(&object)? else {
            return Ok("gone".into());
        };
        Ok(match field.as_str() {
            "status" => d.status.join(" "),
            "registrar" => d.registrar_id.to_string(),
            "expires" => d.expires.clone(),
            "holder" => d.role("registrant").join(" "),
            "nserver" => d
                .nameservers
                .iter()
                .map(|n| n.host.clone())
                .collect::<Vec<_>>()
                .join(" "),
            "exists" => "yes".into(),
            other => panic!("state field {other}"),
        })
    })
    .unwrap()
}

fn balance(r: &mut Runner, who: &str) -> i64 {
    let id = registrar(who).unwrap().0;
    pipeline::project(&mut r.reg, |tx| tx.balance(id)).unwrap()
}

fn check_reply(reply: &Option<Sent>, w: &[String], line: &str) {
    let reply = reply
        .as_ref()
        .unwrap_or_else(|| panic!("`{line}`: no reply"));
    assert_eq!(
        reply.results.first(),
        Some(&w[1]),
        "`{line}`: {}",
        reply.body
    );
    for code in &w[2..] {
        assert!(
            reply.codes.contains(code),
            "`{line}`: code {code} missing in {:?}",
            reply.codes
        );
    }
}

fn pairs_of(args: &[String]) -> (Vec<(String, String)>, Option<String>) {
    let mut pairs = vec![];
    let mut name = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "as" {
            name = it.next().cloned();
        } else if let Some((k, v)) = a.split_once('=') {
            pairs.push((k.to_string(), v.to_string()));
        }
    }
    (pairs, name)
}

/// Runs one step line; `reply` holds the last template's reply.
fn step(r: &mut Runner, line: &str, w: &[String], reply: &mut Option<Sent>) {
    match w[0].as_str() {
        "profile" | "price" => {}
        "at" if w[1].starts_with('+') => r.advance(duration(&w[1])),
        "at" => r.set_now(parse_time(&w[1])),
        "credit" => {
            let id = registrar(&w[1]).unwrap().0;
            let now = regmail::reply::rfc3339(r.now);
            // As `regmail registrar credit`: what fell due is applied first.
            pipeline::operate(&mut r.reg, |_, _, _| Ok::<_, StoreError>(())).unwrap();
            r.collect();
            r.reg
                .store
                .add_credit(id, cents(&w[2]), &now)
                .unwrap()
                .unwrap();
        }
        "send" => {
            let (pairs, name) = pairs_of(&w[3..]);
            *reply = r.send(&w[1], &w[2], &pairs);
            if let (Some(name), Some(rep)) = (name, reply.as_ref()) {
                r.capture(&name, rep);
            }
        }
        "answer" => r.answer(&w[1], &w[2], w.get(3).is_some_and(|a| a == "auto")),
        "bounce" => r.bounce(&w[1]),
        "vacation" => r.vacation(&w[1]),
        "forged-bounce" => r.forged_bounce(),
        "tick" => {
            pipeline::tick(&mut r.reg).unwrap();
            r.collect();
        }
        "pending" | "qc" => operator(r, w),
        "serverlock" => {
            let (name, on) = (w[1].clone(), w[2] == "on");
            pipeline::operate(&mut r.reg, |tx, _, _| {
                tx.set_server_flag(&name, regmail::store::ServerFlag::Lock, on)
            })
            .unwrap();
            r.collect();
        }
        "suspend" => {
            let id = match w[1].as_str() {
                "alice" => 1001,
                "bob" => 1002,
                other => panic!("no registrar {other}"),
            };
            pipeline::operate(
                &mut r.reg,
                |_, _, _| Ok::<_, regmail::store::StoreError>(()),
            )
            .unwrap();
            let suspended = regmail::store::RegistrarStatus::Suspended;
            assert!(r.reg.store.set_registrar_status(id, suspended).unwrap());
            r.collect();
        }
        "reply" => check_reply(reply, w, line),
        "mail" => r.expect_mail(&w[1], &w[2]),
        "state" => {
            let want = w[3..].join(" ");
            let field = if w[2] == "gone" { "exists" } else { &w[2] };
            let want = if w[2] == "gone" {
                "gone".to_string()
            } else {
                want
            };
            let want = r.resolve(&want);
            assert_eq!(state(r, &w[1], field), want, "`{line}` at {}", r.now);
        }
        "balance" => assert_eq!(balance(r, &w[1]), cents(&w[2]), "`{line}`"),
        other => panic!("unknown step {other}"),
    }
}

/// The `'static` event name a blocked request reports.
fn event_name(text: &str) -> &'static str {
    match text {
        "status-prohibits" => "status-prohibits",
        "registrar-suspended" => "registrar-suspended",
        other => panic!("no blocking event {other}"),
    }
}

fn operator(r: &mut Runner, w: &[String]) {
    use regmail::lifecycle::operator;
    let object = r.resolve(&w[2]);
    let text = w[3..].join(" ");
    let (ok, _) = pipeline::operate(&mut r.reg, |tx, life, n| -> Result<bool, StoreError> {
        let id = tx
            .open_requests()?
            .into_iter()
            .find(|p| p.object == object)
            .map(|p| p.id);
        Ok(match (w[0].as_str(), w[1].as_str()) {
            ("pending", "confirm") => {
                operator::confirm(tx, life, id.unwrap_or(-1), &text, n)?.is_ok()
            }
            ("pending", "confirm-blocked") => {
                let refused = operator::confirm(tx, life, id.unwrap_or(-1), "consent", n)?;
                refused == Err(operator::Refusal::Blocked(event_name(&text)))
            }
            ("pending", "reject") => {
                operator::reject(tx, life, id.unwrap_or(-1), &text, n)?.is_ok()
            }
            ("qc", "accept") => operator::qc_accept(tx, life, &object, n)?.is_ok(),
            ("qc", "correct") => {
                operator::qc_request_correction(tx, life, &object, &text, n)?.is_ok()
            }
            other => panic!("operator step {other:?}"),
        })
    })
    .unwrap();
    assert!(ok, "operator step {w:?} refused");
    r.collect();
}

/// Runs a scenario text; panics with the line on the first failure.
pub fn run(name: &str, text: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut r = Runner::new(
        dir.path(),
        config_of(text),
        parse_time("2026-11-22T08:00:00Z"),
    );
    let mut reply = None;
    let mut last_action = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split(" # ").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let w = words(line);
        let is_expectation = matches!(w[0].as_str(), "reply" | "mail" | "state" | "balance");
        if !is_expectation && !last_action.is_empty() {
            r.expect_none_left(&format!("{name}:{last_action}"));
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            step(&mut r, line, &w, &mut reply);
        }));
        if let Err(e) = result {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{name}:{}: `{line}`: {msg}", n + 1);
        }
        if !is_expectation && !matches!(w[0].as_str(), "profile" | "price" | "at") {
            last_action = format!("{}: {line}", n + 1);
        }
    }
    r.expect_none_left(&format!("{name}: end"));
}

#[test]
fn every_scenario_passes() {
    let dir = support::root().join("tests/scenarios");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "scn"))
        .collect();
    names.sort();
    let only = std::env::var("REGMAIL_SCENARIO").ok();
    if only.is_none() {
        assert!(names.len() >= 20, "scenarios missing");
    }
    names.retain(|p| {
        only.as_deref()
            .is_none_or(|o| p.to_string_lossy().contains(o))
    });
    let mut failures = vec![];
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        if let Err(e) = std::panic::catch_unwind(|| run(&name, &text)) {
            let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
            failures.push(msg);
        }
    }
    assert!(
        failures.is_empty(),
        "{} scenario(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
