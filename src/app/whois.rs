//! `regmail whois QUERY` and `regmail whois serve`.

use super::Paths;
use crate::cli::WhoisArgs;
use crate::clock::Clock;
use anyhow::bail;

/// `whois QUERY` or `whois serve`.
pub fn run(_paths: &Paths, _clock: Box<dyn Clock>, _args: WhoisArgs) -> anyhow::Result<u8> {
    bail!("whois: not implemented yet")
}
