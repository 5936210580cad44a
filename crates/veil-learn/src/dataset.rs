//! Datasets: numeric CSV with a header and a `label` column, a fixed test
//! split from an index file, and standardisation fitted on training rows.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};

/// The largest CSV file read (the shipped sets are under 300 kB).
pub const MAX_CSV_BYTES: u64 = 256 << 20;

/// Rows of numeric features with integer class labels `0..classes`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Feature names, in column order.
    pub feature_names: Vec<String>,
    /// Row-major features, `rows × dim`.
    pub features: Vec<f32>,
    /// One label per row.
    pub labels: Vec<u32>,
    /// Number of classes (`max label + 1`, at least 2).
    pub classes: usize,
}

impl Dataset {
    /// Number of rows.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Number of features.
    #[must_use]
    pub fn dim(&self) -> usize {
        self.feature_names.len()
    }

    /// Row `i`'s features.
    #[must_use]
    pub fn row(&self, i: usize) -> &[f32] {
        let d = self.dim();
        self.features.get(i * d..(i + 1) * d).unwrap_or(&[])
    }

    /// The rows at `indices`, in that order.
    #[must_use]
    pub fn subset(&self, indices: &[usize]) -> Self {
        let mut features = Vec::with_capacity(indices.len() * self.dim());
        let mut labels = Vec::with_capacity(indices.len());
        for &i in indices {
            features.extend_from_slice(self.row(i));
            labels.push(self.labels.get(i).copied().unwrap_or(0));
        }
        Self {
            feature_names: self.feature_names.clone(),
            features,
            labels,
            classes: self.classes,
        }
    }

    /// Parses CSV text: a header whose last column is `label`, then one
    /// numeric row per line. `path` only names the source in errors.
    ///
    /// # Errors
    /// [`Error::Csv`] naming the line and column for a missing `label`
    /// column, a ragged row, a non-numeric or non-finite value, or a label
    /// that is not a whole number in `0..=65535`.
    pub fn parse_csv(text: &str, path: &Path) -> Result<Self> {
        let err = |line: usize, column: Option<&str>, reason: String| Error::Csv {
            path: path.to_owned(),
            line,
            column: column.map(str::to_owned),
            reason,
        };
        let mut lines = text.lines().enumerate();
        let (_, header) = lines
            .next()
            .ok_or_else(|| err(1, None, "empty file: no header".into()))?;
        let names: Vec<&str> = header.split(',').map(str::trim).collect();
        if names.last() != Some(&"label") {
            return Err(err(1, None, "the last column must be `label`".into()));
        }
        let dim = names.len() - 1;
        if dim == 0 {
            return Err(err(1, None, "no feature columns".into()));
        }
        let mut features = Vec::new();
        let mut labels = Vec::new();
        for (i, line) in lines {
            let n = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let cells: Vec<&str> = line.split(',').map(str::trim).collect();
            if cells.len() != names.len() {
                let missing_label = cells.len() == dim;
                return Err(err(
                    n,
                    None,
                    if missing_label {
                        format!("{} values: the label is missing", cells.len())
                    } else {
                        format!("{} values, the header has {}", cells.len(), names.len())
                    },
                ));
            }
            for (cell, name) in cells.iter().zip(&names).take(dim) {
                let v: f32 = cell
                    .parse()
                    .map_err(|_| err(n, Some(name), format!("{cell:?} is not a number")))?;
                if !v.is_finite() {
                    return Err(err(n, Some(name), format!("{cell:?} is not finite")));
                }
                features.push(v);
            }
            let cell = cells.last().copied().unwrap_or_default();
            let label: u32 = cell.parse().ok().filter(|l| *l <= 65_535).ok_or_else(|| {
                err(
                    n,
                    Some("label"),
                    format!("{cell:?} is not a class id (a whole number 0..=65535)"),
                )
            })?;
            labels.push(label);
        }
        if labels.is_empty() {
            return Err(err(2, None, "no data rows".into()));
        }
        let classes = labels
            .iter()
            .copied()
            .max()
            .map_or(2, |m| m as usize + 1)
            .max(2);
        Ok(Self {
            feature_names: names.iter().take(dim).map(|s| (*s).to_owned()).collect(),
            features,
            labels,
            classes,
        })
    }

