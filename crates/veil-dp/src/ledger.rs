//! The privacy ledger: an append-only, human-readable record of every
//! released round (JSON lines).
//!
//! Each line records one round: its id, the mechanism and its parameters
//! (`poisson_subsampled_gaussian`: central Gaussian noise, accounted with
//! amplification by sampling; `distributed_discrete_gaussian`: one
//! discrete-Gaussian share per participant, with `client_sigma`, `scale` and
//! `dimension` and `shares`, accounted by [`crate::distributed`]), `steps`
//! when a round made more than one release (a DP-SGD site's local steps,
//! each a subsampled Gaussian; omitted for 1), the participants, `δ`, the
//! budget, and the **cumulative** `ε` after the
//! round, plus `prev`, the SHA-256 of the previous line's bytes (64 zeros for
//! the first). [`Ledger::record_round`] computes the round's cost, refuses a
//! round that would exceed the budget, and returns the line to append. The
//! ledger performs no I/O: its owner (the server's state directory) appends
//! the line, flushes it and `fsync`s the file, and releases the round's
//! result only after that, so no round is ever released unrecorded.
//!
//! [`replay`] rebuilds the spend from the file's bytes alone and recomputes every
//! line's cumulative `ε`; it refuses a ledger that is truncated mid-line,
//! unparsable, out of order, re-chained or edited (a changed parameter
//! changes the recomputed `ε`; a changed line breaks the next `prev`). A
//! ledger is never used in part: any defect is an error naming the line.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::distributed::DistributedDiscreteGaussian;
use crate::error::{Error, Result, check_positive, check_range, check_sampling_rate};
use crate::rdp::{Conversion, RdpAccountant};

/// The format version of a ledger line.
pub const LEDGER_VERSION: u32 = 1;

/// What one released round spent.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RoundSpend {
    /// The round id; strictly increasing along the ledger.
    pub round: u64,
    /// Noise standard deviation of the released sum divided by the clipping
    /// norm.
    pub noise_multiplier: f64,
    /// The Poisson sampling rate of clients for the round.
    pub sampling_rate: f64,
    /// The clipping norm.
    pub clip_norm: f64,
    /// How many clients the released sum includes.
    pub participants: u64,
    /// Distributed noise: the clients' discrete-Gaussian shares (`None`
    /// for central Gaussian noise).
    pub distributed: Option<DistributedNoise>,
    /// How many releases of the mechanism the round made (1, or a DP-SGD
    /// site's local steps in a round: each a Poisson-subsampled Gaussian of
    /// the same noise and rate). Distributed rounds are one release.
    pub steps: u64,
}

/// The shape of a distributed-noise round, besides its clip norm and
/// participants.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct DistributedNoise {
    /// Each client's discrete-Gaussian `σ`, in quantised units.
    pub client_sigma: f64,
    /// The quantisation scale `γ`.
    pub scale: f64,
    /// The model dimension `d`.
    pub dimension: u64,
    /// The noise shares credited: at most the participants. Crediting the
    /// fewest a released sum may hold (the threshold `t`), not every
    /// participant, keeps the guarantee when up to `participants − shares`
    /// of them add no noise.
    pub shares: u64,
}

impl DistributedNoise {
    /// A distributed round's noise.
    #[must_use]
    pub fn new(client_sigma: f64, scale: f64, dimension: u64, shares: u64) -> Self {
        Self {
            client_sigma,
            scale,
            dimension,
            shares,
        }
    }
}

impl RoundSpend {
    /// A round's spend.
    #[must_use]
    pub fn new(
        round: u64,
        noise_multiplier: f64,
        sampling_rate: f64,
        clip_norm: f64,
        participants: u64,
    ) -> Self {
        Self {
            round,
            noise_multiplier,
            sampling_rate,
            clip_norm,
            participants,
            distributed: None,
            steps: 1,
        }
    }

    /// The same round, making `steps` releases of its central Gaussian
    /// (example-level DP-SGD: a round of local steps).
    #[must_use]
    pub fn with_steps(self, steps: u64) -> Self {
        Self { steps, ..self }
    }

