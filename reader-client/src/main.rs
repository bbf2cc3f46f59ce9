//! `reader-client`: the terminal on the command line (readers, ATR, APDUs, scripts, conformance runs, containers, GlobalPlatform).
#![forbid(unsafe_code)]

mod cli;
mod cmd;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    match cmd::run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::exit(2);
        }
    }
}
