//! veil-net's errors. Each names what failed and, for files, which file.

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
    /// A connection failed or closed.
    #[error("connection: {0}")]
    Connection(String),
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
    /// A setting is out of range.
    #[error("config: {0}")]
    Config(String),
    /// The caller's update source failed.
    #[error("update source: {0}")]
    Source(#[source] crate::client::SourceError),
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
