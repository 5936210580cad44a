//! Datasets: numeric CSV with a header and a `label` column, a fixed test
//! split from an index file, and standardisation fitted on training rows.

use std::collections::BTreeSet;
use std::path::Path;

use crate::error::{Error, Result};

/// The largest CSV file read (the shipped sets are under 300 kB).
pub const MAX_CSV_BYTES: u64 = 256 << 20;

/// The name of the label column.
pub const LABEL: &str = "label";

/// How a CSV file's fields are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvFormat {
    /// The field delimiter (`b','` by default; `b';'` or `b'\t'` are common).
    pub delimiter: u8,
}

impl Default for CsvFormat {
    fn default() -> Self {
        Self { delimiter: b',' }
    }
}

/// The columns a task expects of a site's CSV: its features by name and
/// order, then `label`, whose values are the classes by name (or, with no
/// classes, numbers: a regression).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema {
    /// The feature columns, in order.
    pub features: Vec<String>,
    /// The label's classes; a row's class id is its label's position here.
    /// Empty for a regression.
    pub classes: Vec<String>,
}

impl Schema {
    /// The class id of a label cell, if it is one of the classes.
    #[must_use]
    pub fn class_of(&self, cell: &str) -> Option<u32> {
        self.classes
            .iter()
            .position(|c| c == cell)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// Checks a header against the schema; `err(column, reason)` makes the
    /// error, naming the first column at fault.
    fn check_header(
        &self,
        names: &[String],
        require_label: bool,
        err: impl Fn(&str, String) -> Error,
    ) -> Result<()> {
        // A missing feature first, then a column the task does not know,
        // then the order: the most useful line for the site's operator.
        if let Some(missing) = self.features.iter().find(|f| !names.contains(f)) {
            return Err(err(missing, "missing: the task needs this feature".into()));
        }
        if let Some(extra) = names
            .iter()
            .find(|n| *n != LABEL && !self.features.contains(n))
        {
            return Err(err(
                extra,
                format!(
                    "not a feature of the task (its features: {:?})",
                    self.features
                ),
            ));
        }
        for (i, name) in names.iter().enumerate() {
            if name == LABEL {
                if i != names.len() - 1 {
                    return Err(err(LABEL, "`label` must be the last column".into()));
                }
                continue;
            }
            if let Some(j) = self.features.iter().position(|f| f == name)
                && j != i
            {
                return Err(err(
                    name,
                    format!(
                        "out of order: column {} here, column {} in the task",
                        i + 1,
                        j + 1
                    ),
                ));
            }
        }
        if require_label && names.last().map(String::as_str) != Some(LABEL) {
            return Err(err(LABEL, "missing: the rows need their label".into()));
        }
        Ok(())
    }
}

/// A CSV reader that names the file, the line and the column in errors.
struct CsvRows<'a> {
    records: csv::StringRecordsIntoIter<&'a [u8]>,
    path: &'a Path,
}

impl<'a> CsvRows<'a> {
    fn new(bytes: &'a [u8], path: &'a Path, format: CsvFormat) -> Self {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let records = csv::ReaderBuilder::new()
            .delimiter(format.delimiter)
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(bytes)
            .into_records();
        Self { records, path }
    }

    fn err(&self, line: usize, column: Option<&str>, reason: String) -> Error {
        Error::Csv {
            path: self.path.to_owned(),
            line,
            column: column.map(str::to_owned),
            reason,
        }
    }

    /// The next row and its line number; `None` at the end.
    fn row(&mut self) -> Result<Option<(usize, Vec<String>)>> {
        match self.records.next() {
            None => Ok(None),
            Some(Ok(record)) => {
                let line = record
                    .position()
                    .and_then(|p| usize::try_from(p.line()).ok())
                    .unwrap_or(0);
                Ok(Some((line, record.iter().map(str::to_owned).collect())))
            }
            Some(Err(e)) => {
                let line = e
                    .position()
                    .and_then(|p| usize::try_from(p.line()).ok())
                    .unwrap_or(0);
                let reason = match e.kind() {
                    csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_owned(),
                    _ => e.to_string(),
                };
                Err(self.err(line, None, reason))
            }
        }
    }

