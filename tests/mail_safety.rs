//! Mail safety (issue 5, item 5), beside the golden cases that show each
//! automatic mail dropped (`automatic-mail-dropped`) and the registry's own
//! addresses refused in contact data (`person-values`, 6205):
//! - mails nobody asked for with a verified signature (notices, answers to
//!   unsigned mail) are held back once a recipient had its hourly quota, and
//!   go out later; replies to verified templates are never held;
//! - no CR/LF or header text from the input reaches the reply's header;
//! - outbox file names are ours, whatever the input says;
//! - SQL in a value is stored as text (every statement binds parameters).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use chrono::Duration;
use regmail::app::signed_mail;
use regmail::auth::SigningKey;
use regmail::clock::FixedClock;
use regmail::config::Config;
use regmail::pipeline::{self, Mode, Registry};
use regmail::reply;

const ALICE: &str = "hostmaster@alpine-domains.test";

fn unsigned(n: usize, subject: &str) -> Vec<u8> {
    format!(
        "From: {ALICE}\nTo: robot@registry.example\nSubject: {subject}\n\
         Message-ID: <unsigned-{n}@alpine-domains.test>\n\nno signature here\n"
    )
    .into_bytes()
}

fn alice_key() -> SigningKey {
    SigningKey::load(&support::root().join("keys/alice.sec.asc")).unwrap()
}

fn perscreate(trid: &str, email: &str) -> String {
    support::perscreate_text(1001, trid, email)
}

fn deliver_at(reg: &mut Registry, minutes: i64) -> reply::DeliveryReport {
    let at = support::now() + Duration::minutes(minutes);
    reply::deliver(&reg.config, &reg.data_dir, &mut reg.store, at).unwrap()
}

#[test]
fn answers_to_unsigned_mail_are_capped_per_recipient_and_hour() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.delivery.max_notices_per_hour = 3;
    let mut reg = support::registry(tmp.path(), config);
    for n in 0..5 {
        pipeline::handle(&mut reg, &unsigned(n, "REGISTRAR: x"), Mode::Commit).unwrap();
    }
    let held = |reg: &Registry| {
        let all = reg.store.outbox_all().unwrap();
        assert_eq!(all.len(), 5, "every answer is queued, none lost");
        all.iter().filter(|m| m.delivered.is_none()).count()
    };
    // `handle` delivered three; two wait for the hour to free a slot.
    assert_eq!(held(&reg), 2);
    assert_eq!(deliver_at(&mut reg, 30).delivered, 0);
    assert_eq!(held(&reg), 2);
    let later = deliver_at(&mut reg, 61);
    assert_eq!((later.delivered, later.held), (2, 0));
    assert_eq!(held(&reg), 0);
}

#[test]
fn replies_to_verified_templates_are_never_held() {
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.delivery.max_notices_per_hour = 1;
    let mut reg = support::registry(tmp.path(), config);
    let key = alice_key();
    let clock = FixedClock(support::now());
    for n in 0..4 {
        let text = perscreate(&format!("ALP-9{n:03}"), "anna@example.at");
        let mail = signed_mail(&key, 1001, ALICE, &text, &clock).unwrap();
        pipeline::handle(&mut reg, &mail, Mode::Commit).unwrap();
    }
    let all = reg.store.outbox_all().unwrap();
    assert_eq!(all.len(), 4);
    assert!(all.iter().all(|m| m.delivered.is_some() && !m.capped));
}

/// The header names of a mail, in order.
fn header_names(mail: &[u8]) -> Vec<String> {
    let (head, _) = support::split_mail(mail);
    head.lines()
        .filter(|l| !l.starts_with([' ', '\t']))
        .map(|l| l.split(':').next().unwrap().to_ascii_lowercase())
        .collect()
}