    /// A round whose sum holds `participants` contributions, of whose
    /// discrete-Gaussian noise `noise.shares` are credited
    /// ([`crate::distributed`]). Its `noise_multiplier` is that of the
    /// credited noise, `√shares · σ / (clip_norm · scale)`; it is accounted
    /// without amplification by `sampling_rate`.
    #[must_use]
    pub fn distributed(
        round: u64,
        noise: DistributedNoise,
        sampling_rate: f64,
        clip_norm: f64,
        participants: u64,
    ) -> Self {
        let noise_multiplier = crate::plan::noise_multiplier_of(
            noise.client_sigma,
            clip_norm * noise.scale,
            noise.shares,
        );
        Self {
            distributed: Some(noise),
            ..Self::new(
                round,
                noise_multiplier,
                sampling_rate,
                clip_norm,
                participants,
            )
        }
    }

    /// Checks the parameters as [`Ledger::record_round`] will, without a
    /// ledger.
    ///
    /// # Errors
    /// [`Error::InvalidParameter`] naming the first bad one.
    pub fn validate(&self) -> Result<()> {
        self.compose(&mut RdpAccountant::new())
    }

    /// Adds this round to `accountant`.
    fn compose(&self, accountant: &mut RdpAccountant) -> Result<()> {
        check_positive("clip-norm", self.clip_norm)?;
        crate::calibrate::check_steps(self.steps).map_err(|_| Error::InvalidParameter {
            name: "steps",
            value: 0.0,
            expected: "a whole number >= 1",
        })?;
        match self.distributed {
            None => accountant.compose_subsampled_gaussian(
                self.noise_multiplier,
                self.sampling_rate,
                self.steps,
            ),
            Some(_) if self.steps != 1 => Err(Error::InvalidParameter {
                name: "steps",
                value: self.steps as f64,
                expected: "1 for a distributed round",
            }),
            Some(d) => {
                check_sampling_rate(self.sampling_rate)?;
                let scale = check_positive("scale", d.scale)?;
                if d.shares > self.participants {
                    return Err(Error::InvalidParameter {
                        name: "shares",
                        value: d.shares as f64,
                        expected: "at most the participants",
                    });
                }
                let m = DistributedDiscreteGaussian::new(
                    d.client_sigma,
                    d.shares,
                    d.dimension,
                    self.clip_norm * scale,
                )?;
                accountant.compose_distributed_discrete_gaussian(&m, 1);
                Ok(())
            }
        }
    }
}

/// One line of the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    v: u32,
    round: u64,
    mechanism: String,
    noise_multiplier: f64,
    sampling_rate: f64,
    clip_norm: f64,
    participants: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_sigma: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dimension: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    shares: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    steps: Option<u64>,
    delta: f64,
    budget: f64,
    epsilon: f64,
    prev: String,
}

/// Central Gaussian noise, Poisson sampling credited.
const GAUSSIAN: &str = "poisson_subsampled_gaussian";
/// Distributed discrete-Gaussian shares ([`crate::distributed`]).
const DISTRIBUTED: &str = "distributed_discrete_gaussian";

impl Line {
    /// The spend this line records, checked for a consistent shape.
    fn spend(&self) -> core::result::Result<RoundSpend, String> {
        let (round, q, c, m) = (
            self.round,
            self.sampling_rate,
            self.clip_norm,
            self.participants,
        );
        match (
            self.mechanism.as_str(),
            self.client_sigma,
            self.scale,
            self.dimension,
            self.shares,
        ) {
            (GAUSSIAN, None, None, None, None) => match self.steps {
                None => Ok(RoundSpend::new(round, self.noise_multiplier, q, c, m)),
                Some(n) if n >= 2 => {
                    Ok(RoundSpend::new(round, self.noise_multiplier, q, c, m).with_steps(n))
                }
                Some(n) => Err(format!("steps {n}: omitted for 1, else at least 2")),
            },
            (DISTRIBUTED, Some(sigma), Some(scale), Some(d), Some(shares))
                if self.steps.is_none() =>
            {
                let noise = DistributedNoise::new(sigma, scale, d, shares);
                let spend = RoundSpend::distributed(round, noise, q, c, m);
                let z = spend.noise_multiplier;
                if (z - self.noise_multiplier).abs() > EPSILON_TOLERANCE * z.abs().max(1.0) {
                    return Err(format!(
                        "recorded noise multiplier {} but the shares give {z} (edited)",
                        self.noise_multiplier
                    ));
                }
                Ok(spend)
            }
            (GAUSSIAN | DISTRIBUTED, ..) => Err(format!(
                "{} needs client_sigma, scale, dimension and shares exactly when distributed (and steps only when not)",
                self.mechanism
            )),
            (other, ..) => Err(format!("unknown mechanism {other:?}")),
        }
    }
}

