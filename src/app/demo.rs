//! `regmail demo`: the built-in default job. A registry in a temporary data
//! directory registers the test registrars of `keys/registrars.toml`, replays
//! `fixtures/` (successes and typical mistakes) at [`DEMO_NOW`], and prints each
//! reply's machine block and a summary.

use super::mailflow::{replay_sources, word};
use super::{EX_OK, Paths};
use crate::auth::{SigningKey, parse_certificate};
use crate::clock::FixedClock;
use crate::config::Config;
use crate::intake::collect_sources;
use crate::pipeline::Registry;
use crate::store::Store;
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The instant the demo (and the golden tests) run at; fixtures are signed
/// at 2026-11-22T08:00:00Z, inside the 72 h window.
pub const DEMO_NOW: &str = "2026-11-22T08:15:00Z";

/// `keys/registrars.toml`.
#[derive(Debug, Deserialize)]
pub struct TestRegistrars {
    /// The registrars.
    pub registrar: Vec<TestRegistrar>,
}

/// One test registrar.
#[derive(Debug, Deserialize)]
pub struct TestRegistrar {
    /// registrar-id.
    pub id: u32,
    /// Name.
    pub name: String,
    /// Reply address.
    pub email: String,
    /// Public certificate file, relative to the keys directory.
    pub key: String,
    /// Registered but suspended.
    #[serde(default)]
    pub suspended: bool,
}

fn manifest_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(sub)
}

/// Sets up a registry in `dir` with the test registrars of `keys/registrars.toml`
/// and the given registry key (a new one if `None`); used by the demo and tests.
pub fn setup(
    dir: &Path,
    keys: &Path,
    registry_key: Option<&Path>,
    config: Config,
    now: DateTime<Utc>,
) -> anyhow::Result<Registry> {
    let paths = Paths::in_dir(dir);
    std::fs::create_dir_all(dir)?;
    let mut store = Store::open(
        &dir.join(super::DB_FILE),
        std::time::Duration::from_secs(10),
    )?;
    let key = match registry_key {
        Some(path) => SigningKey::load(path)?,
        None => SigningKey::generate("Example Registry <robot@registry.example>", now)?,
    };
    key.save(&dir.join(super::KEY_FILE))?;
    let list: TestRegistrars =
        toml::from_str(&std::fs::read_to_string(keys.join("registrars.toml"))?)?;
    let stamp = crate::reply::rfc3339(now);
    for r in &list.registrar {
        let data =
            std::fs::read(keys.join(&r.key)).with_context(|| format!("reading {}", r.key))?;
        let cert = parse_certificate(&data).map_err(|e| anyhow::anyhow!("{}: {e}", r.key))?;
        store.add_registrar(r.id, &r.name, &r.email, &stamp)?;
        let _ = store.add_certificate(
            r.id,
            &cert.fingerprint,
            &cert.bytes,
            &cert.key_handles,
            &stamp,
        )?;
        if r.suspended {
            store.set_registrar_status(r.id, crate::store::RegistrarStatus::Suspended)?;
        }
    }
    Ok(Registry {
        config,
        store,
        key,
        clock: Box::new(FixedClock(now)),
        ids: Box::new(crate::ids::SeededIds::default()),
        data_dir: paths.data_dir,
    })
}

/// Runs the demo.
pub fn run(keys: Option<PathBuf>, fixtures: Option<PathBuf>) -> anyhow::Result<u8> {
    let keys = keys.unwrap_or_else(|| manifest_dir("keys"));
    let fixtures = fixtures.unwrap_or_else(|| manifest_dir("fixtures"));
    let now = DateTime::parse_from_rfc3339(DEMO_NOW)?.with_timezone(&Utc);
    let tmp = tempfile::tempdir()?;
    let mut reg = setup(tmp.path(), &keys, None, Config::default(), now)?;
    println!("demo registry in {} at {DEMO_NOW}", tmp.path().display());
    println!("registry key {}\n", reg.key.fingerprint());
    let sources = collect_sources(&[fixtures])?;
    let summary = replay_sources(&mut reg, &sources, |source, h| {
        let name = Path::new(&source.name)
            .file_name()
            .map_or(source.name.clone(), |n| n.to_string_lossy().into_owned());
        println!("== {name}: {}", word(h.disposition));
        match &h.machine_block {
            Some(block) => println!("{block}"),
            None => println!("(no reply)\n"),
        }
    });
    print!("{}", summary.render());
    demo_year_later(&mut reg, now)?;
    Ok(EX_OK)
}

/// The lifecycle in the demo: a tick a year later renews what expired and
/// queues one notification (or digest) per registrar.
fn demo_year_later(reg: &mut Registry, now: DateTime<Utc>) -> anyhow::Result<()> {
    let later = now
        .checked_add_months(chrono::Months::new(12))
        .unwrap_or(now);
    reg.clock = Box::new(FixedClock(later));
    let before = reg.store.outbox_all()?.len();
    let report = crate::pipeline::tick(reg)?;
    println!(
        "\n== regmail tick at {}: {} notification mail(s)",
        crate::reply::rfc3339(later),
        report.queued
    );
    for mail in reg.store.outbox_all()?.iter().skip(before) {
        let text = String::from_utf8_lossy(&mail.message);
        let events: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("event:"))
            .map(str::trim)
            .collect();
        let objects: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("object:"))
            .map(str::trim)
            .collect();
        println!(
            "  to {}: {} {}",
            mail.recipient,
            events.join(","),
            objects.join(",")
        );
    }
    Ok(())
}
