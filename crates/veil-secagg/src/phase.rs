//! The phases of a round (SPEC.md §9).

/// Where a session is in the round. Phase numbers are those of SPEC.md §9;
/// [`Phase::ShareKeys`]'s number is bound into the share envelopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Phase 1: clients advertise two X25519 public keys, signed.
    AdvertiseKeys = 1,
    /// Phase 2: clients send Shamir shares of their secrets, sealed for
    /// each neighbour.
    ShareKeys = 2,
    /// Phase 3: clients send their masked inputs.
    MaskedInput = 3,
    /// Phase 4: survivors sign the survivor set.
    ConsistencyCheck = 4,
    /// Phase 5: clients reveal one share per peer; the server unmasks.
    Unmask = 5,
    /// The round completed.
    Done = 6,
    /// The round failed (sticky).
    Failed = 7,
}

impl Phase {
    /// The phase's number on the wire.
    #[must_use]
    pub fn number(self) -> u8 {
        self as u8
    }
}
