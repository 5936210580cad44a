//! `veil predict`: scores a CSV with a model checkpoint. The checkpoint's
//! card (veil-learn `checkpoint::ModelCard`) says which columns the rows
//! need, in which order, the class names and the standardisation the model
//! was trained with, so raw rows score as the training rows did. With a
//! `label` column it reports accuracy, ROC-AUC (two classes) and the
//! confusion matrix; without one it writes each row's class and
//! probabilities. A regression's model reports the mean squared error (in
//! the label's units) and R², or writes each row's prediction.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;
use veil_learn::checkpoint::load_card;
use veil_learn::dataset::{CsvFormat, Dataset};
use veil_learn::eval::{Metrics, confusion, evaluate, predict};

use crate::failure::Failure;

#[derive(Debug, Args)]
pub(crate) struct PredictArgs {
    /// The model checkpoint, with its card (a run directory's
    /// `model.safetensors`).
    #[arg(long)]
    model: PathBuf,
    /// The rows to score: the model's feature columns in order, then
    /// `label` if known.
    #[arg(long)]
    data: PathBuf,
    /// The CSV's field delimiter (one ASCII character).
    #[arg(long, default_value_t = ',')]
    delimiter: char,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Without labels: write the predictions to this CSV instead of
    /// standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct Scored {
    rows: usize,
    accuracy: f64,
    auc: Option<f64>,
    loss: f64,
    classes: Vec<String>,
    /// `confusion[true][predicted]`.
    confusion: Vec<Vec<u64>>,
}

/// A regression's scores.
#[derive(Debug, Serialize)]
struct ScoredRegression {
    rows: usize,
    /// In the label's units.
    mse: f64,
    r2: Option<f64>,
}

/// Scores a regression's rows (standardised as the card says): the mean
/// squared error in the label's units and R², or the predictions.
fn run_regression(
    a: &PredictArgs,
    card: &veil_learn::checkpoint::ModelCard,
    params: &[f32],
    data: &Dataset,
    labelled: bool,
) -> Result<String, Failure> {
    let run = |e: veil_learn::Error| Failure::Run(e.to_string());
    let dim = data.dim();
    let unscale = |v: f32| {
        card.standardization
            .as_ref()
            .map_or(v, |s| s.unscale(dim, v))
    };
    let values: Vec<f32> = predict(&card.spec(), params, data)
        .map_err(run)?
        .values
        .unwrap_or_default()
        .into_iter()
        .map(unscale)
        .collect();
    if labelled {
        let targets: Vec<f32> = (0..data.rows()).map(|i| unscale(data.target(i))).collect();
        #[expect(clippy::cast_precision_loss, reason = "row counts are small")]
        let mse = values
            .iter()
            .zip(&targets)
            .map(|(p, t)| (f64::from(*p) - f64::from(*t)).powi(2))
            .sum::<f64>()
            / data.rows().max(1) as f64;
        let scored = ScoredRegression {
            rows: data.rows(),
            mse,
            r2: veil_learn::eval::r2(&values, &targets),
        };
        if a.json {
            return serde_json::to_string(&scored).map_err(|e| Failure::Run(e.to_string()));
        }
        return Ok(format!(
            "{}mean squared error {:.4} (RMSE {:.4}), R² {}",
            header(a, card, scored.rows),
            scored.mse,
            scored.mse.sqrt(),
            scored
                .r2
                .map_or("n/a (the labels do not vary)".to_owned(), |r| format!(
                    "{r:.4}"
                ))
        ));
    }
    let mut csv = "row,prediction\n".to_owned();
    for (i, v) in values.iter().enumerate() {
        csv += &format!("{i},{v}\n");
    }
    write_predictions(a, data.rows(), csv)
}

