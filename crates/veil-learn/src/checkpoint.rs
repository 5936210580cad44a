//! Checkpoints: the model's named tensors as safetensors bytes, loadable by
//! candle and by PyTorch's `safetensors.torch.load_file`, and optionally a
//! [`ModelCard`] in the file's metadata: what a model needs besides its
//! weights to score a CSV (features, classes, standardisation) and what
//! its training spent. This module encodes and decodes; whoever keeps the
//! file writes it (atomically: veil-net's `files::write_atomic`).
//!
//! The metadata (safetensors `__metadata__`, string to string; lists are
//! JSON arrays): `veil.format` = `"1"`, `veil.architecture` (`logistic`,
//! `linear`, `mlp:W1,W2,…`, `cnn:C`), `veil.features`, `veil.classes`
//! (`[]` for a regression), `veil.mean` and `veil.std` (absent without
//! standardisation; a regression's have one more entry, the label's, and
//! its model predicts the standardised label), `veil.training_round`,
//! `veil.epsilon` and `veil.delta` (absent without DP accounting).

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use crate::dataset::{Schema, Standardizer};
use crate::error::{Error, Result};
use crate::model::{Architecture, ModelSpec};

/// The metadata format this module writes.
const FORMAT: &str = "1";

/// The most features or classes a card may list.
const MAX_NAMES: usize = 1 << 16;

/// What a checkpoint says about its model besides the weights.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCard {
    /// The model's family; its inputs are the features, its classes the
    /// classes.
    pub architecture: Architecture,
    /// The feature columns, in order.
    pub features: Vec<String>,
    /// The class names; a prediction's class id is a position here. Empty
    /// for a regression.
    pub classes: Vec<String>,
    /// The standardisation the model was trained with, applied to raw rows
    /// before scoring.
    pub standardization: Option<Standardizer>,
    /// The training round that produced it.
    pub training_round: u64,
    /// The privacy spent up to it: `(ε, δ)`, when accounted.
    pub privacy: Option<(f64, f64)>,
}

impl ModelCard {
    /// The model's shape.
    #[must_use]
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            architecture: self.architecture.clone(),
            inputs: self.features.len(),
            classes: if self.classes.is_empty() {
                0
            } else {
                self.classes.len().max(2)
            },
        }
    }

    /// The columns a CSV to score must have.
    #[must_use]
    pub fn schema(&self) -> Schema {
        Schema {
            features: self.features.clone(),
            classes: self.classes.clone(),
        }
    }

    fn metadata(&self) -> HashMap<String, String> {
        let json = |v: serde_json::Value| v.to_string();
        let mut m = HashMap::new();
        m.insert("veil.format".to_owned(), FORMAT.to_owned());
        m.insert(
            "veil.architecture".to_owned(),
            self.architecture.to_string(),
        );
        m.insert(
            "veil.features".to_owned(),
            json(self.features.clone().into()),
        );
        m.insert("veil.classes".to_owned(), json(self.classes.clone().into()));
        if let Some(s) = &self.standardization {
            m.insert("veil.mean".to_owned(), json(s.mean().to_vec().into()));
            m.insert("veil.std".to_owned(), json(s.std().to_vec().into()));
        }
        m.insert(
            "veil.training_round".to_owned(),
            self.training_round.to_string(),
        );
        if let Some((epsilon, delta)) = self.privacy {
            m.insert("veil.epsilon".to_owned(), epsilon.to_string());
            m.insert("veil.delta".to_owned(), delta.to_string());
        }
        m
    }

    fn from_metadata(m: &HashMap<String, String>) -> Result<Self> {
        let here = Path::new("(in memory)");
        let get = |key: &str| {
            m.get(key)
                .ok_or_else(|| err(here, format!("metadata has no {key}")))
        };
        if get("veil.format")? != FORMAT {
            return Err(err(here, "unknown metadata format"));
        }
        let list = |key: &str| -> Result<Vec<String>> {
            let v: Vec<String> =
                serde_json::from_str(get(key)?).map_err(|e| err(here, format!("{key}: {e}")))?;
            if v.len() > MAX_NAMES {
                return Err(err(here, format!("{key}: more than {MAX_NAMES} names")));
            }
            Ok(v)
        };
        let numbers = |key: &str| -> Result<Option<Vec<f32>>> {
            m.get(key)
                .map(|text| {
                    serde_json::from_str::<Vec<f32>>(text)
                        .map_err(|e| err(here, format!("{key}: {e}")))
                })
                .transpose()
        };
        let number = |key: &str| -> Result<Option<f64>> {
            m.get(key)
                .map(|text| {
                    text.parse::<f64>()
                        .ok()
                        .filter(|v| v.is_finite() && *v >= 0.0)
                        .ok_or_else(|| err(here, format!("{key}: not a number >= 0")))
                })
                .transpose()
        };
        let architecture: Architecture = get("veil.architecture")?.parse()?;
        let features = list("veil.features")?;
        let classes = list("veil.classes")?;
        if features.is_empty() || classes.len() == 1 {
            return Err(err(
                here,
                "a model needs features, and 2 classes or more (or none: a regression)",
            ));
        }
        let columns = features.len() + usize::from(classes.is_empty());
        let standardization = match (numbers("veil.mean")?, numbers("veil.std")?) {
            (Some(mean), Some(std)) if mean.len() == columns => {
                Some(Standardizer::from_parts(mean, std)?)
            }
            (None, None) => None,
            _ => {
                return Err(err(
                    here,
                    "veil.mean and veil.std: one per feature (and the label, for a regression), both or neither",
                ));
            }
        };
        let training_round = get("veil.training_round")?
            .parse()
            .map_err(|_| err(here, "veil.training_round: not a whole number"))?;
        let privacy = match (number("veil.epsilon")?, number("veil.delta")?) {
            (Some(e), Some(d)) => Some((e, d)),
            (None, None) => None,
            _ => return Err(err(here, "veil.epsilon and veil.delta: both or neither")),
        };
        Ok(Self {
            architecture,
            features,
            classes,
            standardization,
            training_round,
            privacy,
        })
    }
}

