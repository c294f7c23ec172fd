//! The command-line contract (cli.md): clap definitions only.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// regmail: a domain registry's mail robot.
#[derive(Debug, Parser)]
#[command(name = "regmail", version, about)]
pub struct Cli {
    /// Data directory: regmail.toml, the database, the registry key, the outbox.
    #[arg(
        long,
        global = true,
        env = "REGMAIL_DATA_DIR",
        default_value = "./regmail-data"
    )]
    pub data_dir: PathBuf,
    /// Another configuration file.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Run as if it were this instant (RFC 3339), e.g. 2026-11-22T08:15:00Z.
    #[arg(long, global = true)]
    pub now: Option<String>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data directory, configuration, database and registry key.
    Init,
    /// Manage registrars.
    #[command(subcommand)]
    Registrar(RegistrarCommand),
    /// The registry's own key.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Handle ONE message from standard input (the MTA pipe); handed to a
    /// running `regmail serve` of this data directory if there is one.
    Process,
    /// Handle the mails of every `process` run in this one resident process
    /// (socket `<data-dir>/regmail.sock`); prints `listening on PATH`.
    Serve,
    /// Handle many messages: .eml files, directories, maildirs, mbox files.
    Replay {
        /// Files and directories, handled in name order.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Validate a template or mail as `process` would, changing nothing.
    Check {
        /// A mail (.eml), a signed template, or a plain template.
        file: PathBuf,
    },
    /// Show an object.
    #[command(subcommand)]
    Query(QueryCommand),
    /// The outgoing mail queue.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Apply every time-driven step that is due (lifecycle.md) and retry
    /// undelivered mail; for cron or a systemd timer. Idempotent.
    Tick,
    /// Waiting requests: list them, or record a written (fax) consent or refusal.
    #[command(subcommand)]
    Pending(PendingCommand),
    /// Quality control of new registrations.
    #[command(subcommand)]
    Qc(QcCommand),
    /// The registry's own status flags of a domain.
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Wrap a template into a signed mail that passes every mail-layer rule.
    Submit(SubmitArgs),
    /// Public WHOIS (RFC 3912): answer one query here, or serve TCP clients.
    Whois(WhoisArgs),
    /// The DNS zone the registry publishes.
    #[command(subcommand)]
    Zone(ZoneCommand),
    /// Blank templates for registrars.
    #[command(subcommand)]
    Template(TemplateCommand),
    /// Generate the man page or shell completions from these definitions.
    #[command(subcommand)]
    Generate(GenerateCommand),
    /// Run a demo registry in a temporary directory on the shipped fixtures.
    Demo {
        /// Directory of test keys and registrars.toml.
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Directory of fixture mails.
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
}

/// `registrar ...`
#[derive(Debug, Subcommand)]
pub enum RegistrarCommand {
    /// Register a registrar with its reply address and certificate.
    Add {
        /// registrar-id, 1..99999.
        #[arg(long)]
        id: u32,
        /// Name.
        #[arg(long)]
        name: String,
        /// Registered reply address.
        #[arg(long)]
        email: String,
        /// OpenPGP certificate (armoured or binary).
        #[arg(long)]
        key: PathBuf,
    },
    /// List registrars and their certificates.
    List,
    /// Add or remove a certificate.
    #[command(subcommand)]
    Key(RegistrarKeyCommand),
    /// Add prepaid credit (negative: take it back); prints the balance.
    Credit {
        /// registrar-id.
        #[arg(long)]
        id: u32,
        /// Amount in the profile's currency, e.g. 100 or 12.50.
        #[arg(allow_hyphen_values = true)]
        amount: String,
    },
    /// Refuse the registrar's templates (6002).
    Suspend {
        /// registrar-id.
        #[arg(long)]
        id: u32,
    },
    /// Accept the registrar's templates again.
    Resume {
        /// registrar-id.
        #[arg(long)]
        id: u32,
    },
}

/// `registrar key ...`
#[derive(Debug, Subcommand)]
pub enum RegistrarKeyCommand {
    /// Add a certificate, or update a registered one (an update is merged
    /// in: new subkeys, new expiry, a revocation).
    Add {
        /// registrar-id.
        #[arg(long)]
        id: u32,
        /// Certificate file.
        #[arg(long)]
        key: PathBuf,
        /// Rotation: the fingerprint of the registrar's old certificate, which
        /// keeps working for the overlap period and is refused (4013) after.
        #[arg(long)]
        retire: Option<String>,
        /// Days the old certificate keeps working after a rotation.
        #[arg(long, default_value_t = 14)]
        overlap_days: u32,
    },
    /// Remove a certificate by fingerprint.
    Remove {
        /// registrar-id.
        #[arg(long)]
        id: u32,
        /// Primary key fingerprint (hex).
        #[arg(long)]
        fingerprint: String,
    },
}

/// `key ...`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Print the registry's public certificate, armoured.
    Export,
}

/// `query ...`
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// A domain.
    Domain {
        /// Name.
        name: String,
    },
    /// A contact handle.
    Handle {
        /// Handle.
        handle: String,
    },
}

