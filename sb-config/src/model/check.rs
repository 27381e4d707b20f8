//! Value checks Go makes when it builds a component (its `check` builds everything without
//! starting it), for values serde alone cannot judge: TLS settings, WireGuard keys, SSH host
//! keys, MAC addresses. Each returns Go's message so `sb check` and Go agree on the verdict.

use super::shared::{InboundTls, OutboundTls};
use crate::ctx::Ctx;

/// Go's `crypto/tls` cipher suite names.
const CIPHER_SUITES: &[&str] = &[
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
];

fn cipher_suites<'a>(list: impl Iterator<Item = &'a String>) -> Result<(), String> {
    for c in list {
        if !CIPHER_SUITES.contains(&c.as_str()) {
            return Err(format!("unknown cipher_suite: {c}"));
        }
    }
    Ok(())
}

fn read_pem(ctx: &Ctx, path: &str, what: &str) -> Result<(), String> {
    if path.is_empty() {
        return Ok(());
    }
    ctx.read_file(path)
        .map(|_| ())
        .map_err(|e| format!("read {what}: {e}"))
}

/// An outbound (client) TLS block.
pub fn outbound_tls(tls: &OutboundTls, ctx: &Ctx) -> Result<(), String> {
    if !tls.enabled {
        return Ok(());
    }
    if !matches!(tls.engine.as_str(), "" | "go") {
        return Err(format!("unknown tls engine: {}", tls.engine));
    }
    cipher_suites(tls.cipher_suites.iter())?;
    read_pem(ctx, &tls.certificate_path, "certificate")?;
    read_pem(ctx, &tls.client_certificate_path, "client certificate")?;
    read_pem(ctx, &tls.client_key_path, "client key")
}

/// An inbound (server) TLS block.
pub fn inbound_tls(tls: &InboundTls, ctx: &Ctx) -> Result<(), String> {
    if !tls.enabled {
        return Ok(());
    }
    cipher_suites(tls.cipher_suites.iter())?;
    let has_provider = tls.certificate_provider.is_some() || tls.reality.is_some();
    if !has_provider {
        if tls.certificate.is_empty() && tls.certificate_path.is_empty() {
            return Err("missing certificate".into());
        }
        if tls.key.is_empty() && tls.key_path.is_empty() {
            return Err("missing key".into());
        }
    }
    read_pem(ctx, &tls.certificate_path, "certificate")?;
    read_pem(ctx, &tls.key_path, "key")
}

/// A WireGuard key: base64 of 32 bytes.
pub fn wireguard_key(text: &str, what: &str) -> Result<(), String> {
    let bytes = crate::base64::decode_go(text).map_err(|e| format!("decode {what}: {e}"))?;
    if bytes.len() != 32 {
        return Err(format!(
            "decode {what}: expected 32 bytes, got {}",
            bytes.len()
        ));
    }
    Ok(())
}

/// An authorized_keys-format host key line: `<type> <base64> [comment]`.
pub fn ssh_host_key(line: &str) -> Result<(), String> {
    let mut parts = line.split_whitespace();
    let ok = match (parts.next(), parts.next()) {
        (Some(ty), Some(b64)) => {
            let known =
                ty.starts_with("ssh-") || ty.starts_with("ecdsa-sha2-") || ty.starts_with("sk-");
            known && crate::base64::decode(b64).is_some_and(|blob| blob.len() > 4)
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("parse host key: {line}: ssh: no key found"))
    }
}

/// A MAC address `aa:bb:cc:dd:ee:ff` (or with `-`).
pub fn mac_address(text: &str) -> Result<(), String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && u8::from_str_radix(p, 16).is_ok());
    if ok {
        Ok(())
    } else {
        Err(format!("invalid MAC address: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_messages() {
        assert_eq!(
            wireguard_key("bad!", "private key").unwrap_err(),
            "decode private key: illegal base64 data at input byte 3"
        );
        assert!(wireguard_key(
            "QM863KrwfTAG0AENBnP4qJkarTGH4bhsLOVHWwyq0W4=",
            "private key"
        )
        .is_ok());
        assert_eq!(
            ssh_host_key("garbage").unwrap_err(),
            "parse host key: garbage: ssh: no key found"
        );
        assert!(mac_address("00:11:22:33:44:55").is_ok());
        assert!(mac_address("zz").is_err());
    }
}
