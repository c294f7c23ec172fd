//! Model-based property test (issue 3): random sequences of templates from two
//! registrars (person and domain creates, updates, locks, holder changes,
//! transfers, deletes, undeletes, person changes and deletes, and invalid
//! templates) go through the whole pipeline, signed, and through a small
//! reference model written here. After every step the decision (result and
//! error codes) and the visible state (domains, sponsors, contacts, locks,
//! pending requests, persons) must agree.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use proptest::prelude::*;
use regmail::auth::SigningKey;
use regmail::clock::FixedClock;
use regmail::config::Config;
use regmail::ids::SeededIds;
use regmail::pipeline::{self, Disposition, Mode, Registry};
use regmail::reply::Outcome;
use regmail::store::{NewRegistrar, Store};
use std::collections::{BTreeMap, BTreeSet};

const NAMES: [(&str, &str); 4] = [
    ("Anna Muster", "AM"),
    ("Bert Berger", "BB"),
    ("Clara Christ", "CC"),
    ("Dora Dach", "DD"),
];
const DOMAINS: [&str; 4] = ["alpha.at", "beta.at", "gamma.at", "delta.co.at"];
const REGISTRARS: [u32; 2] = [1001, 1002];

/// One template a registrar sends; indices pick from the model's state.
#[derive(Debug, Clone)]
enum Step {
    PersCreate {
        r: usize,
        name: usize,
    },
    Create {
        r: usize,
        domain: usize,
        registrant: usize,
        tech: usize,
    },
    Update {
        r: usize,
        domain: usize,
        tech: usize,
    },
    Lock {
        r: usize,
        domain: usize,
        on: bool,
    },
    HolderChange {
        r: usize,
        domain: usize,
        registrant: usize,
    },
    Delete {
        r: usize,
        domain: usize,
    },
    Undelete {
        r: usize,
        domain: usize,
    },
    Transfer {
        r: usize,
        domain: usize,
    },
    PersUpdate {
        r: usize,
        handle: usize,
        city: usize,
    },
    PersDelete {
        r: usize,
        handle: usize,
    },
    Invalid {
        r: usize,
    },
}

fn step() -> impl Strategy<Value = Step> {
    let r = 0..2usize;
    prop_oneof![
        3 => (r.clone(), 0..4usize).prop_map(|(r, name)| Step::PersCreate { r, name }),
        3 => (r.clone(), 0..4usize, 0..10usize, 0..10usize)
            .prop_map(|(r, domain, registrant, tech)| Step::Create { r, domain, registrant, tech }),
        1 => (r.clone(), 0..4usize, 0..10usize).prop_map(|(r, domain, tech)| Step::Update { r, domain, tech }),
        1 => (r.clone(), 0..4usize, any::<bool>()).prop_map(|(r, domain, on)| Step::Lock { r, domain, on }),
        1 => (r.clone(), 0..4usize, 0..10usize)
            .prop_map(|(r, domain, registrant)| Step::HolderChange { r, domain, registrant }),
        1 => (r.clone(), 0..4usize).prop_map(|(r, domain)| Step::Delete { r, domain }),
        1 => (r.clone(), 0..4usize).prop_map(|(r, domain)| Step::Undelete { r, domain }),
        1 => (r.clone(), 0..4usize).prop_map(|(r, domain)| Step::Transfer { r, domain }),
        1 => (r.clone(), 0..10usize, 0..3usize).prop_map(|(r, handle, city)| Step::PersUpdate { r, handle, city }),
        1 => (r.clone(), 0..10usize).prop_map(|(r, handle)| Step::PersDelete { r, handle }),
        1 => r.prop_map(|r| Step::Invalid { r }),
    ]
}

const CITIES: [&str; 3] = ["Wien", "Graz", "Linz"];

