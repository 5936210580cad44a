//! A deterministic update source for trying the service out and for
//! end-to-end tests, until a client trains a model (veil-learn).
//!
//! Client `name`'s update in training round `r` has coordinates
//! `k_i / scale` with integers `k_i` in `[-8, 8]` drawn from ChaCha20 seeded
//! with `SHA-256("veil/1 synthetic-update" || u32 len(name) || name || u64 r)`.
//! Scaled values are whole numbers, so quantisation is exact and a test can
//! recompute the sum any set of clients must release.

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use sha2::{Digest, Sha256};

use veil_secagg::messages::Task;

use crate::client::{SourceError, UpdateSource};

/// The integers `k_i` of client `name`'s update in `training_round`.
#[must_use]
pub fn integers(name: &str, training_round: u64, dimension: usize) -> Vec<i64> {
    let mut h = Sha256::new();
    h.update(b"veil/1 synthetic-update");
    h.update(u32::try_from(name.len()).unwrap_or(u32::MAX).to_be_bytes());
    h.update(name.as_bytes());
    h.update(training_round.to_be_bytes());
    let mut rng = ChaCha20Rng::from_seed(h.finalize().into());
    (0..dimension)
        .map(|_| rng.random_range(-8_i64..=8))
        .collect()
}

/// The synthetic source of one client.
#[derive(Debug, Clone)]
pub struct SyntheticSource {
    name: String,
}

impl SyntheticSource {
    /// The source of client `name`.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
        }
    }
}

impl UpdateSource for SyntheticSource {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "|k| <= 8, and k / scale is exact in f32 for a power-of-two scale"
    )]
    fn update(&mut self, task: &Task) -> Result<Vec<f32>, SourceError> {
        Ok(integers(&self.name, task.training_round, task.model.len())
            .into_iter()
            .map(|k| (k as f64 / task.scale) as f32)
            .collect())
    }
}
