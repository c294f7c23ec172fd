//! Shared helpers of the hardening tests (`tests/crash.rs`, `tests/faults.rs`,
//! `tests/concurrency.rs`): a test registry driven through the built binary,
//! signed mails made in-process with the test keys, a seeded generator, and
//! the exactly-once invariants read straight from the database.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use regmail::auth::SigningKey;
use regmail::clock::FixedClock;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The instant every run of the binary is pinned to.
pub const NOW: &str = "2026-11-22T08:15:00Z";
/// When the registrars signed their mails.
pub const SIGNED_AT: &str = "2026-11-22T08:00:00Z";
/// When a registrar signed a template again (a replay with other bytes).
pub const RESIGNED_AT: &str = "2026-11-22T08:05:00Z";

/// A test registrar of `keys/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registrar {
    pub id: u32,
    pub key: &'static str,
    pub email: &'static str,
    pub name: &'static str,
    /// Prefix of its client-trids.
    pub prefix: &'static str,
}

pub const ALICE: Registrar = Registrar {
    id: 1001,
    key: "alice",
    email: "hostmaster@alpine-domains.test",
    name: "Alpine",
    prefix: "ALP",
};

pub const BOB: Registrar = Registrar {
    id: 1002,
    key: "bob",
    email: "robot@blue-registrar.test",
    name: "Blue",
    prefix: "BLU",
};

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_regmail"))
}

/// `regmail --data-dir DIR --now NOW`.
pub fn regmail(dir: &Path) -> Command {
    regmail_at(dir, NOW)
}

/// `regmail --data-dir DIR --now AT`.
pub fn regmail_at(dir: &Path, at: &str) -> Command {
    let mut c = Command::new(bin());
    c.arg("--data-dir").arg(dir).arg("--now").arg(at);
    c
}

/// Runs `cmd` with `stdin` (none: empty), capturing its output.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // A child that fails early may not read its input: ignore a broken pipe.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().unwrap()
}

/// Asserts the exit code, showing the output otherwise.
pub fn expect_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `regmail process` of one mail; returns the output after checking the exit code.
pub fn process(dir: &Path, mail: &[u8], code: i32) -> Output {
    let out = run(regmail(dir).arg("process"), mail);
    expect_code(&out, code, "process");
    out
}

/// An initialised data dir with the registrars alice (1001) and bob (1002).
pub fn data_dir() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    init_data_dir(tmp.path());
    tmp
}

/// Initialises `dir` and registers alice and bob.
pub fn init_data_dir(dir: &Path) {
    expect_code(&run(regmail(dir).arg("init"), b""), 0, "init");
    for r in [ALICE, BOB] {
        let key = root().join(format!("keys/{}.pub.asc", r.key));
        let out = run(
            regmail(dir)
                .args(["registrar", "add", "--id", &r.id.to_string()])
                .args(["--name", r.name, "--email", r.email, "--key"])
                .arg(key),
            b"",
        );
        expect_code(&out, 0, "registrar add");
    }
}

/// Copies an idle data dir (no `-wal`: the last connection checkpointed it).
pub fn copy_data_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if e.file_type().unwrap().is_file() {
            assert!(!name.ends_with("-wal"), "copying a data dir in use: {name}");
            std::fs::copy(e.path(), to.join(&name)).unwrap();
        }
    }
}

/// A registrar with its secret test key, making signed mails in-process.
#[derive(Debug)]
pub struct Signer {
    pub registrar: Registrar,
    key: SigningKey,
}

impl Signer {
    pub fn new(registrar: Registrar) -> Signer {
        let key =
            SigningKey::load(&root().join(format!("keys/{}.sec.asc", registrar.key))).unwrap();
        Signer { registrar, key }
    }

    /// `text` clearsigned at `at` into a mail from the registrar's address.
    pub fn mail(&self, text: &str, at: &str) -> Vec<u8> {
        let clock = FixedClock(instant(at));
        regmail::app::signed_mail(
            &self.key,
            self.registrar.id,
            self.registrar.email,
            text,
            &clock,
        )
        .unwrap()
    }
}

pub fn instant(at: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(at)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// A person's name made of letters only, distinct for each `n`.
pub fn letters(mut n: usize) -> String {
    let mut s = String::new();
    loop {
        s.insert(0, char::from(b'a' + (n % 26) as u8));
        n /= 26;
        if n == 0 {
            return s;
        }
    }
}

fn regframe(r: &Registrar, transaction: &str, client_trid: &str, object: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n<regframe>\n<regheader>\n\
         <version>1.1</version>\n<transaction>{transaction}</transaction>\n<count>1</count>\n\
         <accept-language>en</accept-language>\n<registrar-id>{}</registrar-id>\n\
         <client-trid>{client_trid}</client-trid>\n</regheader>\n<regbody><![CDATA[\n\
         Template Version: 5.0\n\n{object}source:         AT-DOM\n\n\
         currentNicAtTermsAndConditionsAccepted: Y\n]]></regbody>\n</regframe>\n",
        r.id
    )
}

/// The client-trid of the `n`-th perscreate of `r`.
pub fn perscreate_trid(r: &Registrar, n: usize) -> String {
    format!("{}-P{n:05}", r.prefix)
}

/// A valid perscreate (a new person, handle AUTO) with client-trid [`perscreate_trid`].
pub fn perscreate(r: &Registrar, n: usize) -> String {
    person(r, n, "person@example.at")
}

/// A perscreate refused for a bad e-mail value (5208): it still uses up its client-trid.
pub fn perscreate_invalid(r: &Registrar, n: usize) -> String {
    person(r, n, "not-an-address")
}

fn person(r: &Registrar, n: usize, email: &str) -> String {
    let object = format!(
        "nic-hdl:        AUTO\ncommand:        create\ntype:           NAT\n\
         personname:     Anna {} {}\nstreet address: Hauptstrasse 1\npostal code:    1010\n\
         city:           Wien\ncountry:        AT\nphone:          +43 1 5056416\n\
         e-mail:         {email}\n",
        r.name,
        letters(n)
    );
    regframe(r, "perscreate", &perscreate_trid(r, n), &object)
}

/// A domain create with two nameservers outside the zone (no glue needed).
pub fn domain_create(
    r: &Registrar,
    client_trid: &str,
    domain: &str,
    registrant: &str,
    tech: &str,
) -> String {
    let object = format!(
        "domain:         {domain}\ncommand:        create\nregistrant:     {registrant}\n\
         tech-c:         {tech}\nnserver:        ns1.example.net\nnserver:        ns2.example.net\n"
    );
    regframe(r, "create", client_trid, &object)
}

/// A mail from a registrar's address with no signed template: answered (4xxx).
pub fn unsigned_mail(r: &Registrar, n: usize) -> Vec<u8> {
    format!(
        "From: {}\nTo: robot@registry.example\nSubject: REGISTRAR: question {n}\n\
         Message-ID: <unsigned-{n}@test.invalid>\n\nplease create person {n}\n",
        r.email
    )
    .into_bytes()
}

/// A mail from nobody we know: journaled and dropped, never answered.
pub fn stranger_mail(n: usize) -> Vec<u8> {
    format!(
        "From: someone@stranger.test\nTo: robot@registry.example\nSubject: hello {n}\n\
         Message-ID: <stranger-{n}@test.invalid>\n\nbuy cheap domains {n}\n"
    )
    .into_bytes()
}

pub fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// A small seeded generator (xorshift64*): the same seed, the same choices.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

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
            "SELECT id, server_trid, recipient, message, attempts, next_attempt, delivered, last_error
             FROM outbox ORDER BY id",
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
