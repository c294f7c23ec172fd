//! The master-file text of a [`Zone`] and its SOA serial.
//!
//! Input: a built zone, a serial; the zone's stored serial state and the
//! injected clock's date. Output: RFC 1035 text, one record per line
//! (absolute owner, TTL, class, type, data, tab-separated), and the serial
//! to write. Invariants: the same zone and serial give the same bytes; the
//! digest covers everything but the serial; a new serial is `YYYYMMDDnn` of
//! the date where that is greater than every serial issued before, else the
//! last one plus 1: it never repeats and never goes down.

use super::{Data, Zone, ZoneError};
use crate::store::ZoneSerialRow;
use chrono::{Datelike, NaiveDate};
use sha2::{Digest, Sha256};
use std::fmt::Write;

impl Zone {
    /// The master file with `serial` in its SOA.
    pub fn render(&self, serial: u32) -> String {
        let t = self.timers;
        let o = &self.origin;
        let mut out = format!(
            "; zone {o} written by regmail\n$ORIGIN {o}\n$TTL {}\n",
            t.ttl
        );
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{o}\t{}\tIN\tSOA\t{} {} {serial} {} {} {} {}",
            t.ttl, self.primary, self.hostmaster, t.refresh, t.retry, t.expire, t.minimum
        );
        for r in &self.records {
            let (kind, data) = match &r.data {
                Data::Ns(n) => ("NS", n.to_string()),
                Data::A(a) => ("A", a.to_string()),
                Data::Aaaa(a) => ("AAAA", a.to_string()),
            };
            let _ = writeln!(out, "{}\t{}\tIN\t{kind}\t{data}", r.owner, t.ttl);
        }
        out
    }

    /// SHA-256 (hex) of the text without its serial: equal digests, equal
    /// files but for the serial.
    pub fn digest(&self) -> String {
        hex::encode(Sha256::digest(self.render(0).as_bytes()))
    }

    /// The zone's name, absolute.
    pub fn origin(&self) -> String {
        self.origin.to_string()
    }
}

/// The serial an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Serial {
    /// The value.
    pub value: u32,
    /// True if it was not issued before (the content changed): it must be
    /// recorded as issued before the file is written.
    pub fresh: bool,
}

/// `YYYYMMDD00` of `day`, if it fits in 32 bits.
fn of_date(day: NaiveDate) -> Option<u32> {
    let y = u64::try_from(day.year()).ok()?;
    let v = y * 1_000_000 + u64::from(day.month()) * 10_000 + u64::from(day.day()) * 100;
    u32::try_from(v).ok()
}

/// The serial for content with `digest` on `today`, given the zone's state:
/// the published serial again if the content is the one published and no
/// later serial was issued since; otherwise a fresh one.
pub fn serial(
    state: Option<&ZoneSerialRow>,
    digest: &str,
    today: NaiveDate,
) -> Result<Serial, ZoneError> {
    if let Some(s) = state
        && s.published == Some(s.issued)
        && s.digest.as_deref() == Some(digest)
    {
        return Ok(Serial {
            value: s.issued,
            fresh: false,
        });
    }
    let after = match state {
        Some(s) => Some(
            s.issued
                .checked_add(1)
                .ok_or(ZoneError::SerialExhausted(s.issued))?,
        ),
        None => None,
    };
    let value = match (of_date(today), after) {
        (Some(d), Some(a)) => d.max(a),
        (Some(d), None) => d,
        (None, Some(a)) => a,
        (None, None) => 1,
    };
    Ok(Serial { value, fresh: true })
}