fn write_predictions(a: &PredictArgs, rows: usize, csv: String) -> Result<String, Failure> {
    if let Some(out) = &a.out {
        veil_net::files::write_atomic(out, csv.as_bytes(), false)?;
        return Ok(format!(
            "veil predict: {rows} rows of {} scored; predictions in {}",
            a.data.display(),
            out.display()
        ));
    }
    Ok(csv.trim_end().to_owned())
}

pub(crate) fn run(a: &PredictArgs) -> Result<String, Failure> {
    let delimiter = u8::try_from(a.delimiter)
        .ok()
        .filter(u8::is_ascii)
        .ok_or_else(|| format!("--delimiter {:?}: one ASCII character", a.delimiter))?;
    let (card, params) = load_card(&a.model).map_err(|e| Failure::Config(e.to_string()))?;
    let spec = card.spec();
    let (mut data, labelled) =
        Dataset::load_csv_for(&a.data, CsvFormat { delimiter }, &card.schema(), false)
            .map_err(|e| Failure::Config(e.to_string()))?;
    if let Some(s) = &card.standardization {
        s.apply(&mut data);
    }
    if spec.is_regression() {
        return run_regression(a, &card, &params, &data, labelled);
    }
    let run = |e: veil_learn::Error| Failure::Run(e.to_string());
    if labelled {
        let Metrics {
            loss,
            accuracy,
            auc,
            ..
        } = evaluate(&spec, &params, &data).map_err(run)?;
        let predicted = predict(&spec, &params, &data).map_err(run)?;
        let scored = Scored {
            rows: data.rows(),
            accuracy,
            auc,
            loss,
            classes: card.classes.clone(),
            confusion: confusion(&predicted.classes, &data.labels, card.classes.len()),
        };
        if a.json {
            return serde_json::to_string(&scored).map_err(|e| Failure::Run(e.to_string()));
        }
        return Ok(report(a, &card, &scored));
    }
    let predicted = predict(&spec, &params, &data).map_err(run)?;
    let mut csv = format!(
        "row,class,{}\n",
        card.classes
            .iter()
            .map(|c| format!("p_{c}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for (i, (class, p)) in predicted
        .classes
        .iter()
        .zip(&predicted.probabilities)
        .enumerate()
    {
        let name = card
            .classes
            .get(*class as usize)
            .map_or("?", String::as_str);
        let p: Vec<String> = p.iter().map(|v| format!("{v:.6}")).collect();
        csv += &format!("{i},{name},{}\n", p.join(","));
    }
    write_predictions(a, data.rows(), csv)
}

/// The report's first line.
fn header(a: &PredictArgs, card: &veil_learn::checkpoint::ModelCard, rows: usize) -> String {
    format!(
        "veil predict: {} rows of {} with {} ({}, training round {}{})\n",
        rows,
        a.data.display(),
        a.model.display(),
        card.architecture,
        card.training_round,
        card.privacy
            .map(|(e, d)| format!(", epsilon {e:.3} at delta {d}"))
            .unwrap_or_default()
    )
}

fn report(a: &PredictArgs, card: &veil_learn::checkpoint::ModelCard, s: &Scored) -> String {
    let mut text = header(a, card, s.rows);
    text += &format!(
        "accuracy {:.4}{}, loss {:.4}\n",
        s.accuracy,
        s.auc
            .map(|v| format!(", ROC-AUC {v:.4}"))
            .unwrap_or_default(),
        s.loss
    );
    text += "confusion matrix (rows: true class, columns: predicted)\n";
    let width = s
        .classes
        .iter()
        .map(String::len)
        .chain(s.confusion.iter().flatten().map(|v| v.to_string().len()))
        .max()
        .unwrap_or(1)
        .max(4);
    text += &format!("{:>width$}", "");
    for c in &s.classes {
        text += &format!(" {c:>width$}");
    }
    for (c, row) in s.classes.iter().zip(&s.confusion) {
        text += &format!("\n{c:>width$}");
        for v in row {
            text += &format!(" {v:>width$}");
        }
    }
    text
}
