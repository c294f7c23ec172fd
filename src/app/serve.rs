//! `regmail serve`: one resident process that handles the mails of every
//! `regmail process` run, and `process`'s side of the hand-over.
//!
//! Input: `serve` listens on `<data-dir>/regmail.sock`; each connection is
//! one `process` run: a header (version, data directory, configuration file,
//! `--now`), then, once `serve` said `go`, the raw mail in chunks (`LEN\n`
//! and LEN bytes each, `0\n` at the end).
//! Output: per connection one answer line, the exit code `process` would have
//! had on its own (`0`, or `75` and the message). The mail is handled
//! exactly as `process` handles it alone ([`super::mailflow::handle_raw`]:
//! one transaction, the replies delivered after the commit), but without
//! starting a process, opening the database, reading its schema and loading
//! the key for every mail (decision 93).
//! Invariants:
//! - `process` hands a mail over only to a `serve` of the same version, data
//!   directory and configuration file, and only after `serve` said `go`.
//!   Until then it can still handle the mail itself (no socket, no answer,
//!   a refusal); once the mail is sent, any doubt exits 75 and the MTA
//!   retries (a mail that was handled after all is then a duplicate).
//!   `serve` handles only a mail that arrived whole, up to its final `0\n`:
//!   a client that went away (it gave up waiting for `go` and handles the
//!   mail itself) leaves nothing behind.
//! - `serve` handles one mail at a time, reloads the configuration and the
//!   key when their files change, and no client can make it exit.
//! - The socket is the owner's only (mode 0600), like the database.

use super::mailflow::handle_raw;
use super::{EX_TEMPFAIL, Paths, clock_at};
use crate::pipeline::Registry;
use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// The first word of a request: the protocol and its version.
const PROTOCOL: &str = "regmail-process/1";
/// How long `serve` waits for a client's header or mail.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `process` waits for `go` before it handles the mail itself
/// (`serve` is busy with others, or hangs).
const GO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `process` waits for the result once the mail is sent.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(300);
/// The longest header line either side accepts.
const MAX_LINE: u64 = 4096;
/// The largest chunk of mail `process` sends (and `serve` accepts).
const CHUNK: usize = 64 * 1024;

/// What a `process` run asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Request {
    version: String,
    identity: Identity,
    /// The client's `--now`, if it was given.
    now: Option<DateTime<Utc>>,
}

/// Which registry a run works on: the data directory and the configuration
/// file, made absolute (and canonical where they exist).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    data_dir: String,
    config: String,
}

impl Identity {
    fn of(paths: &Paths) -> Option<Identity> {
        let name = |p: &Path| {
            let p = std::fs::canonicalize(p)
                .or_else(|_| std::path::absolute(p))
                .ok()?;
            p.to_str().filter(|s| !s.contains('\n')).map(str::to_string)
        };
        Some(Identity {
            data_dir: name(&paths.data_dir)?,
            config: name(&paths.config)?,
        })
    }
}

impl Request {
    fn encode(&self) -> String {
        let now = self
            .now
            .map_or_else(|| "-".to_string(), crate::reply::rfc3339);
        format!(
            "{PROTOCOL} {}\ndata-dir {}\nconfig {}\nnow {now}\n\n",
            self.version, self.identity.data_dir, self.identity.config
        )
    }

    /// Reads the header; `None` if it is not one.
    fn read(input: &mut impl BufRead) -> std::io::Result<Option<Request>> {
        let mut fields = Vec::new();
        loop {
            let Some(line) = read_line(input)? else {
                return Ok(None);
            };
            if line.is_empty() {
                break;
            }
            if fields.len() == 4 {
                return Ok(None);
            }
            fields.push(line);
        }
        let [first, data_dir, config, now] = fields.as_slice() else {
            return Ok(None);
        };
        let field = |line: &str, key: &str| line.strip_prefix(key).map(str::to_string);
        let now = match field(now, "now ").as_deref() {
            Some("-") => None,
            Some(t) => match DateTime::parse_from_rfc3339(t) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => return Ok(None),
            },
            None => return Ok(None),
        };
        let (Some(version), Some(data_dir), Some(config)) = (
            field(first, &format!("{PROTOCOL} ")),
            field(data_dir, "data-dir "),
            field(config, "config "),
        ) else {
            return Ok(None);
        };
        Ok(Some(Request {
            version,
            identity: Identity { data_dir, config },
            now,
        }))
    }
}

