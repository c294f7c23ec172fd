//! The WHOIS TCP server (RFC 3912): one query line per connection, one
//! answer, then the connection is closed.
//!
//! Input: a bound [`TcpListener`], a [`Responder`] and [`ServerSettings`].
//! Output: answers on the wire; one `tracing` line per connection (client
//! address, normalised query, result, time taken; never the answer).
//! Invariants: at most `max_connections` connections are served at once (a
//! std thread each); beyond that a connection gets a short "busy" answer
//! from the accepting thread, which never blocks on a client; each client
//! address (see [`super::limit`]) is rate-limited before it takes a slot; a
//! client has `read_timeout` in all to send its line (not per read, so a
//! trickle cannot hold a slot) and at most [`MAX_QUERY_BYTES`] are read.

use super::WhoisError;
use super::answer::{self, Answer};
use super::limit::{RateLimiter, Verdict};
use super::query::MAX_QUERY_BYTES;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Answers one query line (without its line end).
pub trait Responder: Send + Sync {
    /// The answer, or a fault of ours (answered as a temporary failure).
    fn respond(&self, query: &[u8]) -> Result<Answer, WhoisError>;
}

/// The server's limits.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Queries per client address and minute (0: no limit).
    pub rate_per_minute: u32,
    /// Queries a client may make at once before the rate applies.
    pub burst: u32,
    /// Connections served at the same time.
    pub max_connections: usize,
    /// Time a client has to send its query line.
    pub read_timeout: Duration,
    /// Client addresses whose rate is remembered.
    pub max_clients: usize,
}

/// The default time a client has to send its query.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default number of client addresses remembered by the rate limit.
pub const MAX_CLIENTS: usize = 16_384;

impl ServerSettings {
    /// The given limits with the default timeout and client memory.
    pub fn new(rate_per_minute: u32, burst: u32, max_connections: usize) -> ServerSettings {
        ServerSettings {
            rate_per_minute,
            burst,
            max_connections,
            read_timeout: READ_TIMEOUT,
            max_clients: MAX_CLIENTS,
        }
    }
}

/// A taken connection slot; given back when dropped.
#[derive(Debug)]
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves until `stop` is set (checked after each accepted connection).
pub fn serve(
    listener: TcpListener,
    responder: Arc<dyn Responder>,
    settings: &ServerSettings,
    stop: &AtomicBool,
) -> Result<(), WhoisError> {
    let active = Arc::new(AtomicUsize::new(0));
    let mut limiter = RateLimiter::new(
        settings.rate_per_minute,
        settings.burst,
        settings.max_clients,
    );
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "whois: accept failed");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let Ok(peer) = stream.peer_addr() else {
            continue;
        };
        admit(
            stream,
            peer.ip(),
            &active,
            &mut limiter,
            &responder,
            settings,
        );
    }
    Ok(())
}

fn admit(
    stream: TcpStream,
    ip: IpAddr,
    active: &Arc<AtomicUsize>,
    limiter: &mut RateLimiter,
    responder: &Arc<dyn Responder>,
    settings: &ServerSettings,
) {
    if active.load(Ordering::SeqCst) >= settings.max_connections {
        tracing::info!(client = %ip, result = "busy", "whois");
        refuse(stream, &answer::busy());
        return;
    }
    if let Verdict::Refused { retry_after } = limiter.check(ip, Instant::now()) {
        tracing::info!(client = %ip, result = "rate-limited", "whois");
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        refuse(stream, &answer::rate_limited(secs));
        return;
    }
    active.fetch_add(1, Ordering::SeqCst);
    let slot = Slot(Arc::clone(active));
    let responder = Arc::clone(responder);
    let timeout = settings.read_timeout;
    let spawned = std::thread::Builder::new()
        .name("whois".into())
        .spawn(move || serve_one(stream, ip, responder.as_ref(), timeout, slot));
    if let Err(e) = spawned {
        // The closure (stream and slot) was dropped: the client sees a close.
        tracing::warn!(client = %ip, error = %e, "whois: no thread for the connection");
    }
}

/// A short answer from the accepting thread, which must not wait: whatever
/// the client sent already is read (so closing does not reset the
/// connection before the answer arrives), the answer fits the socket
/// buffer.
fn refuse(mut stream: TcpStream, text: &str) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let mut sink = [0u8; 2048];
    let _ = stream.read(&mut sink);
    let _ = stream.write_all(&answer::wire(text));
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

/// Why no query line was read.
enum ReadFailure {
    TimedOut,
    Io(std::io::Error),
}

