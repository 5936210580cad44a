//! What every round of a deployment does: the round plan, its SecAgg and
//! privacy parts, and the one check of them all.
//!
//! The privacy numbers (each client's noise, what a round spends, the ring
//! width) are veil-dp's [`ReleasePlan`]; this module only says which of the
//! plan's fields it is made of. A cohort's SecAgg parameters are chosen in
//! one place, [`SecAggPlan::parameters`].

use std::time::Duration;

use veil_dp::ledger::RoundSpend;
use veil_dp::plan::{NoiseBudget, ReleasePlan};
use veil_secagg::messages::{
    EVALUATION_CLIP_NORM, Purpose, TrainingSpec, evaluation_len, statistics_len,
};

use crate::error::{Error, Result};

/// How secure aggregation is parameterised for a cohort of `n`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SecAggPlan {
    /// The expected fraction of a cohort that drops out.
    pub expected_dropout: f64,
    /// The tolerated fraction of corrupt clients.
    pub corrupt_fraction: f64,
    /// Use the complete graph (classic SecAgg) with this threshold instead
    /// of the recommended SecAgg+ parameters; capped at the cohort size.
    pub complete_graph_threshold: Option<u32>,
}

impl SecAggPlan {
    /// The SecAgg parameters of a cohort of `n` (SPEC.md §9.3): the
    /// recommendation for the expected dropout and corrupt fraction, or the
    /// complete graph with the configured threshold raised to the smallest
    /// valid one. The one place a round's `(k, t, c)` is chosen.
    ///
    /// # Errors
    /// [`veil_secagg::Error::InvalidConfig`] if no parameters fit `n` at the
    /// corrupt fraction.
    pub fn parameters(&self, n: usize) -> veil_secagg::Result<veil_secagg::Recommendation> {
        match self.complete_graph_threshold {
            Some(t) => veil_secagg::complete_graph_parameters(
                n,
                t,
                self.expected_dropout,
                self.corrupt_fraction,
            ),
            None => {
                veil_secagg::recommend_parameters(n, self.expected_dropout, self.corrupt_fraction)
            }
        }
    }
}

/// Central privacy settings: distributed discrete-Gaussian noise sized so
/// that any released sum of at least `min_clients` contributions carries
/// noise of standard deviation `noise_multiplier · clip_norm` (veil-dp
/// [`ReleasePlan`]); calibrate `noise_multiplier` with
/// `veil privacy calibrate --min-survivors --dimension --scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrivacyPlan {
    /// The noise multiplier of the released sum.
    pub noise_multiplier: f64,
    /// `δ` of the ledger.
    pub delta: f64,
    /// The total `ε` the deployment may spend.
    pub budget: f64,
}

/// Secure federated evaluation: after every `every`-th training round (and
/// after the last), a round in which each site evaluates the global model
/// on its held-out rows (the training spec's `holdout`) and the server
/// learns only the sums (SPEC.md §10.14). With privacy on, each evaluation
/// is a release of its own, noised at the plan's noise multiplier and
/// accounted in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvaluationPlan {
    /// Evaluate after every `every`-th training round (`>= 1`).
    pub every: u64,
    /// The held-out rows a site counts at full weight; the noise on a
    /// count is `noise_multiplier · 2 · row_cap` (standard deviation).
    pub row_cap: u32,
}

/// The statistics round: before the first training round, each site sums
/// its training rows' per-feature values and squares (each clipped to its
/// feature's bound) and the server learns only the sums (SPEC.md §10.15),
/// from which every site's standardisation follows. With privacy on it is a
/// release of its own, accounted in the ledger; a failed statistics round
/// is retried before any training.
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticsPlan {
    /// The rows a site counts at full weight.
    pub row_cap: u32,
    /// Per feature, the bound its values are clipped to (finite, positive).
    pub bounds: Vec<f32>,
}

