//! Batch: many mails in order, for `replay`.
//!
//! Input: raw mails in the order they are to be handled. Output: for every
//! mail, in that order, its [`Handled`] record or the [`PipelineError`] that
//! stopped it, reported only after the commit that made it durable.
//! Intake, signature checks and recipient lookups write nothing, so they run
//! ahead on checking threads, each with its own read connection; the writes run
//! on the calling thread, several mails per commit (a group commit), each
//! mail in its own savepoint. Invariants: mails are applied in the given
//! order, each atomically (a failed mail is rolled back alone, the others of
//! its group stand); the records equal those of [`super::handle`] run mail by
//! mail at the same instants (no template changes a certificate or a
//! registrar, which is all the workers read); no reply is delivered and no
//! record reported before its group is committed (`synchronous=FULL`).
//! Each group's commit also leases the replies then due (at most
//! [`reply::CHUNK`]) and records what the courier thread sent of earlier
//! groups; the courier sends a group's replies while the next one is
//! applied, then checkpoints the WAL on its own connection (the writer's
//! automatic checkpoints are off during the batch and back on after it).
//! One checking thread per core but the writer's; glibc is asked to keep
//! freed memory for the batch (decision 88).

use super::{
    Handled, Parts, PipelineError, Prepared, Registry, apply_mail, log_handled, prepare,
    record_sent,
};
use crate::auth::SigningKey;
use crate::clock::Clock;
use crate::config::Config;
use crate::ids::IdSource;
use crate::reply::{self, Sent};
use crate::store::{Checkpointer, OutboxMail, Store, StoreError};
use chrono::{DateTime, Utc};
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
    /// Groups of 64; one checking thread per core but the writer's (the
    /// writing thread is the one that cannot be spread: on two cores, two
    /// checking threads left it waiting for a core a third of the time).
    fn default() -> Self {
        BatchOptions {
            group: 64,
            workers: std::thread::available_parallelism()
                .map_or(1, |n| n.get().saturating_sub(1).max(1)),
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
    keep_freed_memory();
    // The courier checkpoints the WAL after each group's delivery, so the
    // writing thread only appends; the writer's own checkpoints resume
    // after the batch, whatever happened in it.
    let checkpointer = reg.store.checkpointer(busy).unwrap_or_else(|e| {
        // The writer then checkpoints, as outside a batch.
        tracing::warn!(error = %e, "no checkpointing connection");
        None
    });
    if checkpointer.is_some() {
        reg.store.auto_checkpoint(false)?;
    }
    let result = concurrent(reg, mails, group, readers, checkpointer, &mut each);
    if let Err(e) = reg.store.auto_checkpoint(true) {
        tracing::warn!(error = %e, "automatic checkpoints not resumed");
    }
    result
}

/// Asks the C allocator to keep freed memory for reuse. Each signature
/// check allocates and frees 32-64 KiB buffers (sequoia's armour reader);
/// glibc handed those pages back to the kernel after each free (its trim
/// threshold is 128 KiB) and faulted them in again, zeroed, for the next
/// mail: most of a checking thread's time. Freeing one block above its
/// mmap threshold raises both thresholds for the process (mallopt(3),
/// "dynamic mmap threshold"): 4 MiB blocks and 8 MiB of free heap are then
/// kept. Elsewhere it is one allocation freed (decision 88).
fn keep_freed_memory() {
    let block: Vec<u8> = Vec::with_capacity(4 << 20);
    drop(std::hint::black_box(block));
}

/// The batch with checking threads and a courier ([`handle_batch`]).
fn concurrent<M: AsRef<[u8]> + Sync>(
    reg: &mut Registry,
    mails: &[M],
    group: usize,
    readers: Vec<Store>,
    checkpointer: Option<Checkpointer>,
    each: &mut impl FnMut(usize, Result<Handled, PipelineError>),
) -> Result<(), PipelineError> {
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
        // Owned here: if a thread cannot be started, returning drops the
        // channels, and the threads already started end.
        let receive = receive;
        // The courier sends each group's replies once the group is
        // committed, while the next group is applied; what it sent is
        // settled in the next group's commit.
        let (post, posted) = mpsc::sync_channel::<Posted>(2);
        let (report, reported) = mpsc::channel::<Delivered>();
        let data_dir = writer.data_dir;
        spawn_named(scope, "regmail-courier".into(), move || {
            courier(config, data_dir, &posted, &report, checkpointer.as_ref());
        })?;
        for (k, reader) in readers.into_iter().enumerate() {
            let (send, next) = (send.clone(), &next);
            spawn_named(scope, format!("regmail-check{k}"), move || {
                work_ahead(config, clock, &reader, mails, next, &send);
            })?;
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
            let settled: Vec<Delivered> = reported.try_iter().collect();
            if let Some(claim) = commit_group(&mut writer, batch, settled, each) {
                // A courier that stopped leaves the mails leased: the next
                // `tick` after the lease sends them.
                let _ = post.send(claim);
            }
        }
        drop(post);
        let settled: Vec<Delivered> = reported.iter().collect();
        settle_all(writer.store, &settled);
        Ok(())
    })
}

