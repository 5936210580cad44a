//! The one error type of veil-dp.

/// A `Result` whose error is [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// Everything that can go wrong in veil-dp.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A privacy or mechanism parameter that is not a finite number in its
    /// range (never silently clamped).
    #[error("invalid {name}: {value} (expected {expected})")]
    InvalidParameter {
        /// The parameter, as the CLI names it.
        name: &'static str,
        /// The value given.
        value: f64,
        /// The range it must be in.
        expected: &'static str,
    },

    /// No noise multiplier up to the search limit meets the target.
    #[error("no noise multiplier up to {limit} reaches epsilon {target}")]
    CalibrationFailed {
        /// The target epsilon.
        target: f64,
        /// The largest noise multiplier tried.
        limit: f64,
    },

    /// Two vectors that must have the same length do not.
    #[error("length mismatch: expected {expected}, got {got}")]
    LengthMismatch {
        /// The expected length.
        expected: usize,
        /// The length given.
        got: usize,
    },

    /// A sum that would not fit the ring without wrapping.
    #[error("{what}")]
    DoesNotFit {
        /// What does not fit.
        what: &'static str,
    },

    /// A privacy ledger that cannot be trusted: it is never partly used.
    #[error("ledger line {line}: {problem}")]
    Ledger {
        /// The 1-based line number.
        line: usize,
        /// What is wrong.
        problem: String,
    },

    /// A round that would spend more than the budget; nothing was recorded.
    #[error("round would bring epsilon to {would_be} > budget {budget}")]
    BudgetExceeded {
        /// Epsilon after the round.
        would_be: f64,
        /// The budget.
        budget: f64,
    },

    /// The ledger file could not be read or written.
    #[error("ledger i/o: {0}")]
    Io(String),
}

/// Checks that `value` is finite and `lo < value <= hi` (`open_lo`) or
/// `lo <= value <= hi`.
pub(crate) fn check_range(
    name: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
    open_lo: bool,
    expected: &'static str,
) -> Result<f64> {
    let above = if open_lo { value > lo } else { value >= lo };
    if value.is_finite() && above && value <= hi {
        Ok(value)
    } else {
        Err(Error::InvalidParameter {
            name,
            value,
            expected,
        })
    }
}

/// Checks that `value` is finite and strictly positive.
pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<f64> {
    check_range(name, value, 0.0, f64::MAX, true, "a finite number > 0")
}

/// Checks a Poisson sampling rate: finite and in `(0, 1]`.
pub(crate) fn check_sampling_rate(q: f64) -> Result<f64> {
    check_range("sampling-rate", q, 0.0, 1.0, true, "a number in (0, 1]")
}
