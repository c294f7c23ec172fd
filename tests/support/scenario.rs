//! The scenario format: a file of timed steps (mail in, holder answers,
//! operator decisions, ticks) with the mails and states expected after each
//! step, run on a movable clock against a registry in a temp directory.
//!
//! Lines (`#` starts a comment; `$name` is a handle captured with `as`):
//!
//! ```text
//! profile <key> = <toml value>        # [profiles.at] setting (before any step)
//! price <item> <cents>                # [profiles.at.prices]
//! credit <who> <amount>               # prepaid credit
//! at <RFC 3339> | at +<n>d | at +<n>h # move the clock
//! send <who> <transaction> k=v ... [as <name>]   # a signed template (`as`
//!                                     # captures the reply's handle or authinfo)
//! answer <email> CONFIRM|REJECT|OBJECT [auto]    # a holder's answer mail
//! bounce <email>                      # a DSN for the last mail to <email>
//! vacation <email>                    # an auto-reply to it (not a bounce)
//! forged-bounce                       # a DSN naming guessable Message-IDs
//! tick                                # regmail tick
//! pending confirm|reject <object> <note...>
//! pending confirm-blocked <object> <event>  # the confirmation is refused: the
//!                                     # request ended (status-prohibits, ...)
//! qc accept <domain> | qc correct <domain> <reason...>
//! serverlock <domain> on|off          # the registry's lock
//! suspend <who>                       # registrar suspend (after a catch-up)
//! reply <result> [<code>...]          # the reply to the last `send`
//! mail <who> <event>[,<event>...]     # a notification (a digest: several)
//! state <object> <field> <value...>   # status|registrar|expires|holder|nserver|email|owner
//! state <object> gone
//! balance <who> <amount>
//! ```
//!
//! After every step each new mail must be expected by a `reply` or `mail`
//! line: a step that sends something unexpected fails the scenario.
//! `<who>` is a registrar name (alice 1001, bob 1002) or an e-mail address.

use super::{registry, trent, verify_body};
use chrono::{DateTime, Duration, Utc};
use regmail::auth::SigningKey;
use regmail::clock::FixedClock;
use regmail::config::Config;
use regmail::pipeline::{self, Mode, Registry};
use sequoia_openpgp as openpgp;
use std::collections::BTreeMap;
use std::path::Path;

/// One mail the registry sent, read back.
#[derive(Debug, Clone)]
pub struct Sent {
    pub to: String,
    pub message_id: String,
    pub results: Vec<String>,
    pub events: Vec<String>,
    pub codes: Vec<String>,
    pub body: String,
}

pub struct Runner {
    pub reg: Registry,
    pub now: DateTime<Utc>,
    keys: BTreeMap<&'static str, (u32, SigningKey)>,
    vars: BTreeMap<String, String>,
    seen: i64,
    trid: u32,
    fresh: Vec<Sent>,
    pub log: Vec<Sent>,
    cert: openpgp::Cert,
}

pub fn registrar(who: &str) -> Option<(u32, &'static str)> {
    match who {
        "alice" => Some((1001, "hostmaster@alpine-domains.test")),
        "bob" => Some((1002, "robot@blue-registrar.test")),
        _ => None,
    }
}

fn address(who: &str) -> String {
    registrar(who).map_or_else(|| who.to_string(), |(_, a)| a.to_string())
}

