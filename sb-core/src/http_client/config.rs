//! From a config's HTTP client (`http_clients[]` or an inline `http_client`) to
//! [`ClientOptions`]. Every field is honoured or refused here by name, so a client never runs
//! with a setting silently dropped. The dial fields become the client's `Dialer` in the
//! registry; the ones a `Dialer` cannot apply are refused here too.
//!
//! Honoured: `engine` `go`; `version` 1 and 2; `disable_version_fallback`; `headers`; the
//! HTTP/2 windows and `keep_alive_period`; `idle_timeout` and `max_concurrent_streams`, which
//! a client that closes each connection after its one exchange always keeps within; `tls`
//! (`server_name`, `insecure`, `alpn`, `min_version`/`max_version` 1.2-1.3,
//! `certificate`/`certificate_path`, `disable_sni`, `handshake_timeout`; `enabled` is not
//! needed, the URL's scheme decides). Refused: `engine` `apple` (not this platform) and any
//! other; `version` 3 (no HTTP/3 in sb); the other `tls` fields; the dial fields `netns`,
//! `protect_path`, `tcp_multi_path` and the network-strategy fields.

use super::{ClientOptions, Http2Options, HttpVersion};
use sb_config::model::http_client::HttpClientOptions;
use sb_config::model::shared::TlsVersion;

/// The client options `c` asks for, or the first field sb cannot honour.
pub fn client_options(c: &HttpClientOptions) -> Result<ClientOptions, String> {
    match c.common.engine.as_str() {
        "" | "go" => {}
        "apple" => {
            return Err(
                "engine \"apple\": Apple HTTP engine is not available on non-Apple platforms"
                    .into(),
            )
        }
        other => return Err(format!("unknown HTTP engine: {other}")),
    }
    let version = match c.version {
        1 => HttpVersion::Http1,
        2 => HttpVersion::Http2,
        v => return Err(format!("version {v} (HTTP/3) is not implemented by sb")),
    };
    refuse_dial(c)?;
    // The scheme decides whether a request uses TLS (`enabled` is not read); the block only
    // configures it.
    let tls = c.tls.clone().unwrap_or_default();
    refuse_tls(&tls)?;
    let window = |w: &Option<sb_config::types::MemoryBytes>, name: &str| {
        w.as_ref()
            .filter(|w| w.bytes > 0)
            .map(|w| {
                u32::try_from(w.bytes)
                    .map_err(|_| format!("{name}: {} bytes is over HTTP/2's 4 GiB window", w.bytes))
            })
            .transpose()
    };
    let http2 = Http2Options {
        stream_window: window(&c.http2.stream_receive_window, "stream_receive_window")?,
        connection_window: window(
            &c.http2.connection_receive_window,
            "connection_receive_window",
        )?,
        keep_alive_period: Some(c.http2.keep_alive_period)
            .filter(|d| !d.is_zero())
            .map(|d| d.to_std()),
    };
    let headers = c
        .common
        .headers
        .iter()
        .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
        .collect();
    Ok(ClientOptions {
        version,
        disable_version_fallback: c.common.disable_version_fallback,
        headers,
        tls,
        http2,
        ..ClientOptions::default()
    })
}

fn refuse_dial(c: &HttpClientOptions) -> Result<(), String> {
    let d = &c.dial;
    let set = [
        ("netns", !d.netns.is_empty()),
        ("protect_path", !d.protect_path.is_empty()),
        ("tcp_multi_path", d.tcp_multi_path),
        ("network_strategy", d.network_strategy.is_some()),
        ("network_type", !d.network_type.is_empty()),
        ("fallback_network_type", !d.fallback_network_type.is_empty()),
    ];
    match set.iter().find(|(_, on)| *on) {
        Some((name, _)) => Err(format!("{name} is not implemented by sb's HTTP client")),
        None => Ok(()),
    }
}

fn refuse_tls(t: &sb_config::model::shared::OutboundTls) -> Result<(), String> {
    let below_12 = |v: Option<TlsVersion>| matches!(v, Some(TlsVersion::V10 | TlsVersion::V11));
    let set = [
        ("tls.engine", !matches!(t.engine.as_str(), "" | "go")),
        ("tls.min_version below 1.2", below_12(t.min_version)),
        ("tls.max_version below 1.2", below_12(t.max_version)),
        ("tls.cipher_suites", !t.cipher_suites.is_empty()),
        ("tls.curve_preferences", !t.curve_preferences.is_empty()),
        (
            "tls.certificate_public_key_sha256",
            !t.certificate_public_key_sha256.is_empty(),
        ),
        (
            "tls.client_certificate",
            !t.client_certificate.is_empty() || !t.client_certificate_path.is_empty(),
        ),
        (
            "tls.client_key",
            !t.client_key.is_empty() || !t.client_key_path.is_empty(),
        ),
        ("tls.fragment", t.fragment),
        ("tls.record_fragment", t.record_fragment),
        ("tls.spoof", !t.spoof.is_empty()),
        ("tls.kernel_tx", t.kernel_tx),
        ("tls.kernel_rx", t.kernel_rx),
        ("tls.ech", t.ech.as_ref().is_some_and(|e| e.enabled)),
        ("tls.utls", t.utls.as_ref().is_some_and(|u| u.enabled)),
        ("tls.reality", t.reality.as_ref().is_some_and(|r| r.enabled)),
    ];
    match set.iter().find(|(_, on)| *on) {
        Some((name, _)) => Err(format!("{name} is not implemented by sb's HTTP client")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sb_config::model::http_client::HttpClientOptions;

    fn options(version: u8) -> HttpClientOptions {
        HttpClientOptions {
            version,
            ..Default::default()
        }
    }

    #[test]
    fn versions_and_refusals() {
        assert_eq!(
            client_options(&options(2)).unwrap().version,
            HttpVersion::Http2
        );
        assert_eq!(
            client_options(&options(1)).unwrap().version,
            HttpVersion::Http1
        );
        assert_eq!(
            client_options(&options(3)).unwrap_err(),
            "version 3 (HTTP/3) is not implemented by sb"
        );
        let mut c = options(2);
        c.common.engine = "curl".into();
        assert_eq!(client_options(&c).unwrap_err(), "unknown HTTP engine: curl");
        let mut c = options(2);
        c.dial.tcp_multi_path = true;
        assert_eq!(
            client_options(&c).unwrap_err(),
            "tcp_multi_path is not implemented by sb's HTTP client"
        );
        let mut c = options(2);
        c.tls = Some(sb_config::model::shared::OutboundTls {
            fragment: true,
            ..Default::default()
        });
        assert_eq!(
            client_options(&c).unwrap_err(),
            "tls.fragment is not implemented by sb's HTTP client"
        );
    }

    #[test]
    fn headers_and_windows() {
        let mut c = options(2);
        c.common.headers.insert(
            "X-A".into(),
            sb_config::types::Listable(vec!["1".into(), "2".into()]),
        );
        c.http2.stream_receive_window = Some("1MB".parse().unwrap());
        let o = client_options(&c).unwrap();
        assert_eq!(
            o.headers,
            [
                ("X-A".to_string(), "1".to_string()),
                ("X-A".into(), "2".into())
            ]
        );
        assert_eq!(o.http2.stream_window, Some(1 << 20));
        assert_eq!(o.http2.connection_window, None);
    }
}
