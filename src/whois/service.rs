//! The lookup behind every answer: a query line in, an [`Answer`] out, read
//! from one snapshot of the registry database.
//!
//! Input: query bytes; the database path, the registry's name and profile,
//! the clock. Output: an [`Answer`] (found, no match or invalid query) or a
//! [`WhoisError`] (our fault). Invariants: reads only, through read-only
//! connections ([`WhoisReader`]) kept in a small pool (one per concurrent
//! query at most, at most [`MAX_IDLE`] idle); a connection that failed is
//! dropped, not reused; the state shown is the committed one (due lifecycle
//! steps appear once `tick` or the next `process` has applied them).

use super::WhoisError;
use super::answer::{self, Answer, Outcome, Preamble};
use super::query::{Query, parse_query};
use super::server::Responder;
use crate::clock::Clock;
use crate::config::Profile;
use crate::store::{WhoisDomain, WhoisPerson, WhoisReader};
use crate::template::{host_in_zone, split_zone};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Idle database connections kept for the next queries.
pub const MAX_IDLE: usize = 16;

/// What one snapshot found.
enum Found {
    Domain(WhoisDomain),
    Person(WhoisPerson),
    Nothing,
}

/// Answers queries from the registry database.
#[derive(Debug)]
pub struct Service {
    db: PathBuf,
    busy_timeout: Duration,
    idle: Mutex<Vec<WhoisReader>>,
    preamble: Preamble,
    profile: Profile,
    clock: Box<dyn Clock>,
}

impl Service {
    /// Opens the database read-only once (to fail early on a missing or
    /// foreign file) and keeps that connection for the first query.
    pub fn open(
        db: &Path,
        busy_timeout: Duration,
        registry: &str,
        profile: Profile,
        clock: Box<dyn Clock>,
    ) -> Result<Service, WhoisError> {
        let first = WhoisReader::open(db, busy_timeout)?;
        Ok(Service {
            db: db.to_path_buf(),
            busy_timeout,
            idle: Mutex::new(vec![first]),
            preamble: Preamble {
                registry: registry.to_string(),
                source: profile.source.clone(),
            },
            profile,
            clock,
        })
    }

    fn lookup(&self, query: &Query) -> Result<Found, WhoisError> {
        let taken = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut reader = match taken {
            Some(r) => r,
            None => WhoisReader::open(&self.db, self.busy_timeout)?,
        };
        let found = reader.snapshot(|s| {
            Ok(match query {
                Query::Domain(name) => s.domain(name)?.map(Found::Domain),
                Query::Handle(handle) => s.person(handle)?.map(Found::Person),
            }
            .unwrap_or(Found::Nothing))
        })?;
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(reader);
        }
        Ok(found)
    }

    /// The answer to one query line.
    pub fn answer(&self, raw: &[u8]) -> Result<Answer, WhoisError> {
        let at = self.clock.now();
        let query = match parse_query(raw) {
            Ok(q) => q,
            Err(e) => return Ok(answer::invalid(&self.preamble, e, at)),
        };
        let source = &self.preamble.source;
        let (body, outcome) = match self.lookup(&query)? {
            Found::Domain(d) => {
                let glue = |host: &str| host_in_zone(host, &self.profile);
                (answer::domain_block(&d, glue, source)?, Outcome::Domain)
            }
            Found::Person(p) => (answer::person_block(&p, source)?, Outcome::Handle),
            Found::Nothing => {
                let outside = match &query {
                    Query::Domain(name) => split_zone(name, &self.profile).is_none(),
                    Query::Handle(_) => false,
                };
                let zones = outside.then_some(self.profile.zones.as_slice());
                (answer::no_match(query.text(), zones), Outcome::NoMatch)
            }
        };
        let header = answer::header(&self.preamble, Some(query.text()), at);
        Ok(Answer {
            text: format!("{header}{body}"),
            outcome,
            query: Some(query.text().to_string()),
        })
    }
}

impl Responder for Service {
    fn respond(&self, query: &[u8]) -> Result<Answer, WhoisError> {
        self.answer(query)
    }
}
