//! The run's plots (plotters, PNG): accuracy (a regression's R²) and loss
//! by round, the secure evaluation's accuracy (R²) and AUC when the run
//! has one, and epsilon by
//! round when the run accounts one. Rounds are whole numbers on the
//! axis. Text uses the DejaVu Sans font shipped in `assets/`.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// One round's values.
pub(super) struct Point {
    round: f64,
    accuracy: f64,
    loss: f64,
    secure_accuracy: Option<f64>,
    secure_auc: Option<f64>,
    epsilon: Option<f64>,
    /// A regression's: `accuracy` holds R² and `loss` the squared error.
    regression: bool,
}

impl Point {
    pub(super) fn from_row(r: &super::report::RoundRow) -> Self {
        #[expect(clippy::cast_precision_loss, reason = "round numbers are small")]
        Self {
            round: r.round as f64,
            accuracy: r.test_r2.unwrap_or(r.test_accuracy),
            loss: r.test_loss,
            secure_accuracy: r.secure_r2.or(r.secure_accuracy),
            secure_auc: r.secure_auc,
            epsilon: r.epsilon,
            regression: r.test_r2.is_some(),
        }
    }
}

fn e(err: impl std::fmt::Display) -> String {
    format!("plot: {err}")
}

fn series(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    title: &str,
    points: &[(f64, f64)],
    color: RGBColor,
    rounds: f64,
) -> Result<(), String> {
    let finite: Vec<f64> = points
        .iter()
        .map(|p| p.1)
        .filter(|v| v.is_finite())
        .collect();
    let lo = finite
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let hi = finite
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(lo + 1e-9)
        * 1.05;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..rounds.max(1.0), lo..hi)
        .map_err(e)?;
    // Rounds are whole: label only whole values.
    let whole = |x: &f64| {
        if (x - x.round()).abs() < 1e-9 {
            format!("{x:.0}")
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .x_desc("round")
        .x_label_formatter(&whole)
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            color.stroke_width(2),
        ))
        .map_err(e)?;
    Ok(())
}

/// Draws `accuracy_loss.png`, `secure_evaluation.png` when any round was
/// evaluated securely, and `epsilon.png` when any round accounted an
/// epsilon; returns the files written.
pub(super) fn draw(out: &Path, points: &[Point]) -> Result<Vec<&'static str>, String> {
    let mut written = draw_test(out, points)?;
    let rounds = points.last().map_or(1.0, |p| p.round);
    let accuracy: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| p.secure_accuracy.map(|v| (p.round, v)))
        .collect();
    if !accuracy.is_empty() {
        let path = out.join("secure_evaluation.png");
        let root = BitMapBackend::new(&path, (900, 700)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let (top, bottom) = root.split_vertically(350);
        series(
            &top,
            if points.iter().any(|p| p.regression) {
                "secure evaluation: R² on the sites' held-out rows"
            } else {
                "secure evaluation: accuracy on the sites' held-out rows"
            },
            &accuracy,
            BLUE,
            rounds,
        )?;
        let auc: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| p.secure_auc.map(|v| (p.round, v)))
            .collect();
        if !auc.is_empty() {
            series(&bottom, "secure evaluation: ROC-AUC", &auc, MAGENTA, rounds)?;
        }
        root.present().map_err(e)?;
        written.push("secure_evaluation.png");
    }
    Ok(written)
}

fn draw_test(out: &Path, points: &[Point]) -> Result<Vec<&'static str>, String> {
    // A second registration of the same font is harmless.
    let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    let rounds = points.last().map_or(1.0, |p| p.round);
    let path = out.join("accuracy_loss.png");
    {
        let root = BitMapBackend::new(&path, (900, 700)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let (top, bottom) = root.split_vertically(350);
        let acc: Vec<(f64, f64)> = points.iter().map(|p| (p.round, p.accuracy)).collect();
        let loss: Vec<(f64, f64)> = points.iter().map(|p| (p.round, p.loss)).collect();
        let regression = points.iter().any(|p| p.regression);
        series(
            &top,
            if regression {
                "test R²"
            } else {
                "test accuracy"
            },
            &acc,
            BLUE,
            rounds,
        )?;
        series(
            &bottom,
            if regression {
                "test mean squared error"
            } else {
                "test loss"
            },
            &loss,
            RED,
            rounds,
        )?;
        root.present().map_err(e)?;
    }
    if points.iter().all(|p| p.epsilon.is_none()) {
        return Ok(vec!["accuracy_loss.png"]);
    }
    let path = out.join("epsilon.png");
    let root = BitMapBackend::new(&path, (900, 350)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let eps: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| p.epsilon.map(|v| (p.round, v)))
        .collect();
    series(&root, "epsilon spent", &eps, BLACK, rounds)?;
    root.present().map_err(e)?;
    Ok(vec!["accuracy_loss.png", "epsilon.png"])
}
