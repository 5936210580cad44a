//! The centralised baseline of `veil simulate`: the same model, trained on
//! all training rows in one place, evaluated on the same test rows.
//!
//! `cargo run --release -p veil-learn --example central -- data/breast_cancer.csv [logistic|mlp:64] [epochs]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use veil_learn::dataset::{Dataset, Standardizer, load_indices};
use veil_learn::eval::evaluate;
use veil_learn::model::{Architecture, ModelSpec};
use veil_learn::train::{LocalOptimizer, LocalTraining, train_local};

fn main() {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(
        args.next()
            .expect("usage: central DATA.csv [model] [epochs]"),
    );
    let model = args.next().unwrap_or_else(|| "logistic".into());
    let epochs: usize = args.next().map_or(100, |e| e.parse().unwrap());
    let data = Dataset::load_csv(&path).unwrap();
    let stem = path.file_stem().unwrap().to_str().unwrap();
    let test = load_indices(&path.with_file_name(format!("{stem}.test_idx.txt"))).unwrap();
    let (mut train, mut test) = data.split(&test).unwrap();
    let scaler = Standardizer::fit(&train);
    scaler.apply(&mut train);
    scaler.apply(&mut test);
    let architecture = match model.strip_prefix("mlp:") {
        Some(w) => Architecture::Mlp {
            hidden: w.split(',').map(|x| x.parse().unwrap()).collect(),
        },
        None => Architecture::Logistic,
    };
    let spec = ModelSpec {
        architecture,
        inputs: train.dim(),
        classes: data.classes,
    };
    let start = spec.init(1);
    let settings = LocalTraining {
        optimizer: LocalOptimizer::Sgd,
        epochs,
        batch_size: 16,
        learning_rate: 0.05,
    };
    let delta = train_local(&spec, &start, &train, &settings, 1).unwrap();
    let trained: Vec<f32> = start.iter().zip(&delta).map(|(a, b)| a + b).collect();
    let m = evaluate(&spec, &trained, &test).unwrap();
    println!(
        "central {model} on {} ({} train / {} test rows, {epochs} epochs of SGD): test accuracy {:.4}{}, loss {:.4}",
        path.display(),
        train.rows(),
        test.rows(),
        m.accuracy,
        m.auc
            .map(|a| format!(", ROC-AUC {a:.4}"))
            .unwrap_or_default(),
        m.loss
    );
}
