//! The round configuration and the deployment roster (SPEC.md §9.1).

use std::collections::BTreeMap;
use std::sync::Arc;

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

/// The longest phase timeout a config may state: one day.
pub const MAX_PHASE_TIMEOUT_MS: u32 = 86_400_000;

/// A round's session id (SPEC.md §9.1): the hash of its whole config
/// ([`crate::messages::session_id`]). Every signature of the round is over
/// it.
pub type SessionId = [u8; 32];

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
    /// `c`, how many colluding clients the round withstands together with
    /// an active server (SPEC.md §9.1): `t >= c + 2`, and a client reveals
    /// only after `floor((n + c) / 2) + 1` participants signed its survivor
    /// set.
    pub max_corrupt: u32,
    /// How long the server waits in each phase, in milliseconds.
    pub phase_timeout_ms: u32,
    /// The public seed of the neighbour-graph permutation.
    pub graph_seed: [u8; 32],
    /// The digest of the round's Task message (SPEC.md §10.13,
    /// `veil_crypto::kdf::task_digest`), all zeros for a round without
    /// one. Part of the config, so the session id binds the task.
    pub task_digest: [u8; 32],
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
        max_corrupt: u32,
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
            max_corrupt,
            phase_timeout_ms,
            graph_seed,
            task_digest: [0; 32],
        };
        config.validate()?;
        Ok(config)
    }

    /// The same config for the round whose Task message has `digest`.
    #[must_use]
    pub fn with_task_digest(self, digest: [u8; 32]) -> Self {
        Self {
            task_digest: digest,
            ..self
        }
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
                "threshold must exceed half the holders (2t > k+1), so no two disjoint groups of honest holders reach it",
            ));
        }
        // c colluders never reach t shares of an honest client's secret, and
        // with the target's own share they are not the t - 1 neighbours that
        // would isolate it (SPEC.md §9.3).
        if u64::from(self.max_corrupt).saturating_add(2) > t {
            return Err(Error::InvalidConfig(
                "threshold must exceed the colluders by two (t >= c + 2), so colluders with the target's own share never reach it",
            ));
        }
        if self.phase_timeout_ms == 0 || self.phase_timeout_ms > MAX_PHASE_TIMEOUT_MS {
            return Err(Error::InvalidConfig(
                "phase timeout must be in 1..=MAX_PHASE_TIMEOUT_MS (one day)",
            ));
        }
        Ok(())
    }

    /// `c` as a count.
    #[must_use]
    pub fn c(&self) -> usize {
        usize::try_from(self.max_corrupt).unwrap_or(usize::MAX)
    }

    /// The consistency quorum `floor((n + c) / 2) + 1` (SPEC.md §9.3): a
    /// client reveals only after this many participants, itself included,
    /// signed the survivor set it signed. Two quorums share an honest
    /// participant even when `c` of them are colluders signing both, and an
    /// honest participant signs one set: so every client that reveals
    /// anything was shown the same survivor set.
    #[must_use]
    pub fn quorum(&self) -> usize {
        quorum_of(self.n(), self.c())
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
///
/// Cloning is cheap (the map is shared until one clone changes it): every
/// client session keeps the roster, to check any survivor's signature.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    keys: Arc<BTreeMap<ParticipantId, IdentityVerifyingKey>>,
}

