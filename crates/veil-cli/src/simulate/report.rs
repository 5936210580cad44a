//! What a `veil simulate` run reports: a row of metrics per released
//! round (evaluated on the held-out rows), `metrics.csv` and
//! `metrics.json`, and the medians of the summary.

use std::path::Path;
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;
use serde::Serialize;
use veil_learn::dataset::{Dataset, Standardizer};
use veil_learn::eval::{Metrics, evaluate};
use veil_learn::model::ModelSpec;
use veil_net::server::RoundReport;

/// One row of `metrics.csv`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct RoundRow {
    pub(super) round: u64,
    pub(super) included: usize,
    pub(super) participants: usize,
    pub(super) test_loss: f64,
    pub(super) test_accuracy: f64,
    pub(super) test_auc: Option<f64>,
    /// A regression's R² on the test rows (its `test_loss` is then the mean
    /// squared error in the label's units, and `test_accuracy` NaN).
    pub(super) test_r2: Option<f64>,
    /// The secure evaluation of this round's model on the sites' held-out
    /// rows (when the run evaluates it): accuracy, AUC, mean loss.
    pub(super) secure_accuracy: Option<f64>,
    pub(super) secure_auc: Option<f64>,
    pub(super) secure_loss: Option<f64>,
    /// A regression's secure R² (its `secure_loss` is then the mean squared
    /// error in the label's units).
    pub(super) secure_r2: Option<f64>,
    /// With DP, the noise (standard deviation, rows) on each of its counts.
    pub(super) secure_count_noise: Option<f64>,
    pub(super) epsilon: Option<f64>,
    pub(super) ms: u64,
    pub(super) bytes_up_per_client: u64,
    pub(super) bytes_down_per_client: u64,
    pub(super) udp_bytes_up_per_client: u64,
    pub(super) udp_bytes_down_per_client: u64,
}

/// Evaluates each released model on the test rows and records a
/// [`RoundRow`]; drives the progress bar.
pub(super) struct Recorder {
    pub(super) spec: ModelSpec,
    /// The test rows, raw.
    pub(super) test: Dataset,
    /// The test rows standardised as the sites standardise theirs (from the
    /// start with a pooled standardisation, after the statistics round with
    /// a secure one).
    pub(super) standardized: Option<Dataset>,
    /// The standardisation of `standardized` (for a regression's label).
    pub(super) label_scaler: Option<Standardizer>,
    pub(super) rows: Arc<Mutex<Vec<RoundRow>>>,
    pub(super) progress: ProgressBar,
    /// With DP-SGD: the largest example-level ε of any client after each
    /// round (the server's own ledger is off then).
    pub(super) example_epsilon: Vec<f64>,
}