/// Splits on blanks, keeping `"quoted text"` together (quotes removed).
pub fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse_sent(to: &str, mail: &[u8]) -> Sent {
    let (head, body) = super::split_mail(mail);
    let mut s = Sent {
        to: to.to_string(),
        message_id: head
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: ").map(str::to_string))
            .unwrap_or_default(),
        results: vec![],
        events: vec![],
        codes: vec![],
        body: body.clone(),
    };
    for line in body.lines() {
        if let Some(v) = line.strip_prefix("result:") {
            s.results.push(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("event:") {
            s.events.push(v.trim().to_string());
        } else if let Some(v) = ["info:", "error:", "warning:"]
            .iter()
            .find_map(|p| line.strip_prefix(p))
        {
            s.codes.push(v.trim().chars().take(4).collect());
        }
    }
    s
}

/// The template text for a transaction from `k=v` pairs.
pub fn template(
    registrar: u32,
    trid: &str,
    transaction: &str,
    pairs: &[(String, String)],
) -> String {
    let get = |k: &str| pairs.iter().find(|(p, _)| p == k).map(|(_, v)| v.clone());
    let mut lines: Vec<(String, String)> = Vec::new();
    let mut push = |k: &str, v: &str| lines.push((k.to_string(), v.to_string()));
    let command = match transaction {
        "perscreate" | "create" => "create",
        "persupdate" | "update" => "update",
        "regtransfer" => "transfer",
        "transferack" => "ack",
        "transfernack" => "nack",
        "billwithdraw" => "withdraw",
        other => other,
    };
    match transaction {
        "perscreate" => {
            push("nic-hdl", "AUTO");
            push("command", command);
            push("type", "NAT");
            push(
                "personname",
                &get("name").unwrap_or_else(|| "Anna Muster".into()),
            );
            push("street address", "Hauptstrasse 1");
            push("postal code", "1010");
            push("city", "Wien");
            push("country", "AT");
            push("phone", "+43 1 5056416");
            push(
                "e-mail",
                &get("email").unwrap_or_else(|| "anna@example.at".into()),
            );
        }
        "persupdate" => {
            push("nic-hdl", &get("handle").unwrap_or_default());
            push("command", command);
            for (k, v) in pairs.iter().filter(|(k, _)| k != "handle") {
                push(&k.replace('_', " "), v);
            }
        }
        "create" => {
            let holder = get("holder").unwrap_or_default();
            push("domain", &get("domain").unwrap_or_default());
            push("command", command);
            push("registrant", &holder);
            push("tech-c", &holder);
            if let Some(p) = get("period") {
                push("period", &p);
            }
            push("nserver", "ns1.example.net");
            push("nserver", "ns2.example.net");
        }
        _ => {
            push("domain", &get("domain").unwrap_or_default());
            push("command", command);
            for (k, v) in pairs.iter().filter(|(k, _)| k != "domain") {
                push(&k.replace('_', " "), v);
            }
        }
    }
    let object: String = lines
        .iter()
        .map(|(k, v)| format!("{:<16}{v}\n", format!("{k}:")))
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n<regframe>\n<regheader>\n<version>1.1</version>\n\
         <transaction>{transaction}</transaction>\n<count>1</count>\n<accept-language>en</accept-language>\n\
         <registrar-id>{registrar}</registrar-id>\n<client-trid>{trid}</client-trid>\n</regheader>\n\
         <regbody><![CDATA[\nTemplate Version: 5.0\n\n{object}source:         AT-DOM\n\n\
         currentNicAtTermsAndConditionsAccepted: Y\n]]></regbody>\n</regframe>\n"
    )
}

/// The configuration from a scenario's `profile` and `price` lines.
pub fn config_of(text: &str) -> Config {
    let mut profile = String::from("[profiles.at]\n");
    let mut prices = String::from("[profiles.at.prices]\n");
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("profile ") {
            profile.push_str(rest);
            profile.push('\n');
        } else if let Some(rest) = line.strip_prefix("price ") {
            let w = words(rest);
            prices.push_str(&format!("{} = {}\n", w[0], w[1]));
        }
    }
    Config::parse(&format!("{profile}{prices}")).unwrap()
}

impl Runner {
    pub fn new(dir: &Path, config: Config, now: DateTime<Utc>) -> Runner {
        let mut reg = registry(dir, config);
        reg.clock = Box::new(FixedClock(now));
        let key =
            |n: &str| SigningKey::load(&super::root().join(format!("keys/{n}.sec.asc"))).unwrap();
        let mut keys = BTreeMap::new();
        keys.insert("alice", (1001, key("alice")));
        keys.insert("bob", (1002, key("bob")));
        Runner {
            reg,
            now,
            keys,
            vars: BTreeMap::new(),
            seen: 0,
            trid: 0,
            fresh: vec![],
            log: vec![],
            cert: trent(),
        }
    }

