//! Checkpoints: the model's named tensors as safetensors bytes, loadable by
//! candle and by PyTorch's `safetensors.torch.load_file`. This module
//! encodes and decodes; whoever keeps the file writes it (atomically:
//! veil-net's `files::write_atomic`).

use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use crate::error::{Error, Result};
use crate::model::ModelSpec;

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
    if params.len() != spec.num_params() {
        return Err(Error::Shape(format!(
            "{} parameters for a model of {}",
            params.len(),
            spec.num_params()
        )));
    }
    let here = Path::new("checkpoint");
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
    safetensors::serialize(views, None).map_err(|e| err(here, e.to_string()))
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
    let path = Path::new("checkpoint");
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
