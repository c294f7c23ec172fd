//! The human text of a reply, in German (ASCII transliteration) or English.

use super::{MAX_LINE, Outcome, ReplyData};
use crate::rejection::{Rejection, Severity};
use crate::template::Language;

fn summary(d: &ReplyData) -> &'static str {
    match (d.language, d.outcome) {
        (Language::En, Outcome::Success) => "Your template was executed.",
        (Language::En, Outcome::Pending) => {
            "Your template was accepted and is waiting; you will get another mail."
        }
        (Language::En, Outcome::Failed) => {
            "Your template was refused and nothing was changed. Please correct every error listed below and send \
             the template again with a new client-trid."
        }
        (Language::En, Outcome::Exception) => {
            "A temporary fault on our side; nothing was changed. Please send the same template again unchanged."
        }
        (Language::De, Outcome::Success) => "Ihre Vorlage wurde ausgefuehrt.",
        (Language::De, Outcome::Pending) => {
            "Ihre Vorlage wurde angenommen und wartet; Sie erhalten eine weitere Nachricht."
        }
        (Language::De, Outcome::Failed) => {
            "Ihre Vorlage wurde abgelehnt, es wurde nichts geaendert. Bitte korrigieren Sie alle unten \
             aufgefuehrten Fehler und senden Sie die Vorlage mit einer neuen client-trid erneut."
        }
        (Language::De, Outcome::Exception) => {
            "Ein voruebergehender Fehler auf unserer Seite; es wurde nichts geaendert. Bitte senden Sie dieselbe \
             Vorlage unveraendert erneut."
        }
    }
}

fn heading(lang: Language, sev: Severity) -> &'static str {
    match (lang, sev) {
        (Language::En, Severity::Error) => "Errors:",
        (Language::En, Severity::Warning) => "Warnings:",
        (Language::En, Severity::Info) => "Notes:",
        (Language::De, Severity::Error) => "Fehler:",
        (Language::De, Severity::Warning) => "Warnungen:",
        (Language::De, Severity::Info) => "Hinweise:",
    }
}

fn item(lang: Language, r: &Rejection) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(n) = r.line {
        parts.push(match lang {
            Language::En => format!("line {n}"),
            Language::De => format!("Zeile {n}"),
        });
    }
    if let Some(k) = &r.key {
        parts.push(match lang {
            Language::En => format!("key \"{k}\""),
            Language::De => format!("Feld \"{k}\""),
        });
    }
    let text = match lang {
        Language::En => r.code.text_en(),
        Language::De => r.code.text_de(),
    };
    let place = if parts.is_empty() {
        String::new()
    } else {
        format!("{}: ", parts.join(", "))
    };
    let detail = r
        .detail
        .as_deref()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    let line = format!("{} {place}{text}{detail}", r.code.number());
    crate::rejection::printable(&line, line.len())
}

/// The human part: a summary, then the findings grouped by severity.
pub fn text(d: &ReplyData) -> String {
    let mut out = String::new();
    if let Some(echo) = d.subject_echo.as_deref().filter(|e| !e.is_empty()) {
        let label = match d.language {
            Language::En => "Your mail",
            Language::De => "Ihre Nachricht",
        };
        out.push_str(&format!("{label}: {echo}\n\n"));
    }
    let summary = d.notice.as_deref().unwrap_or(summary(d));
    for para in summary.split("\n\n") {
        for line in textwrap::wrap(para, MAX_LINE - 6) {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push('\n');
    }
    out.pop();
    for sev in [Severity::Error, Severity::Warning, Severity::Info] {
        let list: Vec<&Rejection> = d
            .findings
            .iter()
            .filter(|r| r.code.severity() == sev)
            .collect();
        if list.is_empty() {
            continue;
        }
        out.push('\n');
        out.push_str(heading(d.language, sev));
        out.push('\n');
        for r in list {
            let options = textwrap::Options::new(MAX_LINE - 2)
                .initial_indent("* ")
                .subsequent_indent("  ");
            for line in textwrap::wrap(&item(d.language, r), options) {
                out.push_str(line.trim_end());
                out.push('\n');
            }
        }
    }
    out
}
