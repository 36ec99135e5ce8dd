//! TLS for smtpd: a rustls server configuration from `smtpd_tls_cert_file` and
//! `smtpd_tls_key_file` (PEM; the certificate file may carry the chain, and the key may sit in
//! the certificate file when no key file is named), TLS 1.2 and 1.3, and the connection
//! details Postfix logs (`TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)`).
//!
//! Loading fails with a message naming the file and the problem; smtpd then does not offer
//! STARTTLS (and logs why), as Postfix does when its certificate cannot be loaded.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// `files`: contents already read with more privileges (root mode), by path; other files
/// are read here.
pub fn load(
    cert_file: &Path,
    key_file: &Path,
    files: &std::collections::HashMap<std::path::PathBuf, Vec<u8>>,
) -> Result<Arc<ServerConfig>, String> {
    let read = |p: &Path, what: &str| -> Result<Vec<u8>, String> {
        match files.get(p) {
            Some(b) => Ok(b.clone()),
            None => std::fs::read(p)
                .map_err(|e| format!("cannot load {what} file {}: {e}", p.display())),
        }
    };
    let cert_pem = read(cert_file, "certificate")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot load certificate file {}: {e}", cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "cannot load certificate file {}: no certificate found",
            cert_file.display()
        ));
    }
    let key_path = if key_file.as_os_str().is_empty() {
        cert_file
    } else {
        key_file
    };
    let key_pem = read(key_path, "private key")?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| format!("cannot load private key file {}: {e}", key_path.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "certificate {} and key {} do not match or are unusable: {e}",
                cert_file.display(),
                key_path.display()
            )
        })?;
    Ok(Arc::new(config))
}

/// What the log line and the Received header say about a TLS session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Info {
    pub protocol: String,
    pub cipher: String,
    pub bits: u32,
}

impl Info {
    pub fn from_connection(conn: &rustls::ServerConnection) -> Info {
        let protocol = match conn.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        }
        .to_string();
        let (cipher, bits) = conn
            .negotiated_cipher_suite()
            .map(|s| openssl_name(s.suite()))
            .unwrap_or_else(|| ("unknown".to_string(), 0));
        Info {
            protocol,
            cipher,
            bits,
        }
    }

    /// `TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)`
    pub fn summary(&self) -> String {
        format!(
            "{} with cipher {} ({}/{} bits)",
            self.protocol, self.cipher, self.bits, self.bits
        )
    }
}

/// OpenSSL's names for rustls's cipher suites (Postfix logs OpenSSL names), and key bits.
fn openssl_name(suite: rustls::CipherSuite) -> (String, u32) {
    use rustls::CipherSuite as C;
    let (name, bits) = match suite {
        C::TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
        C::TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
        C::TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", 256),
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", 128),
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-RSA-CHACHA20-POLY1305", 256),
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-ECDSA-AES256-GCM-SHA384", 256),
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-ECDSA-AES128-GCM-SHA256", 128),
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-ECDSA-CHACHA20-POLY1305", 256),
        other => return (format!("{other:?}"), 0),
    };
    (name.to_string(), bits)
}