    /// Reads a CSV file (see [`Dataset::parse_csv`]).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Csv`].
    pub fn load_csv(path: &Path) -> Result<Self> {
        let text = read_capped(path)?;
        Self::parse_csv(&text, path)
    }

    /// Splits into (train, test) by the test row indices.
    ///
    /// # Errors
    /// [`Error::Config`] for an index out of range, or duplicated.
    pub fn split(&self, test: &[usize]) -> Result<(Self, Self)> {
        let set: BTreeSet<usize> = test.iter().copied().collect();
        if set.len() != test.len() {
            return Err(Error::Config("test indices repeat a row".into()));
        }
        if let Some(bad) = set.iter().find(|i| **i >= self.rows()) {
            return Err(Error::Config(format!(
                "test index {bad} is beyond the {} rows",
                self.rows()
            )));
        }
        let train: Vec<usize> = (0..self.rows()).filter(|i| !set.contains(i)).collect();
        let test: Vec<usize> = set.into_iter().collect();
        Ok((self.subset(&train), self.subset(&test)))
    }
}

fn read_capped(path: &Path) -> Result<String> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > MAX_CSV_BYTES {
        return Err(Error::Config(format!(
            "{}: {len} bytes, more than the {MAX_CSV_BYTES} allowed",
            path.display()
        )));
    }
    std::fs::read_to_string(path).map_err(io)
}

/// Parses a test-index file: one 0-based data-row index per line.
///
/// # Errors
/// [`Error::Csv`] naming the line of a value that is not an index.
pub fn parse_indices(text: &str, path: &Path) -> Result<Vec<usize>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.trim().parse().map_err(|_| Error::Csv {
                path: path.to_owned(),
                line: i + 1,
                column: None,
                reason: format!("{:?} is not a row index", l.trim()),
            })
        })
        .collect()
}

/// Reads a test-index file (see [`parse_indices`]).
///
/// # Errors
/// [`Error::Io`] or [`Error::Csv`].
pub fn load_indices(path: &Path) -> Result<Vec<usize>> {
    parse_indices(&read_capped(path)?, path)
}

/// Per-feature mean and standard deviation, fitted on training rows.
///
/// In a federated run this is fitted by whoever holds the training rows:
/// `veil simulate` fits it on the union of the clients' rows, as a
/// deployment would with an aggregate (summed) statistic.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardizer {
    mean: Vec<f32>,
    std: Vec<f32>,
}

impl Standardizer {
    /// Fits on `data`'s rows. A constant feature gets standard deviation 1.
    #[must_use]
    pub fn fit(data: &Dataset) -> Self {
        let d = data.dim();
        let n = data.rows().max(1) as f64;
        let mut mean = vec![0_f64; d];
        for i in 0..data.rows() {
            for (m, v) in mean.iter_mut().zip(data.row(i)) {
                *m += f64::from(*v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0_f64; d];
        for i in 0..data.rows() {
            for ((s, v), m) in var.iter_mut().zip(data.row(i)).zip(&mean) {
                *s += (f64::from(*v) - m).powi(2);
            }
        }
        #[expect(clippy::cast_possible_truncation, reason = "features are f32")]
        Self {
            mean: mean.iter().map(|m| *m as f32).collect(),
            std: var
                .iter()
                .map(|s| {
                    let sd = (s / n).sqrt();
                    if sd > 1e-12 { sd as f32 } else { 1.0 }
                })
                .collect(),
        }
    }

    /// Standardises `data` in place.
    pub fn apply(&self, data: &mut Dataset) {
        let d = data.dim();
        for row in data.features.chunks_exact_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}
