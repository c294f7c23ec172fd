//! The exactly-once invariants of the hardening tests, read straight from a
//! data dir: its database (journal, outbox, sequences, integrity) and its
//! outbox directory.
#![allow(dead_code)]

use super::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The database of a data dir.
pub fn db_path(dir: &Path) -> PathBuf {
    dir.join(regmail::app::DB_FILE)
}

/// A plain connection to the registry's database (reads only, unless told).
pub fn open_db(dir: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db_path(dir)).unwrap();
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .unwrap();
    conn
}

/// The product's deterministic dump of the registry (no secrets, no blobs).
pub fn dump(dir: &Path) -> String {
    regmail::store::Store::open(&db_path(dir), std::time::Duration::from_secs(10))
        .unwrap()
        .dump()
        .unwrap()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalRow {
    pub server_trid: String,
    pub kind: String,
    pub registrar_id: Option<i64>,
    pub transaction: Option<String>,
    pub object: Option<String>,
    pub result: String,
    pub codes: String,
    pub raw_sha256: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub server_trid: String,
    pub recipient: String,
    pub message: Vec<u8>,
    pub attempts: i64,
    pub next_attempt: String,
    pub delivered: Option<String>,
    pub last_error: Option<String>,
}

/// What the tests read from the database.
#[derive(Debug, Clone)]
pub struct Db {
    /// By server-trid.
    pub journal: Vec<JournalRow>,
    /// By id.
    pub outbox: Vec<OutboxRow>,
    pub persons: i64,
    pub domains: BTreeMap<String, i64>,
    /// The `server_trid` sequence.
    pub trid_sequence: i64,
    pub integrity: String,
}

impl Db {
    /// Journal rows of the mail with these bytes.
    pub fn rows_of(&self, mail: &[u8]) -> Vec<&JournalRow> {
        let d = sha256_hex(mail);
        self.journal
            .iter()
            .filter(|j| j.raw_sha256.as_deref() == Some(d.as_str()))
            .collect()
    }

    /// Outbox rows of a server-trid.
    pub fn outbox_of(&self, trid: &str) -> Vec<&OutboxRow> {
        self.outbox
            .iter()
            .filter(|o| o.server_trid == trid)
            .collect()
    }

    /// Journal rows of a kind.
    pub fn kind(&self, kind: &str) -> usize {
        self.journal.iter().filter(|j| j.kind == kind).count()
    }
}

pub fn read_db(dir: &Path) -> Db {
    read_conn(&open_db(dir))
}

pub fn read_conn(conn: &rusqlite::Connection) -> Db {
    let mut stmt = conn
        .prepare(
            "SELECT server_trid, kind, registrar_id, transaction_name, object, result, codes, raw_sha256
             FROM journal ORDER BY server_trid",
        )
        .unwrap();
    let journal = stmt
        .query_map([], |r| {
            Ok(JournalRow {
                server_trid: r.get(0)?,
                kind: r.get(1)?,
                registrar_id: r.get(2)?,
                transaction: r.get(3)?,
                object: r.get(4)?,
                result: r.get(5)?,
                codes: r.get(6)?,
                raw_sha256: r.get(7)?,
            })
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT o.id, o.server_trid, o.recipient, m.message, o.attempts, o.next_attempt,
                o.delivered, o.last_error
             FROM outbox o JOIN outbox_messages m ON m.id = o.id ORDER BY o.id",
        )
        .unwrap();
    let outbox = stmt
        .query_map([], |r| {
            Ok(OutboxRow {
                id: r.get(0)?,
                server_trid: r.get(1)?,
                recipient: r.get(2)?,
                message: r.get(3)?,
                attempts: r.get(4)?,
                next_attempt: r.get(5)?,
                delivered: r.get(6)?,
                last_error: r.get(7)?,
            })
        })
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let persons = conn
        .query_row("SELECT count(*) FROM persons", [], |r| r.get(0))
        .unwrap();
    let mut stmt = conn
        .prepare("SELECT name, registrar_id FROM domains ORDER BY name")
        .unwrap();
    let domains = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<BTreeMap<_, _>, _>>()
        .unwrap();
    let trid_sequence = conn
        .query_row(
            "SELECT value FROM sequences WHERE name = 'server_trid'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let integrity = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    Db {
        journal,
        outbox,
        persons,
        domains,
        trid_sequence,
        integrity,
    }
}

/// The `.eml` files of the file transport, by outbox row id, and anything else found there.
#[derive(Debug, Default)]
pub struct OutboxDir {
    /// Row id -> (file name, content).
    pub files: BTreeMap<i64, Vec<(String, Vec<u8>)>>,
    /// Files that are no delivered mail (e.g. a temporary file of an interrupted write).
    pub strays: Vec<String>,
}

pub fn outbox_dir(dir: &Path) -> OutboxDir {
    let mut out = OutboxDir::default();
    let Ok(entries) = std::fs::read_dir(dir.join("outbox")) else {
        return out;
    };
    for e in entries {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let id = name
            .strip_suffix(".eml")
            .and_then(|stem| stem.split_once('-'))
            .and_then(|(id, _)| id.parse::<i64>().ok());
        match id {
            Some(id) => out
                .files
                .entry(id)
                .or_default()
                .push((name, std::fs::read(e.path()).unwrap())),
            None => out.strays.push(name),
        }
    }
    out
}

/// The file name the file transport gives an outbox row.
pub fn eml_name(row: &OutboxRow) -> String {
    let trid: String = row
        .server_trid
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("{:08}-{trid}.eml", row.id)
}

/// The invariants that hold at every instant, also right after a SIGKILL:
/// an intact database; each raw mail journaled at most once; server-trids
/// unique and gapless; each answered mail with exactly one reply, a dropped
/// one with none, no reply without its journal row; one person per successful
/// perscreate; each delivered reply in exactly one file with its bytes, and
/// no `.eml` file that is not a row's (with the file transport: `files` is
/// the data dir). Returns the problems found.
pub fn invariant_problems(files: Option<&Path>, db: &Db) -> Vec<String> {
    let mut p = Vec::new();
    if db.integrity != "ok" {
        p.push(format!("integrity_check: {}", db.integrity));
    }
    let mut seen = BTreeSet::new();
    for j in &db.journal {
        match &j.raw_sha256 {
            None => p.push(format!("{}: no raw_sha256", j.server_trid)),
            Some(d) => {
                if !seen.insert(d.clone()) {
                    p.push(format!("{}: raw mail {d} journaled twice", j.server_trid));
                }
            }
        }
    }
    let expected: Vec<String> = (1..=db.journal.len())
        .map(|n| format!("RM{n:010}"))
        .collect();
    let trids: Vec<String> = db.journal.iter().map(|j| j.server_trid.clone()).collect();
    if trids != expected {
        p.push(format!(
            "server-trids are not RM..1 to RM..{} without gaps: {:?}",
            db.journal.len(),
            trids.iter().zip(&expected).find(|(a, b)| a != b)
        ));
    }
    if db.trid_sequence != db.journal.len() as i64 {
        p.push(format!(
            "server_trid sequence {} but {} journal rows",
            db.trid_sequence,
            db.journal.len()
        ));
    }
    let journaled: BTreeMap<&str, &JournalRow> = db
        .journal
        .iter()
        .map(|j| (j.server_trid.as_str(), j))
        .collect();
    let mut replies: BTreeMap<&str, usize> = BTreeMap::new();
    for o in &db.outbox {
        *replies.entry(o.server_trid.as_str()).or_default() += 1;
        if !journaled.contains_key(o.server_trid.as_str()) {
            p.push(format!(
                "outbox row {} for {} has no journal row",
                o.id, o.server_trid
            ));
        }
    }
    for j in &db.journal {
        let n = replies.get(j.server_trid.as_str()).copied().unwrap_or(0);
        let want = usize::from(j.kind != "dropped");
        if n != want {
            p.push(format!(
                "{} ({}): {n} outbox rows, expected {want}",
                j.server_trid, j.kind
            ));
        }
    }
    let created = db
        .journal
        .iter()
        .filter(|j| {
            j.kind == "transaction"
                && j.transaction.as_deref() == Some("perscreate")
                && j.result == "success"
        })
        .count() as i64;
    if db.persons != created {
        p.push(format!(
            "{} persons but {created} successful perscreates",
            db.persons
        ));
    }
    let Some(dir) = files else {
        return p;
    };
    let files = outbox_dir(dir);
    let rows: BTreeMap<i64, &OutboxRow> = db.outbox.iter().map(|o| (o.id, o)).collect();
    for (id, fs) in &files.files {
        if fs.len() > 1 {
            p.push(format!("outbox row {id} has {} files", fs.len()));
        }
        match rows.get(id) {
            None => p.push(format!("file {} belongs to no outbox row", fs[0].0)),
            Some(row) => {
                for (name, content) in fs {
                    if *name != eml_name(row) {
                        p.push(format!("file {name} for row {id} ({})", row.server_trid));
                    } else if *content != row.message {
                        p.push(format!("file {name} differs from the queued mail"));
                    }
                }
            }
        }
    }
    for o in &db.outbox {
        if o.delivered.is_some() && !files.files.contains_key(&o.id) {
            p.push(format!("row {} marked delivered but has no file", o.id));
        }
    }
    p
}

/// Panics with every problem [`invariant_problems`] finds (file transport in `dir`).
pub fn assert_invariants(dir: &Path, db: &Db, when: &str) {
    let p = invariant_problems(Some(dir), db);
    assert!(p.is_empty(), "{when}:\n  {}", p.join("\n  "));
}

/// [`assert_invariants`] of the database alone (another transport).
pub fn assert_db_invariants(db: &Db, when: &str) {
    let p = invariant_problems(None, db);
    assert!(p.is_empty(), "{when}:\n  {}", p.join("\n  "));
}

/// The mail is journaled exactly once with this result, and (unless dropped)
/// has exactly one reply in the outbox.
pub fn assert_handled_once(db: &Db, mail: &[u8], result: &str) -> JournalRow {
    let rows = db.rows_of(mail);
    assert_eq!(rows.len(), 1, "journal rows of the mail: {rows:?}");
    let row = rows[0].clone();
    assert_eq!(row.result, result, "{row:?}");
    let replies = db.outbox_of(&row.server_trid);
    let want = usize::from(row.kind != "dropped");
    assert_eq!(replies.len(), want, "outbox rows of {}", row.server_trid);
    row
}

/// Every file below `dir` (relative path -> SHA-256), SQLite's `-wal` and
/// `-shm` files left out (their content is not the database's state; the
/// dump covers what a reader would see).
pub fn file_hashes(dir: &Path) -> BTreeMap<String, String> {
    fn walk(base: &Path, at: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(at).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let rel = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if e.file_type().unwrap().is_dir() {
                out.insert(format!("{rel}/"), String::new());
                walk(base, &path, out);
            } else if !rel.ends_with("-wal") && !rel.ends_with("-shm") {
                out.insert(rel, sha256_hex(&std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Spawns `regmail process` children at once, then writes every mail to its
/// child's stdin at the same moment (a barrier); returns each exit code and
/// stderr, in the order of `mails`.
pub fn process_at_once(dir: &Path, mails: &[Vec<u8>]) -> Vec<(Option<i32>, String)> {
    let mut children: Vec<std::process::Child> = mails
        .iter()
        .map(|_| {
            regmail(dir)
                .arg("process")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let barrier = std::sync::Barrier::new(mails.len());
    std::thread::scope(|s| {
        for (child, mail) in children.iter_mut().zip(mails) {
            let mut stdin = child.stdin.take().unwrap();
            let barrier = &barrier;
            s.spawn(move || {
                barrier.wait();
                // A child that failed before reading shows in its exit code.
                let _ = stdin.write_all(mail);
            });
        }
    });
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            (
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        })
        .collect()
}