/// One line without its line end; `None` at end of input. Longer lines are
/// cut at [`MAX_LINE`] bytes (and then match nothing).
fn read_line(input: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut line = Vec::new();
    if input.take(MAX_LINE).read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// `process`: hands the mail on stdin to a running `serve`. `None` if there
/// is none that takes it (the caller handles the mail itself: nothing was
/// read from stdin); otherwise the exit code.
pub fn hand_over(paths: &Paths, now: Option<DateTime<Utc>>) -> Option<u8> {
    let socket = paths.socket();
    let stream = match UnixStream::connect(&socket) {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(socket = %socket.display(), error = %e, "no `regmail serve`, handling the mail here");
            return None;
        }
    };
    let request = Request {
        version: env!("CARGO_PKG_VERSION").to_string(),
        identity: Identity::of(paths)?,
        now,
    };
    if let Err(reason) = ask(&stream, &request) {
        tracing::info!(%reason, "`regmail serve` did not take the mail, handling it here");
        return None;
    }
    // From here on stdin is spent: whatever goes wrong, the MTA retries.
    Some(send(&stream, std::io::stdin().lock()))
}

/// Sends the header and waits for `go`; the reason if it did not come.
fn ask(stream: &UnixStream, request: &Request) -> Result<(), String> {
    stream
        .set_read_timeout(Some(GO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    (&*stream)
        .write_all(request.encode().as_bytes())
        .map_err(|e| e.to_string())?;
    let answer = read_line(&mut BufReader::new(stream))
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    match answer.as_str() {
        "go" => Ok(()),
        other => Err(other.strip_prefix("decline ").unwrap_or(other).to_string()),
    }
}

/// Streams the mail and reads the result: the exit code.
fn send(stream: &UnixStream, mut mail: impl Read) -> u8 {
    let sent = write_chunks(&mut mail, &mut std::io::BufWriter::new(stream))
        .and_then(|()| stream.set_read_timeout(Some(ANSWER_TIMEOUT)));
    if let Err(e) = sent {
        eprintln!("regmail: temporary failure, the mail did not reach `regmail serve`: {e}");
        return EX_TEMPFAIL;
    }
    let answer = read_line(&mut BufReader::new(stream)).map(Option::unwrap_or_default);
    let (code, message) = match &answer {
        Ok(line) => line.split_once(' ').unwrap_or((line.as_str(), "")),
        Err(_) => ("", ""),
    };
    match code.parse::<u8>() {
        Ok(code) => {
            if !message.is_empty() {
                eprintln!("regmail: {message}");
            }
            code
        }
        Err(_) => {
            eprintln!(
                "regmail: temporary failure, no result from `regmail serve` ({}); the MTA retries",
                answer.map_or_else(|e| e.to_string(), |l| format!("{l:?}"))
            );
            EX_TEMPFAIL
        }
    }
}

/// Copies `mail` to `out` in chunks: `LEN\n` and LEN bytes each, then `0\n`.
fn write_chunks(mail: &mut impl Read, out: &mut impl Write) -> std::io::Result<()> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match mail.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(format!("{n}\n").as_bytes())?;
        out.write_all(buf.get(..n).unwrap_or_default())?;
    }
    out.write_all(b"0\n")?;
    out.flush()
}

