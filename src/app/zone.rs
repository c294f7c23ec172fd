//! `regmail zone export`: one of the profile's zones as an RFC 1035 master
//! file, on standard output or atomically into a file.
//!
//! Input: the zone's name, `--output`, the data directory, the injected
//! clock. Output: the file, exit 0; 64 for a zone that is not the
//! profile's. Invariants: what fell due is applied first (as for every
//! operator command); the zone is read and a fresh serial recorded as
//! issued in that one transaction, before anything is written, so no serial
//! is ever used twice; the file is written to a temporary file beside the
//! target, renamed over it and the serial recorded as published in one
//! later transaction: a failed write records nothing but the issued serial
//! (a gap, which DNS does not mind), and an export that was overtaken by a
//! newer one never replaces the newer file.

use super::{EX_OK, EX_USAGE, Paths};
use crate::cli::ZoneCommand;
use crate::clock::Clock;
use crate::pipeline::{self, Registry};
use crate::store::StoreError;
use crate::zone::{self, Apex, Serial, Staged};
use std::io::Write;
use std::path::Path;

/// What the read transaction found.
struct Plan {
    zone: zone::Zone,
    digest: String,
    serial: Serial,
}

/// `zone export`.
pub fn run(paths: &Paths, clock: Box<dyn Clock>, cmd: ZoneCommand) -> anyhow::Result<u8> {
    let ZoneCommand::Export { zone, output } = cmd;
    let config = super::load_config(paths)?;
    let profile = config.profile()?;
    let name = zone.trim().trim_end_matches('.').to_ascii_lowercase();
    if !profile.zones.contains(&name) {
        eprintln!(
            "regmail: zone export: {zone:?} is not one of the profile's zones ({})",
            profile.zones.join(", ")
        );
        return Ok(EX_USAGE);
    }
    let apex = Apex::new(&profile.zone, &profile.zones)?;
    let mut reg = super::open(paths, clock)?;
    let plan = plan(&mut reg, &name, &apex)?;
    let text = plan.zone.render(plan.serial.value);
    let at = crate::reply::rfc3339(reg.clock.now());
    let Some(path) = output else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()?;
        if plan.serial.fresh {
            reg.store
                .write(|tx| tx.publish_zone_serial(&name, plan.serial.value, &plan.digest, &at))?;
        }
        return Ok(EX_OK);
    };
    let staged = Staged::new(&path, &text)?;
    let overtaken = reg.store.write(|tx| -> anyhow::Result<Option<u32>> {
        let newer = tx
            .zone_serial(&name)?
            .and_then(|s| s.published)
            .filter(|p| *p > plan.serial.value);
        if newer.is_none() {
            staged.install()?;
            tx.publish_zone_serial(&name, plan.serial.value, &plan.digest, &at)?;
        }
        Ok(newer)
    })?;
    report(&plan, &path, overtaken);
    Ok(EX_OK)
}

/// Applies what fell due, builds the zone and chooses its serial; a fresh
/// serial is recorded as issued in the same transaction.
fn plan(reg: &mut Registry, name: &str, apex: &Apex) -> anyhow::Result<Plan> {
    let today = reg.clock.now().date_naive();
    let (plan, _) = pipeline::operate(reg, |tx, _, _| {
        let domains = tx.zone_domains(name)?;
        let state = tx.zone_serial(name)?;
        let plan = zone::build(name, apex, &domains).and_then(|zone| {
            let digest = zone.digest();
            let serial = zone::serial(state.as_ref(), &digest, today)?;
            Ok(Plan {
                zone,
                digest,
                serial,
            })
        });
        if let Ok(p) = &plan
            && p.serial.fresh
        {
            tx.issue_zone_serial(name, p.serial.value)?;
        }
        Ok::<_, StoreError>(plan)
    })?;
    Ok(plan?)
}

/// The operator's summary of a written file (standard output).
fn report(plan: &Plan, path: &Path, overtaken_by: Option<u32>) {
    let c = plan.zone.counts;
    let origin = plan.zone.origin();
    let serial = plan.serial.value;
    if let Some(newer) = overtaken_by {
        println!(
            "zone {origin}: serial {serial} not written: {} already has serial {newer}",
            path.display()
        );
        return;
    }
    let state = if plan.serial.fresh {
        "new"
    } else {
        "unchanged"
    };
    println!(
        "zone {origin}: serial {serial} ({state}), {} delegations, {} glue records, \
         left out: {} held, {} deleted or withdrawn, {} without nameservers; written to {}",
        c.delegated,
        c.glue,
        c.held,
        c.withdrawn,
        c.without_nameservers,
        path.display()
    );
}