impl Recorder {
    pub(super) fn released(&mut self, report: &RoundReport, model: &[f32]) {
        if let Some(st) = &report.statistics {
            match Standardizer::from_parts(st.mean.clone(), st.std.clone()) {
                Ok(scaler) => {
                    let mut test = self.test.clone();
                    scaler.apply(&mut test);
                    self.standardized = Some(test);
                    self.label_scaler = Some(scaler);
                    self.progress
                        .set_message(format!("statistics of {:.0} rows released", st.rows));
                }
                Err(e) => self
                    .progress
                    .set_message(format!("statistics unusable: {e}")),
            }
            return;
        }
        if let Some(found) = &report.evaluation {
            // A secure evaluation of a released round's model: it goes on
            // that round's row; what it spent is the run's ε from now on.
            if let Ok(mut rows) = self.rows.lock()
                && let Some(row) = rows
                    .iter_mut()
                    .rev()
                    .find(|r| r.round == report.training_round)
            {
                row.secure_accuracy = found.accuracy;
                row.secure_auc = found.auc;
                row.secure_loss = found.mse.or(found.loss);
                row.secure_r2 = found.r2;
                row.secure_count_noise = found.count_noise_std;
                if report.epsilon.is_some() {
                    row.epsilon = report.epsilon;
                }
            }
            return;
        }
        let test = self.standardized.as_ref().unwrap_or(&self.test);
        let mut metrics = evaluate(&self.spec, model, test).unwrap_or(Metrics {
            loss: f64::NAN,
            accuracy: f64::NAN,
            auc: None,
            r2: None,
        });
        // A regression's loss, in the label's units when the test rows'
        // label was standardised.
        if self.spec.is_regression()
            && let Some(std) = self.label_std()
        {
            metrics.loss *= f64::from(std).powi(2);
        }
        let n = report.participants.max(1) as u64;
        let row = RoundRow {
            round: report.training_round,
            included: report.included,
            participants: report.participants,
            test_loss: metrics.loss,
            test_accuracy: metrics.accuracy,
            test_auc: metrics.auc,
            test_r2: metrics.r2,
            secure_r2: None,
            secure_accuracy: None,
            secure_auc: None,
            secure_loss: None,
            secure_count_noise: None,
            epsilon: report.epsilon.or_else(|| {
                usize::try_from(report.training_round)
                    .ok()
                    .and_then(|r| self.example_epsilon.get(r.wrapping_sub(1)).copied())
            }),
            ms: report.total_ms,
            bytes_up_per_client: report.bytes_in / n,
            bytes_down_per_client: report.bytes_out / n,
            udp_bytes_up_per_client: report.udp_bytes_in / n,
            udp_bytes_down_per_client: report.udp_bytes_out / n,
        };
        self.progress.set_message(format!(
            "{}{}",
            row.test_r2.map_or_else(
                || format!("acc {:.3}", row.test_accuracy),
                |r| format!("R² {r:.3}")
            ),
            row.epsilon
                .map(|e| format!("  ε {e:.2}"))
                .unwrap_or_default()
        ));
        self.progress.inc(1);
        if let Ok(mut rows) = self.rows.lock() {
            rows.push(row);
        }
    }
}

impl Recorder {
    /// The standard deviation the test rows' label was standardised with
    /// (a regression's, once a standardisation is known).
    fn label_std(&self) -> Option<f32> {
        self.label_scaler
            .as_ref()?
            .target(self.test.dim())
            .map(|(_, s)| s)
    }
}

pub(super) fn median(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

/// Writes `metrics.csv` and `metrics.json` into the run directory.
pub(super) fn write_metrics(out: &Path, rows: &[RoundRow]) -> Result<(), String> {
    let opt = |v: Option<f64>| v.map(|x| x.to_string()).unwrap_or_default();
    let mut csv = String::from(
        "round,included,participants,test_loss,test_accuracy,test_auc,epsilon,ms,bytes_up_per_client,bytes_down_per_client,udp_bytes_up_per_client,udp_bytes_down_per_client,secure_accuracy,secure_auc,secure_loss,test_r2,secure_r2\n",
    );
    for r in rows {
        csv += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            r.round,
            r.included,
            r.participants,
            r.test_loss,
            opt(Some(r.test_accuracy).filter(|a| !a.is_nan())),
            opt(r.test_auc),
            opt(r.epsilon),
            r.ms,
            r.bytes_up_per_client,
            r.bytes_down_per_client,
            r.udp_bytes_up_per_client,
            r.udp_bytes_down_per_client,
            opt(r.secure_accuracy),
            opt(r.secure_auc),
            opt(r.secure_loss),
            opt(r.test_r2),
            opt(r.secure_r2),
        );
    }
    let w = |name: &str, bytes: &[u8]| {
        std::fs::write(out.join(name), bytes)
            .map_err(|e| format!("{}: {e}", out.join(name).display()))
    };
    w("metrics.csv", csv.as_bytes())?;
    w(
        "metrics.json",
        serde_json::to_string_pretty(rows)
            .map_err(|e| e.to_string())?
            .as_bytes(),
    )
}
