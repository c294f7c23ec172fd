//! WHOIS (RFC 3912) through the built binary over loopback TCP: a registry
//! made by real signed mails, `regmail whois serve --listen 127.0.0.1:0`,
//! domain and handle answers (`whoishide*` honoured), no match, IDN,
//! errors, the rate limit, the connection limit, and `regmail whois QUERY`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use regmail::config::Config;
use regmail::store::StoreError;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use support::scenario::Runner;

/// When the test registry's last change happened; the server's `--now`.
const LATER: &str = "2026-12-16T08:00:00Z";

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_regmail"))
}

/// A `whois serve` child, killed when dropped.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let (child, at) = support::start_listening(
            Command::new(bin())
                .arg("--data-dir")
                .arg(dir)
                .args(["--now", LATER, "whois", "serve", "--listen", "127.0.0.1:0"])
                .args(extra)
                .stderr(Stdio::inherit()),
        );
        let addr = at.parse().unwrap();
        Server { child, addr }
    }

    /// Sends bytes, reads the answer up to the server's close.
    fn ask(&self, send: &[u8]) -> String {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.write_all(send).unwrap();
        read_all(&mut s)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_all(s: &mut TcpStream) -> String {
    s.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the answer: {e}"),
        }
    }
    assert!(out.is_ascii(), "7-bit answer");
    String::from_utf8(out).unwrap()
}

/// Sends a template and expects success; returns the reply's handle line.
fn send(r: &mut Runner, who: &str, transaction: &str, pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), r.resolve(v)))
        .collect();
    let reply = r.send(who, transaction, &pairs).expect("a reply");
    assert_eq!(reply.results, ["success"], "{transaction}: {}", reply.body);
    reply
        .body
        .lines()
        .find_map(|l| l.strip_prefix("handle:").map(|h| h.trim().to_string()))
        .unwrap_or_default()
}

struct Handles {
    anna: String,
    tom: String,
}

/// Anna (hides phone, fax, e-mail) holds muster-handel.at (tech-c Tom, who
/// hides nothing; an in-zone nameserver with glue; serverHold),
/// xn--mller-kva.at, and alt-handel.at (deleted, in redemption).
fn build(dir: &Path) -> Handles {
    let mut r = Runner::new(dir, Config::default(), support::now());
    let anna = send(
        &mut r,
        "alice",
        "perscreate",
        &[("email", "anna@example.at")],
    );
    send(
        &mut r,
        "alice",
        "persupdate",
        &[
            ("handle", &anna),
            ("fax-no", "+43 1 5056417"),
            ("whoishidephone", "Y"),
            ("whoishidefax", "Y"),
            ("whoishide", "Y"),
        ],
    );
    let tom = send(
        &mut r,
        "alice",
        "perscreate",
        &[("name", "Tom Technik"), ("email", "tom@example.at")],
    );
    send(
        &mut r,
        "alice",
        "persupdate",
        &[("handle", &tom), ("fax-no", "+43 1 5056499")],
    );
    for domain in ["muster-handel.at", "xn--mller-kva.at", "alt-handel.at"] {
        send(
            &mut r,
            "alice",
            "create",
            &[("domain", domain), ("holder", &anna)],
        );
    }
    send(
        &mut r,
        "alice",
        "update",
        &[("domain", "muster-handel.at"), ("tech-c", &tom)],
    );
    send(
        &mut r,
        "alice",
        "nscupdate",
        &[
            ("domain", "muster-handel.at"),
            ("nserver", "ns1.muster-handel.at"),
            ("remarks", "192.0.2.53"),
            ("nserver", "ns2.example.net"),
        ],
    );
    // Past the add grace period a delete waits 14 days, then redemption.
    r.set_now(
        chrono::DateTime::parse_from_rfc3339("2026-12-01T08:00:00Z")
            .unwrap()
            .into(),
    );
    let pairs = [
        ("domain".to_string(), "alt-handel.at".to_string()),
        ("scheduledate".to_string(), "now".to_string()),
    ];
    let reply = r.send("alice", "delete", &pairs).unwrap();
    assert_eq!(reply.results, ["pending"], "{}", reply.body);
    r.set_now(chrono::DateTime::parse_from_rfc3339(LATER).unwrap().into());
    regmail::pipeline::tick(&mut r.reg).unwrap();
    let status = Command::new(bin())
        .arg("--data-dir")
        .arg(dir)
        .args(["--now", LATER, "domain", "set-status", "muster-handel.at"])
        .args(["serverHold", "on"])
        .status()
        .unwrap();
    assert!(status.success());
    Handles { anna, tom }
}

fn field(key: &str, value: &str) -> String {
    format!("\r\n{:<16}{value}\r\n", format!("{key}:"))
}

fn assert_lines(answer: &str, want: &[String]) {
    for w in want {
        assert!(answer.contains(w.as_str()), "{w:?} missing in:\n{answer}");
    }
}

#[test]
fn domain_and_handle_answers_over_tcp() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let h = build(d);
    let server = Server::start(d, &["--burst", "100"]);
    domain_answer(&server, &h);
    handle_answers(&server, &h);
    let idn = idn_and_redemption(&server);
    errors_and_no_match(&server);
    reads_the_committed_state(d, &server);
    local_query(d, &idn);
}

