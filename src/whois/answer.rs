//! WHOIS answer texts: the `%` header, the domain and person blocks, and the
//! no-match, error and refusal answers.
//!
//! Input: rows read from one snapshot ([`WhoisDomain`], [`WhoisPerson`]), the
//! registry's name and `source`, the query time. Output: [`Answer`] text with
//! LF line ends ([`Answer::wire`] gives CRLF for the network). Invariants:
//! every byte is printable 7-bit ASCII or a line end (anything else becomes
//! `?`); every date is UTC, RFC 3339 with `Z`; comment lines start with `%`
//! and are at most 78 columns; a person's phone, fax and e-mail are left out
//! when `whoishidephone`, `whoishidefax`, `whoishide` ask for it, and their
//! remarks are never shown; nothing else of a person is shown.

use super::WhoisError;
use super::query::QueryError;
use crate::policy::{View, person_data};
use crate::store::{WhoisDomain, WhoisPerson};
use chrono::{DateTime, SecondsFormat, Utc};
use std::fmt::Write as _;

/// What an answer reports (for the exit code and the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A domain was found.
    Domain,
    /// A contact handle was found.
    Handle,
    /// Nothing is registered under that name or handle.
    NoMatch,
    /// The query could not be looked up.
    Invalid(QueryError),
}

impl Outcome {
    /// A short word for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Domain => "domain",
            Outcome::Handle => "handle",
            Outcome::NoMatch => "no-match",
            Outcome::Invalid(e) => e.as_str(),
        }
    }
}

/// One answer, ready to print or send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The text, LF line ends.
    pub text: String,
    /// What it reports.
    pub outcome: Outcome,
    /// The normalised query (ASCII), when it could be parsed.
    pub query: Option<String>,
}

impl Answer {
    /// The bytes on the wire: CRLF line ends (RFC 3912).
    pub fn wire(&self) -> Vec<u8> {
        wire(&self.text)
    }
}

/// Text with LF line ends as CRLF bytes.
pub fn wire(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

/// Who answers, for the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preamble {
    /// The registry's name (`[registry] name`).
    pub registry: String,
    /// The profile's `source` (e.g. `AT-DOM`), the last line of a block.
    pub source: String,
}

const TERMS: &str = "Terms of use: this service tells who holds a domain name registered \
    with this registry and how to reach its contacts, for that purpose only. The data may \
    not be used for advertising or unsolicited mail, nor collected or copied in bulk; \
    queries are rate-limited per client address. Contact data its owner asked to hide \
    (whoishide*) is not shown. Status and dates are those of the last committed change, \
    in UTC.";

/// Printable 7-bit ASCII; anything else becomes `?`.
pub fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect()
}

/// An instant as RFC 3339 UTC with `Z`, to the second.
pub fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A stored RFC 3339 instant, shown in UTC.
fn stored_utc(s: &str) -> Result<String, WhoisError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| utc(t.with_timezone(&Utc)))
        .map_err(|_| WhoisError::BadDate(ascii(s)))
}

fn comment(out: &mut String, text: &str) {
    for line in textwrap::wrap(&ascii(text), 76) {
        let _ = writeln!(out, "% {line}");
    }
}

fn field(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "{:<16}{}", format!("{key}:"), ascii(value));
}

/// The `%` header: the registry, the terms of use, the query and its time.
pub fn header(p: &Preamble, query: Option<&str>, at: DateTime<Utc>) -> String {
    let mut out = String::new();
    comment(
        &mut out,
        &format!("{} WHOIS service (RFC 3912)", p.registry),
    );
    out.push_str("%\n");
    comment(&mut out, TERMS);
    out.push_str("%\n");
    if let Some(q) = query {
        comment(&mut out, &format!("Query: {q}"));
    }
    comment(&mut out, &format!("Time:  {}", utc(at)));
    out.push_str("%\n");
    out
}