/// `domain ...`
#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Set or clear serverHold or serverLock.
    SetStatus {
        /// The domain.
        name: String,
        /// The flag.
        #[arg(value_parser = ["serverHold", "serverLock"])]
        flag: String,
        /// on or off.
        #[arg(value_parser = ["on", "off"])]
        state: String,
    },
}

/// `pending ...`
#[derive(Debug, Subcommand)]
pub enum PendingCommand {
    /// The waiting requests (with --all, the ended ones too).
    List {
        /// Show ended requests too.
        #[arg(long)]
        all: bool,
    },
    /// Carry out a waiting request now: the holder's written consent.
    Confirm {
        /// The request's id (`pending list`).
        id: i64,
        /// Where the consent is kept, e.g. "fax of 2026-11-23, file 17".
        #[arg(long)]
        note: String,
    },
    /// End a waiting request unexecuted: the holder's written refusal.
    Reject {
        /// The request's id.
        id: i64,
        /// The reason, kept in the lifecycle log.
        #[arg(long)]
        note: String,
    },
}

/// `qc ...`
#[derive(Debug, Subcommand)]
pub enum QcCommand {
    /// Domains in quality control.
    List,
    /// The data is fine: end the quality control.
    Accept {
        /// The domain.
        domain: String,
    },
    /// Ask the registrar to correct the data; deleted at the deadline.
    RequestCorrection {
        /// The domain.
        domain: String,
        /// What is wrong (sent to the registrar).
        #[arg(long)]
        reason: String,
    },
}

/// `outbox ...`
#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Show queued and delivered mail.
    List,
    /// Deliver every due mail now.
    Flush,
}

/// `whois [QUERY | serve ...]`
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct WhoisArgs {
    /// `serve`: answer WHOIS clients over TCP.
    #[command(subcommand)]
    pub command: Option<WhoisCommand>,
    /// A domain name or a contact handle.
    #[arg(required = true)]
    pub query: Option<String>,
}

/// `whois serve`
#[derive(Debug, Subcommand)]
pub enum WhoisCommand {
    /// Answer WHOIS queries (RFC 3912) over TCP until stopped.
    Serve(WhoisServeArgs),
}

/// `whois serve ...`
#[derive(Debug, Args)]
pub struct WhoisServeArgs {
    /// Address and port to listen on, e.g. 0.0.0.0:43 or [::]:43.
    #[arg(long, default_value = "127.0.0.1:43")]
    pub listen: String,
    /// Queries one client address may make per minute; more are refused.
    #[arg(long, default_value_t = 60)]
    pub rate_per_minute: u32,
    /// Queries one client address may make at once before the rate applies.
    #[arg(long, default_value_t = 10)]
    pub burst: u32,
    /// Connections served at the same time; more are answered "busy".
    #[arg(long, default_value_t = 64)]
    pub max_connections: usize,
}

/// `zone ...`
#[derive(Debug, Subcommand)]
pub enum ZoneCommand {
    /// Write the zone as an RFC 1035 master file.
    Export {
        /// The zone, one of the profile's zones, e.g. `at`.
        #[arg(long)]
        zone: String,
        /// Write here (atomically) instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

/// `template ...`
#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Print a blank template for a transaction, e.g. `create` or `perscreate`.
    New {
        /// The transaction (template.md section 3).
        transaction: String,
        /// Fill in this domain.
        #[arg(long, conflicts_with = "handle")]
        domain: Option<String>,
        /// Fill in this contact handle.
        #[arg(long)]
        handle: Option<String>,
    },
    /// List the transactions that have a template.
    List,
}

/// `generate ...`
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// The man pages (regmail.1 and one per subcommand) into a directory.
    Man {
        /// Output directory.
        dir: PathBuf,
    },
    /// A shell completion script on standard output.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// `submit ...`
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The registrar's secret key (armoured TSK).
    #[arg(long)]
    pub key: PathBuf,
    /// registrar-id (for the Subject).
    #[arg(long)]
    pub registrar: u32,
    /// From: address.
    #[arg(long, default_value = "registrar@example.invalid")]
    pub from: String,
    /// To: address.
    #[arg(long, default_value = "robot@registry.example")]
    pub to: String,
    /// Skip the mail-layer checks of the template (for making test mails).
    #[arg(long)]
    pub raw: bool,
    /// Write the mail to this `.eml` file instead of standard output.
    #[arg(long, conflicts_with = "sendmail")]
    pub output: Option<PathBuf>,
    /// Pipe the mail to this sendmail-compatible command (`-i -t` added).
    #[arg(long, num_args = 0..=1, default_missing_value = "/usr/sbin/sendmail")]
    pub sendmail: Option<PathBuf>,
    /// The template.
    pub file: PathBuf,
}

impl Command {
    /// The exit code for an internal failure: 75 where an MTA or timer retries.
    pub fn failure_code(&self) -> u8 {
        match self {
            Command::Process | Command::Replay { .. } | Command::Outbox(_) | Command::Tick => 75,
            _ => 1,
        }
    }
}
