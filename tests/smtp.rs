//! The `smtp` transport (cli.md section 4) against a relay on loopback: an
//! SMTP server made of `mailin`'s protocol state machine (the same
//! commands, replies and dot-unstuffing a mail server applies) on a
//! `TcpListener` of the test, recording what each connection handed over.
//!
//! - a reply reaches the relay once, from the registry's address to the
//!   registrar's, with exactly the bytes the outbox holds (CRLF line ends,
//!   no blank line added), and is recorded as delivered;
//! - a refused template's reply (codes, lines) goes the same way, signed;
//! - with `smtp_user` the relay's AUTH PLAIN gets the configured credentials;
//! - a relay that refuses (550 at RCPT, 451 after DATA) or hangs up:
//!   `process` exits 0, the reply waits with the relay's answer as its error
//!   and a back-off, and a `tick` once the relay takes it delivers it
//!   exactly once;
//! - a backlog of due mails goes over one connection per delivery run,
//!   closed with QUIT; a refused mail's connection is closed, not reused;
//! - STARTTLS to a relay whose certificate the test CA of `tests/smtp-tls/`
//!   issued: delivered with `smtp_ca_file`, refused without it (and with a
//!   CA file that holds no certificate).
//!
//! Nothing here is opt-in: `cargo test --test smtp`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod hardening;
mod support;

use hardening::*;
use mailin::{Action, AuthMechanism, Handler, Response, SessionBuilder, response};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// How the relay answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Takes every mail.
    Accept,
    /// 550 to every recipient.
    RejectRecipient,
    /// 550 to the next recipient, then [`Mode::Accept`].
    RejectOnce,
    /// 451 once the data is in.
    FailData,
}

/// One mail the relay took (or was handed before refusing it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Received {
    from: String,
    to: Vec<String>,
    /// As the client sent it between DATA and the final dot, unstuffed.
    data: Vec<u8>,
    /// AUTH PLAIN's (authentication id, password), if the client logged in.
    login: Option<(String, String)>,
    /// The relay answered it with 250.
    accepted: bool,
}

#[derive(Debug, Default)]
struct Log {
    mode: Option<Mode>,
    mails: Vec<Received>,
    connections: usize,
    /// Sessions that went on inside TLS (STARTTLS).
    tls_sessions: usize,
    /// QUIT commands: connections the client closed as SMTP wants.
    quits: usize,
}

/// A connection's handler: what it hears goes into the shared log.
#[derive(Debug, Clone)]
struct Recorder {
    log: Arc<Mutex<Log>>,
    current: Received,
}

impl Recorder {
    fn mode(&self) -> Mode {
        self.log.lock().unwrap().mode.unwrap_or(Mode::Accept)
    }
}

impl Handler for Recorder {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, from: &str) -> Response {
        self.current.from = from.to_string();
        self.current.to.clear();
        self.current.data.clear();
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        match self.mode() {
            Mode::RejectRecipient => return response::NO_MAILBOX,
            Mode::RejectOnce => {
                self.log.lock().unwrap().mode = Some(Mode::Accept);
                return response::NO_MAILBOX;
            }
            _ => {}
        }
        self.current.to.push(to.to_string());
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let accepted = self.mode() == Mode::Accept;
        let mut mail = self.current.clone();
        mail.accepted = accepted;
        self.log.lock().unwrap().mails.push(mail);
        if accepted {
            response::OK
        } else {
            response::INTERNAL_ERROR
        }
    }

    fn auth_plain(&mut self, _authz: &str, authn: &str, password: &str) -> Response {
        self.current.login = Some((authn.to_string(), password.to_string()));
        response::AUTH_OK
    }
}

/// The relay: a port on loopback, serving connections one at a time on a
/// thread of its own for the rest of the test.
struct Relay {
    port: u16,
    log: Arc<Mutex<Log>>,
}

