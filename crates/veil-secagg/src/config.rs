//! The round configuration and the deployment roster (SPEC.md §9.1).

use std::collections::BTreeMap;

use veil_crypto::prg::RingBits;
use veil_crypto::sign::IdentityVerifyingKey;
use veil_crypto::{ParticipantId, RoundId};

use crate::error::{Error, Result};
use crate::graph::NeighbourGraph;

/// The most participants in one round. Ids are below `u32::MAX`, so every
/// participant has a Shamir x-coordinate `id + 1`.
pub const MAX_PARTICIPANTS: usize = 65_534;

/// The largest dimension `d` of an input vector.
pub const MAX_DIMENSION: u32 = 1 << 26;

/// The largest bit-packed masked input, `ceil(d * b / 8)` bytes: 512 MiB.
pub const MAX_PACKED_LEN: u64 = 1 << 29;

/// The parameters of one round, as the server announces them.
///
/// Every field is public. [`RoundConfig::new`] checks them; a decoded config
/// is checked the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundConfig {
    /// The round id; never reused.
    pub round: RoundId,
    /// The participants, strictly increasing ids.
    pub participants: Vec<ParticipantId>,
    /// The input dimension `d`.
    pub dimension: u32,
    /// The ring `Z_2^b`.
    pub ring: RingBits,
    /// The Shamir threshold `t`: each client's secrets are shared among its
    /// `k` neighbours and itself, and any `t` of those `k + 1` holders
    /// reconstruct them.
    pub threshold: u32,
    /// The neighbour degree `k`: `n - 1` for classic SecAgg (complete graph),
    /// else an even number below `n - 1` (SecAgg+).
    pub degree: u32,
    /// How long the server waits in each phase, in milliseconds.
    pub phase_timeout_ms: u32,
    /// The public seed of the neighbour-graph permutation.
    pub graph_seed: [u8; 32],
}

impl RoundConfig {
    /// A checked configuration.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the rule broken (SPEC.md §9.1).
    #[expect(clippy::too_many_arguments, reason = "one argument per config field")]
    pub fn new(
        round: RoundId,
        participants: Vec<ParticipantId>,
        dimension: u32,
        ring: RingBits,
        threshold: u32,
        degree: u32,
        phase_timeout_ms: u32,
        graph_seed: [u8; 32],
    ) -> Result<Self> {
        let config = Self {
            round,
            participants,
            dimension,
            ring,
            threshold,
            degree,
            phase_timeout_ms,
            graph_seed,
        };
        config.validate()?;
        Ok(config)
    }

    /// Checks every rule of SPEC.md §9.1.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the rule broken.
    pub fn validate(&self) -> Result<()> {
        let n = self.participants.len();
        if n < 2 {
            return Err(Error::InvalidConfig(
                "a round needs at least 2 participants",
            ));
        }
        if n > MAX_PARTICIPANTS {
            return Err(Error::InvalidConfig(
                "more than MAX_PARTICIPANTS participants",
            ));
        }
        if !crate::codec::strictly_increasing(&self.participants, |id| *id) {
            return Err(Error::InvalidConfig(
                "participant ids must be strictly increasing",
            ));
        }
        if self.participants.last().is_some_and(|id| *id == u32::MAX) {
            return Err(Error::InvalidConfig(
                "participant id u32::MAX has no share index",
            ));
        }
        if self.dimension == 0 || self.dimension > MAX_DIMENSION {
            return Err(Error::InvalidConfig(
                "dimension must be in 1..=MAX_DIMENSION",
            ));
        }
        if self.packed_len_u64() > MAX_PACKED_LEN {
            return Err(Error::InvalidConfig("packed input exceeds MAX_PACKED_LEN"));
        }
        let k = usize::try_from(self.degree).unwrap_or(usize::MAX);
        let complete = n.saturating_sub(1);
        if k == 0 || k > complete {
            return Err(Error::InvalidConfig("degree must be in 1..=n-1"));
        }
        if k < complete && k % 2 != 0 {
            return Err(Error::InvalidConfig("a degree below n-1 must be even"));
        }
        // Each secret has k + 1 holders: the k neighbours and its owner.
        let t = u64::from(self.threshold);
        let holders = u64::from(self.degree).saturating_add(1);
        if t == 0 || t > holders {
            return Err(Error::InvalidConfig("threshold must be in 1..=degree+1"));
        }
        if t.saturating_mul(2) <= holders {
            return Err(Error::InvalidConfig(
                "threshold must exceed half the holders (2t > k+1), so no peer's two secrets can both be reconstructed",
            ));
        }
        if self.phase_timeout_ms == 0 {
            return Err(Error::InvalidConfig("phase timeout must be positive"));
        }
        Ok(())
    }

