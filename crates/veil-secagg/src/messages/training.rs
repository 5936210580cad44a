//! The learning part of a `Task` (SPEC.md §10.13): what each site trains and
//! how, so that every site trains the same model on the same columns. The
//! protocol carries it canonically and binds it into the round's signatures
//! (through the task digest); its meaning (the model family, the local
//! optimiser) is the learning layer's.

use crate::codec::{Reader, put_count};
use crate::error::{DecodeErrorKind, Result};

/// The most feature columns a task may name.
pub const MAX_FEATURES: usize = 4096;
/// The most classes a task may name.
pub const MAX_CLASSES: usize = 1024;
/// The longest name of a feature or class, in bytes (UTF-8).
pub const MAX_NAME_LEN: usize = 255;
/// The longest architecture string, in bytes (ASCII).
pub const MAX_ARCHITECTURE_LEN: usize = 64;

/// The longest encoded [`TrainingSpec`].
pub const MAX_TRAINING_SPEC_LEN: usize = 1
    + MAX_ARCHITECTURE_LEN
    + 4
    + MAX_FEATURES * (1 + MAX_NAME_LEN)
    + 4
    + MAX_CLASSES * (1 + MAX_NAME_LEN)
    + 1
    + 4
    + 4
    + 8
    + 8
    + 1
    + 2 * 4 * (MAX_FEATURES + 1);

/// The largest fraction of its rows a site may hold out for evaluation.
pub const MAX_HOLDOUT: f64 = 0.5;

/// The local optimiser each site runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LocalOptimizer {
    /// Stochastic gradient descent.
    Sgd = 0,
    /// Adam.
    Adam = 1,
}

/// Whether row `i` of a site's rows is held out for evaluation at
/// `holdout` (see [`TrainingSpec::holdout`]): evenly spaced, the same rows
/// every round and on every run.
#[must_use]
#[expect(
    clippy::cast_precision_loss,
    reason = "row indices stay far below 2^52"
)]
pub fn held_out(i: usize, holdout: f64) -> bool {
    let i = i as f64;
    ((i + 1.0) * holdout).floor() > (i * holdout).floor()
}

/// What each site trains, on which columns, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSpec {
    /// The model family, as the learning layer names it (`logistic`,
    /// `mlp:W1,W2,…`); printable ASCII.
    pub architecture: String,
    /// The feature columns, by name and in order.
    pub features: Vec<String>,
    /// The label's classes; a row's class id is its label's position.
    /// Empty for a regression task: the label is then a number.
    pub classes: Vec<String>,
    /// The local optimiser.
    pub optimizer: LocalOptimizer,
    /// Local epochs per round, `1..=1000`.
    pub epochs: u32,
    /// Local batch size, `1..=65536`.
    pub batch_size: u32,
    /// The local learning rate, finite and positive.
    pub learning_rate: f64,
    /// The fraction of each site's rows, in `[0, 0.5]`, held out of
    /// training for evaluation rounds: row `i` (0-based, in the site's
    /// order) is held out when `floor((i + 1)·holdout) > floor(i·holdout)`.
    pub holdout: f64,
    /// The per-column `(mean, standard deviation)` every site
    /// standardises its rows with, one of each per feature and, for a
    /// regression task, one more for the label (see
    /// [`TrainingSpec::columns`]); `None` leaves the rows as they are.
    pub standardization: Option<(Vec<f32>, Vec<f32>)>,
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    out.push(u8::try_from(name.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(name.as_bytes());
}

fn read_name(r: &mut Reader<'_>, field: &'static str, max: usize) -> Result<String> {
    let len = usize::from(r.u8(field)?);
    if len == 0 || len > max {
        return Err(r.err(field, DecodeErrorKind::OutOfRange));
    }
    let bytes = r.bytes(len, field)?;
    core::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| r.err(field, DecodeErrorKind::OutOfRange))
}

fn read_names(
    r: &mut Reader<'_>,
    field: &'static str,
    min: usize,
    max: usize,
) -> Result<Vec<String>> {
    // Each name takes at least 2 bytes: its length and one byte.
    let count = r.count(field, max, 2)?;
    if count < min {
        return Err(r.err(field, DecodeErrorKind::OutOfRange));
    }
    let mut names = Vec::with_capacity(count);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..count {
        let name = read_name(r, field, MAX_NAME_LEN)?;
        if !seen.insert(name.clone()) {
            return Err(r.err(field, DecodeErrorKind::NotCanonical));
        }
        names.push(name);
    }
    Ok(names)
}

fn read_f32s(
    r: &mut Reader<'_>,
    field: &'static str,
    n: usize,
    ok: impl Fn(f32) -> bool,
) -> Result<Vec<f32>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let v = f32::from_bits(r.u32(field)?);
        if !ok(v) {
            return Err(r.err(field, DecodeErrorKind::OutOfRange));
        }
        out.push(v);
    }
    Ok(out)
}

impl TrainingSpec {
    /// Whether the task is a regression (no classes: the label is a
    /// number).
    #[must_use]
    pub fn is_regression(&self) -> bool {
        self.classes.is_empty()
    }

    /// The columns a standardisation and a statistics round cover: the
    /// features, and for a regression task the label after them.
    #[must_use]
    pub fn columns(&self) -> usize {
        self.features
            .len()
            .saturating_add(usize::from(self.is_regression()))
    }

