//! Configuration: `regmail.toml` and the policy profiles it holds.
//!
//! Input: the TOML file in the data directory (or `--config`). Output: a
//! [`Config`] with every knob of template.md, reply.md and cli.md, defaults
//! filled in. Invariants: a missing file means all defaults; an unreadable or
//! invalid file is a [`ConfigError`] (the caller exits 75); profiles are data,
//! never code: a new registry's rules are a new `[profiles.NAME]` table.

mod limits;

pub use limits::Limits;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A fault reading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file exists but cannot be read.
    #[error("cannot read configuration {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid configuration {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The TOML error.
        source: Box<toml::de::Error>,
    },
    /// The selected profile does not exist.
    #[error("configuration names profile {0:?}, which is not defined")]
    UnknownProfile(String),
    /// A profile's setting is out of range.
    #[error("profile {profile:?}: {what}")]
    Invalid {
        /// The profile.
        profile: String,
        /// What is wrong.
        what: &'static str,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The registry's identity.
    pub registry: RegistrySettings,
    /// Mail-layer limits.
    pub mail: MailSettings,
    /// Outgoing mail.
    pub delivery: DeliverySettings,
    /// Database settings.
    pub database: DatabaseSettings,
    /// Size limits of the envelope and object (hostile input).
    pub limits: Limits,
    /// Policy profiles by name; `at` is always present.
    pub profiles: BTreeMap<String, Profile>,
}

/// Who the registry is.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySettings {
    /// Display name used in `From:`.
    pub name: String,
    /// The robot's address: `From:` of every reply.
    pub email: String,
    /// The domain of generated Message-IDs.
    pub domain: String,
    /// The active policy profile.
    pub profile: String,
    /// Further addresses of the registry (refused in contact data, never mailed).
    pub own_addresses: Vec<String>,
}

/// Limits of the mail layer (template.md section 1).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailSettings {
    /// Larger mails are refused unread (4014).
    pub max_mail_bytes: usize,
    /// Longest allowed line (4004).
    pub max_line_length: usize,
    /// Oldest acceptable signature, in hours (4010).
    pub signature_max_age_hours: i64,
    /// How far a signature may lie in the future, in minutes (4010).
    pub signature_max_future_minutes: i64,
    /// More body lines than this: refused unread (4014).
    pub max_lines: usize,
}

/// How outgoing mail leaves the outbox (cli.md section 4).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// `file`, `sendmail` or `smtp`.
    pub transport: Transport,
    /// Directory for the `file` transport; relative to the data dir.
    pub file_dir: PathBuf,
    /// The sendmail binary for the `sendmail` transport.
    pub sendmail_command: PathBuf,
    /// SMTP relay host.
    pub smtp_host: String,
    /// SMTP port.
    pub smtp_port: u16,
    /// Use STARTTLS (required: no mail goes out unencrypted or to a relay
    /// whose certificate does not verify).
    pub smtp_starttls: bool,
    /// PEM file of the certificate authorities the relay's certificate must
    /// chain to, instead of the public web roots (a relay with a private
    /// CA); relative to the data dir. Unset: the public roots.
    pub smtp_ca_file: Option<PathBuf>,
    /// SMTP user name (empty: no authentication).
    pub smtp_user: String,
    /// SMTP password.
    pub smtp_password: String,
    /// Mails nobody asked for with a verified signature (notifications,
    /// answers to unsigned mail) delivered to one recipient per hour; the
    /// rest wait in the outbox until the hour frees a slot (reflection,
    /// loops). Replies to verified templates are never held back. 0: no cap.
    pub max_notices_per_hour: u32,
}

/// The transport kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// One `.eml` file per message.
    File,
    /// Pipe to a sendmail-compatible binary.
    Sendmail,
    /// An SMTP relay.
    Smtp,
}

/// SQLite settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// How long to wait for a busy database before exiting 75.
    pub busy_timeout_ms: u64,
}

/// Whether nameserver IPs are required for every host or only in-zone ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpRule {
    /// Every host needs an address.
    All,
    /// Only hosts under the registry's zones (and only they may have one).
    InZone,
}

/// How transfers are authorised (lifecycle.md sections 1 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferMode {
    /// The holder confirms by mail.
    HolderConfirmation,
    /// The losing registrar acks or nacks.
    LosingRegistrar,
    /// The domain's authinfo proves the right.
    Authinfo,
}

