//! `sb`: the command line of sb. Parses arguments and hands off to the command modules;
//! the work happens in the library crates.

mod clash;
mod cli;
mod commands;
mod input;
mod report;
mod run;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = match cli::Cli::try_parse() {
        Ok(a) => a,
        Err(e) => {
            // Help and version go to stdout with status 0; usage errors exit 1, as Go does.
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let color = report::Color::detect(args.global.disable_color);
    match commands::dispatch(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::fatal(color, &e);
            ExitCode::FAILURE
        }
    }
}