    /// Checks every rule the decoder enforces, so that what is encoded
    /// decodes: names of 1 to 255 bytes, unique, at most 4096 features and
    /// 2 to 1024 classes (or none, for a regression); a printable-ASCII architecture of at most 64
    /// bytes; epochs, batch size and learning rate in range; one finite
    /// mean and one finite positive deviation per column.
    ///
    /// # Errors
    /// The rule broken.
    pub fn validate(&self) -> core::result::Result<(), &'static str> {
        let name_ok = |n: &String| (1..=MAX_NAME_LEN).contains(&n.len());
        let unique = |names: &[String]| {
            names
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len()
                == names.len()
        };
        if !(1..=MAX_ARCHITECTURE_LEN).contains(&self.architecture.len())
            || !self.architecture.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err("architecture: 1 to 64 printable ASCII characters");
        }
        if !(1..=MAX_FEATURES).contains(&self.features.len())
            || !self.features.iter().all(name_ok)
            || !unique(&self.features)
        {
            return Err("features: 1 to 4096 unique names of 1 to 255 bytes");
        }
        if !(self.classes.is_empty() || (2..=MAX_CLASSES).contains(&self.classes.len()))
            || !self.classes.iter().all(name_ok)
            || !unique(&self.classes)
        {
            return Err("classes: none (regression) or 2 to 1024 unique names of 1 to 255 bytes");
        }
        if !(1..=1000).contains(&self.epochs) {
            return Err("epochs: 1 to 1000");
        }
        if !(1..=65_536).contains(&self.batch_size) {
            return Err("batch_size: 1 to 65536");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return Err("learning_rate: finite and positive");
        }
        if !(0.0..=MAX_HOLDOUT).contains(&self.holdout) {
            return Err("holdout: in [0, 0.5]");
        }
        if let Some((mean, std)) = &self.standardization
            && (mean.len() != self.columns()
                || std.len() != self.columns()
                || !mean.iter().all(|v| v.is_finite())
                || !std.iter().all(|v| v.is_finite() && *v > 0.0))
        {
            return Err(
                "standardization: one finite mean and positive deviation per feature (and the label, for a regression)",
            );
        }
        Ok(())
    }

    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_name(out, &self.architecture);
        put_count(out, self.features.len());
        for f in &self.features {
            put_name(out, f);
        }
        put_count(out, self.classes.len());
        for c in &self.classes {
            put_name(out, c);
        }
        out.push(self.optimizer as u8);
        out.extend_from_slice(&self.epochs.to_be_bytes());
        out.extend_from_slice(&self.batch_size.to_be_bytes());
        out.extend_from_slice(&self.learning_rate.to_bits().to_be_bytes());
        out.extend_from_slice(&self.holdout.to_bits().to_be_bytes());
        match &self.standardization {
            None => out.push(0),
            Some((mean, std)) => {
                out.push(1);
                for v in mean.iter().chain(std) {
                    out.extend_from_slice(&v.to_bits().to_be_bytes());
                }
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self> {
        let architecture = read_name(r, "architecture", MAX_ARCHITECTURE_LEN)?;
        if !architecture.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(r.err("architecture", DecodeErrorKind::OutOfRange));
        }
        let features = read_names(r, "features", 1, MAX_FEATURES)?;
        // None (a regression) or at least two.
        let classes = read_names(r, "classes", 0, MAX_CLASSES)?;
        if classes.len() == 1 {
            return Err(r.err("classes", DecodeErrorKind::OutOfRange));
        }
        let optimizer = match r.u8("optimizer")? {
            0 => LocalOptimizer::Sgd,
            1 => LocalOptimizer::Adam,
            _ => return Err(r.err("optimizer", DecodeErrorKind::OutOfRange)),
        };
        let epochs = r.u32("epochs")?;
        if !(1..=1000).contains(&epochs) {
            return Err(r.err("epochs", DecodeErrorKind::OutOfRange));
        }
        let batch_size = r.u32("batch_size")?;
        if !(1..=65_536).contains(&batch_size) {
            return Err(r.err("batch_size", DecodeErrorKind::OutOfRange));
        }
        let learning_rate = f64::from_bits(r.u64("learning_rate")?);
        if !(learning_rate.is_finite() && learning_rate > 0.0) {
            return Err(r.err("learning_rate", DecodeErrorKind::OutOfRange));
        }
        let holdout = f64::from_bits(r.u64("holdout")?);
        if !(0.0..=MAX_HOLDOUT).contains(&holdout) {
            return Err(r.err("holdout", DecodeErrorKind::OutOfRange));
        }
        let standardization = match r.u8("standardization")? {
            0 => None,
            1 => {
                let n = features
                    .len()
                    .saturating_add(usize::from(classes.is_empty()));
                let mean = read_f32s(r, "mean", n, f32::is_finite)?;
                let std = read_f32s(r, "std", n, |v| v.is_finite() && v > 0.0)?;
                Some((mean, std))
            }
            _ => return Err(r.err("standardization", DecodeErrorKind::OutOfRange)),
        };
        Ok(Self {
            architecture,
            features,
            classes,
            optimizer,
            epochs,
            batch_size,
            learning_rate,
            holdout,
            standardization,
        })
    }
}
