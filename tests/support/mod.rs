//! Shared helpers for the integration tests: paths, the test registry, and
//! verification of the registry's signed replies with sequoia.
#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod scenario;

use openpgp::parse::Parse;
use openpgp::parse::stream::{MessageLayer, MessageStructure, VerificationHelper, VerifierBuilder};
use openpgp::policy::StandardPolicy;
use regmail::app::{DEMO_NOW, setup};
use regmail::config::Config;
use regmail::pipeline::Registry;
use sequoia_openpgp as openpgp;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Starts a server command whose first line on stdout is `listening on
/// WHERE`; returns the child and WHERE (the child is killed and the test
/// fails if the line is not that).
pub fn start_listening(cmd: &mut std::process::Command) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    match line.trim().strip_prefix("listening on ") {
        Some(at) => (child, at.to_string()),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("no `listening on` line: {line:?}");
        }
    }
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(DEMO_NOW)
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// The golden case folders (`tests/cases/*`), in name order.
pub fn case_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root().join("tests/cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The files of `dir` ending in `.ext`, in name order.
pub fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut f: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    f.sort();
    f
}

/// A registry in `dir` with the test registrars and trent's registry key.
pub fn registry(dir: &Path, config: Config) -> Registry {
    let trent = root().join("keys/trent.sec.asc");
    setup(dir, &root().join("keys"), Some(&trent), config, now()).unwrap()
}

struct Helper(openpgp::Cert);

impl VerificationHelper for Helper {
    fn get_certs(&mut self, _: &[openpgp::KeyHandle]) -> openpgp::Result<Vec<openpgp::Cert>> {
        Ok(vec![self.0.clone()])
    }
    fn check(&mut self, structure: MessageStructure<'_>) -> openpgp::Result<()> {
        for layer in structure {
            if let MessageLayer::SignatureGroup { results } = layer
                && results.iter().any(|r| r.is_ok())
            {
                return Ok(());
            }
        }
        Err(anyhow::anyhow!("no good signature"))
    }
}

/// Verifies a cleartext-signed mail body with `cert`; returns the signed text.
pub fn verify_body(
    body: &str,
    cert: &openpgp::Cert,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<String, String> {
    let p = StandardPolicy::new();
    let mut v = VerifierBuilder::from_bytes(body.as_bytes())
        .and_then(|b| b.with_policy(&p, Some(at.into()), Helper(cert.clone())))
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    v.read_to_string(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Splits a mail into header and body, with LF line ends.
pub fn split_mail(mail: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(mail).replace("\r\n", "\n");
    match text.split_once("\n\n") {
        Some((h, b)) => (h.to_string(), b.to_string()),
        None => (text, String::new()),
    }
}

/// The reply with its signature verified against `cert` and replaced by a marker.
pub fn verified_reply(mail: &[u8], cert: &openpgp::Cert) -> Result<String, String> {
    let (head, body) = split_mail(mail);
    verify_body(&body, cert, now())?;
    let start = body
        .find("-----BEGIN PGP SIGNATURE-----")
        .ok_or("no signature block")?;
    let end = body
        .find("-----END PGP SIGNATURE-----")
        .ok_or("no signature end")?;
    let end = end + "-----END PGP SIGNATURE-----".len();
    Ok(format!(
        "{head}\n\n{}[signature verified]{}",
        &body[..start],
        &body[end..]
    ))
}

pub fn trent() -> openpgp::Cert {
    openpgp::Cert::from_file(root().join("keys/trent.pub.asc")).unwrap()
}

/// A valid `perscreate` template (Anna Muster) for `registrar`.
pub fn perscreate_text(registrar: u32, trid: &str, email: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n<regframe>\n<regheader>\n\
         <version>1.1</version>\n<transaction>perscreate</transaction>\n<count>1</count>\n\
         <accept-language>en</accept-language>\n<registrar-id>{registrar}</registrar-id>\n\
         <client-trid>{trid}</client-trid>\n</regheader>\n<regbody><![CDATA[\n\
         Template Version: 5.0\n\nnic-hdl:        AUTO\ncommand:        create\ntype:           NAT\n\
         personname:     Anna Muster\nstreet address: Hauptstrasse 1\npostal code:    1010\n\
         city:           Wien\ncountry:        AT\nphone:          +43 1 5056416\n\
         e-mail:         {email}\nsource:         AT-DOM\n\n\
         currentNicAtTermsAndConditionsAccepted: Y\n]]></regbody>\n</regframe>\n"
    )
}

/// Points a data directory's delivery at a `sendmail` script the test
/// writes (and rewrites) with [`install_script`]; returns the script's path
/// and an empty spool directory for it to write into.
pub fn fake_sendmail(data_dir: &Path) -> (PathBuf, PathBuf) {
    let script = data_dir.join("fake-sendmail");
    let spool = data_dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let config = format!(
        "[delivery]\ntransport = \"sendmail\"\nsendmail_command = \"{}\"\n",
        script.display()
    );
    std::fs::write(data_dir.join("regmail.toml"), config).unwrap();
    (script, spool)
}

/// Installs an executable shell script at `path` (a fake sendmail):
/// written aside and renamed, so a running test never executes half a script.
pub fn install_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, body).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