/// One registry's rules (template.md section 7).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Zones served, lower-case, without dots at the ends.
    pub zones: Vec<String>,
    /// Handle suffix, e.g. `NICAT`.
    pub handle_suffix: String,
    /// The required `source:` value.
    pub source: String,
    /// Fewest nameservers.
    pub min_nameservers: usize,
    /// Most nameservers.
    pub max_nameservers: usize,
    /// Most addresses per nameserver host.
    pub max_ips_per_host: usize,
    /// The IP rule.
    pub nameserver_ip_required: IpRule,
    /// Shortest registrable label (characters).
    pub min_label_length: usize,
    /// Longest label (on the ACE form).
    pub max_label_length: usize,
    /// Longest registration period in years.
    pub max_period: u32,
    /// Transfer mode.
    pub transfer_mode: TransferMode,
    /// A private-person holder must also be the admin contact (.lv).
    pub natural_holder_is_admin: bool,
    /// Every n-th create goes to quality control (0: never).
    pub qc_every: u32,
    /// Days a holder may object to a holder change, a holder's data change or
    /// a deletion (lifecycle.md section 2).
    pub objection_period_days: i64,
    /// Hours the holder has to confirm a transfer (lifecycle.md section 1: 20 d + 48 h).
    pub confirmation_hours: i64,
    /// Days the losing registrar has before a transfer is approved.
    pub transfer_auto_approve_days: i64,
    /// Days after a deletion in which `undelete` restores the domain.
    pub redemption_days: i64,
    /// Days after redemption before the name is free (`pendingDelete`).
    pub pending_delete_days: i64,
    /// Days after a create in which a delete removes the domain at once and
    /// refunds the create (GRRP 3.1.2 [7]).
    pub add_grace_days: i64,
    /// Days after a renewal in which a delete refunds it.
    pub renew_grace_days: i64,
    /// Days after a transfer in which a delete refunds it.
    pub transfer_grace_days: i64,
    /// Renew for one year at expiry (the sponsor, or after `billwithdraw`
    /// the holder, pays); off: the domain is deleted at expiry.
    pub auto_renew: bool,
    /// Days after the request when the holder is reminded (at most three).
    pub reminder_days: Vec<i64>,
    /// Hours after the request when a transfer without a usable holder
    /// address, or whose holder mail bounced, ends (`faulty-data-abort`).
    pub faulty_data_hours: i64,
    /// Days the registrar has to correct a domain in quality control.
    pub qc_correction_days: i64,
    /// Days before a registrar's certificate expires when it is warned (0: never).
    pub key_expiry_warning_days: i64,
    /// Prices, in cents of `currency`; 0 is free (no ledger row).
    pub prices: Prices,
    /// The currency of the prices.
    pub currency: String,
    /// The zone files' SOA and apex nameservers (`regmail zone export`).
    pub zone: ZoneSettings,
}

/// What `regmail zone export` writes besides the delegations: the SOA and
/// the registry's own nameservers, the same for each of the profile's zones.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ZoneSettings {
    /// The primary nameserver (SOA MNAME).
    pub primary: String,
    /// The hostmaster's mail address (SOA RNAME, written as a name).
    pub hostmaster: String,
    /// The nameservers of every zone of the profile (its apex NS records,
    /// and the delegation of a sub-zone such as `co.at` in `at`).
    pub nameservers: Vec<String>,
    /// Addresses of those nameservers that lie under the profile's zones
    /// (required for them, refused for the others).
    pub addresses: BTreeMap<String, Vec<std::net::IpAddr>>,
    /// TTL of every record, in seconds (`$TTL`).
    pub ttl: u32,
    /// SOA refresh, in seconds.
    pub refresh: u32,
    /// SOA retry, in seconds.
    pub retry: u32,
    /// SOA expire, in seconds.
    pub expire: u32,
    /// SOA minimum: the negative-caching TTL (RFC 2308), in seconds.
    pub minimum: u32,
}

/// The price list of a profile (cli.md `registrar credit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Prices {
    /// A registration, per year.
    pub create: i64,
    /// A renewal, per year.
    pub renew: i64,
    /// A transfer.
    pub transfer: i64,
    /// A restore from redemption.
    pub restore: i64,
}

impl Default for Config {
    fn default() -> Self {
        let mut profiles = BTreeMap::new();
        profiles.insert("at".to_string(), Profile::default());
        Config {
            registry: RegistrySettings::default(),
            mail: MailSettings::default(),
            delivery: DeliverySettings::default(),
            database: DatabaseSettings::default(),
            limits: Limits::default(),
            profiles,
        }
    }
}

