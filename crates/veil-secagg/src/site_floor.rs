//! A site's floor (SPEC.md §9.5): the weakest round a client will take part
//! in. The round config comes from the server; the floor comes from the
//! site's own configuration, so a dishonest server cannot talk a client into
//! a round that its operator would not accept (two participants, a
//! threshold of two in a hundred, a one-bit ring, a day-long deadline, or a
//! round that claims to withstand no colluders at all).

use crate::config::{MAX_PHASE_TIMEOUT_MS, RoundConfig};
use crate::tags::{DeclineReason, FloorRefusal};

/// The weakest round a site takes part in. [`SiteFloor::default`] is what a
/// client uses unless its operator says otherwise.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct SiteFloor {
    /// The fewest participants.
    pub min_participants: u32,
    /// The lowest Shamir threshold `t`.
    pub min_threshold: u32,
    /// The lowest neighbour degree `k`.
    pub min_degree: u32,
    /// The fraction of a round's participants that the site assumes may
    /// collude with the server: the round must withstand at least
    /// `ceil(corrupt_fraction · n)` colluders (its `max_corrupt`).
    pub corrupt_fraction: f64,
    /// The narrowest ring `Z_2^b`.
    pub min_ring_bits: u32,
    /// The longest phase timeout, in milliseconds.
    pub max_phase_timeout_ms: u32,
}

impl Default for SiteFloor {
    /// Three participants, `t >= 2`, `k >= 2`, 5 % colluders, an 8-bit ring,
    /// ten-minute phases.
    fn default() -> Self {
        Self {
            min_participants: 3,
            min_threshold: 2,
            min_degree: 2,
            corrupt_fraction: 0.05,
            min_ring_bits: 8,
            max_phase_timeout_ms: 600_000,
        }
    }
}

impl SiteFloor {
    /// A floor that accepts every valid config: for simulations and tests
    /// whose caller chose the config itself, never for a site.
    #[must_use]
    pub fn none() -> Self {
        Self {
            min_participants: 2,
            min_threshold: 1,
            min_degree: 1,
            corrupt_fraction: 0.0,
            min_ring_bits: 1,
            max_phase_timeout_ms: MAX_PHASE_TIMEOUT_MS,
        }
    }

