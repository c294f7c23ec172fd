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
