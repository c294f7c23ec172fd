//! The object text inside the CDATA (template.md section 3), parsed leniently.
//!
//! Input: the CDATA text. Output: a [`RawObject`] (each attribute with its
//! normalised key, joined value and line numbers) plus the grammar errors:
//! 5005 version, 5101 text before it, 5102 no colon, 5109 object count, 5301
//! terms line. Key tables and values are judged later, in `spec`.
//! Line 1 is the first line after `<![CDATA[`.

use crate::rejection::{Code, Rejection};
use nom::branch::alt;
use nom::bytes::complete::{tag, take_till1};
use nom::character::complete::{alpha1, alphanumeric1, char, space0, space1};
use nom::combinator::{all_consuming, recognize, rest};
use nom::multi::many0;
use nom::sequence::{pair, preceded};
use nom::{IResult, Parser};

/// One `key: value` attribute, with its continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawAttr {
    /// Lower-case key, runs of spaces folded to one.
    pub key: String,
    /// Whether the key text follows the grammar (else 5103).
    pub key_ok: bool,
    /// The value: padding removed, continuation lines joined with one space.
    pub value: String,
    /// The attribute's line.
    pub line: u32,
    /// Lines of continuation (5106 where the key does not allow them).
    pub continuations: Vec<u32>,
}

/// The first object of the template, as written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawObject {
    /// Attributes in order.
    pub attrs: Vec<RawAttr>,
}

/// One line, classified.
#[derive(Debug, PartialEq, Eq)]
enum Line<'a> {
    Blank,
    Comment,
    Continuation(&'a str),
    Attr { key: &'a str, value: &'a str },
    NoColon,
}

fn attr_line(input: &str) -> IResult<&str, (&str, &str)> {
    let (input, key) = take_till1(|c| c == ':').parse(input)?;
    let (input, _) = char(':').parse(input)?;
    let (input, _) = space0.parse(input)?;
    let (input, value) = rest.parse(input)?;
    Ok((input, (key, value)))
}

fn classify(line: &str) -> Line<'_> {
    if line.trim().is_empty() {
        return Line::Blank;
    }
    if line.starts_with('#') {
        return Line::Comment;
    }
    if let Some(cont) = line.strip_prefix(' ').or_else(|| line.strip_prefix('+')) {
        return Line::Continuation(cont.trim());
    }
    match attr_line(line) {
        Ok((_, (key, value))) => Line::Attr {
            key,
            value: value.trim_end(),
        },
        Err(_) => Line::NoColon,
    }
}

/// `key = ALPHA *(ALPHA / DIGIT / "-" / (1*SP (ALPHA / DIGIT)))`, whole text.
fn key_grammar(key: &str) -> bool {
    let word = alt((
        alphanumeric1,
        tag("-"),
        recognize(preceded(space1, alphanumeric1)),
    ));
    let mut parser = all_consuming(recognize(pair(alpha1, many0(word))));
    let r: IResult<&str, &str> = parser.parse(key);
    r.is_ok()
}

