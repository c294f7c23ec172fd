//! Batch: many mails in order, for `replay`.
//!
//! Input: raw mails in the order they are to be handled. Output: for every
//! mail, in that order, its [`Handled`] record or the [`PipelineError`] that
//! stopped it, reported only after the commit that made it durable.
//! Intake, signature checks and recipient lookups write nothing, so they run
//! ahead on worker threads, each with its own read connection; the writes run
//! on the calling thread, several mails per commit (a group commit), each
//! mail in its own savepoint. Invariants: mails are applied in the given
//! order, each atomically (a failed mail is rolled back alone, the others of
//! its group stand); the records equal those of [`super::handle`] run mail by
//! mail at the same instants (no template changes a certificate or a
//! registrar, which is all the workers read); no reply is delivered and no
//! record reported before its group is committed (`synchronous=FULL`).

use super::{
    Handled, Parts, PipelineError, Prepared, Registry, apply_mail, deliver_outbox, log_handled,
    prepare,
};
use crate::auth::SigningKey;
use crate::clock::Clock;
use crate::config::Config;
use crate::ids::IdSource;
use crate::store::{Store, StoreError};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How a batch runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Most mails per commit.
    pub group: usize,
    /// Threads checking mails ahead (0: all on the calling thread).
    pub workers: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            group: 64,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// One prepared mail (or why it could not be prepared), by position.
type Ready<'m> = (usize, Result<Prepared<'m>, PipelineError>);

/// Handles `mails` in order; calls `each(position, result)` once per mail
/// after its group committed.
pub fn handle_batch<M: AsRef<[u8]> + Sync>(
    reg: &mut Registry,
    mails: &[M],
    options: BatchOptions,
    mut each: impl FnMut(usize, Result<Handled, PipelineError>),
) -> Result<(), PipelineError> {
    let busy = Duration::from_millis(reg.config.database.busy_timeout_ms);
    let mut readers = Vec::new();
    for _ in 0..options.workers {
        match reg.store.reader(busy)? {
            Some(r) => readers.push(r),
            None => break,
        }
    }
    let group = options.group.max(1);
    if readers.is_empty() {
        return sequential(reg, mails, group, &mut each);
    }
    let next = AtomicUsize::new(0);
    let (send, receive) = mpsc::sync_channel::<Ready<'_>>(group * 2);
    let Registry {
        config,
        store,
        key,
        clock,
        ids,
        data_dir,
    } = reg;
    let (config, clock): (&Config, &dyn Clock) = (config, clock.as_ref());
    let mut writer = Writer {
        config,
        store,
        key,
        ids: ids.as_mut(),
        data_dir,
    };
    std::thread::scope(|scope| {
        for reader in readers {
            let (send, next) = (send.clone(), &next);
            scope.spawn(move || work_ahead(config, clock, &reader, mails, next, &send));
        }
        drop(send);
        let mut ahead = BTreeMap::new();
        let mut position = 0;
        while position < mails.len() {
            let mut batch = Vec::with_capacity(group);
            while batch.len() < group && position < mails.len() {
                let item = in_order(&receive, &mut ahead, position);
                batch.push((position, item));
                position += 1;
            }
            commit_group(&mut writer, batch, &mut each);
        }
    });
    Ok(())
}

/// A worker: prepares mails by position until none is left.
fn work_ahead<'m, M: AsRef<[u8]>>(
    config: &Config,
    clock: &dyn Clock,
    reader: &Store,
    mails: &'m [M],
    next: &AtomicUsize,
    send: &mpsc::SyncSender<Ready<'m>>,
) {
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(mail) = mails.get(i) else {
            return;
        };
        let prepared = prepare(config, reader, mail.as_ref(), clock.now());
        if send.send((i, prepared)).is_err() {
            return;
        }
    }
}

