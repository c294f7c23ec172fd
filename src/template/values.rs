//! Field validators for typed values: domain and host names (LDH, ACE/IDN via
//! the `idna` crate), handles, IP addresses, phone numbers, e-mail addresses,
//! countries, flags. Each returns the normalised value or a [`Rejection`].

use crate::config::Profile;
use crate::rejection::{Code, Rejection};
use std::net::IpAddr;

/// A normalised value, and whether normalising changed it (warning 3003).
pub type Normalised = (String, bool);

fn ldh_label(label: &str, max: usize) -> Result<(), &'static str> {
    let b = label.as_bytes();
    if b.is_empty() || b.len() > max {
        return Err("label length");
    }
    if !b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-') {
        return Err("only letters, digits and hyphens");
    }
    if b[0] == b'-' || b[b.len() - 1] == b'-' {
        return Err("leading or trailing hyphen");
    }
    if b.len() >= 4 && &b[2..4] == b"--" {
        if !label.starts_with("xn--") {
            return Err("hyphens at positions 3-4 are reserved");
        }
        let (unicode, result) = idna::domain_to_unicode(label);
        if result.is_err() || unicode == label {
            return Err("IDN label does not decode");
        }
        if idna::domain_to_ascii(&unicode).ok().as_deref() != Some(label) {
            return Err("IDN label is not in canonical form");
        }
    }
    Ok(())
}

fn lower(value: &str) -> Normalised {
    let l = value.to_ascii_lowercase();
    let changed = l != value;
    (l, changed)
}

/// The zone of the profile a name is registrable under, and its label.
pub fn split_zone<'a>(name: &'a str, profile: &'a Profile) -> Option<(&'a str, &'a str)> {
    profile
        .zones
        .iter()
        .filter_map(|z| {
            name.strip_suffix(z.as_str())?
                .strip_suffix('.')
                .map(|label| (label, z.as_str()))
        })
        .filter(|(label, _)| !label.contains('.'))
        .max_by_key(|(_, z)| z.len())
}

/// A registrable domain name under one of the profile's zones (5202).
pub fn check_domain_name(value: &str, profile: &Profile) -> Result<Normalised, Rejection> {
    let bad = |why: &str| Rejection::new(Code::InvalidDomain).detail(format!("{value:.40}: {why}"));
    if !value.is_ascii() {
        return Err(bad("IDNs must be given in ACE form"));
    }
    let (name, changed) = lower(value);
    if name.len() > 253 {
        return Err(bad("name too long"));
    }
    if profile.zones.contains(&name) {
        return Err(bad("is one of the registry's zones"));
    }
    let Some((label, _zone)) = split_zone(&name, profile) else {
        return Err(bad("not directly under one of the registry's zones"));
    };
    ldh_label(label, profile.max_label_length).map_err(bad)?;
    let chars = if label.starts_with("xn--") {
        idna::domain_to_unicode(label).0.chars().count()
    } else {
        label.len()
    };
    if chars < profile.min_label_length {
        return Err(bad("name too short"));
    }
    Ok((name, changed))
}

/// A nameserver host name: at least two LDH labels, ACE only (5205).
pub fn check_host_name(value: &str) -> Result<Normalised, Rejection> {
    let bad = |why: &str| Rejection::new(Code::InvalidHost).detail(format!("{value:.40}: {why}"));
    if !value.is_ascii() {
        return Err(bad("host names must be given in ACE form"));
    }
    let (name, changed) = lower(value.strip_suffix('.').unwrap_or(value));
    if name.len() > 253 {
        return Err(bad("name too long"));
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("needs at least two labels"));
    }
    for label in &labels {
        ldh_label(label, 63).map_err(bad)?;
    }
    if labels
        .last()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad("numeric top-level label"));
    }
    Ok((name, changed))
}

