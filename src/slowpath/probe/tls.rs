//! TLS client for HTTPS probes: rustls with the `ring` provider and no certificate checks.
//!
//! Azure's HTTPS probe does not validate the backend's certificate (self-signed and expired
//! certificates are normal on backends), so neither does this one: any certificate chain and
//! any name is accepted. The handshake signature is still checked against the presented key,
//! so a peer that does not hold the key of its certificate fails the handshake.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;

/// Accepts any server certificate; verifies only handshake signatures.
#[derive(Debug)]
struct AcceptAnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AcceptAnyCertificate {
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

/// The client configuration shared by every HTTPS probe of one prober.
pub(crate) fn probe_client_config() -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AcceptAnyCertificate {
        provider: provider.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_builds_and_offers_schemes() {
        let cfg = probe_client_config().expect("client config");
        assert!(cfg.alpn_protocols.is_empty());
        let provider = rustls::crypto::ring::default_provider();
        let v = AcceptAnyCertificate {
            provider: Arc::new(provider),
        };
        assert!(!v.supported_verify_schemes().is_empty());
        let any = CertificateDer::from(vec![0u8; 4]);
        let name = ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
        assert!(v
            .verify_server_cert(&any, &[], &name, &[], UnixTime::now())
            .is_ok());
    }
}
