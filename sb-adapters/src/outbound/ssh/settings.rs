//! The `ssh` outbound's settings, checked when the outbound is built (sb refuses to start on a
//! key it cannot read, a host key it cannot parse or an algorithm russh does not have), and
//! the client version Go sends when none is configured.

use russh::keys::{HashAlg, PrivateKey, PublicKey};
use sb_config::model::outbound::SshOutbound;
use std::borrow::Cow;
use std::sync::Arc;

/// Everything a session needs besides the dialer.
pub struct Settings {
    /// Login name (`root` when empty, as in Go).
    pub user: String,
    /// Password authentication, tried first (Go's order). Never logged.
    pub password: Option<String>,
    /// Public-key authentication.
    pub key: Option<Arc<PrivateKey>>,
    /// Accepted server keys; empty accepts any (with a warning naming the key).
    pub host_keys: Vec<PublicKey>,
    /// The russh client configuration (version string, algorithms, keepalive).
    pub config: Arc<russh::client::Config>,
}

/// `SSH-2.0-OpenSSH_7.x` or `_8.x`, as Go picks when `client_version` is empty, so sb is not
/// told apart from the many OpenSSH clients by its banner.
pub fn random_version() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    if rng.gen_bool(0.5) {
        format!("SSH-2.0-OpenSSH_7.{}", rng.gen_range(0..10))
    } else {
        format!("SSH-2.0-OpenSSH_8.{}", rng.gen_range(0..9))
    }
}

/// Why the `ssh` outbound refuses its options. The texts name the field or the file, never
/// a key's secret text.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// `private_key_path` cannot be read.
    #[error("read private key {path}: {}", sb_core::error_text(.error))]
    ReadKey {
        /// The path, with `~` expanded.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// The private key does not parse (or the passphrase is wrong).
    #[error("parse private key: {0}")]
    ParseKey(russh::keys::Error),
    /// A `host_key` line has no key after its type.
    #[error("parse host key: {0}: ssh: no key found")]
    NoHostKey(String),
    /// A `host_key` line's key does not parse.
    #[error("parse host key: {line}: {error}")]
    HostKey {
        /// The line as configured (public keys only, so it may be shown).
        line: String,
        /// What russh found wrong.
        error: russh::keys::Error,
    },
    /// An algorithm list (`kex_algorithm`, `cipher`, `mac`, `host_key_algorithms`) names one
    /// russh does not have.
    #[error("{field}: unsupported algorithm {name:?}")]
    Algorithm {
        /// The config field.
        field: &'static str,
        /// The unknown name.
        name: String,
    },
}

/// Reads the key text from `private_key` (lines joined) or `private_key_path`.
fn key_text(o: &SshOutbound) -> Result<Option<String>, SshError> {
    if !o.private_key.is_empty() {
        return Ok(Some(o.private_key.0.join("\n")));
    }
    if o.private_key_path.is_empty() {
        return Ok(None);
    }
    let path = sb_config::ctx::expand_path(&o.private_key_path);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(error) => Err(SshError::ReadKey { path, error }),
    }
}

/// Parses one authorized_keys line (`type base64 [comment]`).
fn host_key(line: &str) -> Result<PublicKey, SshError> {
    let mut parts = line.split_whitespace();
    let (Some(_ty), Some(b64)) = (parts.next(), parts.next()) else {
        return Err(SshError::NoHostKey(line.to_string()));
    };
    russh::keys::parse_public_key_base64(b64).map_err(|error| SshError::HostKey {
        line: line.to_string(),
        error,
    })
}

