//! veil-net's errors. Each names what failed and, for files, which file.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What went wrong in the transport or a runtime.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file's content is invalid.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A certificate or key could not be made or used.
    #[error("certificates: {0}")]
    Pki(String),
    /// TLS or QUIC configuration was refused.
    #[error("tls: {0}")]
    Tls(String),
    /// A connection could not be made, kept or admitted.
    #[error("connection: {0}")]
    Connection(#[from] ConnectionError),
    /// A peer broke the framing rules (SPEC.md §12).
    #[error("frame: {0}")]
    Frame(&'static str),
    /// The protocol refused something.
    #[error(transparent)]
    Protocol(#[from] veil_secagg::Error),
    /// The round coordinator refused something (its plan, a round it
    /// could not release).
    #[error(transparent)]
    Round(#[from] veil_round::Error),
    /// The privacy layer refused something.
    #[error(transparent)]
    Privacy(#[from] veil_dp::Error),
    /// The runtime's setup cannot work.
    #[error("config: {0}")]
    Config(#[from] ConfigError),
    /// The site's data does not fit the task (see
    /// [`crate::client::SiteDataError`]).
    #[error("site data: {0}")]
    SiteData(String),
    /// The caller's update source failed.
    #[error("update source: {0}")]
    Source(#[source] crate::client::SourceError),
}

/// Why a connection could not be made, kept or admitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The server's endpoint could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The client's endpoint could not be bound.
    #[error("cannot open an endpoint: {0}")]
    Endpoint(#[source] std::io::Error),
    /// A connection could not be started.
    #[error("cannot connect: {0}")]
    Connect(#[from] quinn::ConnectError),
    /// A connection failed or closed.
    #[error(transparent)]
    Lost(#[from] quinn::ConnectionError),
    /// The stream failed mid-read.
    #[error("stream: {0}")]
    Stream(#[source] std::io::Error),
    /// The peer presented no client certificate.
    #[error("no client certificate")]
    NoCertificate,
    /// The peer's certificate is not in the roster.
    #[error("certificate not in the roster")]
    NotInRoster,
    /// The server refused this client's credentials at the handshake (a
    /// TLS alert), which no retry can fix.
    #[error("the server refused this client at the handshake: {0}")]
    RefusedByServer(#[source] quinn::ConnectionError),
    /// Every attempt to reach the server failed.
    #[error("no connection to {server} after {attempts} attempts")]
    Unreachable {
        /// The server.
        server: SocketAddr,
        /// The attempts made.
        attempts: u32,
    },
    /// The server's accept loop ended.
    #[error("the accept loop ended")]
    AcceptLoopEnded,
}

/// Why a runtime's setup cannot work.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// This client has no certificate.
    #[error("no client certificate")]
    NoCertificate,
    /// This client's certificate is not in the roster.
    #[error("this client's certificate is not in the roster")]
    NotInRoster,
    /// This client's identity key is not the roster's.
    #[error("the identity key is not the roster's for {name:?}")]
    WrongIdentity {
        /// The roster name.
        name: String,
    },
    /// A local deployment has no such client.
    #[error("no client {0}")]
    NoSuchClient(usize),
    /// Fewer clients than a cohort needs.
    #[error("{clients} clients cannot make a cohort of min_clients = {min_clients}")]
    TooFewClients {
        /// The clients given.
        clients: usize,
        /// The plan's `min_clients`.
        min_clients: usize,
    },
    /// Draw after draw gave no round.
    #[error("no usable cohort in {0} draws: check sampling_rate and min_clients")]
    NoCohort(u64),
    /// A roster entry cannot be added (the reason names the client).
    #[error("roster: {0}")]
    Roster(String),
    /// An in-memory run had nothing to do and no deadline to wait for.
    #[error("the in-memory run stalled")]
    Stalled,
}

/// veil-net's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn bad_file(path: &std::path::Path, reason: impl Into<String>) -> Error {
    Error::BadFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}
