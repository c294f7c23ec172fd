//! `regmail template` and `regmail generate`: tools for registrars and packagers.
//!
//! Input: the parsed subcommand. Output: a blank template on stdout (the files
//! of `templates/`, compiled into the binary), the list of templates, man
//! pages in a directory, or a shell completion script on stdout.
//! Invariants: a printed template is the shipped file byte for byte except
//! the one line `--domain` / `--handle` fills in; a filled-in value is
//! `[A-Za-z0-9.-]` and fits the line, so the template stays within the mail
//! layer's rules; a wrong name or option is a usage error (exit 64) naming
//! what would work; man pages and completions come from `crate::cli` only.

use super::{EX_OK, EX_USAGE};
use crate::cli::{Cli, GenerateCommand, TemplateCommand};
use crate::config::MailSettings;
use crate::template::Transaction;
use anyhow::{Context, anyhow};
use clap::CommandFactory;
use clap_mangen::roff::{Roff, bold, roman};
use std::io::Write;
use std::path::Path;

/// What `--domain` / `--handle` fill in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// The first key is `domain:`; `--domain` fills it.
    Domain,
    /// The first key is `nic-hdl:`; `--handle` fills it.
    Handle,
    /// `nic-hdl: AUTO`: the registry assigns the handle; nothing to fill.
    Auto,
}

/// One shipped blank template.
#[derive(Debug)]
struct Blank {
    /// The name `template new` takes (the file name without `.txt`).
    name: &'static str,
    /// The `<transaction>` of the envelope.
    transaction: Transaction,
    /// What can be filled in.
    fill: Fill,
    /// What it does, for `template list`.
    what: &'static str,
    /// The file's text.
    text: &'static str,
}

macro_rules! blank {
    ($name:literal, $t:ident, $fill:ident, $what:literal) => {
        Blank {
            name: $name,
            transaction: Transaction::$t,
            fill: Fill::$fill,
            what: $what,
            text: include_str!(concat!("../../templates/", $name, ".txt")),
        }
    };
}

/// Every template of `templates/`, in the order of templates/README.md.
const BLANKS: &[Blank] = &[
    blank!("create", Create, Domain, "register a domain"),
    blank!("update", Update, Domain, "change contacts or status flags"),
    blank!("nscupdate", Nscupdate, Domain, "replace the nameserver set"),
    blank!("delete", Delete, Domain, "delete now or at expiration"),
    blank!("undelete", Undelete, Domain, "withdraw a pending deletion"),
    blank!("renew", Renew, Domain, "extend by period years"),
    blank!("regtransfer", Regtransfer, Domain, "move a domain to you"),
    blank!(
        "transferack",
        Transferack,
        Domain,
        "approve a transfer away"
    ),
    blank!(
        "transfernack",
        Transfernack,
        Domain,
        "reject a transfer away"
    ),
    blank!(
        "billwithdraw",
        Billwithdraw,
        Domain,
        "stop paying; holder billed"
    ),
    blank!("perscreate", Perscreate, Auto, "create a contact"),
    blank!("persupdate", Persupdate, Handle, "change a contact"),
    blank!("persdelete", Persdelete, Handle, "delete an unused contact"),
    blank!("check-domain", Check, Domain, "is a domain name taken?"),
    blank!("check-person", Check, Handle, "is a handle taken?"),
    blank!("info-domain", Info, Domain, "a domain's data"),
    blank!("info-person", Info, Handle, "a contact's data"),
];

/// A `template new` the user got wrong: the message (exit 64).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Usage(String);

/// The names `template new` accepts, in list order.
fn known_names() -> Vec<&'static str> {
    let mut names = Vec::new();
    for b in BLANKS {
        if b.name == "check-domain" || b.name == "info-domain" {
            names.push(b.transaction.name());
        }
        names.push(b.name);
    }
    names
}

/// The template for a name; `check` and `info` take the contact form when a
/// handle is given and the domain form otherwise.
fn pick(name: &str, handle: bool) -> Result<&'static Blank, Usage> {
    let name = name.to_ascii_lowercase();
    let wanted = match name.as_str() {
        "check" | "info" if handle => format!("{name}-person"),
        "check" | "info" => format!("{name}-domain"),
        _ => name.clone(),
    };
    BLANKS.iter().find(|b| b.name == wanted).ok_or_else(|| {
        Usage(format!(
            "unknown transaction {name:?}; known: {}",
            known_names().join(", ")
        ))
    })
}

