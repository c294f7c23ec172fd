//! Domain names as the zone file writes them.
//!
//! Input: a dotted name from the store or the configuration (a trailing dot
//! is allowed), or a mailbox for the SOA RNAME. Output: a [`Name`] that
//! prints in absolute master-file form (trailing dot, RFC 1035 section 5.1
//! escapes) and sorts in DNSSEC canonical order (RFC 4034 section 6.1).
//! Invariants: labels are lower case, 1..=63 octets, the name at most 255
//! octets on the wire; any octet other than a letter, digit, `-` or `_` is
//! escaped, so no name can break the line it is written on.

use std::fmt;

/// A fully qualified domain name, stored with its labels reversed (the
/// derived order is then the canonical DNS order).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    rev: Vec<Vec<u8>>,
}

/// Why a text is not a domain name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// No labels at all (the root is never written here).
    #[error("empty name")]
    Empty,
    /// Two dots in a row, or a leading dot.
    #[error("empty label")]
    EmptyLabel,
    /// A label longer than 63 octets.
    #[error("label longer than 63 octets")]
    LongLabel,
    /// More than 255 octets on the wire.
    #[error("name longer than 255 octets")]
    LongName,
    /// A mailbox without `@`, or with an empty local part.
    #[error("not a mail address")]
    NotMailbox,
}

fn check(rev: Vec<Vec<u8>>) -> Result<Name, NameError> {
    if rev.is_empty() {
        return Err(NameError::Empty);
    }
    if rev.iter().any(Vec::is_empty) {
        return Err(NameError::EmptyLabel);
    }
    if rev.iter().any(|l| l.len() > 63) {
        return Err(NameError::LongLabel);
    }
    // Each label costs its length octet; the root label adds one.
    if rev.iter().map(|l| l.len() + 1).sum::<usize>() + 1 > 255 {
        return Err(NameError::LongName);
    }
    Ok(Name { rev })
}

impl Name {
    /// A dotted name such as `example.at` or `example.at.`.
    pub fn parse(text: &str) -> Result<Name, NameError> {
        let text = text.strip_suffix('.').unwrap_or(text);
        if text.is_empty() {
            return Err(NameError::Empty);
        }
        check(
            text.split('.')
                .rev()
                .map(|l| l.to_ascii_lowercase().into_bytes())
                .collect(),
        )
    }

    /// The SOA RNAME of a mailbox: `dns.admin@nic.at` is `dns\.admin.nic.at.`
    /// (the local part is one label, RFC 1035 section 8).
    pub fn mailbox(address: &str) -> Result<Name, NameError> {
        let (local, domain) = address.rsplit_once('@').ok_or(NameError::NotMailbox)?;
        if local.is_empty() {
            return Err(NameError::NotMailbox);
        }
        let domain = Name::parse(domain)?;
        let mut rev = domain.rev;
        rev.push(local.to_ascii_lowercase().into_bytes());
        check(rev)
    }

    /// True if `self` is `other` or a name below it.
    pub fn is_at_or_below(&self, other: &Name) -> bool {
        self.rev.starts_with(&other.rev)
    }

    /// True if `self` is strictly below `other`.
    pub fn is_below(&self, other: &Name) -> bool {
        self.rev.len() > other.rev.len() && self.is_at_or_below(other)
    }

    /// True if `self` or one of its ancestors is in `names`.
    pub fn is_at_or_below_one_of(&self, names: &std::collections::BTreeSet<Name>) -> bool {
        (1..=self.rev.len()).any(|n| {
            names.contains(&Name {
                rev: self.rev[..n].to_vec(),
            })
        })
    }

