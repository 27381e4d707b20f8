//! The argument grammar, matching Go sing-box's where the commands overlap.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// sb: a sing-box 1.14 compatible proxy platform.
#[derive(Parser, Debug)]
#[command(name = "sb", version = sb_core::VERSION, disable_version_flag = true)]
pub struct Cli {
    /// Options shared by all commands.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by all commands.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Configuration file path (repeatable; `stdin` reads standard input).
    #[arg(short = 'c', long = "config", global = true)]
    pub config: Vec<String>,
    /// Configuration directory path: every `*.json` in it (repeatable).
    #[arg(short = 'C', long = "config-directory", global = true)]
    pub config_directory: Vec<PathBuf>,
    /// Set the working directory (created if missing).
    #[arg(short = 'D', long = "directory", global = true)]
    pub directory: Option<PathBuf>,
    /// Disable colour output.
    #[arg(long = "disable-color", global = true)]
    pub disable_color: bool,
}

/// sb's commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the service.
    Run,
    /// Check the configuration.
    Check,
    /// Format the configuration.
    Format {
        /// Write the result back to the source file.
        #[arg(short = 'w', long = "write")]
        write: bool,
    },
    /// Merge configurations into one file.
    Merge {
        /// Output file.
        output: PathBuf,
    },
    /// Print the version.
    Version {
        /// Print the version number only.
        #[arg(short = 'n', long = "name")]
        name: bool,
    },
    /// Generate things.
    #[command(subcommand)]
    Generate(Generate),
}

/// `sb generate` subcommands.
#[derive(Subcommand, Debug)]
pub enum Generate {
    /// Generate a UUID.
    Uuid,
    /// Generate random bytes.
    Rand {
        /// Number of bytes.
        length: usize,
        /// Print as base64.
        #[arg(long, conflicts_with = "hex")]
        base64: bool,
        /// Print as hex.
        #[arg(long)]
        hex: bool,
    },
    /// Generate a WireGuard key pair.
    WgKeypair,
}
