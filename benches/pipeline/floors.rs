//! The stage breakdown: each stage of ours on the same mails, one thread,
//! beside the floor of that stage (the library doing only the irreducible
//! part), measured in the same run and on equal terms (decision 100): the
//! verification floor on mails of its own, since sequoia remembers every
//! signature it verified for the life of the process; policy, like the
//! batch, 64 templates to a transaction.

use super::setup::{Bench, root};
use openpgp::parse::Parse;
use openpgp::parse::stream::{MessageStructure, VerificationHelper, VerifierBuilder};
use openpgp::policy::StandardPolicy;
use regmail::auth::{self, VerifiedBody, Window};
use regmail::intake;
use regmail::policy::{self, Act, Rules};
use regmail::reply::{self, Envelope, ReplyData};
use regmail::template::{self, Spec};
use sequoia_openpgp as openpgp;
use std::hint::black_box;
use std::io::Read;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Templates per transaction, as in the batch's default group.
const GROUP: usize = 64;

/// One row of the table, seconds per template.
pub struct Stage {
    pub name: &'static str,
    pub ours: f64,
    pub floor: f64,
    pub floor_is: &'static str,
}

/// Keeps a result from being optimised away.
fn keep<T>(value: T) -> Res<()> {
    black_box(value);
    Ok(())
}

/// Mean seconds per item of `f` over `items`.
fn per<T>(items: &[T], mut f: impl FnMut(&T) -> Res<()>) -> Res<f64> {
    let start = Instant::now();
    for item in items {
        f(item)?;
    }
    Ok(start.elapsed().as_secs_f64() / items.len().max(1) as f64)
}

/// The mails of the stage table, all of one shape (the same registrars,
/// domain and person creates), none of them verified before.
pub struct StageMails {
    /// The mails every stage of ours and every floor but verification's runs on.
    pub measured: Vec<Vec<u8>>,
    /// The verification floor's own mails.
    pub fresh: Vec<Vec<u8>>,
    /// Verified untimed by both sides first.
    pub warm: Vec<Vec<u8>>,
}

/// The signed blocks `intake` finds in `mails`.
fn signed_blocks(mails: &[Vec<u8>], rules: &regmail::config::MailSettings) -> Res<Vec<String>> {
    mails
        .iter()
        .map(|m| {
            intake::inspect(m, rules)
                .signed_block
                .ok_or_else(|| "no block".into())
        })
        .collect()
}

pub fn stages(bench: &mut Bench, set: &StageMails) -> Res<Vec<Stage>> {
    let config = bench.registry.config.clone();
    let profile = config.profile()?.clone();
    let mails = &set.measured;
    let mut out = Vec::new();

    let ours = per(mails, |m| {
        black_box(intake::inspect(m, &config.mail));
        Ok(())
    })?;
    let floor = per(mails, |m| {
        keep(mail_parser::MessageParser::default().parse(m.as_slice()))
    })?;
    out.push(row("mail parse", ours, floor, "mail-parser parse"));

    let (verify, bodies) = verification(bench, set)?;
    out.push(verify);

    let texts: Vec<&str> = bodies.iter().map(VerifiedBody::text).collect();
    let envelope = per(&texts, |t| {
        keep(template::parse_envelope(t, &config.limits))
    })?;
    let floor = per(&texts, |t| {
        let mut r = quick_xml::Reader::from_str(t);
        while !matches!(r.read_event()?, quick_xml::events::Event::Eof) {}
        Ok(())
    })?;
    out.push(row("envelope", envelope, floor, "quick-xml events"));

    let mut specs = Vec::new();
    let whole = per(&texts, |t| {
        let (_, parsed) = template::parse_template(t, &profile, &config.limits);
        specs.push(parsed.map_err(|e| format!("{e:?}"))?.0);
        Ok(())
    })?;
    let floor = per(&texts, |t| {
        let object = t.split("<![CDATA[").nth(1).unwrap_or("");
        let pairs: Vec<(&str, &str)> = object.lines().filter_map(|l| l.split_once(':')).collect();
        keep(pairs)
    })?;
    out.push(row(
        "objects",
        (whole - envelope).max(0.0),
        floor,
        "key: value line split",
    ));

    let rules = Rules {
        config: &config,
        profile: &profile,
    };
    out.push(policy_stage(bench, rules, &bodies, &specs)?);
    out.push(commit(bench)?);
    out.push(sign(bench, &bodies)?);
    Ok(out)
}

