//! The bodies of regmail's fuzz targets, and the invariants they assert.
//!
//! Each `fuzz_targets/<name>.rs` calls the function of the same name here, and
//! `tests/fuzz_regressions.rs` of the main crate includes this file (by
//! `#[path]`) to feed every kept crash of `tests/fuzz-cases/<name>/` to the
//! very same function. So this file uses nothing but `regmail`, `chrono` and
//! `std`, which the main crate's tests have too.
//!
//! Panics and assertions are the point here: a panic is a finding.

use chrono::{DateTime, Utc};
use regmail::config::{Config, Limits, MailSettings, Profile};
use regmail::rejection::{Code, Rejection, Severity};
use regmail::template::{self, ObjectClass, Transaction};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

/// The longest line of any mail regmail sends (reply.md) and of a template
/// line the mail layer accepts (template.md section 1).
pub const MAX_LINE: usize = 78;

/// Runs the target `name` on `data`; false for an unknown name.
pub fn run(name: &str, data: &[u8]) -> bool {
    match name {
        "mail" => mail(data),
        "envelope" => envelope(data),
        "object" => object(data),
        "pipeline" => pipeline(data),
        "roundtrip" => roundtrip(data),
        _ => return false,
    }
    true
}

// ---------------------------------------------------------------- invariants

/// A finding is well-formed: a code that maps back to itself, a line number
/// from 1, and a key and detail that may go into a reply line as they are.
pub fn check_rejection(r: &Rejection) {
    assert_eq!(Code::from_number(r.code.number()), Some(r.code), "{r:?}");
    assert!(r.line.is_none_or(|n| n >= 1), "line 0: {r:?}");
    if let Some(k) = &r.key {
        assert!(k.len() <= 40 && printable(k), "key not printable: {r:?}");
    }
    if let Some(d) = &r.detail {
        assert!(
            d.len() <= 200 && printable(d),
            "detail not printable: {r:?}"
        );
    }
    let text = regmail::reply::finding_text(r);
    assert!(text.is_ascii(), "finding text not ASCII: {text:?}");
    if !allowed("trailing-space") {
        // The value of a machine-block line (`error: <this>`) ends it.
        assert!(
            !text.ends_with(' '),
            "finding text ends in a space: {text:?}"
        );
    }
}