/// The scale of a statistics round of up to `max_clients` inputs: as fine
/// as the ring allows (2^52 quanta per unit of input at most, and the sum
/// of `max_clients` inputs of norm 2 below 2^60), so that a feature far
/// below its bound keeps its variance: the variance is a difference of two
/// sums.
fn statistics_scale(max_clients: usize) -> f64 {
    let ring = 2_f64.powi(60) / (2.0 * (max_clients.max(1) as f64));
    2_f64.powi(52).min(2_f64.powf(ring.log2().floor()))
}

/// The largest discrete-Gaussian `σ` per client a summary round's scale may
/// lead to (veil-dp samples up to 10^6); with noise, the scale is lowered
/// to it, and the noise, not the rounding, sets the precision.
const SUMMARY_SIGMA: f64 = 1e5;

/// The scale of an evaluation round: 256 quanta per counted row, so counts
/// are exact and a row's loss (capped at 8) is resolved to 1/32 nat.
fn evaluation_scale(row_cap: u32) -> f64 {
    256.0 * f64::from(row_cap)
}

/// What each round does.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundPlan {
    /// The model dimension `d`.
    pub dimension: u32,
    /// Training rounds to release before the server stops; 0 for no limit.
    pub rounds: u64,
    /// The Poisson sampling rate `q` of clients from the pool.
    pub sampling_rate: f64,
    /// The smallest cohort a round starts with, and (with privacy) the
    /// fewest contributions a released sum may hold.
    pub min_clients: usize,
    /// The largest cohort; a larger sample is cut down at random.
    pub max_clients: usize,
    /// How long to wait, once `min_clients` are connected, for more to join
    /// before a round starts (a round starts at once when every roster
    /// client is connected).
    pub start_delay: Duration,
    /// The protocol's phase deadline.
    pub phase_timeout: Duration,
    /// Secure-aggregation parameters.
    pub secagg: SecAggPlan,
    /// The L2 clipping norm of an update.
    pub clip_norm: f64,
    /// The quantisation scale.
    pub scale: f64,
    /// Distributed DP; `None` releases sums without noise.
    pub privacy: Option<PrivacyPlan>,
    /// Keep every released sum under `sums/` (for audits and tests).
    pub keep_sums: bool,
    /// What each site trains, sent in every task; `None` for sources that
    /// make their update up themselves (synthetic vectors, tests).
    pub training: Option<TrainingSpec>,
    /// Secure evaluation rounds; needs a training spec with a holdout.
    pub evaluation: Option<EvaluationPlan>,
    /// A statistics round before training, whose result is the training
    /// spec's standardisation; needs a training spec without one.
    pub statistics: Option<StatisticsPlan>,
}

/// The longest phase timeout a plan may set (the protocol's, SPEC.md §9.1).
const MAX_PHASE_TIMEOUT: Duration = Duration::from_secs(86_400);

impl RoundPlan {
    /// The releases a run of this plan makes, each of which the ledger
    /// accounts: its training rounds, a secure evaluation after every
    /// `every`-th and after the last, and the statistics round (`None`
    /// for a plan without a round limit). No summary release spends more
    /// than a training round, so calibrating for this many training
    /// rounds bounds the run.
    #[must_use]
    pub fn releases(&self) -> Option<u64> {
        if self.rounds == 0 {
            return None;
        }
        let evaluations = self.evaluation.map_or(0, |e| {
            self.rounds.checked_div(e.every).map_or(0, |n| {
                n.saturating_add(u64::from(!self.rounds.is_multiple_of(e.every)))
            })
        });
        Some(
            self.rounds
                .saturating_add(evaluations)
                .saturating_add(u64::from(self.statistics.is_some())),
        )
    }