#[derive(Debug, Clone, PartialEq, Eq)]
struct MPerson {
    owner: u32,
    city: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct MDomain {
    sponsor: u32,
    /// (role, handle) in the store's position order.
    contacts: Vec<(String, String)>,
    lock: bool,
    pending: Option<&'static str>,
}

#[derive(Debug, Default)]
struct Model {
    persons: BTreeMap<String, MPerson>,
    /// Every handle ever made, in order (deleted ones too), for picking.
    handles: Vec<String>,
    domains: BTreeMap<String, MDomain>,
    /// Objects with an open pending request of a person (person-update).
    person_pending: BTreeSet<String>,
    /// The new holder each waiting holder change names, by domain.
    holder_pending: BTreeMap<String, String>,
    seq: u32,
}

/// What the model expects: the result and the error codes.
type Expect = (Outcome, BTreeSet<u16>);

fn ok() -> Expect {
    (Outcome::Success, BTreeSet::new())
}

fn fail(codes: &[u16]) -> Expect {
    (Outcome::Failed, codes.iter().copied().collect())
}

impl Model {
    /// A handle for registrar `r`: mostly one of its own live handles, at
    /// times anyone's (`i == 8`) or an unknown one (`i == 9`).
    fn pick(&self, r: u32, i: usize) -> String {
        let own: Vec<&String> = self.handles.iter().filter(|h| self.usable(r, h)).collect();
        match i {
            0..=7 if !own.is_empty() => own[i % own.len()].clone(),
            8 if !self.handles.is_empty() => self.handles[i % self.handles.len()].clone(),
            _ => "ZZ9999-NICAT".into(),
        }
    }

    fn usable(&self, r: u32, h: &str) -> bool {
        self.persons.get(h).is_some_and(|p| p.owner == r)
    }

    /// A holder now, or named by a waiting holder change.
    fn is_holder(&self, h: &str) -> bool {
        let now = self.domains.values().any(|d| {
            d.contacts
                .iter()
                .any(|(role, x)| role == "registrant" && x == h)
        });
        now || self.holder_pending.values().any(|x| x == h)
    }

    /// Used by a domain now, or named by a waiting holder change.
    fn in_use(&self, h: &str) -> bool {
        let now = self
            .domains
            .values()
            .any(|d| d.contacts.iter().any(|(_, x)| x == h));
        now || self.holder_pending.values().any(|x| x == h)
    }

    /// 6103/6104, else the domain.
    fn sponsored(&self, r: u32, name: &str, codes: &mut BTreeSet<u16>) -> Option<MDomain> {
        match self.domains.get(name) {
            None => {
                codes.insert(6103);
                None
            }
            Some(d) if d.sponsor != r => {
                codes.insert(6104);
                None
            }
            Some(d) => Some(d.clone()),
        }
    }

    /// The status rules for update (flags_only), delete and transfer.
    fn status(d: &MDomain, op: &str, codes: &mut BTreeSet<u16>) {
        match d.pending {
            Some("transfer") => {
                codes.insert(6106);
            }
            Some(_) => {
                codes.insert(6105);
            }
            None if d.lock && op != "flags" => {
                codes.insert(6105);
            }
            None => {}
        }
    }

    fn apply(&mut self, s: &Step) -> Expect {
        match s {
            Step::PersCreate { name, .. } => {
                let h = format!("{}{}-NICAT", NAMES[*name].1, 1001 + self.seq);
                self.seq += 1;
                self.persons.insert(
                    h.clone(),
                    MPerson {
                        owner: REGISTRARS[r(s)],
                        city: "Wien".into(),
                    },
                );
                self.handles.push(h);
                ok()
            }
            Step::Create {
                domain,
                registrant,
                tech,
                ..
            } => self.create(REGISTRARS[r(s)], DOMAINS[*domain], *registrant, *tech),
            Step::Update { domain, tech, .. } => {
                self.update(REGISTRARS[r(s)], DOMAINS[*domain], *tech)
            }
            Step::Lock { domain, on, .. } => {
                let mut codes = BTreeSet::new();
                let Some(d) = self.sponsored(REGISTRARS[r(s)], DOMAINS[*domain], &mut codes) else {
                    return (Outcome::Failed, codes);
                };
                Self::status(&d, "flags", &mut codes);
                if !codes.is_empty() {
                    return (Outcome::Failed, codes);
                }
                self.domains.get_mut(DOMAINS[*domain]).unwrap().lock = *on;
                ok()
            }
            Step::HolderChange {
                domain, registrant, ..
            } => self.holder_change(REGISTRARS[r(s)], DOMAINS[*domain], *registrant),
            Step::Delete { domain, .. } => {
                self.pending_op(REGISTRARS[r(s)], DOMAINS[*domain], "delete")
            }
            Step::Undelete { domain, .. } => {
                let mut codes = BTreeSet::new();
                let Some(d) = self.sponsored(REGISTRARS[r(s)], DOMAINS[*domain], &mut codes) else {
                    return (Outcome::Failed, codes);
                };
                if d.pending != Some("delete") {
                    return fail(&[6108]);
                }
                self.domains.get_mut(DOMAINS[*domain]).unwrap().pending = None;
                ok()
            }
            Step::Transfer { domain, .. } => self.transfer(REGISTRARS[r(s)], DOMAINS[*domain]),
            Step::PersUpdate { handle, city, .. } => {
                self.pers_update(REGISTRARS[r(s)], *handle, CITIES[*city])
            }
            Step::PersDelete { handle, .. } => {
                let h = self.pick(REGISTRARS[r(s)], *handle);
                match self.persons.get(&h) {
                    None => fail(&[6201]),
                    Some(p) if p.owner != REGISTRARS[r(s)] => fail(&[6202]),
                    Some(_) => {
                        let mut codes = BTreeSet::new();
                        if self.person_pending.contains(&h) {
                            codes.insert(6105);
                        }
                        if self.in_use(&h) {
                            codes.insert(6204);
                        }
                        if !codes.is_empty() {
                            return (Outcome::Failed, codes);
                        }
                        self.persons.remove(&h);
                        ok()
                    }
                }
            }
            Step::Invalid { .. } => fail(&[5202]),
        }
    }