/// What a ledger holds, after replay.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LedgerSummary {
    /// Rounds recorded.
    pub rounds: u64,
    /// The last round id, if any.
    pub last_round: Option<u64>,
    /// Cumulative `ε` at `δ`.
    pub epsilon: f64,
    /// `δ`.
    pub delta: f64,
    /// The budget in force.
    pub budget: f64,
    /// Each round's id and the cumulative `ε` after it.
    pub history: Vec<(u64, f64)>,
    /// Each central-Gaussian round's noise multiplier, sampling rate and
    /// steps, in order.
    pub mechanisms: Vec<(f64, f64, u64)>,
    /// Rounds with distributed discrete-Gaussian noise.
    pub distributed_rounds: u64,
    /// The SHA-256 of each line (newline excluded), in order: the last is
    /// what a state file records to make the ledger's tail
    /// tamper-evident ([`check_tail`]).
    pub line_hashes: Vec<[u8; 32]>,
}

/// How a ledger stands against the state that records its length and the
/// hash of its last line ([`check_tail`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TailCheck {
    /// The ledger ends where the state says.
    InStep,
    /// The ledger holds one line more: a release whose ledger line was
    /// synced but whose state was not (a crash between the two writes).
    /// The line stays counted: spending errs on the safe side.
    OneAhead,
}

/// Checks a replayed ledger against a state's record of it: `lines` lines,
/// the last hashing to `tail` (none for an empty ledger).
///
/// # Errors
/// [`Error::Ledger`] if the ledger is shorter than the state says (a
/// truncated tail), or its line `lines` does not hash to `tail` (a replaced
/// tail), or it runs more than one line past the state.
pub fn check_tail(
    summary: &LedgerSummary,
    lines: u64,
    tail: Option<&[u8; 32]>,
) -> Result<TailCheck> {
    let have = summary.line_hashes.len() as u64;
    let at = usize::try_from(lines).unwrap_or(usize::MAX);
    let hash_at = |n: usize| n.checked_sub(1).and_then(|i| summary.line_hashes.get(i));
    if have < lines {
        return Err(bad(
            summary.line_hashes.len(),
            format!(
                "truncated: the state records {lines} lines, the ledger has {have} (its last {} missing)",
                lines.saturating_sub(have)
            ),
        ));
    }
    if hash_at(at) != tail {
        return Err(bad(
            at,
            "this line is not the one the state recorded as the ledger's last (replaced or truncated and rewritten)",
        ));
    }
    match have.saturating_sub(lines) {
        0 => Ok(TailCheck::InStep),
        1 => Ok(TailCheck::OneAhead),
        more => Err(bad(
            summary.line_hashes.len(),
            format!(
                "{more} lines past what the state records: not written by this deployment's server"
            ),
        )),
    }
}

impl LedgerSummary {
    /// The cumulative `ε` at the ledger's `δ` by the PLD accountant
    /// (tighter than the RDP `ε` the ledger records and enforces).
    ///
    /// # Errors
    /// As [`crate::pld::PldAccountant`]; [`Error::InvalidParameter`] naming
    /// `accountant` for a ledger with distributed rounds, which PLD does not
    /// account.
    pub fn pld_epsilon(&self) -> Result<f64> {
        if self.distributed_rounds > 0 {
            return Err(Error::InvalidParameter {
                name: "accountant",
                value: self.distributed_rounds as f64,
                expected: "rdp: PLD accounts central Gaussian rounds only, and this ledger has distributed ones",
            });
        }
        let mut acc = crate::pld::PldAccountant::new();
        for &(sigma, q, steps) in &self.mechanisms {
            acc.compose_subsampled_gaussian(sigma, q, steps)?;
        }
        acc.epsilon(self.delta)
    }

    /// Counts `spend`, after which the cumulative `ε` is `eps`.
    fn add(&mut self, spend: &RoundSpend, eps: f64) {
        self.rounds = self.rounds.saturating_add(1);
        self.last_round = Some(spend.round);
        self.epsilon = eps;
        self.history.push((spend.round, eps));
        if spend.distributed.is_some() {
            self.distributed_rounds = self.distributed_rounds.saturating_add(1);
        } else {
            self.mechanisms
                .push((spend.noise_multiplier, spend.sampling_rate, spend.steps));
        }
    }

    /// The budget left (never negative).
    #[must_use]
    pub fn remaining(&self) -> f64 {
        (self.budget - self.epsilon).max(0.0)
    }
}

