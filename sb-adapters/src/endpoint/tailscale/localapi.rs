//! A client of tailscaled's Local API: HTTP/1.1 over its unix socket, on sb's own HTTP
//! client (`sb_core::http_client`, which handles chunked bodies, streamed responses and
//! `Upgrade`). The daemon answers only requests whose `Host` is `local-tailscaled.sock`.
//!
//! Each call opens its own connection (the daemon's socket is local and cheap); the IPN bus
//! watch keeps one open for as long as it is read.

use super::wire::{self, Notify, Status};
use sb_core::adapter::BoxStream;
use sb_core::http_client::{
    Body, ClientOptions, Connector, HttpClient, HttpError, HttpVersion, Method,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The host name the daemon insists on.
const HOST: &str = "local-tailscaled.sock";
/// How long one request may take (the daemon is local; `start` is the slowest, well under).
const TIMEOUT: Duration = Duration::from_secs(15);
/// Largest reply read whole (`status` with a few thousand peers stays well under).
const MAX_REPLY: usize = 16 << 20;
/// Largest IPN bus line: the watch never asks for network maps, so lines are small.
pub const MAX_NOTIFY: usize = 1 << 20;

/// `watch-ipn-bus` mask bits (`ipn.NotifyWatchOpt`).
pub mod mask {
    /// Send the current state, and the login URL if there is one, first.
    pub const INITIAL_STATE: u64 = 1 << 1;
    /// Do not include private keys in network maps or prefs.
    pub const NO_PRIVATE_KEYS: u64 = 1 << 4;
    /// Send the current health first.
    pub const INITIAL_HEALTH_STATE: u64 = 1 << 7;
}

/// Why a Local API call failed.
#[derive(Debug, thiserror::Error)]
pub enum LocalApiError {
    /// The socket is missing, or nothing (or something else) listens on it.
    #[error("tailscaled is not reachable at {path}: {source}")]
    Unreachable {
        /// The socket path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The daemon answered with an error status.
    #[error("tailscaled refused {call}: {status} {text}")]
    Refused {
        /// The call (`PATCH prefs`).
        call: &'static str,
        /// HTTP status.
        status: u16,
        /// The daemon's error text.
        text: String,
    },
    /// The reply is not what the Local API sends (not tailscaled on the socket?).
    #[error("{call}: unexpected reply from {path}: {detail}")]
    Protocol {
        /// The call.
        call: &'static str,
        /// The socket path.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
}

/// One daemon's Local API.
#[derive(Clone)]
pub struct LocalApi {
    socket: PathBuf,
    http: HttpClient,
}

impl LocalApi {
    /// A client of the daemon listening on `socket`.
    pub fn new(socket: &Path) -> Result<LocalApi, HttpError> {
        let options = ClientOptions {
            timeout: TIMEOUT,
            max_body: MAX_REPLY,
            version: HttpVersion::Http1,
            ..ClientOptions::default()
        };
        let http = HttpClient::with_connector(Connector::Unix(socket.to_path_buf()), options)?
            .with_purpose("tailscale-localapi");
        Ok(LocalApi {
            socket: socket.to_path_buf(),
            http,
        })
    }

    /// The socket's path.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    fn url(path: &str) -> String {
        format!("http://{HOST}/localapi/v0/{path}")
    }

    fn failed(&self, call: &'static str, e: HttpError) -> LocalApiError {
        match e {
            HttpError::Io(source) => LocalApiError::Unreachable {
                path: self.socket.clone(),
                source,
            },
            HttpError::NotUpgraded(status, _, text) => LocalApiError::Refused {
                call,
                status,
                text: wire::error_text(text.as_bytes()),
            },
            other => LocalApiError::Protocol {
                call,
                path: self.socket.clone(),
                detail: other.to_string(),
            },
        }
    }

    /// One request with its reply collected; an error status is [`LocalApiError::Refused`].
    async fn call(
        &self,
        call: &'static str,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, LocalApiError> {
        let mut req = self
            .http
            .request(method, &Self::url(path))
            .header("Host", HOST);
        if let Some(body) = body {
            req = req.header("Content-Type", "application/json").body(body);
        }
        let resp = req.fetch().await.map_err(|e| self.failed(call, e))?;
        if !(200..300).contains(&resp.head.status) {
            return Err(LocalApiError::Refused {
                call,
                status: resp.head.status,
                text: wire::error_text(&resp.body),
            });
        }
        Ok(resp.body)
    }

    fn json<T: serde::de::DeserializeOwned>(
        &self,
        call: &'static str,
        body: &[u8],
    ) -> Result<T, LocalApiError> {
        serde_json::from_slice(body).map_err(|e| LocalApiError::Protocol {
            call,
            path: self.socket.clone(),
            detail: format!("not the JSON tailscaled sends: {e}"),
        })
    }

    /// `GET status`, with or without the peers.
    pub async fn status(&self, peers: bool) -> Result<Status, LocalApiError> {
        let path = if peers {
            "status"
        } else {
            "status?peers=false"
        };
        let body = self.call("GET status", Method::GET, path, None).await?;
        self.json("GET status", &body)
    }

    /// `GET prefs`: the whole prefs object, as the daemon has it.
    pub async fn prefs(&self) -> Result<Value, LocalApiError> {
        let body = self.call("GET prefs", Method::GET, "prefs", None).await?;
        self.json("GET prefs", &body)
    }

    /// `PATCH prefs` with a MaskedPrefs object; returns the prefs after the edit.
    pub async fn edit_prefs(&self, masked: &Value) -> Result<Value, LocalApiError> {
        let body = serde_json::to_vec(masked).unwrap_or_default();
        let reply = self
            .call("PATCH prefs", Method::PATCH, "prefs", Some(body))
            .await?;
        self.json("PATCH prefs", &reply)
    }

    /// `POST start` with `ipn.Options` (`AuthKey`, `UpdatePrefs`).
    pub async fn start(&self, options: &Value) -> Result<(), LocalApiError> {
        let body = serde_json::to_vec(options).unwrap_or_default();
        self.call("POST start", Method::POST, "start", Some(body))
            .await
            .map(drop)
    }

    /// `POST login-interactive`: asks the daemon to log in (with the auth key `start` gave
    /// it, else by a URL it then announces on the bus).
    pub async fn login_interactive(&self) -> Result<(), LocalApiError> {
        self.call(
            "POST login-interactive",
            Method::POST,
            "login-interactive",
            None,
        )
        .await
        .map(drop)
    }

    /// `GET watch-ipn-bus?mask=…`: the daemon's notifications, as they come.
    pub async fn watch(&self, mask: u64) -> Result<Bus, LocalApiError> {
        let call = "GET watch-ipn-bus";
        let resp = self
            .http
            .request(
                Method::GET,
                &Self::url(&format!("watch-ipn-bus?mask={mask}")),
            )
            .header("Host", HOST)
            .send()
            .await
            .map_err(|e| self.failed(call, e))?;
        if resp.head.status != 200 {
            let text = resp.body.read_prefix(1024).await;
            return Err(LocalApiError::Refused {
                call,
                status: resp.head.status,
                text: wire::error_text(&text),
            });
        }
        Ok(Bus {
            body: resp.body,
            lines: Lines::default(),
            socket: self.socket.clone(),
        })
    }

    /// `POST dial` with `Upgrade: ts-dial`: a TCP connection the daemon opens to
    /// `host:port` from its tailnet address (how `tailscale nc` reaches peers without a
    /// TUN); the upgraded connection is the stream.
    pub async fn dial(&self, host: &str, port: u16) -> Result<BoxStream, LocalApiError> {
        let (_, stream) = self
            .http
            .request(Method::POST, &Self::url("dial"))
            .header("Host", HOST)
            .header("Upgrade", "ts-dial")
            .header("Connection", "upgrade")
            .header("Dial-Host", host)
            .header("Dial-Port", &port.to_string())
            .header("Dial-Network", "tcp")
            .upgrade()
            .await
            .map_err(|e| self.failed("POST dial", e))?;
        Ok(Box::new(stream))
    }
}

/// An open IPN bus watch.
pub struct Bus {
    body: Body,
    lines: Lines,
    socket: PathBuf,
}

impl Bus {
    /// The next notification; `None` when the watch ended (the daemon closed it, or went
    /// away mid-stream, as a stopped daemon does).
    pub async fn next(&mut self) -> Result<Option<Notify>, LocalApiError> {
        loop {
            let line = self
                .lines
                .next_line()
                .map_err(|d| bus_error(&self.socket, d))?;
            if let Some(line) = line {
                return decode_notify(&line)
                    .map(Some)
                    .map_err(|d| bus_error(&self.socket, d));
            }
            match self.body.chunk().await {
                Ok(Some(chunk)) => self.lines.push(&chunk),
                Ok(None) => return Ok(None),
                Err(e) => {
                    tracing::debug!(target: "endpoint", "IPN bus at {} broke: {e}", self.socket.display());
                    return Ok(None);
                }
            }
        }
    }
}

fn bus_error(socket: &Path, detail: String) -> LocalApiError {
    LocalApiError::Protocol {
        call: "GET watch-ipn-bus",
        path: socket.to_path_buf(),
        detail,
    }
}

/// One bus line as a notification, or why it is not one.
pub fn decode_notify(line: &[u8]) -> Result<Notify, String> {
    serde_json::from_slice(line).map_err(|e| format!("not an ipn.Notify: {e}"))
}

/// Splits the bus's newline-delimited JSON, with a bound on a line's length.
#[derive(Default)]
pub struct Lines {
    buf: Vec<u8>,
}

impl Lines {
    /// Adds bytes read from the bus.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete, non-empty line; `Ok(None)` until one is complete; an error when
    /// a line grows past the bound.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            let end = self.buf.iter().position(|&b| b == b'\n');
            if end.unwrap_or(self.buf.len()) > MAX_NOTIFY {
                return Err(format!("a notification longer than {MAX_NOTIFY} bytes"));
            }
            let Some(end) = end else {
                return Ok(None);
            };
            let line: Vec<u8> = self.buf.drain(..=end).take(end).collect();
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Ok(Some(line));
            }
        }
    }
}