    /// The smallest noise multiplier (veil-dp's calibration of the
    /// distributed discrete Gaussian: `min_clients` shares, the model's
    /// dimension, `clip_norm · scale` quanta) whose [`Self::releases`]
    /// spend at most `epsilon` at `delta`.
    ///
    /// # Errors
    /// [`Error::Plan`] naming `privacy.epsilon` for a plan without a round
    /// limit, or when veil-dp refuses or cannot reach the target.
    pub fn calibrate(&self, epsilon: f64, delta: f64) -> Result<f64> {
        let releases = self.releases().ok_or_else(|| {
            Error::plan(
                "privacy.epsilon",
                "a target epsilon needs a number of rounds to spread it over",
            )
        })?;
        veil_dp::distributed::noise_multiplier(
            epsilon,
            delta,
            releases,
            &veil_dp::distributed::Deployment {
                clients: self.min_clients as u64,
                dimension: u64::from(self.dimension),
                scaled_clip: self.clip_norm * self.scale,
            },
        )
        .map_err(|e| Error::plan("privacy.epsilon", e.to_string()))
    }

    /// The privacy side of the plan, for veil-dp.
    #[must_use]
    pub fn release_plan(&self) -> ReleasePlan {
        ReleasePlan {
            clip_norm: self.clip_norm,
            scale: self.scale,
            dimension: u64::from(self.dimension),
            min_contributions: self.min_clients as u64,
            max_contributions: self.max_clients as u64,
            sampling_rate: self.sampling_rate,
            noise: self.privacy.map(|p| NoiseBudget {
                noise_multiplier: p.noise_multiplier,
                delta: p.delta,
                budget: p.budget,
            }),
        }
    }

    /// The privacy side of a round of `purpose`: a training round's is
    /// [`Self::release_plan`]; an evaluation's sums inputs of norm at most
    /// 2 ([`EVALUATION_CLIP_NORM`]) of [`evaluation_len`] values at 256
    /// quanta per row, noised at the same noise multiplier, so it spends
    /// what a training round of its dimension spends.
    ///
    /// A statistics round likewise sums inputs of norm at most 2 of
    /// `1 + 2·features` values, at up to 2^52 quanta per unit. With noise, both
    /// scales are lowered so that each client's `σ` stays at 10^5 quanta.
    #[must_use]
    pub fn release_plan_for(&self, purpose: &Purpose) -> ReleasePlan {
        let train = self.release_plan();
        match purpose {
            Purpose::Evaluate { row_cap } => ReleasePlan {
                clip_norm: EVALUATION_CLIP_NORM,
                scale: self.summary_scale(evaluation_scale(*row_cap)),
                dimension: self
                    .training
                    .as_ref()
                    .map_or(0, |t| evaluation_len(t.classes.len()) as u64),
                ..train
            },
            Purpose::Statistics { bounds, .. } => ReleasePlan {
                clip_norm: EVALUATION_CLIP_NORM,
                scale: self.summary_scale(statistics_scale(self.max_clients)),
                dimension: statistics_len(bounds.len()) as u64,
                ..train
            },
            _ => train,
        }
    }

    /// A summary round's scale: `nominal`, or with noise at most what keeps
    /// each client's `σ` at [`SUMMARY_SIGMA`].
    fn summary_scale(&self, nominal: f64) -> f64 {
        match self.privacy {
            Some(p) => nominal.min(
                SUMMARY_SIGMA * (self.min_clients.max(1) as f64).sqrt()
                    / (p.noise_multiplier * EVALUATION_CLIP_NORM),
            ),
            None => nominal,
        }
    }

    /// The dimension `d` of a round of `purpose`.
    #[must_use]
    pub fn dimension_for(&self, purpose: &Purpose) -> u32 {
        u32::try_from(self.release_plan_for(purpose).dimension).unwrap_or(u32::MAX)
    }

    /// Per-client noise variance in quantised units (0 without privacy).
    #[must_use]
    pub fn noise_variance(&self) -> f64 {
        self.release_plan().client_variance()
    }

    /// What a released round of `participants` contributions spends
    /// (`None` without privacy): see [`ReleasePlan::spend`].
    #[must_use]
    pub fn spend(&self, round: u64, participants: usize) -> Option<RoundSpend> {
        self.release_plan().spend(round, participants as u64)
    }

