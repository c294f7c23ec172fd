//! Operator commands: init, registrar management, key export, query, outbox.

use super::{EX_OK, Paths, load_config, open_store};
use crate::auth::{SigningKey, is_revoked, merge_certificate, parse_certificate, signing_expiry};
use crate::cli::{DomainCommand, OutboxCommand, RegistrarCommand, RegistrarKeyCommand};
use crate::clock::Clock;
use crate::config::DEFAULT_TOML;
use crate::pipeline::Registry;
use crate::reply::rfc3339;
use crate::store::{NewRegistrar, Refused, RegistrarStatus, ServerFlag, Store};
use anyhow::{Context, bail};

/// `regmail init`: safe to run twice.
pub fn init(paths: &Paths, clock: &dyn Clock) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&paths.data_dir)
        .with_context(|| format!("creating {}", paths.data_dir.display()))?;
    if !paths.config.exists() {
        std::fs::write(&paths.config, DEFAULT_TOML)
            .with_context(|| format!("writing {}", paths.config.display()))?;
        println!("wrote {}", paths.config.display());
    }
    let config = load_config(paths)?;
    let store = Store::open(
        &paths.db(),
        std::time::Duration::from_millis(config.database.busy_timeout_ms),
    )?;
    println!(
        "database {} at schema version {}",
        paths.db().display(),
        store.schema_version()?
    );
    let key_path = paths.key();
    if key_path.exists() {
        let key = SigningKey::load(&key_path)?;
        println!("registry key {} (kept)", key.fingerprint());
    } else {
        let uid = format!("{} <{}>", config.registry.name, config.registry.email);
        let key = SigningKey::generate(&uid, clock.now())?;
        key.save(&key_path)?;
        println!("registry key {} (new, Ed25519)", key.fingerprint());
    }
    std::fs::create_dir_all(paths.data_dir.join(&config.delivery.file_dir))?;
    Ok(EX_OK)
}

/// A fingerprint as typed (spaces, lower case) in stored form.
fn fingerprint(typed: &str) -> String {
    typed
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase()
}

/// The certificate to store for `data`: merged into the stored one if it is
/// an update of a registered certificate (so a revocation it adds applies).
fn key_update(store: &Store, data: &[u8]) -> anyhow::Result<crate::auth::ParsedCert> {
    let parsed = parse_certificate(data).map_err(anyhow::Error::msg)?;
    Ok(match store.certificate(&parsed.fingerprint)? {
        Some(stored) => merge_certificate(&stored.cert, data).map_err(anyhow::Error::msg)?,
        None => parsed,
    })
}

fn read_cert(file: &std::path::Path) -> anyhow::Result<crate::auth::ParsedCert> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    parse_certificate(&data).map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))
}

