//! `cargo bench --bench hostile`: how fast hostile mails are refused.
//!
//! Runs each mail through the whole pipeline (mail layer, signature, envelope,
//! object, policy, reply signing) in a transaction that is rolled back, and
//! prints the time per mail beside a normal signed template's, measured in
//! the same run: a 10 MiB mail (4014), a billion-laughs envelope (5001), an
//! envelope nested too deep (5001) and an object over the size limit (4014).

use regmail::app::{DEMO_NOW, setup};
use regmail::config::Config;
use regmail::pipeline::{self, Mode};
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn case(name: &str) -> std::io::Result<Vec<u8>> {
    std::fs::read(root().join("tests/cases/hostile-limits").join(name))
}

fn ten_mib() -> Vec<u8> {
    let mut m = b"From: hostmaster@alpine-domains.test\nSubject: REGISTRAR: big\n\n".to_vec();
    let line = [b'x'; 63];
    while m.len() < 10 * 1024 * 1024 {
        m.extend_from_slice(&line);
        m.push(b'\n');
    }
    m
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tmp = tempfile::tempdir()?;
    let now = chrono::DateTime::parse_from_rfc3339(DEMO_NOW)?.with_timezone(&chrono::Utc);
    let trent = root().join("keys/trent.sec.asc");
    let mut reg = setup(
        tmp.path(),
        &root().join("keys"),
        Some(&trent),
        Config::default(),
        now,
    )?;
    let mails = [
        (
            "normal template (baseline)",
            case("05-within-the-limits.eml")?,
        ),
        ("10 MiB mail", ten_mib()),
        ("billion laughs", case("01-billion-laughs.eml")?),
        ("nested too deep", case("02-nested-too-deep.eml")?),
        ("object over the limit", case("04-object-too-large.eml")?),
    ];
    let rounds = 20;
    let mut baseline = Duration::ZERO;
    println!("{:<28} {:>12} {:>10}", "mail", "per mail", "x baseline");
    for (i, (name, raw)) in mails.iter().enumerate() {
        pipeline::handle(&mut reg, raw, Mode::Simulate)?;
        let start = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(pipeline::handle(&mut reg, raw, Mode::Simulate)?);
        }
        let per = start.elapsed() / rounds;
        if i == 0 {
            baseline = per;
        }
        println!(
            "{name:<28} {:>9.3} ms {:>10.2}",
            per.as_secs_f64() * 1e3,
            per.as_secs_f64() / baseline.as_secs_f64()
        );
    }
    Ok(())
}
