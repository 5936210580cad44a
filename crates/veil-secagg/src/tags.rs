//! The wire's tags and header (SPEC.md §10.1, §10.3, §10.12): the protocol
//! version, the message types, the reasons a client declines a round, and
//! the header's type and round read without decoding the message. A leaf
//! (of this crate it uses only `phase`), so that `error` and `messages` both
//! use it without importing each other in a circle.

use core::fmt;

use veil_crypto::RoundId;

use crate::phase::Phase;

/// The protocol version byte at the start of every message.
pub const PROTOCOL_VERSION: u8 = 1;

/// The length of the header: version, type, round.
pub const HEADER_LEN: usize = 10;

/// The type tag of a message (SPEC.md §10.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MessageType {
    /// Server to client: the round's parameters.
    RoundConfig = 1,
    /// Client to server, phase 1.
    AdvertiseKeys = 2,
    /// Server to client: the neighbours' advertised keys.
    NeighbourKeys = 3,
    /// Client to server, phase 2.
    ShareKeys = 4,
    /// Server to client: the share envelopes sealed for this client.
    SharesForYou = 5,
    /// Client to server, phase 3.
    MaskedInput = 6,
    /// Server to client: the survivor set to sign.
    SurvivorSet = 7,
    /// Client to server, phase 4.
    ConsistencySignature = 8,
    /// Server to client: the neighbours' signatures over the survivor set.
    ConsistencySignatures = 9,
    /// Client to server, phase 5.
    UnmaskShares = 10,
    /// Server to client: the round is over for this client.
    Abort = 11,
    /// Client to server, instead of phase 1: the client refuses the round.
    Decline = 12,
    /// Server to client, before the `RoundConfig`: the round's work (the
    /// global model, clipping, quantisation and noise).
    Task = 13,
}

impl MessageType {
    /// The type of an encoded message, from its header alone (for logs and
    /// routing; the message is not decoded or checked).
    #[must_use]
    pub fn peek(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [PROTOCOL_VERSION, tag, ..] => Self::from_tag(*tag),
            _ => None,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Option<Self> {
        Some(match tag {
            1 => Self::RoundConfig,
            2 => Self::AdvertiseKeys,
            3 => Self::NeighbourKeys,
            4 => Self::ShareKeys,
            5 => Self::SharesForYou,
            6 => Self::MaskedInput,
            7 => Self::SurvivorSet,
            8 => Self::ConsistencySignature,
            9 => Self::ConsistencySignatures,
            10 => Self::UnmaskShares,
            11 => Self::Abort,
            12 => Self::Decline,
            13 => Self::Task,
            _ => return None,
        })
    }
}

/// The type and round of an encoded message, from its header alone (for
/// logs, routing and stale-round checks; the message is not decoded or
/// checked). `None` for a wrong version, an unknown tag, or fewer than
/// [`HEADER_LEN`] bytes.
#[must_use]
pub fn peek_header(bytes: &[u8]) -> Option<(MessageType, RoundId)> {
    let ty = MessageType::peek(bytes)?;
    let round = bytes
        .get(2..HEADER_LEN)?
        .try_into()
        .ok()
        .map(u64::from_be_bytes)?;
    Some((ty, round))
}

impl MessageType {
    /// The phase a message of this type belongs to (`None` for a
    /// `RoundConfig`, a `Task`, an `Abort` or a `Decline`, which belong to
    /// none).
    #[must_use]
    pub fn phase(self) -> Option<Phase> {
        Some(match self {
            Self::AdvertiseKeys | Self::NeighbourKeys => Phase::AdvertiseKeys,
            Self::ShareKeys | Self::SharesForYou => Phase::ShareKeys,
            Self::MaskedInput | Self::SurvivorSet => Phase::MaskedInput,
            Self::ConsistencySignature | Self::ConsistencySignatures => Phase::ConsistencyCheck,
            Self::UnmaskShares => Phase::Unmask,
            Self::RoundConfig | Self::Task | Self::Abort | Self::Decline => return None,
        })
    }
}

/// Why a client declined a round (SPEC.md §10.12): the field of its site floor (SPEC.md
/// §9.5) the round fell short of, or a round id it has used before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeclineReason {
    /// Fewer participants than the site's `min_participants`.
    Participants = 1,
    /// A threshold below the site's `min_threshold`.
    Threshold = 2,
    /// A degree below the site's `min_degree`.
    Degree = 3,
    /// A round that withstands fewer colluders than the site's
    /// `corrupt_fraction` of its participants.
    Colluders = 4,
    /// A ring narrower than the site's `min_ring_bits`.
    RingBits = 5,
    /// A phase timeout above the site's `max_phase_timeout_ms`.
    PhaseTimeout = 6,
    /// A round id this client has already taken part in.
    ReusedRound = 7,
    /// Less noise than the site's minimum.
    Noise = 8,
    /// A round this client cannot take part in for another reason (an
    /// invalid config or task, an input it could not compute).
    Other = 9,
    /// A round that would take the site past its own privacy budget, by
    /// its own ledger.
    Budget = 10,
}

