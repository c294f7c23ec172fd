//! `regmail zone export`.

use super::Paths;
use crate::cli::ZoneCommand;
use crate::clock::Clock;
use anyhow::bail;

/// `zone export`.
pub fn run(_paths: &Paths, _clock: Box<dyn Clock>, _cmd: ZoneCommand) -> anyhow::Result<u8> {
    bail!("zone: not implemented yet")
}
