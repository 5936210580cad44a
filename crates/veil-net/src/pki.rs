//! Certificates: a development CA and the certificates it issues (rcgen),
//! PEM loading for operators' own files, and certificate fingerprints.
//!
//! The development CA is a convenience for trying veil out and for tests.
//! Production operators bring their own CA, server and client certificates
//! as PEM files; everything here that reads certificates accepts them.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

use crate::error::{Error, Result, bad_file};
use crate::files;

/// The common name of every development CA.
pub const DEV_CA_NAME: &str = "veil development CA";

/// How long development certificates are valid.
const VALIDITY: Duration = Duration::days(397);

/// A largest PEM file read: a certificate chain is a few KiB.
const MAX_PEM_FILE: u64 = 1 << 20;

/// A PEM certificate and its private key.
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM. Write it with owner-only permissions.
    pub key_pem: zeroize::Zeroizing<String>,
}

impl core::fmt::Debug for Issued {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Issued").finish_non_exhaustive()
    }
}

/// What a client makes on its own machine (`veil certs keygen`): its TLS key
/// and a certificate signing request for its name. The key never leaves the
/// client; the request holds only the public key, signed by the key.
pub struct ClientRequest {
    /// The PKCS#10 certificate signing request, PEM.
    pub csr_pem: String,
    /// The private key, PKCS#8 PEM. Write it with owner-only permissions.
    pub key_pem: zeroize::Zeroizing<String>,
}

impl core::fmt::Debug for ClientRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientRequest").finish_non_exhaustive()
    }
}

/// A fresh ECDSA P-256 key and a certificate signing request for client
/// `name`.
///
/// # Errors
/// [`Error::Pki`] for a name that is not DNS-name-shaped, or if key
/// generation or signing fails.
pub fn client_request(name: &str) -> Result<ClientRequest> {
    let key = KeyPair::generate().map_err(pki)?;
    let mut params = CertificateParams::new(vec![name.to_owned()]).map_err(pki)?;
    params.distinguished_name.push(DnType::CommonName, name);
    let csr = params.serialize_request(&key).map_err(pki)?;
    Ok(ClientRequest {
        csr_pem: csr.pem().map_err(pki)?,
        key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
    })
}

/// A development CA that can issue server and client certificates.
pub struct DevCa {
    issuer: Issuer<'static, KeyPair>,
}

impl core::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

fn ca_params() -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::new()).map_err(pki)?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(DnType::CommonName, DEV_CA_NAME);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

fn pki(e: impl core::fmt::Display) -> Error {
    Error::Pki(e.to_string())
}

fn validity(params: &mut CertificateParams) {
    let now = OffsetDateTime::now_utc();
    params.not_before = now.saturating_sub(Duration::hours(1));
    params.not_after = now.saturating_add(VALIDITY);
}

/// The parameters of a certificate the CA issues to `name`.
fn leaf_params(name: &str, usage: ExtendedKeyUsagePurpose) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(vec![name.to_owned()]).map_err(pki)?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    validity(&mut params);
    Ok(params)
}

impl DevCa {
    /// A new CA with a fresh ECDSA P-256 key; returns it with its
    /// certificate and key.
    ///
    /// # Errors
    /// [`Error::Pki`] if key generation or signing fails.
    pub fn generate() -> Result<(Self, Issued)> {
        let key = KeyPair::generate().map_err(pki)?;
        let mut params = ca_params()?;
        validity(&mut params);
        let cert = params.self_signed(&key).map_err(pki)?;
        let issued = Issued {
            cert_pem: cert.pem(),
            key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
        };
        Ok((
            Self {
                issuer: Issuer::new(params, key),
            },
            issued,
        ))
    }

    /// The CA whose key is the PEM file `key_path` (made by
    /// [`DevCa::generate`]).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::BadFile`] naming the file.
    pub fn load(key_path: &Path) -> Result<Self> {
        let pem = files::read_capped_string(key_path, MAX_PEM_FILE)?;
        let key = KeyPair::from_pem(&pem).map_err(|e| bad_file(key_path, e.to_string()))?;
        Ok(Self {
            issuer: Issuer::new(ca_params()?, key),
        })
    }

