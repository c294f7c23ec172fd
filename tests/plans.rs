//! Query plans: no statement that handling mail or the timer runs walks a
//! whole table that grows with the registry (domains, persons, the journal,
//! the outbox, history...). Every golden case's mails are handled with
//! statement tracing on, then the timer runs a year later; each distinct
//! statement is then explained (`EXPLAIN QUERY PLAN`) against the schema.
//! (The outbox's due query once scanned every delivered mail, bodies
//! included, on each delivery.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use regmail::clock::FixedClock;
use regmail::config::Config;
use regmail::pipeline::{self, Mode};
use rusqlite::trace::TraceEvent;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

fn record(event: TraceEvent<'_>) {
    if let TraceEvent::Stmt(stmt, _) = event {
        SEEN.lock().unwrap().insert(stmt.sql().to_string());
    }
}

/// Tables bounded by the registry's set-up, not by its use: a scan is fine.
const SMALL: &[&str] = &["sequences", "registrars", "certificates", "zone_serials"];

/// Known walks, each with its reason; anything else fails.
const KNOWN: &[(&str, &str)] = &[(
    "WHERE name LIKE '%.' || ?1",
    "hosts named under a domain being deleted: a suffix match walks the \
     host names (not their uses by domains, many times more); an index \
     would need a reversed-name column (a later migration); runs only \
     for a deletion",
)];

/// Handles every case's mails, then a tick a year on; returns the database
/// of the last case (for its schema).
fn exercise(tmp: &Path) -> PathBuf {
    let mut db = PathBuf::new();
    for (i, case) in support::case_dirs().iter().enumerate() {
        let dir = tmp.join(i.to_string());
        let config = match std::fs::read_to_string(case.join("regmail.toml")) {
            Ok(text) => Config::parse(&text).unwrap(),
            Err(_) => Config::default(),
        };
        let mut reg = support::registry(&dir, config);
        reg.store.trace_statements(Some(record));
        for eml in support::files(case, "eml") {
            pipeline::handle(&mut reg, &std::fs::read(eml).unwrap(), Mode::Commit).unwrap();
        }
        reg.clock = Box::new(FixedClock(support::now() + chrono::Duration::days(400)));
        pipeline::tick(&mut reg).unwrap();
        reg.store.trace_statements(None);
        db = dir.join("regmail.sqlite");
    }
    db
}

/// The table an alias of `sql` stands for (`FROM ledger l`), or the name.
fn table_of<'a>(sql: &'a str, name: &'a str) -> &'a str {
    let words: Vec<&str> = sql.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1] == name && w[0] != "FROM" && w[0] != "JOIN")
        .map_or(name, |w| w[0])
}

/// Partial indexes: a walk over one covers only the rows of its condition.
fn partial_indexes(conn: &rusqlite::Connection) -> Vec<String> {
    conn.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The plan lines of `sql` that walk a whole growing table.
fn full_scans(conn: &rusqlite::Connection, partial: &[String], sql: &str) -> Vec<String> {
    let Ok(mut stmt) = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")) else {
        return Vec::new(); // transaction control, pragmas: nothing to plan
    };
    // Unbound parameters: the plan does not depend on their values.
    let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
    let details: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    details
        .into_iter()
        .filter(|d| {
            let Some(rest) = d.strip_prefix("SCAN ") else {
                return false;
            };
            let mut words = rest.split_whitespace();
            let table = table_of(sql, words.next().unwrap_or(""));
            let index = words.skip_while(|w| *w != "INDEX").nth(1).unwrap_or("");
            table != "CONSTANT" && !SMALL.contains(&table) && !partial.iter().any(|p| p == index)
        })
        .collect()
}

#[test]
fn handling_mail_and_the_timer_walk_no_growing_table() {
    let tmp = tempfile::tempdir().unwrap();
    let db = exercise(tmp.path());
    let conn = rusqlite::Connection::open(db).unwrap();
    let seen = SEEN.lock().unwrap().clone();
    assert!(seen.len() > 50, "too few statements traced: {}", seen.len());
    let partial = partial_indexes(&conn);
    let offenders: Vec<String> = seen
        .iter()
        .filter(|sql| !KNOWN.iter().any(|(known, _)| sql.contains(known)))
        .filter_map(|sql| {
            let scans = full_scans(&conn, &partial, sql);
            (!scans.is_empty()).then(|| format!("{sql}\n    -> {}", scans.join("; ")))
        })
        .collect();
    assert!(
        offenders.is_empty(),
        "{} statement(s) walk a whole table:\n{}",
        offenders.len(),
        offenders.join("\n")
    );
}