    pub fn set_now(&mut self, t: DateTime<Utc>) {
        self.now = t;
        self.reg.clock = Box::new(FixedClock(t));
    }

    fn var(&self, v: &str) -> String {
        match v.strip_prefix('$') {
            Some(name) => self
                .vars
                .get(name)
                .cloned()
                .unwrap_or_else(|| panic!("no ${name}")),
            None => v.to_string(),
        }
    }

    /// Collects the mails queued since the last step; checks each signature.
    pub fn collect(&mut self) {
        for m in self.reg.store.outbox_all().unwrap() {
            if m.id <= self.seen {
                continue;
            }
            self.seen = m.id;
            // A delivered holder mail lost its body in the database (its
            // token); the copy the file transport delivered has it.
            let message = if m.message.is_empty() {
                let dir = self.reg.data_dir.join("outbox");
                let file = std::fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .find(|p| p.to_string_lossy().contains(&format!("{:08}-", m.id)))
                    .expect("a purged mail was delivered to a file");
                std::fs::read(file).unwrap()
            } else {
                m.message.clone()
            };
            let (_, body) = super::split_mail(&message);
            verify_body(&body, &self.cert, self.now)
                .unwrap_or_else(|e| panic!("mail {} not signed: {e}", m.id));
            let sent = parse_sent(&m.recipient, &message);
            self.fresh.push(sent.clone());
            self.log.push(sent);
        }
    }

