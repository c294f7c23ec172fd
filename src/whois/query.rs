//! One WHOIS query line, checked and normalised.
//!
//! Input: the bytes a client sent before its line end (CRLF or LF already
//! removed), or a command-line argument. Output: a [`Query`] (a domain as
//! its lower-case A-label form, or an upper-case handle) or a [`QueryError`].
//! Invariants: never fails on any input; at most [`MAX_QUERY_BYTES`] bytes
//! are looked at; a domain given as a U-label is converted with the `idna`
//! crate (UTS 46, strict: STD3 rules and DNS lengths); a query containing a
//! dot is a domain, one without is a handle.

/// The longest query line accepted (bytes, without the line end).
pub const MAX_QUERY_BYTES: usize = 1024;

/// The longest handle (the template allows `[A-Z]{2,4}[0-9]{1,10}-SUFFIX`).
const MAX_HANDLE: usize = 64;

/// What to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// A domain name, lower-case ACE, no trailing dot.
    Domain(String),
    /// A contact handle, upper-case.
    Handle(String),
}

impl Query {
    /// The normalised text (what is looked up and echoed).
    pub fn text(&self) -> &str {
        match self {
            Query::Domain(s) | Query::Handle(s) => s,
        }
    }
}

/// Why a query cannot be looked up (the client's mistake, answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// Nothing but blanks.
    Empty,
    /// Longer than [`MAX_QUERY_BYTES`].
    TooLong,
    /// Not a domain name or a handle.
    Malformed(&'static str),
}

impl QueryError {
    /// The explanation sent to the client.
    pub fn message(self) -> String {
        match self {
            QueryError::Empty => "empty query; send a domain name or a contact handle".into(),
            QueryError::TooLong => format!("query longer than {MAX_QUERY_BYTES} bytes"),
            QueryError::Malformed(why) => format!("malformed query: {why}"),
        }
    }

    /// A short word for the log.
    pub fn as_str(self) -> &'static str {
        match self {
            QueryError::Empty => "empty",
            QueryError::TooLong => "too-long",
            QueryError::Malformed(_) => "malformed",
        }
    }
}

/// Checks and normalises one query.
pub fn parse_query(raw: &[u8]) -> Result<Query, QueryError> {
    if raw.len() > MAX_QUERY_BYTES {
        return Err(QueryError::TooLong);
    }
    let text = std::str::from_utf8(raw).map_err(|_| QueryError::Malformed("not UTF-8"))?;
    let text = text.trim_matches([' ', '\t', '\r', '\n']);
    if text.is_empty() {
        return Err(QueryError::Empty);
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(QueryError::Malformed(
            "one domain name or contact handle, without blanks or options",
        ));
    }
    if text.contains('.') {
        domain(text)
    } else {
        handle(text)
    }
}

fn domain(text: &str) -> Result<Query, QueryError> {
    let name = text.strip_suffix('.').unwrap_or(text);
    let bad = QueryError::Malformed("not a valid domain name");
    if name.is_empty() || name.starts_with('.') {
        return Err(bad);
    }
    let ascii = idna::domain_to_ascii_strict(name).map_err(|_| bad)?;
    // UTS 46 maps some dots (U+3002 ...) to '.', and may leave an empty label.
    if ascii.split('.').any(str::is_empty) {
        return Err(bad);
    }
    Ok(Query::Domain(ascii))
}

fn handle(text: &str) -> Result<Query, QueryError> {
    let ok = text.len() <= MAX_HANDLE
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !text.starts_with('-');
    if !ok {
        return Err(QueryError::Malformed(
            "a contact handle has letters, digits and hyphens (e.g. AM1001-NICAT)",
        ));
    }
    Ok(Query::Handle(text.to_ascii_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Result<Query, QueryError> {
        Ok(Query::Domain(s.into()))
    }

    fn h(s: &str) -> Result<Query, QueryError> {
        Ok(Query::Handle(s.into()))
    }

    #[test]
    fn queries_table() {
        let long = "a".repeat(MAX_QUERY_BYTES + 1);
        let cases: Vec<(&[u8], Result<Query, QueryError>)> = vec![
            (b"muster-handel.at", d("muster-handel.at")),
            (b"  Muster-Handel.AT.\r", d("muster-handel.at")),
            ("müller.at".as_bytes(), d("xn--mller-kva.at")),
            ("MÜLLER.at".as_bytes(), d("xn--mller-kva.at")),
            (b"xn--mller-kva.at", d("xn--mller-kva.at")),
            (b"am1001-nicat", h("AM1001-NICAT")),
            (b"AM1001-NICAT", h("AM1001-NICAT")),
            (b"", Err(QueryError::Empty)),
            (b" \t ", Err(QueryError::Empty)),
            (long.as_bytes(), Err(QueryError::TooLong)),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_query(raw), want, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn malformed_queries() {
        for raw in [
            &b"two words.at"[..],
            b"-T dn muster.at",
            b"muster..at",
            b".at",
            b"under_score.at",
            b"xn--zz--.at",
            b"\xff\xfe.at",
            b"AM1001_NICAT",
            b"-AM1001",
            b"semi;colon",
            b"nul\x00.at",
        ] {
            assert!(
                matches!(parse_query(raw), Err(QueryError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
