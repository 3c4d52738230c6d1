//! The `tessera` command-line tool: inspect, evaluate and differentiate graphs.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            if !matches!(err, cli::CliError::OutputClosed) {
                eprintln!("{err}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