/// A domain block. `glue(host)`: whether the host is under one of the
/// registry's zones (then its addresses are shown, as `remarks:` lines).
pub fn domain_block(
    w: &WhoisDomain,
    glue: impl Fn(&str) -> bool,
    source: &str,
) -> Result<String, WhoisError> {
    let d = &w.domain;
    let mut out = String::new();
    field(&mut out, "domain", &d.name);
    for word in &d.status {
        field(&mut out, "status", word);
    }
    field(&mut out, "registrar-id", &d.registrar_id.to_string());
    field(&mut out, "registrar", &w.registrar_name);
    for role in ["registrant", "admin-c", "tech-c", "zone-c"] {
        for handle in d.role(role) {
            field(&mut out, role, &handle);
        }
    }
    for ns in &d.nameservers {
        field(&mut out, "nserver", &ns.host);
        if glue(&ns.host) {
            for a in &ns.addresses {
                field(&mut out, "remarks", a);
            }
        }
    }
    field(&mut out, "created", &stored_utc(&d.created)?);
    field(&mut out, "changed", &stored_utc(&w.changed)?);
    field(&mut out, "expires", &stored_utc(&d.expires)?);
    field(&mut out, "source", source);
    Ok(out)
}

/// A person block, public view (`whoishide*` honoured, no remarks).
pub fn person_block(w: &WhoisPerson, source: &str) -> Result<String, WhoisError> {
    let p = &w.person;
    let mut out = String::new();
    field(&mut out, "nic-hdl", &p.handle);
    for (key, value) in person_data(p, View::Public) {
        field(&mut out, &key, &value);
    }
    field(&mut out, "registrar-id", &p.registrar_id.to_string());
    field(&mut out, "registrar", &w.registrar_name);
    field(&mut out, "created", &stored_utc(&p.created)?);
    field(&mut out, "changed", &stored_utc(&w.changed)?);
    field(&mut out, "source", source);
    Ok(out)
}

/// Nothing under that name or handle; `zones` when a domain is not under
/// any of the registry's zones.
pub fn no_match(query: &str, zones: Option<&[String]>) -> String {
    let mut out = String::new();
    comment(&mut out, &format!("No match for {query}."));
    if let Some(zones) = zones {
        comment(
            &mut out,
            &format!("This registry serves names under: {}.", zones.join(", ")),
        );
    }
    out
}

/// A one-line `%` error answer.
pub fn error(message: &str) -> String {
    let mut out = String::new();
    comment(&mut out, &format!("Error: {message}"));
    out
}

/// The answer to a query that cannot be looked up.
pub fn invalid(p: &Preamble, e: QueryError, at: DateTime<Utc>) -> Answer {
    Answer {
        text: format!("{}{}", header(p, None, at), error(&e.message())),
        outcome: Outcome::Invalid(e),
        query: None,
    }
}

/// The refusal of a client over its rate.
pub fn rate_limited(retry_after_secs: u64) -> String {
    error(&format!(
        "too many queries from your address; try again in {retry_after_secs} s."
    ))
}

/// The refusal while every connection slot is taken.
pub fn busy() -> String {
    error("server busy; try again later.")
}

/// No query line arrived in time.
pub fn timed_out(secs: u64) -> String {
    error(&format!("no query received within {secs} s."))
}