impl Roster {
    /// An empty roster.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces `id`'s identity key.
    pub fn insert(&mut self, id: ParticipantId, key: IdentityVerifyingKey) {
        Arc::make_mut(&mut self.keys).insert(id, key);
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

/// Neighbour degree, threshold and colluder bound recommended by
/// [`recommend_parameters`].
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Recommendation {
    /// The degree `k`.
    pub degree: u32,
    /// The threshold `t`.
    pub threshold: u32,
    /// `c = ceil(corrupt · n)`: the colluding clients the round withstands
    /// together with an active server, wherever they sit in the graph.
    pub max_corrupt: u32,
    /// The consistency quorum `floor((n + c) / 2) + 1`.
    pub quorum: u32,
    /// Whether this is the complete graph (classic SecAgg).
    pub complete: bool,
    /// The union bound on a round failing through dropouts alone: some
    /// client's secrets losing `t` holders, or fewer than the quorum
    /// signing the survivor set.
    pub failure_probability: f64,
}

/// Recommends `(k, t, c)` for `n` participants, an expected dropout rate and
/// a fraction of clients that may collude with the server (SPEC.md §9.3).
///
/// **Privacy is deterministic.** The round withstands `c = ceil(corrupt · n)`
/// colluders wherever the server places them (it draws the graph seed, so
/// placement is its choice): `t >= c + 2`, so the colluders' shares, with
/// the target's own, never reach `t` and never make up the `t - 1`
/// neighbours a client needs to mask; and a client reveals only after a
/// quorum `floor((n + c) / 2) + 1` signed its survivor set, so every
/// client that reveals was shown the same set and no honest holder ever
/// reveals the secret that the others were not asked for. `2t > k + 1` is
/// kept as a second line: without the quorum check it alone stops honest
/// holders (not colluders) from being split in two groups of `t`.
///
/// **Correctness is probabilistic.** The returned `k` is the smallest even
/// degree (or `n - 1`, the complete graph, if that is smaller or nothing
/// smaller works) whose smallest valid `t` keeps, with a neighbourhood's
/// survivors taken as `Binomial(k + 1, 1 - dropout)` and by a union bound
/// over all `n` clients, `n · P[survivors < t] + P[Bin(n, 1 - dropout) <
/// quorum] <= 2^-20`. When no degree meets it (few clients, many
/// dropouts), it returns the complete graph with the smallest valid `t`;
/// the bound is reported either way.
///
/// # Errors
/// [`Error::InvalidConfig`] if `n < 2`, the rates are not finite numbers in
/// `[0, 1)` with `dropout + corrupt < 1`, or `c + 2 > n` (no threshold can
/// exceed the colluders by two).
pub fn recommend_parameters(n: usize, dropout: f64, corrupt: f64) -> Result<Recommendation> {
    let c = checked_colluders(n, dropout, corrupt)?;
    let n_f = n as f64;
    let quorum = quorum_of(n, c);
    // Fewer than the quorum surviving to sign, smallest terms first.
    let quorum_fail: f64 = binomial_pmf(n, 1.0 - dropout)
        .iter()
        .take(quorum)
        .rev()
        .sum();
    let fail_budget = 2_f64.powi(-20);
    let complete = n.saturating_sub(1);
    let candidates = (2..complete)
        .filter(|k| k % 2 == 0)
        .chain(core::iter::once(complete));
    let as_u32 = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    for k in candidates {
        let holders = k.saturating_add(1);
        let t = (holders / 2).saturating_add(1).max(c.saturating_add(2));
        if t > holders {
            continue;
        }
        let below: f64 = binomial_pmf(holders, 1.0 - dropout)
            .iter()
            .take(t)
            .rev()
            .sum();
        let rec = Recommendation {
            degree: as_u32(k),
            threshold: as_u32(t),
            max_corrupt: as_u32(c),
            quorum: as_u32(quorum),
            complete: k == complete,
            failure_probability: (n_f * below + quorum_fail).min(1.0),
        };
        // The complete graph is the last candidate: the most robust choice
        // when no degree meets the failure bound.
        if rec.failure_probability <= fail_budget || rec.complete {
            return Ok(rec);
        }
    }
    Err(Error::Internal("the complete graph is always a candidate"))
}

/// The complete graph (classic SecAgg) for `n` participants: `k = n - 1`,
/// `c = ceil(corrupt · n)` and the threshold asked for, raised to the
/// smallest valid one (`2t > n`, `t >= c + 2`) and capped at `n`; the
/// failure bound at `dropout` is computed as in [`recommend_parameters`].
///
/// # Errors
/// As [`recommend_parameters`].
pub fn complete_graph_parameters(
    n: usize,
    threshold: u32,
    dropout: f64,
    corrupt: f64,
) -> Result<Recommendation> {
    let c = checked_colluders(n, dropout, corrupt)?;
    let quorum = quorum_of(n, c);
    let smallest = (n / 2).saturating_add(1).max(c.saturating_add(2));
    let t = usize::try_from(threshold)
        .unwrap_or(usize::MAX)
        .clamp(smallest, n);
    let survive = binomial_pmf(n, 1.0 - dropout);
    let below: f64 = survive.iter().take(t).rev().sum();
    let quorum_fail: f64 = survive.iter().take(quorum).rev().sum();
    let as_u32 = |x: usize| u32::try_from(x).unwrap_or(u32::MAX);
    Ok(Recommendation {
        degree: as_u32(n.saturating_sub(1)),
        threshold: as_u32(t),
        max_corrupt: as_u32(c),
        quorum: as_u32(quorum),
        complete: true,
        failure_probability: (n as f64 * below + quorum_fail).min(1.0),
    })
}

/// Checks `n` and the rates, and returns `c = ceil(corrupt · n)`.
fn checked_colluders(n: usize, dropout: f64, corrupt: f64) -> Result<usize> {
    if !(2..=MAX_PARTICIPANTS).contains(&n) {
        return Err(Error::InvalidConfig("n must be in 2..=MAX_PARTICIPANTS"));
    }
    let valid = |p: f64| p.is_finite() && (0.0..1.0).contains(&p);
    if !valid(dropout) || !valid(corrupt) || dropout + corrupt >= 1.0 {
        return Err(Error::InvalidConfig(
            "dropout and corrupt rates must be in [0, 1) with a sum below 1",
        ));
    }
    let c = colluders(n, corrupt);
    if c.saturating_add(2) > n {
        return Err(Error::InvalidConfig(
            "no threshold exceeds the colluders by two at this corrupt rate: lower the corrupt rate",
        ));
    }
    Ok(c)
}

/// `floor((n + c) / 2) + 1`, the consistency quorum (SPEC.md §9.1).
fn quorum_of(n: usize, c: usize) -> usize {
    (n.saturating_add(c) / 2).saturating_add(1)
}

/// `ceil(corrupt · n)`, the colluders a round of `n` withstands at that rate.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "the value is checked finite and in [0, n] first"
)]
pub(crate) fn colluders(n: usize, corrupt: f64) -> usize {
    let c = (corrupt * n as f64).ceil();
    if c.is_finite() && c > 0.0 && c <= n as f64 {
        c as usize
    } else if c > n as f64 {
        n
    } else {
        0
    }
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
#[allow(
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "test arithmetic on small, known values"
)]
mod tests {
    use super::*;

