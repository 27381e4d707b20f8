//! `sb generate`: UUIDs, random bytes and WireGuard key pairs, printed as Go prints them.

use crate::cli::Generate;
use anyhow::{Context, Result};
use rand::RngCore;
use std::io::Write;

/// Runs one `generate` subcommand.
pub fn run(what: Generate) -> Result<()> {
    match what {
        Generate::Uuid => println!("{}", uuid::Uuid::new_v4()),
        Generate::Rand {
            length,
            base64,
            hex,
        } => {
            let mut buf = vec![0u8; length];
            rand::rngs::OsRng.fill_bytes(&mut buf);
            if base64 {
                println!("{}", sb_config::base64::encode(&buf));
            } else if hex {
                let s: String = buf.iter().map(|b| format!("{b:02x}")).collect();
                println!("{s}");
            } else {
                std::io::stdout()
                    .write_all(&buf)
                    .context("write random bytes")?;
            }
        }
        Generate::WgKeypair => {
            let secret = x25519_dalek::StaticSecret::random_from_rng(rand::rngs::OsRng);
            let public = x25519_dalek::PublicKey::from(&secret);
            println!(
                "PrivateKey: {}",
                sb_config::base64::encode(secret.to_bytes())
            );
            println!(
                "PublicKey: {}",
                sb_config::base64::encode(public.as_bytes())
            );
        }
    }
    Ok(())
}
