//! Splitting training rows among simulated clients: IID, or non-IID by
//! label with Dirichlet(α) class proportions (Hsu, Qi, Brown 2019). Every
//! client gets at least one row; a seed makes a split repeatable.

use rand::rngs::ChaCha20Rng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Gamma};

use crate::error::{Error, Result};

/// How rows are divided.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Partition {
    /// Shuffled, dealt evenly.
    Iid,
    /// For each class, the share of each client is drawn from
    /// Dirichlet(α): small α (0.1) gives each client a few classes, large α
    /// approaches IID.
    Dirichlet {
        /// The concentration α > 0.
        alpha: f64,
    },
}

/// Assigns row indices `0..labels.len()` to `clients` clients.
///
/// # Errors
/// [`Error::Config`] if there are fewer rows than clients, no clients, or
/// α is not finite and positive.
pub fn partition(
    labels: &[u32],
    clients: usize,
    how: Partition,
    seed: u64,
) -> Result<Vec<Vec<usize>>> {
    if clients == 0 || labels.len() < clients {
        return Err(Error::Config(format!(
            "cannot give {clients} clients at least one of {} rows each",
            labels.len()
        )));
    }
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut out = vec![Vec::new(); clients];
    match how {
        Partition::Iid => {
            let mut rows: Vec<usize> = (0..labels.len()).collect();
            rows.shuffle(&mut rng);
            for (i, r) in rows.into_iter().enumerate() {
                out[i % clients].push(r);
            }
        }
        Partition::Dirichlet { alpha } => {
            if !(alpha.is_finite() && alpha > 0.0) {
                return Err(Error::Config(format!(
                    "dirichlet alpha must be positive, not {alpha}"
                )));
            }
            let gamma = Gamma::new(alpha, 1.0).map_err(|e| Error::Config(e.to_string()))?;
            let classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
            for class in 0..classes {
                let mut rows: Vec<usize> = (0..labels.len())
                    .filter(|&i| labels[i] as usize == class)
                    .collect();
                rows.shuffle(&mut rng);
                let weights: Vec<f64> = (0..clients).map(|_| gamma.sample(&mut rng)).collect();
                let total: f64 = weights.iter().sum::<f64>().max(f64::MIN_POSITIVE);
                // Cut points from the cumulative proportions.
                let n = rows.len();
                let mut start = 0;
                let mut acc = 0.0;
                for (c, w) in weights.iter().enumerate() {
                    acc += w / total;
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "acc is in [0, 1], so the product is in [0, n]"
                    )]
                    let end = if c + 1 == clients {
                        n
                    } else {
                        ((acc * n as f64).round() as usize).min(n)
                    };
                    out[c].extend_from_slice(&rows[start..end.max(start)]);
                    start = end.max(start);
                }
            }
        }
    }
    // Every client gets at least one row: take from the largest.
    for c in 0..clients {
        if out[c].is_empty() {
            let largest = (0..clients).max_by_key(|&i| out[i].len()).unwrap_or(0);
            let pick = rng.random_range(0..out[largest].len());
            let row = out[largest].swap_remove(pick);
            out[c].push(row);
        }
    }
    for rows in &mut out {
        rows.sort_unstable();
    }
    Ok(out)
}