    fn config(n: u32, k: u32, t: u32) -> Result<RoundConfig> {
        config_c(n, k, t, 0)
    }

    fn config_c(n: u32, k: u32, t: u32, c: u32) -> Result<RoundConfig> {
        RoundConfig::new(
            1,
            (0..n).collect(),
            10,
            RingBits::new(16).unwrap(),
            t,
            k,
            c,
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
        config_c(10, 4, 5, 3).unwrap();
        config_c(10, 9, 9, 7).unwrap();
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
        assert!(config_c(10, 4, 3, 2).is_err(), "t < c + 2");
        assert!(config_c(10, 9, 9, 8).is_err(), "t < c + 2, complete graph");
        assert!(config_c(10, 9, 10, 9).is_err(), "c > n - 2");
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
        c.phase_timeout_ms = u32::MAX;
        assert!(c.validate().is_err(), "a phase timeout above one day");
        c.phase_timeout_ms = MAX_PHASE_TIMEOUT_MS;
        c.validate().unwrap();
    }

    #[test]
    fn quorum() {
        let c = config_c(10, 4, 5, 3).unwrap();
        // floor((10 + 3) / 2) + 1
        assert_eq!(c.quorum(), 7);
        // Two quorums of 7 among 10 share 4 participants: more than the 3
        // colluders, so at least one honest one.
        assert!(2 * c.quorum() - c.n() > c.c());
        assert_eq!(config(10, 4, 3).unwrap().quorum(), 6);
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

    /// The failure bound of `(n, k, t, quorum)` at `dropout`, computed
    /// independently of `recommend_parameters`.
    fn failure(n: usize, k: usize, t: usize, quorum: usize, dropout: f64) -> f64 {
        let below: f64 = binomial_pmf(k + 1, 1.0 - dropout)[..t].iter().sum();
        let quorum_fail: f64 = binomial_pmf(n, 1.0 - dropout)[..quorum].iter().sum();
        n as f64 * below + quorum_fail
    }

    #[test]
    fn recommendations_withstand_their_colluders_and_are_the_smallest() {
        for (n, dropout, corrupt) in [
            (100_usize, 0.1, 0.05),
            (1000, 0.1, 0.05),
            (10_000, 0.1, 0.05),
            (1000, 0.33, 0.05),
            (200, 0.1, 0.0),
        ] {
            let r = recommend_parameters(n, dropout, corrupt).unwrap();
            let (k, t, c) = (
                r.degree as usize,
                r.threshold as usize,
                r.max_corrupt as usize,
            );
            assert_eq!(c, (corrupt * n as f64).ceil() as usize);
            assert_eq!(r.quorum as usize, (n + c) / 2 + 1);
            // A valid config: every client would accept it.
            config_c(n as u32, r.degree, r.threshold, r.max_corrupt).unwrap();
            assert!(t >= c + 2 && 2 * t > k + 1 && t <= k + 1, "{r:?}");
            let f = failure(n, k, t, r.quorum as usize, dropout);
            assert!(f <= 2_f64.powi(-20), "{n}: {r:?}");
            assert!(
                (r.failure_probability - f).abs() <= 1e-3 * f.max(1e-300),
                "{r:?} {f}"
            );
            // The next smaller even degree, with its smallest valid t,
            // misses the bound (or has no valid t).
            if k >= 4 && !r.complete {
                let k2 = k - 2;
                let t2 = (k2 / 2 + 1).max(c + 2); // floor((k2 + 1) / 2) + 1, k2 even
                assert!(
                    t2 > k2 + 1 || failure(n, k2, t2, r.quorum as usize, dropout) > 2_f64.powi(-20),
                    "{n}: degree {k2} would do"
                );
            }
        }
    }

    #[test]
    fn small_cohorts_get_the_complete_graph_and_the_bound_it_reaches() {
        // Ten clients at 10 % dropout cannot reach 2^-20: complete graph,
        // smallest valid threshold, and the bound it does reach.
        let small = recommend_parameters(10, 0.1, 0.0).unwrap();
        assert!(small.complete && small.degree == 9 && small.threshold == 6);
        assert!(small.failure_probability > 2_f64.powi(-20));
        // Three sites, one of which may collude: every share is needed.
        let sites = recommend_parameters(3, 0.0, 0.05).unwrap();
        assert_eq!(
            (
                sites.degree,
                sites.threshold,
                sites.max_corrupt,
                sites.quorum
            ),
            (2, 3, 1, 3)
        );
    }

    #[test]
    fn the_complete_graph_raises_a_threshold_that_is_too_low() {
        // Asked for t = 2 with 10 clients and 20 % colluders (c = 2): the
        // smallest valid threshold is max(10/2 + 1, c + 2) = 6.
        let r = complete_graph_parameters(10, 2, 0.1, 0.2).unwrap();
        assert_eq!(
            (r.degree, r.threshold, r.max_corrupt, r.quorum),
            (9, 6, 2, 7)
        );
        config_c(10, r.degree, r.threshold, r.max_corrupt).unwrap();
        // A threshold above n is capped.
        assert_eq!(
            complete_graph_parameters(10, 99, 0.1, 0.2)
                .unwrap()
                .threshold,
            10
        );
        assert_eq!(
            complete_graph_parameters(10, 8, 0.1, 0.2)
                .unwrap()
                .threshold,
            8
        );
        assert!(complete_graph_parameters(10, 8, 0.1, 0.95).is_err());
    }

    #[test]
    fn recommendation_refuses_bad_rates() {
        assert!(recommend_parameters(1, 0.1, 0.1).is_err());
        assert!(recommend_parameters(100, f64::NAN, 0.1).is_err());
        assert!(recommend_parameters(100, 0.6, 0.5).is_err());
        assert!(
            recommend_parameters(20, 0.0, 0.95).is_err(),
            "19 colluders of 20: no t >= c + 2"
        );
        assert!(
            recommend_parameters(2, 0.0, 0.05).is_err(),
            "one colluder of two"
        );
        assert!(recommend_parameters(100, -0.1, 0.0).is_err());
    }
}