    /// The header's column names.
    fn header(&mut self) -> Result<Vec<String>> {
        match self.row()? {
            Some((_, names)) => Ok(names),
            None => Err(self.err(1, None, "empty file: no header".into())),
        }
    }

    /// Row `n`'s label cell as a regression target: a finite number.
    fn target(&self, n: usize, cell: &str) -> Result<f32> {
        cell.parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                self.err(
                    n,
                    Some(LABEL),
                    format!("{cell:?} is not a number (the task is a regression)"),
                )
            })
    }

    /// Appends row `n`'s first `dim` cells as finite numbers.
    fn push_features(
        &self,
        n: usize,
        cells: &[String],
        names: &[String],
        dim: usize,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        for (cell, name) in cells.iter().zip(names).take(dim) {
            let v: f32 = cell
                .parse()
                .map_err(|_| self.err(n, Some(name), format!("{cell:?} is not a number")))?;
            if !v.is_finite() {
                return Err(self.err(n, Some(name), format!("{cell:?} is not finite")));
            }
            out.push(v);
        }
        Ok(())
    }
}

/// Rows of numeric features with integer class labels `0..classes`, or
/// (a regression) real-valued targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Feature names, in column order.
    pub feature_names: Vec<String>,
    /// Row-major features, `rows × dim`.
    pub features: Vec<f32>,
    /// One class id per row (all 0 for a regression).
    pub labels: Vec<u32>,
    /// Number of classes (`max label + 1`, at least 2; 0 for a
    /// regression).
    pub classes: usize,
    /// A regression's targets, one per row; `None` for a classification.
    pub targets: Option<Vec<f32>>,
}

impl Dataset {
    /// Number of rows.
    #[must_use]
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Whether the rows' labels are real-valued targets.
    #[must_use]
    pub fn is_regression(&self) -> bool {
        self.targets.is_some()
    }

