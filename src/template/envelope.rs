//! The XML envelope `regframe` / `regheader` / `regbody` (template.md section 2).
//!
//! quick-xml reads events; nothing is ever expanded: a DOCTYPE, an entity or
//! character reference, a processing instruction or a comment is refused.
//! Every header problem is reported (5001 / 5002 / 5003 / 5004), and the
//! fields that could be read are returned even then, so the reply can echo them.
//! The reader stops at the first excess over the [`Limits`] (nesting depth,
//! element count, attributes per element): 5001.

use super::{Language, Transaction};
use crate::config::Limits;
use crate::rejection::{Code, Rejection};
use quick_xml::Reader;
use quick_xml::events::Event;

/// The header fields as far as they could be read (for the reply and journal).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderFields {
    /// `registrar-id`, if valid.
    pub registrar_id: Option<u32>,
    /// `client-trid`, if valid.
    pub client_trid: Option<String>,
    /// `transaction`, if known.
    pub transaction: Option<Transaction>,
    /// `accept-language` (default `de`).
    pub language: Language,
    /// `dry-run: yes`.
    pub dry_run: bool,
    /// The object's name as written (first attribute's value), for the reply.
    pub object: Option<String>,
    /// The CDATA text, when exactly one section could be read: set even when
    /// the header has errors, so the object is still checked (every error at once).
    pub body: Option<String>,
}

/// A fully valid envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The transaction.
    pub transaction: Transaction,
    /// The registrar named in the header.
    pub registrar_id: u32,
    /// The registrar's transaction id.
    pub client_trid: String,
    /// Reply language.
    pub language: Language,
    /// Check only, change nothing.
    pub dry_run: bool,
    /// The CDATA text: the object text of section 3.
    pub body: String,
}

const HEADER_ELEMENTS: &[&str] = &[
    "version",
    "transaction",
    "count",
    "accept-language",
    "registrar-id",
    "client-trid",
    "dry-run",
];

#[derive(Default)]
struct Collected {
    header: Vec<(String, String)>,
    cdata: Vec<String>,
    body_text: bool,
    errors: Vec<Rejection>,
}

/// Parses the envelope; returns what could be read, and the envelope or every error.
pub fn parse_envelope(
    text: &str,
    limits: &Limits,
) -> (HeaderFields, Result<Envelope, Vec<Rejection>>) {
    let mut c = Collected::default();
    let complete = match walk(text, limits, &mut c) {
        Ok(()) => true,
        Err(e) => {
            c.errors.push(e);
            false
        }
    };
    let mut fields = HeaderFields::default();
    let mut errors = std::mem::take(&mut c.errors);
    check_header(&c.header, &mut fields, &mut errors, complete);
    let body = match c.cdata.as_slice() {
        [one] if !c.body_text => Some(one.clone()),
        _ if !complete => None,
        _ => {
            errors.push(
                Rejection::new(Code::HeaderElement)
                    .key("regbody")
                    .detail("regbody must hold exactly one CDATA section"),
            );
            None
        }
    };
    fields.body = body.clone();
    if !errors.is_empty() {
        errors.dedup();
        return (fields, Err(errors));
    }
    let envelope = match (
        fields.transaction,
        fields.registrar_id,
        &fields.client_trid,
        body,
    ) {
        (Some(transaction), Some(registrar_id), Some(client_trid), Some(body)) => Envelope {
            transaction,
            registrar_id,
            client_trid: client_trid.clone(),
            language: fields.language,
            dry_run: fields.dry_run,
            body,
        },
        _ => return (fields, Err(vec![Rejection::new(Code::HeaderElement)])),
    };
    (fields, Ok(envelope))
}

fn malformed(detail: impl Into<String>) -> Rejection {
    Rejection::new(Code::MalformedXml).detail(detail)
}