fn err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// The flat model `params` as the safetensors bytes of its named tensors.
///
/// # Errors
/// [`Error::Shape`] for a wrong length; [`Error::Checkpoint`] if the
/// tensors cannot be encoded.
pub fn encode(spec: &ModelSpec, params: &[f32]) -> Result<Vec<u8>> {
    encode_with(spec, params, None)
}

/// As [`encode`], with `card` in the file's metadata.
///
/// # Errors
/// As [`encode`].
pub fn encode_card(card: &ModelCard, params: &[f32]) -> Result<Vec<u8>> {
    encode_with(&card.spec(), params, Some(card.metadata()))
}

/// Decodes a checkpoint written by [`encode_card`]: its card, and its
/// weights in flat order.
///
/// # Errors
/// [`Error::Checkpoint`] for bytes that are not safetensors, metadata that
/// is missing or malformed, or tensors that do not fit the card's model.
pub fn decode_card(bytes: &[u8]) -> Result<(ModelCard, Vec<f32>)> {
    let here = Path::new("(in memory)");
    let (_, metadata) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| err(here, e.to_string()))?;
    let card = ModelCard::from_metadata(
        metadata
            .metadata()
            .as_ref()
            .ok_or_else(|| err(here, "no veil metadata: not a model card checkpoint"))?,
    )?;
    let params = decode(bytes, &card.spec())?;
    Ok((card, params))
}

/// Reads a checkpoint file written by [`encode_card`] (see [`decode_card`]).
///
/// # Errors
/// As [`decode_card`], naming the file; [`Error::Io`] if it cannot be read.
pub fn load_card(path: &Path) -> Result<(ModelCard, Vec<f32>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    decode_card(&bytes).map_err(|e| match e {
        Error::Checkpoint { reason, .. } => err(path, reason),
        other => other,
    })
}

fn encode_with(
    spec: &ModelSpec,
    params: &[f32],
    metadata: Option<HashMap<String, String>>,
) -> Result<Vec<u8>> {
    if params.len() != spec.num_params() {
        return Err(Error::Shape(format!(
            "{} parameters for a model of {}",
            params.len(),
            spec.num_params()
        )));
    }
    let here = Path::new("(in memory)");
    let bytes: Vec<u8> = params.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut views = Vec::new();
    let mut at = 0;
    for (name, shape) in spec.tensors() {
        let n: usize = shape.iter().product::<usize>() * 4;
        let data = bytes.get(at..at + n).unwrap_or_default();
        views.push((
            name,
            TensorView::new(Dtype::F32, shape, data).map_err(|e| err(here, e.to_string()))?,
        ));
        at += n;
    }
    safetensors::serialize(views, metadata).map_err(|e| err(here, e.to_string()))
}

/// Reads a checkpoint (as [`encode`] makes) for `spec` back into the flat
/// order.
///
/// # Errors
/// [`Error::Checkpoint`] for a missing tensor, a wrong shape or type.
pub fn load(path: &Path, spec: &ModelSpec) -> Result<Vec<f32>> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e.to_string()))?;
    decode(&bytes, spec).map_err(|e| match e {
        Error::Checkpoint { reason, .. } => err(path, reason),
        other => other,
    })
}

/// Decodes a checkpoint's bytes (as [`encode`] makes) for `spec` into the
/// flat order.
///
/// # Errors
/// [`Error::Checkpoint`] for a missing tensor, a wrong shape or type.
pub fn decode(bytes: &[u8], spec: &ModelSpec) -> Result<Vec<f32>> {
    let path = Path::new("(in memory)");
    let tensors =
        safetensors::SafeTensors::deserialize(bytes).map_err(|e| err(path, e.to_string()))?;
    let mut out = Vec::with_capacity(spec.num_params());
    for (name, shape) in spec.tensors() {
        let view = tensors
            .tensor(&name)
            .map_err(|_| err(path, format!("no tensor {name}")))?;
        if view.dtype() != Dtype::F32 || view.shape() != shape.as_slice() {
            return Err(err(path, format!("{name} must be f32 of shape {shape:?}")));
        }
        out.extend(
            view.data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4]))),
        );
    }
    Ok(out)
}
