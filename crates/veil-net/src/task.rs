//! The task of a round: what the server sends each participant before the
//! round's config (SPEC.md §12.3): the global model and how to turn a local
//! update into the protocol's input.

use crate::error::{Error, Result};

/// The fixed part of an encoded task.
pub const TASK_FIXED_LEN: usize = 8 + 8 + 8 + 8 + 8 + 4;

/// A round's work for one client.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// The training round (model version) this task advances: 1, 2, …
    pub training_round: u64,
    /// The protocol round id whose config follows.
    pub round: u64,
    /// The L2 norm every update is clipped to.
    pub clip_norm: f64,
    /// The quantisation scale (a value `x` becomes about `x · scale`).
    pub scale: f64,
    /// The variance of the integer noise each client adds to each
    /// coordinate, in quantised units; `0` for none.
    pub noise_variance: f64,
    /// The global model, flattened.
    pub model: Vec<f32>,
}

impl Task {
    /// The encoding (big-endian, floats as their IEEE-754 bits).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(TASK_FIXED_LEN.saturating_add(self.model.len().saturating_mul(4)));
        out.extend_from_slice(&self.training_round.to_be_bytes());
        out.extend_from_slice(&self.round.to_be_bytes());
        out.extend_from_slice(&self.clip_norm.to_bits().to_be_bytes());
        out.extend_from_slice(&self.scale.to_bits().to_be_bytes());
        out.extend_from_slice(&self.noise_variance.to_bits().to_be_bytes());
        let count = u32::try_from(self.model.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for v in &self.model {
            out.extend_from_slice(&v.to_bits().to_be_bytes());
        }
        out
    }

    /// Decodes a task whose model has at most `max_dimension` elements.
    ///
    /// # Errors
    /// [`Error::Frame`] naming the field for a short, long or out-of-range
    /// encoding (a clip norm or scale that is not finite and positive, a
    /// noise variance that is not finite and non-negative, a model element
    /// that is not finite).
    pub fn decode(bytes: &[u8], max_dimension: usize) -> Result<Self> {
        let (fixed, model_bytes) = bytes
            .split_first_chunk::<TASK_FIXED_LEN>()
            .ok_or(Error::Frame("task: shorter than its fixed fields"))?;
        let (training_round, rest) = take_u64(fixed);
        let (round, rest) = take_u64(rest);
        let (clip, rest) = take_u64(rest);
        let (scale, rest) = take_u64(rest);
        let (noise, rest) = take_u64(rest);
        let count = rest
            .first_chunk::<4>()
            .map_or(0, |c| u32::from_be_bytes(*c));
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > max_dimension {
            return Err(Error::Frame("task: model longer than the client accepts"));
        }
        if model_bytes.len() != count.saturating_mul(4) {
            return Err(Error::Frame("task: model length differs from its count"));
        }
        let clip_norm = f64::from_bits(clip);
        let scale = f64::from_bits(scale);
        let noise_variance = f64::from_bits(noise);
        if !(clip_norm.is_finite() && clip_norm > 0.0) {
            return Err(Error::Frame("task: clip_norm must be finite and positive"));
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::Frame("task: scale must be finite and positive"));
        }
        if !(noise_variance.is_finite() && noise_variance >= 0.0) {
            return Err(Error::Frame(
                "task: noise_variance must be finite and non-negative",
            ));
        }
        let model: Vec<f32> = model_bytes
            .chunks_exact(4)
            .map(|c| f32::from_bits(u32::from_be_bytes(c.try_into().unwrap_or([0; 4]))))
            .collect();
        if model.iter().any(|v| !v.is_finite()) {
            return Err(Error::Frame("task: model element not finite"));
        }
        Ok(Self {
            training_round,
            round,
            clip_norm,
            scale,
            noise_variance,
            model,
        })
    }
}

fn take_u64(bytes: &[u8]) -> (u64, &[u8]) {
    match bytes.split_first_chunk::<8>() {
        Some((head, rest)) => (u64::from_be_bytes(*head), rest),
        None => (0, &[]),
    }
}
