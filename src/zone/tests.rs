//! Unit tests of the zone builder, the formatter and the serial.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::store::{ZoneHost, ZoneSerialRow};
use chrono::NaiveDate;

fn zones() -> Vec<String> {
    vec!["at".into(), "co.at".into(), "or.at".into()]
}

fn settings() -> ZoneSettings {
    let mut s = ZoneSettings {
        primary: "ns1.nic.at".into(),
        hostmaster: "dns.admin@nic.at".into(),
        nameservers: vec!["ns1.nic.at".into(), "ns.registry.example".into()],
        ttl: 3600,
        refresh: 7200,
        retry: 900,
        expire: 604_800,
        minimum: 300,
        ..ZoneSettings::default()
    };
    s.addresses.insert(
        "ns1.nic.at".into(),
        vec!["2001:db8::1".parse().unwrap(), "192.0.2.1".parse().unwrap()],
    );
    s
}

fn apex() -> Apex {
    Apex::new(&settings(), &zones()).unwrap()
}

fn host(name: &str, addrs: &[&str]) -> ZoneHost {
    ZoneHost {
        name: name.into(),
        addresses: addrs.iter().map(|a| a.to_string()).collect(),
    }
}

fn domain(name: &str, hosts: Vec<ZoneHost>) -> ZoneDomain {
    ZoneDomain {
        name: name.into(),
        client_hold: false,
        server_hold: false,
        zone_delete: false,
        deleted: false,
        nameservers: hosts,
    }
}

/// A registry's worth of domains under `at`, in store order.
fn domains() -> Vec<ZoneDomain> {
    let glue = || host("ns1.muster.at", &["192.0.2.53", "2001:db8::53"]);
    let mut held = domain("held.at", vec![host("ns1.held.at", &["192.0.2.80"])]);
    held.server_hold = true;
    let mut client_held = domain("client.at", vec![host("ns.example.net", &[])]);
    client_held.client_hold = true;
    let mut redemption = domain("gone.at", vec![host("ns.example.net", &[])]);
    redemption.deleted = true;
    let mut withdrawn = domain("billed.at", vec![host("ns.example.net", &[])]);
    withdrawn.zone_delete = true;
    vec![
        domain("bare.at", vec![]),
        withdrawn,
        client_held,
        domain(
            "firma.co.at",
            vec![host("ns1.firma.co.at", &["192.0.2.90"]), glue()],
        ),
        redemption,
        held,
        domain("muster.at", vec![glue(), host("ns.example.net", &[])]),
        domain("other.at", vec![host("ns1.held.at", &["192.0.2.80"])]),
        // Stored addresses of an out-of-zone host (profile `all`): no glue.
        domain(
            "second.at",
            vec![glue(), host("ns.example.com", &["198.51.100.7"])],
        ),
    ]
}

const AT_ZONE: &str = "; zone at. written by regmail
$ORIGIN at.
$TTL 3600
at.\t3600\tIN\tSOA\tns1.nic.at. dns\\.admin.nic.at. 2026112200 7200 900 604800 300
at.\t3600\tIN\tNS\tns1.nic.at.
at.\t3600\tIN\tNS\tns.registry.example.
co.at.\t3600\tIN\tNS\tns1.nic.at.
co.at.\t3600\tIN\tNS\tns.registry.example.
muster.at.\t3600\tIN\tNS\tns1.muster.at.
muster.at.\t3600\tIN\tNS\tns.example.net.
ns1.muster.at.\t3600\tIN\tA\t192.0.2.53
ns1.muster.at.\t3600\tIN\tAAAA\t2001:db8::53
ns1.nic.at.\t3600\tIN\tA\t192.0.2.1
ns1.nic.at.\t3600\tIN\tAAAA\t2001:db8::1
or.at.\t3600\tIN\tNS\tns1.nic.at.
or.at.\t3600\tIN\tNS\tns.registry.example.
other.at.\t3600\tIN\tNS\tns1.held.at.
second.at.\t3600\tIN\tNS\tns1.muster.at.
second.at.\t3600\tIN\tNS\tns.example.com.
";

#[test]
fn the_at_zone_record_by_record() {
    let zone = build("at", &apex(), &domains()).unwrap();
    assert_eq!(zone.render(2026112200), AT_ZONE);
    assert_eq!(
        zone.counts,
        Counts {
            delegated: 3,
            held: 2,
            withdrawn: 2,
            without_nameservers: 1,
            glue: 2,
        }
    );
}

#[test]
fn a_sub_zone_has_its_own_domains_and_glue() {
    let zone = build("co.at", &apex(), &domains()).unwrap();
    let text = zone.render(7);
    let records: Vec<&str> = text.lines().skip(4).collect();
    assert!(text.contains("co.at.\t3600\tIN\tSOA\tns1.nic.at. dns\\.admin.nic.at. 7 "));
    assert_eq!(
        records,
        [
            "co.at.\t3600\tIN\tNS\tns1.nic.at.",
            "co.at.\t3600\tIN\tNS\tns.registry.example.",
            "firma.co.at.\t3600\tIN\tNS\tns1.firma.co.at.",
            "firma.co.at.\t3600\tIN\tNS\tns1.muster.at.",
            "ns1.firma.co.at.\t3600\tIN\tA\t192.0.2.90",
        ]
    );
    let empty = build("or.at", &apex(), &domains()).unwrap().render(7);
    assert_eq!(empty.lines().count(), 6, "{empty}");
}