#[test]
fn no_input_reaches_a_header_line_of_its_own() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = support::registry(tmp.path(), Config::default());
    // A Subject whose encoded words decode to CR LF and a Bcc header, and a
    // Message-ID trying the same.
    let raw = format!(
        "From: {ALICE}\nTo: robot@registry.example\n\
         Subject: =?us-ascii?Q?REGISTRAR:_x=0D=0ABcc:_victim@example.org=0D=0A?=\n\
         Message-ID: <a@b>\r\nBcc: victim@example.org\n\nno signature\n"
    );
    pipeline::handle(&mut reg, raw.as_bytes(), Mode::Commit).unwrap();
    // A signed template whose domain value carries a bare CR and a header.
    let key = alice_key();
    let clock = FixedClock(support::now());
    let text = perscreate("ALP-9100", "anna@example.at\rBcc: victim@example.org");
    let signed = key.clearsign(&text, clock.0).unwrap();
    let mail = format!(
        "From: {ALICE}\nTo: robot@registry.example\nSubject: REGISTRAR: 1001 perscreate\n\
         Message-ID: <cr@alpine-domains.test>\n\n{signed}"
    );
    pipeline::handle(&mut reg, mail.as_bytes(), Mode::Commit).unwrap();
    let expected = [
        "from",
        "to",
        "subject",
        "message-id",
        "date",
        "auto-submitted",
        "precedence",
        "content-type",
        "content-transfer-encoding",
        "in-reply-to",
        "references",
        "mime-version",
    ];
    let all = reg.store.outbox_all().unwrap();
    assert_eq!(all.len(), 2);
    for m in all {
        let names = header_names(&m.message);
        assert!(
            names.iter().all(|n| expected.contains(&n.as_str())),
            "{names:?}"
        );
        let text = String::from_utf8(m.message.clone()).unwrap();
        let (head, _) = support::split_mail(&m.message);
        assert!(!head.to_ascii_lowercase().contains("victim"), "{head}");
        assert!(!text.contains('\r') || text.split("\r\n").all(|l| !l.contains('\r')));
        assert_eq!(m.recipient, ALICE);
    }
}

#[test]
fn outbox_file_names_are_ours() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = support::registry(tmp.path(), Config::default());
    let key = alice_key();
    let clock = FixedClock(support::now());
    let hostile = "REGISTRAR: ../../../etc/passwd";
    pipeline::handle(&mut reg, &unsigned(1, hostile), Mode::Commit).unwrap();
    let text = perscreate("..-..-etc", "anna@example.at")
        .replace("<client-trid>..-..-etc", "<client-trid>../../etc");
    let mail = signed_mail(&key, 1001, ALICE, &text, &clock).unwrap();
    pipeline::handle(&mut reg, &mail, Mode::Commit).unwrap();
    let names: Vec<String> = std::fs::read_dir(tmp.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2);
    for n in names {
        let (id, rest) = n.split_once('-').unwrap();
        assert!(
            id.len() == 8 && id.bytes().all(|b| b.is_ascii_digit()),
            "{n}"
        );
        let trid = rest.strip_suffix(".eml").unwrap();
        assert!(trid.starts_with("RM") && trid[2..].bytes().all(|b| b.is_ascii_digit()));
    }
}

#[test]
fn sql_in_values_is_stored_as_text() {
    let tmp = tempfile::tempdir().unwrap();
    let mut reg = support::registry(tmp.path(), Config::default());
    let key = alice_key();
    let clock = FixedClock(support::now());
    let hostile = "Robert'); DROP TABLE persons; --";
    let text = perscreate("ALP-9200", "anna@example.at").replace(
        "personname:     Anna Muster",
        &format!("personname:     {hostile}"),
    );
    let mail = signed_mail(&key, 1001, ALICE, &text, &clock).unwrap();
    let h = pipeline::handle(&mut reg, &mail, Mode::Commit).unwrap();
    assert!(h.codes.contains(&1000), "{:?}", h.machine_block);
    let dump = reg.store.dump().unwrap();
    assert!(dump.contains(hostile), "stored verbatim");
    assert!(dump.contains("[persons]") && dump.contains("[domains]"));
}