/// `regmail registrar ...`
pub fn registrar(paths: &Paths, clock: &dyn Clock, cmd: RegistrarCommand) -> anyhow::Result<u8> {
    let config = load_config(paths)?;
    let mut store = open_store(paths, &config)?;
    let now = rfc3339(clock.now());
    match cmd {
        RegistrarCommand::Add {
            id,
            name,
            email,
            key,
        } => add(&mut store, &config, id, &name, &email, &key, &now)?,
        RegistrarCommand::List => list(&store, clock.now())?,
        RegistrarCommand::Credit { id, amount } => {
            let Some(cents) = parse_amount(&amount) else {
                bail!("amount {amount:?}: use e.g. 100 or 12.50")
            };
            if store.registrar(id)?.is_none() {
                bail!("no registrar {id}");
            }
            let currency = config.profile()?.currency.clone();
            // What fell due before now (an auto-renewal the old balance could
            // not pay) is applied first: credit never counts retroactively.
            let mut reg = super::open(paths, Box::new(crate::clock::FixedClock(clock.now())))?;
            crate::pipeline::operate(&mut reg, |_, _, _| Ok::<_, crate::store::StoreError>(()))?;
            match reg.store.add_credit(id, cents, &now)? {
                Ok(balance) => println!(
                    "registrar {id}: balance {} {currency}",
                    crate::policy::money(balance)
                ),
                Err(balance) => bail!(
                    "the balance ({} {currency}) may not go below zero",
                    crate::policy::money(balance)
                ),
            }
        }
        RegistrarCommand::Key(RegistrarKeyCommand::Add {
            id,
            key,
            retire,
            overlap_days,
        }) => {
            if store.registrar(id)?.is_none() {
                bail!("no registrar {id}");
            }
            let data = std::fs::read(&key).with_context(|| format!("reading {}", key.display()))?;
            let cert =
                key_update(&store, &data).map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
            let until = clock.now() + chrono::Duration::days(overlap_days.into());
            let retire = retire.map(|old| (fingerprint(&old), until));
            if let Some((old, _)) = &retire
                && (*old == cert.fingerprint
                    || store.certificate(old)?.is_none_or(|c| c.registrar_id != id))
            {
                bail!("registrar {id} has no other key {old} to retire");
            }
            add_cert(&mut store, id, &cert, &now)?;
            println!("registrar {id}: key {} added", cert.fingerprint);
            if let Some((old, at)) = retire {
                store.set_retire_at(id, &old, Some(&rfc3339(at)))?;
                println!("registrar {id}: key {old} retires {}", rfc3339(at));
            }
        }
        RegistrarCommand::Key(RegistrarKeyCommand::Remove {
            id,
            fingerprint: fpr,
        }) => {
            let fpr = fingerprint(&fpr);
            if !store.remove_certificate(id, &fpr)? {
                bail!("registrar {id} has no key {fpr}");
            }
            println!("registrar {id}: key {fpr} removed");
        }
        RegistrarCommand::Suspend { id } => {
            // What fell due before the suspension is applied first; a request
            // falling due later ends unexecuted (`registrar-suspended`).
            drop(store);
            let mut reg = super::open(paths, Box::new(crate::clock::FixedClock(clock.now())))?;
            crate::pipeline::operate(&mut reg, |_, _, _| Ok::<_, crate::store::StoreError>(()))?;
            set_status(&mut reg.store, id, RegistrarStatus::Suspended)?;
        }
        RegistrarCommand::Resume { id } => set_status(&mut store, id, RegistrarStatus::Active)?,
    }
    Ok(EX_OK)
}

/// `registrar add`: validated, then registered with its key in one transaction.
fn add(
    store: &mut Store,
    config: &crate::config::Config,
    id: u32,
    name: &str,
    email: &str,
    key: &std::path::Path,
    now: &str,
) -> anyhow::Result<()> {
    if !(1..=99_999).contains(&id) {
        bail!("--id must be 1..99999");
    }
    crate::template::check_email(email)
        .map_err(|_| anyhow::anyhow!("--email {email:?} is not an address"))?;
    if config.is_own_address(email) {
        bail!("--email {email} is one of the registry's own addresses");
    }
    let cert = read_cert(key)?;
    let new = NewRegistrar {
        id,
        name,
        email,
        fingerprint: &cert.fingerprint,
        cert: &cert.bytes,
        key_handles: &cert.key_handles,
    };
    match store.register(&new, now)? {
        Ok(()) => println!(
            "registrar {id} {name} <{email}> with key {}",
            cert.fingerprint
        ),
        Err(Refused::IdTaken) => bail!("registrar {id} exists already"),
        Err(Refused::KeyOwnedBy(other)) => bail!(
            "key {} is registered to registrar {other}",
            cert.fingerprint
        ),
    }
    Ok(())
}

/// `12`, `12.5`, `-3.25` as cents.
fn parse_amount(s: &str) -> Option<i64> {
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let ok = !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 2
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return None;
    }
    let cents = whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(format!("{frac:0<2}").parse::<i64>().ok()?)?;
    Some(if neg { -cents } else { cents })
}

fn add_cert(
    store: &mut Store,
    id: u32,
    cert: &crate::auth::ParsedCert,
    now: &str,
) -> anyhow::Result<()> {
    if let Err(other) =
        store.add_certificate(id, &cert.fingerprint, &cert.bytes, &cert.key_handles, now)?
    {
        bail!(
            "key {} is registered to registrar {other}",
            cert.fingerprint
        );
    }
    Ok(())
}

