//! The benchmark registry: 1,000,000 domains, 1,000 registrar certificates,
//! and fresh signed templates; the pipe-mode measurement.

use regmail::app::{DEMO_NOW, setup, signed_mail};
use regmail::auth::{SigningKey, parse_certificate};
use regmail::clock::FixedClock;
use regmail::config::Config;
use regmail::pipeline::Registry;
use regmail::store::Seed;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// A registrar that signs the templates.
pub struct Sender {
    pub id: u32,
    pub email: &'static str,
    pub key: SigningKey,
    pub holder: &'static str,
}

/// Waits until creating a file in Cargo's scratch directory costs at most
/// 60 us (an idle ext4 file system: about 25 us), six minutes at most,
/// and says how long it waited. The probe files are kept until the
/// returned directory is dropped (after the measurements): deleting them
/// would itself slow the next files down.
pub fn settle_file_system() -> Res<Option<tempfile::TempDir>> {
    if std::env::var("REGMAIL_BENCH_SETTLE").is_ok_and(|v| v == "0") {
        return Ok(None);
    }
    const FILES: u32 = 100;
    let probe = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
    let started = Instant::now();
    for round in 0.. {
        let t = Instant::now();
        for i in 0..FILES {
            std::fs::write(probe.path().join(format!("{round}-{i}")), b"x")?;
        }
        let per_file = t.elapsed().as_secs_f64() / f64::from(FILES);
        let waited = started.elapsed().as_secs();
        if per_file <= 60e-6 || waited >= 360 {
            if waited > 0 {
                println!(
                    "waited {waited} s for the file system to settle (a new file: {:.0} us)",
                    per_file * 1e6
                );
            }
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(10));
    }
    Ok(Some(probe))
}

/// The registry under test.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub registry: Registry,
    pub senders: Vec<Sender>,
    pub domains: usize,
    pub certificates: usize,
    pub now: chrono::DateTime<chrono::Utc>,
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Bench {
    pub fn new(domains: usize, certificates: usize) -> Res<Bench> {
        // Cargo's scratch directory for benches, not /tmp: on ext4 without a
        // journal a new file costs far more for minutes after many were
        // deleted nearby (README, Measurements), and /tmp sees that most.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))?;
        let now = chrono::DateTime::parse_from_rfc3339(DEMO_NOW)?.with_timezone(&chrono::Utc);
        let keys = root().join("keys");
        let mut registry = setup(
            dir.path(),
            &keys,
            Some(&keys.join("trent.sec.asc")),
            Config::default(),
            now,
        )?;
        let stamp = regmail::reply::rfc3339(now);
        let registered = registry.store.registrars()?.len();
        for i in registered..certificates {
            let id = 20_000 + i as u32;
            let key = SigningKey::generate(&format!("Registrar {id} <r{id}@example.test>"), now)?;
            let cert = parse_certificate(key.public_armored()?.as_bytes())?;
            let email = format!("r{id}@example.test");
            registry
                .store
                .add_registrar(id, &format!("Registrar {id}"), &email, &stamp)?;
            let _ = registry.store.add_certificate(
                id,
                &cert.fingerprint,
                &cert.bytes,
                &cert.key_handles,
                &stamp,
            )?;
        }
        let senders = vec![
            sender(
                1001,
                "hostmaster@alpine-domains.test",
                "alice",
                "SDA1-NICAT",
            )?,
            sender(1002, "robot@blue-registrar.test", "bob", "SDB1-NICAT")?,
        ];
        let expires = regmail::reply::rfc3339(now + chrono::Duration::days(365));
        for (k, s) in senders.iter().enumerate() {
            registry.store.seed(&Seed {
                registrar_id: s.id,
                holder: s.holder,
                prefix: if k == 0 { "seeda" } else { "seedb" },
                domains: (domains / senders.len()) as u64,
                now: &stamp,
                expires: &expires,
            })?;
        }
        Ok(Bench {
            dir,
            registry,
            senders,
            domains,
            certificates,
            now,
        })
    }

    /// `n` different signed mails: domain creates and person creates, from
    /// two registrars in turn.
    pub fn mails(&self, tag: &str, n: usize) -> Res<Vec<Vec<u8>>> {
        let clock = FixedClock(self.now);
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let s = &self.senders[i % self.senders.len()];
            let trid = format!("{tag}-{i}");
            let text = if i % 4 == 3 {
                perscreate(s.id, &trid)
            } else {
                create(
                    s.id,
                    &trid,
                    &format!("bench-{}{i}.at", tag.to_lowercase()),
                    s.holder,
                )
            };
            out.push(signed_mail(&s.key, s.id, s.email, &text, &clock)?);
        }
        Ok(out)
    }
}

