//! `regmail whois QUERY` and `regmail whois serve`.
//!
//! Input: the data directory (configuration, database) and the arguments.
//! Output: `whois QUERY` prints the answer the server would send (LF line
//! ends) and exits 0 (found), 1 (no match), 64 (not a domain name or
//! handle) or 75 (the database could not be read); `whois serve` prints
//! `listening on IP:PORT` on stdout once bound and serves until killed.
//! Invariants: neither writes to the database (read-only connections).

use super::{EX_OK, EX_TEMPFAIL, EX_USAGE, Paths};
use crate::cli::{WhoisArgs, WhoisCommand, WhoisServeArgs};
use crate::clock::Clock;
use crate::whois::{Outcome, ServerSettings, Service};
use anyhow::{Context, bail};
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Exit code of `whois QUERY` when nothing matches.
pub const EX_NO_MATCH: u8 = 1;

/// `whois QUERY` or `whois serve`.
pub fn run(paths: &Paths, clock: Box<dyn Clock>, args: WhoisArgs) -> anyhow::Result<u8> {
    let config = super::load_config(paths)?;
    let db = paths.db();
    if !db.exists() {
        bail!(
            "{} is not initialised: run `regmail init` first",
            paths.data_dir.display()
        );
    }
    let profile = config.profile()?.clone();
    let service = Service::open(
        &db,
        Duration::from_millis(config.database.busy_timeout_ms),
        &config.registry.name,
        profile,
        clock,
    )
    .context("opening the database read-only")?;
    match (args.command, args.query) {
        (Some(WhoisCommand::Serve(s)), _) => serve(service, &s),
        (None, Some(query)) => Ok(local(&service, &query)),
        (None, None) => {
            eprintln!("regmail: whois needs a domain name or a contact handle");
            Ok(EX_USAGE)
        }
    }
}

fn local(service: &Service, query: &str) -> u8 {
    match service.answer(query.as_bytes()) {
        Ok(a) => {
            print!("{}", a.text);
            match a.outcome {
                Outcome::Domain | Outcome::Handle => EX_OK,
                Outcome::NoMatch => EX_NO_MATCH,
                Outcome::Invalid(_) => EX_USAGE,
            }
        }
        Err(e) => {
            eprintln!("regmail: whois: {e}");
            EX_TEMPFAIL
        }
    }
}

fn serve(service: Service, args: &WhoisServeArgs) -> anyhow::Result<u8> {
    if args.max_connections == 0 {
        bail!("--max-connections must be at least 1");
    }
    let listener =
        TcpListener::bind(&args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");
    std::io::stdout().flush()?;
    tracing::info!(%addr, "whois: listening");
    let settings = ServerSettings::new(args.rate_per_minute, args.burst, args.max_connections);
    let never = AtomicBool::new(false);
    crate::whois::serve(listener, Arc::new(service), &settings, &never)?;
    Ok(EX_OK)
}