/// Known findings not fixed yet whose checks are skipped: the names in
/// `REGMAIL_FUZZ_ALLOW` (comma-separated), so that fuzzing can go on past
/// them. Empty by default: every check is on. Names: `trailing-space`
/// (finding texts and reply lines), `render-width` (the roundtrip target's
/// values as long as a template line allows).
pub fn allowed(name: &str) -> bool {
    static ALLOW: OnceLock<Vec<String>> = OnceLock::new();
    ALLOW
        .get_or_init(|| {
            std::env::var("REGMAIL_FUZZ_ALLOW")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .iter()
        .any(|a| a == name)
}

fn printable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// A list of rejections returned as the reason for a refusal: not empty, at
/// least one error, each well-formed.
pub fn check_refusal(list: &[Rejection]) {
    assert!(!list.is_empty(), "a refusal without a code");
    assert!(
        regmail::rejection::any_error(list),
        "a refusal with no error: {list:?}"
    );
    list.iter().for_each(check_rejection);
}

/// A line of text regmail sends or asks for: at most 78 characters, printable
/// ASCII, no TAB, no trailing space.
pub fn check_line(line: &str, what: &str) {
    assert!(
        line.len() <= MAX_LINE,
        "{what}: line over {MAX_LINE}: {line:?}"
    );
    assert!(printable(line), "{what}: not printable ASCII: {line:?}");
    if !allowed("trailing-space") {
        assert!(!line.ends_with(' '), "{what}: trailing space: {line:?}");
    }
}

// ---------------------------------------------------------------- mail

/// `mail`: the mail layer, `intake::inspect`, on raw bytes.
pub fn mail(data: &[u8]) {
    let settings = MailSettings::default();
    let out = regmail::intake::inspect(data, &settings);
    out.findings.iter().for_each(check_rejection);
    for r in &out.findings {
        let n = r.code.number();
        assert!(
            n == 3001 || (4001..5000).contains(&n),
            "not a mail-layer code: {r:?}"
        );
    }
    let has = |code: Code| out.findings.iter().any(|r| r.code == code);
    for code in [
        Code::NonAscii,
        Code::LineTooLong,
        Code::Tab,
        Code::TrailingWhitespace,
    ] {
        // At most ten lines per code and one summary (4003: and the charset).
        let n = out.findings.iter().filter(|r| r.code == code).count();
        assert!(n <= 12, "{n} findings of {code:?}");
    }
    if data.len() > settings.max_mail_bytes {
        assert_eq!(out.findings.len(), 1, "{:?}", out.findings);
        assert_eq!(out.findings[0].code, Code::MailTooLarge);
    }
    let Some(block) = &out.signed_block else {
        return;
    };
    assert!(!has(Code::NoSignature) && !has(Code::MultipleSigned));
    assert!(!has(Code::MailTooLarge));
    let mut lines: Vec<&str> = block.split('\n').collect();
    assert_eq!(lines.pop(), Some(""), "block does not end with LF");
    let first = lines.first().map(|l| l.trim_end());
    let last = lines.last().map(|l| l.trim_end());
    assert_eq!(first, Some("-----BEGIN PGP SIGNED MESSAGE-----"));
    assert_eq!(last, Some("-----END PGP SIGNATURE-----"));
    for line in &lines {
        if !has(Code::NonAscii) {
            assert!(line.is_ascii(), "non-ASCII without 4003: {line:?}");
            if !has(Code::LineTooLong) {
                assert!(line.len() <= settings.max_line_length, "{line:?}");
            }
        }
        if !has(Code::Tab) {
            assert!(!line.contains('\t'), "TAB without 4005: {line:?}");
        }
    }
}

// ---------------------------------------------------------------- envelope

/// `envelope`: `template::parse_envelope` on the input as (lossy) UTF-8.
pub fn envelope(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (fields, result) = template::parse_envelope(&text, &Limits::default());
    match result {
        Ok(env) => {
            assert_eq!(fields.transaction, Some(env.transaction));
            assert_eq!(fields.registrar_id, Some(env.registrar_id));
            assert_eq!(
                fields.client_trid.as_deref(),
                Some(env.client_trid.as_str())
            );
            assert_eq!(fields.body.as_deref(), Some(env.body.as_str()));
            assert_eq!(fields.language, env.language);
            assert_eq!(fields.dry_run, env.dry_run);
            assert!((1..=99_999).contains(&env.registrar_id));
            let t = &env.client_trid;
            assert!(
                (3..=64).contains(&t.len())
                    && t.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b)),
                "client-trid {t:?}"
            );
            assert!(!env.body.contains("]]>"), "CDATA end inside the body");
        }
        Err(list) => check_refusal(&list),
    }
    check_fields(&fields);
}

/// Header fields as far as they were read: only valid values.
fn check_fields(fields: &template::HeaderFields) {
    if let Some(id) = fields.registrar_id {
        assert!((1..=99_999).contains(&id));
    }
    if let Some(t) = &fields.client_trid {
        assert!((3..=64).contains(&t.len()) && t.is_ascii(), "{t:?}");
    }
}

// ---------------------------------------------------------------- object

/// The envelope the `object` target wraps the fuzzed object text into.
pub fn framed(transaction: Transaction, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n<regframe>\n<regheader>\n\
         <version>1.1</version>\n<transaction>{}</transaction>\n<count>1</count>\n\
         <accept-language>en</accept-language>\n<registrar-id>1001</registrar-id>\n\
         <client-trid>FUZZ-1</client-trid>\n</regheader>\n\
         <regbody><![CDATA[{body}]]></regbody>\n</regframe>\n",
        transaction.name()
    )
}

