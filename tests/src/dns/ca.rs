//! A self-made certificate authority and one server certificate it signed, for the DNS over
//! TLS and DNS over HTTPS test servers: clients (sb, Go sing-box, dig) trust the CA file, the
//! server presents the leaf. Made fresh per test with rcgen, so no key is ever checked in.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};

/// The name in the server certificate (also valid for IP 127.0.0.1).
pub const SERVER_NAME: &str = "dns.sb.test";

/// A CA and a server certificate for [`SERVER_NAME`] and 127.0.0.1, written to files.
pub struct TestCa {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The CA certificate, DER (for a rustls root store).
    pub ca_der: CertificateDer<'static>,
    /// The CA certificate file.
    pub ca_path: PathBuf,
    /// The server certificate file (leaf, PEM).
    pub cert_path: PathBuf,
    /// The server key file (PKCS#8, PEM).
    pub key_path: PathBuf,
    /// The name the server certificate is for.
    pub server_name: String,
}

impl TestCa {
    /// Makes the CA and the server certificate and writes `ca.pem`, `server.pem` and
    /// `server.key` into `dir`.
    pub fn create(dir: &Path) -> TestCa {
        let ca_key = KeyPair::generate().unwrap_or_else(|e| panic!("CA key: {e}"));
        let mut ca_params =
            CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "sb test DNS CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params
            .self_signed(&ca_key)
            .unwrap_or_else(|e| panic!("CA certificate: {e}"));

        let key = KeyPair::generate().unwrap_or_else(|e| panic!("server key: {e}"));
        let mut params = CertificateParams::new(vec![SERVER_NAME.to_string(), "127.0.0.1".into()])
            .unwrap_or_else(|e| panic!("{e}"));
        params
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAME);
        let cert = params
            .signed_by(&key, &ca, &ca_key)
            .unwrap_or_else(|e| panic!("server certificate: {e}"));

        let ca_path = dir.join("ca.pem");
        let cert_path = dir.join("server.pem");
        let key_path = dir.join("server.key");
        for (path, text) in [
            (&ca_path, ca.pem()),
            (&cert_path, cert.pem()),
            (&key_path, key.serialize_pem()),
        ] {
            std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        TestCa {
            ca_pem: ca.pem(),
            ca_der: ca.der().clone(),
            ca_path,
            cert_path,
            key_path,
            server_name: SERVER_NAME.into(),
        }
    }
}
