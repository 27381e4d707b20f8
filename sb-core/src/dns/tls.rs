//! The client side of TLS for the `tls` and `https` DNS servers, from the server's `tls`
//! block: `server_name` (the server address when empty), `certificate`/`certificate_path`
//! (then only those roots are trusted, as Go does), `insecure`, `alpn`, `disable_sni`. The
//! rustls configuration is [`crate::tls_stream::client_config`], shared with the HTTP client.

use super::TlsError;
use crate::adapter::BoxStream;
use crate::tls_stream::{client_config, connect};
use rustls::pki_types::ServerName;
use sb_config::model::shared::OutboundTls;
use std::sync::Arc;

/// A configured TLS client for one server.
#[derive(Clone)]
pub struct TlsClient {
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
}

impl TlsClient {
    /// Builds the client for `server` (its address, the default name) with `alpn` offered
    /// unless the block names its own.
    pub fn new(tls: Option<&OutboundTls>, server: &str, alpn: &[&str]) -> Result<Self, TlsError> {
        let default = OutboundTls::default();
        let t = tls.unwrap_or(&default);
        let name_text = if t.server_name.is_empty() {
            server
        } else {
            t.server_name.as_str()
        };
        let name =
            ServerName::try_from(name_text.to_string()).map_err(|error| TlsError::ServerName {
                name: name_text.to_string(),
                error,
            })?;
        Ok(TlsClient {
            config: Arc::new(client_config(t, &[], alpn)?),
            name,
        })
    }

    /// Runs the handshake over `stream`.
    pub async fn wrap(&self, stream: BoxStream) -> std::io::Result<BoxStream> {
        Ok(Box::new(
            connect(self.config.clone(), self.name.clone(), stream).await?,
        ))
    }

    /// Runs the handshake and says whether the server chose HTTP/2 by ALPN.
    pub async fn wrap_alpn(&self, stream: BoxStream) -> std::io::Result<(BoxStream, bool)> {
        let tls = connect(self.config.clone(), self.name.clone(), stream).await?;
        let h2 = tls.alpn() == Some(b"h2");
        Ok((Box::new(tls), h2))
    }
}