/// `object`: the first byte picks the transaction, the rest is the object
/// text: `parse_object` on it, then the whole `parse_template` (envelope,
/// object, typed validation) with the default profile and limits.
pub fn object(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let t = Transaction::ALL[usize::from(pick) % Transaction::ALL.len()];
    let body = String::from_utf8_lossy(rest);
    let (raw, errors) = template::parse_object(&body);
    errors.iter().for_each(check_rejection);
    let lines = body
        .strip_prefix("\r\n")
        .or_else(|| body.strip_prefix('\n'))
        .unwrap_or(&body)
        .lines()
        .count();
    let max_line = u32::try_from(lines + 1).unwrap_or(u32::MAX);
    for r in &errors {
        assert!(r.line.is_none_or(|n| n <= max_line), "{r:?}, {lines} lines");
    }
    if let Some(raw) = &raw {
        assert!(!raw.attrs.is_empty(), "an object without attributes");
        for a in &raw.attrs {
            assert!(a.line >= 1 && a.line <= max_line, "{a:?}");
            assert!(a.continuations.windows(2).all(|w| w[0] < w[1]), "{a:?}");
            assert!(a.continuations.iter().all(|c| *c > a.line), "{a:?}");
            assert!(!a.key.contains("  ") && a.key == a.key.to_ascii_lowercase());
        }
    }
    let profile = Profile::default();
    let text = framed(t, &body);
    let (fields, parsed) = template::parse_template(&text, &profile, &Limits::default());
    check_fields(&fields);
    match parsed {
        Ok((spec, warnings)) => {
            assert!(
                !regmail::rejection::any_error(&warnings),
                "a spec with errors: {warnings:?}"
            );
            warnings.iter().for_each(check_rejection);
            assert_eq!(fields.transaction, Some(t));
            assert!(!spec.object().is_empty(), "a spec without an object name");
        }
        Err(list) => check_refusal(&list),
    }
}

// ---------------------------------------------------------------- roundtrip

/// Reads the fuzzer's bytes as choices; zeros once they run out.
#[derive(Debug)]
struct Choices<'a> {
    data: &'a [u8],
}

impl Choices<'_> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        usize::from(self.byte()) % n.max(1)
    }

    /// A character of `set`.
    fn of(&mut self, set: &[u8]) -> char {
        char::from(set[self.below(set.len())])
    }
}

const PERSON_KEYS: &[&str] = &[
    "nic-hdl",
    "command",
    "type",
    "personname",
    "organization",
    "street address",
    "postal code",
    "city",
    "country",
    "phone",
    "fax-no",
    "e-mail",
    "whoishidephone",
    "whoishidefax",
    "whoishide",
    "remarks",
    "source",
];

const DOMAIN_KEYS: &[&str] = &[
    "domain",
    "command",
    "registrant",
    "admin-c",
    "tech-c",
    "zone-c",
    "nserver",
    "remarks",
    "client-hold",
    "client-lock",
    "scheduledate",
    "period",
    "registrarinfo",
    "authinfo",
    "zone-delete",
    "source",
];

const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/// A key of the grammar `ALPHA *(ALPHA / DIGIT / "-" / (1*SP (ALPHA / DIGIT)))`,
/// at most 24 characters, with single spaces (as the renderer is given keys).
fn any_key(c: &mut Choices<'_>) -> String {
    let mut key = String::from(c.of(ALPHA));
    for _ in 0..c.below(24) {
        match c.below(8) {
            0 => key.push('-'),
            1 => {
                key.push(' ');
                key.push(c.of(ALNUM));
            }
            _ => key.push(c.of(ALNUM)),
        }
    }
    key
}

/// Words of printable ASCII but space, each fitting a line after `pad`
/// columns; for a key that may not wrap, the whole value fits.
fn any_value(c: &mut Choices<'_>, pad: usize, wraps: bool) -> String {
    let room = MAX_LINE.saturating_sub(pad);
    let mut value = String::new();
    for _ in 0..c.below(if wraps { 24 } else { 8 }) {
        let longest = if c.byte() < 16 { MAX_LINE } else { 12 };
        let len = 1 + c.below(room.min(longest));
        let word: String = (0..len).map(|_| char::from(0x21 + c.byte() % 94)).collect();
        let sep = usize::from(!value.is_empty());
        if !wraps && value.len() + sep + word.len() > room {
            break;
        }
        if sep == 1 {
            value.push(' ');
        }
        value.push_str(&word);
    }
    value
}

