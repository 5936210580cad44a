//! What the server persists so that a crash loses at most the round in
//! progress (SPEC.md §12.5): the round counters, the global model
//! checkpoint, the privacy ledger (veil-dp) and a per-round record.
//!
//! Layout of the state directory:
//! - `state.json`: `{"released_rounds", "next_round_id", "dimension"}`,
//!   replaced atomically;
//! - `model.safetensors`: the global model, one f32 tensor `model` of shape
//!   `[d]`, replaced atomically (loadable by candle and by PyTorch's
//!   safetensors);
//! - `ledger.jsonl`: the privacy ledger, appended and synced;
//! - `rounds.jsonl`: one JSON line per round: released or aborted, who took
//!   part, bytes, phase durations;
//! - `sums/round-NNNNNN.u64le`: each released sum (if kept), little-endian
//!   `u64` ring elements.

use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use serde::Serialize;
pub use veil_round::Counters;
use veil_round::Release;

use crate::error::{Result, bad_file, io_err};
use crate::files;

/// The server's state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// What a state directory held when opened.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The counters.
    pub counters: Counters,
    /// The global model.
    pub model: Vec<f32>,
    /// Whether anything was restored (false for a new directory).
    pub resumed: bool,
}

impl StateDir {
    /// Opens (creating if needed) a state directory for a model of
    /// `dimension` parameters; a new one starts from `initial` (zeros if
    /// `None`).
    ///
    /// # Errors
    /// [`crate::Error::Io`] or [`crate::Error::BadFile`] naming the file; a
    /// directory made for another dimension is refused.
    pub fn open(root: &Path, dimension: u32, initial: Option<&[f32]>) -> Result<(Self, Restored)> {
        std::fs::create_dir_all(root.join("sums")).map_err(io_err(root))?;
        let dir = Self {
            root: root.to_owned(),
        };
        let state_path = dir.state_path();
        if !state_path.exists() {
            let counters = Counters::new(dimension);
            let d = usize::try_from(dimension).unwrap_or(0);
            let model = match initial {
                Some(m) if m.len() == d => m.to_vec(),
                Some(m) => {
                    return Err(bad_file(
                        root,
                        format!("initial model has {} values, not {d}", m.len()),
                    ));
                }
                None => vec![0.0; d],
            };
            dir.save_model(&model)?;
            dir.save_counters(&counters)?;
            return Ok((
                dir,
                Restored {
                    counters,
                    model,
                    resumed: false,
                },
            ));
        }
        let text = files::read_capped_string(&state_path, 4096)?;
        let counters: Counters =
            serde_json::from_str(&text).map_err(|e| bad_file(&state_path, e.to_string()))?;
        if counters.dimension != dimension {
            return Err(bad_file(
                &state_path,
                format!(
                    "was made for dimension {}, not {dimension}",
                    counters.dimension
                ),
            ));
        }
        let model = load_model(&dir.model_path(), dimension)?;
        Ok((
            dir,
            Restored {
                counters,
                model,
                resumed: true,
            },
        ))
    }

    /// The directory.
    #[must_use]
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// The model checkpoint's path.
    #[must_use]
    pub fn model_path(&self) -> PathBuf {
        self.root.join("model.safetensors")
    }

    /// The privacy ledger's path.
    #[must_use]
    pub fn ledger_path(&self) -> PathBuf {
        self.root.join("ledger.jsonl")
    }

    /// Where a statistics round's standardisation is kept.
    #[must_use]
    pub fn standardization_path(&self) -> PathBuf {
        self.root.join("standardization.json")
    }

