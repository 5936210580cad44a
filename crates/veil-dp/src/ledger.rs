//! The privacy ledger: an append-only, human-readable record of every
//! released round (JSON lines).
//!
//! Each line records one round: its id, the mechanism and its parameters,
//! the participants, `δ`, the budget, and the **cumulative** `ε` after the
//! round, plus `prev`, the SHA-256 of the previous line's bytes (64 zeros for
//! the first). [`Ledger::record_round`] computes the round's cost, refuses a
//! round that would exceed the budget (writing nothing), appends the line,
//! flushes it and `fsync`s the file *before* returning, so a caller that
//! releases a round's result only after `Ok` never releases an unrecorded
//! round.
//!
//! [`replay`] rebuilds the spend from the file alone and recomputes every
//! line's cumulative `ε`; it refuses a ledger that is truncated mid-line,
//! unparsable, out of order, re-chained or edited (a changed parameter
//! changes the recomputed `ε`; a changed line breaks the next `prev`). A
//! ledger is never used in part: any defect is an error naming the line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result, check_positive, check_range};
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
    delta: f64,
    budget: f64,
    epsilon: f64,
    prev: String,
}

const MECHANISM: &str = "poisson_subsampled_gaussian";

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
    /// Each round's noise multiplier and sampling rate, in order.
    pub mechanisms: Vec<(f64, f64)>,
}

impl LedgerSummary {
    /// The cumulative `ε` at the ledger's `δ` by the PLD accountant
    /// (tighter than the RDP `ε` the ledger records and enforces).
    ///
    /// # Errors
    /// As [`crate::pld::PldAccountant`]; not for a ledger that replayed.
    pub fn pld_epsilon(&self) -> Result<f64> {
        let mut acc = crate::pld::PldAccountant::new();
        for &(sigma, q) in &self.mechanisms {
            acc.compose_subsampled_gaussian(sigma, q, 1)?;
        }
        acc.epsilon(self.delta)
    }

    /// The budget left (never negative).
    #[must_use]
    pub fn remaining(&self) -> f64 {
        (self.budget - self.epsilon).max(0.0)
    }
}

/// An open ledger that records rounds.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    accountant: RdpAccountant,
    summary: LedgerSummary,
    last_hash: String,
}

const FIRST_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Relative tolerance when comparing a recorded `ε` to its recomputation
/// (both are the same f64 computation; this absorbs JSON round-tripping).
const EPSILON_TOLERANCE: f64 = 1e-9;

fn io(e: &std::io::Error) -> Error {
    Error::Io(e.to_string())
}

fn bad(line: usize, problem: impl Into<String>) -> Error {
    Error::Ledger {
        line,
        problem: problem.into(),
    }
}

/// Replays the ledger at `path` and returns what it holds.
///
/// # Errors
/// [`Error::Ledger`] naming the first line that is truncated, unparsable,
/// out of order, wrongly chained, inconsistent in `δ` or budget, or whose
/// recorded `ε` differs from the recomputation; [`Error::Io`] if it cannot
/// be read.
pub fn replay(path: &Path) -> Result<LedgerSummary> {
    Ok(replay_state(path)?.1)
}

/// Replays a ledger held in memory (the bytes of a ledger file).
///
/// # Errors
/// As [`replay`], without the I/O.
pub fn replay_bytes(bytes: &[u8]) -> Result<LedgerSummary> {
    Ok(replay_text(bytes)?.1)
}

fn replay_state(path: &Path) -> Result<(RdpAccountant, LedgerSummary, String)> {
    let bytes = std::fs::read(path).map_err(|e| io(&e))?;
    replay_text(&bytes)
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
        if line.mechanism != MECHANISM {
            return Err(bad(n, format!("unknown mechanism {:?}", line.mechanism)));
        }
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
        accountant
            .compose_subsampled_gaussian(line.noise_multiplier, line.sampling_rate, 1)
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
        });
        s.rounds = s.rounds.saturating_add(1);
        s.last_round = Some(line.round);
        s.epsilon = eps;
        s.history.push((line.round, eps));
        s.mechanisms
            .push((line.noise_multiplier, line.sampling_rate));
        prev = hex::encode(Sha256::digest(raw.as_bytes()));
    }
    let summary = summary.ok_or_else(|| bad(0, "empty ledger"))?;
    Ok((accountant, summary, prev))
}

