//! The coordinator's errors: each names the layer that refused.

/// What a [`crate::ServerModel`] returns when it cannot apply an update.
pub type ModelError = Box<dyn std::error::Error + Send + Sync>;

/// Why the coordinator cannot go on (every error is fatal to the run: a
/// round that cannot be released safely is never released).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The round plan is not usable.
    #[error("round plan: {field}: {problem}")]
    Plan {
        /// The plan's field (or rule) at fault.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// The protocol refused (a config no cohort can use, a session that
    /// cannot start).
    #[error(transparent)]
    SecAgg(#[from] veil_secagg::Error),
    /// The privacy layer refused (the ledger, the accountant, the read-back
    /// of the sum).
    #[error("privacy: {0}")]
    Privacy(#[from] veil_dp::Error),
    /// The server optimiser could not apply the mean update.
    #[error("server optimiser: {0}")]
    Model(#[source] ModelError),
}

/// The coordinator's result type.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    pub(crate) fn plan(field: &'static str, problem: impl Into<String>) -> Self {
        Self::Plan {
            field,
            problem: problem.into(),
        }
    }
}
