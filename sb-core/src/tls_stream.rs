//! The client side of TLS for sb's own connections (the HTTP client, the DNS `tls` and
//! `https` servers): [`client_config`] turns an outbound `tls` block into a rustls client
//! configuration (ring provider), and [`TlsStream`] is the session over any of sb's streams,
//! as a stream again. It never gives up a plain socket, so the relay's splice never copies
//! encrypted bytes as if they were the flow's.

use crate::adapter::BoxStream;
use crate::stream::Forward;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sb_config::model::shared::{OutboundTls, TlsVersion};
use std::sync::Arc;

/// Why a `tls` block (of a DNS server, an HTTP client) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `server_name` (or the server address standing for it) is not a DNS name or an IP.
    #[error("tls.server_name {name:?}: {error}")]
    ServerName {
        /// The name.
        name: String,
        /// Why rustls refuses it.
        error: rustls::pki_types::InvalidDnsNameError,
    },
    /// rustls could not set up the client (protocol versions of the crypto provider).
    #[error("{0}")]
    Setup(rustls::Error),
    /// `certificate_path` cannot be read.
    #[error("tls.certificate_path {path}: {error}")]
    CertificateFile {
        /// The file.
        path: String,
        /// The OS error.
        error: std::io::Error,
    },
    /// A PEM block of `certificate`/`certificate_path` does not parse.
    #[error("tls.certificate: {0}")]
    Pem(rustls::pki_types::pem::Error),
    /// A certificate is not usable as a trust anchor.
    #[error("tls.certificate: {0}")]
    Certificate(rustls::Error),
    /// `certificate`/`certificate_path` hold no certificate.
    #[error("tls.certificate: no certificate found")]
    NoCertificate,
    /// A certificate a caller adds to the roots is not usable.
    #[error("bad root certificate: {0}")]
    ExtraRoot(rustls::Error),
    /// `min_version`..`max_version` holds neither TLS 1.2 nor 1.3.
    #[error("tls: no TLS version between min_version and max_version that sb speaks (1.2, 1.3)")]
    NoVersion,
}

/// A rustls client configuration from a `tls` block: `certificate`/`certificate_path` (then
/// only those roots are trusted, as Go does; else the webpki roots), `extra_roots` trusted
/// besides either, `insecure`, `alpn` (else `default_alpn`), `disable_sni`, and
/// `min_version`/`max_version` within what rustls speaks (TLS 1.2 and 1.3).
pub fn client_config(
    t: &OutboundTls,
    extra_roots: &[CertificateDer<'static>],
    default_alpn: &[&str],
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(t)?)
        .map_err(TlsError::Setup)?;
    let mut config = if t.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
            .with_no_client_auth()
    } else {
        let mut store = roots(t)?;
        for cert in extra_roots {
            store.add(cert.clone()).map_err(TlsError::ExtraRoot)?;
        }
        builder.with_root_certificates(store).with_no_client_auth()
    };
    config.alpn_protocols = if t.alpn.is_empty() {
        default_alpn.iter().map(|a| a.as_bytes().to_vec()).collect()
    } else {
        t.alpn.iter().map(|a| a.as_bytes().to_vec()).collect()
    };
    config.enable_sni = !t.disable_sni;
    Ok(config)
}

/// The protocol versions between `min_version` and `max_version`; rustls has only 1.2 and
/// 1.3, so a range with neither is an error rather than a silent change.
fn versions(t: &OutboundTls) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, TlsError> {
    let min = t.min_version.unwrap_or(TlsVersion::V12);
    let max = t.max_version.unwrap_or(TlsVersion::V13);
    let mut out = Vec::new();
    for (v, rustls_v) in [
        (TlsVersion::V12, &rustls::version::TLS12),
        (TlsVersion::V13, &rustls::version::TLS13),
    ] {
        if rank(min) <= rank(v) && rank(v) <= rank(max) {
            out.push(rustls_v);
        }
    }
    if out.is_empty() {
        return Err(TlsError::NoVersion);
    }
    Ok(out)
}

fn rank(v: TlsVersion) -> u8 {
    match v {
        TlsVersion::V10 => 0,
        TlsVersion::V11 => 1,
        TlsVersion::V12 => 2,
        TlsVersion::V13 => 3,
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

/// Runs a client handshake over `stream` with `config`, naming the server `name`.
pub async fn connect(
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    stream: BoxStream,
) -> std::io::Result<TlsStream> {
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, stream)
        .await?;
    Ok(Forward(tls))
}

impl TlsStream {
    /// The protocol the server chose by ALPN.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.0.get_ref().1.alpn_protocol()
    }
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

/// A TLS stream over a boxed stream; not a plain socket, so the relay's splice never sees it.
pub type TlsStream = Forward<tokio_rustls::client::TlsStream<BoxStream>>;