    /// Sends a signed template; returns the reply.
    pub fn send(
        &mut self,
        who: &str,
        transaction: &str,
        pairs: &[(String, String)],
    ) -> Option<Sent> {
        let (id, key) = self
            .keys
            .get(who)
            .map(|(i, k)| (*i, k.clone()))
            .unwrap_or_else(|| panic!("no registrar {who}"));
        self.trid += 1;
        let trid = format!("SCN-{:04}", self.trid);
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.clone(), self.var(v)))
            .collect();
        let text = template(id, &trid, transaction, &pairs);
        let mail =
            regmail::app::signed_mail(&key, id, &address(who), &text, self.reg.clock.as_ref())
                .unwrap();
        pipeline::handle(&mut self.reg, &mail, Mode::Commit).unwrap();
        self.collect();
        let to = address(who);
        let pos = self
            .fresh
            .iter()
            .position(|s| s.to == to && s.events.is_empty())?;
        Some(self.fresh.remove(pos))
    }

    /// Processes a raw mail.
    pub fn process(&mut self, raw: &[u8]) {
        pipeline::handle(&mut self.reg, raw, Mode::Commit).unwrap();
        self.collect();
    }

    /// The newest token mailed to `email` after `verb`.
    pub fn token(&self, email: &str, verb: &str) -> String {
        let needle = format!("{verb} ");
        self.log
            .iter()
            .rev()
            .filter(|s| s.to == email)
            .find_map(|s| {
                s.body.lines().find_map(|l| {
                    l.trim()
                        .strip_prefix(&needle)
                        .filter(|t| t.len() == 32)
                        .map(str::to_string)
                })
            })
            .unwrap_or_else(|| panic!("no {verb} token mailed to {email}"))
    }

    pub fn answer(&mut self, email: &str, verb: &str, auto: bool) {
        let lookup = if verb == "REJECT" {
            "REJECT"
        } else if verb == "OBJECT" {
            "OBJECT"
        } else {
            "CONFIRM"
        };
        let token = self.token(email, lookup);
        let auto = if auto {
            "Auto-Submitted: auto-replied\r\n"
        } else {
            ""
        };
        let mail = format!(
            "From: Someone <someone@elsewhere.example>\r\nTo: robot@registry.example\r\n\
             Subject: Re: {verb} {token}\r\nMessage-ID: <answer-{token}@elsewhere.example>\r\n{auto}\
             Date: Sun, 22 Nov 2026 08:00:00 +0000\r\n\r\nyes\r\n"
        );
        self.process(mail.as_bytes());
    }

    /// The Message-ID of the newest mail to `email`.
    fn last_message_id(&self, email: &str) -> String {
        self.log
            .iter()
            .rev()
            .find(|s| s.to == email)
            .map(|s| s.message_id.clone())
            .expect("no mail to that address")
    }

    /// A delivery status notification for the newest mail to `email`.
    pub fn bounce(&mut self, email: &str) {
        let id = self.last_message_id(email);
        let mail = format!(
            "From: MAILER-DAEMON@mx.example\r\nReturn-Path: <>\r\nTo: robot@registry.example\r\n\
             Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <bounce-1@mx.example>\r\n\
             Auto-Submitted: auto-replied\r\nContent-Type: text/plain\r\n\r\n\
             The mail {id} to {email} could not be delivered.\r\n"
        );
        self.process(mail.as_bytes());
    }

    /// An out-of-office reply from `email` to its newest mail (quoting its
    /// Message-ID and Subject): never a bounce, never an answer.
    pub fn vacation(&mut self, email: &str) {
        let id = self.last_message_id(email);
        let mail = format!(
            "From: {email}\r\nReturn-Path: <>\r\nTo: robot@registry.example\r\n\
             Subject: Out of office: REGISTRY: pending regtransfer\r\nIn-Reply-To: {id}\r\n\
             References: {id}\r\nAuto-Submitted: auto-replied\r\nMessage-ID: <away-1@example.at>\r\n\r\n\
             I am away until next week. Your mail {id} will be read then.\r\n"
        );
        self.process(mail.as_bytes());
    }

    /// A forged bounce naming Message-IDs made from server-trids (which
    /// registrars know) rather than the real, unguessable tags.
    pub fn forged_bounce(&mut self) {
        let ids: String = (1..=20)
            .map(|n| format!("<RM{n:010}.confirmation-requested.holder@registry.example>\r\n"))
            .collect();
        let trid = ids.trim_end();
        let mail = format!(
            "From: MAILER-DAEMON@mx.example\r\nReturn-Path: <>\r\nTo: robot@registry.example\r\n\
             Subject: Undelivered Mail\r\nMessage-ID: <forged@mx.example>\r\n\r\n\
             {trid}\r\n<00000000000000000000000000000000.holder@registry.example> failed.\r\n"
        );
        self.process(mail.as_bytes());
    }

    /// Fails if a new mail was not expected.
    pub fn expect_none_left(&mut self, step: &str) {
        assert!(
            self.fresh.is_empty(),
            "after `{step}`: unexpected mails: {:?}",
            self.fresh
                .iter()
                .map(|s| (&s.to, &s.results, &s.events))
                .collect::<Vec<_>>()
        );
    }

    /// Takes the expected notification mail.
    pub fn expect_mail(&mut self, who: &str, events: &str) {
        let to = address(who);
        let want: Vec<String> = events.split(',').map(str::to_string).collect();
        let pos = self
            .fresh
            .iter()
            .position(|s| s.to == to && s.events == want)
            .unwrap_or_else(|| {
                panic!(
                    "no mail to {to} with events {want:?}; new mails: {:?}",
                    self.fresh
                        .iter()
                        .map(|s| (&s.to, &s.events))
                        .collect::<Vec<_>>()
                )
            });
        self.fresh.remove(pos);
    }

    pub fn capture(&mut self, name: &str, reply: &Sent) {
        let handle = reply
            .body
            .lines()
            .find_map(|l| {
                l.strip_prefix("handle:")
                    .or_else(|| l.strip_prefix("# authinfo:"))
                    .map(|h| h.trim().to_string())
            })
            .expect("no handle or authinfo in the reply");
        self.vars.insert(name.to_string(), handle);
    }

    pub fn resolve(&self, v: &str) -> String {
        self.var(v)
    }

    pub fn advance(&mut self, d: Duration) {
        let t = self.now + d;
        self.set_now(t);
    }
}