/// `roundtrip`: attribute lists derived from the bytes (keys of the key tables
/// and of the grammar, values of words, comments; with bit 0x40 of the first
/// byte, values as long as a `key: value` template line allows, else as long
/// as fits after the renderer's value column 16) are rendered with
/// `render_object` / `render_body`; every line must obey the mail layer's
/// rules, and `parse_object` must give back the same attributes (comments
/// dropped, keys lower-case) without a finding.
pub fn roundtrip(data: &[u8]) {
    let mut c = Choices { data };
    let mode = c.byte();
    let (class, t, keys) = match mode % 4 {
        0 => (ObjectClass::Person, Transaction::Perscreate, PERSON_KEYS),
        1 => (ObjectClass::Person, Transaction::Persupdate, PERSON_KEYS),
        2 => (ObjectClass::Domain, Transaction::Create, DOMAIN_KEYS),
        _ => (ObjectClass::Domain, Transaction::Regtransfer, DOMAIN_KEYS),
    };
    let wraps_all = mode & 0x80 != 0;
    // Values as long as the mail layer lets a registrar write them, not only
    // as long as fits the renderer's value column.
    let legal_lengths = mode & 0x40 != 0 && !allowed("render-width");
    let continuable =
        |key: &str| wraps_all || template::key_rule(class, t, key).is_some_and(|r| r.continuable);
    let mut attrs: Vec<(String, String)> = vec![(keys[0].into(), "X1-FUZZ".into())];
    for _ in 0..c.below(20) {
        let key = match c.below(5) {
            0 => "#".to_string(),
            1 => any_key(&mut c),
            _ => keys[c.below(keys.len())].to_string(),
        };
        let norm = key.to_ascii_lowercase();
        if norm == "template version" || norm == "currentnicattermsandconditionsaccepted" {
            continue;
        }
        let value = if key == "#" {
            any_value(&mut c, 2, false)
        } else if legal_lengths {
            // As long as a template line may be: `key: value` in 78.
            any_value(&mut c, key.len() + 2, continuable(&key))
        } else {
            let pad = 16.max(key.len() + 2);
            any_value(&mut c, pad, continuable(&key))
        };
        attrs.push((key, value));
    }
    let refs: Vec<(&str, &str)> = attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let object = template::render_object(&refs, continuable, MAX_LINE);
    let text = template::render_body(&object);
    for line in text.lines() {
        check_line(line, "rendered object");
        assert!(!line.starts_with('-'), "would be dash-escaped: {line:?}");
    }
    let (parsed, errors) = template::parse_object(&text);
    assert!(errors.is_empty(), "{errors:?}\n{text}");
    let want: Vec<(String, String)> = attrs
        .into_iter()
        .filter(|(k, _)| k != "#")
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let got = parsed
        .map(|o| template::pairs(&o.attrs))
        .unwrap_or_default();
    assert_eq!(got, want, "\n{text}");
}

// ---------------------------------------------------------------- pipeline

/// The instant the pipeline target runs at (the fixtures' replay instant).
pub const NOW: &str = "2026-11-22T08:15:00Z";

/// Rebuild the registry after this many mails, so the in-memory database
/// stays small (state carries over between inputs until then).
const MAILS_PER_REGISTRY: u32 = 2000;

/// The signing registrars of the pipeline target's template mode:
/// (registrar-id, reply address, secret key file in `keys/`).
const SIGNERS: &[(u32, &str, &str)] = &[
    (1001, "hostmaster@alpine-domains.test", "alice.sec.asc"),
    (1002, "robot@blue-registrar.test", "bob.sec.asc"),
    (1006, "admin@frozen-names.test", "frank.sec.asc"),
];