/// Walks the events; structural problems are 5001, element problems 5002.
fn walk(text: &str, limits: &Limits, c: &mut Collected) -> Result<(), Rejection> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut path: Vec<String> = Vec::new();
    let mut seen_root = false;
    let mut elements = 0_usize;
    loop {
        let event = reader.read_event().map_err(|e| malformed(e.to_string()))?;
        if let Event::Start(s) | Event::Empty(s) = &event {
            elements += 1;
            within_limits(s, path.len() + 1, elements, limits)?;
        }
        match event {
            Event::Eof => break,
            Event::Decl(_) if !seen_root && path.is_empty() => {}
            Event::Decl(_) | Event::PI(_) => return Err(malformed("processing instruction")),
            Event::DocType(_) => return Err(malformed("DOCTYPE not allowed")),
            Event::GeneralRef(_) => return Err(malformed("entity references not allowed")),
            Event::Comment(_) => return Err(malformed("XML comments not allowed")),
            Event::Start(s) => {
                let name = String::from_utf8_lossy(s.name().as_ref()).into_owned();
                if s.attributes_raw().iter().any(|b| !b.is_ascii_whitespace()) {
                    c.errors.push(
                        Rejection::new(Code::HeaderElement)
                            .key(&name)
                            .detail("attributes not allowed"),
                    );
                }
                open(&mut path, &name, &mut seen_root, c)?;
                path.push(name);
            }
            Event::Empty(s) => {
                let name = String::from_utf8_lossy(s.name().as_ref()).into_owned();
                open(&mut path, &name, &mut seen_root, c)?;
                if path.len() == 2 && path[1] == "regheader" {
                    c.header.push((name, String::new()));
                }
            }
            Event::End(_) => {
                path.pop();
            }
            Event::Text(t) => {
                let raw = t.decode().map_err(|e| malformed(e.to_string()))?;
                text_event(&path, &raw, c)?;
            }
            Event::CData(d) => {
                let raw = d.decode().map_err(|e| malformed(e.to_string()))?;
                if path.len() == 2 && path[1] == "regbody" {
                    c.cdata.push(raw.into_owned());
                } else {
                    return Err(malformed("CDATA outside regbody"));
                }
            }
        }
    }
    if !path.is_empty() {
        return Err(malformed("unclosed element"));
    }
    if !seen_root {
        return Err(malformed("no regframe element"));
    }
    Ok(())
}

/// 5001 if an element goes past a limit: too deep, too many, too many attributes.
fn within_limits(
    s: &quick_xml::events::BytesStart<'_>,
    depth: usize,
    elements: usize,
    limits: &Limits,
) -> Result<(), Rejection> {
    if depth > limits.max_xml_depth {
        return Err(malformed(format!(
            "nested deeper than {} elements",
            limits.max_xml_depth
        )));
    }
    if elements > limits.max_xml_elements {
        return Err(malformed(format!(
            "more than {} elements",
            limits.max_xml_elements
        )));
    }
    let attributes = s
        .attributes()
        .with_checks(false)
        .take(limits.max_xml_attributes.saturating_add(1))
        .count();
    if attributes > limits.max_xml_attributes {
        return Err(malformed(format!(
            "more than {} attributes on one element",
            limits.max_xml_attributes
        )));
    }
    Ok(())
}

fn open(
    path: &mut [String],
    name: &str,
    seen_root: &mut bool,
    c: &mut Collected,
) -> Result<(), Rejection> {
    match path.len() {
        0 if name == "regframe" && !*seen_root => *seen_root = true,
        0 => return Err(malformed(format!("unexpected root element {name}"))),
        1 if name == "regheader" || name == "regbody" => {
            if c.header.iter().any(|(n, _)| n == name) {
                c.errors.push(
                    Rejection::new(Code::HeaderElement)
                        .key(name)
                        .detail("repeated"),
                );
            }
            c.header.push((name.to_string(), String::new()));
        }
        2 if path[1] == "regheader" && HEADER_ELEMENTS.contains(&name) => {}
        _ => {
            c.errors.push(
                Rejection::new(Code::HeaderElement)
                    .key(name)
                    .detail("element not allowed here"),
            );
        }
    }
    Ok(())
}

fn text_event(path: &[String], raw: &str, c: &mut Collected) -> Result<(), Rejection> {
    let blank = raw.trim().is_empty();
    match path {
        [_, h, el] if h == "regheader" => {
            match c.header.iter_mut().rev().find(|(n, _)| n == el) {
                Some(slot) if slot.1.is_empty() => slot.1.push_str(raw),
                _ => c.header.push((el.clone(), raw.to_string())),
            }
            Ok(())
        }
        [_, b] if b == "regbody" => {
            c.body_text |= !blank;
            Ok(())
        }
        _ if blank => Ok(()),
        _ => Err(malformed("text outside the elements")),
    }
}

/// Checks each header element: present, once, valid. After a 5001 the XML was
/// not read to its end, so absence is not reported (it would be an artefact).
fn check_header(
    header: &[(String, String)],
    fields: &mut HeaderFields,
    errors: &mut Vec<Rejection>,
    complete: bool,
) {
    for name in ["regheader", "regbody"] {
        if complete && !header.iter().any(|(n, _)| n == name) {
            errors.push(
                Rejection::new(Code::HeaderElement)
                    .key(name)
                    .detail("missing"),
            );
        }
    }
    for name in HEADER_ELEMENTS {
        let values: Vec<&str> = header
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
            .collect();
        let value = match values.as_slice() {
            [] if !complete || matches!(*name, "accept-language" | "dry-run") => continue,
            [] => {
                errors.push(
                    Rejection::new(Code::HeaderElement)
                        .key(name)
                        .detail("missing"),
                );
                continue;
            }
            [one] => *one,
            _ => {
                errors.push(
                    Rejection::new(Code::HeaderElement)
                        .key(name)
                        .detail("repeated"),
                );
                continue;
            }
        };
        if let Err(r) = header_value(name, value, fields) {
            errors.push(r.key(name));
        }
    }
}