impl Default for RegistrySettings {
    fn default() -> Self {
        RegistrySettings {
            name: "Example Registry".into(),
            email: "robot@registry.example".into(),
            domain: "registry.example".into(),
            profile: "at".into(),
            own_addresses: vec!["hostmaster@registry.example".into()],
        }
    }
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            max_mail_bytes: 256 * 1024,
            max_line_length: 78,
            signature_max_age_hours: 72,
            signature_max_future_minutes: 10,
            max_lines: 5000,
        }
    }
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            transport: Transport::File,
            file_dir: PathBuf::from("outbox"),
            sendmail_command: PathBuf::from("/usr/sbin/sendmail"),
            smtp_host: "localhost".into(),
            smtp_port: 25,
            smtp_starttls: false,
            smtp_ca_file: None,
            smtp_user: String::new(),
            smtp_password: String::new(),
            max_notices_per_hour: 20,
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            busy_timeout_ms: 10_000,
        }
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            zones: vec!["at".into(), "co.at".into(), "or.at".into()],
            handle_suffix: "NICAT".into(),
            source: "AT-DOM".into(),
            min_nameservers: 2,
            max_nameservers: 8,
            max_ips_per_host: 4,
            nameserver_ip_required: IpRule::InZone,
            min_label_length: 1,
            max_label_length: 63,
            max_period: 10,
            transfer_mode: TransferMode::HolderConfirmation,
            natural_holder_is_admin: false,
            qc_every: 10,
            objection_period_days: 14,
            confirmation_hours: 20 * 24 + 48,
            transfer_auto_approve_days: 5,
            redemption_days: 30,
            pending_delete_days: 5,
            add_grace_days: 5,
            renew_grace_days: 5,
            transfer_grace_days: 5,
            auto_renew: true,
            reminder_days: vec![5, 12, 20],
            faulty_data_hours: 2,
            qc_correction_days: 14,
            key_expiry_warning_days: 30,
            prices: Prices::default(),
            currency: "EUR".into(),
            zone: ZoneSettings::default(),
        }
    }
}

impl Default for ZoneSettings {
    fn default() -> Self {
        ZoneSettings {
            primary: "ns1.registry.example".into(),
            hostmaster: "hostmaster@registry.example".into(),
            nameservers: vec!["ns1.registry.example".into(), "ns2.registry.example".into()],
            addresses: BTreeMap::new(),
            ttl: 86_400,
            refresh: 10_800,
            retry: 3_600,
            expire: 1_209_600,
            minimum: 3_600,
        }
    }
}

impl Config {
    /// Loads `path`; a missing file gives the defaults.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::parse(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }

    /// Parses configuration text; the built-in `at` profile is kept unless redefined.
    pub fn parse(text: &str) -> Result<Config, toml::de::Error> {
        let mut cfg: Config = toml::from_str(text)?;
        cfg.profiles.entry("at".to_string()).or_default();
        Ok(cfg)
    }

    /// The active profile, checked: prices are not negative, counts and
    /// periods are positive and ordered.
    pub fn profile(&self) -> Result<&Profile, ConfigError> {
        let name = &self.registry.profile;
        let p = self
            .profiles
            .get(name)
            .ok_or_else(|| ConfigError::UnknownProfile(name.clone()))?;
        let pr = p.prices;
        let problem = if [pr.create, pr.renew, pr.transfer, pr.restore]
            .iter()
            .any(|c| *c < 0)
        {
            Some("prices may not be negative")
        } else if p.min_nameservers == 0 || p.min_nameservers > p.max_nameservers {
            Some("nameserver counts must be 1 <= min <= max")
        } else if p.max_period == 0 || p.min_label_length == 0 || p.zones.is_empty() {
            Some("max_period, min_label_length and zones must not be empty or zero")
        } else if [
            p.objection_period_days,
            p.confirmation_hours,
            p.transfer_auto_approve_days,
            p.redemption_days,
            p.pending_delete_days,
            p.faulty_data_hours,
            p.qc_correction_days,
        ]
        .iter()
        .any(|d| *d <= 0)
            || [
                p.add_grace_days,
                p.renew_grace_days,
                p.transfer_grace_days,
                p.key_expiry_warning_days,
            ]
            .iter()
            .any(|d| *d < 0)
        {
            Some("periods must be positive (grace periods and key warnings may be 0)")
        } else if p.reminder_days.len() > 3
            || p.reminder_days.windows(2).any(|w| w[0] >= w[1])
            || p.reminder_days
                .iter()
                .any(|d| *d <= 0 || d * 24 >= p.confirmation_hours)
        {
            Some("reminder_days: at most 3, increasing, within confirmation_hours")
        } else {
            None
        };
        match problem {
            Some(what) => Err(ConfigError::Invalid {
                profile: name.clone(),
                what,
            }),
            None => Ok(p),
        }
    }