/// Reads a chunked mail, keeping at most `max_bytes + 1` bytes (the rest is
/// read and dropped, so that the mail is still refused with 4014, as
/// `intake::read_bounded` does for stdin); `None` unless it ended with `0\n`.
fn read_chunks(input: &mut impl BufRead, max_bytes: usize) -> std::io::Result<Option<Vec<u8>>> {
    let keep = u64::try_from(max_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let mut raw = Vec::new();
    loop {
        let mut line = Vec::new();
        input.take(24).read_until(b'\n', &mut line)?;
        let len = line
            .strip_suffix(b"\n")
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| digits.parse::<u64>().ok());
        let Some(len) = len else {
            return Ok(None);
        };
        if len == 0 {
            return Ok(Some(raw));
        }
        if len > CHUNK as u64 {
            return Ok(None);
        }
        let room = keep.saturating_sub(raw.len() as u64);
        let mut chunk = input.take(len);
        let kept = (&mut chunk).take(room).read_to_end(&mut raw)? as u64;
        let dropped = std::io::copy(&mut chunk, &mut std::io::sink())?;
        if kept + dropped < len {
            return Ok(None);
        }
    }
}

/// `regmail serve`: binds the socket, opens the registry, prints
/// `listening on PATH` and handles connections until killed.
pub fn serve(paths: &Paths, now: Option<DateTime<Utc>>) -> anyhow::Result<u8> {
    let socket = paths.socket();
    let listener = bind(&socket)?;
    let mut resident = Resident::open(paths, now)?;
    println!("listening on {}", socket.display());
    std::io::stdout().flush().context("writing to stdout")?;
    for stream in listener.incoming() {
        let served = stream.and_then(|s| resident.serve_one(&s));
        if let Err(e) = served {
            tracing::warn!(error = %e, "a `process` connection failed");
        }
    }
    Ok(super::EX_OK)
}

/// Binds the socket, owner-only; refuses if another `serve` answers on it,
/// and replaces a stale one.
fn bind(socket: &Path) -> anyhow::Result<UnixListener> {
    if UnixStream::connect(socket).is_ok() {
        bail!("`regmail serve` already runs on {}", socket.display());
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", socket.display())),
    }
    let listener =
        UnixListener::bind(socket).with_context(|| format!("binding {}", socket.display()))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("restricting {}", socket.display()))?;
    Ok(listener)
}

/// The open registry of a `serve`, with what it was opened from.
struct Resident {
    paths: Paths,
    identity: Identity,
    /// `serve`'s own `--now`.
    now: Option<DateTime<Utc>>,
    registry: Registry,
    /// When the configuration file and the key file were last changed.
    stamps: [Option<SystemTime>; 2],
}

impl Resident {
    fn open(paths: &Paths, now: Option<DateTime<Utc>>) -> anyhow::Result<Resident> {
        let identity = Identity::of(paths).context("naming the data directory")?;
        let stamps = stamps(paths);
        Ok(Resident {
            paths: paths.clone(),
            identity,
            now,
            registry: Self::registry(paths, now)?,
            stamps,
        })
    }

    fn registry(paths: &Paths, now: Option<DateTime<Utc>>) -> anyhow::Result<Registry> {
        super::open(paths, clock_at(now))
    }

    /// One connection: header, `go` or `decline`, mail, result.
    fn serve_one(&mut self, stream: &UnixStream) -> std::io::Result<()> {
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        let mut input = BufReader::new(stream);
        let mut output = stream;
        let request = Request::read(&mut input)?;
        if let Err(reason) = self.takes(request.as_ref()) {
            return output.write_all(format!("decline {reason}\n").as_bytes());
        }
        output.write_all(b"go\n")?;
        let max = self.registry.config.mail.max_mail_bytes;
        let Some(raw) = read_chunks(&mut input, max)? else {
            tracing::warn!(
                "a `process` run went away before its whole mail arrived: nothing handled"
            );
            return Ok(());
        };
        let now = request.and_then(|r| r.now);
        let (code, message) = self.handle(&raw, now);
        let message = message.unwrap_or_default().replace('\n', " ");
        output.write_all(format!("{code} {message}\n").as_bytes())
    }