    /// The ring width: wide enough that a sum of `max_clients`
    /// contributions does not wrap ([`ReleasePlan::ring_bits`]).
    ///
    /// # Errors
    /// [`Error::Plan`] (`scale`) if no width up to 64 bits is enough.
    pub fn ring_bits(&self) -> Result<u32> {
        self.ring_bits_for(&Purpose::Train)
    }

    /// The ring width of a round of `purpose`.
    ///
    /// # Errors
    /// As [`Self::ring_bits`].
    pub fn ring_bits_for(&self, purpose: &Purpose) -> Result<u32> {
        self.release_plan_for(purpose)
            .ring_bits()
            .map_err(|e| Error::plan("scale", e.to_string()))
    }

    /// The evaluation purpose of this plan, if it evaluates.
    #[must_use]
    pub fn evaluation_purpose(&self) -> Option<Purpose> {
        self.evaluation
            .map(|e| Purpose::Evaluate { row_cap: e.row_cap })
    }

    /// The statistics purpose of this plan, if it has a statistics round.
    #[must_use]
    pub fn statistics_purpose(&self) -> Option<Purpose> {
        self.statistics.as_ref().map(|s| Purpose::Statistics {
            row_cap: s.row_cap,
            bounds: s.bounds.clone(),
        })
    }

    /// Checks a summary round's privacy and ring (`field` names it).
    fn check_summary(&self, purpose: &Purpose, field: &'static str) -> Result<()> {
        let plan = self.release_plan_for(purpose);
        if let Some(spend) = plan.spend(0, self.min_clients as u64) {
            spend
                .validate()
                .map_err(|e| Error::plan(field, e.to_string()))?;
        }
        plan.ring_bits()
            .map(|_| ())
            .map_err(|e| Error::plan(field, e.to_string()))
    }