/// Starts a named thread of the batch (`top -H`, profiles, panics name it).
fn spawn_named<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    name: String,
    f: impl FnOnce() + Send + 'scope,
) -> Result<(), PipelineError> {
    std::thread::Builder::new()
        .name(name)
        .spawn_scoped(scope, f)
        .map(drop)
        .map_err(PipelineError::Thread)
}

/// Mails leased in a committed group, with the group's instant.
type Posted = (Vec<OutboxMail>, DateTime<Utc>);
/// What the courier did with them.
type Delivered = (Sent, DateTime<Utc>);

/// Sends the replies of committed groups, in commit order, then
/// checkpoints what the group wrote.
fn courier(
    config: &Config,
    data_dir: &Path,
    posted: &mpsc::Receiver<Posted>,
    report: &mpsc::Sender<Delivered>,
    checkpointer: Option<&Checkpointer>,
) {
    for (mails, now) in posted {
        let sent = reply::send(config, data_dir, &mails, now);
        if report.send((sent, now)).is_err() {
            return;
        }
        if let Some(Err(e)) = checkpointer.map(Checkpointer::passive) {
            // Not a fault of the batch: the WAL is checkpointed later.
            tracing::debug!(error = %e, "checkpoint postponed");
        }
    }
}

/// Records the last deliveries after the batch (a relaxed commit each).
fn settle_all(store: &mut Store, settled: &[Delivered]) {
    for (sent, now) in settled {
        record_sent(store, sent, *now);
    }
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
        if let Some((mails, now)) = commit_group(&mut writer, batch, Vec::new(), each) {
            let sent = reply::send(&reg.config, &reg.data_dir, &mails, now);
            settle_all(&mut reg.store, &[(sent, now)]);
        }
    }
    Ok(())
}

/// Applies a group in one commit (with the settlements of earlier
/// deliveries and the lease of every reply now due), reports it, and
/// returns the leased mails for sending.
fn commit_group(
    w: &mut Writer<'_>,
    batch: Vec<(usize, Result<Prepared<'_>, PipelineError>)>,
    settled: Vec<Delivered>,
    each: &mut impl FnMut(usize, Result<Handled, PipelineError>),
) -> Option<Posted> {
    let profile = match w.config.profile() {
        Ok(p) => p,
        Err(e) => {
            abandon(batch, &e.to_string(), each);
            return None;
        }
    };
    let Some(now) = batch
        .iter()
        .rev()
        .find_map(|(_, p)| p.as_ref().ok().map(|m| m.now))
    else {
        // No mail of the group could be prepared: nothing to apply.
        settle_all(w.store, &settled);
        for (i, prepared) in batch {
            each(
                i,
                Err(prepared.err().unwrap_or(PipelineError::GroupAbandoned)),
            );
        }
        return None;
    };
    let mut parts = Parts {
        config: w.config,
        profile,
        key: w.key,
        ids: &mut *w.ids,
    };
    let config = w.config;
    let applied = w.store.write_group(|g| {
        for (sent, at) in &settled {
            let stamp = reply::rfc3339(*at);
            if let Err(e) = g.unit(|tx| tx.outbox_settle(&sent.settlements, &stamp)) {
                tracing::warn!(error = %e, "delivery not recorded; the mail will be sent again");
            }
        }
        let applied = batch
            .iter()
            .map(|(i, prepared)| match prepared {
                Ok(mail) => (*i, g.unit(|tx| apply_mail(tx, &mut parts, mail))),
                Err(_) => (*i, Err(PipelineError::GroupAbandoned)),
            })
            .collect::<Vec<_>>();
        // A failed lease leaves the replies queued for the next run.
        let claim = g
            .unit(|tx| reply::claim(config, tx, now, reply::CHUNK))
            .ok();
        (applied, claim)
    });
    let (applied, claim) = match applied {
        Ok(applied) => applied,
        Err(e) => {
            abandon(batch, &e.to_string(), each);
            return None;
        }
    };
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
    claim.map(|c| (c.mails, now))
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
