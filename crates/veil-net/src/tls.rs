//! TLS 1.3 and QUIC configuration: mutual TLS against the deployment's CA,
//! admission by the roster at the handshake, ALPN `veil/1`, and the
//! transport limits (SPEC.md §12.1).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};

use crate::error::{Error, Result};
use crate::pki::fingerprint;

/// The ALPN protocol id: the protocol and its version.
pub const ALPN: &[u8] = b"veil/1";

/// QUIC application close codes (SPEC.md §12.1).
pub mod close {
    /// The server finished its rounds; the client should exit.
    pub const DONE: u32 = 0;
    /// The peer broke the framing or protocol rules.
    pub const VIOLATION: u32 = 1;
    /// A newer connection of the same client replaced this one.
    pub const REPLACED: u32 = 2;
    /// The server is shutting down.
    pub const SHUTDOWN: u32 = 3;
    /// The client leaves (its own round limit, or shutdown).
    pub const LEAVING: u32 = 4;
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls(e: impl core::fmt::Display) -> Error {
    Error::Tls(e.to_string())
}

fn roots(ca: &[CertificateDer<'static>]) -> Result<Arc<RootCertStore>> {
    let mut store = RootCertStore::empty();
    for cert in ca {
        store.add(cert.clone()).map_err(tls)?;
    }
    if store.is_empty() {
        return Err(Error::Tls("no CA certificate".into()));
    }
    Ok(Arc::new(store))
}

/// Admits a client certificate that chains to the CA (checked by the
/// wrapped WebPKI verifier) and whose fingerprint is in the roster. A
/// client outside the roster fails the handshake itself.
#[derive(Debug)]
struct RosterVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    admitted: BTreeSet<[u8; 32]>,
}

impl ClientCertVerifier for RosterVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> core::result::Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if self.admitted.contains(&fingerprint(end_entity)) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> core::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> core::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// QUIC limits both ends apply.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection silent this long is closed.
    pub idle_timeout: Duration,
    /// The most connections the server holds or accepts at once
    /// (established and in handshake).
    pub max_connections: usize,
}

fn transport(limits: &Limits, client: bool) -> Result<Arc<quinn::TransportConfig>> {
    let mut t = quinn::TransportConfig::default();
    // One bidirectional stream, opened by the client; nothing else.
    t.max_concurrent_bidi_streams(if client { 0_u8 } else { 1_u8 }.into());
    t.max_concurrent_uni_streams(0_u8.into());
    t.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(limits.idle_timeout).map_err(tls)?,
    ));
    if client {
        // The client keeps the connection alive while it trains.
        t.keep_alive_interval(Some(limits.idle_timeout / 3));
    }
    Ok(Arc::new(t))
}

/// The server's QUIC configuration: its certificate chain and key, client
/// certificates required, chained to `ca` and listed in `admitted`.
///
/// # Errors
/// [`Error::Tls`] if rustls refuses the certificates or key.
pub fn server_config(
    ca: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    admitted: BTreeSet<[u8; 32]>,
    limits: &Limits,
) -> Result<quinn::ServerConfig> {
    let inner = WebPkiClientVerifier::builder_with_provider(roots(ca)?, provider())
        .build()
        .map_err(tls)?;
    let verifier = Arc::new(RosterVerifier { inner, admitted });
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(tls)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicServerConfig::try_from(config).map_err(tls)?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    server.transport_config(transport(limits, false)?);
    server.max_incoming(limits.max_connections);
    Ok(server)
}

/// The client's QUIC configuration: the deployment CA as the only root,
/// and its own certificate chain and key.
///
/// # Errors
/// [`Error::Tls`] if rustls refuses the certificates or key.
pub fn client_config(
    ca: &[CertificateDer<'static>],
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    limits: &Limits,
) -> Result<quinn::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls)?
        .with_root_certificates(roots(ca)?)
        .with_client_auth_cert(chain, key)
        .map_err(tls)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = QuicClientConfig::try_from(config).map_err(tls)?;
    let mut client = quinn::ClientConfig::new(Arc::new(crypto));
    client.transport_config(transport(limits, true)?);
    Ok(client)
}

/// The fingerprint of the certificate a connection's peer presented.
#[must_use]
pub fn peer_fingerprint(conn: &quinn::Connection) -> Option<[u8; 32]> {
    let identity = conn.peer_identity()?;
    let certs = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    certs.first().map(fingerprint)
}