/// The key line to fill and its value, or `None` when nothing is filled in.
fn target<'a>(
    blank: &Blank,
    domain: Option<&'a str>,
    handle: Option<&'a str>,
) -> Result<Option<(&'static str, &'a str)>, Usage> {
    let name = blank.name;
    let (key, value) = match (domain, handle, blank.fill) {
        (None, None, _) => return Ok(None),
        (Some(d), None, Fill::Domain) => ("domain:", d),
        (None, Some(h), Fill::Handle) => ("nic-hdl:", h),
        (Some(_), _, _) => {
            return Err(Usage(format!(
                "{name} is a contact template: it has no domain: field (use --handle)"
            )));
        }
        (None, Some(_), Fill::Auto) => {
            return Err(Usage(format!(
                "{name}: the registry assigns the handle (nic-hdl: AUTO); leave out --handle"
            )));
        }
        (None, Some(_), Fill::Domain) => {
            return Err(Usage(format!(
                "{name} is a domain template: it has no nic-hdl: field (use --domain)"
            )));
        }
    };
    let max = MailSettings::default().max_line_length;
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b == b'.' || b == b'-';
    if value.is_empty() || !value.bytes().all(allowed) {
        return Err(Usage(format!(
            "{value:?}: a domain (ACE form) or handle is letters, digits, '.' and '-'"
        )));
    }
    if key.len() + 1 + value.len() > max {
        return Err(Usage(format!(
            "{value:.20}...: too long for a {max}-character template line"
        )));
    }
    Ok(Some((key, value)))
}

/// `text` with the first line that is exactly `key` (an empty value) given
/// `value`; `None` if there is no such line.
fn fill_line(text: &str, key: &str, value: &str) -> Option<String> {
    let mut done = false;
    let out: String = text
        .split_inclusive('\n')
        .map(|line| {
            if !done && line.trim_end() == key {
                done = true;
                format!("{key} {value}\n")
            } else {
                line.to_string()
            }
        })
        .collect();
    done.then_some(out)
}

/// The text `template new` prints, or the user's mistake.
fn new_text(
    name: &str,
    domain: Option<&str>,
    handle: Option<&str>,
) -> anyhow::Result<Result<String, Usage>> {
    let blank = match pick(name, handle.is_some()) {
        Ok(b) => b,
        Err(u) => return Ok(Err(u)),
    };
    match target(blank, domain, handle) {
        Err(u) => Ok(Err(u)),
        Ok(None) => Ok(Ok(blank.text.to_string())),
        Ok(Some((key, value))) => fill_line(blank.text, key, value).map(Ok).ok_or_else(|| {
            anyhow!(
                "the shipped template {} has no empty {key} line",
                blank.name
            )
        }),
    }
}

/// The lines of `template list`.
fn list_text() -> String {
    let mut out = format!(
        "{:<14}{:<14}{:<10}{}\n",
        "NAME", "TRANSACTION", "FILL", "WHAT"
    );
    for b in BLANKS {
        let fill = match b.fill {
            Fill::Domain => "--domain",
            Fill::Handle => "--handle",
            Fill::Auto => "-",
        };
        out.push_str(&format!(
            "{:<14}{:<14}{:<10}{}\n",
            b.name,
            b.transaction.name(),
            fill,
            b.what
        ));
    }
    out
}

/// `template new` / `template list`.
pub fn template(cmd: TemplateCommand) -> anyhow::Result<u8> {
    let text = match cmd {
        TemplateCommand::List => list_text(),
        TemplateCommand::New {
            transaction,
            domain,
            handle,
        } => match new_text(&transaction, domain.as_deref(), handle.as_deref())? {
            Ok(text) => text,
            Err(Usage(message)) => {
                eprintln!("regmail: template new: {message}");
                return Ok(EX_USAGE);
            }
        },
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(EX_OK)
}

/// `generate man` / `generate completions`.
pub fn generate(cmd: GenerateCommand) -> anyhow::Result<u8> {
    match cmd {
        GenerateCommand::Man { dir } => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let mut root = Cli::command().disable_help_subcommand(true);
            root.build();
            man_pages(root, &dir, true).with_context(|| format!("writing to {}", dir.display()))?;
        }
        GenerateCommand::Completions { shell } => {
            // Rendered into memory: clap_complete panics on a failed write.
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "regmail", &mut script);
            let mut out = std::io::stdout().lock();
            out.write_all(&script)?;
            out.flush()?;
        }
    }
    Ok(EX_OK)
}

/// Writes the page of `cmd` (`regmail.1`, `regmail-process.1`, ...) and those
/// of its visible subcommands, as `clap_mangen::generate_to` does; the top
/// page gets the sections clap does not know.
fn man_pages(cmd: clap::Command, dir: &Path, top: bool) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        man_pages(sub.clone(), dir, false)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let mut page = Vec::new();
    man.render(&mut page)?;
    if top {
        page.extend_from_slice(top_sections().to_roff().as_bytes());
    }
    std::fs::write(dir.join(man.get_filename()), page)
}