impl Ledger {
    /// Opens the ledger at `path`, creating it if it does not exist, with
    /// budget `ε_max` at `δ`. An existing ledger is replayed in full first;
    /// its `δ` and budget must match.
    ///
    /// # Errors
    /// As [`replay`]; [`Error::InvalidParameter`] for a bad budget or `δ`;
    /// [`Error::Ledger`] if an existing ledger has another `δ` or budget.
    pub fn open(path: &Path, budget: f64, delta: f64) -> Result<Self> {
        let budget = check_positive("budget", budget)?;
        let delta = check_range("delta", delta, 0.0, 1.0, true, "a number in (0, 1)")?;
        if delta >= 1.0 {
            return Err(Error::InvalidParameter {
                name: "delta",
                value: delta,
                expected: "a number in (0, 1)",
            });
        }
        let exists = path.exists() && std::fs::metadata(path).map_err(|e| io(&e))?.len() > 0;
        if exists {
            let (accountant, summary, last_hash) = replay_state(path)?;
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
                path: path.to_owned(),
                accountant,
                summary,
                last_hash,
            });
        }
        Ok(Self {
            path: path.to_owned(),
            accountant: RdpAccountant::new(),
            summary: LedgerSummary {
                rounds: 0,
                last_round: None,
                epsilon: 0.0,
                delta,
                budget,
                history: Vec::new(),
                mechanisms: Vec::new(),
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
    /// As [`RdpAccountant::compose_subsampled_gaussian`].
    pub fn epsilon_after(&self, spend: &RoundSpend) -> Result<f64> {
        let mut acc = self.accountant.clone();
        acc.compose_subsampled_gaussian(spend.noise_multiplier, spend.sampling_rate, 1)?;
        Ok(acc.epsilon(self.summary.delta, Conversion::Improved)?.0)
    }

    /// Records a round: checks the budget, appends the line, flushes and
    /// syncs it to disk. Returns the cumulative `ε`. Release the round's
    /// result only after this returns `Ok`.
    ///
    /// # Errors
    /// [`Error::BudgetExceeded`] (nothing written) if the round would take
    /// `ε` past the budget; [`Error::InvalidParameter`] for bad parameters or
    /// a round id that does not increase; [`Error::Io`] if the write or sync
    /// fails (the round must then not be released).
    pub fn record_round(&mut self, spend: &RoundSpend) -> Result<f64> {
        if self.summary.last_round.is_some_and(|r| spend.round <= r) {
            return Err(Error::InvalidParameter {
                name: "round",
                value: spend.round as f64,
                expected: "a round id above the last recorded one",
            });
        }
        check_positive("clip-norm", spend.clip_norm)?;
        let mut acc = self.accountant.clone();
        acc.compose_subsampled_gaussian(spend.noise_multiplier, spend.sampling_rate, 1)?;
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
            mechanism: MECHANISM.to_owned(),
            noise_multiplier: spend.noise_multiplier,
            sampling_rate: spend.sampling_rate,
            clip_norm: spend.clip_norm,
            participants: spend.participants,
            delta: self.summary.delta,
            budget: self.summary.budget,
            epsilon: eps,
            prev: self.last_hash.clone(),
        };
        let text = serde_json::to_string(&line).map_err(|e| Error::Io(e.to_string()))?;
        let mut file: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io(&e))?;
        file.write_all(format!("{text}\n").as_bytes())
            .map_err(|e| io(&e))?;
        file.flush().map_err(|e| io(&e))?;
        file.sync_all().map_err(|e| io(&e))?;
        self.accountant = acc;
        self.last_hash = hex::encode(Sha256::digest(text.as_bytes()));
        let s = &mut self.summary;
        s.rounds = s.rounds.saturating_add(1);
        s.last_round = Some(spend.round);
        s.epsilon = eps;
        s.history.push((spend.round, eps));
        s.mechanisms
            .push((spend.noise_multiplier, spend.sampling_rate));
        Ok(eps)
    }
}
