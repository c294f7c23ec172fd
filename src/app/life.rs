//! The lifecycle commands: `tick`, `pending`, `qc`, and `query`, which
//! shows an object as it is at `--now` (due steps projected, nothing written).

use super::EX_OK;
use crate::cli::{PendingCommand, QcCommand, QueryCommand};
use crate::lifecycle::operator;
use crate::pipeline::{self, Registry};
use crate::store::{PersonRow, StoreError, Tx};
use anyhow::bail;
use std::fmt::Write as _;

/// `regmail tick`.
pub fn tick(mut reg: Registry) -> anyhow::Result<u8> {
    let report = pipeline::tick(&mut reg)?;
    println!(
        "tick {}: {} notification mail(s) queued, {} delivered, {} deferred, {} held (hourly cap)",
        crate::reply::rfc3339(reg.clock.now()),
        report.queued,
        report.delivered,
        report.deferred,
        report.held
    );
    Ok(EX_OK)
}

/// `regmail pending ...`
pub fn pending(mut reg: Registry, cmd: PendingCommand) -> anyhow::Result<u8> {
    let (id, note, confirm) = match cmd {
        PendingCommand::List { all } => return list_pending(&mut reg, all),
        PendingCommand::Confirm { id, note } => (id, note, true),
        PendingCommand::Reject { id, note } => (id, note, false),
    };
    let (result, _) = pipeline::operate(&mut reg, |tx, life, notices| {
        if confirm {
            operator::confirm(tx, life, id, &note, notices)
        } else {
            operator::reject(tx, life, id, &note, notices)
        }
    })?;
    let object = result?;
    let word = if confirm { "confirmed" } else { "rejected" };
    println!("request {id} ({object}) {word}; note kept in the lifecycle log");
    deliver(&mut reg);
    Ok(EX_OK)
}

fn list_pending(reg: &mut Registry, all: bool) -> anyhow::Result<u8> {
    let rows = pipeline::project(reg, |tx| -> Result<_, StoreError> {
        if all {
            tx.all_requests()
        } else {
            tx.open_requests()
        }
    })?;
    println!(
        "id  kind           object                     by    other  mode                 requested                 deadline                  state"
    );
    for r in rows {
        println!(
            "{:<3} {:<14} {:<26} {:<5} {:<6} {:<20} {:<25} {:<25} {}",
            r.id,
            r.kind,
            r.object,
            r.registrar_id,
            r.other_registrar
                .map(|o| o.to_string())
                .unwrap_or_else(|| "-".into()),
            r.mode.as_deref().unwrap_or("-"),
            r.requested,
            r.execute_at.as_deref().unwrap_or(&r.deadline),
            r.outcome.as_deref().unwrap_or(&r.state)
        );
    }
    Ok(EX_OK)
}

/// `regmail qc ...`
pub fn qc(mut reg: Registry, cmd: QcCommand) -> anyhow::Result<u8> {
    match cmd {
        QcCommand::List => {
            for q in pipeline::project(&mut reg, |tx| tx.qc_open())? {
                println!(
                    "{:<30} registrar {:<6} selected {}  {}{}",
                    q.domain,
                    q.registrar_id,
                    q.selected,
                    q.state,
                    q.deadline
                        .map(|d| format!(" until {d}"))
                        .unwrap_or_default()
                );
            }
        }
        QcCommand::Accept { domain } => {
            let domain = domain.to_ascii_lowercase();
            let (r, _) = pipeline::operate(&mut reg, |tx, life, n| {
                operator::qc_accept(tx, life, &domain, n)
            })?;
            r?;
            println!("{domain}: accepted");
        }
        QcCommand::RequestCorrection { domain, reason } => {
            let domain = domain.to_ascii_lowercase();
            let (r, _) = pipeline::operate(&mut reg, |tx, life, n| {
                operator::qc_request_correction(tx, life, &domain, &reason, n)
            })?;
            println!("{domain}: correction requested, deadline {}", r?);
        }
    }
    deliver(&mut reg);
    Ok(EX_OK)
}

fn deliver(reg: &mut Registry) {
    let now = reg.clock.now();
    if let Err(e) = crate::reply::deliver(&reg.config, &reg.data_dir, &mut reg.store, now) {
        tracing::warn!(error = %e, "delivery postponed; the mail stays in the outbox");
    }
}

