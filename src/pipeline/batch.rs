//! Batch: many mails in order, for `replay`.
//!
//! Input: raw mails in the order they are to be handled. Output: for every
//! mail, in that order, its [`Handled`] record or the [`PipelineError`]
//! that stopped it, reported only after the commit that made it durable.
//! Intake, signature checks, recipient lookups and the template's parse
//! write nothing, so they run ahead on checking threads, each with its own
//! read connection; the writes run on the calling thread, several mails per
//! commit (a group commit), each mail an atomic unit (`Store::write_group`:
//! if one fails, the group is applied again with a savepoint per mail, and
//! the same secrets). Invariants: mails are applied in the given order,
//! each atomically (a failed mail is rolled back alone, the others of its
//! group stand); the records equal those of [`super::handle`] run mail by
//! mail at the same instants (no template changes a certificate or a
//! registrar, which is all the workers read); no reply is delivered and no
//! record reported before its group is durable.
//! Each group's commit also leases the replies then due (at most
//! [`reply::CHUNK`]) and records what the courier thread sent of earlier
//! groups. The writer's commits do not wait for the disk during the batch
//! (`synchronous=NORMAL`): the courier syncs the WAL after each commit, and
//! only then sends the group's replies and lets its records be reported,
//! while the writer already applies the next group; every few groups it
//! asks a checkpointing thread, with its own connection, to copy the WAL
//! into the database (the writer's automatic checkpoints and durable
//! commits are off during the batch and back on after it).
//! One checking thread per core but the writer's. Its threads allocate on
//! one thread and free on another; the binary's allocator (mimalloc,
//! decision 97) is what makes that cheap.

use super::durable::{Dispatched, Results, Unconfirmed, Waiting};
use super::{
    Handled, Parts, PipelineError, Prepared, Registry, apply_mail, log_handled, prepare,
    record_sent,
};
use crate::auth::SigningKey;
use crate::clock::Clock;
use crate::config::{Config, Profile};
use crate::ids::{IdSource, Rewind};
use crate::reply::{self, Sent};
use crate::store::{Checkpointer, OutboxMail, Store, StoreError, WalSync};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
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
    // The courier makes each group durable and a thread of its own
    // checkpoints the WAL, so the writing thread only appends and never
    // waits for the disk; the writer's own checkpoints and durable commits
    // resume after the batch, whatever happened in it.
    let checkpointer = reg.store.checkpointer(busy).unwrap_or_else(|e| {
        // The writer then checkpoints, as outside a batch.
        tracing::warn!(error = %e, "no checkpointing connection");
        None
    });
    if checkpointer.is_some() {
        reg.store.auto_checkpoint(false)?;
        if let Err(e) = reg.store.defer_sync(true) {
            // Nothing was applied: the writer keeps its own checkpoints.
            let _ = reg.store.auto_checkpoint(true);
            return Err(e.into());
        }
    }
    let result = concurrent(reg, mails, group, readers, checkpointer, &mut each);
    if let Err(e) = reg.store.auto_checkpoint(true) {
        tracing::warn!(error = %e, "automatic checkpoints not resumed");
    }
    if let Err(e) = reg.store.defer_sync(false) {
        tracing::warn!(error = %e, "commits stay relaxed");
    }
    result
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
        let (post, reported) = start_delivery(scope, config, writer.data_dir, checkpointer)?;
        start_checking(scope, (config, clock), readers, mails, &next, send)?;
        let mut ahead = BTreeMap::new();
        let mut waiting = Waiting::default();
        let mut position = 0;
        while position < mails.len() {
            let end = (position + group).min(mails.len());
            let batch = (position..end)
                .map(|p| (p, in_order(&receive, &mut ahead, p)))
                .collect();
            position = end;
            let settled = waiting.hear(reported.try_iter(), each);
            let outcome = commit_group(&mut writer, batch, settled);
            let seq = outcome.committed.map(|(mails, now)| {
                let seq = waiting.number();
                // A courier that stopped leaves the mails leased (the next
                // `tick` after the lease sends them) and the group unconfirmed.
                let _ = post.send(Committed { seq, mails, now });
                seq
            });
            waiting.push(seq, outcome.results, each);
        }
        drop(post);
        let settled = waiting.hear(reported.iter(), each);
        waiting.finish(each);
        settle_all(writer.store, &settled);
        Ok(())
    })
}

/// Starts one checking thread per reader; each prepares mails by position
/// and sends them on `send` (dropped when the last of them ends).
fn start_checking<'scope, 'env, M: AsRef<[u8]> + Sync>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    (config, clock): (&'env Config, &'env dyn Clock),
    readers: Vec<Store>,
    mails: &'env [M],
    next: &'env AtomicUsize,
    send: mpsc::SyncSender<Ready<'env>>,
) -> Result<(), PipelineError> {
    for (k, reader) in readers.into_iter().enumerate() {
        let send = send.clone();
        spawn_named(scope, format!("regmail-check{k}"), move || {
            work_ahead(config, clock, &reader, mails, next, &send);
        })?;
    }
    Ok(())
}