    /// `n`, the number of participants.
    #[must_use]
    pub fn n(&self) -> usize {
        self.participants.len()
    }

    /// `t` as a count.
    #[must_use]
    pub fn t(&self) -> usize {
        usize::try_from(self.threshold).unwrap_or(usize::MAX)
    }

    /// `k` as a count.
    #[must_use]
    pub fn k(&self) -> usize {
        usize::try_from(self.degree).unwrap_or(usize::MAX)
    }

    /// `d` as a count.
    #[must_use]
    pub fn d(&self) -> usize {
        usize::try_from(self.dimension).unwrap_or(usize::MAX)
    }

    fn packed_len_u64(&self) -> u64 {
        u64::from(self.dimension)
            .saturating_mul(u64::from(self.ring.bits()))
            .div_ceil(8)
    }

    /// The length of a bit-packed input vector: `ceil(d * b / 8)` bytes.
    #[must_use]
    pub fn packed_len(&self) -> usize {
        usize::try_from(self.packed_len_u64()).unwrap_or(usize::MAX)
    }

    /// Whether `id` takes part in this round.
    #[must_use]
    pub fn contains(&self, id: ParticipantId) -> bool {
        self.participants.binary_search(&id).is_ok()
    }

    /// The neighbour graph of this round (SPEC.md §9.2).
    #[must_use]
    pub fn graph(&self) -> NeighbourGraph {
        NeighbourGraph::new(&self.participants, self.k(), &self.graph_seed)
    }

    /// The phase timeout.
    #[must_use]
    pub fn phase_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.phase_timeout_ms))
    }
}

/// The identities of a deployment: participant id to Ed25519 identity key.
///
/// Both the server and every client hold the roster from the deployment,
/// not from the round: a client checks its neighbours' signatures against
/// it, so the server cannot introduce keys of its own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    keys: BTreeMap<ParticipantId, IdentityVerifyingKey>,
}

impl Roster {
    /// An empty roster.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces `id`'s identity key.
    pub fn insert(&mut self, id: ParticipantId, key: IdentityVerifyingKey) {
        self.keys.insert(id, key);
    }

    /// `id`'s identity key.
    #[must_use]
    pub fn get(&self, id: ParticipantId) -> Option<&IdentityVerifyingKey> {
        self.keys.get(&id)
    }

    /// Whether every participant of `config` has a key here.
    #[must_use]
    pub fn covers(&self, config: &RoundConfig) -> bool {
        config
            .participants
            .iter()
            .all(|id| self.keys.contains_key(id))
    }

    /// The number of identities.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the roster is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Neighbour degree and threshold recommended by [`recommend_parameters`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Recommendation {
    /// The degree `k`.
    pub degree: u32,
    /// The threshold `t`.
    pub threshold: u32,
    /// Whether this is the complete graph (classic SecAgg).
    pub complete: bool,
    /// The union bound on a round losing some client's secrets to dropouts.
    pub failure_probability: f64,
    /// The union bound on corrupt clients holding `t` shares of an honest
    /// client's secret.
    pub leak_probability: f64,
}