/// Reads up to the first LF (removing it and a CR before it), end of input,
/// or more than [`MAX_QUERY_BYTES`] + 1 bytes (returned: too long).
fn read_line(stream: &mut TcpStream, timeout: Duration) -> Result<Vec<u8>, ReadFailure> {
    let deadline = Instant::now() + timeout;
    let mut line = Vec::with_capacity(256);
    let mut chunk = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadFailure::TimedOut);
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(ReadFailure::Io)?;
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(line),
            Ok(n) => {
                let start = line.len();
                line.extend_from_slice(&chunk[..n]);
                if let Some(i) = line[start..].iter().position(|b| *b == b'\n') {
                    line.truncate(start + i);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    return Ok(line);
                }
                if line.len() > MAX_QUERY_BYTES + 1 {
                    return Ok(line);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(ReadFailure::TimedOut);
            }
            Err(e) => return Err(ReadFailure::Io(e)),
        }
    }
}

fn serve_one(
    mut stream: TcpStream,
    ip: IpAddr,
    responder: &dyn Responder,
    timeout: Duration,
    slot: Slot,
) {
    let started = Instant::now();
    let (bytes, query, result) = match read_line(&mut stream, timeout) {
        Ok(line) => match responder.respond(&line) {
            Ok(a) => (a.wire(), a.query, a.outcome.as_str()),
            Err(e) => {
                tracing::error!(client = %ip, error = %e, "whois: lookup failed");
                (answer::wire(&answer::failure()), None, "failed")
            }
        },
        Err(ReadFailure::TimedOut) => {
            let text = answer::timed_out(timeout.as_secs().max(1));
            (answer::wire(&text), None, "timeout")
        }
        Err(ReadFailure::Io(e)) => {
            tracing::info!(client = %ip, error = %e, result = "read-error", "whois");
            return;
        }
    };
    let _ = stream.set_write_timeout(Some(timeout));
    let sent = stream.write_all(&bytes).and_then(|()| stream.flush());
    // The slot is free before the client sees the end of the answer.
    drop(slot);
    // FIN after the answer: a client whose excess input we never read (an
    // over-long query) still reads the answer and then a clean end.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    tracing::info!(
        client = %ip,
        query = query.as_deref().unwrap_or("-"),
        result,
        sent = sent.is_ok(),
        ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "whois"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whois::answer::Outcome;
    use crate::whois::query::parse_query;
    use std::net::SocketAddr;

    /// Answers `echo: <normalised query>` without a database.
    struct Echo;

    impl Responder for Echo {
        fn respond(&self, query: &[u8]) -> Result<Answer, WhoisError> {
            Ok(match parse_query(query) {
                Ok(q) => Answer {
                    text: format!("echo: {}\n", q.text()),
                    outcome: Outcome::NoMatch,
                    query: Some(q.text().to_string()),
                },
                Err(e) => Answer {
                    text: answer::error(&e.message()),
                    outcome: Outcome::Invalid(e),
                    query: None,
                },
            })
        }
    }

    fn start(settings: ServerSettings) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let stop = AtomicBool::new(false);
            serve(listener, Arc::new(Echo), &settings, &stop).unwrap();
        });
        addr
    }

    fn ask(addr: SocketAddr, send: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(send).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }

    fn settings(read_timeout_ms: u64) -> ServerSettings {
        ServerSettings {
            read_timeout: Duration::from_millis(read_timeout_ms),
            ..ServerSettings::new(0, 10, 2)
        }
    }

    #[test]
    fn one_line_one_answer() {
        let addr = start(settings(2000));
        assert_eq!(ask(addr, b"Muster.AT\r\n"), "echo: muster.at\r\n");
        assert_eq!(
            ask(addr, b"am1001-nicat\nignored"),
            "echo: AM1001-NICAT\r\n"
        );
        // A client that half-closes without a line end is answered too.
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"x.at").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert_eq!(out, "echo: x.at\r\n");
        let long = vec![b'a'; 5000];
        assert_eq!(
            ask(addr, &long),
            "% Error: query longer than 1024 bytes\r\n"
        );
    }

    #[test]
    fn slow_client_times_out_even_when_trickling() {
        let addr = start(settings(300));
        let started = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        for _ in 0..5 {
            // One byte every 100 ms: each read succeeds, the total is bounded.
            if s.write_all(b"a").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        assert_eq!(out, "% Error: no query received within 1 s.\r\n");
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn busy_beyond_max_connections() {
        let addr = start(settings(2000));
        let hold1 = TcpStream::connect(addr).unwrap();
        let hold2 = TcpStream::connect(addr).unwrap();
        // Let the server take both slots.
        std::thread::sleep(Duration::from_millis(100));
        let mut third = TcpStream::connect(addr).unwrap();
        let mut out = String::new();
        third.read_to_string(&mut out).unwrap();
        assert_eq!(out, "% Error: server busy; try again later.\r\n");
        drop((hold1, hold2));
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(ask(addr, b"x.at\n"), "echo: x.at\r\n");
    }
}