/// `regmail query ...`: the object as it is at `--now`.
pub fn query(mut reg: Registry, q: QueryCommand) -> anyhow::Result<u8> {
    let name = match &q {
        QueryCommand::Domain { name } => name.to_ascii_lowercase(),
        QueryCommand::Handle { handle } => handle.to_ascii_uppercase(),
    };
    let found = pipeline::project(&mut reg, |tx| {
        let text = match q {
            QueryCommand::Domain { .. } => domain_text(tx, &name)?,
            QueryCommand::Handle { .. } => tx.person(&name)?.map(|p| person_text(&p)),
        };
        let Some(text) = text else {
            return Ok::<_, StoreError>(None);
        };
        let logs = (
            tx.object_history(&name)?,
            tx.events_of(&name)?,
            tx.mail_history(&name)?,
        );
        Ok(Some((text, logs)))
    })?;
    let Some((text, logs)) = found else {
        bail!("{name} not found");
    };
    print!("{text}");
    println!("history:");
    for [at, trid, registrar, action] in logs.0 {
        println!("  {at}  {trid}  {action} by {registrar}");
    }
    println!("events:");
    for [at, trid, event, actor, note] in logs.1 {
        let note = if note.is_empty() {
            note
        } else {
            format!(" ({note})")
        };
        println!("  {at}  {trid}  {event} by {actor}{note}");
    }
    println!("mails:");
    for [trid, at, registrar, transaction, result] in logs.2 {
        println!("  {trid}  {at}  registrar {registrar}  {transaction}  {result}");
    }
    Ok(EX_OK)
}

/// A domain's state lines (`None`: no such domain).
pub fn domain_text(tx: &Tx<'_>, name: &str) -> Result<Option<String>, StoreError> {
    let Some(d) = tx.domain(name)? else {
        return Ok(None);
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "domain:       {}\nregistrar:    {}\nstatus:       {}",
        d.name,
        d.registrar_id,
        d.status.join(" ")
    );
    let _ = writeln!(
        s,
        "created:      {}\nexpires:      {}",
        d.created, d.expires
    );
    for (label, value) in [
        ("redemption", &d.redemption_until),
        ("release", &d.release_at),
    ] {
        if let Some(v) = value {
            let _ = writeln!(s, "{:<14}{v}", format!("{label}:"));
        }
    }
    if d.billing == "holder" {
        let _ = writeln!(s, "billing:      holder");
    }
    for (holder, at, cents) in tx.holder_bills(name)? {
        let amount = crate::policy::money(cents);
        let _ = writeln!(s, "holder bill:  {at} {holder} {amount}");
    }
    for (role, handle) in &d.contacts {
        let _ = writeln!(s, "{:<14}{handle}", format!("{role}:"));
    }
    for ns in &d.nameservers {
        let _ = writeln!(s, "nserver:      {} {}", ns.host, ns.addresses.join(" "));
    }
    Ok(Some(s))
}

fn person_text(p: &PersonRow) -> String {
    let mut s = format!(
        "nic-hdl:      {}\nregistrar:    {}\n",
        p.handle, p.registrar_id
    );
    s.push_str(&crate::template::render_object(
        &person_fields(p),
        |_| false,
        200,
    ));
    let _ = writeln!(
        s,
        "created:      {}\nupdated:      {}",
        p.created, p.updated
    );
    s
}

fn person_fields(p: &PersonRow) -> Vec<(&'static str, &str)> {
    let d = &p.data;
    let mut out: Vec<(&'static str, &str)> = vec![("type", d.kind.as_str())];
    out.extend(d.personname.as_deref().map(|v| ("personname", v)));
    out.extend(d.organization.as_deref().map(|v| ("organization", v)));
    out.extend(d.street.iter().map(|v| ("street address", v.as_str())));
    out.extend([
        ("postal code", d.postal_code.as_str()),
        ("city", &d.city),
        ("country", &d.country),
        ("phone", &d.phone),
    ]);
    out.extend(d.fax.as_deref().map(|v| ("fax-no", v)));
    out.push(("e-mail", &d.email));
    for (key, on) in [
        ("whoishidephone", d.hide_phone),
        ("whoishidefax", d.hide_fax),
        ("whoishide", d.hide_email),
    ] {
        out.push((key, if on { "Y" } else { "N" }));
    }
    out.extend(d.remarks.iter().map(|v| ("remarks", v.as_str())));
    out
}