/// Recommends `(k, t)` for `n` participants, an expected dropout rate and a
/// tolerated fraction of corrupt clients (SPEC.md §9.3).
///
/// Derivation: a neighbourhood of the randomly permuted Harary graph is close
/// to a uniform sample of `k` other clients; with its owner it holds `k + 1`
/// shares of each secret. The number of holders that survive is taken as
/// `Binomial(k + 1, 1 - dropout)` and of corrupt holders as
/// `Binomial(k + 1, corrupt)`. The function returns the smallest even `k` (or
/// `n - 1`, the complete graph, if that is smaller or nothing smaller works)
/// with a `t`, `(k + 1)/2 < t <= k + 1`, such that, by a union bound over all
/// `n` neighbourhoods:
///
/// - correctness: `n * P[survivors < t] <= 2^-20`, so no client's secrets
///   become unrecoverable through dropouts but with probability `2^-20`;
/// - privacy: `n * P[corrupt >= t] <= 2^-40`, so corrupt clients alone never
///   hold `t` shares of an honest client's secret but with probability
///   `2^-40`.
///
/// When no degree meets the correctness bound (few clients, many dropouts),
/// it returns the complete graph with the smallest `t` that meets the
/// privacy bound; both bounds are reported in the result either way.
///
/// This is a sizing rule for neighbourhoods, not a proof: Bell et al.
/// (CCS 2020, Theorem 3.6) also require the honest, surviving subgraph to
/// stay connected, which larger `k` makes overwhelmingly likely.
///
/// # Errors
/// [`Error::InvalidConfig`] if `n < 2`, the rates are not finite numbers in
/// `[0, 1)` with `dropout + corrupt < 1`, or not even the complete graph
/// meets both bounds.
pub fn recommend_parameters(n: usize, dropout: f64, corrupt: f64) -> Result<Recommendation> {
    if !(2..=MAX_PARTICIPANTS).contains(&n) {
        return Err(Error::InvalidConfig("n must be in 2..=MAX_PARTICIPANTS"));
    }
    let valid = |p: f64| p.is_finite() && (0.0..1.0).contains(&p);
    if !valid(dropout) || !valid(corrupt) || dropout + corrupt >= 1.0 {
        return Err(Error::InvalidConfig(
            "dropout and corrupt rates must be in [0, 1) with a sum below 1",
        ));
    }
    let n_f = n as f64;
    let fail_budget = 2_f64.powi(-20);
    let leak_budget = 2_f64.powi(-40);
    let complete = n.saturating_sub(1);
    let candidates = (1..complete)
        .filter(|k| k % 2 == 0)
        .chain(core::iter::once(complete));
    let mut fallback = None;
    for k in candidates {
        let holders = k.saturating_add(1);
        let survive = binomial_pmf(holders, 1.0 - dropout);
        let corrupted = binomial_pmf(holders, corrupt);
        for t in (holders / 2).saturating_add(1)..=holders {
            // Both tails summed directly, smallest terms first: 1 - cdf would
            // cancel to noise near the 2^-40 bound.
            let below: f64 = survive.iter().take(t).rev().sum();
            let at_least: f64 = corrupted.iter().skip(t).rev().sum();
            let rec = Recommendation {
                degree: u32::try_from(k).unwrap_or(u32::MAX),
                threshold: u32::try_from(t).unwrap_or(u32::MAX),
                complete: k == complete,
                failure_probability: (n_f * below).min(1.0),
                leak_probability: (n_f * at_least).min(1.0),
            };
            if rec.leak_probability > leak_budget {
                continue;
            }
            if rec.failure_probability <= fail_budget {
                return Ok(rec);
            }
            // The complete graph with the smallest private threshold is the
            // most robust choice when no degree meets the failure bound.
            if k == complete && fallback.is_none() {
                fallback = Some(rec);
            }
        }
    }
    fallback.ok_or(Error::InvalidConfig(
        "no threshold keeps corrupt clients below it at this rate: lower the corrupt rate",
    ))
}