    /// Whether this `serve` handles the request's mail; why not.
    fn takes(&self, request: Option<&Request>) -> Result<(), String> {
        let Some(request) = request else {
            return Err("not a request".into());
        };
        if request.version != env!("CARGO_PKG_VERSION") {
            return Err(format!(
                "this serve is version {}, the process run {}",
                env!("CARGO_PKG_VERSION"),
                request.version
            ));
        }
        if request.identity != self.identity {
            return Err(format!(
                "this serve works on {} with {}",
                self.identity.data_dir, self.identity.config
            ));
        }
        Ok(())
    }

    /// Handles one mail as `process` would, at the client's `--now` if it
    /// gave one, after reloading the registry if its files changed.
    fn handle(&mut self, raw: &[u8], now: Option<DateTime<Utc>>) -> (u8, Option<String>) {
        let stamps = stamps(&self.paths);
        if stamps != self.stamps {
            match Self::registry(&self.paths, self.now) {
                Ok(registry) => {
                    tracing::info!("configuration or key changed: reloaded");
                    self.registry = registry;
                    self.stamps = stamps;
                }
                Err(e) => return (EX_TEMPFAIL, Some(format!("{e:#}"))),
            }
        }
        self.registry.clock = clock_at(now.or(self.now));
        handle_raw(&mut self.registry, raw)
    }
}

/// The modification times of the configuration file and the key file.
fn stamps(paths: &Paths) -> [Option<SystemTime>; 2] {
    let at = |p: PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    [at(paths.config.clone()), at(paths.key())]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(now: Option<&str>) -> Request {
        Request {
            version: "1.2.3".into(),
            identity: Identity {
                data_dir: "/var/lib/regmail".into(),
                config: "/etc/regmail.toml".into(),
            },
            now: now.map(|t| DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc)),
        }
    }

    #[test]
    fn a_request_reads_back_as_written() {
        for now in [None, Some("2026-11-22T08:15:00Z")] {
            let r = request(now);
            let wire = r.encode();
            let mut input = std::io::Cursor::new(format!("{wire}mail bytes"));
            assert_eq!(Request::read(&mut input).unwrap(), Some(r));
            let mut rest = String::new();
            input.read_to_string(&mut rest).unwrap();
            assert_eq!(rest, "mail bytes", "the mail starts after the header");
        }
    }

    #[test]
    fn chunks_carry_the_mail_whole_or_not_at_all() {
        let mail: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = Vec::new();
        write_chunks(&mut mail.as_slice(), &mut wire).unwrap();
        let read = |wire: &[u8], max| read_chunks(&mut std::io::Cursor::new(wire), max).unwrap();
        assert!(read(&wire, 1 << 20) == Some(mail.clone()), "whole");
        // Over the limit: max + 1 bytes kept, the rest drained.
        assert!(read(&wire, 1000) == Some(mail[..1001].to_vec()), "cut");
        // Cut anywhere before the end of the final `0\n`: nothing.
        for cut in [0, 3, 70_000, wire.len() - 2, wire.len() - 1] {
            assert!(read(&wire[..cut], 1 << 20).is_none(), "cut at {cut}");
        }
        assert_eq!(read(b"0\n", 10), Some(Vec::new()));
        assert_eq!(read(b"x\n0\n", 10), None);
        assert_eq!(read(b"999999999\n", 10), None, "a chunk over the size");
    }

    #[test]
    fn anything_else_is_not_a_request() {
        let good = request(None).encode();
        for bad in [
            String::new(),
            "GET / HTTP/1.0\r\n\r\n".to_string(),
            good.replace("regmail-process/1", "regmail-process/2"),
            good.replace("now -", "now yesterday"),
            good.replace("config ", "konfig "),
            good.replace("\n\n", "\nextra line\n\n"),
            good.replace("\n\n", "\n"),
        ] {
            let mut input = std::io::Cursor::new(bad.clone());
            assert_eq!(Request::read(&mut input).unwrap(), None, "{bad:?}");
        }
    }
}
