//! `sb`: the command line of sb. Parses arguments and hands off to the command modules;
//! the work happens in the library crates.

mod cli;
mod commands;
mod input;
mod report;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    let color = report::Color::detect(args.global.disable_color);
    match commands::dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::fatal(color, &e);
            ExitCode::FAILURE
        }
    }
}
