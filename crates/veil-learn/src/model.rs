//! Models: logistic regression (binary with one logit, softmax for more
//! classes), linear regression (one output, squared loss), a multi-layer
//! perceptron with ReLU hidden layers, and a small convolutional network
//! for square image rows (`data/digits.csv`, 8×8). A regression (`classes
//! = 0`) has one output and the mean squared error as its loss.
//!
//! **Flat order** (the secure-aggregation vector, SPEC-independent but
//! fixed): for the convolutional model first its kernel `conv0.weight`
//! `[channels, 1, 3, 3]` and `conv0.bias` `[channels]`; then for each
//! linear layer `i = 0, 1, …` from input to output, its weight
//! `layer{i}.weight` of shape `[out, in]` in row-major order, then its bias
//! `layer{i}.bias` of shape `[out]`.

use candle_core::{DType, Device, Tensor, Var};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use rand_distr::{Distribution, Uniform};

use crate::error::{Error, Result};

/// The model family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Architecture {
    /// One linear layer, for a classification.
    Logistic,
    /// One linear layer, for a regression.
    Linear,
    /// Linear layers with ReLU between them; `hidden` are the widths.
    Mlp {
        /// Hidden layer widths, input side first.
        hidden: Vec<usize>,
    },
    /// For rows that are a square image (`side × side` features, `side`
    /// even, row-major): a 3×3 convolution with `channels` kernels (padding
    /// 1), ReLU, 2×2 max pooling, and one linear layer to the outputs.
    Cnn {
        /// Convolution kernels, `1..=256`.
        channels: usize,
    },
}

impl core::fmt::Display for Architecture {
    /// `logistic`, `mlp:W1,W2,…`, or `cnn:C`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Logistic => f.write_str("logistic"),
            Self::Linear => f.write_str("linear"),
            Self::Cnn { channels } => write!(f, "cnn:{channels}"),
            Self::Mlp { hidden } => {
                let widths: Vec<String> = hidden.iter().map(ToString::to_string).collect();
                write!(f, "mlp:{}", widths.join(","))
            }
        }
    }
}

impl core::str::FromStr for Architecture {
    type Err = Error;

    /// Parses `logistic`, `linear`, `mlp:W1,W2,…` (positive widths, at
    /// most 16 layers of at most 65536) or `cnn:C` (1 to 256 kernels).
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "logistic" => return Ok(Self::Logistic),
            "linear" => return Ok(Self::Linear),
            _ => {}
        }
        if let Some(c) = s.strip_prefix("cnn:") {
            return c
                .trim()
                .parse::<usize>()
                .ok()
                .filter(|c| (1..=256).contains(c))
                .map(|channels| Self::Cnn { channels })
                .ok_or_else(|| Error::Config(format!("model {s:?}: cnn:C with C in 1..=256")));
        }
        let bad = || {
            Error::Config(format!(
                "model {s:?}: use `logistic`, `linear`, `mlp:W1,W2,…` or `cnn:C`"
            ))
        };
        let widths = s.strip_prefix("mlp:").ok_or_else(bad)?;
        let hidden = widths
            .split(',')
            .map(|w| {
                w.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|w| (1..=65_536).contains(w))
            })
            .collect::<Option<Vec<_>>>()
            .filter(|h| !h.is_empty() && h.len() <= 16)
            .ok_or_else(|| {
                Error::Config(format!(
                    "model {s:?}: 1 to 16 hidden widths, each in 1..=65536"
                ))
            })?;
        Ok(Self::Mlp { hidden })
    }
}

/// A model's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// The family.
    pub architecture: Architecture,
    /// Input features.
    pub inputs: usize,
    /// Classes (2 = binary, one logit; 0 = a regression, one output).
    pub classes: usize,
}

impl ModelSpec {
    /// Output logits: 1 for a binary task or a regression, else one per
    /// class.
    #[must_use]
    pub fn outputs(&self) -> usize {
        if self.classes <= 2 { 1 } else { self.classes }
    }