fn header_value(name: &str, value: &str, fields: &mut HeaderFields) -> Result<(), Rejection> {
    let invalid =
        || Rejection::new(Code::HeaderElement).detail(format!("invalid value {value:.40}"));
    match name {
        "version" if value == "1.1" => {}
        "transaction" => {
            fields.transaction = Some(Transaction::from_name(value).ok_or_else(|| {
                Rejection::new(Code::UnknownTransaction).detail(format!("{value:.40}"))
            })?);
        }
        "count" if value == "1" => {}
        "count" => return Err(Rejection::new(Code::CountNotOne).detail(format!("{value:.20}"))),
        "accept-language" if value == "de" => fields.language = Language::De,
        "accept-language" if value == "en" => fields.language = Language::En,
        "registrar-id" => {
            let ok =
                !value.is_empty() && value.len() <= 5 && value.bytes().all(|b| b.is_ascii_digit());
            match value.parse::<u32>() {
                Ok(n) if ok && (1..=99_999).contains(&n) => fields.registrar_id = Some(n),
                _ => return Err(invalid()),
            }
        }
        "client-trid" => {
            let ok = (3..=64).contains(&value.len())
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:_-".contains(&b));
            if !ok {
                return Err(invalid());
            }
            fields.client_trid = Some(value.to_string());
        }
        "dry-run" if value == "yes" => fields.dry_run = true,
        "dry-run" if value == "no" => {}
        _ => return Err(invalid()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(header: &str, body: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"US-ASCII\"?>\n<regframe>\n<regheader>\n{header}</regheader>\n\
             <regbody>{body}</regbody>\n</regframe>\n"
        )
    }

    const GOOD: &str = "<version>1.1</version>\n<transaction>create</transaction>\n<count>1</count>\n\
        <registrar-id>1001</registrar-id>\n<client-trid>T-1</client-trid>\n";

    #[test]
    fn a_good_envelope() {
        let (_, env) = parse_envelope(&frame(GOOD, "<![CDATA[\nx\n]]>"), &Limits::default());
        let env = env.unwrap();
        assert_eq!(env.transaction, Transaction::Create);
        assert_eq!(env.registrar_id, 1001);
        assert_eq!(env.body, "\nx\n");
        assert_eq!(env.language, Language::De);
    }

    fn codes(text: &str) -> Vec<(u16, Option<String>)> {
        parse_envelope(text, &Limits::default())
            .1
            .unwrap_err()
            .into_iter()
            .map(|r| (r.code.number(), r.key))
            .collect()
    }

    #[test]
    fn header_errors_are_all_reported() {
        let h = "<version>1.0</version>\n<transaction>frobnicate</transaction>\n<count>2</count>\n\
                 <registrar-id>0</registrar-id>\n<client-trid>a b</client-trid>\n<colour>red</colour>\n";
        let got = codes(&frame(h, "<![CDATA[x]]>"));
        let nums: Vec<u16> = got.iter().map(|g| g.0).collect();
        for want in [5002, 5003, 5004] {
            assert!(nums.contains(&want), "{want} in {got:?}");
        }
        assert!(got.contains(&(5002, Some("colour".into()))));
        assert!(got.contains(&(5002, Some("client-trid".into()))));
    }

    #[test]
    fn nothing_is_expanded() {
        let bomb = "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY a \"aaaa\">]>\n<regframe>&a;</regframe>";
        assert_eq!(codes(bomb)[0].0, 5001);
        assert_eq!(codes(&frame(GOOD, "&amp;<![CDATA[x]]>"))[0].0, 5001);
        assert_eq!(codes("<regframe><regheader>")[0].0, 5001);
        assert_eq!(
            codes("<?xml version=\"1.0\"?><?php x ?><regframe/>")[0].0,
            5001
        );
    }

    #[test]
    fn regbody_needs_one_cdata() {
        let got = codes(&frame(GOOD, "<![CDATA[a]]><![CDATA[b]]>"));
        assert_eq!(got, vec![(5002, Some("regbody".into()))]);
        let got = codes(&frame(GOOD, "plain text"));
        assert_eq!(got, vec![(5002, Some("regbody".into()))]);
    }

    #[test]
    fn repeated_elements() {
        let h = format!("{GOOD}<count>1</count>\n");
        assert_eq!(
            codes(&frame(&h, "<![CDATA[x]]>")),
            vec![(5002, Some("count".into()))]
        );
    }
}
