//! Runs of the lifecycle outside a mail: the timer (`regmail tick`), reads
//! projected to the injected instant, and the operator's decisions.
//!
//! Invariants: each run is one transaction: the due steps, the operator's
//! change and every notification they cause commit together, or nothing
//! does (exit 75); a projection rolls back, so a read never changes the
//! registry, and shows what a tick at that instant would leave.

use super::{PipelineError, Registry};
use crate::lifecycle::{self, Notice};
use crate::reply::{self, DeliveryReport};
use crate::store::{StoreError, Tx};

/// What a tick did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Notification mails queued (a digest counts once).
    pub queued: usize,
    /// Mails handed to the transport in this run.
    pub delivered: usize,
    /// Mails left for a later run (back-off).
    pub deferred: usize,
    /// Mails held back by their recipient's hourly cap.
    pub held: usize,
}

/// Applies what is due, then `work`; queues the notices; commits.
pub fn operate<T>(
    reg: &mut Registry,
    work: impl FnOnce(&mut Tx<'_>, &mut lifecycle::Ctx<'_>, &mut Vec<Notice>) -> Result<T, StoreError>,
) -> Result<(T, usize), PipelineError> {
    let now = reg.clock.now();
    let profile = reg.config.profile()?.clone();
    let Registry {
        config,
        store,
        key,
        ids,
        ..
    } = reg;
    store.write(|tx| -> Result<(T, usize), PipelineError> {
        let mut life = lifecycle::Ctx {
            config,
            profile: &profile,
            ids: ids.as_mut(),
            now,
        };
        let mut notices = lifecycle::catch_up(tx, &mut life)?;
        let out = work(tx, &mut life, &mut notices)?;
        let queued = lifecycle::notify::queue(tx, config, key, notices, now)?;
        Ok((out, queued))
    })
}

/// Reads the registry as it is at the injected instant: the due steps are
/// applied inside a transaction that is rolled back.
pub fn project<T>(
    reg: &mut Registry,
    read: impl FnOnce(&Tx<'_>) -> Result<T, StoreError>,
) -> Result<T, PipelineError> {
    let now = reg.clock.now();
    let profile = reg.config.profile()?.clone();
    let Registry {
        config, store, ids, ..
    } = reg;
    store.simulate(|tx| -> Result<T, PipelineError> {
        let mut life = lifecycle::Ctx {
            config,
            profile: &profile,
            ids: ids.as_mut(),
            now,
        };
        lifecycle::catch_up(tx, &mut life)?;
        Ok(read(tx)?)
    })
}

/// `regmail tick`: applies every due step, queues the notifications (one
/// digest per recipient), then delivers what is due in the outbox.
pub fn tick(reg: &mut Registry) -> Result<TickReport, PipelineError> {
    let ((), queued) = operate(reg, |tx, life, notices| {
        lifecycle::keys::warn_expiring(tx, life, notices)
    })?;
    let now = reg.clock.now();
    let report = match reply::deliver(&reg.config, &reg.data_dir, &mut reg.store, now) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "delivery postponed; the mail stays in the outbox");
            DeliveryReport::default()
        }
    };
    Ok(TickReport {
        queued,
        delivered: report.delivered,
        deferred: report.deferred,
        held: report.held,
    })
}
