//! The `regmail` binary: parses arguments, calls the library, maps the exit code.

use clap::Parser;
use clap::error::ErrorKind;
use regmail::app;
use regmail::cli::Cli;
use std::io::IsTerminal;
use std::process::ExitCode;

/// mimalloc for Rust's allocations, in every command; chosen for `replay`,
/// whose threads free what other threads allocated (decision 97).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(app::EX_USAGE);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("REGMAIL_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a person: not into the MTA's or journald's log.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let failure = cli.command.failure_code();
    match app::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("regmail: {e:#}");
            ExitCode::from(failure)
        }
    }
}
