//! `Task` (SPEC.md §10.13): what the server sends each participant before
//! the round's `RoundConfig`: the global model, and how to turn a local
//! update into the protocol's input.

use veil_crypto::RoundId;

use super::evaluation::evaluation_len;
use super::statistics::statistics_len;
use super::training::{MAX_FEATURES, MAX_TRAINING_SPEC_LEN, TrainingSpec};
use super::{HEADER_LEN, MessageType, put_header, read_header};
use crate::codec::{Reader, put_count};
use crate::config::MAX_DIMENSION;
use crate::error::{DecodeErrorKind, Result};

/// The fixed part of a task's body: `training_round`, `clip_norm`,
/// `scale`, `noise_variance`, the training flag and the model's count.
pub const TASK_FIXED_LEN: usize = 8 + 8 + 8 + 8 + 1 + 4;

/// The longest encoded purpose: its tag, a row cap, and a statistics
/// round's count and bounds (one per column: the features, and a
/// regression's label).
pub const MAX_PURPOSE_LEN: usize = 1 + 4 + 4 + 4 * (MAX_FEATURES + 1);

/// The longest encoded task whose model has `max_dimension` elements.
#[must_use]
pub fn max_task_len(max_dimension: usize) -> usize {
    HEADER_LEN
        .saturating_add(TASK_FIXED_LEN)
        .saturating_add(MAX_PURPOSE_LEN)
        .saturating_add(MAX_TRAINING_SPEC_LEN)
        .saturating_add(max_dimension.saturating_mul(4))
}

/// What a round's inputs are.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Purpose {
    /// Each site's model update: `d` is the model's length.
    Train,
    /// Each site's evaluation of the task's model on its held-out rows
    /// (§10.14): `d` is [`evaluation_len`] of the task's classes.
    Evaluate {
        /// The held-out rows a site counts at full weight (`>= 1`): counts
        /// are divided by it.
        row_cap: u32,
    },
    /// Each site's per-feature count, sum and sum of squares of its
    /// training rows (§10.15): `d` is `1 + 2·features`.
    Statistics {
        /// The rows a site counts at full weight (`>= 1`).
        row_cap: u32,
        /// Per feature, the bound its values are clipped to (finite,
        /// positive).
        bounds: Vec<f32>,
    },
}

/// A round's work for one client. Its round id is the message header's.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The training round (model version) this task advances: 1, 2, …; for
    /// an evaluation, the model version evaluated.
    pub training_round: u64,
    /// What the round sums.
    pub purpose: Purpose,
    /// The L2 norm every update is clipped to.
    pub clip_norm: f64,
    /// The quantisation scale (a value `x` becomes about `x · scale`).
    pub scale: f64,
    /// The variance of the integer noise each client adds to each
    /// coordinate, in quantised units; `0` for none.
    pub noise_variance: f64,
    /// What each site trains and how; `None` for a task whose update the
    /// site's source makes up itself (a synthetic vector, a test).
    pub training: Option<TrainingSpec>,
    /// The global model, flattened.
    pub model: Vec<f32>,
}

impl Task {
    /// The length `d` of each client's input in the round of this task:
    /// the model's, or for an evaluation, [`evaluation_len`] of the task's
    /// classes (0 for an evaluation with no training spec, which the
    /// decoder refuses).
    #[must_use]
    pub fn input_len(&self) -> usize {
        match &self.purpose {
            Purpose::Train => self.model.len(),
            Purpose::Evaluate { .. } => self
                .training
                .as_ref()
                .map_or(0, |t| evaluation_len(t.classes.len())),
            Purpose::Statistics { bounds, .. } => statistics_len(bounds.len()),
        }
    }

    /// The canonical encoding of the task of round `round`, header
    /// included (floats as their IEEE-754 bits, big-endian).
    #[must_use]
    pub fn encode(&self, round: RoundId) -> Vec<u8> {
        let mut out = Vec::with_capacity(max_task_len(self.model.len()));
        put_header(&mut out, MessageType::Task, round);
        out.extend_from_slice(&self.training_round.to_be_bytes());
        match &self.purpose {
            Purpose::Train => out.push(0),
            Purpose::Evaluate { row_cap } => {
                out.push(1);
                out.extend_from_slice(&row_cap.to_be_bytes());
            }
            Purpose::Statistics { row_cap, bounds } => {
                out.push(2);
                out.extend_from_slice(&row_cap.to_be_bytes());
                put_count(&mut out, bounds.len());
                for b in bounds {
                    out.extend_from_slice(&b.to_bits().to_be_bytes());
                }
            }
        }
        for v in [self.clip_norm, self.scale, self.noise_variance] {
            out.extend_from_slice(&v.to_bits().to_be_bytes());
        }
        match &self.training {
            None => out.push(0),
            Some(spec) => {
                out.push(1);
                spec.encode(&mut out);
            }
        }
        put_count(&mut out, self.model.len());
        for v in &self.model {
            out.extend_from_slice(&v.to_bits().to_be_bytes());
        }
        out
    }

