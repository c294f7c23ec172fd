//! Durability of a batch's groups: the records of a group wait until the
//! courier made its commit durable, then are reported in order.
//!
//! Input: each group's results in commit order, and the courier's word on
//! each committed group (synced, or why not). Output: `each(position,
//! result)` calls in the batch's order. Invariants: no record is reported
//! before every earlier one; a committed group's records only after the
//! courier said it is durable; a group the courier failed to sync, or never
//! confirmed, reports its applied mails as [`PipelineError::NotDurable`].

use super::batch::Delivered;
use super::{Handled, PipelineError};
use crate::store::StoreError;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// Why a committed group of a batch is not known to be durable; shared by
/// every mail of the group.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Unconfirmed {
    /// Syncing the WAL after the group's commit failed (the store's error,
    /// in the message).
    #[error("syncing the commit failed: {0}")]
    Sync(Arc<StoreError>),
    /// The courier thread ended before it confirmed the group.
    #[error("the courier thread stopped")]
    CourierStopped,
}

/// The courier's word on a committed group: durable (or why not), and
/// what it sent of its replies (nothing unless durable).
pub(super) struct Dispatched {
    pub(super) seq: u64,
    pub(super) durable: Result<(), Unconfirmed>,
    pub(super) sent: Option<Delivered>,
}

/// The results of one group, by position.
pub(super) type Results = Vec<(usize, Result<Handled, PipelineError>)>;

/// Results waiting until the courier made their group durable; reported
/// in order.
#[derive(Default)]
pub(super) struct Waiting {
    /// Groups in order: the number of a committed group, and its results.
    groups: VecDeque<(Option<u64>, Results)>,
    /// The courier's verdicts not yet reported.
    verdicts: BTreeMap<u64, Result<(), Unconfirmed>>,
    last: u64,
}

impl Waiting {
    /// The number of the next committed group.
    pub(super) fn number(&mut self) -> u64 {
        self.last += 1;
        self.last
    }

    /// Queues a group's results (`seq`: committed, to be made durable;
    /// `None`: nothing was written) and reports what is ready.
    pub(super) fn push(
        &mut self,
        seq: Option<u64>,
        results: Results,
        each: &mut impl FnMut(usize, Result<Handled, PipelineError>),
    ) {
        self.groups.push_back((seq, results));
        self.release(each);
    }

    /// Takes the courier's verdicts, reports what they release, and
    /// returns the deliveries to record.
    pub(super) fn hear(
        &mut self,
        words: impl Iterator<Item = Dispatched>,
        each: &mut impl FnMut(usize, Result<Handled, PipelineError>),
    ) -> Vec<Delivered> {
        let mut sent = Vec::new();
        for word in words {
            self.verdicts.insert(word.seq, word.durable);
            sent.extend(word.sent);
        }
        self.release(each);
        sent
    }

    /// Reports the groups at the front whose fate is known.
    fn release(&mut self, each: &mut impl FnMut(usize, Result<Handled, PipelineError>)) {
        while let Some((seq, _)) = self.groups.front() {
            let verdict = match seq {
                None => Ok(()),
                Some(seq) => match self.verdicts.remove(seq) {
                    Some(verdict) => verdict,
                    None => return,
                },
            };
            let Some((_, results)) = self.groups.pop_front() else {
                return;
            };
            report_group(results, verdict, each);
        }
    }

    /// After the courier ended: a group it never confirmed is not known
    /// to be durable (the courier stopped early).
    pub(super) fn finish(mut self, each: &mut impl FnMut(usize, Result<Handled, PipelineError>)) {
        self.release(each);
        for (_, results) in self.groups.drain(..) {
            report_group(results, Err(Unconfirmed::CourierStopped), each);
        }
    }
}

