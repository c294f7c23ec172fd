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
use std::collections::{BTreeMap, VecDeque};

/// The courier's word on a committed group: durable (or why not), and
/// what it sent of its replies (nothing unless durable).
pub(super) struct Dispatched {
    pub(super) seq: u64,
    pub(super) durable: Result<(), String>,
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
    verdicts: BTreeMap<u64, Result<(), String>>,
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
            report_group(results, Err("the courier thread stopped".into()), each);
        }
    }
}

/// Reports a group's results; if it is not durable, a mail it applied is
/// reported as such.
fn report_group(
    results: Results,
    verdict: Result<(), String>,
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

    fn word(seq: u64, durable: Result<(), String>) -> Dispatched {
        Dispatched {
            seq,
            durable,
            sent: None,
        }
    }

    /// What `each` saw: position and whether it was Ok, or the error.
    fn seen(log: &[(usize, Result<Handled, PipelineError>)]) -> Vec<(usize, String)> {
        log.iter()
            .map(|(i, r)| {
                let what = match r {
                    Ok(h) => h.server_trid.clone(),
                    Err(e) => e.to_string(),
                };
                (*i, what)
            })
            .collect()
    }

    #[test]
    fn nothing_is_reported_before_its_group_is_durable() {
        let log = std::cell::RefCell::new(Vec::new());
        let mut each = |i, r| log.borrow_mut().push((i, r));
        let mut waiting = Waiting::default();
        let first = waiting.number();
        waiting.push(
            Some(first),
            vec![(0, handled("A")), (1, handled("B"))],
            &mut each,
        );
        // A group that wrote nothing waits behind the first one.
        waiting.push(
            None,
            vec![(2, Err(PipelineError::GroupAbandoned))],
            &mut each,
        );
        let second = waiting.number();
        waiting.push(Some(second), vec![(3, handled("D"))], &mut each);
        assert!(log.borrow().is_empty());
        // The courier's word on the second group alone releases nothing.
        let _ = waiting.hear([word(second, Ok(()))].into_iter(), &mut each);
        assert!(log.borrow().is_empty());
        let _ = waiting.hear([word(first, Ok(()))].into_iter(), &mut each);
        waiting.finish(&mut each);
        let log = log.into_inner();
        let positions: Vec<usize> = log.iter().map(|(i, _)| *i).collect();
        assert_eq!(positions, [0, 1, 2, 3]);
        assert!(log[0].1.is_ok() && log[3].1.is_ok() && log[2].1.is_err());
    }

    #[test]
    fn a_group_not_made_durable_is_reported_as_such() {
        let log = std::cell::RefCell::new(Vec::new());
        let mut each = |i, r| log.borrow_mut().push((i, r));
        let mut waiting = Waiting::default();
        let first = waiting.number();
        waiting.push(
            Some(first),
            vec![(0, handled("A")), (1, Err(PipelineError::GroupAbandoned))],
            &mut each,
        );
        let second = waiting.number();
        waiting.push(Some(second), vec![(2, handled("C"))], &mut each);
        let _ = waiting.hear(
            [word(first, Err("disk on fire".into()))].into_iter(),
            &mut each,
        );
        // The courier ended without a word on the second group.
        waiting.finish(&mut each);
        let seen = seen(&log.into_inner());
        assert_eq!(seen.len(), 3);
        assert!(seen[0].1.contains("disk on fire"), "{seen:?}");
        assert!(seen[1].1.contains("commit of its group failed"), "{seen:?}");
        assert!(seen[2].1.contains("courier thread stopped"), "{seen:?}");
    }
}