fn domain_answer(server: &Server, h: &Handles) {
    let a = server.ask(b"Muster-Handel.AT\r\n");
    assert!(
        a.starts_with("% Example Registry WHOIS service (RFC 3912)\r\n"),
        "{a}"
    );
    assert!(!a.replace("\r\n", "").contains('\n'), "CRLF only: {a}");
    assert!(a.contains("\r\n% Query: muster-handel.at\r\n% Time:  2026-12-16T08:00:00Z\r\n"));
    assert_lines(
        &a,
        &[
            field("domain", "muster-handel.at"),
            field("status", "serverHold"),
            field("registrar-id", "1001"),
            field("registrar", "Alpine Domains GmbH"),
            field("registrant", &h.anna),
            field("tech-c", &h.tom),
            format!(
                "{}remarks:        192.0.2.53\r\n",
                field("nserver", "ns1.muster-handel.at")
            ),
            field("nserver", "ns2.example.net"),
            field("created", "2026-11-22T08:15:00Z"),
            // The registry's serverHold (history) is the last change.
            field("changed", LATER),
            field("expires", "2027-11-22T08:15:00Z"),
            field("source", "AT-DOM"),
        ],
    );
    assert!(a.ends_with("source:         AT-DOM\r\n"), "{a}");
}

/// Anna hides phone, fax and e-mail; Tom shows them.
fn handle_answers(server: &Server, h: &Handles) {
    let anna = server.ask(format!("{}\n", h.anna.to_lowercase()).as_bytes());
    assert_lines(
        &anna,
        &[
            field("nic-hdl", &h.anna),
            field("personname", "Anna Muster"),
            field("city", "Wien"),
            field("created", "2026-11-22T08:15:00Z"),
        ],
    );
    for hidden in [
        "phone:", "fax-no:", "e-mail:", "5056416", "5056417", "anna@",
    ] {
        assert!(!anna.contains(hidden), "{hidden} shown:\n{anna}");
    }
    let tom = server.ask(format!("{}\r\n", h.tom).as_bytes());
    assert_lines(
        &tom,
        &[
            field("personname", "Tom Technik"),
            field("phone", "+4315056416"),
            field("fax-no", "+4315056499"),
            field("e-mail", "tom@example.at"),
        ],
    );
}

/// A U-label is looked up by its A-label; redemption shows. Returns the
/// IDN answer.
fn idn_and_redemption(server: &Server) -> String {
    let idn = server.ask("M\u{dc}ller.at\r\n".as_bytes());
    assert_lines(
        &idn,
        &[
            field("domain", "xn--mller-kva.at"),
            field("status", "active"),
        ],
    );
    let alt = server.ask(b"alt-handel.at\n");
    assert_lines(&alt, &[field("status", "redemptionPeriod")]);
    idn
}

fn errors_and_no_match(server: &Server) {
    for (q, want) in [
        (&b"nothing.at\r\n"[..], "% No match for nothing.at.\r\n"),
        (b"XX9999-NICAT\r\n", "% No match for XX9999-NICAT.\r\n"),
        (
            b"example.com\r\n",
            "% This registry serves names under: at, co.at, or.at.\r\n",
        ),
        (
            b"\r\n",
            "% Error: empty query; send a domain name or a contact handle\r\n",
        ),
        (b"muster handel.at\r\n", "% Error: malformed query: "),
    ] {
        let a = server.ask(q);
        assert!(a.starts_with("% Example Registry"), "{a}");
        assert!(a.contains(want), "{want:?} missing in:\n{a}");
    }
    let mut long = vec![b'a'; 3000];
    long.extend_from_slice(b".at\r\n");
    let a = server.ask(&long);
    assert!(
        a.ends_with("% Error: query longer than 1024 bytes\r\n"),
        "{a}"
    );
}

/// A writer in the middle of a change (write lock held, rows changed, not
/// committed) neither blocks WHOIS nor shows through.
fn reads_the_committed_state(d: &Path, server: &Server) {
    let before = server.ask(b"muster-handel.at\r\n");
    let db = d.join("regmail.sqlite");
    let mut store = regmail::store::Store::open(&db, std::time::Duration::from_secs(5)).unwrap();
    let during = store
        .simulate(|tx| {
            tx.touch_domain("muster-handel.at", "2030-01-01T00:00:00.000Z")?;
            Ok::<_, StoreError>(server.ask(b"muster-handel.at\r\n"))
        })
        .unwrap();
    assert_eq!(during, before);
    assert!(!during.contains("2030"));
}

/// `regmail whois QUERY`: the same answer with LF line ends; exit codes.
fn local_query(d: &Path, idn: &str) {
    let local = |q: &str| {
        Command::new(bin())
            .arg("--data-dir")
            .arg(d)
            .args(["--now", LATER, "whois", q])
            .output()
            .unwrap()
    };
    let out = local("m\u{fc}ller.at");
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text, idn.replace("\r\n", "\n"));
    assert_eq!(local("nothing.at").status.code(), Some(1));
    assert_eq!(local("two words").status.code(), Some(64));
}

#[test]
fn rate_limit_and_connection_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    support::registry(d, Config::default());
    let server = Server::start(
        d,
        &[
            "--burst",
            "3",
            "--rate-per-minute",
            "1",
            "--max-connections",
            "1",
        ],
    );
    // A silent client takes the only slot (and the first token).
    let mut silent = TcpStream::connect(server.addr).unwrap();
    let busy = server.ask(b"nothing.at\r\n");
    assert_eq!(busy, "% Error: server busy; try again later.\r\n");
    silent.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(read_all(&mut silent).contains("% Error: empty query"));
    // Two more tokens, then refused until the next one (60 s at 1/min).
    for _ in 0..2 {
        assert!(
            server
                .ask(b"nothing.at\r\n")
                .contains("% No match for nothing.at.")
        );
    }
    let refused = server.ask(b"nothing.at\r\n");
    assert!(
        refused.starts_with("% Error: too many queries from your address; try again in "),
        "{refused}"
    );
    assert!(!refused.contains("No match"));
}