/// A fault of ours (logged); the client may retry.
pub fn failure() -> String {
    error("temporary failure; try again later.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{DomainFlags, DomainRow, PersonRow};
    use crate::template::{Nameserver, PersonCreate, PersonType};

    fn preamble() -> Preamble {
        Preamble {
            registry: "Example Registry".into(),
            source: "AT-DOM".into(),
        }
    }

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-22T09:15:00+01:00")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn domain() -> WhoisDomain {
        let ns = |h: &str, a: &[&str]| Nameserver {
            host: h.into(),
            addresses: a.iter().map(|s| s.to_string()).collect(),
        };
        WhoisDomain {
            domain: DomainRow {
                name: "muster.at".into(),
                registrar_id: 1001,
                created: "2026-11-22T08:15:00.000Z".into(),
                expires: "2027-11-22T09:15:00+01:00".into(),
                contacts: vec![
                    ("registrant".into(), "AM1001-NICAT".into()),
                    ("tech-c".into(), "TE1002-NICAT".into()),
                ],
                nameservers: vec![
                    ns("ns1.muster.at", &["192.0.2.1", "2001:db8::1"]),
                    ns("ns.example.net", &["198.51.100.7"]),
                ],
                flags: DomainFlags::default(),
                pending: None,
                status: vec!["serverHold".into(), "pendingTransfer".into()],
                authinfo: Some("secret-authinfo".into()),
                billing: "registrar".into(),
                zone_delete: false,
                redemption_until: None,
                release_at: None,
                qc: false,
            },
            changed: "2026-11-23T10:00:00.123Z".into(),
            registrar_name: "Alpine Domains GmbH".into(),
        }
    }

    fn person(hide: bool) -> WhoisPerson {
        WhoisPerson {
            person: PersonRow {
                handle: "AM1001-NICAT".into(),
                registrar_id: 1001,
                data: PersonCreate {
                    kind: PersonType::Nat,
                    personname: Some("Anna M\u{fc}ster".into()),
                    organization: None,
                    street: vec!["Hauptstrasse 1".into()],
                    postal_code: "1010".into(),
                    city: "Wien".into(),
                    country: "AT".into(),
                    phone: "+4315056416".into(),
                    fax: Some("+4315056417".into()),
                    email: "anna@example.at".into(),
                    hide_phone: hide,
                    hide_fax: hide,
                    hide_email: hide,
                    remarks: vec!["private note".into()],
                },
                created: "2026-11-22T08:15:00.000Z".into(),
                updated: "2026-11-22T08:15:00.000Z".into(),
            },
            changed: "2026-11-22T08:15:00.000Z".into(),
            registrar_name: "Alpine Domains GmbH".into(),
        }
    }

    #[test]
    fn domain_block_lines() {
        let text = domain_block(&domain(), |h| h.ends_with(".at"), "AT-DOM").unwrap();
        let want = "\
domain:         muster.at
status:         serverHold
status:         pendingTransfer
registrar-id:   1001
registrar:      Alpine Domains GmbH
registrant:     AM1001-NICAT
tech-c:         TE1002-NICAT
nserver:        ns1.muster.at
remarks:        192.0.2.1
remarks:        2001:db8::1
nserver:        ns.example.net
created:        2026-11-22T08:15:00Z
changed:        2026-11-23T10:00:00Z
expires:        2027-11-22T08:15:00Z
source:         AT-DOM
";
        assert_eq!(text, want);
        assert!(!text.contains("secret"), "no authinfo in public");
    }

    #[test]
    fn person_block_honours_hide_flags() {
        let shown = person_block(&person(false), "AT-DOM").unwrap();
        assert!(shown.contains("personname:     Anna M?ster\n"), "{shown}");
        for line in [
            "phone:          +4315056416\n",
            "fax-no:         +4315056417\n",
            "e-mail:         anna@example.at\n",
            "changed:        2026-11-22T08:15:00Z\n",
        ] {
            assert!(shown.contains(line), "{line} in {shown}");
        }
        assert!(!shown.contains("private note"));
        let hidden = person_block(&person(true), "AT-DOM").unwrap();
        for word in ["phone", "fax-no", "e-mail", "5056416", "anna@"] {
            assert!(!hidden.contains(word), "{word} in {hidden}");
        }
        assert!(hidden.contains("city:           Wien\n"));
    }

    #[test]
    fn header_and_wire_form() {
        let h = header(&preamble(), Some("muster.at"), at());
        assert!(h.starts_with("% Example Registry WHOIS service (RFC 3912)\n%\n% Terms"));
        assert!(h.contains("% Query: muster.at\n% Time:  2026-11-22T08:15:00Z\n%\n"));
        assert!(
            h.lines().all(|l| l.starts_with('%') && l.len() <= 78),
            "{h}"
        );
        let a = invalid(&preamble(), QueryError::Empty, at());
        let bytes = a.wire();
        assert!(bytes.is_ascii());
        let text = String::from_utf8(bytes).unwrap();
        assert!(
            text.ends_with("%\r\n% Error: empty query; send a domain name or a contact handle\r\n"),
            "{text}"
        );
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "only CRLF line ends"
        );
        assert_eq!(a.outcome, Outcome::Invalid(QueryError::Empty));
    }

    #[test]
    fn no_match_and_refusals() {
        assert_eq!(no_match("nothing.at", None), "% No match for nothing.at.\n");
        let zones = ["at".to_string(), "co.at".to_string()];
        assert_eq!(
            no_match("x.com", Some(&zones)),
            "% No match for x.com.\n% This registry serves names under: at, co.at.\n"
        );
        assert_eq!(
            rate_limited(42),
            "% Error: too many queries from your address; try again in 42 s.\n"
        );
        assert_eq!(busy(), "% Error: server busy; try again later.\n");
        assert_eq!(ascii("a\r\nb\u{7f}\u{e9}"), "a??b??");
        assert!(stored_utc("yesterday").is_err());
    }
}