fn names<T>(
    field: &'static str,
    list: &[String],
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, SshError> {
    list.iter()
        .map(|n| {
            parse(n).ok_or_else(|| SshError::Algorithm {
                field,
                name: n.clone(),
            })
        })
        .collect()
}

impl Settings {
    /// Builds the settings from the config, failing with a message that names the field.
    pub fn from_config(o: &SshOutbound) -> Result<Settings, SshError> {
        let key = match key_text(o)? {
            Some(text) => {
                let pass = Some(o.private_key_passphrase.as_str()).filter(|p| !p.is_empty());
                // The key text itself is never part of the error.
                let key =
                    russh::keys::decode_secret_key(&text, pass).map_err(SshError::ParseKey)?;
                Some(Arc::new(key))
            }
            None => None,
        };
        let host_keys = o
            .host_key
            .iter()
            .map(|l| host_key(l))
            .collect::<Result<Vec<_>, _>>()?;
        let mut preferred = russh::Preferred::default();
        if !o.kex_algorithm.is_empty() {
            preferred.kex = Cow::Owned(names("kex_algorithm", &o.kex_algorithm.0, |n| {
                russh::kex::Name::try_from(n).ok()
            })?);
        }
        // Go's order when `cipher` is empty: AES-GCM first (hardware AES makes it the
        // fastest), then ChaCha20-Poly1305, then AES-CTR. russh's own default leads with
        // ChaCha20, which costs throughput on machines with AES instructions.
        preferred.cipher = Cow::Borrowed(&[
            russh::cipher::AES_128_GCM,
            russh::cipher::AES_256_GCM,
            russh::cipher::CHACHA20_POLY1305,
            russh::cipher::AES_128_CTR,
            russh::cipher::AES_192_CTR,
            russh::cipher::AES_256_CTR,
        ]);
        if !o.cipher.is_empty() {
            preferred.cipher = Cow::Owned(names("cipher", &o.cipher.0, |n| {
                russh::cipher::Name::try_from(n).ok()
            })?);
        }
        if !o.mac.is_empty() {
            preferred.mac = Cow::Owned(names("mac", &o.mac.0, |n| {
                russh::mac::Name::try_from(n).ok()
            })?);
        }
        if !o.host_key_algorithms.is_empty() {
            preferred.key = Cow::Owned(names(
                "host_key_algorithms",
                &o.host_key_algorithms.0,
                |n| n.parse::<russh::keys::Algorithm>().ok(),
            )?);
        }
        let version = if o.client_version.is_empty() {
            random_version()
        } else {
            o.client_version.clone()
        };
        let config = russh::client::Config {
            client_id: russh::SshId::Standard(Cow::Owned(version)),
            preferred,
            // A shared session must outlive quiet periods: no inactivity timeout, and
            // keepalives so a peer or NAT that silently dropped it is noticed (three missed
            // answers, about 90 s) instead of leaving flows to hang on a dead session.
            inactivity_timeout: None,
            keepalive_interval: Some(std::time::Duration::from_secs(30)),
            keepalive_max: 3,
            nodelay: true,
            ..Default::default()
        };
        Ok(Settings {
            user: if o.user.is_empty() {
                "root".into()
            } else {
                o.user.clone()
            },
            password: Some(o.password.clone()).filter(|p| !p.is_empty()),
            key,
            host_keys,
            config: Arc::new(config),
        })
    }
}

/// The RSA signature hash to use with `key` given what the server announced (`None` for
/// non-RSA keys, where it does not apply).
pub fn rsa_hash(announced: Option<Option<HashAlg>>) -> Option<HashAlg> {
    announced.flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_versions_look_like_openssh_7_or_8() {
        for _ in 0..200 {
            let v = random_version();
            let minor = v
                .strip_prefix("SSH-2.0-OpenSSH_7.")
                .or_else(|| v.strip_prefix("SSH-2.0-OpenSSH_8."))
                .unwrap_or_else(|| panic!("{v}"));
            assert!(minor.parse::<u8>().unwrap() <= 9, "{v}");
        }
    }

    #[test]
    fn bad_inputs_name_the_field() {
        let mut o = SshOutbound {
            private_key: sb_config::types::Listable(vec![
                "-----BEGIN OPENSSH PRIVATE KEY-----".into(),
                "garbage".into(),
                "-----END OPENSSH PRIVATE KEY-----".into(),
            ]),
            ..Default::default()
        };
        assert!(Settings::from_config(&o)
            .err()
            .unwrap()
            .to_string()
            .starts_with("parse private key"));
        o.private_key = Default::default();
        o.host_key = sb_config::types::Listable(vec!["ssh-ed25519 !!!".into()]);
        assert!(Settings::from_config(&o)
            .err()
            .unwrap()
            .to_string()
            .starts_with("parse host key"));
        o.host_key = Default::default();
        o.cipher = sb_config::types::Listable(vec!["rot13".into()]);
        assert_eq!(
            Settings::from_config(&o).err().unwrap().to_string(),
            "cipher: unsupported algorithm \"rot13\""
        );
        o.cipher = Default::default();
        let s = Settings::from_config(&o).unwrap();
        assert_eq!(s.user, "root");
        assert!(s.password.is_none() && s.key.is_none());
    }
}