/// The test registrars of `keys/registrars.toml`: (id, name, address, public key, suspended).
const REGISTRARS: &[(u32, &str, &str, &str, bool)] = &[
    (
        1001,
        "Alpine Domains GmbH",
        "hostmaster@alpine-domains.test",
        "alice.pub.asc",
        false,
    ),
    (
        1002,
        "Blue Registrar KG",
        "robot@blue-registrar.test",
        "bob.pub.asc",
        false,
    ),
    (
        1003,
        "Coral Names OG",
        "domains@coral-names.test",
        "carol.pub.asc",
        false,
    ),
    (
        1004,
        "Dusty Domains e.U.",
        "noc@dusty-domains.test",
        "dave.pub.asc",
        false,
    ),
    (
        1005,
        "Eager Names GmbH",
        "ops@eager-names.test",
        "erin.pub.asc",
        false,
    ),
    (
        1006,
        "Frozen Names AG",
        "admin@frozen-names.test",
        "frank.pub.asc",
        true,
    ),
    (
        1007,
        "Harbour Names GmbH",
        "domains@harbour-names.test",
        "heidi.pub.asc",
        false,
    ),
];

/// A registry on an in-memory store, and the registrars' signing keys.
#[derive(Debug)]
pub struct World {
    /// The registry (in-memory store, fixed clock, seeded ids, file outbox).
    pub reg: regmail::pipeline::Registry,
    /// Signing keys of [`SIGNERS`], in order.
    pub signers: Vec<regmail::auth::SigningKey>,
    /// Where the file transport writes replies.
    pub outbox: PathBuf,
    /// Mails handled by this registry.
    pub mails: u32,
}

/// `keys/` of the main crate, from the fuzz crate or the main crate.
pub fn keys_dir() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    [here.join("keys"), here.join("../keys")]
        .into_iter()
        .find(|p| p.join("registrars.toml").is_file())
        .unwrap_or_else(|| here.join("keys"))
}

/// The fixed instant.
pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(NOW)
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn scratch_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    base.join(format!("regmail-fuzz-{}", std::process::id()))
}

/// Removes this process's scratch directory (the pipeline's outbox).
pub fn remove_scratch_dir() {
    let _ = std::fs::remove_dir_all(scratch_dir());
}