    /// Decodes a task whose model has at most `max_dimension` elements
    /// (and at most the protocol's `2^26`); returns its round id too.
    ///
    /// # Errors
    /// [`crate::Error::Decode`] naming the field: a short, long or
    /// trailing encoding, another message type, a model longer than
    /// `max_dimension` (refused from its count, before allocation), a clip
    /// norm or scale that is not finite and positive, a noise variance that
    /// is not finite and non-negative, a model element that is not finite,
    /// an unknown purpose, an evaluation or statistics round with a row cap
    /// of 0 or without a training spec, statistics bounds that are not
    /// finite and positive or not one per feature.
    pub fn decode(bytes: &[u8], max_dimension: usize) -> Result<(RoundId, Self)> {
        let mut r = Reader::new(bytes, "task");
        let (ty, round) = read_header(&mut r)?;
        if ty != MessageType::Task {
            return Err(r.err("type", DecodeErrorKind::UnknownTag(ty as u8)));
        }
        let training_round = r.u64("training_round")?;
        let purpose = match r.u8("purpose")? {
            0 => Purpose::Train,
            tag @ (1 | 2) => {
                let row_cap = r.u32("row_cap")?;
                if row_cap == 0 {
                    return Err(r.err("row_cap", DecodeErrorKind::OutOfRange));
                }
                if tag == 1 {
                    Purpose::Evaluate { row_cap }
                } else {
                    let count = r.count("bounds", MAX_FEATURES + 1, 4)?;
                    let mut bounds = Vec::with_capacity(count);
                    for _ in 0..count {
                        let b = f32::from_bits(r.u32("bounds")?);
                        if !(b.is_finite() && b > 0.0) {
                            return Err(r.err("bounds", DecodeErrorKind::OutOfRange));
                        }
                        bounds.push(b);
                    }
                    Purpose::Statistics { row_cap, bounds }
                }
            }
            _ => return Err(r.err("purpose", DecodeErrorKind::OutOfRange)),
        };
        let clip_norm = f64::from_bits(r.u64("clip_norm")?);
        let scale = f64::from_bits(r.u64("scale")?);
        let noise_variance = f64::from_bits(r.u64("noise_variance")?);
        let training = match r.u8("training")? {
            0 => None,
            1 => Some(TrainingSpec::decode(&mut r)?),
            _ => return Err(r.err("training", DecodeErrorKind::OutOfRange)),
        };
        match (&purpose, &training) {
            (Purpose::Train, _) => {}
            (_, None) => return Err(r.err("purpose", DecodeErrorKind::OutOfRange)),
            (Purpose::Statistics { bounds, .. }, Some(t)) if bounds.len() != t.columns() => {
                return Err(r.err("bounds", DecodeErrorKind::OutOfRange));
            }
            _ => {}
        }
        let max = max_dimension.min(MAX_DIMENSION as usize);
        let count = r.count("model", max, 4)?;
        if !(clip_norm.is_finite() && clip_norm > 0.0) {
            return Err(r.err("clip_norm", DecodeErrorKind::OutOfRange));
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(r.err("scale", DecodeErrorKind::OutOfRange));
        }
        if !(noise_variance.is_finite() && noise_variance >= 0.0) {
            return Err(r.err("noise_variance", DecodeErrorKind::OutOfRange));
        }
        let mut model = Vec::with_capacity(count);
        for _ in 0..count {
            let v = f32::from_bits(r.u32("model")?);
            if !v.is_finite() {
                return Err(r.err("model", DecodeErrorKind::OutOfRange));
            }
            model.push(v);
        }
        r.finish()?;
        Ok((
            round,
            Self {
                training_round,
                purpose,
                clip_norm,
                scale,
                noise_variance,
                training,
                model,
            },
        ))
    }
}