/// A recorded round: the cumulative `ε` and the line its file gains.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Recorded {
    /// The cumulative `ε` after the round.
    pub epsilon: f64,
    /// The ledger line, newline included, to append and sync.
    pub line: Vec<u8>,
    /// The line's SHA-256 (newline excluded): the ledger's new tail.
    pub hash: [u8; 32],
}

/// An open ledger that records rounds, in memory; its owner keeps the file.
#[derive(Debug)]
pub struct Ledger {
    accountant: RdpAccountant,
    summary: LedgerSummary,
    last_hash: String,
}

const FIRST_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Relative tolerance when comparing a recorded `ε` to its recomputation
/// (both are the same f64 computation; this absorbs JSON round-tripping).
const EPSILON_TOLERANCE: f64 = 1e-9;

fn bad(line: usize, problem: impl Into<String>) -> Error {
    Error::Ledger {
        line,
        problem: problem.into(),
    }
}

/// Replays a ledger (the bytes of a ledger file) and returns what it holds.
///
/// # Errors
/// [`Error::Ledger`] naming the first line that is truncated, unparsable,
/// out of order, wrongly chained, inconsistent in `δ` or budget, or whose
/// recorded `ε` differs from the recomputation.
pub fn replay(bytes: &[u8]) -> Result<LedgerSummary> {
    Ok(replay_text(bytes)?.1)
}

fn replay_text(bytes: &[u8]) -> Result<(RdpAccountant, LedgerSummary, String)> {
    let text = core::str::from_utf8(bytes).map_err(|_| bad(0, "not UTF-8"))?;
    let mut accountant = RdpAccountant::new();
    let mut summary: Option<LedgerSummary> = None;
    let mut prev = FIRST_PREV.to_owned();
    if !text.is_empty() && !text.ends_with('\n') {
        let n = text.lines().count();
        return Err(bad(
            n,
            "truncated: the last line has no end (a write was interrupted)",
        ));
    }
    for (i, raw) in text.lines().enumerate() {
        let n = i.saturating_add(1);
        let line: Line =
            serde_json::from_str(raw).map_err(|e| bad(n, format!("not a ledger record: {e}")))?;
        if line.v != LEDGER_VERSION {
            return Err(bad(n, format!("unknown version {}", line.v)));
        }
        let spend = line.spend().map_err(|e| bad(n, e))?;
        if line.prev != prev {
            return Err(bad(
                n,
                "chain broken: prev is not the hash of the line before (edited or reordered)",
            ));
        }
        check_range("delta", line.delta, 0.0, 1.0, true, "a number in (0, 1)")
            .map_err(|e| bad(n, e.to_string()))?;
        check_positive("budget", line.budget).map_err(|e| bad(n, e.to_string()))?;
        if let Some(s) = &summary {
            if line.delta != s.delta || line.budget != s.budget {
                return Err(bad(n, "delta or budget differs from earlier lines"));
            }
            if s.last_round.is_some_and(|r| line.round <= r) {
                return Err(bad(n, "round ids must increase"));
            }
        }
        spend
            .compose(&mut accountant)
            .map_err(|e| bad(n, e.to_string()))?;
        let (eps, _) = accountant
            .epsilon(line.delta, Conversion::Improved)
            .map_err(|e| bad(n, e.to_string()))?;
        if (eps - line.epsilon).abs() > EPSILON_TOLERANCE * eps.max(1.0) {
            return Err(bad(
                n,
                format!(
                    "recorded epsilon {} but the recorded rounds give {eps} (edited)",
                    line.epsilon
                ),
            ));
        }
        let s = summary.get_or_insert_with(|| LedgerSummary {
            rounds: 0,
            last_round: None,
            epsilon: 0.0,
            delta: line.delta,
            budget: line.budget,
            history: Vec::new(),
            mechanisms: Vec::new(),
            distributed_rounds: 0,
            line_hashes: Vec::new(),
        });
        s.add(&spend, eps);
        let hash: [u8; 32] = Sha256::digest(raw.as_bytes()).into();
        s.line_hashes.push(hash);
        prev = hex::encode(hash);
    }
    let summary = summary.ok_or_else(|| bad(0, "empty ledger"))?;
    Ok((accountant, summary, prev))
}

