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
            Ok(())
        }
        Command::Run => {
            input::enter_directory(&g)?;
            let loaded = sb_config::load(&input::read_all(&g)?, &input::cwd()?)?;
            warnings(color, &loaded);
            bail!("sb run: the runtime is not implemented in this build yet; the config is valid (sb can check, format and merge it)")
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
                    }
                } else {
                    print!("{out}");
                }
            }
            Ok(())
        }
        Command::Merge { output } => {
            input::enter_directory(&g)?;
            let sources = input::read_all(&g)?;
            let loaded = sb_config::load(&sources, &input::cwd()?)?;
            let out = sb_config::format(&loaded);
            std::fs::write(&output, out).with_context(|| format!("write {}", output.display()))?;
            eprintln!("{}", output.display());
            Ok(())
        }
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
