//! The `tessera` command-line tool: inspect, evaluate and differentiate graphs.

mod cli;

use std::process::ExitCode;

use clap::Parser;

// mimalloc: Cranelift and the data reader allocate many small, short-lived blocks, and a
// fresh process pays page faults for every large one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            ExitCode::from(err.exit_code())
        }
    }
}