/// True if a host lies under one of the profile's zones (needs an IP).
pub fn host_in_zone(host: &str, profile: &Profile) -> bool {
    profile.zones.iter().any(|z| {
        host.strip_suffix(z.as_str())
            .is_some_and(|p| p.ends_with('.'))
    })
}

/// An IP address, returned in RFC 5952 form (5204).
pub fn check_ip(value: &str) -> Result<Normalised, Rejection> {
    let ip: IpAddr = value
        .parse()
        .map_err(|_| Rejection::new(Code::InvalidIp).detail(format!("{value:.45}")))?;
    let bad_use = ip.is_unspecified() || ip.is_loopback() || ip.is_multicast();
    if bad_use {
        return Err(
            Rejection::new(Code::InvalidIp).detail(format!("{value:.45}: not a unicast address"))
        );
    }
    let s = ip.to_string();
    let changed = s != value;
    Ok((s, changed))
}

/// A contact handle `^[A-Z]{2,4}[0-9]{1,10}-<SUFFIX>$` (5203).
pub fn check_handle(value: &str, suffix: &str) -> Result<String, Rejection> {
    let bad = || Rejection::new(Code::InvalidHandle).detail(format!("{value:.40}"));
    let upper = value.to_ascii_uppercase();
    let head = upper
        .strip_suffix(suffix)
        .and_then(|h| h.strip_suffix('-'))
        .ok_or_else(bad)?;
    let letters = head.bytes().take_while(u8::is_ascii_uppercase).count();
    let digits = &head[letters..];
    let ok = (2..=4).contains(&letters)
        && (1..=10).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit());
    if ok && upper == value {
        Ok(upper)
    } else {
        Err(bad())
    }
}

/// A phone or fax number: `+`, digits and single spaces, 6..17 digits (5209).
pub fn check_phone(value: &str) -> Result<Normalised, Rejection> {
    let bad = || Rejection::new(Code::InvalidPhone).detail(format!("{value:.40}"));
    let rest = value.strip_prefix('+').ok_or_else(bad)?;
    if rest.starts_with(' ') || rest.ends_with(' ') || rest.contains("  ") {
        return Err(bad());
    }
    if !rest.bytes().all(|b| b.is_ascii_digit() || b == b' ') {
        return Err(bad());
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    if !(6..=17).contains(&digits.len()) || digits.starts_with('0') {
        return Err(bad());
    }
    let s = format!("+{digits}");
    let changed = s != value;
    Ok((s, changed))
}

/// An ASCII addr-spec of at most 254 characters, with a dotted domain (5208).
pub fn check_email(value: &str) -> Result<String, Rejection> {
    let bad = || Rejection::new(Code::InvalidEmail).detail(format!("{value:.50}"));
    if value.len() > 254 || !value.is_ascii() {
        return Err(bad());
    }
    let (local, domain) = value.rsplit_once('@').ok_or_else(bad)?;
    let atext = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(atext));
    if !local_ok {
        return Err(bad());
    }
    check_host_name(domain).map_err(|_| bad())?;
    Ok(value.to_string())
}

/// ISO 3166-1 alpha-2, officially assigned codes.
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL \
BM BN BO BQ BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO \
DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM \
HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR \
LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL \
NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ \
SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA \
VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// An ISO 3166-1 alpha-2 code in upper case (5210).
pub fn check_country(value: &str) -> Result<String, Rejection> {
    if value.len() == 2 && COUNTRIES.split(' ').any(|c| c == value) {
        Ok(value.to_string())
    } else {
        Err(Rejection::new(Code::InvalidCountry).detail(format!("{value:.20}")))
    }
}

/// `Y` or `N` (5211).
pub fn check_flag(value: &str) -> Result<bool, Rejection> {
    match value {
        "Y" => Ok(true),
        "N" => Ok(false),
        _ => Err(Rejection::new(Code::InvalidFlag).detail(format!("{value:.20}: use Y or N"))),
    }
}

