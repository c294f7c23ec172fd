//! `regmail template` and `regmail generate`: tools for registrars and packagers.

use crate::cli::{GenerateCommand, TemplateCommand};
use anyhow::bail;

/// `template new` / `template list`.
pub fn template(_cmd: TemplateCommand) -> anyhow::Result<u8> {
    bail!("template: not implemented yet")
}

/// `generate man` / `generate completions`.
pub fn generate(_cmd: GenerateCommand) -> anyhow::Result<u8> {
    bail!("generate: not implemented yet")
}