#[test]
fn the_same_data_in_any_order_gives_the_same_bytes() {
    let a = build("at", &apex(), &domains()).unwrap();
    let mut shuffled = domains();
    shuffled.reverse();
    for d in &mut shuffled {
        d.nameservers.reverse();
    }
    let b = build("at", &apex(), &shuffled).unwrap();
    assert_eq!(a.render(1), b.render(1));
    assert_eq!(a.digest(), b.digest());
    // The serial is not part of the digest; everything else is.
    assert_ne!(a.render(1), a.render(2));
    let mut s = settings();
    s.minimum = 301;
    let c = build("at", &Apex::new(&s, &zones()).unwrap(), &domains()).unwrap();
    assert_ne!(a.digest(), c.digest());
    let mut fewer = domains();
    fewer.pop();
    assert_ne!(a.digest(), build("at", &apex(), &fewer).unwrap().digest());
}

#[test]
fn default_settings_have_no_apex_glue() {
    let zone = Apex::new(&ZoneSettings::default(), &zones()).unwrap();
    let text = build("at", &zone, &[]).unwrap().render(1);
    assert_eq!(
        text,
        "; zone at. written by regmail\n$ORIGIN at.\n$TTL 86400\n\
         at.\t86400\tIN\tSOA\tns1.registry.example. hostmaster.registry.example. 1 10800 3600 1209600 3600\n\
         at.\t86400\tIN\tNS\tns1.registry.example.\n\
         at.\t86400\tIN\tNS\tns2.registry.example.\n\
         co.at.\t86400\tIN\tNS\tns1.registry.example.\n\
         co.at.\t86400\tIN\tNS\tns2.registry.example.\n\
         or.at.\t86400\tIN\tNS\tns1.registry.example.\n\
         or.at.\t86400\tIN\tNS\tns2.registry.example.\n"
    );
}

#[test]
fn bad_settings_are_refused() {
    type Change = Box<dyn Fn(&mut ZoneSettings)>;
    let cases: Vec<(&str, Change)> = vec![
        ("empty", Box::new(|s| s.nameservers.clear())),
        ("primary", Box::new(|s| s.primary = "a..b".into())),
        ("hostmaster", Box::new(|s| s.hostmaster = "nobody".into())),
        ("needs addresses", Box::new(|s| s.addresses.clear())),
        (
            "outside",
            Box::new(|s| {
                s.addresses.insert(
                    "ns.registry.example".into(),
                    vec!["192.0.2.9".parse().unwrap()],
                );
            }),
        ),
        (
            "not one of",
            Box::new(|s| {
                s.addresses
                    .insert("ns9.nic.at".into(), vec!["192.0.2.9".parse().unwrap()]);
            }),
        ),
        ("2147483647", Box::new(|s| s.expire = u32::MAX)),
    ];
    for (what, change) in cases {
        let mut s = settings();
        change(&mut s);
        let err = Apex::new(&s, &zones()).unwrap_err().to_string();
        assert!(err.contains(what), "{what}: {err}");
    }
}

#[test]
fn a_corrupt_stored_value_is_an_error_not_a_line() {
    let bad = [
        domain("a..at", vec![host("ns.example.net", &[])]),
        domain("x.at", vec![host("ns1.x.at", &["not-an-ip"])]),
    ];
    for d in bad {
        assert!(matches!(
            build("at", &apex(), &[d]),
            Err(ZoneError::Stored { .. })
        ));
    }
}

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn state(issued: u32, published: Option<u32>, digest: &str) -> ZoneSerialRow {
    ZoneSerialRow {
        issued,
        published,
        digest: published.map(|_| digest.to_string()),
    }
}

#[test]
fn serials_follow_the_date_and_never_repeat() {
    let today = day("2026-11-22");
    let fresh = |value| Serial { value, fresh: true };
    // The first export of a zone.
    assert_eq!(serial(None, "d1", today).unwrap(), fresh(2026112200));
    // Unchanged content: the same serial, on any later day too.
    let s = state(2026112200, Some(2026112200), "d1");
    let same = Serial {
        value: 2026112200,
        fresh: false,
    };
    assert_eq!(serial(Some(&s), "d1", today).unwrap(), same);
    assert_eq!(serial(Some(&s), "d1", day("2027-01-01")).unwrap(), same);
    // Changed content: the next number today, the date on a later day.
    assert_eq!(serial(Some(&s), "d2", today).unwrap(), fresh(2026112201));
    assert_eq!(
        serial(Some(&s), "d2", day("2026-11-23")).unwrap(),
        fresh(2026112300)
    );
    // A clock that went back still gives a greater serial.
    assert_eq!(
        serial(Some(&s), "d2", day("2026-01-01")).unwrap(),
        fresh(2026112201)
    );
    // The 100th change of a day borrows from the next date.
    let s99 = state(2026112299, Some(2026112299), "d1");
    assert_eq!(serial(Some(&s99), "d2", today).unwrap(), fresh(2026112300));
    // A serial issued but never published (a failed write): never reused,
    // even for the content published before it.
    let burnt = state(2026112201, Some(2026112200), "d1");
    assert_eq!(
        serial(Some(&burnt), "d1", today).unwrap(),
        fresh(2026112202)
    );
    let never = ZoneSerialRow {
        issued: 2026112200,
        published: None,
        digest: None,
    };
    assert_eq!(
        serial(Some(&never), "d1", today).unwrap(),
        fresh(2026112201)
    );
    // The end of the 32-bit range.
    let last = state(u32::MAX, Some(u32::MAX), "d1");
    assert!(matches!(
        serial(Some(&last), "d2", today),
        Err(ZoneError::SerialExhausted(_))
    ));
    assert_eq!(serial(Some(&last), "d1", today).unwrap().value, u32::MAX);
    // Past year 4294 the date no longer fits: plus 1.
    let late = state(4_000_000_000, Some(4_000_000_000), "d1");
    assert_eq!(
        serial(Some(&late), "d2", day("5000-01-01")).unwrap(),
        fresh(4_000_000_001)
    );
}
