//! The `http` outbound: flows carried by an HTTP proxy with `CONNECT`, reached through the
//! outbound's own [`Dialer`]. Sends `Proxy-Authorization` when a user is set and the
//! configured extra headers. TLS to the proxy is not implemented yet and refused at start.

use crate::proto::http::parse_head_response;
use sb_core::adapter::{BoxFuture, BoxStream, Outbound};
use sb_core::dialer::Dialer;
use sb_core::flow::{Destination, FlowContext};
use sb_core::stream::Prefixed;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An `http` outbound.
pub struct HttpProxy {
    tag: String,
    server: Destination,
    /// `Proxy-Authorization` value, when a user is set.
    auth: Option<String>,
    headers: Vec<(String, String)>,
    dialer: Dialer,
}

impl HttpProxy {
    /// Builds it.
    pub fn new(
        tag: &str,
        server: Destination,
        user: Option<(String, String)>,
        headers: Vec<(String, String)>,
        dialer: Dialer,
    ) -> HttpProxy {
        let auth = user.map(|(u, p)| {
            format!(
                "Basic {}",
                sb_config::base64::encode(format!("{u}:{p}").as_bytes())
            )
        });
        HttpProxy {
            tag: tag.to_string(),
            server,
            auth,
            headers,
            dialer,
        }
    }
}

impl HttpProxy {
    /// The CONNECT exchange on `s`: the request, then the answer's head. Returns the bytes
    /// read past the head (the tunnel's first bytes).
    async fn exchange(&self, s: &mut BoxStream, dest: &Destination) -> io::Result<Vec<u8>> {
        let target = dest.to_string();
        let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(a) = &self.auth {
            req.push_str(&format!("Proxy-Authorization: {a}\r\n"));
        }
        for (k, v) in &self.headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::with_capacity(512);
        let mut chunk = [0u8; 1024];
        let (status, head_len) = loop {
            if let Some(done) = parse_head_response(&buf)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?
            {
                break done;
            }
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "http proxy closed the connection during CONNECT",
                ));
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        if !(200..300).contains(&status) {
            let kind = match status {
                403 | 407 => io::ErrorKind::PermissionDenied,
                504 => io::ErrorKind::TimedOut,
                _ => io::ErrorKind::ConnectionRefused,
            };
            return Err(io::Error::new(
                kind,
                format!("http proxy: CONNECT answered {status}"),
            ));
        }
        Ok(buf.split_off(head_len))
    }
}

impl Outbound for HttpProxy {
    fn tag(&self) -> &str {
        &self.tag
    }
    fn kind(&self) -> &'static str {
        "http"
    }
    fn connect_tcp<'a>(
        &'a self,
        flow: &'a FlowContext,
        dest: &'a Destination,
    ) -> BoxFuture<'a, io::Result<BoxStream>> {
        Box::pin(async move {
            let mut s = self.dialer.connect_tcp(flow, &self.server).await?;
            let leftover = self
                .dialer
                .bounded("http proxy CONNECT", self.exchange(&mut s, dest))
                .await?;
            Ok(Prefixed::wrap_boxed(leftover, s))
        })
    }
}

#[cfg(test)]
mod tests {
    //! Hardening finding 6: a proxy that accepts the connection and never answers CONNECT
    //! must not hold the flow forever.

    // Test code: a failed unwrap is a failed test, with the reason in the panic message.
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use sb_core::dialer::DialOptions;
    use sb_core::flow::Network;
    use std::time::Duration;

    #[tokio::test]
    async fn a_silent_proxy_times_out_within_connect_timeout() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Destination::from_socket(l.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let opts = DialOptions {
            connect_timeout: Duration::from_millis(300),
            ..DialOptions::default()
        };
        let proxy = HttpProxy::new("h", server, None, Vec::new(), Dialer::Direct(opts));
        let dest = Destination::from_host("a.test", 443);
        let flow = FlowContext::internal("test", Network::Tcp, dest.clone());
        let r = tokio::time::timeout(Duration::from_secs(5), proxy.connect_tcp(&flow, &dest))
            .await
            .expect("the CONNECT must end by itself");
        assert_eq!(r.err().map(|e| e.kind()), Some(io::ErrorKind::TimedOut));
    }
}
