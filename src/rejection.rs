//! Rejections: the user's mistakes, as stable codes (reply.md section 3).
//!
//! Input: produced by every stage that judges what a registrar sent (`intake`,
//! `auth`, `template`, `policy`). Output: rendered by `reply` into the machine
//! block (`error:` / `warning:` / `info:` lines) and the human text.
//! Invariants: a code's number never changes; the class (first digit) decides
//! whether it is an error, a warning or an info; texts are 7-bit ASCII.

use std::fmt;

macro_rules! codes {
    ($($name:ident = $num:literal, $en:literal, $de:literal;)*) => {
        /// A stable reply code (reply.md section 3).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($name),* }

        impl Code {
            /// Every code, in numeric order.
            pub const ALL: &'static [Code] = &[$(Code::$name),*];

            /// The code's number, e.g. 4008.
            pub fn number(self) -> u16 {
                match self { $(Code::$name => $num),* }
            }

            /// The short English text used in the machine block.
            pub fn text_en(self) -> &'static str {
                match self { $(Code::$name => $en),* }
            }

            /// The short German text (ASCII transliteration) for human text.
            pub fn text_de(self) -> &'static str {
                match self { $(Code::$name => $de),* }
            }

            /// Looks a code up by its number.
            pub fn from_number(n: u16) -> Option<Code> {
                match n { $($num => Some(Code::$name),)* _ => None }
            }
        }
    };
}

codes! {
    Executed = 1000, "command completed successfully", "Auftrag ausgefuehrt";
    PendingHolder = 1001, "pending holder confirmation", "wartet auf Bestaetigung des Inhabers";
    PendingObjection = 1002, "pending objection period", "wartet auf Ablauf der Einspruchsfrist";
    QualityControl = 1003, "selected for quality control", "fuer die Qualitaetskontrolle ausgewaehlt";
    PendingLosing = 1004, "pending losing registrar's decision", "wartet auf Entscheidung des abgebenden Registrars";
    DryRun = 1005, "dry run, nothing changed", "Probelauf, nichts geaendert";
    Charged = 1006, "charged", "verrechnet";
    UnsignedTextIgnored = 3001, "unsigned text ignored", "unsignierter Text ignoriert";
    ValueNormalised = 3003, "value normalised", "Wert normalisiert";
    NoRegistrarSubject = 4001, "Subject must begin with REGISTRAR:", "Betreff muss mit REGISTRAR: beginnen";
    NonAscii = 4003, "non-ASCII byte or charset", "Nicht-ASCII-Zeichen oder Zeichensatz";
    LineTooLong = 4004, "line too long", "Zeile zu lang";
    Tab = 4005, "TAB character", "Tabulatorzeichen";
    TrailingWhitespace = 4006, "trailing whitespace", "Leerzeichen am Zeilenende";
    NoSignature = 4007, "no OpenPGP cleartext signature", "keine OpenPGP-Klartextsignatur";
    BadSignature = 4008, "bad signature", "Signatur ungueltig";
    KeyNotRegistered = 4009, "key not registered for this registrar", "Schluessel nicht fuer diesen Registrar registriert";
    SignatureTime = 4010, "signature time outside the window", "Signaturzeit ausserhalb des erlaubten Fensters";
    MimeStructure = 4011, "unsupported MIME structure", "MIME-Struktur nicht unterstuetzt";
    MultipleSigned = 4012, "more than one signed block", "mehr als ein signierter Block";
    KeyExpiredRevoked = 4013, "key or signature expired or revoked", "Schluessel oder Signatur abgelaufen oder widerrufen";
    MailTooLarge = 4014, "mail too large", "Nachricht zu gross";
    MalformedXml = 5001, "malformed XML", "fehlerhaftes XML";
    HeaderElement = 5002, "header element missing, repeated or invalid", "Kopfelement fehlt, doppelt oder ungueltig";
    UnknownTransaction = 5003, "unknown transaction or command mismatch", "unbekannte Transaktion oder falscher Befehl";
    CountNotOne = 5004, "count must be 1", "count muss 1 sein";
    TemplateVersion = 5005, "wrong template version", "falsche Vorlagenversion";
    TextBeforeVersion = 5101, "text before the version line", "Text vor der Versionszeile";
    LineWithoutColon = 5102, "line without colon", "Zeile ohne Doppelpunkt";
    BadKey = 5103, "bad key", "ungueltiger Schluesselname";
    UnknownKey = 5104, "unknown key", "unbekannter Schluesselname";
    DuplicateKey = 5105, "duplicate key", "Feld doppelt";
    ContinuationNotAllowed = 5106, "continuation not allowed", "Fortsetzungszeile nicht erlaubt";
    KeyNotAllowed = 5107, "key not allowed in this transaction", "Feld in dieser Transaktion nicht erlaubt";
    Source = 5108, "missing or wrong source", "source fehlt oder falsch";
    ObjectCount = 5109, "not exactly one object", "nicht genau ein Objekt";
    MandatoryMissing = 5201, "mandatory field missing", "Pflichtfeld fehlt";
    InvalidDomain = 5202, "invalid domain name", "ungueltiger Domainname";
    InvalidHandle = 5203, "invalid handle", "ungueltiges Handle";
    InvalidIp = 5204, "invalid IP address", "ungueltige IP-Adresse";
    InvalidHost = 5205, "invalid host name", "ungueltiger Hostname";
    NameserverCount = 5206, "nameserver count", "Anzahl der Nameserver";
    NameserverIp = 5207, "nameserver IP rule", "Nameserver-IP-Regel";
    InvalidEmail = 5208, "invalid e-mail address", "ungueltige E-Mail-Adresse";
    InvalidPhone = 5209, "invalid phone or fax number", "ungueltige Telefon- oder Faxnummer";
    InvalidCountry = 5210, "invalid country code", "ungueltiger Laendercode";
    InvalidFlag = 5211, "invalid flag value", "ungueltiger Schalterwert";
    OutOfRange = 5212, "value too long or out of range", "Wert zu lang oder ausserhalb des Bereichs";
    TermsLine = 5301, "terms line missing or not Y", "AGB-Zeile fehlt oder nicht Y";
    DuplicateClientTrid = 6001, "duplicate client-trid", "client-trid bereits verwendet";
    RegistrarSuspended = 6002, "registrar suspended", "Registrar gesperrt";
    DomainExists = 6101, "domain exists", "Domain bereits registriert";
    HandleNotUsable = 6102, "handle unknown or not usable by this registrar", "Handle unbekannt oder fuer diesen Registrar nicht verwendbar";
    DomainNotFound = 6103, "domain not found", "Domain nicht gefunden";
    NotSponsor = 6104, "not the sponsoring registrar", "nicht der betreuende Registrar";
    StatusProhibits = 6105, "status prohibits the operation", "Status verbietet die Operation";
    TransferPending = 6106, "transfer pending", "Transfer laeuft";
    NameserverCheck = 6107, "nameserver check failed", "Nameserverpruefung fehlgeschlagen";
    NotPendingDelete = 6108, "domain not pending deletion", "Domain nicht zur Loeschung vorgemerkt";
    PeriodExceeds = 6109, "period would exceed the maximum", "Laufzeit wuerde das Maximum ueberschreiten";
    AlreadySponsor = 6110, "domain already sponsored by this registrar", "Domain wird bereits von diesem Registrar betreut";
    WrongAuthinfo = 6111, "wrong authinfo", "falsche authinfo";
    HostInUse = 6112, "nameserver host in use by other domains", "Nameserver wird von anderen Domains verwendet";
    InsufficientCredit = 6113, "insufficient credit", "Guthaben reicht nicht aus";
    HandleNotFound = 6201, "handle not found", "Handle nicht gefunden";
    HandleNotYours = 6202, "handle not yours", "Handle gehoert einem anderen Registrar";
    ImmutableHolderField = 6203, "immutable holder field", "Inhaberfeld nicht aenderbar";
    HandleInUse = 6204, "handle in use", "Handle wird verwendet";
    RegistryAddress = 6205, "registry address not allowed in contact data", "Adresse der Registry in Kontaktdaten nicht erlaubt";
    TemporaryFailure = 8001, "temporary failure, send again", "voruebergehender Fehler, bitte erneut senden";
    NameserverTimeout = 8002, "nameserver check timed out", "Zeitueberschreitung bei der Nameserverpruefung";
}