    /// Whether the model is a regression's (no classes).
    #[must_use]
    pub fn is_regression(&self) -> bool {
        self.classes == 0
    }

    /// The side of a square image row (`None` unless `inputs` is the
    /// square of an even number).
    #[must_use]
    pub fn image_side(&self) -> Option<usize> {
        let side = self.inputs.isqrt();
        (side >= 2 && side * side == self.inputs && side.is_multiple_of(2)).then_some(side)
    }

    /// `(in, out)` of each linear layer (after the convolution, for the
    /// convolutional model).
    #[must_use]
    pub fn layers(&self) -> Vec<(usize, usize)> {
        let mut widths = vec![self.inputs];
        match &self.architecture {
            Architecture::Mlp { hidden } => widths.extend(hidden),
            Architecture::Cnn { channels } => {
                let half = self.image_side().unwrap_or(0) / 2;
                widths = vec![channels * half * half];
            }
            Architecture::Logistic | Architecture::Linear => {}
        }
        widths.push(self.outputs());
        widths.windows(2).map(|w| (w[0], w[1])).collect()
    }

    /// The named tensors and their shapes, in flat order.
    #[must_use]
    pub fn tensors(&self) -> Vec<(String, Vec<usize>)> {
        let mut out = Vec::new();
        if let Architecture::Cnn { channels } = &self.architecture {
            out.push(("conv0.weight".to_owned(), vec![*channels, 1, 3, 3]));
            out.push(("conv0.bias".to_owned(), vec![*channels]));
        }
        out.extend(self.layers().iter().enumerate().flat_map(|(i, &(inp, o))| {
            [
                (format!("layer{i}.weight"), vec![o, inp]),
                (format!("layer{i}.bias"), vec![o]),
            ]
        }));
        out
    }

    /// The number of parameters, the length of the flat vector.
    #[must_use]
    pub fn num_params(&self) -> usize {
        self.tensors()
            .iter()
            .map(|(_, shape)| shape.iter().product::<usize>())
            .sum()
    }

    /// Checks the spec.
    ///
    /// # Errors
    /// [`Error::Config`] for zero inputs, one class, a zero-width layer,
    /// `logistic` for a regression or `linear` for a classification.
    pub fn check(&self) -> Result<()> {
        if self.inputs == 0 || self.classes == 1 {
            return Err(Error::Config(
                "a model needs at least 1 input, and 2 classes or none (a regression)".into(),
            ));
        }
        match (&self.architecture, self.is_regression()) {
            (Architecture::Logistic, true) => {
                return Err(Error::Config(
                    "logistic is a classifier: use `linear` for a regression".into(),
                ));
            }
            (Architecture::Linear, false) => {
                return Err(Error::Config(
                    "linear is a regression: use `logistic` for a classification".into(),
                ));
            }
            _ => {}
        }
        if let Architecture::Mlp { hidden } = &self.architecture
            && hidden.contains(&0)
        {
            return Err(Error::Config("a hidden layer needs width >= 1".into()));
        }
        if let Architecture::Cnn { channels } = &self.architecture {
            if self.image_side().is_none() {
                return Err(Error::Config(format!(
                    "a cnn needs square image rows of an even side (16, 64, 256, … features), not {}",
                    self.inputs
                )));
            }
            if !(1..=256).contains(channels) {
                return Err(Error::Config("a cnn needs 1 to 256 kernels".into()));
            }
        }
        Ok(())
    }

    /// Initial parameters: zeros for logistic and linear regression; for an MLP or a
    /// CNN, each weight uniform in `±1/sqrt(fan_in)` (PyTorch's default)
    /// from `seed`, biases zero.
    #[must_use]
    pub fn init(&self, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(self.num_params());
        let random = !matches!(
            self.architecture,
            Architecture::Logistic | Architecture::Linear
        );
        for (_, shape) in self.tensors() {
            let n: usize = shape.iter().product();
            let fan_in: usize = shape.iter().skip(1).product();
            #[expect(clippy::cast_precision_loss, reason = "layer widths are small")]
            let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
            match Uniform::new_inclusive(-bound, bound) {
                Ok(u) if random && shape.len() > 1 => {
                    out.extend((0..n).map(|_| u.sample(&mut rng)));
                }
                _ => out.extend(std::iter::repeat_n(0.0, n)),
            }
        }
        out
    }
}