/// What the relay offers.
#[derive(Debug, Clone, Copy, Default)]
struct Offer {
    /// AUTH PLAIN (with STARTTLS only after it, as a real relay would).
    auth: bool,
    /// STARTTLS with the certificate of `tests/smtp-tls/`.
    tls: bool,
}

impl Relay {
    fn start(offer: Offer) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Log::default()));
        let mut builder = SessionBuilder::new("relay.test");
        if offer.auth {
            builder.enable_auth(AuthMechanism::Plain);
            if !offer.tls {
                builder.insecure_enable_plaintext_auth();
            }
        }
        let tls = offer.tls.then(|| {
            builder.enable_start_tls();
            tls_config()
        });
        let shared = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                shared.lock().unwrap().connections += 1;
                let handler = Recorder {
                    log: Arc::clone(&shared),
                    current: Received::default(),
                };
                // A client that goes away mid-session ends only its session.
                let _ = serve(&builder, stream, handler, tls.clone());
            }
        });
        Relay { port, log }
    }

    fn set_mode(&self, mode: Mode) {
        self.log.lock().unwrap().mode = Some(mode);
    }

    fn mails(&self) -> Vec<Received> {
        self.log.lock().unwrap().mails.clone()
    }

    fn accepted(&self) -> Vec<Received> {
        self.mails().into_iter().filter(|m| m.accepted).collect()
    }
}