impl DeclineReason {
    /// The wire code.
    #[must_use]
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The reason with this wire code.
    #[must_use]
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::Participants,
            2 => Self::Threshold,
            3 => Self::Degree,
            4 => Self::Colluders,
            5 => Self::RingBits,
            6 => Self::PhaseTimeout,
            7 => Self::ReusedRound,
            8 => Self::Noise,
            9 => Self::Other,
            10 => Self::Budget,
            _ => return None,
        })
    }

    /// The name of the site-floor field (or the rule) behind the reason.
    #[must_use]
    pub fn field(self) -> &'static str {
        match self {
            Self::Participants => "min_participants",
            Self::Threshold => "min_threshold",
            Self::Degree => "min_degree",
            Self::Colluders => "corrupt_fraction",
            Self::RingBits => "min_ring_bits",
            Self::PhaseTimeout => "max_phase_timeout_ms",
            Self::ReusedRound => "round id reused",
            Self::Noise => "min_noise_multiplier",
            Self::Other => "other",
            Self::Budget => "privacy budget",
        }
    }
}

impl fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// Why a site floor (`SiteFloor`, SPEC.md §9.5) refused a round config: the field, what the round
/// offered and what the floor requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloorRefusal {
    /// The round refused.
    pub round: RoundId,
    /// The floor's field that refused it.
    pub reason: DeclineReason,
    /// The round's value.
    pub offered: u64,
    /// The floor's bound (a minimum; a maximum for the phase timeout).
    pub required: u64,
}

impl fmt::Display for FloorRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, bound) = match self.reason {
            DeclineReason::Participants => ("participants", "at least"),
            DeclineReason::Threshold => ("threshold t", "at least"),
            DeclineReason::Degree => ("degree k", "at least"),
            DeclineReason::Colluders => ("colluders withstood (max_corrupt)", "at least"),
            DeclineReason::RingBits => ("ring bits", "at least"),
            DeclineReason::PhaseTimeout => ("phase timeout (ms)", "at most"),
            _ => ("value", "within"),
        };
        write!(
            f,
            "round {}: {what} {} is outside this site's floor: {} must be {bound} {}",
            self.round,
            self.offered,
            self.reason.field(),
            self.required
        )
    }
}

#[cfg(test)]
mod tests {
    use super::DeclineReason;

    #[test]
    fn every_decline_reason_has_one_code_and_no_other_code_decodes() {
        for code in 0..=u8::MAX {
            match DeclineReason::from_code(code) {
                Some(r) => {
                    assert!((1..=10).contains(&code), "{code}");
                    assert_eq!(r.code(), code);
                }
                None => assert!(code == 0 || code > 10, "{code}"),
            }
        }
        assert_eq!(DeclineReason::Budget.field(), "privacy budget");
    }
}