    /// A server certificate for `host` (a DNS name or an IP address).
    ///
    /// # Errors
    /// [`Error::Pki`] for a name that is not a DNS name or IP address.
    pub fn issue_server(&self, host: &str) -> Result<Issued> {
        self.issue(host, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate for `name` (a DNS-name-shaped label, such as
    /// `hospital-3`).
    ///
    /// # Errors
    /// [`Error::Pki`] for a name that is not DNS-name-shaped.
    pub fn issue_client(&self, name: &str) -> Result<Issued> {
        self.issue(name, ExtendedKeyUsagePurpose::ClientAuth)
    }

    /// Signs client `name`'s certificate signing request (PEM), made by
    /// [`client_request`] on the client's machine: the CA never sees the
    /// client's private key. The request's signature is verified and it must
    /// name `name`; of the request only the public key is used, while the
    /// name, usages and validity are the CA's own (a request cannot ask to
    /// be a CA).
    ///
    /// # Errors
    /// [`Error::Pki`] for a request that does not parse, whose signature
    /// does not verify, or that names another client.
    pub fn sign_client_request(&self, name: &str, csr_pem: &str) -> Result<String> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| Error::Pki(format!("not a valid certificate signing request: {e}")))?;
        let names_it = csr
            .params
            .subject_alt_names
            .iter()
            .any(|san| matches!(san, SanType::DnsName(n) if n.as_str() == name));
        if !names_it {
            return Err(Error::Pki(format!(
                "the certificate signing request is not for client {name:?}"
            )));
        }
        let params = leaf_params(name, ExtendedKeyUsagePurpose::ClientAuth)?;
        let cert = params
            .signed_by(&csr.public_key, &self.issuer)
            .map_err(pki)?;
        Ok(cert.pem())
    }

    fn issue(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> Result<Issued> {
        let params = leaf_params(name, usage)?;
        let key = KeyPair::generate().map_err(pki)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(pki)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: zeroize::Zeroizing::new(key.serialize_pem()),
        })
    }
}

/// Reads every certificate of a PEM file.
///
/// # Errors
/// [`Error::Io`] or [`Error::BadFile`] naming the file; a file without a
/// certificate is an error.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let pem = files::read_capped(path, MAX_PEM_FILE)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<core::result::Result<Vec<_>, _>>()
        .map_err(|e| bad_file(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(bad_file(path, "holds no certificate"));
    }
    Ok(certs)
}

/// Reads a private key (PKCS#8, PKCS#1 or SEC1) from a PEM file.
///
/// # Errors
/// [`Error::Io`] or [`Error::BadFile`] naming the file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let pem = zeroize::Zeroizing::new(files::read_capped(path, MAX_PEM_FILE)?);
    PrivateKeyDer::from_pem_slice(&pem).map_err(|_| bad_file(path, "holds no PEM private key"))
}

/// The SHA-256 of a certificate's DER encoding: how the roster names a
/// client's certificate.
#[must_use]
pub fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    Sha256::digest(cert.as_ref()).into()
}

/// The fingerprint of the first certificate in a PEM file.
///
/// # Errors
/// As [`load_certs`].
pub fn fingerprint_file(path: &Path) -> Result<[u8; 32]> {
    let certs = load_certs(path)?;
    certs
        .first()
        .map(fingerprint)
        .ok_or_else(|| bad_file(path, "holds no certificate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn a_request_made_by_the_client_is_signed_for_its_public_key_only() {
        let (ca, ca_issued) = DevCa::generate().unwrap();
        let request = client_request("hospital-2").unwrap();
        assert!(!request.csr_pem.contains("PRIVATE KEY"));
        let cert_pem = ca
            .sign_client_request("hospital-2", &request.csr_pem)
            .unwrap();
        // The certificate is for the client's own key, chains to the CA,
        // and names the client.
        let key = KeyPair::from_pem(&request.key_pem).unwrap();
        let cert = der(&cert_pem);
        let parsed = CertificateSigningRequestParams::from_pem(&request.csr_pem).unwrap();
        assert_eq!(
            rcgen::PublicKeyData::der_bytes(&parsed.public_key),
            rcgen::PublicKeyData::der_bytes(&key)
        );
        let roots = {
            let mut r = rustls::RootCertStore::empty();
            r.add(der(&ca_issued.cert_pem)).unwrap();
            std::sync::Arc::new(r)
        };
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots,
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        verifier
            .verify_client_cert(&cert, &[], rustls_pki_types::UnixTime::now())
            .unwrap();
        assert!(cert_pem.contains("BEGIN CERTIFICATE"));
    }

    #[test]
    fn a_request_for_another_name_or_tampered_is_refused() {
        let (ca, _) = DevCa::generate().unwrap();
        let request = client_request("hospital-2").unwrap();
        let e = ca
            .sign_client_request("hospital-3", &request.csr_pem)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not for client"), "{e}");
        // Change one character in the middle of the request's body: the
        // request no longer verifies (or no longer parses).
        let mut lines: Vec<String> = request.csr_pem.lines().map(str::to_owned).collect();
        let mid = lines.len() / 2;
        let line = &mut lines[mid];
        let c = line.remove(10);
        line.insert(10, if c == 'A' { 'B' } else { 'A' });
        let tampered = lines.join("\n");
        assert!(ca.sign_client_request("hospital-2", &tampered).is_err());
        assert!(ca.sign_client_request("hospital-2", "not pem").is_err());
    }
}