/// The relay's TLS side: the certificate of `tests/smtp-tls/`, issued to
/// `localhost` and 127.0.0.1 by its test CA.
fn tls_config() -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = root().join("tests/smtp-tls");
    let chain = CertificateDer::pem_file_iter(dir.join("relay.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("relay.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// One SMTP session: the greeting, then a reply per line until QUIT; after
/// STARTTLS the same session goes on inside TLS.
fn serve(
    builder: &SessionBuilder,
    stream: TcpStream,
    handler: Recorder,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<()> {
    let peer = stream.peer_addr()?.ip();
    let mut session = builder.build(peer, handler.clone());
    let mut plain = BufReader::new(stream);
    session.greeting().write_to(plain.get_mut())?;
    if converse(builder, &mut session, &mut plain, &handler, peer)? != Action::UpgradeTls {
        return Ok(());
    }
    let Some(config) = tls else {
        return Ok(());
    };
    let mut server = rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
    let mut tcp = plain.into_inner();
    while server.is_handshaking() {
        server.complete_io(&mut tcp)?;
    }
    handler.log.lock().unwrap().tls_sessions += 1;
    let mut secure = BufReader::new(rustls::StreamOwned::new(server, tcp));
    session.tls_active();
    converse(builder, &mut session, &mut secure, &handler, peer).map(|_| ())
}

/// Answers lines until the client quits, goes away, or asks for TLS (the
/// action that ended it). `mailin` stays in its DATA state after refusing
/// a mail at the final dot (it would take the client's QUIT for text): the
/// session starts afresh then, as RFC 5321 4.1.1.4 has the transaction end.
fn converse<S: std::io::Read + Write>(
    builder: &SessionBuilder,
    session: &mut mailin::Session<Recorder>,
    stream: &mut BufReader<S>,
    handler: &Recorder,
    peer: IpAddr,
) -> std::io::Result<Action> {
    let mut line = Vec::new();
    loop {
        line.clear();
        if stream.read_until(b'\n', &mut line)? == 0 {
            return Ok(Action::Close);
        }
        if line.eq_ignore_ascii_case(b"QUIT\r\n") {
            handler.log.lock().unwrap().quits += 1;
        }
        let answer = session.process(&line);
        if line == b".\r\n" && answer.is_error {
            *session = builder.build(peer, handler.clone());
        }
        if answer.action != Action::NoReply {
            answer.write_to(stream.get_mut())?;
            stream.get_mut().flush()?;
        }
        if matches!(answer.action, Action::Close | Action::UpgradeTls) {
            return Ok(answer.action);
        }
    }
}

/// Points the data dir's delivery at the relay on `host`, with more
/// `[delivery]` settings.
fn use_relay(d: &Path, host: &str, port: u16, more: &str) {
    let config = format!(
        "[delivery]\ntransport = \"smtp\"\nsmtp_host = \"{host}\"\nsmtp_port = {port}\n{more}"
    );
    std::fs::write(d.join("regmail.toml"), config).unwrap();
}

/// The test CA that issued the relay's certificate.
fn test_ca() -> String {
    root().join("tests/smtp-tls/ca.pem").display().to_string()
}

/// A relay that is down: it takes each connection and closes it at once,
/// before its greeting (a port released for the test could be taken by a
/// relay of another test running at the same time).
fn hanging_up() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    port
}

/// The registry's certificate, as `key export` gives it to registrars.
fn registry_cert(d: &Path) -> sequoia_openpgp::Cert {
    use sequoia_openpgp::parse::Parse;
    let out = run(regmail(d).args(["key", "export"]), b"");
    expect_code(&out, 0, "key export");
    sequoia_openpgp::Cert::from_bytes(&out.stdout).unwrap()
}

fn tick(d: &Path, at: &str) -> String {
    let out = run(regmail_at(d, at).arg("tick"), b"");
    expect_code(&out, 0, &format!("tick at {at}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A registry whose replies go to `host:port` (with `more` settings), after
/// one perscreate of `who` (number `n`) went through `process`: its data
/// dir, the mail, and the reply's outbox row (the invariants checked).
fn one_reply(
    host: &str,
    port: u16,
    more: &str,
    who: Registrar,
    n: usize,
) -> (tempfile::TempDir, Vec<u8>, OutboxRow) {
    let relay = (host, port, more);
    one_answer(relay, who, &perscreate(&who, n), "success")
}

/// [`one_reply`] for any template `text` of `who`, handled with `result`.
fn one_answer(
    (host, port, more): (&str, u16, &str),
    who: Registrar,
    text: &str,
    result: &str,
) -> (tempfile::TempDir, Vec<u8>, OutboxRow) {
    let tmp = data_dir();
    let d = tmp.path();
    use_relay(d, host, port, more);
    let mail = Signer::new(who).mail(text, SIGNED_AT);
    process(d, &mail, 0);
    let db = read_db(d);
    assert_db_invariants(&db, "after the delivery attempt");
    let row = assert_handled_once(&db, &mail, result);
    let outbox = db.outbox_of(&row.server_trid);
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    let reply = outbox[0].clone();
    assert_eq!(reply.attempts, 1);
    (tmp, mail, reply)
}

#[test]
fn a_reply_goes_to_the_relay_once() {
    let relay = Relay::start(Offer::default());
    let (tmp, mail, reply) = one_reply("127.0.0.1", relay.port, "", ALICE, 1);
    let d = tmp.path();
    assert!(reply.delivered.is_some(), "{reply:?}");

    let got = relay.accepted();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].from, "robot@registry.example");
    assert_eq!(got[0].to, [ALICE.email]);
    assert_eq!(got[0].login, None);
    assert_eq!(
        String::from_utf8_lossy(&got[0].data),
        String::from_utf8_lossy(&reply.message),
        "the relay got the queued bytes, no more"
    );
    assert!(
        !reply
            .message
            .windows(2)
            .any(|w| w[1] == b'\n' && w[0] != b'\r'),
        "CRLF line ends, as SMTP wants them"
    );
    let (_, body) = support::split_mail(&got[0].data);
    let signed = support::verify_body(&body, &registry_cert(d), instant(NOW)).unwrap();
    assert!(signed.contains("result:       success"), "{signed}");

    // The same mail again is a duplicate: nothing more goes out.
    process(d, &mail, 0);
    assert_eq!(relay.accepted().len(), 1);
    assert_eq!(relay.log.lock().unwrap().connections, 1);
}

/// A refused template's reply reaches the relay as queued: signed, with
/// its error's code, line and key (reply.md), nothing added or lost.
#[test]
fn a_refused_templates_reply_goes_to_the_relay() {
    let relay = Relay::start(Offer::default());
    let text = perscreate_invalid(&ALICE, 6);
    let (tmp, _, reply) = one_answer(("127.0.0.1", relay.port, ""), ALICE, &text, "failed");
    assert!(reply.delivered.is_some(), "{reply:?}");
    let got = relay.accepted();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].data, reply.message);
    let (_, body) = support::split_mail(&got[0].data);
    let signed = support::verify_body(&body, &registry_cert(tmp.path()), instant(NOW)).unwrap();
    for line in [
        "result:       failed",
        "client-trid:  ALP-P00006",
        "warning:      3003 line 11 key \"phone\" value normalised: now +4315056416",
        "error:        5208 line 12 key \"e-mail\" invalid e-mail address: not-an-address",
    ] {
        assert!(signed.lines().any(|l| l == line), "{line}\n{signed}");
    }
}

#[test]
fn credentials_reach_the_relay() {
    let relay = Relay::start(Offer {
        auth: true,
        tls: false,
    });
    let login = "smtp_user = \"regmail\"\nsmtp_password = \"s3cret word\"\n";
    let (_tmp, _, reply) = one_reply("127.0.0.1", relay.port, login, BOB, 1);
    assert!(reply.delivered.is_some(), "{reply:?}");
    let got = relay.accepted();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        got[0].login,
        Some(("regmail".to_string(), "s3cret word".to_string()))
    );
    assert_eq!(got[0].to, [BOB.email]);
}

