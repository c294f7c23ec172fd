//! `regmail zone export` through the binary: a registry built from real
//! signed mails, exported, parsed back with a real zone-file parser (NLnet
//! Labs' `domain` crate) and checked record by record; the serial kept in
//! the database across runs; atomic `--output`; usage errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use domain::base::name::ToLabelIter;
use domain::rdata::ZoneRecordData;
use domain::zonefile::inplace::{Entry, Zonefile};
use snapbox::cmd::Command;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const T0: &str = "2026-11-22T08:15:00Z";
const T1: &str = "2026-11-23T09:00:00Z";
const ALICE: &str = "hostmaster@alpine-domains.test";

const CONFIG: &str = r#"
[profiles.at.zone]
primary = "ns1.nic.at"
hostmaster = "dns.admin@nic.at"
nameservers = ["ns1.nic.at", "ns.registry.example"]
ttl = 3600
refresh = 7200
retry = 900
expire = 604800
minimum = 300
[profiles.at.zone.addresses]
"ns1.nic.at" = ["192.0.2.1", "2001:db8::1"]
"#;

fn regmail(d: &Path, now: &str) -> Command {
    Command::new(env!("CARGO_BIN_EXE_regmail"))
        .arg("--data-dir")
        .arg(d)
        .arg("--now")
        .arg(now)
}

fn outbox(d: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(d.join("outbox"))
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

/// Signs `text` as alice at `now`, pipes it into `process` and expects success.
fn send(d: &Path, now: &str, text: &str) {
    send_for(d, now, text, "success");
}

/// Signs `text` as alice at `now`, pipes it into `process` and expects `result`.
fn send_for(d: &Path, now: &str, text: &str, result: &str) {
    let file = d.join("template.txt");
    std::fs::write(&file, text).unwrap();
    let mail = regmail(d, now)
        .args(["submit", "--registrar", "1001", "--from", ALICE, "--key"])
        .arg(support::root().join("keys/alice.sec.asc"))
        .arg(&file)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let before = outbox(d);
    regmail(d, now).arg("process").stdin(mail).assert().code(0);
    // The reply to alice (a deletion also mails the holder).
    let replies: Vec<String> = outbox(d)
        .difference(&before)
        .map(|f| std::fs::read_to_string(f).unwrap())
        .filter(|m| m.contains(&format!("To: {ALICE}")))
        .collect();
    assert_eq!(replies.len(), 1, "{replies:?}");
    let reply = &replies[0];
    let line = format!("result:       {result}");
    assert!(reply.lines().any(|l| l.trim_end() == line), "{reply}");
}

fn template(trid: &str, transaction: &str, object: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n<regframe>\n<regheader>\n\
         <version>1.1</version>\n<transaction>{transaction}</transaction>\n<count>1</count>\n\
         <accept-language>en</accept-language>\n<registrar-id>1001</registrar-id>\n\
         <client-trid>{trid}</client-trid>\n</regheader>\n<regbody><![CDATA[\n\
         Template Version: 5.0\n\n{object}source:         AT-DOM\n\n\
         currentNicAtTermsAndConditionsAccepted: Y\n]]></regbody>\n</regframe>\n"
    )
}

fn nservers(hosts: &[Host]) -> String {
    let mut s = String::new();
    for (host, addrs) in hosts {
        s += &format!("nserver:        {host}\n");
        for a in *addrs {
            s += &format!("remarks:        {a}\n");
        }
    }
    s
}

fn create(trid: &str, domain: &str, hosts: &[Host]) -> String {
    let object = format!(
        "domain:         {domain}\ncommand:        create\nregistrant:     AM1001-NICAT\n\
         tech-c:         AM1001-NICAT\n{}",
        nservers(hosts)
    );
    template(trid, "create", &object)
}

fn nscupdate(trid: &str, domain: &str, hosts: &[Host]) -> String {
    let object = format!(
        "domain:         {domain}\ncommand:        nscupdate\n{}",
        nservers(hosts)
    );
    template(trid, "nscupdate", &object)
}

