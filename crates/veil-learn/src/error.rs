//! veil-learn's errors: a bad data file names the file, the row and the
//! column; a model or training error says which tensor or setting.

use std::path::PathBuf;

/// What went wrong.
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
    /// A CSV file is malformed. Rows count from 1 at the header line.
    #[error("{path}: line {line}{}: {reason}", column.as_ref().map(|c| format!(", column {c:?}")).unwrap_or_default())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The line (1 = header).
        line: usize,
        /// The column's name, where one is at fault.
        column: Option<String>,
        /// What is wrong.
        reason: String,
    },
    /// A setting or argument is out of range.
    #[error("{0}")]
    Config(String),
    /// A vector or tensor has the wrong size.
    #[error("shape: {0}")]
    Shape(String),
    /// candle refused an operation.
    #[error("candle: {0}")]
    Candle(#[from] candle_core::Error),
    /// A checkpoint could not be written or read.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// veil-learn's result type.
pub type Result<T, E = Error> = core::result::Result<T, E>;