/// The sections of `regmail.1` clap does not know: (heading, [(term, text)]).
const TOP_SECTIONS: &[(&str, &[(&str, &str)])] = &[
    (
        "EXIT STATUS",
        &[
            (
                "0",
                "Done; for process: the mail was handled (executed, refused \
                 with a reply, a duplicate, or dropped on purpose).",
            ),
            ("1", "The command failed, or check found errors."),
            ("64", "Wrong command-line use (EX_USAGE)."),
            (
                "75",
                "A temporary failure of process, replay, tick or outbox \
                 (EX_TEMPFAIL): nothing was written; the MTA or timer retries.",
            ),
        ],
    ),
    (
        "ENVIRONMENT",
        &[
            ("REGMAIL_DATA_DIR", "The data directory (as --data-dir)."),
            (
                "REGMAIL_LOG",
                "Log filter for standard error, e.g. info (default warn).",
            ),
        ],
    ),
    (
        "FILES",
        &[
            ("DATA_DIR/regmail.toml", "The configuration."),
            ("DATA_DIR/regmail.sqlite", "The database (WAL mode)."),
            (
                "DATA_DIR/registry-key.asc",
                "The registry signing key (mode 0600).",
            ),
            ("DATA_DIR/outbox/", "Mail delivered by the file transport."),
        ],
    ),
];

/// EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO of `regmail.1`.
fn top_sections() -> Roff {
    let mut r = Roff::new();
    for (heading, items) in TOP_SECTIONS {
        r.control("SH", [*heading]);
        for (term, text) in *items {
            r.control("TP", []);
            r.text([bold(*term)]);
            r.text([roman(*text)]);
        }
    }
    r.control("SH", ["SEE ALSO"]);
    r.text([roman(
        "regmail-process(1), regmail-tick(1), regmail-submit(1), \
         regmail-template-new(1), sendmail(8), systemd.timer(5)",
    )]);
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Limits;
    use crate::template::parse_envelope;

    /// Every shipped template is listed, declares the transaction of its
    /// row, and has the line its fill option fills.
    #[test]
    fn table_matches_the_files() {
        for b in BLANKS {
            let (fields, env) = parse_envelope(b.text, &Limits::default());
            assert!(env.is_ok(), "{}: {env:?}", b.name);
            assert_eq!(fields.transaction, Some(b.transaction), "{}", b.name);
            let first = fields.body.unwrap_or_default();
            let key = match b.fill {
                Fill::Domain => "\ndomain:\n",
                Fill::Handle => "\nnic-hdl:\n",
                Fill::Auto => "\nnic-hdl: AUTO\n",
            };
            assert!(first.contains(key), "{}: no {key:?}", b.name);
        }
        for t in Transaction::ALL {
            assert!(BLANKS.iter().any(|b| b.transaction == *t), "{t:?}");
        }
        let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "txt"))
            .count();
        assert_eq!(files, BLANKS.len(), "a file of templates/ is not embedded");
    }

    #[test]
    fn names_resolve() {
        let name = |n: &str, h: bool| pick(n, h).map(|b| b.name);
        assert_eq!(name("create", false), Ok("create"));
        assert_eq!(name("CHECK", false), Ok("check-domain"));
        assert_eq!(name("check", true), Ok("check-person"));
        assert_eq!(name("info", true), Ok("info-person"));
        assert_eq!(name("info-domain", false), Ok("info-domain"));
        let Err(Usage(m)) = name("transfer", false) else {
            panic!("transfer is not a transaction name")
        };
        assert!(
            m.contains("regtransfer") && m.contains("check-person"),
            "{m}"
        );
    }

    #[test]
    fn filling_in() {
        let text = |n: &str, d: Option<&str>, h: Option<&str>| new_text(n, d, h).ok();
        let t = text("renew", Some("example.at"), None);
        let t = t.and_then(Result::ok).unwrap_or_default();
        assert!(t.contains("\ndomain: example.at\ncommand: renew\n"), "{t}");
        // Only the object's line: the comments mentioning domain: stay.
        assert_eq!(
            t.len(),
            include_str!("../../templates/renew.txt").len() + " example.at".len()
        );
        let t = text("check", None, Some("AM1-NICAT")).and_then(Result::ok);
        assert!(t.unwrap_or_default().contains("\nnic-hdl: AM1-NICAT\n"));
        for (n, d, h) in [
            ("perscreate", None, Some("AM1-NICAT")),
            ("create", None, Some("AM1-NICAT")),
            ("persupdate", Some("example.at"), None),
            ("create", Some("bad domain.at"), None),
            ("create", Some("b]]>.at"), None),
            ("create", Some(""), None),
        ] {
            assert!(
                matches!(text(n, d, h), Some(Err(Usage(_)))),
                "{n} {d:?} {h:?}"
            );
        }
        let long = "a".repeat(71);
        assert!(matches!(text("create", Some(&long), None), Some(Err(_))));
        let fits = "a".repeat(70);
        assert!(matches!(text("create", Some(&fits), None), Some(Ok(_))));
    }
}