/// A nameserver line and its `remarks:` addresses.
type Host = (&'static str, &'static [&'static str]);

const MUSTER_NS1: Host = ("ns1.muster.at", &["192.0.2.53", "2001:db8::53"]);
const HELD_NS1: Host = ("ns1.held.at", &["192.0.2.80"]);

/// alice's registry: glue in and out of the zone, IPv4 and IPv6, a host
/// shared by three domains, a domain in `co.at`, `held.at` on serverHold.
fn registry() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    regmail(d, T0).arg("init").assert().success();
    regmail(d, T0)
        .args(["registrar", "add", "--id", "1001", "--name", "Alpine"])
        .args(["--email", ALICE, "--key"])
        .arg(support::root().join("keys/alice.pub.asc"))
        .assert()
        .success();
    let config = std::fs::read_to_string(d.join("regmail.toml")).unwrap();
    std::fs::write(d.join("regmail.toml"), config + CONFIG).unwrap();
    send(
        d,
        T0,
        &support::perscreate_text(1001, "ZON-0001", "anna@example.at"),
    );
    let creates: [(&str, &[Host]); 6] = [
        (
            "muster.at",
            &[
                MUSTER_NS1,
                ("ns2.muster.at", &["192.0.2.54"]),
                ("ns.example.net", &[]),
            ],
        ),
        ("second.at", &[MUSTER_NS1, ("ns.example.net", &[])]),
        ("held.at", &[HELD_NS1, ("ns.example.net", &[])]),
        ("other.at", &[HELD_NS1, ("ns2.example.net", &[])]),
        (
            "firma.co.at",
            &[("ns1.firma.co.at", &["192.0.2.90"]), MUSTER_NS1],
        ),
        (
            "outside.at",
            &[("ns1.example.net", &[]), ("ns2.example.net", &[])],
        ),
    ];
    for (i, (domain, hosts)) in creates.iter().enumerate() {
        send(d, T0, &create(&format!("ZON-01{i:02}"), domain, hosts));
    }
    set_status(d, T0, "held.at", "on");
    tmp
}

fn set_status(d: &Path, now: &str, domain: &str, state: &str) {
    regmail(d, now)
        .args(["domain", "set-status", domain, "serverHold", state])
        .assert()
        .success();
}

fn export(d: &Path, now: &str, zone: &str) -> String {
    let out = regmail(d, now)
        .args(["zone", "export", "--zone", zone])
        .assert()
        .success();
    String::from_utf8(out.get_output().stdout.clone()).unwrap()
}

/// The SOA's fields: mname, rname's labels, serial, refresh, retry,
/// expire, minimum, and the record's owner and TTL.
#[derive(Debug, PartialEq, Eq)]
struct Soa {
    owner: String,
    ttl: u32,
    mname: String,
    rname: Vec<String>,
    times: [u32; 5],
}

/// A parsed zone: its SOA and every other record as owner, TTL, type, data.
#[derive(Debug)]
struct Parsed {
    soa: Soa,
    records: Vec<(String, u32, &'static str, String)>,
}

fn labels(name: &impl ToLabelIter) -> Vec<String> {
    name.iter_labels()
        .map(|l| String::from_utf8(l.as_slice().to_vec()).unwrap())
        .collect()
}

fn parse(text: &str) -> Parsed {
    let mut zone = Zonefile::new();
    zone.extend_from_slice(text.as_bytes());
    let mut soa = None;
    let mut records = Vec::new();
    while let Some(entry) = zone.next_entry().unwrap() {
        let Entry::Record(r) = entry else {
            panic!("unexpected entry {entry:?}")
        };
        let owner = r.owner().to_string();
        let ttl = r.ttl().as_secs();
        let (kind, data) = match r.data() {
            ZoneRecordData::Soa(s) => {
                assert!(soa.is_none(), "two SOA records");
                assert!(records.is_empty(), "the SOA is not first");
                soa = Some(Soa {
                    owner,
                    ttl,
                    mname: s.mname().to_string(),
                    rname: labels(s.rname()),
                    times: [
                        s.serial().into_int(),
                        s.refresh().as_secs(),
                        s.retry().as_secs(),
                        s.expire().as_secs(),
                        s.minimum().as_secs(),
                    ],
                });
                continue;
            }
            ZoneRecordData::Ns(ns) => ("NS", ns.nsdname().to_string()),
            ZoneRecordData::A(a) => ("A", a.addr().to_string()),
            ZoneRecordData::Aaaa(a) => ("AAAA", a.addr().to_string()),
            other => panic!("unexpected record {other:?}"),
        };
        records.push((owner, ttl, kind, data));
    }
    Parsed {
        soa: soa.expect("no SOA"),
        records,
    }
}

fn serial_of(text: &str) -> u32 {
    parse(text).soa.times[0]
}

/// The records expected besides the SOA, as "owner TYPE data", TTL 3600.
fn expect(parsed: &Parsed, expected: &[impl AsRef<str>]) {
    let got: Vec<String> = parsed
        .records
        .iter()
        .map(|(owner, ttl, kind, data)| {
            assert_eq!(*ttl, 3600, "{owner} {kind}");
            format!("{owner} {kind} {data}")
        })
        .collect();
    let unique: BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "duplicate records: {got:#?}");
    let want: BTreeSet<String> = expected.iter().map(|s| s.as_ref().to_string()).collect();
    let got: BTreeSet<String> = got.into_iter().collect();
    assert_eq!(got, want);
}

const APEX: [&str; 8] = [
    "at NS ns1.nic.at",
    "at NS ns.registry.example",
    "co.at NS ns1.nic.at",
    "co.at NS ns.registry.example",
    "or.at NS ns1.nic.at",
    "or.at NS ns.registry.example",
    "ns1.nic.at A 192.0.2.1",
    "ns1.nic.at AAAA 2001:db8::1",
];

const DELEGATIONS: [&str; 11] = [
    "muster.at NS ns1.muster.at",
    "muster.at NS ns2.muster.at",
    "muster.at NS ns.example.net",
    "ns1.muster.at A 192.0.2.53",
    "ns1.muster.at AAAA 2001:db8::53",
    "ns2.muster.at A 192.0.2.54",
    "second.at NS ns1.muster.at",
    "second.at NS ns.example.net",
    "other.at NS ns1.held.at",
    "other.at NS ns2.example.net",
    "outside.at NS ns1.example.net",
];

/// Zone `at` as built by [`registry`], plus `extra`.
fn at_records(extra: &[&str]) -> Vec<String> {
    APEX.iter()
        .chain(DELEGATIONS.iter())
        .chain(["outside.at NS ns2.example.net"].iter())
        .chain(extra.iter())
        .map(|s| s.to_string())
        .collect()
}

#[test]
fn the_zone_record_by_record() {
    let tmp = registry();
    let d = tmp.path();
    let text = export(d, T0, "at");
    let at = parse(&text);
    assert_eq!(
        at.soa,
        Soa {
            owner: "at".into(),
            ttl: 3600,
            mname: "ns1.nic.at".into(),
            rname: vec!["dns.admin".into(), "nic".into(), "at".into(), String::new()],
            times: [2026112200, 7200, 900, 604800, 300],
        }
    );
    // held.at and firma.co.at are absent, ns1.held.at (under a held
    // domain) and ns1.firma.co.at (in co.at) get no glue, the example.net
    // hosts (out of zone) none either; ns1.muster.at is glued once.
    expect(&at, &at_records(&[]));
    assert!(!text.contains("held.at\t3600\tIN\tNS"), "{text}");
    assert!(!text.contains("firma"), "{text}");

    let co = parse(&export(d, T0, "co.at"));
    assert_eq!(co.soa.owner, "co.at");
    assert_eq!(co.soa.times[0], 2026112200);
    expect(
        &co,
        &[
            "co.at NS ns1.nic.at",
            "co.at NS ns.registry.example",
            "firma.co.at NS ns1.firma.co.at",
            "firma.co.at NS ns1.muster.at",
            "ns1.firma.co.at A 192.0.2.90",
        ],
    );
    let or = parse(&export(d, T0, "or.at"));
    expect(
        &or,
        &["or.at NS ns1.nic.at", "or.at NS ns.registry.example"],
    );
}

#[test]
fn the_serial_moves_only_with_the_content() {
    let tmp = registry();
    let d = tmp.path();
    let first = export(d, T0, "at");
    assert_eq!(serial_of(&first), 2026112200);
    // Unchanged data: byte-identical, today and tomorrow.
    assert_eq!(export(d, T0, "at"), first);
    assert_eq!(export(d, T1, "at"), first);
    // A change today: the next serial of the day.
    let hosts: &[Host] = &[MUSTER_NS1, ("ns2.example.net", &[])];
    send(d, T0, &nscupdate("ZON-0200", "second.at", hosts));
    let changed = export(d, T0, "at");
    assert_eq!(serial_of(&changed), 2026112201);
    assert!(changed.contains("second.at.\t3600\tIN\tNS\tns2.example.net."));
    assert!(!changed.contains("second.at.\t3600\tIN\tNS\tns.example.net."));
    assert_eq!(export(d, T0, "at"), changed);
    // Another zone's serial is its own.
    assert_eq!(serial_of(&export(d, T0, "co.at")), 2026112200);
    // A client hold tomorrow: tomorrow's first serial; outside.at is gone.
    let hold = template(
        "ZON-0201",
        "update",
        "domain:         outside.at\ncommand:        update\nclient-hold:    Y\n",
    );
    send(d, T1, &hold);
    let held = export(d, T1, "at");
    assert_eq!(serial_of(&held), 2026112300);
    assert!(!held.contains("outside.at"), "{held}");
    // The registry lifts serverHold; an export run with an earlier clock
    // still gets a greater serial. held.at and its glue are back.
    set_status(d, T1, "held.at", "off");
    let lifted = parse(&export(d, T0, "at"));
    assert_eq!(lifted.soa.times[0], 2026112301);
    let mut back = at_records(&[
        "held.at NS ns1.held.at",
        "held.at NS ns.example.net",
        "ns1.held.at A 192.0.2.80",
        "second.at NS ns2.example.net",
    ]);
    back.retain(|r| !r.starts_with("outside.at") && r != "second.at NS ns.example.net");
    expect(&lifted, &back);
}

#[test]
fn output_is_atomic_and_records_the_serial_only_when_written() {
    let tmp = registry();
    let d = tmp.path();
    let zones = tempfile::tempdir().unwrap();
    let file = zones.path().join("at.zone");
    // `zone export --output FILE` at T0: its summary line.
    let written_to = |file: &Path| {
        let out = regmail(d, T0)
            .args(["zone", "export", "--zone", "at", "--output"])
            .arg(file)
            .assert()
            .success();
        String::from_utf8_lossy(&out.get_output().stdout).into_owned()
    };
    let summary = written_to(&file);
    assert!(
        summary.contains("serial 2026112200 (new), 4 delegations, 3 glue records"),
        "{summary}"
    );
    assert!(summary.contains("left out: 1 held"), "{summary}");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written, export(d, T0, "at"));
    let names: Vec<_> = std::fs::read_dir(zones.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "a temporary file was left behind");
    // A write that fails: the serial it was given is never used again, and
    // the file in place is untouched.
    set_status(d, T0, "other.at", "on");
    regmail(d, T0)
        .args(["zone", "export", "--zone", "at", "--output"])
        .arg(zones.path().join("missing/at.zone"))
        .assert()
        .failure();
    assert_eq!(std::fs::read_to_string(&file).unwrap(), written);
    let summary = written_to(&file);
    assert!(summary.contains("serial 2026112202 (new)"), "{summary}");
    let now = std::fs::read_to_string(&file).unwrap();
    assert_eq!(serial_of(&now), 2026112202);
    assert!(!now.contains("other.at"), "{now}");
    assert_eq!(export(d, T0, "at"), now);
}

