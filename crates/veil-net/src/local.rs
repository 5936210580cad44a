//! A whole deployment in memory, for one-machine runs (`veil simulate`,
//! benchmarks): a development CA, a server certificate for `localhost`, and
//! clients with certificates, identity keys and a roster. Nothing touches
//! the disk; the certificates are real and the TLS is the production path.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use veil_crypto::sign::IdentitySigningKey;

use crate::client::{Backoff, ClientOptions, UpdateSource};
use crate::deployment::RosterFile;
use crate::error::{ConfigError, Error, Result};
use crate::pki::{DevCa, Issued, fingerprint};
use crate::server::{MemoryClient, RoundPlan, ServerModel, ServerOptions};
use crate::tls::Limits;

/// One client of a [`LocalDeployment`].
pub struct LocalClient {
    /// Its roster name.
    pub name: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    identity: IdentitySigningKey,
}

impl core::fmt::Debug for LocalClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalClient")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A CA, a server and clients, in memory.
pub struct LocalDeployment {
    ca: CertificateDer<'static>,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    /// The clients, in roster order (client `i` has participant id `i`).
    pub clients: Vec<LocalClient>,
    /// The roster.
    pub roster: RosterFile,
}

impl core::fmt::Debug for LocalDeployment {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LocalDeployment")
            .field("clients", &self.clients.len())
            .finish_non_exhaustive()
    }
}

fn parse(issued: &Issued) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let cert = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes())
        .map_err(|e| Error::Pki(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
        .map_err(|e| Error::Pki(e.to_string()))?;
    Ok((cert, key))
}

impl LocalDeployment {
    /// A deployment whose clients are `client-0`, `client-1`, …
    ///
    /// # Errors
    /// [`Error::Pki`] if a certificate cannot be made.
    pub fn generate(clients: usize) -> Result<Self> {
        let (ca, ca_files) = DevCa::generate()?;
        let (ca_cert, _) = parse(&ca_files)?;
        let server = parse(&ca.issue_server("localhost")?)?;
        let mut roster = RosterFile::new();
        let mut out = Vec::with_capacity(clients);
        for i in 0..clients {
            let name = format!("client-{i}");
            let (cert, key) = parse(&ca.issue_client(&name)?)?;
            let identity = IdentitySigningKey::generate(&mut rand::rng());
            roster.add(&name, &identity.verifying_key(), &fingerprint(&cert))?;
            out.push(LocalClient {
                name,
                cert,
                key,
                identity,
            });
        }
        Ok(Self {
            ca: ca_cert,
            server,
            clients: out,
            roster,
        })
    }

    /// Server options on 127.0.0.1 (port 0: see [`crate::server::bind`]).
    #[must_use]
    pub fn server_options(
        &self,
        state_dir: PathBuf,
        plan: RoundPlan,
        model: Box<dyn ServerModel>,
        initial_model: Option<Vec<f32>>,
    ) -> ServerOptions {
        let limits = Limits {
            idle_timeout: Duration::from_secs(60),
            max_connections: self.clients.len().saturating_add(16),
        };
        ServerOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ca: vec![self.ca.clone()],
            cert_chain: vec![self.server.0.clone()],
            key: self.server.1.clone_key(),
            roster: self.roster.clone(),
            state_dir,
            plan,
            limits,
            handshake_timeout: Duration::from_secs(30),
            unmask_threads: crate::server::all_cores(),
            model,
            initial_model,
        }
    }

    /// Client `i` for an in-memory run ([`crate::server::run_in_memory`]).
    ///
    /// # Errors
    /// [`Error::Config`] if there is no client `i`.
    pub fn memory_client(&self, i: usize, source: Box<dyn UpdateSource>) -> Result<MemoryClient> {
        let c = self.clients.get(i).ok_or(ConfigError::NoSuchClient(i))?;
        let id = u32::try_from(i).map_err(|_| ConfigError::NoSuchClient(i))?;
        Ok(MemoryClient {
            id,
            identity: c.identity.clone(),
            source,
        })
    }

    /// Options for client `i` of a server at `server`.
    ///
    /// # Errors
    /// [`Error::Config`] if there is no client `i`.
    pub fn client_options(
        &self,
        i: usize,
        server: SocketAddr,
        max_dimension: u32,
    ) -> Result<ClientOptions> {
        let c = self.clients.get(i).ok_or(ConfigError::NoSuchClient(i))?;
        Ok(ClientOptions {
            server,
            server_name: "localhost".into(),
            ca: vec![self.ca.clone()],
            cert_chain: vec![c.cert.clone()],
            key: c.key.clone_key(),
            identity: c.identity.clone(),
            roster: self.roster.clone(),
            limits: Limits {
                idle_timeout: Duration::from_secs(60),
                max_connections: 1,
            },
            max_dimension,
            backoff: Backoff {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(10),
                max_attempts: Some(50),
            },
            max_rounds: None,
            fault: None,
            floor: veil_secagg::SiteFloor::default(),
            min_noise_multiplier: 0.0,
            state_dir: None,
            site_budget: None,
        })
    }
}