/// Each refusal defers the reply with the relay's answer; the mail is sent
/// again only when its back-off ends, and once the relay takes it, never
/// again.
#[test]
fn a_refusing_relay_defers_and_tick_delivers_exactly_once() {
    for (mode, answer) in [(Mode::RejectRecipient, "550"), (Mode::FailData, "451")] {
        let relay = Relay::start(Offer::default());
        relay.set_mode(mode);
        let (tmp, _, reply) = one_reply("127.0.0.1", relay.port, "", ALICE, 2);
        let d = tmp.path();
        assert_eq!(reply.delivered, None, "{mode:?}");
        assert_eq!(reply.next_attempt, "2026-11-22T08:20:00.000Z");
        let error = reply.last_error.clone().unwrap_or_default();
        assert!(error.contains(answer), "{mode:?}: {error}");
        assert!(relay.accepted().is_empty());

        relay.set_mode(Mode::Accept);
        let t = tick(d, "2026-11-22T08:19:00Z");
        assert!(t.contains("0 delivered, 0 deferred"), "{t}");
        let t = tick(d, "2026-11-22T08:20:00Z");
        assert!(t.contains("1 delivered"), "{t}");
        let t = tick(d, "2026-11-22T09:20:00Z");
        assert!(t.contains("0 delivered"), "{t}");
        let got = relay.accepted();
        assert_eq!(got.len(), 1, "{mode:?}: delivered exactly once");
        let r = read_db(d).outbox_of(&reply.server_trid)[0].clone();
        assert_eq!(r.attempts, 2);
        assert!(r.delivered.is_some());
        assert_eq!(got[0].data, r.message);
    }
}

#[test]
fn a_relay_that_is_down_defers_the_reply() {
    let (tmp, _, reply) = one_reply("127.0.0.1", hanging_up(), "", ALICE, 3);
    let d = tmp.path();
    assert_eq!(reply.delivered, None);
    assert!(reply.last_error.is_some());

    let relay = Relay::start(Offer::default());
    use_relay(d, "127.0.0.1", relay.port, "");
    let t = tick(d, "2026-11-22T08:20:00Z");
    assert!(t.contains("1 delivered"), "{t}");
    assert_eq!(relay.accepted().len(), 1);
}

