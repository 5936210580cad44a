//! What rounds leave behind: the counters that survive a restart, one
//! record per round (a line of the state directory's `rounds.jsonl`), and
//! the report a [`crate::ServerModel`] sees after a release.

use serde::{Deserialize, Serialize};
use veil_crypto::ParticipantId;

/// The counters that survive a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counters {
    /// Training rounds released so far; the next one is this plus one.
    pub released_rounds: u64,
    /// The next protocol round id. Every started round takes a fresh one,
    /// persisted before the round starts, so no id is used twice even
    /// across crashes.
    pub next_round_id: u64,
    /// The model dimension.
    pub dimension: u32,
    /// Lines in the privacy ledger once the last release was recorded, and
    /// the SHA-256 of its last line: with them a truncated or replaced tail
    /// of the ledger is evident (`veil privacy ledger STATE_DIR`). `None`
    /// in a state written before they were kept.
    #[serde(default)]
    pub ledger_lines: Option<u64>,
    /// See `ledger_lines`.
    #[serde(default, with = "hex32")]
    pub ledger_tail: Option<[u8; 32]>,
}

/// `Option<[u8; 32]>` as an optional hex string.
mod hex32 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&hex::encode(b)),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|h| {
                let bytes = hex::decode(&h).map_err(D::Error::custom)?;
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| D::Error::custom("a ledger tail is 32 bytes of hex"))
            })
            .transpose()
    }
}

impl Counters {
    /// The counters of a new deployment with a model of `dimension`.
    #[must_use]
    pub fn new(dimension: u32) -> Self {
        Self {
            released_rounds: 0,
            next_round_id: 1,
            dimension,
            ledger_lines: Some(0),
            ledger_tail: None,
        }
    }
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// The protocol did not complete; nothing was released.
    Aborted,
    /// The protocol completed with fewer contributions than the noise is
    /// sized for; nothing was released.
    Discarded,
    /// The mean update was applied and persisted.
    Released,
}

/// What a round summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum RoundKind {
    /// Model updates.
    Train,
    /// Evaluation counts of the global model on the sites' held-out rows.
    Evaluate,
    /// Per-feature sums of the sites' training rows.
    Statistics,
}

impl RoundKind {
    /// The kind of a round of `purpose`.
    #[must_use]
    pub fn of(purpose: &veil_secagg::messages::Purpose) -> Self {
        use veil_secagg::messages::Purpose;
        match purpose {
            Purpose::Evaluate { .. } => Self::Evaluate,
            Purpose::Statistics { .. } => Self::Statistics,
            _ => Self::Train,
        }
    }
}

/// What a released statistics round found: the rows counted and the
/// standardisation every site uses from then on (with privacy on, from
/// noised sums).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StatisticsRecord {
    /// Rows counted (at most `row_cap` per site).
    pub rows: f64,
    /// Per-feature mean.
    pub mean: Vec<f32>,
    /// Per-feature standard deviation.
    pub std: Vec<f32>,
}

/// What a released evaluation round found, from the secure sum of the
/// included sites' counts (SPEC.md §10.14; with privacy on, noised).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EvaluationRecord {
    /// Held-out rows counted (at most `row_cap` per site).
    pub examples: f64,
    /// Fraction of them classified correctly.
    pub accuracy: Option<f64>,
    /// Mean loss per row (each row's capped at 8).
    pub loss: Option<f64>,
    /// ROC-AUC from the 20-bin score histograms (binary tasks).
    pub auc: Option<f64>,
    /// A regression's R² (its `loss` is then the mean squared error in
    /// standardised label units, each row's capped at 16).
    pub r2: Option<f64>,
    /// A regression's mean squared error in the label's units.
    pub mse: Option<f64>,
    /// With privacy on, the standard deviation of the noise on each count
    /// (rows, correct, each histogram bin): `2 · z · row_cap`. Counts of
    /// that order are noise.
    pub count_noise_std: Option<f64>,
}

/// One round, as `rounds.jsonl` records it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RoundRecord {
    /// The protocol round id.
    pub round_id: u64,
    /// The training round it would release (an evaluation: the training
    /// round of the model it evaluated).
    pub training_round: u64,
    /// What it summed.
    pub kind: RoundKind,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was aborted or discarded.
    pub detail: Option<String>,
    /// The cohort.
    pub participants: Vec<ParticipantId>,
    /// The contributions in the sum (empty unless it completed).
    pub included: Vec<ParticipantId>,
    /// The round's neighbour degree `k`.
    pub degree: u32,
    /// Its threshold `t`.
    pub threshold: u32,
    /// Its ring width `b`.
    pub ring_bits: u32,
    /// Message bytes received from the participants.
    pub bytes_in: u64,
    /// Message bytes sent to them.
    pub bytes_out: u64,
    /// UDP bytes received on the participants' connections (filled in by a
    /// transport that knows them; 0 otherwise).
    pub udp_bytes_in: u64,
    /// UDP bytes sent on them.
    pub udp_bytes_out: u64,
    /// Each phase and how long it took, in milliseconds.
    pub phase_ms: Vec<(String, u64)>,
    /// From round start to its end, in milliseconds.
    pub total_ms: u64,
    /// Cumulative `ε` after the round, with privacy on and once released.
    pub epsilon: Option<f64>,
    /// An evaluation round's findings, once released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<EvaluationRecord>,
    /// A statistics round's findings, once released.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statistics: Option<StatisticsRecord>,
}

/// What a released round was, for [`crate::ServerModel::released`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RoundReport {
    /// The training round released.
    pub training_round: u64,
    /// Its protocol round id.
    pub round_id: u64,
    /// Participants the round started with.
    pub participants: usize,
    /// Contributions in the released sum.
    pub included: usize,
    /// Message bytes received from the participants.
    pub bytes_in: u64,
    /// Message bytes sent.
    pub bytes_out: u64,
    /// UDP bytes received from the participants' connections.
    pub udp_bytes_in: u64,
    /// UDP bytes sent to them.
    pub udp_bytes_out: u64,
    /// From round start to release, in milliseconds.
    pub total_ms: u64,
    /// Cumulative `ε` after the round, with privacy on.
    pub epsilon: Option<f64>,
    /// An evaluation round's findings.
    pub evaluation: Option<EvaluationRecord>,
    /// A statistics round's findings.
    pub statistics: Option<StatisticsRecord>,
}

impl From<&RoundRecord> for RoundReport {
    fn from(r: &RoundRecord) -> Self {
        Self {
            training_round: r.training_round,
            round_id: r.round_id,
            participants: r.participants.len(),
            included: r.included.len(),
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            udp_bytes_in: r.udp_bytes_in,
            udp_bytes_out: r.udp_bytes_out,
            total_ms: r.total_ms,
            epsilon: r.epsilon,
            evaluation: r.evaluation,
            statistics: r.statistics.clone(),
        }
    }
}