/// Free text of at most `max` characters (5212).
pub fn check_text(value: &str, max: usize) -> Result<String, Rejection> {
    if value.len() > max {
        return Err(
            Rejection::new(Code::OutOfRange).detail(format!("longer than {max} characters"))
        );
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_names() {
        let p = Profile::default();
        let ok = [
            ("example.at", "example.at", false),
            ("Example.CO.AT", "example.co.at", true),
            ("a.at", "a.at", false),
            ("xn--mnchen-3ya.at", "xn--mnchen-3ya.at", false),
            ("a-b.or.at", "a-b.or.at", false),
        ];
        for (input, want, changed) in ok {
            assert_eq!(
                check_domain_name(input, &p),
                Ok((want.to_string(), changed)),
                "{input}"
            );
        }
        for bad in [
            "example.com",
            "sub.example.at",
            "-x.at",
            "x-.at",
            "ab--cd.at",
            "xn--zz.at",
            "ex_ample.at",
            "co.at",
            "at",
            "m\u{fc}nchen.at",
            "example..at",
            &format!("{}.at", "a".repeat(64)),
        ] {
            assert_eq!(
                check_domain_name(bad, &p).map_err(|r| r.code),
                Err(Code::InvalidDomain),
                "{bad}"
            );
        }
        let strict = Profile {
            min_label_length: 2,
            ..Profile::default()
        };
        assert!(check_domain_name("a.at", &strict).is_err());
    }

    #[test]
    fn hosts_ips_handles() {
        assert_eq!(
            check_host_name("NS1.Example.COM."),
            Ok(("ns1.example.com".into(), true))
        );
        for bad in [
            "localhost",
            "ns1..example.com",
            "ns_1.example.com",
            "1.2.3.4",
        ] {
            assert!(check_host_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_ip("2001:DB8:0:0:0:0:0:1"),
            Ok(("2001:db8::1".into(), true))
        );
        assert_eq!(check_ip("192.0.2.1"), Ok(("192.0.2.1".into(), false)));
        for bad in [
            "192.0.2",
            "300.1.1.1",
            "127.0.0.1",
            "::",
            "fe80::1%eth0",
            "x",
        ] {
            assert!(check_ip(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_handle("AB123-NICAT", "NICAT"),
            Ok("AB123-NICAT".into())
        );
        for bad in [
            "A1-NICAT",
            "ABCDE1-NICAT",
            "AB-NICAT",
            "AB12345678901-NICAT",
            "ab12-nicat",
            "AB12-DENIC",
        ] {
            assert!(check_handle(bad, "NICAT").is_err(), "{bad}");
        }
        let p = Profile::default();
        assert!(host_in_zone("ns1.example.at", &p));
        assert!(!host_in_zone("ns1.example.com", &p));
        assert!(!host_in_zone("ns1.flat", &p));
    }

    #[test]
    fn phones_emails_countries_flags() {
        assert_eq!(
            check_phone("+43 1 5056416"),
            Ok(("+4315056416".into(), true))
        );
        assert_eq!(
            check_phone("+4315056416"),
            Ok(("+4315056416".into(), false))
        );
        for bad in [
            "4315056416",
            "+43  1",
            "+43-1-505",
            "+12345",
            "+123456789012345678",
            "+ 431505",
        ] {
            assert!(check_phone(bad).is_err(), "{bad}");
        }
        assert!(check_email("jane.doe+at@example.co.at").is_ok());
        for bad in [
            "jane",
            "@example.at",
            "jane@",
            "jane@localhost",
            "ja..ne@example.at",
            "j ane@example.at",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        assert!(check_country("AT").is_ok());
        for bad in ["at", "XX", "AUT", ""] {
            assert!(check_country(bad).is_err(), "{bad}");
        }
        assert_eq!(check_flag("Y"), Ok(true));
        assert!(check_flag("yes").is_err());
        assert!(check_text(&"x".repeat(256), 255).is_err());
    }
}