    /// Checks every rule of the plan, naming the field at fault: the one
    /// check, which `veil server`, `veil simulate` and the coordinator
    /// all rely on.
    ///
    /// # Errors
    /// [`Error::Plan`] naming the first field at fault (`privacy` when the
    /// accountant cannot cover the noise, `secagg` when no parameters fit a
    /// cohort size).
    pub fn check(&self) -> Result<()> {
        let bad = |field, problem: &str| Err(Error::plan(field, problem));
        if self.dimension == 0 || self.dimension > veil_secagg::config::MAX_DIMENSION {
            return bad("dimension", "must be in 1..=2^26");
        }
        if !(self.sampling_rate > 0.0 && self.sampling_rate <= 1.0) {
            return bad("sampling_rate", "must be in (0, 1]");
        }
        if self.min_clients < 2 {
            return bad("min_clients", "must be at least 2");
        }
        if self.max_clients < self.min_clients {
            return bad("max_clients", "must be at least min_clients");
        }
        if !(self.clip_norm.is_finite() && self.clip_norm > 0.0) {
            return bad("clip_norm", "must be finite and positive");
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return bad("scale", "must be finite and positive");
        }
        if self.phase_timeout.is_zero() || self.phase_timeout > MAX_PHASE_TIMEOUT {
            return bad("phase_timeout", "must be in (0, 1 day]");
        }
        if let Some(p) = &self.privacy {
            if !(p.noise_multiplier.is_finite() && p.noise_multiplier > 0.0) {
                return bad("privacy.noise_multiplier", "must be finite and positive");
            }
            if !(p.delta > 0.0 && p.delta < 1.0) {
                return bad("privacy.delta", "must be in (0, 1)");
            }
            if !(p.budget.is_finite() && p.budget > 0.0) {
                return bad("privacy.budget", "must be finite and positive");
            }
            // The ledger's accountant must cover the noise each client adds.
            if let Some(spend) = self.spend(0, self.min_clients) {
                spend
                    .validate()
                    .map_err(|e| Error::plan("privacy", e.to_string()))?;
            }
        }
        if let Some(spec) = &self.training {
            spec.validate().map_err(|e| Error::plan("task", e))?;
        }
        if let Some(e) = &self.evaluation {
            if e.every == 0 {
                return bad("evaluation.every", "must be at least 1");
            }
            if e.row_cap == 0 {
                return bad("evaluation.row_cap", "must be at least 1");
            }
            if self.training.as_ref().is_none_or(|t| t.holdout <= 0.0) {
                return bad(
                    "evaluation",
                    "needs a task whose sites hold rows out (task.holdout > 0)",
                );
            }
            self.check_summary(
                &Purpose::Evaluate { row_cap: e.row_cap },
                "evaluation.row_cap",
            )?;
        }
        if let Some(st) = &self.statistics {
            let Some(t) = &self.training else {
                return bad("statistics", "needs a task");
            };
            if t.standardization.is_some() {
                return bad(
                    "statistics",
                    "the task sets its standardisation (task.mean, task.std): drop it, or the statistics round",
                );
            }
            if st.row_cap == 0 {
                return bad("statistics.row_cap", "must be at least 1");
            }
            if st.bounds.len() != t.columns()
                || !st.bounds.iter().all(|b| b.is_finite() && *b > 0.0)
            {
                return bad(
                    "statistics.bounds",
                    "one finite, positive bound per feature of the task (and the label, for a regression)",
                );
            }
            if let Some(p) = self.statistics_purpose() {
                self.check_summary(&p, "statistics.row_cap")?;
            }
        }
        for n in [self.min_clients, self.max_clients] {
            if let Err(e) = self.secagg.parameters(n) {
                return Err(Error::plan(
                    "secagg",
                    format!(
                        "no parameters for a cohort of {n} ({e}); lower secagg.corrupt_fraction or raise min_clients"
                    ),
                ));
            }
        }
        self.ring_bits().map(|_| ())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests {
    use super::*;

    fn plan(privacy: Option<PrivacyPlan>, scale: f64) -> RoundPlan {
        RoundPlan {
            dimension: 1000,
            rounds: 3,
            sampling_rate: 1.0,
            min_clients: 4,
            max_clients: 10,
            start_delay: Duration::from_secs(1),
            phase_timeout: Duration::from_secs(5),
            secagg: SecAggPlan {
                expected_dropout: 0.1,
                corrupt_fraction: 0.05,
                complete_graph_threshold: Some(3),
            },
            clip_norm: 1.0,
            scale,
            privacy,
            keep_sums: false,
            training: None,
            evaluation: None,
            statistics: None,
        }
    }

    const PRIVACY: PrivacyPlan = PrivacyPlan {
        noise_multiplier: 1.0,
        delta: 1e-5,
        budget: 10.0,
    };

    #[test]
    fn a_target_epsilon_is_calibrated_over_every_release_and_the_ledger_stays_within_it() {
        let mut p = plan(None, 1024.0);
        p.rounds = 10;
        p.evaluation = Some(EvaluationPlan {
            every: 4,
            row_cap: 100,
        });
        // Training rounds 1..10, evaluations after 4, 8 and 10.
        assert_eq!(p.releases(), Some(13));
        let z = p.calibrate(3.0, 1e-5).unwrap();
        p.privacy = Some(PrivacyPlan {
            noise_multiplier: z,
            delta: 1e-5,
            budget: 3.0,
        });
        // Thirteen training-round releases spend at most the target, and
        // nearly all of it.
        let mut ledger = veil_dp::ledger::Ledger::open(&[], 3.0, 1e-5).unwrap();
        for round in 1..=13 {
            ledger
                .record_round(&p.spend(round, p.min_clients).unwrap())
                .unwrap();
        }
        let spent = ledger.summary().epsilon;
        assert!((0.995 * 3.0..=3.0).contains(&spent), "{spent}");
        // A statistics round is one release more; no round limit, none.
        p.statistics = Some(StatisticsPlan {
            row_cap: 10,
            bounds: vec![1.0],
        });
        assert_eq!(p.releases(), Some(14));
        p.rounds = 0;
        assert_eq!(p.releases(), None);
        assert!(matches!(
            p.calibrate(3.0, 1e-5),
            Err(Error::Plan {
                field: "privacy.epsilon",
                ..
            })
        ));
    }

    #[test]
    fn privacy_the_accountant_cannot_cover_is_refused_at_start() {
        plan(Some(PRIVACY), 1024.0).check().unwrap();
        plan(None, 0.5).check().unwrap();
        // σ per client = 1·1·0.5/√4 = 0.25 quanta: below KLS21's 1/2.
        let err = plan(Some(PRIVACY), 0.5).check().unwrap_err().to_string();
        assert!(
            err.contains("privacy") && err.contains("client-sigma"),
            "{err}"
        );
    }

    #[test]
    fn each_refusal_names_its_field() {
        type Spoil = fn(&mut RoundPlan);
        let cases: [(Spoil, &str); 9] = [
            (|p| p.dimension = 0, "dimension"),
            (|p| p.sampling_rate = 0.0, "sampling_rate"),
            (|p| p.min_clients = 1, "min_clients"),
            (|p| p.max_clients = 3, "max_clients"),
            (|p| p.clip_norm = f64::NAN, "clip_norm"),
            (|p| p.phase_timeout = Duration::ZERO, "phase_timeout"),
            (
                |p| {
                    p.privacy = Some(PrivacyPlan {
                        delta: 1.0,
                        ..PRIVACY
                    });
                },
                "privacy.delta",
            ),
            (|p| p.secagg.corrupt_fraction = 0.9, "secagg"),
            (|p| p.scale = 1e30, "scale"),
        ];
        for (spoil, field) in cases {
            let mut p = plan(None, 1024.0);
            spoil(&mut p);
            match p.check() {
                Err(Error::Plan { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_round_spends_the_threshold_s_shares_whatever_the_sum_holds() {
        let p = plan(
            Some(PrivacyPlan {
                noise_multiplier: 2.0,
                ..PRIVACY
            }),
            1024.0,
        );
        let (few, many) = (p.spend(1, 4).unwrap(), p.spend(1, 10).unwrap());
        assert_eq!((few.participants, many.participants), (4, 10));
        // Both credit min_clients = 4 shares: the same noise multiplier, 2.
        assert!((few.noise_multiplier - 2.0).abs() < 1e-12);
        assert_eq!(many.distributed.map(|d| d.shares), Some(4));
        assert!(plan(None, 1024.0).spend(1, 4).is_none());
    }

    #[test]
    fn an_evaluation_needs_held_out_rows_and_a_cap() {
        let spec = TrainingSpec {
            architecture: "logistic".into(),
            features: vec!["x".into()],
            classes: vec!["no".into(), "yes".into()],
            optimizer: veil_secagg::messages::LocalOptimizer::Sgd,
            epochs: 1,
            batch_size: 8,
            learning_rate: 0.1,
            holdout: 0.2,
            standardization: None,
        };
        let mut p = plan(Some(PRIVACY), 1024.0);
        p.training = Some(spec.clone());
        p.evaluation = Some(EvaluationPlan {
            every: 1,
            row_cap: 500,
        });
        p.check().unwrap();
        let eval = p.release_plan_for(&p.evaluation_purpose().unwrap());
        assert_eq!((eval.clip_norm, eval.dimension), (2.0, 43));
        // The same noise multiplier as a training round.
        let train = p.release_plan();
        assert!(
            (eval.client_sigma() / (eval.clip_norm * eval.scale)
                - train.client_sigma() / (train.clip_norm * train.scale))
                .abs()
                < 1e-12
        );
        let field = |p: &RoundPlan| match p.check() {
            Err(Error::Plan { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut q = p.clone();
        q.evaluation = Some(EvaluationPlan {
            every: 0,
            row_cap: 500,
        });
        assert_eq!(field(&q), "evaluation.every");
        let mut q = p;
        q.training = Some(TrainingSpec {
            holdout: 0.0,
            ..spec
        });
        assert_eq!(field(&q), "evaluation");
        q.training = None;
        assert_eq!(field(&q), "evaluation");
    }
}
