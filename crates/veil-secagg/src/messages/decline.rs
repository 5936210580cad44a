//! `Decline` (SPEC.md §10.12): a client refuses a round before its phase 1
//! and says which rule of its own the round broke, so the server's log can
//! say which client refused and why.

use core::fmt;

use crate::codec::Reader;
use crate::error::{DecodeErrorKind, Result};

/// Why a client declined a round: the field of its site floor (SPEC.md
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
        }
    }
}

impl fmt::Display for DeclineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// A client's refusal of the round, sent instead of `AdvertiseKeys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decline {
    /// Why.
    pub reason: DeclineReason,
}

impl Decline {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.reason.code());
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let code = r.u8("reason")?;
        let reason = DeclineReason::from_code(code)
            .ok_or_else(|| r.err("reason", DecodeErrorKind::OutOfRange))?;
        Ok(Self { reason })
    }
}
