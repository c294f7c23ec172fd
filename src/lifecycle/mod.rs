//! Lifecycle: the time-driven half of the registry (lifecycle.md).
//!
//! Input: a store transaction, the rules, the injected instant and id
//! source. Output: the due steps applied (reminders, expiries,
//! auto-approvals, executions at deadlines, auto-renewals, redemption ends,
//! releases, quality-control deletions) and the [`Notice`]s they cause, which
//! [`notify::queue`] turns into signed mails (one digest per recipient).
//!
//! Invariants:
//! - Every step is applied at its due time, in due-time order, whoever runs
//!   it: the timer (`regmail tick`), a mail (`process` catches up before it
//!   handles the mail), or a read (`query`, `check`, `pending list` project
//!   inside a transaction that is rolled back). History and ledger rows carry
//!   the due time, so the state is the same however late a step is applied.
//! - Catching up twice at the same instant does nothing the second time.
//! - Key-expiry warnings ([`keys`]) are a timer-only step: they change no
//!   registry object, so reads and mails need not project them.
//! - Holder tokens are 128-bit secrets from the id source; only their
//!   SHA-256 is stored.

mod holder;
pub mod keys;
pub mod notify;
pub mod operator;
mod schedule;

pub use holder::{Answer, Verb, answer_mail, bounced, parse_answer};
pub use notify::Notice;

use crate::config::{Config, Profile};
use crate::ids::IdSource;
use crate::policy::Rules;
use crate::store::{StoreError, Tx};
use chrono::{DateTime, Utc};

/// What a lifecycle run needs.
pub struct Ctx<'a> {
    /// The configuration (the registry's own addresses).
    pub config: &'a Config,
    /// The active profile.
    pub profile: &'a Profile,
    /// The injected source of secrets (tokens, new authinfo values).
    pub ids: &'a mut dyn IdSource,
    /// The injected instant.
    pub now: DateTime<Utc>,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("now", &self.now).finish()
    }
}

impl Ctx<'_> {
    fn rules(&self) -> Rules<'_> {
        Rules {
            config: self.config,
            profile: self.profile,
        }
    }
}

/// The most steps one run applies; more means a step does not advance (a
/// bug), and the run fails rather than loop.
const MAX_STEPS: usize = 1_000_000;

/// Applies every step due at `ctx.now`, oldest first; returns the notices.
pub fn catch_up(tx: &mut Tx<'_>, ctx: &mut Ctx<'_>) -> Result<Vec<Notice>, StoreError> {
    let mut notices = Vec::new();
    for _ in 0..MAX_STEPS {
        let Some(step) = schedule::next(tx, ctx.profile, ctx.now)? else {
            return Ok(notices);
        };
        schedule::apply(tx, ctx, step, &mut notices)?;
    }
    Err(StoreError::Corrupt("lifecycle steps do not advance".into()))
}

/// After a template was applied: the notices for the requests it opened
/// (the holder's token mail, both registrars told) and closed (the other
/// registrar told).
pub fn after_template(
    tx: &mut Tx<'_>,
    ctx: &mut Ctx<'_>,
    server_trid: &str,
) -> Result<Vec<Notice>, StoreError> {
    let mut notices = Vec::new();
    for r in tx.requests_opened_by(server_trid)? {
        if r.state == "open" {
            holder::opened(tx, ctx, &r, &mut notices)?;
        }
    }
    for r in tx.requests_closed_by(server_trid)? {
        holder::closed_by_mail(tx, ctx, &r, &mut notices)?;
    }
    Ok(notices)
}