/// Starts the courier and, with a checkpointer, the checkpointing thread;
/// returns the channel the writer posts committed groups on and the one
/// the courier reports on. The courier syncs each committed group, then
/// sends its replies while the next group is applied; what it sent is
/// settled in a later group's commit, and its word on each group releases
/// the group's records (`durable::Waiting`).
fn start_delivery<'scope, 'env>(
    scope: &'scope std::thread::Scope<'scope, 'env>,
    config: &'env Config,
    data_dir: &'env Path,
    checkpointer: Option<Checkpointer>,
) -> Result<(mpsc::SyncSender<Committed>, mpsc::Receiver<Dispatched>), PipelineError> {
    let (post, posted) = mpsc::sync_channel::<Committed>(2);
    let (report, reported) = mpsc::channel::<Dispatched>();
    let wal = checkpointer.as_ref().map(Checkpointer::wal_sync);
    let ticks = match checkpointer {
        Some(cp) => {
            // One request waiting at most: a courier that finds one
            // waiting does not queue another.
            let (tick, ticks) = mpsc::sync_channel::<()>(1);
            spawn_named(scope, "regmail-checkpoint".into(), move || {
                checkpoints(&cp, &ticks);
            })?;
            Some(tick)
        }
        None => None,
    };
    spawn_named(scope, "regmail-courier".into(), move || {
        let durability = Durability { wal, ticks };
        courier(config, data_dir, &posted, &report, &durability);
    })?;
    Ok((post, reported))
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

/// What the courier did with a group's replies, and the group's instant.
pub(super) type Delivered = (Sent, DateTime<Utc>);

/// A committed group on its way to the courier: its number, the replies it
/// leased, its instant.
struct Committed {
    seq: u64,
    mails: Vec<OutboxMail>,
    now: DateTime<Utc>,
}

/// How the courier makes groups durable: by syncing the WAL (none: the
/// writer's commits were durable already) and by asking for checkpoints.
struct Durability {
    wal: Option<WalSync>,
    ticks: Option<mpsc::SyncSender<()>>,
}

/// Makes each committed group durable (the writer's commits do not wait
/// for the disk during a batch), only then sends its replies, in commit
/// order; asks for a checkpoint every few groups. Checkpoints run on their
/// own thread, so that the copying and the database file's sync do not
/// hold up delivery.
fn courier(
    config: &Config,
    data_dir: &Path,
    posted: &mpsc::Receiver<Committed>,
    report: &mpsc::Sender<Dispatched>,
    durability: &Durability,
) {
    for Committed { seq, mails, now } in posted {
        let durable = durability
            .wal
            .as_ref()
            .map_or(Ok(()), WalSync::sync)
            .map_err(|e| Unconfirmed::Sync(Arc::new(e)));
        if let Err(why) = &durable {
            tracing::error!(error = %why, "a committed group is not known to be durable; its replies stay leased");
        }
        let sent = (durable.is_ok() && !mails.is_empty())
            .then(|| (reply::send(config, data_dir, &mails, now), now));
        if report.send(Dispatched { seq, durable, sent }).is_err() {
            return;
        }
        if let Some(tick) = durability
            .ticks
            .as_ref()
            .filter(|_| seq % CHECKPOINT_EVERY == 0)
        {
            // Full: a checkpoint is already asked for.
            let _ = tick.try_send(());
        }
    }
}

/// Groups between two checkpoints: a checkpoint copies the pages every
/// group changes (the tables' and indexes' last pages) once, and syncs the
/// database file once, for this many groups; the WAL holds at most their
/// frames (about 4 MB for groups of 64) and those of the groups committed
/// while it runs.
const CHECKPOINT_EVERY: u64 = 4;

/// The checkpointing thread: one checkpoint per request, and one when the
/// courier has finished.
fn checkpoints(checkpointer: &Checkpointer, ticks: &mpsc::Receiver<()>) {
    for () in ticks {
        checkpoint(checkpointer);
    }
    checkpoint(checkpointer);
}

/// Copies what the WAL holds into the database file, if it can.
fn checkpoint(checkpointer: &Checkpointer) {
    if let Err(e) = checkpointer.passive() {
        // Not a fault of the batch: the WAL is checkpointed later.
        tracing::debug!(error = %e, "checkpoint postponed");
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
        let outcome = commit_group(&mut writer, batch, Vec::new());
        for (i, result) in outcome.results {
            each(i, result);
        }
        if let Some((mails, now)) = outcome.committed.filter(|(m, _)| !m.is_empty()) {
            let sent = reply::send(&reg.config, &reg.data_dir, &mails, now);
            settle_all(&mut reg.store, &[(sent, now)]);
        }
    }
    Ok(())
}

/// A group after its commit.
struct GroupOutcome {
    /// Every mail's result, by position.
    results: Results,
    /// If the commit succeeded: the replies it leased (none if the lease
    /// failed: they stay queued) and the group's instant.
    committed: Option<(Vec<OutboxMail>, DateTime<Utc>)>,
}

/// Applies a group in one commit (with the settlements of earlier
/// deliveries and the lease of every reply now due).
fn commit_group(
    w: &mut Writer<'_>,
    batch: Vec<(usize, Result<Prepared<'_>, PipelineError>)>,
    settled: Vec<Delivered>,
) -> GroupOutcome {
    let profile = match w.config.profile() {
        Ok(p) => p,
        Err(e) => return abandon(batch, &e.to_string()),
    };
    let Some(now) = batch
        .iter()
        .rev()
        .find_map(|(_, p)| p.as_ref().ok().map(|m| m.now))
    else {
        // No mail of the group could be prepared: nothing to apply.
        settle_all(w.store, &settled);
        return not_applied(batch);
    };
    let (applied, claim) = match apply_group(w, profile, &batch, &settled, now) {
        Ok(applied) => applied,
        Err(e) => return abandon(batch, &e.to_string()),
    };
    let results = batch
        .into_iter()
        .zip(applied)
        .map(|((i, prepared), result)| match (prepared, result) {
            (Err(e), _) => (i, Err(e)),
            (Ok(mail), Ok(handled)) => {
                log_handled(&handled, mail.started);
                (i, Ok(handled))
            }
            (Ok(_), Err(e)) => (i, Err(e)),
        })
        .collect();
    GroupOutcome {
        results,
        committed: Some((claim.map(|c| c.mails).unwrap_or_default(), now)),
    }
}

/// What a group's transaction returned: every mail's result, and the
/// lease of the replies due (none if it failed: they stay queued).
type Applied = (Vec<Result<Handled, PipelineError>>, Option<reply::Claim>);

/// The group's transaction: the settlements, each mail in its own unit,
/// the lease. If a unit fails, the store rolls the group back and runs
/// this again (each unit then in a savepoint): the secrets the first run
/// drew are handed out again in the same order, so the records equal those
/// of handling the mails one by one.
fn apply_group(
    w: &mut Writer<'_>,
    profile: &Profile,
    batch: &[(usize, Result<Prepared<'_>, PipelineError>)],
    settled: &[Delivered],
    now: DateTime<Utc>,
) -> Result<Applied, StoreError> {
    let (config, key) = (w.config, w.key);
    let mut ids = Rewind::new(&mut *w.ids);
    w.store.write_group(|g| {
        ids.rewind();
        let mut parts = Parts {
            config,
            profile,
            key,
            ids: &mut ids,
        };
        for (sent, at) in settled {
            let stamp = reply::rfc3339(*at);
            if let Err(e) = g.unit(|tx| tx.outbox_settle(&sent.settlements, &stamp)) {
                // A unit failing in the first attempt sends the group
                // round again: only the second attempt's failure is final.
                if g.again() {
                    tracing::warn!(error = %e, "delivery not recorded; the mail will be sent again");
                }
            }
        }
        let applied = batch
            .iter()
            .map(|(_, prepared)| match prepared {
                Ok(mail) => g.unit(|tx| apply_mail(tx, &mut parts, mail)),
                Err(_) => Err(PipelineError::GroupAbandoned),
            })
            .collect::<Vec<_>>();
        // A failed lease leaves the replies queued for the next run.
        let claim = g
            .unit(|tx| reply::claim(config, tx, now, reply::CHUNK))
            .ok();
        (applied, claim)
    })
}

/// The group's commit failed: nothing of it was written; every mail is
/// reported as failed (the operator replays them again).
fn abandon(batch: Vec<(usize, Result<Prepared<'_>, PipelineError>)>, why: &str) -> GroupOutcome {
    tracing::warn!(error = why, mails = batch.len(), "group commit failed");
    not_applied(batch)
}

/// Every mail of a group that wrote nothing, with why.
fn not_applied(batch: Vec<(usize, Result<Prepared<'_>, PipelineError>)>) -> GroupOutcome {
    let results = batch
        .into_iter()
        .map(|(i, prepared)| {
            (
                i,
                Err(prepared.err().unwrap_or(PipelineError::GroupAbandoned)),
            )
        })
        .collect();
    GroupOutcome {
        results,
        committed: None,
    }
}