/// The prepared mail at `position`, keeping those that arrive early.
fn in_order<'m>(
    receive: &mpsc::Receiver<Ready<'m>>,
    ahead: &mut BTreeMap<usize, Result<Prepared<'m>, PipelineError>>,
    position: usize,
) -> Result<Prepared<'m>, PipelineError> {
    loop {
        if let Some(item) = ahead.remove(&position) {
            return item;
        }
        match receive.recv() {
            Ok((i, item)) => {
                ahead.insert(i, item);
            }
            // Every worker ended without this mail: cannot happen while
            // positions remain, but a lost mail is reported, never skipped.
            Err(_) => {
                return Err(PipelineError::Store(StoreError::Corrupt(
                    "a batch worker stopped early".into(),
                )));
            }
        }
    }
}

/// What the writing thread borrows of the registry.
struct Writer<'r> {
    config: &'r Config,
    store: &'r mut Store,
    key: &'r SigningKey,
    ids: &'r mut dyn IdSource,
    data_dir: &'r Path,
}

/// Without a second connection (an in-memory database): all on this thread.
fn sequential<M: AsRef<[u8]>>(
    reg: &mut Registry,
    mails: &[M],
    group: usize,
    each: &mut impl FnMut(usize, Result<Handled, PipelineError>),
) -> Result<(), PipelineError> {
    for (start, chunk) in mails.chunks(group).enumerate() {
        let batch = chunk
            .iter()
            .enumerate()
            .map(|(k, mail)| {
                let now = reg.clock.now();
                (
                    start * group + k,
                    prepare(&reg.config, &reg.store, mail.as_ref(), now),
                )
            })
            .collect();
        let mut writer = Writer {
            config: &reg.config,
            store: &mut reg.store,
            key: &reg.key,
            ids: reg.ids.as_mut(),
            data_dir: &reg.data_dir,
        };
        commit_group(&mut writer, batch, each);
    }
    Ok(())
}

/// Applies a group in one commit, then delivers and reports it.
fn commit_group(
    w: &mut Writer<'_>,
    batch: Vec<(usize, Result<Prepared<'_>, PipelineError>)>,
    each: &mut impl FnMut(usize, Result<Handled, PipelineError>),
) {
    let profile = match w.config.profile() {
        Ok(p) => p,
        Err(e) => return abandon(batch, &e.to_string(), each),
    };
    let mut parts = Parts {
        config: w.config,
        profile,
        key: w.key,
        ids: &mut *w.ids,
    };
    let applied = w.store.write_group(|g| {
        batch
            .iter()
            .map(|(i, prepared)| match prepared {
                Ok(mail) => (*i, g.unit(|tx| apply_mail(tx, &mut parts, mail))),
                Err(_) => (*i, Err(PipelineError::GroupAbandoned)),
            })
            .collect::<Vec<_>>()
    });
    let applied = match applied {
        Ok(applied) => applied,
        Err(e) => return abandon(batch, &e.to_string(), each),
    };
    let last = batch.iter().rev().find_map(|(_, p)| p.as_ref().ok());
    if let Some(mail) = last {
        deliver_outbox(w.config, w.data_dir, w.store, mail.now);
    }
    for ((i, prepared), (_, result)) in batch.into_iter().zip(applied) {
        match (prepared, result) {
            (Err(e), _) => each(i, Err(e)),
            (Ok(mail), Ok(handled)) => {
                log_handled(&handled, mail.started);
                each(i, Ok(handled));
            }
            (Ok(_), Err(e)) => each(i, Err(e)),
        }
    }
}

/// The group's commit failed: nothing of it was written; every mail is
/// reported as failed (the operator replays them again).
fn abandon(
    batch: Vec<(usize, Result<Prepared<'_>, PipelineError>)>,
    why: &str,
    each: &mut impl FnMut(usize, Result<Handled, PipelineError>),
) {
    tracing::warn!(error = why, mails = batch.len(), "group commit failed");
    for (i, prepared) in batch {
        each(
            i,
            Err(prepared.err().unwrap_or(PipelineError::GroupAbandoned)),
        );
    }
}