/// Writes `mails` as `00001.eml`, ... into `dir` (created).
pub fn write_mails(dir: &Path, mails: &[Vec<u8>]) -> Res<()> {
    std::fs::create_dir_all(dir)?;
    for (i, mail) in mails.iter().enumerate() {
        std::fs::write(dir.join(format!("{:05}.eml", i + 1)), mail)?;
    }
    Ok(())
}

fn sender(id: u32, email: &'static str, name: &str, holder: &'static str) -> Res<Sender> {
    let key = SigningKey::load(&root().join(format!("keys/{name}.sec.asc")))?;
    Ok(Sender {
        id,
        email,
        key,
        holder,
    })
}

fn header(registrar: u32, transaction: &str, trid: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n<regframe>\n<regheader>\n\
         <version>1.1</version>\n<transaction>{transaction}</transaction>\n<count>1</count>\n\
         <accept-language>en</accept-language>\n<registrar-id>{registrar}</registrar-id>\n\
         <client-trid>{trid}</client-trid>\n</regheader>\n<regbody><![CDATA[\n\
         Template Version: 5.0\n\n"
    )
}

const FOOTER: &str = "\ncurrentNicAtTermsAndConditionsAccepted: Y\n]]></regbody>\n</regframe>\n";

fn create(registrar: u32, trid: &str, domain: &str, holder: &str) -> String {
    format!(
        "{}domain:         {domain}\ncommand:        create\nregistrant:     {holder}\n\
         tech-c:         {holder}\nnserver:        ns1.seed.example\n\
         nserver:        ns2.seed.example\nsource:         AT-DOM\n{FOOTER}",
        header(registrar, "create", trid)
    )
}

fn perscreate(registrar: u32, trid: &str) -> String {
    format!(
        "{}nic-hdl:        AUTO\ncommand:        create\ntype:           NAT\n\
         personname:     Anna Muster\nstreet address: Hauptstrasse 1\npostal code:    1010\n\
         city:           Wien\ncountry:        AT\nphone:          +43 1 5056416\n\
         e-mail:         anna@example.at\nsource:         AT-DOM\n{FOOTER}",
        header(registrar, "perscreate", trid)
    )
}

/// Writes every dirty page to the disk now (`sync`): the setup's database
/// and the previous measurement's files would otherwise be written back
/// during the next measurement, in the middle of its fsyncs.
pub fn flush_to_disk() -> Res<()> {
    if !Command::new("sync").status()?.success() {
        return Err("sync failed".into());
    }
    Ok(())
}

/// CPU time of this process so far (user and system, every thread), from
/// `/proc/self/stat` (in clock ticks of 10 ms).
pub fn cpu_seconds() -> Res<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The fields after the command name (which may hold spaces).
    let rest = stat.rsplit_once(')').ok_or("no /proc/self/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |k: usize| -> Res<f64> { Ok(fields.get(k).ok_or("short stat")?.parse::<f64>()?) };
    // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the name.
    Ok((ticks(11)? + ticks(12)?) / 100.0)
}

/// Pipe-mode figures: `process` alone, `process` handing its mail to a
/// running `regmail serve`, and `gpg --verify`.
#[derive(Debug, Default)]
pub struct Pipe {
    pub alone: Runs,
    pub served: Runs,
    /// The peak RSS of the `serve` process, KiB.
    pub serve_rss_kib: i64,
    pub gpg_ms: f64,
}

/// `process` runs: mean wall time and the largest peak RSS.
#[derive(Debug, Default)]
pub struct Runs {
    pub ms: f64,
    pub peak_rss_kib: i64,
}

/// Measures pipe mode: `process` once per mail of `alone` with no other
/// process holding the database open (as behind an MTA without `serve`),
/// once per mail of `served` with `regmail serve` running, then `gpg
/// --verify` once per mail of `alone`.
pub fn pipe_mode(bench: &mut Bench, alone: &[Vec<u8>], served: &[Vec<u8>]) -> Res<Pipe> {
    // The bench's own connection would keep SQLite from checkpointing and
    // removing its WAL when a `process` run closes the database: swap an
    // in-memory store in while the runs happen.
    let store = std::mem::replace(
        &mut bench.registry.store,
        regmail::store::Store::open_in_memory()?,
    );
    drop(store);
    let alone_runs = process_runs(bench.dir.path(), alone);
    let serve = Serve::start(bench.dir.path());
    let served_runs = serve
        .as_ref()
        .map_err(|e| e.to_string())
        .and_then(|_| process_runs(bench.dir.path(), served).map_err(|e| e.to_string()));
    let serve_rss_kib = match serve {
        Ok(s) => s.stop()?,
        Err(e) => return Err(e),
    };
    bench.registry.store = regmail::store::Store::open(
        &bench.dir.path().join("regmail.sqlite"),
        std::time::Duration::from_secs(5),
    )?;
    Ok(Pipe {
        alone: alone_runs?,
        served: served_runs?,
        serve_rss_kib,
        gpg_ms: gpg_verify(alone)?,
    })
}

/// Runs `regmail process` once per mail.
fn process_runs(dir: &Path, mails: &[Vec<u8>]) -> Res<Runs> {
    let bin = env!("CARGO_BIN_EXE_regmail");
    let mut peak_rss_kib = 0;
    let start = Instant::now();
    for mail in mails {
        // Each run reports its own peak (`VmHWM`) in its last debug line:
        // `getrusage(RUSAGE_CHILDREN)` would count this process's memory,
        // which a spawned child shares until its `exec`.
        let mut child = Command::new(bin)
            .arg("--data-dir")
            .arg(dir)
            .args(["--now", DEMO_NOW, "process"])
            .env("REGMAIL_LOG", "regmail::app=debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        child.stdin.take().ok_or("no stdin")?.write_all(mail)?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!(
                "regmail process exited {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        peak_rss_kib = peak_rss_kib.max(reported_peak(&out.stderr)?);
    }
    Ok(Runs {
        ms: start.elapsed().as_secs_f64() * 1e3 / mails.len() as f64,
        peak_rss_kib,
    })
}

/// A running `regmail serve` on the bench's data directory.
struct Serve(std::process::Child);

impl Serve {
    fn start(dir: &Path) -> Res<Serve> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_regmail"))
            .arg("--data-dir")
            .arg(dir)
            .args(["--now", DEMO_NOW, "serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
        let serve = Serve(child);
        if !line.starts_with("listening on ") {
            return Err(format!("regmail serve said {line:?}").into());
        }
        Ok(serve)
    }

    /// Stops it; its peak RSS, KiB.
    fn stop(self) -> Res<i64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))?;
        let peak = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or("no VmHWM for regmail serve")?;
        Ok(peak)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `peak_rss_kib=N` a run logged.
fn reported_peak(stderr: &[u8]) -> Res<i64> {
    let text = String::from_utf8_lossy(stderr);
    let value = text
        .split("peak_rss_kib=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .ok_or("regmail process logged no peak_rss_kib")?;
    Ok(value.parse()?)
}

/// Mean wall time of `gpg --verify` on each mail's signed block.
fn gpg_verify(mails: &[Vec<u8>]) -> Res<f64> {
    let home = tempfile::tempdir()?;
    let gpg = |args: &[&str]| {
        Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--quiet"])
            .args(args)
            .stderr(Stdio::null())
            .status()
    };
    for name in ["alice", "bob"] {
        let key = root().join(format!("keys/{name}.pub.asc"));
        gpg(&["--import", &key.to_string_lossy()])?;
    }
    let files: Vec<PathBuf> = mails
        .iter()
        .enumerate()
        .map(|(i, m)| signed_block(home.path(), i, m))
        .collect::<Res<_>>()?;
    let start = Instant::now();
    for f in &files {
        if !gpg(&["--verify", &f.to_string_lossy()])?.success() {
            return Err("gpg --verify failed".into());
        }
    }
    Ok(start.elapsed().as_secs_f64() * 1e3 / files.len() as f64)
}

fn signed_block(dir: &Path, i: usize, mail: &[u8]) -> Res<PathBuf> {
    let text = String::from_utf8_lossy(mail).replace("\r\n", "\n");
    let begin = text
        .find("-----BEGIN PGP SIGNED MESSAGE-----")
        .ok_or("no signed block")?;
    let end_marker = "-----END PGP SIGNATURE-----";
    let end = text[begin..].find(end_marker).ok_or("no signature end")? + begin;
    let path = dir.join(format!("mail{i}.asc"));
    std::fs::write(&path, format!("{}\n", &text[begin..end + end_marker.len()]))?;
    Ok(path)
}