/// Verification beside sequoia verifying alone; the verified bodies.
fn verification(bench: &Bench, set: &StageMails) -> Res<(Stage, Vec<VerifiedBody>)> {
    let (reg, now) = (&bench.registry, bench.now);
    let blocks = signed_blocks(&set.measured, &reg.config.mail)?;
    let fresh = signed_blocks(&set.fresh, &reg.config.mail)?;
    let warm = signed_blocks(&set.warm, &reg.config.mail)?;
    let window = Window {
        max_age: chrono::Duration::hours(72),
        max_future: chrono::Duration::minutes(10),
    };
    let certs = vec![
        openpgp::Cert::from_file(root().join("keys/alice.pub.asc"))?,
        openpgp::Cert::from_file(root().join("keys/bob.pub.asc"))?,
    ];
    let p = StandardPolicy::new();
    let floor_verify = |b: &String| -> Res<()> {
        let helper = Preparsed(certs.clone());
        let mut v =
            VerifierBuilder::from_bytes(b.as_bytes())?.with_policy(&p, Some(now.into()), helper)?;
        let mut text = Vec::new();
        v.read_to_end(&mut text)?;
        keep(text)
    };
    // Untimed, each side on mails of its own: the first verifications of a
    // process pay for its warm-up, which neither side should carry alone.
    for (i, b) in warm.iter().enumerate() {
        if i % 2 == 0 {
            keep(auth::verify(b, &reg.store, now, window)?)?;
        } else {
            floor_verify(b)?;
        }
    }
    let mut bodies = Vec::new();
    let ours = per(&blocks, |b| {
        bodies.push(auth::verify(b, &reg.store, now, window)?.map_err(|r| format!("{r:?}"))?);
        Ok(())
    })?;
    // On mails nobody verified yet: sequoia remembers every signature it
    // verified (a process-wide cache), and on `blocks` the floor would skip
    // the signature arithmetic that `ours` just paid for.
    let floor = per(&fresh, |b| floor_verify(b))?;
    let stage = row("verify", ours, floor, "sequoia verify, certificate parsed");
    Ok((stage, bodies))
}

/// Policy on a group of templates per transaction, as the batch applies
/// them (decision 98), rolled back; beside one indexed write per template,
/// grouped the same way. Fails if policy refuses a template.
fn policy_stage(
    bench: &mut Bench,
    rules: Rules<'_>,
    bodies: &[VerifiedBody],
    specs: &[Spec],
) -> Res<Stage> {
    let (store, now) = (&mut bench.registry.store, bench.now);
    let items: Vec<(String, &VerifiedBody, &Spec)> = bodies
        .iter()
        .zip(specs)
        .enumerate()
        .map(|(i, (body, spec))| (format!("RM-BENCH-{i}"), body, spec))
        .collect();
    let groups: Vec<_> = items.chunks(GROUP).collect();
    let per_template = groups.len() as f64 / items.len().max(1) as f64;
    let mut refused = 0;
    let ours = per(&groups, |group| {
        store.simulate(|tx| {
            for (trid, body, spec) in group.iter() {
                let act = Act {
                    registrar_id: body.signer().registrar_id,
                    now,
                    server_trid: trid,
                    client_trid: None,
                    dry_run: false,
                    secret: "bench-secret",
                };
                if policy::apply(tx, body, spec, rules, act)?.is_err() {
                    refused += 1;
                }
            }
            Ok::<_, regmail::store::StoreError>(())
        })?;
        Ok(())
    })? * per_template;
    if refused > 0 {
        return Err(format!("policy refused {refused} of the stage's templates").into());
    }
    let floor = per(&groups, |group| {
        store.simulate(|tx| {
            for _ in group.iter() {
                black_box(tx.next_sequence("handle")?);
            }
            Ok::<_, regmail::store::StoreError>(())
        })?;
        Ok(())
    })? * per_template;
    Ok(row(
        "policy",
        ours,
        floor,
        "one indexed write per template, 64 a transaction",
    ))
}

fn row(name: &'static str, ours: f64, floor: f64, floor_is: &'static str) -> Stage {
    Stage {
        name,
        ours,
        floor,
        floor_is,
    }
}