    fn create(&mut self, r: u32, name: &str, registrant: usize, tech: usize) -> Expect {
        let (reg, tech) = (self.pick(r, registrant), self.pick(r, tech));
        let mut codes = BTreeSet::new();
        if self.domains.contains_key(name) {
            codes.insert(6101);
        }
        if !self.usable(r, &reg) || !self.usable(r, &tech) {
            codes.insert(6102);
        }
        if !codes.is_empty() {
            return (Outcome::Failed, codes);
        }
        let contacts = vec![
            ("registrant".to_string(), reg),
            ("tech-c".to_string(), tech),
        ];
        self.domains.insert(
            name.to_string(),
            MDomain {
                sponsor: r,
                contacts,
                lock: false,
                pending: None,
            },
        );
        ok()
    }

    fn update(&mut self, r: u32, name: &str, tech: usize) -> Expect {
        let tech = self.pick(r, tech);
        let mut codes = BTreeSet::new();
        let Some(d) = self.sponsored(r, name, &mut codes) else {
            return (Outcome::Failed, codes);
        };
        Self::status(&d, "update", &mut codes);
        if !self.usable(r, &tech) {
            codes.insert(6102);
        }
        if !codes.is_empty() {
            return (Outcome::Failed, codes);
        }
        let d = self.domains.get_mut(name).unwrap();
        d.contacts.retain(|(role, _)| role != "tech-c");
        d.contacts.push(("tech-c".into(), tech));
        ok()
    }

    fn holder_change(&mut self, r: u32, name: &str, registrant: usize) -> Expect {
        let h = self.pick(r, registrant);
        let mut codes = BTreeSet::new();
        let Some(d) = self.sponsored(r, name, &mut codes) else {
            return (Outcome::Failed, codes);
        };
        Self::status(&d, "update", &mut codes);
        if !self.usable(r, &h) {
            codes.insert(6102);
        }
        if !codes.is_empty() {
            return (Outcome::Failed, codes);
        }
        if d.contacts
            .iter()
            .any(|(role, x)| role == "registrant" && *x == h)
        {
            return ok();
        }
        self.domains.get_mut(name).unwrap().pending = Some("update");
        self.holder_pending.insert(name.to_string(), h);
        (Outcome::Pending, BTreeSet::new())
    }

    fn pending_op(&mut self, r: u32, name: &str, kind: &'static str) -> Expect {
        let mut codes = BTreeSet::new();
        let Some(d) = self.sponsored(r, name, &mut codes) else {
            return (Outcome::Failed, codes);
        };
        Self::status(&d, kind, &mut codes);
        if !codes.is_empty() {
            return (Outcome::Failed, codes);
        }
        self.domains.get_mut(name).unwrap().pending = Some(kind);
        (Outcome::Pending, BTreeSet::new())
    }