    /// Row `i`'s target (a regression), or class id as a number.
    #[must_use]
    #[expect(clippy::cast_precision_loss, reason = "class ids are at most 65535")]
    pub fn target(&self, i: usize) -> f32 {
        match &self.targets {
            Some(t) => t.get(i).copied().unwrap_or(0.0),
            None => self.labels.get(i).copied().unwrap_or(0) as f32,
        }
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
            targets: self.targets.as_ref().map(|t| {
                indices
                    .iter()
                    .map(|&i| t.get(i).copied().unwrap_or(0.0))
                    .collect()
            }),
        }
    }

    /// Parses CSV text: a header whose last column is `label`, then one
    /// numeric row per line, labels being class ids `0..=65535`. `path`
    /// only names the source in errors. Commas separate fields; see
    /// [`Dataset::parse_csv_with`] for another delimiter.
    ///
    /// # Errors
    /// [`Error::Csv`] naming the line and column for a missing `label`
    /// column, a ragged row, a non-numeric or non-finite value, or a label
    /// that is not a whole number in `0..=65535`.
    pub fn parse_csv(text: &str, path: &Path) -> Result<Self> {
        Self::parse_csv_with(text.as_bytes(), path, CsvFormat::default())
    }

    /// As [`Dataset::parse_csv`], in `format` (RFC 4180 quoting, an
    /// optional UTF-8 byte-order mark, blank lines skipped).
    ///
    /// # Errors
    /// As [`Dataset::parse_csv`]; also for a row that is not UTF-8 or
    /// whose quoting is broken.
    pub fn parse_csv_with(bytes: &[u8], path: &Path, format: CsvFormat) -> Result<Self> {
        Self::parse_csv_as(bytes, path, format, false)
    }

    /// As [`Dataset::parse_csv_with`], for a regression: each label is a
    /// finite number, kept in [`Dataset::targets`].
    ///
    /// # Errors
    /// As [`Dataset::parse_csv_with`], a label that is not a finite number
    /// instead of one that is not a class id.
    pub fn parse_csv_regression(bytes: &[u8], path: &Path, format: CsvFormat) -> Result<Self> {
        Self::parse_csv_as(bytes, path, format, true)
    }

    fn parse_csv_as(
        bytes: &[u8],
        path: &Path,
        format: CsvFormat,
        regression: bool,
    ) -> Result<Self> {
        let mut reader = CsvRows::new(bytes, path, format);
        let names = reader.header()?;
        if names.last().map(String::as_str) != Some(LABEL) {
            return Err(reader.err(1, None, "the last column must be `label`".into()));
        }
        let dim = names.len() - 1;
        if dim == 0 {
            return Err(reader.err(1, None, "no feature columns".into()));
        }
        let mut features = Vec::new();
        let mut labels = Vec::new();
        let mut targets = Vec::new();
        while let Some((n, cells)) = reader.row()? {
            if cells.len() != names.len() {
                return Err(reader.err(
                    n,
                    None,
                    if cells.len() == dim {
                        format!("{} values: the label is missing", cells.len())
                    } else {
                        format!("{} values, the header has {}", cells.len(), names.len())
                    },
                ));
            }
            reader.push_features(n, &cells, &names, dim, &mut features)?;
            let cell = cells.get(dim).map_or("", String::as_str);
            if regression {
                targets.push(reader.target(n, cell)?);
                labels.push(0);
                continue;
            }
            let label: u32 = cell.parse().ok().filter(|l| *l <= 65_535).ok_or_else(|| {
                reader.err(
                    n,
                    Some(LABEL),
                    format!("{cell:?} is not a class id (a whole number 0..=65535)"),
                )
            })?;
            labels.push(label);
        }
        if labels.is_empty() {
            return Err(reader.err(2, None, "no data rows".into()));
        }
        let classes = if regression {
            0
        } else {
            labels
                .iter()
                .copied()
                .max()
                .map_or(2, |m| m as usize + 1)
                .max(2)
        };
        Ok(Self {
            feature_names: names.into_iter().take(dim).collect(),
            features,
            labels,
            classes,
            targets: regression.then_some(targets),
        })
    }

    /// Parses a CSV file against a task's `schema`: its columns must be the
    /// schema's features, by name and in order, then `label` (optional when
    /// `require_label` is false: the rows are then unlabelled and the
    /// labels all 0); each label must be one of the schema's classes, whose
    /// position is the row's class id. Returns the rows and whether they
    /// are labelled.
    ///
    /// # Errors
    /// [`Error::Csv`] naming the file, the line and the column: a feature
    /// of the schema missing, a column the schema does not have, columns
    /// out of order, a missing `label`, a label outside the classes, or any
    /// error of [`Dataset::parse_csv_with`].
    pub fn parse_csv_for(
        bytes: &[u8],
        path: &Path,
        format: CsvFormat,
        schema: &Schema,
        require_label: bool,
    ) -> Result<(Self, bool)> {
        let mut reader = CsvRows::new(bytes, path, format);
        let names = reader.header()?;
        schema.check_header(&names, require_label, |column, reason| {
            reader.err(1, Some(column), reason)
        })?;
        let dim = schema.features.len();
        let labelled = names.len() > dim;
        let regression = schema.classes.is_empty();
        let mut features = Vec::new();
        let mut labels = Vec::new();
        let mut targets = Vec::new();
        while let Some((n, cells)) = reader.row()? {
            if cells.len() != names.len() {
                return Err(reader.err(
                    n,
                    None,
                    format!("{} values, the header has {}", cells.len(), names.len()),
                ));
            }
            reader.push_features(n, &cells, &names, dim, &mut features)?;
            if regression {
                targets.push(match cells.get(dim) {
                    Some(cell) => reader.target(n, cell)?,
                    None => 0.0,
                });
                labels.push(0);
                continue;
            }
            let label = match cells.get(dim) {
                Some(cell) => schema.class_of(cell).ok_or_else(|| {
                    reader.err(
                        n,
                        Some(LABEL),
                        format!(
                            "{cell:?} is not one of the task's classes {:?}",
                            schema.classes
                        ),
                    )
                })?,
                None => 0,
            };
            labels.push(label);
        }
        if labels.is_empty() {
            return Err(reader.err(2, None, "no data rows".into()));
        }
        Ok((
            Self {
                feature_names: schema.features.clone(),
                features,
                labels,
                classes: if regression {
                    0
                } else {
                    schema.classes.len().max(2)
                },
                targets: regression.then_some(targets),
            },
            labelled,
        ))
    }

    /// Reads a CSV file (see [`Dataset::parse_csv`]).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Csv`].
    pub fn load_csv(path: &Path) -> Result<Self> {
        Self::parse_csv_with(&read_capped(path)?, path, CsvFormat::default())
    }

    /// Reads a CSV file whose label is a number (see
    /// [`Dataset::parse_csv_regression`]).
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Csv`].
    pub fn load_csv_regression(path: &Path) -> Result<Self> {
        Self::parse_csv_regression(&read_capped(path)?, path, CsvFormat::default())
    }

    /// Reads a CSV file against a task's schema (see
    /// [`Dataset::parse_csv_for`]), refusing one over [`MAX_CSV_BYTES`]
    /// before reading it.
    ///
    /// # Errors
    /// [`Error::Io`], [`Error::Config`] for an oversized file, or as
    /// [`Dataset::parse_csv_for`].
    pub fn load_csv_for(
        path: &Path,
        format: CsvFormat,
        schema: &Schema,
        require_label: bool,
    ) -> Result<(Self, bool)> {
        Self::parse_csv_for(&read_capped(path)?, path, format, schema, require_label)
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

fn read_capped(path: &Path) -> Result<Vec<u8>> {
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
    std::fs::read(path).map_err(io)
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
    let bytes = read_capped(path)?;
    let text = core::str::from_utf8(&bytes).map_err(|_| Error::Csv {
        path: path.to_owned(),
        line: 1,
        column: None,
        reason: "not UTF-8 text".into(),
    })?;
    parse_indices(text, path)
}

/// Per-column mean and standard deviation, fitted on training rows: one
/// per feature and, for a regression, one more for the target (the model
/// then predicts the standardised target; [`Standardizer::unscale`] turns a
/// prediction back).
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
    /// A standardiser from its per-feature means and standard deviations.
    ///
    /// # Errors
    /// [`Error::Config`] unless both have the same length, every mean is
    /// finite and every deviation finite and positive.
    pub fn from_parts(mean: Vec<f32>, std: Vec<f32>) -> Result<Self> {
        if mean.len() != std.len()
            || mean.iter().any(|m| !m.is_finite())
            || std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(Error::Config(
                "standardisation: one finite mean and one finite positive deviation per feature"
                    .into(),
            ));
        }
        Ok(Self { mean, std })
    }

    /// The per-feature means.
    #[must_use]
    pub fn mean(&self) -> &[f32] {
        &self.mean
    }

    /// The per-feature standard deviations.
    #[must_use]
    pub fn std(&self) -> &[f32] {
        &self.std
    }

    /// Fits on `data`'s rows (and a regression's targets). A constant
    /// column gets standard deviation 1.
    #[must_use]
    pub fn fit(data: &Dataset) -> Self {
        let d = data.dim() + usize::from(data.is_regression());
        let n = data.rows().max(1) as f64;
        let column = |i: usize| {
            data.row(i)
                .iter()
                .copied()
                .chain(data.targets.as_ref().map(|_| data.target(i)))
        };
        let mut mean = vec![0_f64; d];
        for i in 0..data.rows() {
            for (m, v) in mean.iter_mut().zip(column(i)) {
                *m += f64::from(v);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n);
        let mut var = vec![0_f64; d];
        for i in 0..data.rows() {
            for ((s, v), m) in var.iter_mut().zip(column(i)).zip(&mean) {
                *s += (f64::from(v) - m).powi(2);
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

    /// Standardises `data` in place: its features, and a regression's
    /// targets when the standardiser has a column for them.
    pub fn apply(&self, data: &mut Dataset) {
        let d = data.dim();
        for row in data.features.chunks_exact_mut(d) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
        if let (Some(targets), Some((m, s))) = (data.targets.as_mut(), self.target(d)) {
            for t in targets {
                *t = (*t - m) / s;
            }
        }
    }

    /// The target's `(mean, std)` for rows of `dim` features: the column
    /// after the features, if the standardiser has one.
    #[must_use]
    pub fn target(&self, dim: usize) -> Option<(f32, f32)> {
        if self.mean.len() != dim + 1 {
            return None;
        }
        Some((*self.mean.get(dim)?, *self.std.get(dim)?))
    }

    /// A standardised prediction of the target, in the target's units
    /// (unchanged without a target column).
    #[must_use]
    pub fn unscale(&self, dim: usize, prediction: f32) -> f32 {
        self.target(dim)
            .map_or(prediction, |(m, s)| prediction * s + m)
    }
}