/// How a code is reported, by its class (first digit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// 1xxx
    Info,
    /// 3xxx
    Warning,
    /// 4xxx, 5xxx, 6xxx, 8xxx
    Error,
}

impl Code {
    /// The severity implied by the code's class.
    pub fn severity(self) -> Severity {
        match self.number() / 1000 {
            1 => Severity::Info,
            3 => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.number())
    }
}

/// One finding about a mail or template: a code, where it is, and a detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The stable code.
    pub code: Code,
    /// Line number (mail body lines for 4xxx, object text lines for 5xxx).
    pub line: Option<u32>,
    /// The template key concerned, lower-case.
    pub key: Option<String>,
    /// Extra detail in English (a value, a limit); ASCII only.
    pub detail: Option<String>,
}

impl Rejection {
    /// A finding with only a code.
    pub fn new(code: Code) -> Self {
        Rejection {
            code,
            line: None,
            key: None,
            detail: None,
        }
    }

    /// Sets the line number.
    pub fn at(mut self, line: u32) -> Self {
        self.line = Some(line);
        self
    }

    /// Sets the key (lower-case, made printable: keys come from user input).
    pub fn key(mut self, key: &str) -> Self {
        self.key = Some(printable(&key.to_ascii_lowercase(), 40));
        self
    }

    /// Sets the detail text (made printable 7-bit).
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(printable(&detail.into(), 200));
        self
    }

    /// True for 4xxx/5xxx/6xxx/8xxx.
    pub fn is_error(&self) -> bool {
        self.code.severity() == Severity::Error
    }
}

/// `s` with every character outside printable ASCII replaced by `?`, cut to
/// `max` characters: what may reach a reply line or a header.
pub fn printable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| {
            if c == ' ' || c.is_ascii_graphic() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// True when any finding in the list is an error.
pub fn any_error(list: &[Rejection]) -> bool {
    list.iter().any(Rejection::is_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_unique_and_sorted() {
        let nums: Vec<u16> = Code::ALL.iter().map(|c| c.number()).collect();
        let mut sorted = nums.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(nums, sorted);
        for c in Code::ALL {
            assert_eq!(Code::from_number(c.number()), Some(*c));
            assert!(c.text_en().is_ascii() && c.text_de().is_ascii());
        }
    }

    #[test]
    fn keys_and_details_are_printable() {
        let r = Rejection::new(Code::BadKey)
            .key("ci\rty\u{e9}")
            .detail("a\tb\r\n");
        assert_eq!(r.key.as_deref(), Some("ci?ty?"));
        assert_eq!(r.detail.as_deref(), Some("a?b??"));
    }

    #[test]
    fn severity_follows_class() {
        assert_eq!(Code::Executed.severity(), Severity::Info);
        assert_eq!(Code::UnsignedTextIgnored.severity(), Severity::Warning);
        assert_eq!(Code::BadSignature.severity(), Severity::Error);
        assert_eq!(Code::TemporaryFailure.severity(), Severity::Error);
    }
}