    fn transfer(&mut self, r: u32, name: &str) -> Expect {
        match self.domains.get(name) {
            None => fail(&[6103]),
            Some(d) if d.sponsor == r => fail(&[6110]),
            Some(d) => {
                let mut codes = BTreeSet::new();
                Self::status(d, "transfer", &mut codes);
                if !codes.is_empty() {
                    return (Outcome::Failed, codes);
                }
                self.domains.get_mut(name).unwrap().pending = Some("transfer");
                (Outcome::Pending, BTreeSet::new())
            }
        }
    }

    fn pers_update(&mut self, r: u32, handle: usize, city: &str) -> Expect {
        let h = self.pick(r, handle);
        match self.persons.get(&h) {
            None => fail(&[6201]),
            Some(p) if p.owner != r => fail(&[6202]),
            Some(_) if self.person_pending.contains(&h) => fail(&[6105]),
            Some(p) if p.city == city => ok(),
            Some(_) if self.is_holder(&h) => {
                self.person_pending.insert(h);
                (Outcome::Pending, BTreeSet::new())
            }
            Some(_) => {
                self.persons.get_mut(&h).unwrap().city = city.to_string();
                ok()
            }
        }
    }
}

fn r(s: &Step) -> usize {
    match s {
        Step::PersCreate { r, .. }
        | Step::Create { r, .. }
        | Step::Update { r, .. }
        | Step::Lock { r, .. }
        | Step::HolderChange { r, .. }
        | Step::Delete { r, .. }
        | Step::Undelete { r, .. }
        | Step::Transfer { r, .. }
        | Step::PersUpdate { r, .. }
        | Step::PersDelete { r, .. }
        | Step::Invalid { r } => *r,
    }
}

/// The object text of a step's template (the model picks the handles).
fn object(s: &Step, m: &Model) -> (&'static str, String) {
    let domain = |d: usize| DOMAINS[d];
    let reg = REGISTRARS[r(s)];
    match s {
        Step::PersCreate { name, .. } => (
            "perscreate",
            format!(
                "nic-hdl: AUTO\ncommand: create\ntype: NAT\npersonname: {}\nstreet address: Hauptstrasse 1\n\
                 postal code: 1010\ncity: Wien\ncountry: AT\nphone: +4315056416\ne-mail: p@example.at\n",
                NAMES[*name].0
            ),
        ),
        Step::Create { domain: d, registrant, tech, .. } => (
            "create",
            format!(
                "domain: {}\ncommand: create\nregistrant: {}\ntech-c: {}\nnserver: ns1.example.net\nnserver: ns2.example.net\n",
                domain(*d),
                m.pick(reg, *registrant),
                m.pick(reg, *tech)
            ),
        ),
        Step::Update { domain: d, tech, .. } => ("update", format!("domain: {}\ncommand: update\ntech-c: {}\n", domain(*d), m.pick(reg, *tech))),
        Step::Lock { domain: d, on, .. } => {
            ("update", format!("domain: {}\ncommand: update\nclient-lock: {}\n", domain(*d), if *on { "Y" } else { "N" }))
        }
        Step::HolderChange { domain: d, registrant, .. } => {
            ("update", format!("domain: {}\ncommand: update\nregistrant: {}\n", domain(*d), m.pick(reg, *registrant)))
        }
        Step::Delete { domain: d, .. } => ("delete", format!("domain: {}\ncommand: delete\nscheduledate: now\n", domain(*d))),
        Step::Undelete { domain: d, .. } => ("undelete", format!("domain: {}\ncommand: undelete\n", domain(*d))),
        Step::Transfer { domain: d, .. } => ("regtransfer", format!("domain: {}\ncommand: transfer\n", domain(*d))),
        Step::PersUpdate { handle, city, .. } => {
            ("persupdate", format!("nic-hdl: {}\ncommand: update\ncity: {}\n", m.pick(reg, *handle), CITIES[*city]))
        }
        Step::PersDelete { handle, .. } => ("persdelete", format!("nic-hdl: {}\ncommand: delete\n", m.pick(reg, *handle))),
        Step::Invalid { .. } => (
            "create",
            "domain: not_valid.at\ncommand: create\nregistrant: AM1001-NICAT\ntech-c: AM1001-NICAT\n\
             nserver: ns1.example.net\nnserver: ns2.example.net\n"
                .to_string(),
        ),
    }
}

struct World {
    reg: Registry,
    keys: [SigningKey; 2],
    _dir: tempfile::TempDir,
    n: usize,
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open_in_memory().unwrap();
    for (id, name) in [(1001, "alice"), (1002, "bob")] {
        let data = std::fs::read(support::root().join(format!("keys/{name}.pub.asc"))).unwrap();
        let cert = regmail::auth::parse_certificate(&data).unwrap();
        let email = format!("{name}@example.test");
        let new = NewRegistrar {
            id,
            name,
            email: &email,
            fingerprint: &cert.fingerprint,
            cert: &cert.bytes,
            key_handles: &cert.key_handles,
        };
        store
            .register(&new, "2026-01-01T00:00:00Z")
            .unwrap()
            .unwrap();
    }
    let key =
        |n: &str| SigningKey::load(&support::root().join(format!("keys/{n}.sec.asc"))).unwrap();
    // The model covers the command rules; the lifecycle (add grace, quality
    // control) has its own scenarios and property test.
    let config = Config::parse("[profiles.at]\nadd_grace_days = 0\nqc_every = 0\n").unwrap();
    let reg = Registry {
        config,
        store,
        key: key("trent"),
        clock: Box::new(FixedClock(support::now())),
        ids: Box::new(SeededIds::default()),
        data_dir: dir.path().to_path_buf(),
    };
    World {
        reg,
        keys: [key("alice"), key("bob")],
        _dir: dir,
        n: 0,
    }
}

impl World {
    /// Signs and handles one step; returns the result and the error codes.
    fn send(&mut self, s: &Step, m: &Model) -> Expect {
        self.n += 1;
        let (transaction, object) = object(s, m);
        let rid = REGISTRARS[r(s)];
        let text = format!(
            "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n<regframe>\n<regheader>\n<version>1.1</version>\n\
             <transaction>{transaction}</transaction>\n<count>1</count>\n<registrar-id>{rid}</registrar-id>\n\
             <client-trid>MODEL-{}</client-trid>\n</regheader>\n<regbody><![CDATA[\nTemplate Version: 5.0\n\n\
             {object}source: AT-DOM\n\ncurrentNicAtTermsAndConditionsAccepted: Y\n]]></regbody>\n</regframe>\n",
            self.n
        );
        let signed_at = chrono::DateTime::parse_from_rfc3339("2026-11-22T08:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let body = self.keys[r(s)].clearsign(&text, signed_at).unwrap();
        let mail = format!(
            "From: x@example.test\nSubject: REGISTRAR: {rid}\nMessage-ID: <m{}@example.test>\n\n{body}",
            self.n
        );
        let h = pipeline::handle(&mut self.reg, mail.as_bytes(), Mode::Commit).unwrap();
        let Disposition::Answered(outcome) = h.disposition else {
            panic!("not answered: {h:?}")
        };
        (
            outcome,
            h.codes.iter().copied().filter(|c| *c >= 4000).collect(),
        )
    }

    /// The visible state, compared with the model's.
    fn agrees(&self, m: &Model) -> Result<(), String> {
        for name in DOMAINS {
            let got = self.reg.store.domain(name).unwrap();
            match (got, m.domains.get(name)) {
                (None, None) => {}
                (Some(d), Some(want)) => {
                    let seen = MDomain {
                        sponsor: d.registrar_id,
                        contacts: d.contacts.clone(),
                        lock: d.flags.client_lock,
                        pending: want.pending,
                    };
                    if seen != *want || d.pending.as_deref() != want.pending {
                        return Err(format!("{name}: store {d:?} model {want:?}"));
                    }
                }
                (got, want) => return Err(format!("{name}: store {got:?} model {want:?}")),
            }
        }
        for h in &m.handles {
            let got = self.reg.store.person(h).unwrap().map(|p| MPerson {
                owner: p.registrar_id,
                city: p.data.city,
            });
            if got.as_ref() != m.persons.get(h) {
                return Err(format!("{h}: store {got:?} model {:?}", m.persons.get(h)));
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_shrink_iters: 500, ..ProptestConfig::default() })]

    #[test]
    fn regmail_agrees_with_the_model(steps in prop::collection::vec(step(), 50)) {
        let mut world = world();
        let mut model = Model::default();
        for (i, s) in steps.iter().enumerate() {
            let got = world.send(s, &model);
            let want = model.apply(s);
            prop_assert_eq!(&got, &want, "step {} {:?}", i, s);
            if let Err(e) = world.agrees(&model) {
                prop_assert!(false, "state after step {} {:?}: {}", i, s, e);
            }
        }
    }
}