/// Reports a group's results; if it is not durable, a mail it applied is
/// reported as such.
fn report_group(
    results: Results,
    verdict: Result<(), Unconfirmed>,
    each: &mut impl FnMut(usize, Result<Handled, PipelineError>),
) {
    for (i, result) in results {
        let result = match (result, &verdict) {
            (Ok(_), Err(why)) => Err(PipelineError::NotDurable(why.clone())),
            (result, _) => result,
        };
        each(i, result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn handled(trid: &str) -> Result<Handled, PipelineError> {
        Ok(Handled {
            server_trid: trid.into(),
            disposition: super::super::Disposition::Duplicate,
            registrar_id: None,
            transaction: None,
            codes: Vec::new(),
            machine_block: None,
        })
    }

    fn word(seq: u64, durable: Result<(), Unconfirmed>) -> Dispatched {
        Dispatched {
            seq,
            durable,
            sent: None,
        }
    }

    /// What `each` was called with: the position, and the server-trid of
    /// a record or the text of an error.
    #[derive(Default)]
    struct Log(RefCell<Vec<(usize, String)>>);

    impl Log {
        fn each(&self) -> impl FnMut(usize, Result<Handled, PipelineError>) + '_ {
            |i, r| {
                let what = match r {
                    Ok(h) => h.server_trid,
                    Err(e) => e.to_string(),
                };
                self.0.borrow_mut().push((i, what));
            }
        }

        fn seen(&self) -> Vec<(usize, String)> {
            self.0.borrow().clone()
        }
    }

    /// Queues a committed group; its number.
    fn committed(
        waiting: &mut Waiting,
        results: Results,
        each: &mut impl FnMut(usize, Result<Handled, PipelineError>),
    ) -> u64 {
        let seq = waiting.number();
        waiting.push(Some(seq), results, each);
        seq
    }

    #[test]
    fn nothing_is_reported_before_its_group_is_durable() {
        let log = Log::default();
        let mut each = log.each();
        let mut waiting = Waiting::default();
        let results = vec![(0, handled("A")), (1, handled("B"))];
        let first = committed(&mut waiting, results, &mut each);
        // A group that wrote nothing waits behind the first one.
        let abandoned = vec![(2, Err(PipelineError::GroupAbandoned))];
        waiting.push(None, abandoned, &mut each);
        let second = committed(&mut waiting, vec![(3, handled("D"))], &mut each);
        assert!(log.seen().is_empty());
        // The courier's word on the second group alone releases nothing.
        let _ = waiting.hear([word(second, Ok(()))].into_iter(), &mut each);
        assert!(log.seen().is_empty());
        let _ = waiting.hear([word(first, Ok(()))].into_iter(), &mut each);
        waiting.finish(&mut each);
        let seen = log.seen();
        let positions: Vec<usize> = seen.iter().map(|(i, _)| *i).collect();
        assert_eq!(positions, [0, 1, 2, 3]);
        assert_eq!((seen[0].1.as_str(), seen[3].1.as_str()), ("A", "D"));
        assert!(seen[2].1.contains("commit of its group failed"), "{seen:?}");
    }

    #[test]
    fn a_group_not_made_durable_is_reported_as_such() {
        let log = Log::default();
        let mut each = log.each();
        let mut waiting = Waiting::default();
        let results = vec![(0, handled("A")), (1, Err(PipelineError::GroupAbandoned))];
        let first = committed(&mut waiting, results, &mut each);
        let _ = committed(&mut waiting, vec![(2, handled("C"))], &mut each);
        let fire = StoreError::Corrupt("disk on fire".into());
        let verdict = word(first, Err(Unconfirmed::Sync(Arc::new(fire))));
        let _ = waiting.hear([verdict].into_iter(), &mut each);
        // The courier ended without a word on the second group.
        waiting.finish(&mut each);
        let seen = log.seen();
        assert_eq!(seen.len(), 3);
        assert!(seen[0].1.contains("disk on fire"), "{seen:?}");
        assert!(seen[1].1.contains("commit of its group failed"), "{seen:?}");
        assert!(seen[2].1.contains("courier thread stopped"), "{seen:?}");
    }

    /// The cause of a group not made durable is printed once, also where
    /// the whole chain is (`regmail: {e:#}`, serve's answer).
    #[test]
    fn the_cause_is_named_once() {
        let fire = StoreError::Corrupt("disk on fire".into());
        let e = PipelineError::NotDurable(Unconfirmed::Sync(Arc::new(fire)));
        let text = format!("{:#}", anyhow::Error::from(e));
        assert_eq!(text.matches("disk on fire").count(), 1, "{text}");
    }
}
