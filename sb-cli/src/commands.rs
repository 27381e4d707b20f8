//! The commands. Each is a few lines over the library.

mod generate;

use crate::cli::{Cli, Command};
use crate::input;
use crate::report::{self, Color};
use anyhow::{bail, Context, Result};

/// Runs the chosen command.
pub fn dispatch(cli: Cli) -> Result<()> {
    let g = cli.global;
    let color = Color::detect(g.disable_color);
    match cli.command {
        Command::Version { name } => {
            version(name);
            Ok(())
        }
        Command::Generate(what) => generate::run(what),
        Command::Check => {
            input::enter_directory(&g)?;
            let loaded = sb_config::load(&input::read_all(&g)?, &input::cwd()?)?;
            warnings(color, &loaded);
            crate::run::verify(&loaded.config)
        }
        Command::Run => {
            input::enter_directory(&g)?;
            let loaded = sb_config::load(&input::read_all(&g)?, &input::cwd()?)?;
            warnings(color, &loaded);
            crate::run::run(&g, loaded)
        }
        Command::Format { write } => {
            input::enter_directory(&g)?;
            for path in input::paths(&g)? {
                let src = input::read(&path)?;
                let loaded = sb_config::load_text_in(&src.name, &src.text, &input::cwd()?)?;
                let out = sb_config::format(&loaded);
                if write {
                    if path == "stdin" {
                        bail!("format -w: cannot write back to stdin");
                    }
                    if out != src.text {
                        std::fs::write(&path, out).with_context(|| format!("write {path}"))?;
                        let shown =
                            std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone().into());
                        eprintln!("{}", shown.display());
                    }
                } else {
                    // Go prints the formatted document followed by an empty line.
                    stdout(&format!("{out}\n"))?;
                }
            }
            Ok(())
        }
        Command::Merge { output } => {
            input::enter_directory(&g)?;
            let sources = input::read_all(&g)?;
            let loaded = sb_config::load(&sources, &input::cwd()?)?;
            let out = sb_config::format(&loaded);
            write_private(&output, out.as_bytes())
                .with_context(|| format!("write {}", output.display()))?;
            // Go names the written file by its absolute path.
            let shown = std::fs::canonicalize(&output).unwrap_or(output);
            eprintln!("{}", shown.display());
            Ok(())
        }
    }
}

/// Writes a file only its owner can read: a merged config holds every password and key of
/// its parts. An existing file keeps its mode.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// Writes to stdout; a closed pipe (`sb format | head`) ends the command quietly.
fn stdout(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        r => r.context("write to stdout"),
    }
}

fn warnings(color: Color, loaded: &sb_config::Loaded) {
    for w in &loaded.warnings {
        report::warn(color, &w.to_string());
    }
}

fn version(name_only: bool) {
    if name_only {
        println!("{}", sb_core::VERSION);
        return;
    }
    println!("sb version {}", sb_core::VERSION);
    println!();
    println!(
        "Environment: rust {}/{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    println!("Config: sing-box {}", sb_core::SING_BOX_COMPAT);
}
