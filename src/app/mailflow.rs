//! Mail commands: `process` (one mail from the MTA), `replay` (many), `check`.

use super::{EX_OK, EX_TEMPFAIL, Paths};
use crate::clock::Clock;
use crate::intake::{MailSource, collect_sources, read_bounded};
use crate::pipeline::{self, BatchOptions, Disposition, Handled, Mode, Registry};
use crate::reply::Outcome;
use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// `regmail process`: one message on stdin, handed to a running `regmail
/// serve` if there is one that takes it, else handled here.
/// `now` is the `--now` given, if any.
pub fn process(
    paths: &Paths,
    now: Option<DateTime<Utc>>,
    clock: Box<dyn Clock>,
) -> anyhow::Result<u8> {
    if let Some(code) = super::serve::hand_over(paths, now) {
        return Ok(code);
    }
    let mut reg = super::open(paths, clock)?;
    let raw = read_bounded(std::io::stdin().lock(), reg.config.mail.max_mail_bytes)
        .context("reading the message from stdin")?;
    let (code, message) = handle_raw(&mut reg, &raw);
    if let Some(message) = message {
        eprintln!("regmail: {message}");
    }
    Ok(code)
}

/// Handles one raw mail as `process` does: the exit code, and the message
/// for stderr.
pub fn handle_raw(reg: &mut Registry, raw: &[u8]) -> (u8, Option<String>) {
    match pipeline::handle(reg, raw, Mode::Commit) {
        Ok(_) => (EX_OK, None),
        Err(e) => (
            EX_TEMPFAIL,
            Some(format!("temporary failure, nothing written: {e}")),
        ),
    }
}

/// Counts of results, printed after `replay` and the demo.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// By disposition word.
    pub by_result: BTreeMap<String, usize>,
    /// By code class (`1xxx` ... `8xxx`).
    pub by_class: BTreeMap<String, usize>,
}

impl Summary {
    /// Counts one handled mail.
    pub fn add(&mut self, h: &Handled) {
        *self
            .by_result
            .entry(word(h.disposition).to_string())
            .or_default() += 1;
        let mut classes: Vec<String> = h.codes.iter().map(|c| format!("{}xxx", c / 1000)).collect();
        classes.dedup();
        for c in classes {
            *self.by_class.entry(c).or_default() += 1;
        }
    }

    /// Counts a mail that failed on our side.
    pub fn add_exception(&mut self) {
        *self.by_result.entry("exception".into()).or_default() += 1;
    }

    /// The summary text.
    pub fn render(&self) -> String {
        let join = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let total: usize = self.by_result.values().sum();
        format!(
            "summary: {total} mails: {}\ncodes by class (mails): {}\n",
            join(&self.by_result),
            join(&self.by_class)
        )
    }
}

/// The word for a disposition.
pub fn word(d: Disposition) -> &'static str {
    pipeline::disposition_word(d)
}

/// Handles each mail; one line per mail; returns the summary.
pub fn replay_sources(
    reg: &mut Registry,
    sources: &[MailSource],
    mut each: impl FnMut(&MailSource, &Handled),
) -> Summary {
    let bar = ProgressBar::new(sources.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut summary = Summary::default();
    let raws: Vec<&[u8]> = sources.iter().map(|s| s.raw.as_slice()).collect();
    let batch = pipeline::handle_batch(reg, &raws, BatchOptions::default(), |i, result| {
        let Some(source) = sources.get(i) else {
            return;
        };
        match result {
            Ok(h) => {
                summary.add(&h);
                bar.suspend(|| each(source, &h));
            }
            Err(e) => {
                summary.add_exception();
                bar.suspend(|| eprintln!("{}: exception: {e}", source.name));
            }
        }
        bar.inc(1);
    });
    if let Err(e) = batch {
        // Could not even start (no second connection): nothing was applied.
        bar.suspend(|| eprintln!("replay: exception: {e}"));
        for _ in sources {
            summary.add_exception();
        }
    }
    bar.finish_and_clear();
    summary
}

/// `regmail replay PATH...`
pub fn replay(mut reg: Registry, inputs: &[PathBuf]) -> anyhow::Result<u8> {
    let sources = collect_sources(inputs).context("reading the mails to replay")?;
    let summary = replay_sources(&mut reg, &sources, |source, h| {
        let codes: Vec<String> = h.codes.iter().map(u16::to_string).collect();
        println!(
            "{}: {} {} {}",
            source.name,
            h.server_trid,
            word(h.disposition),
            codes.join(" ")
        );
    });
    print!("{}", summary.render());
    Ok(if summary.by_result.contains_key("exception") {
        EX_TEMPFAIL
    } else {
        EX_OK
    })
}

fn looks_like_mail(data: &[u8]) -> bool {
    let head = &data[..data.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    let first = text.lines().next().unwrap_or("");
    let header_like = first
        .split_once(':')
        .is_some_and(|(k, _)| !k.is_empty() && !k.contains(' ') && !k.starts_with('<'));
    header_like
        && text.lines().any(|l| {
            l.to_ascii_lowercase().starts_with("subject:")
                || l.to_ascii_lowercase().starts_with("from:")
        })
}

/// `regmail check FILE`: prints the reply's machine block; nothing changes.
pub fn check(mut reg: Registry, file: &Path) -> anyhow::Result<u8> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let signed = String::from_utf8_lossy(&data).contains("-----BEGIN PGP SIGNED MESSAGE-----");
    let (outcome, block) = if looks_like_mail(&data) || signed {
        let raw = if looks_like_mail(&data) {
            data
        } else {
            let mut m =
                b"Subject: REGISTRAR: check\nContent-Type: text/plain; charset=us-ascii\n\n"
                    .to_vec();
            m.extend_from_slice(&data);
            m
        };
        let h = pipeline::handle(&mut reg, &raw, Mode::Simulate)?;
        let outcome = match h.disposition {
            Disposition::Answered(o) => Some(o),
            _ => None,
        };
        match h.machine_block {
            Some(b) => (outcome, b),
            None => (
                outcome,
                format!("(no reply: {})\n", dropped_reason(h.disposition)),
            ),
        }
    } else {
        let (o, b) = pipeline::check_template(&mut reg, &String::from_utf8_lossy(&data))?;
        (Some(o), b)
    };
    print!("{block}");
    let ok = matches!(outcome, Some(Outcome::Success | Outcome::Pending));
    Ok(if ok { EX_OK } else { 1 })
}

fn dropped_reason(d: Disposition) -> &'static str {
    match d {
        Disposition::Dropped(r) => r,
        Disposition::Replayed => "a replay of an earlier template",
        Disposition::Duplicate => "this very mail was handled before",
        Disposition::Answered(_) => "answered",
    }
}
