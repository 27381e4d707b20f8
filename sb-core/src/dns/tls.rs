//! The client side of TLS for the `tls` and `https` DNS servers, from the server's `tls`
//! block: `server_name` (the server address when empty), `certificate`/`certificate_path`
//! (then only those roots are trusted, as Go does), `insecure`, `alpn`, `disable_sni`.
//! rustls with the ring provider, as the rest of sb.

use super::TlsError;
use crate::adapter::BoxStream;
use crate::stream::Forward;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
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
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Setup)?;
        let mut config = if t.insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(roots(t)?)
                .with_no_client_auth()
        };
        config.alpn_protocols = if t.alpn.is_empty() {
            alpn.iter().map(|a| a.as_bytes().to_vec()).collect()
        } else {
            t.alpn.iter().map(|a| a.as_bytes().to_vec()).collect()
        };
        config.enable_sni = !t.disable_sni;
        Ok(TlsClient {
            config: Arc::new(config),
            name,
        })
    }

    /// Runs the handshake over `stream`.
    pub async fn wrap(&self, stream: BoxStream) -> std::io::Result<BoxStream> {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let tls = connector.connect(self.name.clone(), stream).await?;
        Ok(Forward::boxed(tls))
    }

    /// Runs the handshake and says whether the server chose HTTP/2 by ALPN.
    pub async fn wrap_alpn(&self, stream: BoxStream) -> std::io::Result<(BoxStream, bool)> {
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let tls = connector.connect(self.name.clone(), stream).await?;
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        Ok((Forward::boxed(tls), h2))
    }
}

/// The trusted roots: the block's own certificates when it has any, else the webpki roots.
fn roots(t: &OutboundTls) -> Result<rustls::RootCertStore, TlsError> {
    let mut pem = t.certificate.iter().cloned().collect::<Vec<_>>().join("\n");
    if !t.certificate_path.is_empty() {
        let text = std::fs::read_to_string(&t.certificate_path).map_err(|error| {
            TlsError::CertificateFile {
                path: t.certificate_path.clone(),
                error,
            }
        })?;
        pem.push('\n');
        pem.push_str(&text);
    }
    let mut store = rustls::RootCertStore::empty();
    if pem.trim().is_empty() {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return Ok(store);
    }
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(TlsError::Pem)?;
        store.add(cert).map_err(TlsError::Certificate)?;
    }
    if store.is_empty() {
        return Err(TlsError::NoCertificate);
    }
    Ok(store)
}

/// `insecure`: any certificate is accepted (signatures are still checked, so the session
/// keys are the peer's).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
