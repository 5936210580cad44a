//! The one error type of veil-secagg.
//!
//! Blame is split four ways: bytes that do not decode ([`Error::Decode`]),
//! well-formed input that the protocol forbids ([`Error::Forbidden`],
//! [`Error::UnexpectedMessage`]), a round that cannot complete
//! ([`Error::TooFewSurvivors`], [`Error::Inconsistent`]), and misuse by the
//! local caller ([`Error::InvalidConfig`], [`Error::InvalidInput`]). Errors
//! carry ids, counts and phases, never secret material.

use veil_crypto::{ParticipantId, RoundId};

use crate::phase::Phase;
use crate::tags::{DeclineReason, FloorRefusal, MessageType};

/// A `Result` whose error is [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

/// What is wrong with bytes that do not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ends before the field does.
    Truncated,
    /// Bytes remain after the message.
    TrailingBytes,
    /// A length or count above its cap.
    TooLong {
        /// The length or count claimed.
        len: u64,
        /// The cap.
        max: u64,
    },
    /// A length or count other than the one the round config fixes.
    WrongLength {
        /// The length or count the config fixes.
        expected: u64,
        /// The length or count claimed.
        got: u64,
    },
    /// A protocol version this implementation does not speak.
    UnknownVersion(u8),
    /// A message type tag that is not defined, or not valid in this direction.
    UnknownTag(u8),
    /// A value outside its defined range (a non-canonical encoding).
    OutOfRange,
    /// A list that is not in strictly increasing order (unsorted or with a
    /// duplicate), so not canonical.
    NotCanonical,
    /// Padding bits that are not zero.
    NonZeroPadding,
    /// A primitive's decoding failed.
    Crypto(veil_crypto::Error),
}

/// A protocol rule that a well-formed message broke.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// The message is for another round.
    WrongRound {
        /// This round.
        expected: RoundId,
        /// The round the message names.
        got: RoundId,
    },
    /// A participant id that is not in the round.
    UnknownParticipant(ParticipantId),
    /// A participant named where only the receiver's neighbours may appear.
    NotANeighbour(ParticipantId),
    /// A participant's advertised keys are not signed by its identity key.
    BadKeySignature(ParticipantId),
    /// Two neighbours advertised the same public key, or a participant used
    /// one key for both purposes.
    ReusedPublicKey(ParticipantId),
    /// A signature over the survivor set that does not verify.
    BadConsistencySignature(ParticipantId),
    /// A survivor set that names a neighbour this client excluded or never
    /// received shares from.
    SurvivorNotInView(ParticipantId),
    /// A second unmask request after shares were revealed: answering it could
    /// reveal both secrets of one peer.
    SecondUnmaskRequest,
    /// An unmask share of the wrong kind for the peer (a self-mask share for
    /// a dropped peer, or a key share for a survivor), or from a participant
    /// that holds no share of that peer.
    WrongShareKind(ParticipantId),
    /// An unmask share whose x-coordinate is not its sender's.
    WrongShareIndex(ParticipantId),
    /// A dealer's share commitments do not cover exactly itself and the
    /// receivers of its envelopes.
    BadCommitments(ParticipantId),
    /// A revealed share does not match its dealer's commitment: the holder
    /// (or someone on the way) altered it.
    ShareCommitmentMismatch(ParticipantId),
    /// A client's list of excluded peers names a peer it did not receive a
    /// share from.
    BadExclusion(ParticipantId),
    /// A message from a participant the server is not waiting for in this
    /// phase (never admitted, dropped, or already answered).
    NotExpected(ParticipantId),
    /// The server told this client the round aborted.
    ServerAborted(u8),
}

/// Everything that can go wrong in a round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes that do not decode as the message they claim to be.
    #[error("cannot decode {message}.{field}: {kind:?}")]
    Decode {
        /// The message being decoded.
        message: &'static str,
        /// The field that failed.
        field: &'static str,
        /// What is wrong.
        kind: DecodeErrorKind,
    },

    /// A well-formed message that the protocol forbids.
    #[error("round {round}: participant {participant:?} broke a rule: {violation:?}")]
    Forbidden {
        /// The round.
        round: RoundId,
        /// The participant to blame; `None` when the server is to blame.
        participant: Option<ParticipantId>,
        /// The rule.
        violation: Violation,
    },

    /// A message that is wrong for the phase.
    #[error(
        "round {round}: expected {expected:?} in phase {phase:?}, received {received:?} from {participant:?}"
    )]
    UnexpectedMessage {
        /// The round.
        round: RoundId,
        /// The sender, `None` for the server.
        participant: Option<ParticipantId>,
        /// The phase the session is in.
        phase: Phase,
        /// What the phase accepts.
        expected: MessageType,
        /// What arrived.
        received: MessageType,
    },

    /// Fewer participants remain than the round needs.
    #[error("round {round}: {survivors} survivors in phase {phase:?}, at least {needed} needed")]
    TooFewSurvivors {
        /// The round.
        round: RoundId,
        /// The phase in which the count fell short.
        phase: Phase,
        /// How many remain.
        survivors: usize,
        /// How many are needed.
        needed: usize,
    },

    /// Unmask shares that disagree, so no secret (and no sum) is released.
    #[error("round {round}: the shares of participant {participant}'s secret are inconsistent")]
    Inconsistent {
        /// The round.
        round: RoundId,
        /// Whose secret could not be reconstructed.
        participant: ParticipantId,
    },

    /// A phase deadline passed before the session could continue.
    #[error("round {round}: deadline of phase {phase:?} passed")]
    Timeout {
        /// The round.
        round: RoundId,
        /// The phase.
        phase: Phase,
    },

    /// The operator aborted the round.
    #[error("round {round}: aborted by the operator")]
    OperatorAbort {
        /// The round.
        round: RoundId,
    },

    /// A round configuration that is invalid.
    #[error("invalid round config: {0}")]
    InvalidConfig(&'static str),

    /// A local input that does not fit the round (length, range).
    #[error("invalid input: {0}")]
    InvalidInput(&'static str),

    /// A cryptographic operation on local data failed.
    #[error("crypto: {0}")]
    Crypto(#[from] veil_crypto::Error),

    /// A participant declined the round (it sent `Decline`, SPEC.md
    /// §10.12): its site's floor, or its record of used round ids, refused
    /// the config.
    #[error("round {round}: participant {participant} declined the round: {reason}")]
    Declined {
        /// The round.
        round: RoundId,
        /// Who declined.
        participant: ParticipantId,
        /// The rule of its own that the round broke.
        reason: DeclineReason,
    },

    /// This client's site floor refuses the round (SPEC.md §9.5).
    #[error("{0}")]
    BelowFloor(FloorRefusal),

    /// A state the code believes unreachable; reported, never panicked on.
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The wire code of this error in an `Abort` message (SPEC.md §10.4).
    #[must_use]
    pub fn abort_code(&self) -> u8 {
        match self {
            Self::Decode { .. } => 1,
            Self::Forbidden { .. } => 2,
            Self::UnexpectedMessage { .. } => 3,
            Self::TooFewSurvivors { .. } => 4,
            Self::Inconsistent { .. } => 5,
            Self::Timeout { .. } => 6,
            Self::OperatorAbort { .. } => 7,
            Self::InvalidConfig(_)
            | Self::InvalidInput(_)
            | Self::Declined { .. }
            | Self::BelowFloor(_) => 8,
            Self::Crypto(_) | Self::Internal(_) => 9,
        }
    }
}