    /// The most specific of `zones` that `self` is strictly below.
    pub fn owner_zone<'z>(&self, zones: &'z [Name]) -> Option<&'z Name> {
        zones
            .iter()
            .filter(|z| self.is_below(z))
            .max_by_key(|z| z.rev.len())
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for label in self.rev.iter().rev() {
            for &b in label {
                match b {
                    b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => {
                        write!(f, "{}", char::from(b))?;
                    }
                    // Printable specials: a backslash before the character.
                    0x21..=0x7e => write!(f, "\\{}", char::from(b))?,
                    // Blanks, controls and non-ASCII octets: \DDD.
                    _ => write!(f, "\\{b:03}")?,
                }
            }
            f.write_str(".")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn n(s: &str) -> Name {
        Name::parse(s).unwrap()
    }

    #[test]
    fn names_print_absolute_and_lower_case() {
        for (input, printed) in [
            ("example.at", "example.at."),
            ("Example.AT.", "example.at."),
            ("ns1.example.at", "ns1.example.at."),
            ("_dmarc.x-y.at", "_dmarc.x-y.at."),
            ("xn--mnchen-3ya.at", "xn--mnchen-3ya.at."),
        ] {
            assert_eq!(n(input).to_string(), printed, "{input}");
        }
    }

    #[test]
    fn specials_are_escaped() {
        for (input, printed) in [
            ("a;b.at", "a\\;b.at."),
            ("a b.at", "a\\032b.at."),
            ("a\\b.at", "a\\\\b.at."),
            ("a\"b.at", "a\\\"b.at."),
            ("(x).at", "\\(x\\).at."),
            ("$x.at", "\\$x.at."),
            ("@.at", "\\@.at."),
            ("t\tab.at", "t\\009ab.at."),
            ("m\u{fc}n.at", "m\\195\\188n.at."),
        ] {
            assert_eq!(n(input).to_string(), printed, "{input:?}");
        }
    }

    #[test]
    fn mailboxes_become_one_label() {
        let cases = [
            (
                "hostmaster@registry.example",
                "hostmaster.registry.example.",
            ),
            ("dns.admin@nic.at", "dns\\.admin.nic.at."),
            ("Hostmaster@NIC.at", "hostmaster.nic.at."),
        ];
        for (input, printed) in cases {
            assert_eq!(Name::mailbox(input).unwrap().to_string(), printed);
        }
        for bad in ["nobody", "@nic.at", "a@", "a@b..at"] {
            assert!(Name::mailbox(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_names_are_refused() {
        assert_eq!(Name::parse(""), Err(NameError::Empty));
        assert_eq!(Name::parse("."), Err(NameError::Empty));
        assert_eq!(Name::parse("a..at"), Err(NameError::EmptyLabel));
        assert_eq!(Name::parse(".at"), Err(NameError::EmptyLabel));
        let long = "a".repeat(64);
        assert_eq!(
            Name::parse(&format!("{long}.at")),
            Err(NameError::LongLabel)
        );
        assert!(Name::parse(&format!("{}.at", "a".repeat(63))).is_ok());
        // 4 labels of 63 octets: 4 * 64 + 1 = 257 octets on the wire.
        let big = vec!["b".repeat(63); 4].join(".");
        assert_eq!(Name::parse(&big), Err(NameError::LongName));
        let fits = format!("{}.{}", vec!["b".repeat(63); 3].join("."), "c".repeat(61));
        assert!(Name::parse(&fits).is_ok());
    }

    #[test]
    fn canonical_order_groups_a_delegation_with_its_glue() {
        let mut names: Vec<Name> = [
            "z.at", "ns1.a.at", "at", "b.at", "a.at", "co.at", "x.co.at", "ns1.z.at", "a-b.at",
        ]
        .iter()
        .map(|s| n(s))
        .collect();
        names.sort();
        let printed: Vec<String> = names.iter().map(|x| x.to_string()).collect();
        assert_eq!(
            printed,
            [
                "at.",
                "a.at.",
                "ns1.a.at.",
                "a-b.at.",
                "b.at.",
                "co.at.",
                "x.co.at.",
                "z.at.",
                "ns1.z.at."
            ]
        );
    }

    #[test]
    fn the_most_specific_zone_owns_a_name() {
        let zones = [n("at"), n("co.at"), n("or.at")];
        let owner = |s: &str| n(s).owner_zone(&zones).map(|z| z.to_string());
        assert_eq!(owner("example.at").as_deref(), Some("at."));
        assert_eq!(owner("example.co.at").as_deref(), Some("co.at."));
        assert_eq!(owner("ns1.example.co.at").as_deref(), Some("co.at."));
        assert_eq!(owner("co.at").as_deref(), Some("at."));
        assert_eq!(owner("at"), None);
        assert_eq!(owner("example.net"), None);
        assert_eq!(owner("xco.at").as_deref(), Some("at."));
        assert!(n("ns1.example.at").is_below(&n("example.at")));
        assert!(n("example.at").is_at_or_below(&n("example.at")));
        assert!(!n("example.at").is_below(&n("example.at")));
        assert!(!n("badexample.at").is_below(&n("example.at")));
        let cuts = [n("example.at"), n("x.co.at")].into_iter().collect();
        assert!(n("ns1.example.at").is_at_or_below_one_of(&cuts));
        assert!(n("example.at").is_at_or_below_one_of(&cuts));
        assert!(n("a.b.x.co.at").is_at_or_below_one_of(&cuts));
        assert!(!n("ns1.badexample.at").is_at_or_below_one_of(&cuts));
        assert!(!n("co.at").is_at_or_below_one_of(&cuts));
    }
}