#[test]
fn a_zone_that_is_not_the_profiles_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    regmail(d, T0).arg("init").assert().success();
    for zone in ["example", "net", "muster.at", ""] {
        let out = regmail(d, T0)
            .args(["zone", "export", "--zone", zone])
            .assert()
            .code(64);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(
            stderr.contains("is not one of the profile's zones (at, co.at, or.at)"),
            "{stderr}"
        );
    }
    // With the defaults: the at. zone of an empty registry, parsed.
    let at = parse(&export(d, T0, "AT."));
    assert_eq!(at.soa.mname, "ns1.registry.example");
    assert_eq!(at.soa.rname, ["hostmaster", "registry", "example", ""]);
    assert_eq!(at.soa.ttl, 86400);
    assert_eq!(at.soa.times, [2026112200, 10800, 3600, 1209600, 3600]);
    assert_eq!(at.records.len(), 6);
    assert!(at.records.iter().all(|(_, _, kind, _)| *kind == "NS"));
}

#[test]
fn withdrawn_and_deleted_domains_leave_the_zone_when_the_deletion_executes() {
    let tmp = registry();
    let d = tmp.path();
    // billwithdraw with zone-delete: out at once.
    let withdraw = "domain:         second.at\ncommand:        withdraw\nzone-delete:    Y\n";
    send(d, T0, &template("ZON-0300", "billwithdraw", withdraw));
    let mut expected = at_records(&[]);
    expected.retain(|r| !r.starts_with("second.at"));
    expect(&parse(&export(d, T0, "at")), &expected);
    // A deletion (after the add grace period) waits for the objection
    // period: the domain stays delegated meanwhile.
    let t6 = "2026-11-28T09:00:00Z";
    let delete = "domain:         outside.at\ncommand:        delete\nscheduledate:   now\n";
    send_for(d, t6, &template("ZON-0301", "delete", delete), "pending");
    let waiting = export(d, t6, "at");
    assert_eq!(serial_of(&waiting), 2026112200, "{waiting}");
    expect(&parse(&waiting), &expected);
    // Exported after the deadline, with nothing run in between: the export
    // applies the deletion first; the domain is in redemption, not in the zone.
    let later = "2026-12-13T10:00:00Z";
    let deleted = parse(&export(d, later, "at"));
    assert_eq!(deleted.soa.times[0], 2026121300);
    expected.retain(|r| !r.starts_with("outside.at"));
    expect(&deleted, &expected);
    let query = regmail(d, later)
        .args(["query", "domain", "outside.at"])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&query.get_output().stdout).into_owned();
    assert!(text.contains("redemptionPeriod"), "{text}");
}
