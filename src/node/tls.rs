//! `--tls-fingerprint sha256:…`: trust exactly the gateway certificate with this SHA-256 (a
//! self-signed one behind a reverse proxy of your own), instead of the public roots. The
//! handshake signatures are still checked; only the chain of trust is replaced by the pin.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// Reads `sha256:AB:CD:…`, `AB:CD:…` or plain hex into the 32 bytes.
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let hex: String = text
        .trim()
        .trim_start_matches("sha256:")
        .trim_start_matches("SHA256:")
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "--tls-fingerprint {text}: not a SHA-256 fingerprint (64 hex digits, colons allowed); get it with `openssl x509 -noout -fingerprint -sha256 -in cert.pem`"
        ));
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("checked hex");
    }
    Ok(out)
}

#[derive(Debug)]
struct Pinned {
    sha256: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if Sha256::digest(end_entity.as_ref()).as_slice() == self.sha256 {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the gateway's certificate is not the one --tls-fingerprint names".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A TLS client that trusts only the pinned certificate.
pub fn pinned_config(sha256: [u8; 32]) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { sha256, provider }))
        .with_no_client_auth();
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn fixture_der() -> Vec<u8> {
        let pem = include_str!("../../tests/fixtures/site-tls.crt");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap()
    }

    #[test]
    fn fingerprints_read_in_the_forms_tools_print() {
        let der = fixture_der();
        let sum = Sha256::digest(&der);
        let plain = crate::util::hex(&sum);
        let colons: Vec<String> = sum.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(
            parse_fingerprint(&plain).unwrap().as_slice(),
            sum.as_slice()
        );
        assert_eq!(
            parse_fingerprint(&format!("sha256:{}", colons.join(":")))
                .unwrap()
                .as_slice(),
            sum.as_slice()
        );
        assert!(
            parse_fingerprint("sha256:abcd")
                .unwrap_err()
                .contains("64 hex digits")
        );
    }

    #[test]
    fn only_the_pinned_certificate_is_trusted() {
        let der = fixture_der();
        let sum: [u8; 32] = Sha256::digest(&der).into();
        let pinned = Pinned {
            sha256: sum,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
        };
        let name = ServerName::try_from("gateway.example.com").unwrap();
        let cert = CertificateDer::from(der.clone());
        assert!(
            pinned
                .verify_server_cert(&cert, &[], &name, &[], UnixTime::now())
                .is_ok()
        );
        let mut other = der;
        let last = other.len() - 1;
        other[last] ^= 1;
        let err = pinned
            .verify_server_cert(
                &CertificateDer::from(other),
                &[],
                &name,
                &[],
                UnixTime::now(),
            )
            .unwrap_err();
        assert!(err.to_string().contains("--tls-fingerprint"), "{err}");
        assert!(!pinned.supported_verify_schemes().is_empty());
    }
}