fn normalise_key(key: &str) -> String {
    key.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

fn is_version_key(key: &str) -> bool {
    normalise_key(key) == "template version"
}

const TERMS_KEY: &str = "currentnicattermsandconditionsaccepted";

#[derive(Default)]
struct State {
    version_seen: bool,
    stray_reported: bool,
    terms_seen: bool,
    objects: u32,
    in_object: bool,
    first: RawObject,
    errors: Vec<Rejection>,
}

/// Parses the object text; returns the first object (if any) and grammar errors.
pub fn parse_object(body: &str) -> (Option<RawObject>, Vec<Rejection>) {
    let body = body
        .strip_prefix("\r\n")
        .or_else(|| body.strip_prefix('\n'))
        .unwrap_or(body);
    let mut st = State::default();
    for (idx, raw_line) in body.lines().enumerate() {
        let n = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let line = classify(raw_line.strip_suffix('\r').unwrap_or(raw_line));
        step(&mut st, n, line);
    }
    if !st.version_seen {
        st.errors
            .push(Rejection::new(Code::TemplateVersion).detail("version line missing"));
    }
    if st.objects == 0 {
        st.errors
            .push(Rejection::new(Code::ObjectCount).detail("no object"));
    }
    if !st.terms_seen {
        st.errors.push(
            Rejection::new(Code::TermsLine)
                .key(TERMS_KEY)
                .detail("missing"),
        );
    }
    let obj = (st.objects > 0).then_some(st.first);
    (obj, st.errors)
}

/// Feeds one classified line to the parser state.
fn step(st: &mut State, n: u32, line: Line<'_>) {
    if !st.version_seen {
        before_version(st, n, line);
        return;
    }
    match line {
        Line::Blank => st.in_object = false,
        Line::Comment => {}
        _ if st.terms_seen => {
            st.errors.push(
                Rejection::new(Code::ObjectCount)
                    .at(n)
                    .detail("text after the terms line"),
            );
            st.terms_seen = true;
        }
        Line::Attr { key, value } if normalise_key(key) == TERMS_KEY => {
            st.terms_seen = true;
            st.in_object = false;
            if value != "Y" {
                st.errors
                    .push(Rejection::new(Code::TermsLine).at(n).key(TERMS_KEY));
            }
        }
        Line::Attr { key, value } => attribute(st, n, key, value),
        Line::Continuation(text) => continuation(st, n, text),
        Line::NoColon => st.errors.push(Rejection::new(Code::LineWithoutColon).at(n)),
    }
}

/// A line before the version line: only blanks, comments and the version.
fn before_version(st: &mut State, n: u32, line: Line<'_>) {
    match line {
        Line::Blank | Line::Comment => {}
        Line::Attr { key, value } if is_version_key(key) => {
            st.version_seen = true;
            if value != "5.0" {
                st.errors.push(
                    Rejection::new(Code::TemplateVersion)
                        .at(n)
                        .detail(format!("{value:.20}")),
                );
            }
        }
        _ if !st.stray_reported => {
            st.stray_reported = true;
            st.errors
                .push(Rejection::new(Code::TextBeforeVersion).at(n));
        }
        _ => {}
    }
}

/// A `key: value` line: starts an object after a blank line; only the first
/// object's attributes are kept.
fn attribute(st: &mut State, n: u32, key: &str, value: &str) {
    if !st.in_object {
        st.in_object = true;
        st.objects += 1;
        if st.objects == 2 {
            st.errors.push(
                Rejection::new(Code::ObjectCount)
                    .at(n)
                    .detail("more than one object"),
            );
        }
    }
    if st.objects == 1 {
        st.first.attrs.push(RawAttr {
            key: normalise_key(key),
            key_ok: key_grammar(key),
            value: value.to_string(),
            line: n,
            continuations: Vec::new(),
        });
    }
}

/// A continuation line: joins the previous attribute's value with one space.
fn continuation(st: &mut State, n: u32, text: &str) {
    match st.first.attrs.last_mut() {
        Some(prev) if st.in_object && st.objects == 1 => {
            if !text.is_empty() {
                if !prev.value.is_empty() {
                    prev.value.push(' ');
                }
                prev.value.push_str(text);
            }
            prev.continuations.push(n);
        }
        _ if st.in_object => {}
        _ => st.errors.push(
            Rejection::new(Code::ContinuationNotAllowed)
                .at(n)
                .detail("no value to continue"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_classified() {
        let table: &[(&str, Line<'_>)] = &[
            ("", Line::Blank),
            ("   ", Line::Blank),
            ("# note", Line::Comment),
            ("  more text", Line::Continuation("more text")),
            ("+", Line::Continuation("")),
            (
                "domain: example.at",
                Line::Attr {
                    key: "domain",
                    value: "example.at",
                },
            ),
            (
                "street  address:   Main St 1",
                Line::Attr {
                    key: "street  address",
                    value: "Main St 1",
                },
            ),
            (
                "registrant:",
                Line::Attr {
                    key: "registrant",
                    value: "",
                },
            ),
            (
                "remarks: a:b",
                Line::Attr {
                    key: "remarks",
                    value: "a:b",
                },
            ),
            ("no colon here", Line::NoColon),
        ];
        for (text, want) in table {
            assert_eq!(&classify(text), want, "{text:?}");
        }
    }

    #[test]
    fn key_grammar_table() {
        for ok in [
            "domain",
            "tech-c",
            "street address",
            "street   address",
            "e-mail",
            "a1",
        ] {
            assert!(key_grammar(ok), "{ok}");
        }
        for bad in ["1abc", "-x", "domain ", "na_me", "x.y", " key"] {
            assert!(!key_grammar(bad), "{bad}");
        }
        assert_eq!(normalise_key("Street   Address"), "street address");
    }

    const GOOD: &str = "\nTemplate Version: 5.0\n\ndomain: example.at\ncommand: create\n\
        remarks: one\n  two\nsource: AT-DOM\n\ncurrentNicAtTermsAndConditionsAccepted: Y\n";

    #[test]
    fn a_good_body() {
        let (obj, errors) = parse_object(GOOD);
        assert!(errors.is_empty(), "{errors:?}");
        let obj = obj.unwrap();
        assert_eq!(obj.attrs.len(), 4);
        assert_eq!(obj.attrs[2].value, "one two");
        assert_eq!(obj.attrs[2].continuations, vec![6]);
        assert_eq!(obj.attrs[0].line, 3);
    }

    type Found = Vec<(u16, Option<u32>)>;

    fn codes(body: &str) -> Found {
        parse_object(body)
            .1
            .iter()
            .map(|r| (r.code.number(), r.line))
            .collect()
    }

    #[test]
    fn grammar_errors_with_lines() {
        let cases: &[(&str, Found)] = &[
            (
                "junk\nTemplate Version: 5.0\n\na: b\nsource: X\n\ncurrentNicAtTermsAndConditionsAccepted: Y\n",
                vec![(5101, Some(1))],
            ),
            (
                "Template Version: 4.0\n\na: b\n\ncurrentNicAtTermsAndConditionsAccepted: Y\n",
                vec![(5005, Some(1))],
            ),
            (
                "a: b\n",
                vec![(5101, Some(1)), (5005, None), (5109, None), (5301, None)],
            ),
            (
                "Template Version: 5.0\n\na: b\nbroken line\n\ncurrentNicAtTermsAndConditionsAccepted: N\n",
                vec![(5102, Some(4)), (5301, Some(6))],
            ),
            (
                "Template Version: 5.0\n\na: b\n\nc: d\n\ncurrentNicAtTermsAndConditionsAccepted: Y\n",
                vec![(5109, Some(5))],
            ),
            (
                "Template Version: 5.0\n\na: b\n\ncurrentNicAtTermsAndConditionsAccepted: Y\nx: y\n",
                vec![(5109, Some(6))],
            ),
        ];
        for (body, want) in cases {
            assert_eq!(&codes(body), want, "{body:?}");
        }
    }
}