fn set_status(store: &mut Store, id: u32, status: RegistrarStatus) -> anyhow::Result<()> {
    if !store.set_registrar_status(id, status)? {
        bail!("no registrar {id}");
    }
    println!("registrar {id}: {}", status.as_str());
    Ok(())
}

fn list(store: &Store, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    for r in store.registrars()? {
        println!(
            "{:>5}  {:<9}  {}  <{}>",
            r.id,
            r.status.as_str(),
            r.name,
            r.email
        );
        for c in store.certificates_of(r.id)? {
            let mut state = String::new();
            if let Some(at) = &c.retire_at {
                state.push_str(&format!("  retires {at}"));
            }
            if let Some(at) = signing_expiry(&c.cert, now) {
                state.push_str(&format!("  expires {}", rfc3339(at)));
            }
            if is_revoked(&c.cert, now) {
                state.push_str("  REVOKED");
            }
            println!("       key {}  added {}{state}", c.fingerprint, c.added);
        }
    }
    Ok(())
}

/// `regmail key export`
pub fn key_export(paths: &Paths) -> anyhow::Result<u8> {
    let key =
        SigningKey::load(&paths.key()).context("loading the registry key (run `regmail init`)")?;
    print!("{}", key.public_armored()?);
    Ok(EX_OK)
}

/// `regmail domain set-status NAME serverHold|serverLock on|off`, with a history row.
pub fn domain(mut reg: Registry, cmd: DomainCommand) -> anyhow::Result<u8> {
    let DomainCommand::SetStatus { name, flag, state } = cmd;
    let name = name.to_ascii_lowercase();
    let flag = if flag == "serverHold" {
        ServerFlag::Hold
    } else {
        ServerFlag::Lock
    };
    let on = state == "on";
    let now = rfc3339(reg.clock.now());
    // What fell due is applied first, as for a mail.
    let (found, _) = crate::pipeline::operate(
        &mut reg,
        |tx, _, _| -> Result<bool, crate::store::StoreError> {
            let before = tx
                .domain(&name)?
                .map(|d| d.status.join(" "))
                .unwrap_or_default();
            if !tx.set_server_flag(&name, flag, on)? {
                return Ok(false);
            }
            let after = tx
                .domain(&name)?
                .map(|d| d.status.join(" "))
                .unwrap_or_default();
            let trid = tx.next_server_trid()?;
            tx.insert_history(&crate::store::HistoryEntry {
                object: &name,
                at: &now,
                server_trid: &trid,
                client_trid: None,
                registrar_id: None,
                action: "set-status",
                before: &before,
                after: &after,
            })?;
            Ok(true)
        },
    )?;
    if !found {
        bail!("no domain {name}");
    }
    println!(
        "{name}: {} {}",
        if flag == ServerFlag::Hold {
            "serverHold"
        } else {
            "serverLock"
        },
        state
    );
    Ok(EX_OK)
}

/// `regmail outbox ...`
pub fn outbox(mut reg: Registry, cmd: OutboxCommand) -> anyhow::Result<u8> {
    match cmd {
        OutboxCommand::List => {
            for m in reg.store.outbox_all()? {
                let state = m
                    .delivered
                    .clone()
                    .map_or_else(|| "queued".to_string(), |d| format!("delivered {d}"));
                println!(
                    "{:>6}  {}  {:<32}  attempts {}  {state}",
                    m.id, m.server_trid, m.recipient, m.attempts
                );
                if let Some(e) = &m.last_error {
                    println!("        last error: {e}");
                }
            }
        }
        OutboxCommand::Flush => {
            let now = reg.clock.now();
            let report = crate::reply::deliver(&reg.config, &reg.data_dir, &mut reg.store, now)?;
            println!(
                "delivered {}, deferred {}",
                report.delivered, report.deferred
            );
            if report.deferred > 0 {
                return Ok(super::EX_TEMPFAIL);
            }
        }
    }
    Ok(EX_OK)
}