/// `pmf[j] = P[Binomial(k, p) = j]` for `j = 0..=k`, from log-space terms.
fn binomial_pmf(k: usize, p: f64) -> Vec<f64> {
    let k_f = k as f64;
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    let mut ln_choose = 0.0_f64;
    let mut pmf = Vec::with_capacity(k.saturating_add(1));
    for j in 0..=k {
        let j_f = j as f64;
        if j > 0 {
            ln_choose += ((k_f - j_f + 1.0) / j_f).ln();
        }
        let term = if p == 0.0 {
            if j == 0 { 1.0 } else { 0.0 }
        } else {
            (ln_choose + j_f * lp + (k_f - j_f) * lq).exp()
        };
        pmf.push(term);
    }
    pmf
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(n: u32, k: u32, t: u32) -> Result<RoundConfig> {
        RoundConfig::new(
            1,
            (0..n).collect(),
            10,
            RingBits::new(16).unwrap(),
            t,
            k,
            1000,
            [0; 32],
        )
    }

    #[test]
    fn valid_configs() {
        config(2, 1, 2).unwrap();
        config(10, 9, 6).unwrap();
        config(10, 4, 3).unwrap();
        config(10, 4, 5).unwrap();
    }

    #[test]
    fn each_rule_is_checked() {
        assert!(config(1, 1, 1).is_err());
        assert!(config(10, 10, 6).is_err(), "degree above n-1");
        assert!(config(10, 5, 4).is_err(), "odd degree below n-1");
        assert!(config(10, 4, 2).is_err(), "2t <= k+1");
        assert!(config(10, 9, 5).is_err(), "2t <= k+1 in the complete graph");
        assert!(config(2, 1, 1).is_err(), "2t <= k+1 with two clients");
        assert!(config(10, 4, 6).is_err(), "t > k+1");
        assert!(config(10, 4, 0).is_err(), "t = 0");
        let mut c = config(10, 4, 3).unwrap();
        c.participants = vec![3, 2, 5];
        assert!(c.validate().is_err(), "unsorted");
        c.participants = vec![2, 2, 5];
        assert!(c.validate().is_err(), "duplicate");
        c.participants = vec![2, u32::MAX];
        c.degree = 1;
        c.threshold = 2;
        assert!(c.validate().is_err(), "id u32::MAX");
        let mut c = config(10, 4, 3).unwrap();
        c.dimension = 0;
        assert!(c.validate().is_err());
        c.dimension = MAX_DIMENSION + 1;
        assert!(c.validate().is_err());
        let mut c = config(10, 4, 3).unwrap();
        c.phase_timeout_ms = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn binomial_pmf_is_a_distribution() {
        let pmf = binomial_pmf(10, 0.3);
        assert!((pmf.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((pmf[0] - 0.7_f64.powi(10)).abs() < 1e-15);
        assert!((pmf[10] - 0.3_f64.powi(10)).abs() < 1e-18);
        // P[X = 3] = C(10, 3) 0.3^3 0.7^7
        assert!((pmf[3] - 120.0 * 0.3_f64.powi(3) * 0.7_f64.powi(7)).abs() < 1e-12);
    }

    #[test]
    fn recommendations_meet_their_bounds_and_grow_slowly() {
        // Ten clients at 10 % dropout cannot reach 2^-20: complete graph,
        // smallest private threshold, and the bound it does reach.
        let small = recommend_parameters(10, 0.1, 0.0).unwrap();
        assert!(small.complete && small.degree == 9 && small.threshold == 6);
        assert!(small.failure_probability > 2_f64.powi(-20));
        let calm = recommend_parameters(10, 0.001, 0.0).unwrap();
        assert!(calm.failure_probability <= 2_f64.powi(-20));
        let mid = recommend_parameters(1000, 0.1, 0.05).unwrap();
        let big = recommend_parameters(10_000, 0.1, 0.05).unwrap();
        assert!(!mid.complete && mid.degree.is_multiple_of(2));
        assert!(2 * mid.threshold > mid.degree + 1 && mid.threshold <= mid.degree + 1);
        // Far below n, and growing much more slowly than n.
        assert!(
            mid.degree < 200 && big.degree >= mid.degree,
            "{mid:?} {big:?}"
        );
        assert!(big.degree < 2 * mid.degree, "{mid:?} {big:?}");
        for (n, r) in [(1000_usize, mid), (10_000, big)] {
            let holders = r.degree as usize + 1;
            let t = r.threshold as usize;
            let below: f64 = binomial_pmf(holders, 0.9)[..t].iter().sum();
            let above: f64 = binomial_pmf(holders, 0.05)[t..].iter().sum();
            assert!(n as f64 * below <= 2_f64.powi(-20));
            assert!(n as f64 * above <= 2_f64.powi(-40));
            assert!(
                (r.failure_probability - n as f64 * below).abs() <= 1e-3 * r.failure_probability
            );
        }
    }

    #[test]
    fn recommendation_refuses_bad_rates() {
        assert!(recommend_parameters(1, 0.1, 0.1).is_err());
        assert!(recommend_parameters(100, f64::NAN, 0.1).is_err());
        assert!(recommend_parameters(100, 0.6, 0.5).is_err());
        assert!(
            recommend_parameters(20, 0.0, 0.6).is_err(),
            "corrupt majority"
        );
        assert!(recommend_parameters(100, -0.1, 0.0).is_err());
    }
}