impl Ledger {
    /// Opens a ledger from the bytes of its file (empty for a new ledger)
    /// with budget `ε_max` at `δ`. An existing ledger is replayed in full
    /// first; its `δ` and budget must match.
    ///
    /// # Errors
    /// As [`replay`]; [`Error::InvalidParameter`] for a bad budget or `δ`;
    /// [`Error::Ledger`] if an existing ledger has another `δ` or budget.
    pub fn open(existing: &[u8], budget: f64, delta: f64) -> Result<Self> {
        let budget = check_positive("budget", budget)?;
        let delta = check_range("delta", delta, 0.0, 1.0, true, "a number in (0, 1)")?;
        if delta >= 1.0 {
            return Err(Error::InvalidParameter {
                name: "delta",
                value: delta,
                expected: "a number in (0, 1)",
            });
        }
        if !existing.is_empty() {
            let (accountant, summary, last_hash) = replay_text(existing)?;
            if summary.delta != delta || summary.budget != budget {
                return Err(bad(
                    1,
                    format!(
                        "ledger has delta {} and budget {}, not {delta} and {budget}",
                        summary.delta, summary.budget
                    ),
                ));
            }
            return Ok(Self {
                accountant,
                summary,
                last_hash,
            });
        }
        Ok(Self {
            accountant: RdpAccountant::new(),
            summary: LedgerSummary {
                rounds: 0,
                last_round: None,
                epsilon: 0.0,
                delta,
                budget,
                history: Vec::new(),
                mechanisms: Vec::new(),
                distributed_rounds: 0,
                line_hashes: Vec::new(),
            },
            last_hash: FIRST_PREV.to_owned(),
        })
    }

    /// What the ledger holds so far.
    #[must_use]
    pub fn summary(&self) -> &LedgerSummary {
        &self.summary
    }

    /// The cumulative `ε` if `spend` were recorded, without recording it.
    ///
    /// # Errors
    /// As [`RoundSpend::validate`] and [`RdpAccountant::epsilon`].
    pub fn epsilon_after(&self, spend: &RoundSpend) -> Result<f64> {
        let mut acc = self.accountant.clone();
        spend.compose(&mut acc)?;
        Ok(acc.epsilon(self.summary.delta, Conversion::Improved)?.0)
    }

    /// Records a round: checks the budget and returns the cumulative `ε`
    /// and the line to append to the ledger's file. Release the round's
    /// result only after that line is appended and synced; if that fails,
    /// this ledger is ahead of its file and must be dropped (reopen it from
    /// the file).
    ///
    /// # Errors
    /// [`Error::BudgetExceeded`] (nothing recorded) if the round would take
    /// `ε` past the budget; [`Error::InvalidParameter`] for bad parameters or
    /// a round id that does not increase.
    pub fn record_round(&mut self, spend: &RoundSpend) -> Result<Recorded> {
        if self.summary.last_round.is_some_and(|r| spend.round <= r) {
            return Err(Error::InvalidParameter {
                name: "round",
                value: spend.round as f64,
                expected: "a round id above the last recorded one",
            });
        }
        let mut acc = self.accountant.clone();
        spend.compose(&mut acc)?;
        let (eps, _) = acc.epsilon(self.summary.delta, Conversion::Improved)?;
        if eps > self.summary.budget {
            return Err(Error::BudgetExceeded {
                would_be: eps,
                budget: self.summary.budget,
            });
        }
        let line = Line {
            v: LEDGER_VERSION,
            round: spend.round,
            mechanism: if spend.distributed.is_some() {
                DISTRIBUTED
            } else {
                GAUSSIAN
            }
            .to_owned(),
            noise_multiplier: spend.noise_multiplier,
            sampling_rate: spend.sampling_rate,
            clip_norm: spend.clip_norm,
            participants: spend.participants,
            client_sigma: spend.distributed.map(|d| d.client_sigma),
            scale: spend.distributed.map(|d| d.scale),
            dimension: spend.distributed.map(|d| d.dimension),
            shares: spend.distributed.map(|d| d.shares),
            steps: (spend.steps != 1).then_some(spend.steps),
            delta: self.summary.delta,
            budget: self.summary.budget,
            epsilon: eps,
            prev: self.last_hash.clone(),
        };
        let text = serde_json::to_string(&line).map_err(|e| Error::Io(e.to_string()))?;
        self.accountant = acc;
        let hash: [u8; 32] = Sha256::digest(text.as_bytes()).into();
        self.last_hash = hex::encode(hash);
        self.summary.add(spend, eps);
        self.summary.line_hashes.push(hash);
        let mut line = text.into_bytes();
        line.push(b'\n');
        Ok(Recorded {
            epsilon: eps,
            line,
            hash,
        })
    }
}
