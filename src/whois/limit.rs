//! The per-client query rate: a token bucket per client address.
//!
//! Input: the client's address and a monotonic instant per query. Output:
//! [`Verdict::Allowed`] or [`Verdict::Refused`] with the wait until the next
//! token. Invariants: a client starts with `burst` tokens and gains
//! `per_minute` per minute, never more than `burst`; IPv4-mapped IPv6
//! addresses count as their IPv4 address and an IPv6 client as its /64 (one
//! site's prefix, which a single host may rotate through freely); at most
//! `max_clients` buckets are kept: full buckets are forgotten first (a full
//! bucket is what a new client gets), then the longest idle; `per_minute` 0
//! turns the limit off.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

/// Whether a query may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer it.
    Allowed,
    /// Refuse it; a token is available again after this long.
    Refused {
        /// Until the next token.
        retry_after: Duration,
    },
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets keyed by client address.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    capacity: f64,
    max_clients: usize,
    buckets: HashMap<IpAddr, Bucket>,
}

/// The key a client address is counted under.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(bits))
            }
        },
    }
}

impl RateLimiter {
    /// `per_minute` tokens a minute, at most `burst` (at least 1) saved up,
    /// at most `max_clients` (at least 1) clients remembered.
    pub fn new(per_minute: u32, burst: u32, max_clients: usize) -> RateLimiter {
        RateLimiter {
            per_second: f64::from(per_minute) / 60.0,
            capacity: f64::from(burst.max(1)),
            max_clients: max_clients.max(1),
            buckets: HashMap::new(),
        }
    }

    /// How many clients are remembered.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }

    fn refilled(&self, b: Bucket, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(b.last).as_secs_f64();
        (b.tokens + secs * self.per_second).min(self.capacity)
    }

    /// Makes room for one more bucket.
    fn evict(&mut self, now: Instant) {
        if self.buckets.len() < self.max_clients {
            return;
        }
        let capacity = self.capacity;
        let full: Vec<IpAddr> = self
            .buckets
            .iter()
            .filter(|(_, b)| self.refilled(**b, now) >= capacity)
            .map(|(k, _)| *k)
            .collect();
        for k in full {
            self.buckets.remove(&k);
        }
        while self.buckets.len() >= self.max_clients {
            let oldest = self
                .buckets
                .iter()
                .min_by_key(|(_, b)| b.last)
                .map(|(k, _)| *k);
            match oldest {
                Some(k) => self.buckets.remove(&k),
                None => break,
            };
        }
    }

    /// Takes a token for `ip` if it has one.
    pub fn check(&mut self, ip: IpAddr, now: Instant) -> Verdict {
        if self.per_second <= 0.0 {
            return Verdict::Allowed;
        }
        let key = client_key(ip);
        let tokens = match self.buckets.get(&key) {
            Some(b) => self.refilled(*b, now),
            None => {
                self.evict(now);
                self.capacity
            }
        };
        let (tokens, verdict) = if tokens >= 1.0 {
            (tokens - 1.0, Verdict::Allowed)
        } else {
            let wait = (1.0 - tokens) / self.per_second;
            let retry_after = Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX);
            (tokens, Verdict::Refused { retry_after })
        };
        self.buckets.insert(key, Bucket { tokens, last: now });
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn burst_then_rate() {
        let mut l = RateLimiter::new(60, 3, 100);
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(l.check(a, t0), Verdict::Allowed);
        }
        let Verdict::Refused { retry_after } = l.check(a, t0) else {
            panic!("the fourth query at once is refused");
        };
        assert_eq!(retry_after, Duration::from_secs(1));
        // Another client has its own bucket.
        assert_eq!(l.check(ip("192.0.2.2"), t0), Verdict::Allowed);
        // One token a second.
        assert_eq!(
            l.check(a, t0 + Duration::from_millis(1000)),
            Verdict::Allowed
        );
        assert!(matches!(
            l.check(a, t0 + Duration::from_millis(1500)),
            Verdict::Refused { .. }
        ));
        // Never more than the burst saved up.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(l.check(a, later), Verdict::Allowed);
        }
        assert!(matches!(l.check(a, later), Verdict::Refused { .. }));
    }

    #[test]
    fn zero_rate_is_off_and_zero_burst_is_one() {
        let mut off = RateLimiter::new(0, 1, 10);
        let t0 = Instant::now();
        for _ in 0..100 {
            assert_eq!(off.check(ip("192.0.2.1"), t0), Verdict::Allowed);
        }
        assert_eq!(off.tracked(), 0);
        let mut one = RateLimiter::new(1, 0, 10);
        assert_eq!(one.check(ip("192.0.2.1"), t0), Verdict::Allowed);
        assert_eq!(
            one.check(ip("192.0.2.1"), t0),
            Verdict::Refused {
                retry_after: Duration::from_secs(60)
            }
        );
    }

    #[test]
    fn clients_are_keyed_by_ipv4_or_ipv6_slash_64() {
        assert_eq!(client_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        assert_eq!(client_key(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
        let mut l = RateLimiter::new(1, 1, 10);
        let t0 = Instant::now();
        assert_eq!(l.check(ip("2001:db8::1"), t0), Verdict::Allowed);
        assert!(matches!(
            l.check(ip("2001:db8::2"), t0),
            Verdict::Refused { .. }
        ));
        assert_eq!(l.check(ip("2001:db8:0:1::1"), t0), Verdict::Allowed);
    }

    #[test]
    fn memory_is_bounded() {
        let mut l = RateLimiter::new(60, 2, 50);
        let t0 = Instant::now();
        for n in 0..1000u32 {
            let a = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000u32 + n));
            // Each client empties its bucket, so none can be forgotten as full.
            l.check(a, t0);
            l.check(a, t0);
            assert!(l.tracked() <= 50);
        }
        // The most recent client is still limited.
        let last = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000u32 + 999));
        assert!(matches!(l.check(last, t0), Verdict::Refused { .. }));
        // Full buckets are forgotten first: after a minute all are full.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(l.check(ip("192.0.2.9"), later), Verdict::Allowed);
        assert_eq!(l.tracked(), 1);
    }
}
