//! The one error type of veil-crypto.

/// A `Result` whose error is [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// Everything that can go wrong in a primitive.
///
/// Errors carry public values only (counts, indices, sizes), never secret
/// material. A failed AEAD open is one opaque variant that does not say which
/// check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An X25519 agreement produced the all-zero shared secret: the peer's
    /// public key has small order, and the result carries no secret.
    #[error("x25519 agreement is non-contributory (peer key of small order)")]
    NonContributory,

    /// The ring width `b` is outside `1..=64`.
    #[error("ring width of {bits} bits is outside 1..=64")]
    RingBitsOutOfRange {
        /// The requested width.
        bits: u32,
    },

    /// The ring width does not fit the caller's element type (a `u32` buffer
    /// holds at most 32-bit ring elements).
    #[error("ring width of {bits} bits does not fit a {word_bits}-bit element")]
    RingBitsTooWide {
        /// The requested width.
        bits: u32,
        /// The width of the element type.
        word_bits: u32,
    },

    /// A mask longer than one PRG stream may produce was requested.
    #[error("mask of {len} elements exceeds the maximum of {max}")]
    MaskTooLong {
        /// The requested number of elements.
        len: usize,
        /// The largest number of elements one seed may expand to.
        max: usize,
    },

    /// Two buffers that must have the same length do not.
    #[error("length mismatch: expected {expected}, got {got}")]
    LengthMismatch {
        /// The expected length.
        expected: usize,
        /// The length given.
        got: usize,
    },

    /// A Shamir threshold outside `1..=n`.
    #[error("threshold {threshold} is outside 1..={shares}")]
    InvalidThreshold {
        /// The requested threshold `t`.
        threshold: usize,
        /// The number of shares `n`.
        shares: usize,
    },

    /// More shares than the protocol allows in one sharing.
    #[error("{shares} shares exceed the maximum of {max}")]
    TooManyShares {
        /// The number of shares asked for or given.
        shares: usize,
        /// [`crate::shamir::MAX_SHARES`].
        max: usize,
    },

    /// A Shamir x-coordinate of zero: a share there would be the secret itself.
    #[error("share index 0 is not allowed")]
    ZeroShareIndex,

    /// A participant id with no Shamir x-coordinate (`id + 1` overflows).
    #[error("participant id {id} is out of range")]
    ParticipantIdOutOfRange {
        /// The participant id.
        id: u32,
    },

    /// The same x-coordinate appears twice among shares or share holders.
    #[error("duplicate share index {index}")]
    DuplicateShareIndex {
        /// The repeated x-coordinate.
        index: u32,
    },

    /// Fewer shares than the threshold.
    #[error("{got} shares given, at least {threshold} needed")]
    TooFewShares {
        /// The number of shares given.
        got: usize,
        /// The threshold `t`.
        threshold: usize,
    },

    /// The shares given do not all lie on one polynomial of degree below the
    /// threshold: at least one of them is wrong. No secret is returned.
    #[error("shares are inconsistent: they do not lie on one polynomial of degree < {threshold}")]
    InconsistentShares {
        /// The threshold `t`.
        threshold: usize,
    },

    /// The shares given to a reconstructor are not for the share indices it
    /// was built for, in the same order.
    #[error("share at position {position} has index {got}, the reconstructor expects {expected}")]
    ShareIndexMismatch {
        /// The position in the list of shares.
        position: usize,
        /// The x-coordinate the reconstructor was built with at that position.
        expected: u32,
        /// The x-coordinate of the share given.
        got: u32,
    },

    /// A byte string of the wrong length for the value it encodes.
    #[error("{what}: expected {expected} bytes, got {got}")]
    InvalidLength {
        /// The value being decoded.
        what: &'static str,
        /// The exact length of its encoding.
        expected: usize,
        /// The length given.
        got: usize,
    },

    /// A scalar encoding that is not the canonical one (not below the group
    /// order `ℓ`).
    #[error("{what}: scalar is not canonically encoded")]
    NonCanonicalScalar {
        /// The value being decoded.
        what: &'static str,
    },

    /// An Ed25519 public key that does not decode to a curve point.
    #[error("invalid ed25519 public key")]
    InvalidVerifyingKey,

    /// A signature that does not verify under the key and domain given.
    #[error("signature verification failed")]
    BadSignature,

    /// An envelope that does not open: wrong key, wrong context, or altered
    /// bytes. Which check failed is deliberately not said.
    #[error("envelope does not open")]
    OpenFailed,

    /// An envelope plaintext larger than the protocol allows.
    #[error("envelope plaintext of {len} bytes exceeds the maximum of {max}")]
    EnvelopeTooLarge {
        /// The plaintext length.
        len: usize,
        /// [`crate::envelope::MAX_PLAINTEXT_LEN`].
        max: usize,
    },
}
