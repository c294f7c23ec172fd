//! The top of the program: carries out one command of [`crate::cli::Cli`].
//!
//! Input: parsed arguments. Output: text on stdout/stderr and an exit code.
//! Invariants: this is the only place `anyhow` is used; every stage below
//! returns its own error type; paths inside the data directory are fixed.

mod admin;
mod demo;
mod life;
mod mailflow;
mod serve;
mod submit;
mod tooling;
mod whois;
mod zone;

use crate::auth::SigningKey;
use crate::cli::{Cli, Command};
use crate::clock::{Clock, FixedClock, SystemClock};
use crate::config::Config;
use crate::pipeline::Registry;
use crate::store::Store;
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use demo::{DEMO_NOW, setup};
pub use mailflow::Summary;
pub use submit::signed_mail;

/// Exit code: handled (sysexits EX_OK).
pub const EX_OK: u8 = 0;
/// Exit code: wrong command-line use (EX_USAGE).
pub const EX_USAGE: u8 = 64;
/// Exit code: temporary failure, the MTA retries (EX_TEMPFAIL).
pub const EX_TEMPFAIL: u8 = 75;

/// File names inside the data directory.
pub const CONFIG_FILE: &str = "regmail.toml";
/// The database.
pub const DB_FILE: &str = "regmail.sqlite";
/// The registry's secret key.
pub const KEY_FILE: &str = "registry-key.asc";
/// The socket `regmail serve` listens on.
pub const SOCKET_FILE: &str = "regmail.sock";

/// Runs the command; returns the exit code. A panic (a bug of ours or of a
/// library, e.g. one that cannot start a thread) is an internal error like
/// any other: the caller maps it to the command's failure code (75 for
/// `process`, so the MTA retries instead of bouncing; an open transaction
/// was rolled back as the panic unwound, and a mail committed before it is
/// a duplicate when it comes again).
pub fn run(cli: Cli) -> anyhow::Result<u8> {
    let result = caught(|| dispatch(cli));
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!(peak_rss_kib = peak_rss_kib(), "run finished");
    }
    result
}

/// `f`'s result, or an error if it panicked (the panic hook has printed
/// the panic's message on stderr).
fn caught(f: impl FnOnce() -> anyhow::Result<u8>) -> anyhow::Result<u8> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("internal error: a panic (reported above)")))
}

/// This process's peak resident memory, KiB (Linux: `VmHWM`, which, unlike
/// `getrusage`, does not count what the parent had before `exec`); 0 where
/// unknown.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the command.
fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    let fixed_now = match cli.now.as_deref().map(parse_now) {
        Some(None) => {
            eprintln!("regmail: --now must be an RFC 3339 instant, e.g. 2026-11-22T08:15:00Z");
            return Ok(EX_USAGE);
        }
        given => given.flatten(),
    };
    let clock = clock_at(fixed_now);
    let paths = Paths::new(&cli);
    match cli.command {
        Command::Init => admin::init(&paths, clock.as_ref()),
        Command::Registrar(c) => admin::registrar(&paths, clock.as_ref(), c),
        Command::Key(_) => admin::key_export(&paths),
        Command::Process => mailflow::process(&paths, fixed_now, clock),
        Command::Serve => serve::serve(&paths, fixed_now),
        Command::Replay { paths: inputs } => mailflow::replay(open(&paths, clock)?, &inputs),
        Command::Check { file } => mailflow::check(open(&paths, clock)?, &file),
        Command::Query(q) => life::query(open(&paths, clock)?, q),
        Command::Tick => life::tick(open(&paths, clock)?),
        Command::Pending(c) => life::pending(open(&paths, clock)?, c),
        Command::Qc(c) => life::qc(open(&paths, clock)?, c),
        Command::Outbox(o) => admin::outbox(open(&paths, clock)?, o),
        Command::Domain(d) => admin::domain(open(&paths, clock)?, d),
        Command::Submit(args) => submit::submit(&args, clock.as_ref()),
        Command::Whois(args) => whois::run(&paths, clock, args),
        Command::Zone(z) => zone::run(&paths, clock, z),
        Command::Template(t) => tooling::template(t),
        Command::Generate(g) => tooling::generate(g),
        Command::Demo { keys, fixtures } => demo::run(keys, fixtures),
    }
}

/// Parses a `--now` instant (RFC 3339); `None` if it is not one.
fn parse_now(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The clock of a run: fixed at `--now` if it was given, else the system's.
fn clock_at(now: Option<DateTime<Utc>>) -> Box<dyn Clock> {
    match now {
        Some(t) => Box::new(FixedClock(t)),
        None => Box::new(SystemClock),
    }
}

/// Where things live.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The data directory.
    pub data_dir: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
}

impl Paths {
    fn new(cli: &Cli) -> Paths {
        let config = cli
            .config
            .clone()
            .unwrap_or_else(|| cli.data_dir.join(CONFIG_FILE));
        Paths {
            data_dir: cli.data_dir.clone(),
            config,
        }
    }

    /// For a given data directory with its own configuration file.
    pub fn in_dir(dir: &Path) -> Paths {
        Paths {
            data_dir: dir.to_path_buf(),
            config: dir.join(CONFIG_FILE),
        }
    }

    fn db(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }

    fn key(&self) -> PathBuf {
        self.data_dir.join(KEY_FILE)
    }

    fn socket(&self) -> PathBuf {
        self.data_dir.join(SOCKET_FILE)
    }
}

fn load_config(paths: &Paths) -> anyhow::Result<Config> {
    let config = Config::load(&paths.config)?;
    config.profile()?;
    Ok(config)
}

fn open_store(paths: &Paths, config: &Config) -> anyhow::Result<Store> {
    let db = paths.db();
    if !db.exists() {
        bail!(
            "{} is not initialised: run `regmail init` first",
            paths.data_dir.display()
        );
    }
    Ok(Store::open(
        &db,
        Duration::from_millis(config.database.busy_timeout_ms),
    )?)
}

/// Opens an initialised data directory.
pub fn open(paths: &Paths, clock: Box<dyn Clock>) -> anyhow::Result<Registry> {
    let config = load_config(paths)?;
    let store = open_store(paths, &config)?;
    let key = SigningKey::load(&paths.key()).context("loading the registry key")?;
    Ok(Registry {
        config,
        store,
        key,
        clock,
        ids: Box::new(crate::ids::RandomIds),
        data_dir: paths.data_dir.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::caught;

    #[test]
    fn a_panic_is_an_internal_error() {
        assert_eq!(caught(|| Ok(3)).unwrap(), 3);
        let e = caught(|| panic!("no thread")).unwrap_err();
        assert!(e.to_string().contains("internal error"), "{e}");
    }
}