/// Removes the scratch directories of processes that are gone (libFuzzer
/// exits without running destructors; fork mode starts a process per job).
fn remove_stale_scratch_dirs() {
    let dir = scratch_dir();
    let (Some(base), true) = (dir.parent(), Path::new("/proc/self").exists()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name.to_str().and_then(|n| n.strip_prefix("regmail-fuzz-"));
        if pid.is_some_and(|p| !Path::new("/proc").join(p).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl World {
    /// A new registry with the test registrars and trent's registry key.
    pub fn new() -> World {
        use regmail::auth::{SigningKey, parse_certificate};
        let keys = keys_dir();
        remove_stale_scratch_dirs();
        let data_dir = scratch_dir();
        let outbox = data_dir.join("outbox");
        std::fs::create_dir_all(&outbox).unwrap();
        let mut store = regmail::store::Store::open_in_memory().unwrap();
        let stamp = regmail::reply::rfc3339(now());
        for (id, name, email, key, suspended) in REGISTRARS {
            let data = std::fs::read(keys.join(key)).unwrap();
            let cert = parse_certificate(&data).unwrap();
            assert!(store.add_registrar(*id, name, email, &stamp).unwrap());
            store
                .add_certificate(
                    *id,
                    &cert.fingerprint,
                    &cert.bytes,
                    &cert.key_handles,
                    &stamp,
                )
                .unwrap()
                .unwrap();
            if *suspended {
                let s = regmail::store::RegistrarStatus::Suspended;
                assert!(store.set_registrar_status(*id, s).unwrap());
            }
        }
        let mut config = Config::default();
        config.delivery.file_dir = outbox.clone();
        let reg = regmail::pipeline::Registry {
            config,
            store,
            key: SigningKey::load(&keys.join("trent.sec.asc")).unwrap(),
            clock: Box::new(regmail::clock::FixedClock(now())),
            ids: Box::new(regmail::ids::SeededIds::default()),
            data_dir,
        };
        let signers = SIGNERS
            .iter()
            .map(|(_, _, file)| SigningKey::load(&keys.join(file)).unwrap())
            .collect();
        World {
            reg,
            signers,
            outbox,
            mails: 0,
        }
    }
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

static WORLD: OnceLock<Mutex<World>> = OnceLock::new();

/// `pipeline`: the whole pipeline (`pipeline::handle`, `Mode::Commit`) on an
/// in-memory store at a fixed instant. The first byte picks how the rest is
/// fed: `% 4 == 0` as a raw mail; otherwise as a template text that is
/// wrapped into a mail and clearsigned by registrar 1001, 1002 or 1006
/// (suspended), so that fuzzing reaches the template, policy and the store.
/// Asserts: no fault of ours (`handle` returns Ok on an in-memory store),
/// every reply written is 7-bit with lines of at most 78 characters, and a
/// failed result carries error codes.
pub fn pipeline(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let lock = WORLD.get_or_init(|| Mutex::new(World::new()));
    let mut world = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if world.mails >= MAILS_PER_REGISTRY {
        *world = World::new();
    }
    world.mails += 1;
    let mail = match usize::from(pick % 4) {
        0 => rest.to_vec(),
        n => {
            let Ok(text) = std::str::from_utf8(rest) else {
                return;
            };
            let (id, from, _) = SIGNERS[n - 1];
            let clock = regmail::clock::FixedClock(now());
            let key = &world.signers[n - 1];
            // `submit` refuses what does not fit a 7bit mail: not a finding.
            match regmail::app::signed_mail(key, id, from, text, &clock) {
                Ok(mail) => mail,
                Err(_) => return,
            }
        }
    };
    let handled = regmail::pipeline::handle(&mut world.reg, &mail, regmail::pipeline::Mode::Commit);
    let handled = match handled {
        Ok(h) => h,
        Err(e) => panic!("a fault of ours on an in-memory store: {e} ({e:?})"),
    };
    check_handled(&handled);
    check_outbox(&world.outbox);
}

fn check_handled(h: &regmail::pipeline::Handled) {
    use regmail::pipeline::Disposition;
    use regmail::reply::Outcome;
    for n in &h.codes {
        assert!(Code::from_number(*n).is_some(), "unknown code {n}");
    }
    let errors = h
        .codes
        .iter()
        .filter_map(|n| Code::from_number(*n))
        .filter(|c| c.severity() == Severity::Error)
        .count();
    match h.disposition {
        Disposition::Answered(Outcome::Failed) => {
            assert!(errors > 0, "failed without an error code: {h:?}");
        }
        Disposition::Answered(Outcome::Success | Outcome::Pending) => {
            assert_eq!(errors, 0, "succeeded with an error code: {h:?}");
        }
        _ => {}
    }
    if let Some(block) = &h.machine_block {
        for line in block.lines() {
            check_line(line, "machine block");
        }
    }
}

/// Every mail the file transport wrote: 7-bit, CRLF, header lines within
/// RFC 5322's 998, body lines within 78; then removed.
fn check_outbox(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let _ = std::fs::remove_file(&path);
        check_sent_mail(&bytes);
    }
}

static LONG_HEADER_SEEN: OnceLock<()> = OnceLock::new();

/// A mail regmail sends: 7-bit, CRLF line ends, body lines of printable
/// ASCII within 78 characters without a trailing space. A header line over 78 (RFC 5322's SHOULD;
/// reply.md's "every line") is printed once, not asserted; over 998 is.
pub fn check_sent_mail(bytes: &[u8]) {
    assert!(bytes.is_ascii(), "a mail that is not 7-bit");
    let text = String::from_utf8_lossy(bytes);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    for line in head.split("\r\n") {
        assert!(!line.contains(['\r', '\n']), "bare CR or LF: {line:?}");
        assert!(line.len() <= 998, "header line over 998: {line:?}");
        if line.len() > MAX_LINE && LONG_HEADER_SEEN.set(()).is_ok() {
            eprintln!("NOTE: a header line over {MAX_LINE} characters: {line:?}");
        }
    }
    let body = body.strip_suffix("\r\n").unwrap_or(body);
    for line in body.split("\r\n") {
        assert!(!line.contains(['\r', '\n']), "bare CR or LF: {line:?}");
        check_line(line, "mail body");
    }
}