/// A group commit of 64 templates' worth of writes, per template, beside
/// the same number of writes committed by plain SQLite on a scratch file.
fn commit(bench: &mut Bench) -> Res<Stage> {
    let rounds = 20;
    let ours = per(&vec![(); rounds], |_| {
        bench.registry.store.write_group(|g| {
            for _ in 0..GROUP {
                let _ = g.unit(|tx| tx.next_sequence("handle"));
            }
        })?;
        Ok(())
    })? / GROUP as f64;
    let scratch = bench.dir.path().join("scratch.sqlite");
    let conn = rusqlite::Connection::open(&scratch)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS n (k INTEGER PRIMARY KEY, v INTEGER); INSERT OR IGNORE INTO n VALUES (1, 0);")?;
    let floor = per(&vec![(); rounds], |_| {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        for _ in 0..GROUP {
            conn.execute("UPDATE n SET v = v + 1 WHERE k = 1", [])?;
        }
        conn.execute_batch("COMMIT")?;
        Ok(())
    })? / GROUP as f64;
    Ok(row(
        "commit",
        ours,
        floor,
        "SQLite FULL-sync commit of 64 writes / 64",
    ))
}

/// Composing the signed reply (render, clearsign, MIME) beside clearsigning
/// the same text alone.
fn sign(bench: &Bench, bodies: &[VerifiedBody]) -> Res<Stage> {
    let reg = &bench.registry;
    let data: Vec<ReplyData> = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| ReplyData {
            registrar_id: Some(b.signer().registrar_id),
            transaction: Some("create".into()),
            client_trid: Some(format!("S-{i}")),
            object: Some(format!("bench-s{i}.at")),
            quoted: Some(b.text().to_string()),
            ..ReplyData::new(&format!("RM-{i}"), bench.now)
        })
        .collect();
    let env = Envelope {
        to: "hostmaster@alpine-domains.test",
        in_reply_to: None,
        message_id: None,
    };
    let ours = per(&data, |d| {
        keep(reply::compose(&reg.config, &reg.key, d, &env, bench.now)?)
    })?;
    let texts: Vec<String> = data.iter().map(reply::render_body).collect();
    let floor = per(&texts, |t| keep(reg.key.clearsign(t, bench.now)?))?;
    Ok(row(
        "reply sign",
        ours,
        floor,
        "sequoia clearsign of the reply text",
    ))
}

/// Delivering replies into the file outbox (regmail's durable file
/// transport, 64 mails a call as a batch group does) beside plain
/// create, write, fsync and rename of the same bytes, one file after the
/// other, and one directory fsync per 64. Outside the stage sum (not one of
/// the stages): it shows what this file system charges for a new
/// file right now (ext4 without a journal skips recently deleted inodes one
/// by one, so creating files minutes after deleting many costs far more).
pub fn deliver(bench: &Bench, n: usize) -> Res<Stage> {
    let config = &bench.registry.config;
    let mails: Vec<regmail::store::OutboxMail> = (0..n)
        .map(|i| regmail::store::OutboxMail {
            id: i as i64 + 1,
            server_trid: format!("RM{i:010}"),
            recipient: "hostmaster@alpine-domains.test".into(),
            message: vec![b'x'; 3000],
            attempts: 0,
            delivered: None,
            last_error: None,
            capped: false,
        })
        .collect();
    let ours_dir = bench.dir.path().join("deliver-ours");
    std::fs::create_dir_all(&ours_dir)?;
    let start = Instant::now();
    for chunk in mails.chunks(GROUP) {
        let sent = reply::send(config, &ours_dir, chunk, bench.now);
        if sent.report.delivered != chunk.len() {
            return Err("the file outbox refused a mail".into());
        }
    }
    let ours = start.elapsed().as_secs_f64() / n as f64;
    let floor_dir = bench.dir.path().join("deliver-floor");
    std::fs::create_dir_all(&floor_dir)?;
    let start = Instant::now();
    for chunk in mails.chunks(GROUP) {
        for m in chunk {
            use std::io::Write;
            let tmp = floor_dir.join(format!(".{}.tmp", m.server_trid));
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&m.message)?;
            f.sync_all()?;
            std::fs::rename(&tmp, floor_dir.join(&m.server_trid))?;
        }
        std::fs::File::open(&floor_dir)?.sync_all()?;
    }
    let floor = start.elapsed().as_secs_f64() / n as f64;
    Ok(row(
        "deliver",
        ours,
        floor,
        "create, write, fsync, rename a file",
    ))
}

/// A verification helper with the certificates already parsed.
struct Preparsed(Vec<openpgp::Cert>);

impl VerificationHelper for Preparsed {
    fn get_certs(&mut self, _: &[openpgp::KeyHandle]) -> openpgp::Result<Vec<openpgp::Cert>> {
        Ok(self.0.clone())
    }
    fn check(&mut self, _: MessageStructure<'_>) -> openpgp::Result<()> {
        Ok(())
    }
}
