//! Injected id generation for secrets (a domain's authinfo, the holders'
//! one-time tokens, the tags in holder mails' Message-IDs). Production draws from the operating
//! system's generator via sequoia; tests inject a seeded source so replies are
//! reproducible. (Server-trids and handles come from store sequences.)

/// A source of unguessable secrets.
pub trait IdSource: std::fmt::Debug + Send {
    /// A new secret of 128 bits, as 32 lower-case hex digits.
    fn secret(&mut self) -> String;
}

/// Secrets from the operating system's random number generator.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn secret(&mut self) -> String {
        let mut buf = [0u8; 16];
        sequoia_openpgp::crypto::random(&mut buf).map_or_else(|_| fallback(), |()| hex::encode(buf))
    }
}

/// Only if the system generator fails: a hash of the time and process.
fn fallback() -> String {
    use sha2::{Digest, Sha256};
    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    hex::encode(&Sha256::digest(seed.as_bytes())[..16])
}

/// Reproducible secrets for tests: a hash of a seed and a counter.
#[derive(Debug, Clone, Default)]
pub struct SeededIds {
    /// The next counter value.
    pub counter: u64,
}

impl IdSource for SeededIds {
    fn secret(&mut self) -> String {
        use sha2::{Digest, Sha256};
        self.counter += 1;
        hex::encode(&Sha256::digest(format!("regmail-test-{}", self.counter).as_bytes())[..16])
    }
}

/// Secrets for work that may be applied twice (a group commit whose first
/// attempt was rolled back): every secret drawn is kept, and after
/// [`Rewind::rewind`] handed out again in the same order before new ones
/// are drawn, so the second attempt writes what the first would have.
pub struct Rewind<'a> {
    inner: &'a mut dyn IdSource,
    drawn: Vec<String>,
    next: usize,
}

impl<'a> Rewind<'a> {
    /// Draws from `inner`, keeping what it drew.
    pub fn new(inner: &'a mut dyn IdSource) -> Self {
        Rewind {
            inner,
            drawn: Vec::new(),
            next: 0,
        }
    }

    /// Starts handing out the kept secrets again, from the first.
    pub fn rewind(&mut self) {
        self.next = 0;
    }
}

impl std::fmt::Debug for Rewind<'_> {
    /// The counts only: the secrets stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rewind")
            .field("drawn", &self.drawn.len())
            .field("next", &self.next)
            .finish()
    }
}

impl IdSource for Rewind<'_> {
    fn secret(&mut self) -> String {
        let secret = match self.drawn.get(self.next) {
            Some(kept) => kept.clone(),
            None => {
                let fresh = self.inner.secret();
                self.drawn.push(fresh.clone());
                fresh
            }
        };
        self.next += 1;
        secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a rewind the same secrets come again, then new ones.
    #[test]
    fn a_rewound_source_repeats_then_continues() {
        let mut seeded = SeededIds::default();
        let mut rewind = Rewind::new(&mut seeded);
        let first = [rewind.secret(), rewind.secret()];
        rewind.rewind();
        assert_eq!([rewind.secret(), rewind.secret()], first);
        let third = rewind.secret();
        assert!(!first.contains(&third));
        let mut plain = SeededIds::default();
        let expected: Vec<String> = (0..3).map(|_| plain.secret()).collect();
        assert_eq!(expected, [first[0].clone(), first[1].clone(), third]);
    }
}
