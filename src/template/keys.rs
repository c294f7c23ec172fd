//! The key tables of template.md sections 5 and 6: which key is allowed,
//! mandatory, repeatable, or continuable in which transaction.

use super::{ObjectClass, Transaction};

/// Whether a key is mandatory, optional or not allowed in a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// Must be given.
    Mandatory,
    /// May be given.
    Optional,
    /// Not allowed (5107).
    Forbidden,
}

/// The rule for one key in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRule {
    /// Mandatory, optional or forbidden.
    pub presence: Presence,
    /// May appear more than once.
    pub repeatable: bool,
    /// A free-text value that may have continuation lines.
    pub continuable: bool,
}

// Columns: Cr Up Ns De Un Rn Tr Ak Wd Q. M mandatory, O optional, - forbidden.
// Flags: r repeatable, c continuable.
const DOMAIN_KEYS: &[(&str, &str, &str)] = &[
    ("domain", "MMMMMMMMMM", ""),
    ("command", "MMMMMMMMMM", ""),
    ("registrant", "MO--------", ""),
    ("admin-c", "OO--------", ""),
    ("tech-c", "MO--------", "r"),
    ("zone-c", "OO--------", ""),
    ("nserver", "M-M-------", "r"),
    ("remarks", "O-O-------", "r"),
    ("client-hold", "-O--------", ""),
    ("client-lock", "-O--------", ""),
    ("scheduledate", "---O------", ""),
    ("period", "O----M----", ""),
    ("registrarinfo", "------O---", "c"),
    ("authinfo", "------O---", ""),
    ("zone-delete", "--------O-", ""),
    ("source", "MMMMMMMMMM", ""),
];

// Columns: Cr Up De Q.
const PERSON_KEYS: &[(&str, &str, &str)] = &[
    ("nic-hdl", "MMMM", ""),
    ("command", "MMMM", ""),
    ("type", "MO--", ""),
    ("personname", "OO--", "c"),
    ("organization", "OO--", "c"),
    ("street address", "MO--", "rc"),
    ("postal code", "MO--", ""),
    ("city", "MO--", ""),
    ("country", "MO--", ""),
    ("phone", "MO--", ""),
    ("fax-no", "OO--", ""),
    ("e-mail", "MO--", ""),
    ("whoishidephone", "OO--", ""),
    ("whoishidefax", "OO--", ""),
    ("whoishide", "OO--", ""),
    ("remarks", "OO--", "rc"),
    ("source", "MMMM", ""),
];

fn column(class: ObjectClass, t: Transaction) -> usize {
    match (class, t) {
        (ObjectClass::Domain, Transaction::Create) => 0,
        (ObjectClass::Domain, Transaction::Update) => 1,
        (ObjectClass::Domain, Transaction::Nscupdate) => 2,
        (ObjectClass::Domain, Transaction::Delete) => 3,
        (ObjectClass::Domain, Transaction::Undelete) => 4,
        (ObjectClass::Domain, Transaction::Renew) => 5,
        (ObjectClass::Domain, Transaction::Regtransfer) => 6,
        (ObjectClass::Domain, Transaction::Transferack | Transaction::Transfernack) => 7,
        (ObjectClass::Domain, Transaction::Billwithdraw) => 8,
        (ObjectClass::Domain, _) => 9,
        (ObjectClass::Person, Transaction::Perscreate) => 0,
        (ObjectClass::Person, Transaction::Persupdate) => 1,
        (ObjectClass::Person, Transaction::Persdelete) => 2,
        (ObjectClass::Person, _) => 3,
    }
}

/// The rule for `key` (normalised, lower-case) in a transaction on a class,
/// or `None` if the key is unknown for that class (5104).
pub fn key_rule(class: ObjectClass, t: Transaction, key: &str) -> Option<KeyRule> {
    let table = match class {
        ObjectClass::Domain => DOMAIN_KEYS,
        ObjectClass::Person => PERSON_KEYS,
    };
    let (_, cols, flags) = table.iter().find(|(k, _, _)| *k == key)?;
    let presence = match cols.as_bytes().get(column(class, t)) {
        Some(b'M') => Presence::Mandatory,
        Some(b'O') => Presence::Optional,
        _ => Presence::Forbidden,
    };
    Some(KeyRule {
        presence,
        repeatable: flags.contains('r'),
        continuable: flags.contains('c'),
    })
}

/// The mandatory keys of a transaction on a class, in table order.
pub fn mandatory_keys(class: ObjectClass, t: Transaction) -> impl Iterator<Item = &'static str> {
    let table = match class {
        ObjectClass::Domain => DOMAIN_KEYS,
        ObjectClass::Person => PERSON_KEYS,
    };
    let col = column(class, t);
    table
        .iter()
        .filter(move |(_, c, _)| c.as_bytes().get(col) == Some(&b'M'))
        .map(|(k, _, _)| *k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_have_full_columns() {
        assert!(DOMAIN_KEYS.iter().all(|(_, c, _)| c.len() == 10));
        assert!(PERSON_KEYS.iter().all(|(_, c, _)| c.len() == 4));
    }

    #[test]
    fn rules_follow_the_spec_tables() {
        use ObjectClass::*;
        use Transaction::*;
        let cases = [
            (Domain, Create, "nserver", Some(Presence::Mandatory)),
            (Domain, Update, "nserver", Some(Presence::Forbidden)),
            (Domain, Renew, "period", Some(Presence::Mandatory)),
            (Domain, Check, "registrant", Some(Presence::Forbidden)),
            (Domain, Create, "personname", None),
            (
                Person,
                Perscreate,
                "street address",
                Some(Presence::Mandatory),
            ),
            (Person, Persdelete, "city", Some(Presence::Forbidden)),
            (Person, Info, "nic-hdl", Some(Presence::Mandatory)),
        ];
        for (class, t, key, want) in cases {
            assert_eq!(
                key_rule(class, t, key).map(|r| r.presence),
                want,
                "{key} in {t:?}"
            );
        }
        let m: Vec<_> = mandatory_keys(Domain, Create).collect();
        assert_eq!(
            m,
            [
                "domain",
                "command",
                "registrant",
                "tech-c",
                "nserver",
                "source"
            ]
        );
    }
}