    /// Whether the floor's own values make sense: a corrupt fraction in
    /// `[0, 1)` and a positive phase timeout within one day.
    ///
    /// # Errors
    /// The field that is out of range.
    pub fn validate(&self) -> Result<(), &'static str> {
        if !(self.corrupt_fraction.is_finite() && (0.0..1.0).contains(&self.corrupt_fraction)) {
            return Err("corrupt_fraction must be in [0, 1)");
        }
        if self.max_phase_timeout_ms == 0 || self.max_phase_timeout_ms > MAX_PHASE_TIMEOUT_MS {
            return Err("max_phase_timeout_ms must be in 1..=86400000");
        }
        if self.min_ring_bits > 64 {
            return Err("min_ring_bits must be at most 64");
        }
        Ok(())
    }

    /// The colluders a round of `n` participants must withstand:
    /// `ceil(corrupt_fraction · n)`.
    #[must_use]
    pub fn colluders_for(&self, n: usize) -> u64 {
        crate::config::colluders(n, self.corrupt_fraction) as u64
    }

    /// Checks `config` against the floor, field by field in the order of
    /// [`DeclineReason`].
    ///
    /// # Errors
    /// The first field the round falls short of.
    pub fn check(&self, config: &RoundConfig) -> Result<(), FloorRefusal> {
        let refuse = |reason, offered: u64, required: u64| FloorRefusal {
            round: config.round,
            reason,
            offered,
            required,
        };
        let n = config.n() as u64;
        if n < u64::from(self.min_participants) {
            return Err(refuse(
                DeclineReason::Participants,
                n,
                self.min_participants.into(),
            ));
        }
        if config.threshold < self.min_threshold {
            return Err(refuse(
                DeclineReason::Threshold,
                config.threshold.into(),
                self.min_threshold.into(),
            ));
        }
        if config.degree < self.min_degree {
            return Err(refuse(
                DeclineReason::Degree,
                config.degree.into(),
                self.min_degree.into(),
            ));
        }
        let colluders = self.colluders_for(config.n());
        if u64::from(config.max_corrupt) < colluders {
            return Err(refuse(
                DeclineReason::Colluders,
                config.max_corrupt.into(),
                colluders,
            ));
        }
        if config.ring.bits() < self.min_ring_bits {
            return Err(refuse(
                DeclineReason::RingBits,
                config.ring.bits().into(),
                self.min_ring_bits.into(),
            ));
        }
        if config.phase_timeout_ms > self.max_phase_timeout_ms {
            return Err(refuse(
                DeclineReason::PhaseTimeout,
                config.phase_timeout_ms.into(),
                self.max_phase_timeout_ms.into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use veil_crypto::prg::RingBits;

    use super::*;

    fn config(n: u32, k: u32, t: u32, c: u32, bits: u32, timeout: u32) -> RoundConfig {
        RoundConfig::new(
            9,
            (0..n).collect(),
            4,
            RingBits::new(bits).unwrap(),
            t,
            k,
            c,
            timeout,
            [0; 32],
        )
        .unwrap()
    }

    #[test]
    fn the_default_floor_accepts_a_recommended_round() {
        let floor = SiteFloor::default();
        floor.validate().unwrap();
        // n = 20: c = 1, so t >= 3.
        floor.check(&config(20, 6, 4, 1, 16, 30_000)).unwrap();
    }

    #[test]
    fn each_field_refuses_the_round_that_falls_short_of_it() {
        let floor = SiteFloor::default();
        let reason = |c: &RoundConfig| floor.check(c).unwrap_err().reason;
        // The audit's configs: two clients, k = 2 and t = 2 among a hundred
        // that claims no colluders, a one-bit ring, a day-long phase.
        assert_eq!(
            reason(&config(2, 1, 2, 0, 16, 1000)),
            DeclineReason::Participants
        );
        assert_eq!(
            reason(&config(100, 2, 2, 0, 16, 1000)),
            DeclineReason::Colluders
        );
        assert_eq!(
            reason(&config(20, 6, 4, 1, 1, 1000)),
            DeclineReason::RingBits
        );
        assert_eq!(
            reason(&config(20, 6, 4, 1, 16, MAX_PHASE_TIMEOUT_MS)),
            DeclineReason::PhaseTimeout
        );
        let strict = SiteFloor {
            min_threshold: 5,
            ..SiteFloor::default()
        };
        assert_eq!(
            strict
                .check(&config(20, 6, 4, 1, 16, 1000))
                .unwrap_err()
                .reason,
            DeclineReason::Threshold
        );
        let strict = SiteFloor {
            min_degree: 8,
            ..SiteFloor::default()
        };
        let refusal = strict.check(&config(20, 6, 4, 1, 16, 1000)).unwrap_err();
        assert_eq!(refusal.reason, DeclineReason::Degree);
        assert_eq!((refusal.offered, refusal.required), (6, 8));
        let text = refusal.to_string();
        assert!(
            text.contains("min_degree") && text.contains("round 9"),
            "{text}"
        );
    }

    #[test]
    fn the_colluder_floor_rounds_up() {
        let floor = SiteFloor {
            corrupt_fraction: 0.1,
            ..SiteFloor::default()
        };
        assert_eq!(floor.colluders_for(10), 1);
        assert_eq!(floor.colluders_for(11), 2);
        assert_eq!(SiteFloor::default().colluders_for(1000), 50);
        let none = SiteFloor {
            corrupt_fraction: 0.0,
            ..SiteFloor::default()
        };
        assert_eq!(none.colluders_for(1000), 0);
    }

    #[test]
    fn a_nonsensical_floor_is_refused() {
        for bad in [
            SiteFloor {
                corrupt_fraction: 1.0,
                ..SiteFloor::default()
            },
            SiteFloor {
                corrupt_fraction: f64::NAN,
                ..SiteFloor::default()
            },
            SiteFloor {
                max_phase_timeout_ms: 0,
                ..SiteFloor::default()
            },
            SiteFloor {
                min_ring_bits: 65,
                ..SiteFloor::default()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