    /// True if `addr` is one of the registry's own addresses (case-insensitive).
    pub fn is_own_address(&self, addr: &str) -> bool {
        let a = addr.trim().to_ascii_lowercase();
        a == self.registry.email.to_ascii_lowercase()
            || self
                .registry
                .own_addresses
                .iter()
                .any(|o| o.to_ascii_lowercase() == a)
    }
}

/// The commented default file that `regmail init` writes.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses_to_defaults() {
        let cfg = Config::parse(DEFAULT_TOML).unwrap();
        let p = cfg.profile().unwrap();
        assert_eq!(p.zones, vec!["at", "co.at", "or.at"]);
        assert_eq!(cfg.mail.max_line_length, 78);
        assert_eq!(cfg.delivery.transport, Transport::File);
        assert_eq!(cfg.delivery.smtp_ca_file, None);
        let cfg = Config::parse("[delivery]\nsmtp_ca_file = \"relay-ca.pem\"\n").unwrap();
        assert_eq!(
            cfg.delivery.smtp_ca_file.as_deref(),
            Some(Path::new("relay-ca.pem"))
        );
    }

    #[test]
    fn a_profile_is_data() {
        let cfg = Config::parse(
            "[registry]\nprofile = \"lv\"\n[profiles.lv]\nzones = [\"lv\"]\nmin_label_length = 2\n\
             max_period = 1\nmax_nameservers = 5\ntransfer_mode = \"authinfo\"\n",
        )
        .unwrap();
        let p = cfg.profile().unwrap();
        assert_eq!(p.min_label_length, 2);
        assert_eq!(p.transfer_mode, TransferMode::Authinfo);
        assert!(cfg.profiles.contains_key("at"));
    }

    #[test]
    fn the_shipped_lv_profile_parses() {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/lv.toml"))
                .unwrap();
        let cfg = Config::parse(&format!("[registry]\nprofile = \"lv\"\n{text}")).unwrap();
        let p = cfg.profile().unwrap();
        assert_eq!(
            (p.min_label_length, p.max_period, p.max_nameservers),
            (2, 1, 5)
        );
        assert!(p.natural_holder_is_admin);
        assert_eq!(p.transfer_mode, TransferMode::Authinfo);
    }

    #[test]
    fn bad_profiles_are_refused() {
        let cfg = Config::parse("[profiles.at.prices]\ncreate = -100\n").unwrap();
        assert!(matches!(cfg.profile(), Err(ConfigError::Invalid { .. })));
        let cfg =
            Config::parse("[profiles.at]\nmin_nameservers = 3\nmax_nameservers = 2\n").unwrap();
        assert!(cfg.profile().is_err());
        for bad in [
            "reminder_days = [12, 5]",
            "reminder_days = [5, 12, 20, 21]",
            "reminder_days = [5, 22]",
            "objection_period_days = 0",
            "add_grace_days = -1",
        ] {
            let cfg = Config::parse(&format!("[profiles.at]\n{bad}\n")).unwrap();
            assert!(cfg.profile().is_err(), "{bad}");
        }
        let ok = Config::parse("[profiles.at]\nadd_grace_days = 0\nreminder_days = []\n").unwrap();
        assert!(ok.profile().is_ok());
    }

    #[test]
    fn the_commented_zone_table_is_the_default() {
        // Uncomment the `[profiles.at.zone]` block of the shipped file.
        let block: String = DEFAULT_TOML
            .lines()
            .skip_while(|l| !l.starts_with("# [profiles.at.zone]"))
            .filter_map(|l| l.strip_prefix("# "))
            .filter(|l| !l.starts_with(' '))
            .map(|l| format!("{}\n", l.split("  #").next().unwrap_or(l)))
            .collect();
        assert!(block.contains("minimum = 3600"), "{block}");
        let cfg = Config::parse(&block).unwrap();
        assert_eq!(cfg.profile().unwrap().zone, ZoneSettings::default());
        let cfg = Config::parse(
            "[profiles.at.zone]\nnameservers = [\"ns1.nic.at\"]\n\
             [profiles.at.zone.addresses]\n\"ns1.nic.at\" = [\"192.0.2.53\", \"2001:db8::53\"]\n",
        )
        .unwrap();
        let zone = &cfg.profile().unwrap().zone;
        assert_eq!(zone.addresses["ns1.nic.at"].len(), 2);
        assert_eq!(zone.ttl, 86_400);
        assert!(Config::parse("[profiles.at.zone]\nserial = 1\n").is_err());
        assert!(Config::parse("[profiles.at.zone.addresses]\n\"a.at\" = [\"x\"]\n").is_err());
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::parse("[mail]\nmax_line = 3\n").is_err());
    }
}