/// A model with trainable parameters on the CPU.
#[derive(Debug)]
pub struct Model {
    spec: ModelSpec,
    vars: Vec<Var>,
}

impl Model {
    /// The model whose parameters are the flat vector `flat`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `flat` has the wrong length.
    pub fn from_flat(spec: &ModelSpec, flat: &[f32]) -> Result<Self> {
        spec.check()?;
        if flat.len() != spec.num_params() {
            return Err(Error::Shape(format!(
                "{} parameters given, the model has {}",
                flat.len(),
                spec.num_params()
            )));
        }
        let mut vars = Vec::new();
        let mut at = 0;
        for (_, shape) in spec.tensors() {
            let n: usize = shape.iter().product();
            let slice = flat.get(at..at + n).unwrap_or_default();
            vars.push(Var::from_tensor(&Tensor::from_slice(
                slice,
                shape.as_slice(),
                &Device::Cpu,
            )?)?);
            at += n;
        }
        Ok(Self {
            spec: spec.clone(),
            vars,
        })
    }

    /// The flat vector of the parameters.
    ///
    /// # Errors
    /// [`Error::Candle`] if a tensor cannot be read.
    pub fn to_flat(&self) -> Result<Vec<f32>> {
        let mut out = Vec::with_capacity(self.spec.num_params());
        for v in &self.vars {
            out.extend(v.as_tensor().flatten_all()?.to_vec1::<f32>()?);
        }
        Ok(out)
    }

    /// The trainable variables, in flat order.
    #[must_use]
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// The spec.
    #[must_use]
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// Logits `[n, outputs]` for inputs `[n, inputs]`.
    ///
    /// # Errors
    /// [`Error::Candle`] on a shape mismatch.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        let mut linear = self.vars.as_slice();
        if let (Architecture::Cnn { channels }, Some(side), [kernel, bias, rest @ ..]) = (
            &self.spec.architecture,
            self.spec.image_side(),
            self.vars.as_slice(),
        ) {
            let n = h.dim(0)?;
            h = h
                .reshape((n, 1, side, side))?
                .conv2d(kernel.as_tensor(), 1, 1, 1, 1)?
                .broadcast_add(&bias.as_tensor().reshape((1, *channels, 1, 1))?)?
                .relu()?
                .max_pool2d(2)?
                .flatten_from(1)?;
            linear = rest;
        }
        let layers = linear.len() / 2;
        for (i, pair) in linear.chunks_exact(2).enumerate() {
            let (w, b) = (pair[0].as_tensor(), pair[1].as_tensor());
            h = h.matmul(&w.t()?)?.broadcast_add(b)?;
            if i + 1 < layers {
                h = h.relu()?;
            }
        }
        Ok(h)
    }

    /// The mean loss of `logits` against `labels` (`[n]`, u32; f32 targets
    /// for a regression): the squared error for a regression, binary
    /// cross-entropy on one logit (computed stably as
    /// `softplus(z) − y·z`), or softmax cross-entropy.
    ///
    /// # Errors
    /// [`Error::Candle`] on a shape mismatch.
    pub fn loss(&self, logits: &Tensor, labels: &Tensor) -> Result<Tensor> {
        if self.spec.is_regression() {
            let z = logits.flatten_all()?;
            let y = labels.to_dtype(DType::F32)?;
            return Ok((z - y)?.sqr()?.mean_all()?);
        }
        if self.spec.outputs() == 1 {
            let z = logits.flatten_all()?;
            let y = labels.to_dtype(DType::F32)?;
            // softplus(z) = max(z, 0) + log(1 + exp(-|z|))
            let softplus = (z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
            Ok((softplus - (y * &z)?)?.mean_all()?)
        } else {
            Ok(candle_nn::loss::cross_entropy(logits, labels)?)
        }
    }
}