    /// The standardisation a statistics round released, if one did.
    ///
    /// # Errors
    /// [`crate::Error::Io`] or [`crate::Error::BadFile`] naming the file.
    pub fn read_standardization(&self) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
        read_standardization(&self.standardization_path())
    }

    /// The per-round record's path.
    #[must_use]
    pub fn rounds_path(&self) -> PathBuf {
        self.root.join("rounds.jsonl")
    }

    /// Where the sum of training round `training_round` is kept.
    #[must_use]
    pub fn sum_path(&self, training_round: u64) -> PathBuf {
        self.root
            .join("sums")
            .join(format!("round-{training_round:06}.u64le"))
    }

    /// Replaces the counters atomically.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the file.
    pub fn save_counters(&self, counters: &Counters) -> Result<()> {
        let path = self.state_path();
        let text = serde_json::to_string(counters).map_err(|e| bad_file(&path, e.to_string()))?;
        files::write_atomic(&path, text.as_bytes(), false)
    }

    /// Replaces the model checkpoint atomically.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the file.
    pub fn save_model(&self, model: &[f32]) -> Result<()> {
        let path = self.model_path();
        let bytes: Vec<u8> = model.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![model.len()], &bytes)
            .map_err(|e| bad_file(&path, e.to_string()))?;
        let encoded = safetensors::serialize([("model", view)], None)
            .map_err(|e| bad_file(&path, e.to_string()))?;
        files::write_atomic(&path, &encoded, false)
    }

    /// Writes a released sum.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the file.
    pub fn save_sum(&self, training_round: u64, sum: &[u64]) -> Result<()> {
        let bytes: Vec<u8> = sum.iter().flat_map(|v| v.to_le_bytes()).collect();
        files::write_atomic(&self.sum_path(training_round), &bytes, false)
    }

    /// The privacy ledger's bytes (empty if there is none yet).
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the file.
    pub fn read_ledger(&self) -> Result<Vec<u8>> {
        files::read_if_present(&self.ledger_path())
    }

    /// Appends a ledger line, flushes it and syncs the file.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the file (the round must then not be
    /// released).
    pub fn append_ledger(&self, line: &[u8]) -> Result<()> {
        files::append_synced(&self.ledger_path(), line)
    }

    /// Persists a released round in the order SPEC.md §12.5 fixes: the
    /// ledger line (synced), the model and the sum (atomically), the
    /// counters, the round's record. The round is released once this
    /// returns `Ok`.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the first file that could not be
    /// written; what follows it is not written.
    pub fn save_release(&self, release: &Release) -> Result<()> {
        if let Some(line) = &release.ledger_line {
            self.append_ledger(line)?;
        }
        if let Some(model) = &release.model {
            self.save_model(model)?;
        }
        if let Some(standardization) = &release.standardization {
            let path = self.standardization_path();
            let text = serde_json::to_string(standardization)
                .map_err(|e| bad_file(&path, e.to_string()))?;
            files::write_atomic(&path, text.as_bytes(), false)?;
        }
        if let Some(sum) = &release.sum {
            self.save_sum(release.record.training_round, sum)?;
        }
        self.save_counters(&release.counters)?;
        self.append_round(&release.record)
    }

    /// Appends one JSON line to `rounds.jsonl`.
    ///
    /// # Errors
    /// [`crate::Error::Io`] naming the file.
    pub fn append_round(&self, record: &impl Serialize) -> Result<()> {
        let path = self.rounds_path();
        let mut line = serde_json::to_vec(record).map_err(|e| bad_file(&path, e.to_string()))?;
        line.push(b'\n');
        files::append_synced(&path, &line)
    }
}

/// The standardisation a statistics round released, from the state
/// directory's `standardization.json` at `path` (`None` if absent).
///
/// # Errors
/// [`crate::Error::Io`] or [`crate::Error::BadFile`] naming the file.
pub fn read_standardization(path: &Path) -> Result<Option<(Vec<f32>, Vec<f32>)>> {
    if !path.exists() {
        return Ok(None);
    }
    // Two f32 lists of at most 4096 features, as JSON.
    let text = files::read_capped_string(path, 1 << 20)?;
    let (mean, std): (Vec<f32>, Vec<f32>) =
        serde_json::from_str(&text).map_err(|e| bad_file(path, e.to_string()))?;
    Ok(Some((mean, std)))
}

/// Reads a model checkpoint written by [`StateDir::save_model`].
///
/// # Errors
/// [`crate::Error::BadFile`] naming the file if it is not a safetensors file
/// with one f32 tensor `model` of shape `[dimension]`.
pub fn load_model(path: &Path, dimension: u32) -> Result<Vec<f32>> {
    let cap = u64::from(dimension)
        .saturating_mul(4)
        .saturating_add(1 << 16);
    let bytes = files::read_capped(path, cap)?;
    load_model_bytes(&bytes, dimension).map_err(|reason| bad_file(path, reason))
}

/// Decodes a model checkpoint's bytes (as [`load_model`]).
///
/// # Errors
/// A message saying what is wrong with the checkpoint.
pub fn load_model_bytes(bytes: &[u8], dimension: u32) -> core::result::Result<Vec<f32>, String> {
    let d = usize::try_from(dimension).unwrap_or(usize::MAX);
    let tensors = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let view = tensors.tensor("model").map_err(|e| e.to_string())?;
    if view.dtype() != Dtype::F32 || view.shape() != [d] {
        return Err(format!("tensor `model` must be f32 of shape [{d}]"));
    }
    Ok(view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
        .collect())
}