/// A backlog goes to the relay over one connection: a delivery run opens
/// one (lettre's pool) instead of one TCP (and TLS) handshake per mail,
/// closes it with QUIT, and a mail the relay refused closes its connection
/// without losing the others: the next mail opens a new one.
#[test]
fn a_backlog_goes_over_one_connection() {
    let relay = Relay::start(Offer::default());
    relay.set_mode(Mode::RejectRecipient);
    let tmp = data_dir();
    let d = tmp.path();
    use_relay(d, "127.0.0.1", relay.port, "");
    for n in 1..=3 {
        process(
            d,
            &Signer::new(ALICE).mail(&perscreate(&ALICE, n), SIGNED_AT),
            0,
        );
    }
    assert!(relay.accepted().is_empty());
    let counts = || {
        let log = relay.log.lock().unwrap();
        (log.connections, log.quits)
    };
    assert_eq!(counts(), (3, 3), "one run each, each closed with QUIT");

    // The first mail is refused: its connection ends, the other two share one.
    relay.set_mode(Mode::RejectOnce);
    let t = tick(d, "2026-11-22T08:20:00Z");
    assert!(t.contains("2 delivered, 1 deferred"), "{t}");
    assert_eq!(relay.accepted().len(), 2);
    assert_eq!(counts(), (5, 5), "the refused mail's, then one for two");

    let t = tick(d, "2026-11-22T12:00:00Z");
    assert!(t.contains("1 delivered"), "{t}");
    assert_eq!(counts(), (6, 6));
    let got = relay.accepted();
    let db = read_db(d);
    assert_db_invariants(&db, "after the backlog");
    assert_eq!(db.outbox.len(), 3, "{:?}", db.outbox);
    for row in &db.outbox {
        assert!(row.delivered.is_some(), "{row:?}");
        let copies = got.iter().filter(|m| m.data == row.message).count();
        assert_eq!(copies, 1, "each reply reached the relay once: {row:?}");
    }
}

/// STARTTLS to a relay whose certificate a private CA issued: trusted with
/// `smtp_ca_file`, and the credentials go inside TLS only (the relay offers
/// AUTH only after STARTTLS).
#[test]
fn starttls_with_the_relays_own_ca() {
    let relay = Relay::start(Offer {
        auth: true,
        tls: true,
    });
    let more = format!(
        "smtp_starttls = true\nsmtp_ca_file = \"{}\"\nsmtp_user = \"regmail\"\nsmtp_password = \"pw\"\n",
        test_ca()
    );
    let (_tmp, _, reply) = one_reply("localhost", relay.port, &more, ALICE, 4);
    let got = relay.accepted();
    assert_eq!(got.len(), 1, "{reply:?}");
    assert_eq!(
        got[0].login,
        Some(("regmail".to_string(), "pw".to_string()))
    );
    assert_eq!(relay.log.lock().unwrap().tls_sessions, 1);
    assert_eq!(got[0].data, reply.message);
    assert!(reply.delivered.is_some());
}

/// Without `smtp_ca_file` only the public roots are trusted: the relay's
/// private certificate is refused, nothing is sent, the reply waits.
#[test]
fn starttls_refuses_a_certificate_it_cannot_verify() {
    let relay = Relay::start(Offer {
        auth: false,
        tls: true,
    });
    let starttls = "smtp_starttls = true\n";
    let (tmp, _, reply) = one_reply("localhost", relay.port, starttls, ALICE, 5);
    let d = tmp.path();
    assert_eq!(reply.delivered, None);
    let error = reply.last_error.unwrap_or_default();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    assert!(relay.mails().is_empty());
    assert_eq!(relay.log.lock().unwrap().tls_sessions, 0);

    // A CA file without a certificate in it is named as the problem.
    std::fs::write(d.join("relay-ca.pem"), "not a certificate\n").unwrap();
    let more = "smtp_starttls = true\nsmtp_ca_file = \"relay-ca.pem\"\n";
    use_relay(d, "localhost", relay.port, more);
    let t = tick(d, "2026-11-22T08:20:00Z");
    assert!(t.contains("1 deferred"), "{t}");
    let error = read_db(d).outbox[0].last_error.clone().unwrap_or_default();
    assert!(
        error.contains("relay-ca.pem: no PEM certificate"),
        "{error}"
    );
}
