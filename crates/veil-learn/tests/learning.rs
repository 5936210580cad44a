//! veil-learn: training converges, flat vectors and checkpoints round-trip,
//! bad CSVs give named errors, partitions cover every row, the server
//! optimisers follow their update rules, and a secure-aggregated mean equals
//! the plain mean up to the quantisation bound.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::cast_precision_loss
)]

use std::path::Path;

use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use veil_learn::dataset::{CsvFormat, Dataset, Standardizer, parse_indices};
use veil_learn::eval::{evaluate, roc_auc};
use veil_learn::model::{Architecture, Model, ModelSpec};
use veil_learn::partition::{Partition, partition};
use veil_learn::server_opt::{ServerOptimizer, ServerOptimizerKind};
use veil_learn::train::{LocalOptimizer, LocalTraining, train_local};
use veil_learn::{Error, checkpoint};

/// Rows `x ~ N(0, I)` in 4 dimensions labelled by a fixed linear rule
/// (with `classes` bands of `w·x`).
fn synthetic(rows: usize, classes: u32, seed: u64) -> Dataset {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let w = [1.0_f32, -2.0, 0.5, 1.5];
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..rows {
        let x: Vec<f32> = (0..4).map(|_| rng.random::<f32>() * 2.0 - 1.0).collect();
        let s: f32 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
        let label = if classes == 2 {
            u32::from(s > 0.0)
        } else if s < -0.7 {
            0
        } else if s < 0.7 {
            1
        } else {
            2
        };
        features.extend(x);
        labels.push(label);
    }
    Dataset {
        feature_names: (0..4).map(|i| format!("x{i}")).collect(),
        features,
        labels,
        classes: classes as usize,
        targets: None,
    }
}

fn logistic(inputs: usize, classes: usize) -> ModelSpec {
    ModelSpec {
        architecture: Architecture::Logistic,
        inputs,
        classes,
    }
}

#[test]
fn training_converges_on_a_linear_problem() {
    let train = synthetic(400, 2, 1);
    let test = synthetic(200, 2, 2);
    let spec = logistic(4, 2);
    let start = spec.init(0);
    let before = evaluate(&spec, &start, &test).unwrap();
    assert!(
        (before.loss - std::f64::consts::LN_2).abs() < 1e-6,
        "zero model: loss ln 2"
    );
    for optimizer in [LocalOptimizer::Sgd, LocalOptimizer::Adam] {
        let settings = LocalTraining {
            optimizer,
            epochs: 20,
            batch_size: 16,
            learning_rate: if optimizer == LocalOptimizer::Sgd {
                0.5
            } else {
                0.05
            },
        };
        let delta = train_local(&spec, &start, &train, &settings, 7).unwrap();
        let trained: Vec<f32> = start.iter().zip(&delta).map(|(a, b)| a + b).collect();
        let after = evaluate(&spec, &trained, &test).unwrap();
        assert!(after.accuracy >= 0.95, "{optimizer:?}: {after:?}");
        assert!(after.loss < 0.3, "{optimizer:?}: {after:?}");
        assert!(after.auc.unwrap() > 0.98, "{optimizer:?}: {after:?}");
    }
}

#[test]
fn softmax_and_mlp_models_learn_three_classes() {
    let train = synthetic(600, 3, 3);
    let test = synthetic(300, 3, 4);
    for spec in [
        logistic(4, 3),
        ModelSpec {
            architecture: Architecture::Mlp { hidden: vec![16] },
            inputs: 4,
            classes: 3,
        },
    ] {
        let start = spec.init(5);
        let settings = LocalTraining {
            optimizer: LocalOptimizer::Adam,
            epochs: 30,
            batch_size: 32,
            learning_rate: 0.05,
        };
        let delta = train_local(&spec, &start, &train, &settings, 9).unwrap();
        let trained: Vec<f32> = start.iter().zip(&delta).map(|(a, b)| a + b).collect();
        let m = evaluate(&spec, &trained, &test).unwrap();
        assert!(m.accuracy >= 0.85, "{spec:?}: {m:?}");
        assert!(m.auc.is_none());
    }
}

#[test]
fn flat_vectors_round_trip_in_the_documented_order() {
    let spec = ModelSpec {
        architecture: Architecture::Mlp { hidden: vec![5, 3] },
        inputs: 4,
        classes: 3,
    };
    let shapes = spec.tensors();
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "layer0.weight",
            "layer0.bias",
            "layer1.weight",
            "layer1.bias",
            "layer2.weight",
            "layer2.bias"
        ]
    );
    assert_eq!(shapes[0].1, vec![5, 4]);
    assert_eq!(spec.num_params(), 5 * 4 + 5 + 3 * 5 + 3 + 3 * 3 + 3);
    let flat: Vec<f32> = (0..spec.num_params()).map(|i| i as f32 * 0.25).collect();
    let model = Model::from_flat(&spec, &flat).unwrap();
    assert_eq!(model.to_flat().unwrap(), flat);
    // Element (row 1, column 2) of layer0.weight is flat index 1·4 + 2.
    let w = model.vars()[0].as_tensor().to_vec2::<f32>().unwrap();
    assert_eq!(w[1][2], flat[6]);
    assert!(matches!(
        Model::from_flat(&spec, &flat[1..]),
        Err(Error::Shape(_))
    ));
}

#[test]
fn a_checkpoint_reloads_to_identical_predictions_in_veil_and_in_candle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let spec = ModelSpec {
        architecture: Architecture::Mlp { hidden: vec![8] },
        inputs: 4,
        classes: 2,
    };
    let params = spec.init(11);
    std::fs::write(&path, checkpoint::encode(&spec, &params).unwrap()).unwrap();
    assert_eq!(checkpoint::load(&path, &spec).unwrap(), params);
    let data = synthetic(50, 2, 12);
    let a = evaluate(&spec, &params, &data).unwrap();
    let b = evaluate(&spec, &checkpoint::load(&path, &spec).unwrap(), &data).unwrap();
    assert_eq!(a, b);
    let tensors = candle_core::safetensors::load(&path, &candle_core::Device::Cpu).unwrap();
    assert_eq!(tensors["layer0.weight"].dims(), [8, 4]);
    assert_eq!(tensors["layer1.bias"].dims(), [1]);
    // A checkpoint of another shape is refused by name.
    let other = logistic(4, 2);
    let err = checkpoint::load(&path, &other).unwrap_err().to_string();
    assert!(err.contains("layer0.weight"), "{err}");
}

#[test]
fn bad_csvs_name_the_line_and_the_column() {
    let p = Path::new("data.csv");
    let cases = [
        ("a,b\n1,2\n", "the last column must be `label`"),
        (
            "a,b,label\n1,2,0\n3,x,1\n",
            "line 3, column \"b\": \"x\" is not a number",
        ),
        (
            "a,b,label\n1,2,0\n3,4\n",
            "line 3: 2 values: the label is missing",
        ),
        (
            "a,b,label\n1,2,0\n3,4,5,6\n",
            "line 3: 4 values, the header has 3",
        ),
        ("a,b,label\n1,2,0.5\n", "line 2, column \"label\""),
        ("a,b,label\n1,NaN,0\n", "is not finite"),
        ("a,b,label\n", "no data rows"),
        ("", "no header"),
    ];
    for (text, needle) in cases {
        let err = Dataset::parse_csv(text, p).unwrap_err().to_string();
        assert!(err.starts_with("data.csv: line"), "{err}");
        assert!(err.contains(needle), "{needle}: {err}");
    }
    let err = parse_indices("1\n2\nthree\n", Path::new("idx.txt"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("idx.txt: line 3"), "{err}");
    let d = Dataset::parse_csv("a,b,label\n1,2,0\n3,4,1\n5,6,1\n", p).unwrap();
    assert!(d.split(&[0, 0]).is_err());
    assert!(d.split(&[3]).is_err());
    let (train, test) = d.split(&[1]).unwrap();
    assert_eq!((train.rows(), test.rows()), (2, 1));
    assert_eq!(test.row(0), [3.0, 4.0]);
}

#[test]
fn standardisation_uses_training_statistics() {
    let mut train = Dataset::parse_csv("a,b,label\n1,5,0\n3,5,1\n", Path::new("t")).unwrap();
    let mut test = Dataset::parse_csv("a,b,label\n5,7,0\n", Path::new("t")).unwrap();
    let s = Standardizer::fit(&train);
    s.apply(&mut train);
    s.apply(&mut test);
    assert_eq!(train.features, vec![-1.0, 0.0, 1.0, 0.0]);
    // Mean 2, sd 1 from the training rows; the constant column keeps sd 1.
    assert_eq!(test.features, vec![3.0, 2.0]);
}

#[test]
fn partitions_cover_every_row_once_and_repeat_by_seed() {
    let labels: Vec<u32> = (0..200).map(|i| u32::from(i % 3 == 0)).collect();
    for how in [
        Partition::Iid,
        Partition::Dirichlet { alpha: 0.1 },
        Partition::Dirichlet { alpha: 100.0 },
    ] {
        let parts = partition(&labels, 20, how, 3).unwrap();
        assert_eq!(parts.len(), 20);
        assert!(parts.iter().all(|p| !p.is_empty()), "{how:?}");
        let mut all: Vec<usize> = parts.concat();
        all.sort_unstable();
        assert_eq!(all, (0..200).collect::<Vec<_>>(), "{how:?}");
        assert_eq!(parts, partition(&labels, 20, how, 3).unwrap());
    }
    // Small alpha skews the label mix: some client is (nearly) single-class.
    let skewed = partition(&labels, 20, Partition::Dirichlet { alpha: 0.1 }, 3).unwrap();
    let purity = |p: &Vec<usize>| {
        let ones = p.iter().filter(|&&i| labels[i] == 1).count() as f64;
        (ones / p.len() as f64).max(1.0 - ones / p.len() as f64)
    };
    assert!(
        skewed
            .iter()
            .filter(|p| p.len() >= 5)
            .any(|p| purity(p) >= 0.95)
    );
    assert!(partition(&labels, 201, Partition::Iid, 0).is_err());
    assert!(partition(&labels, 2, Partition::Dirichlet { alpha: 0.0 }, 0).is_err());
}

#[test]
fn server_optimisers_follow_their_update_rules() {
    let delta = [0.5_f32, -0.25];
    let mut avg = ServerOptimizer::new(ServerOptimizerKind::FedAvg { lr: 2.0 }, 2).unwrap();
    let mut x = [1.0_f32, 1.0];
    avg.apply(&mut x, &delta).unwrap();
    assert_eq!(x, [2.0, 0.5]);
    let (lr, b1, b2, tau) = (0.1_f32, 0.9_f32, 0.99_f32, 1e-3_f32);
    for yogi in [false, true] {
        let kind = if yogi {
            ServerOptimizerKind::FedYogi {
                lr,
                beta1: b1,
                beta2: b2,
                tau,
            }
        } else {
            ServerOptimizerKind::FedAdam {
                lr,
                beta1: b1,
                beta2: b2,
                tau,
            }
        };
        let mut opt = ServerOptimizer::new(kind, 2).unwrap();
        let mut x = [0.0_f32; 2];
        opt.apply(&mut x, &delta).unwrap();
        for (xi, d) in x.iter().zip(delta) {
            let m = (1.0 - b1) * d;
            let v0 = tau * tau;
            // v0 < d², so Yogi's sign term is -1: v grows by (1-β2)d².
            let v = if yogi {
                v0 + (1.0 - b2) * d * d
            } else {
                b2 * v0 + (1.0 - b2) * d * d
            };
            assert!((xi - lr * m / (v.sqrt() + tau)).abs() < 1e-7, "yogi={yogi}");
        }
    }
    assert!(ServerOptimizer::new(ServerOptimizerKind::FedAvg { lr: 0.0 }, 1).is_err());
    assert!(avg.apply(&mut [0.0; 3], &[0.0; 3]).is_err());
}

#[test]
fn roc_auc_matches_the_mann_whitney_statistic() {
    assert!((roc_auc(&[0.1, 0.4, 0.35, 0.8], &[0, 0, 1, 1]) - 0.75).abs() < 1e-12);
    assert!((roc_auc(&[0.5, 0.5, 0.5, 0.5], &[0, 1, 0, 1]) - 0.5).abs() < 1e-12);
    assert!((roc_auc(&[1.0, 2.0], &[1, 0])).abs() < 1e-12);
}

/// The secure-aggregated mean equals the plain mean of the same clipped
/// updates up to the quantisation bound: stochastic rounding moves each
/// coordinate by less than one quantum `1/scale`, so the mean of `m`
/// contributions is off by less than `1/scale`.
#[test]
fn the_secure_mean_equals_the_plain_mean_within_one_quantum() {
    use veil_secagg::sim::{SimParams, Simulation};
    let train = synthetic(300, 2, 21);
    let spec = logistic(4, 2);
    let global = spec.init(0);
    let parts = partition(&train.labels, 6, Partition::Iid, 1).unwrap();
    let settings = LocalTraining {
        optimizer: LocalOptimizer::Sgd,
        epochs: 2,
        batch_size: 8,
        learning_rate: 0.3,
    };
    let (clip, scale, bits) = (1.0, 4096.0, 24_u32);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut clipped = Vec::new();
    let mut inputs = Vec::new();
    for (i, rows) in parts.iter().enumerate() {
        let mut delta =
            train_local(&spec, &global, &train.subset(rows), &settings, i as u64).unwrap();
        let c = veil_dp::contribution::contribute(&mut delta, clip, scale, bits, 0.0, &mut rng)
            .unwrap();
        clipped.push(delta);
        inputs.push(c.input.to_vec());
    }
    let mut sim = Simulation::new(SimParams {
        n: 6,
        k: 5,
        t: 4,
        d: u32::try_from(spec.num_params()).unwrap(),
        bits,
        seed: 5,
        sparse_ids: false,
        max_corrupt: 0,
    });
    sim.set_inputs(inputs);
    let result = sim.run().result.unwrap();
    let secure = veil_dp::contribution::mean_update(&result.sum, scale, bits, 6).unwrap();
    for (j, s) in secure.iter().enumerate() {
        let plain: f64 = clipped.iter().map(|u| f64::from(u[j])).sum::<f64>() / 6.0;
        assert!(
            (f64::from(*s) - plain).abs() < 1.0 / scale,
            "coordinate {j}"
        );
    }
}

#[test]
fn dp_sgd_learns_without_noise_and_is_noisy_with_it() {
    use veil_learn::dp_sgd::{DpSgd, schedule, train_local_dp_sgd};
    let train = synthetic(300, 2, 31);
    let test = synthetic(200, 2, 32);
    let spec = logistic(4, 2);
    let start = spec.init(0);
    let settings = LocalTraining {
        optimizer: LocalOptimizer::Sgd,
        epochs: 5,
        batch_size: 30,
        learning_rate: 0.5,
    };
    assert_eq!(schedule(300, &settings), (0.1, 50));
    assert_eq!(schedule(10, &settings), (1.0, 5));
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let quiet = DpSgd {
        clip_norm: 1.0,
        noise_multiplier: 0.0,
    };
    let delta = train_local_dp_sgd(&spec, &start, &train, &settings, &quiet, &mut rng).unwrap();
    let trained: Vec<f32> = start.iter().zip(&delta).map(|(a, b)| a + b).collect();
    assert!(evaluate(&spec, &trained, &test).unwrap().accuracy >= 0.93);
    let loud = DpSgd {
        clip_norm: 1.0,
        noise_multiplier: 1.0,
    };
    let a = train_local_dp_sgd(&spec, &start, &train, &settings, &loud, &mut rng).unwrap();
    let b = train_local_dp_sgd(&spec, &start, &train, &settings, &loud, &mut rng).unwrap();
    assert_ne!(a, b, "fresh noise each run");
}

/// 4×4 images with a bright bar: classes by where it lies (top, bottom,
/// left, right), with noise.
fn bars(rows: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut features = Vec::new();
    let mut labels = Vec::new();
    for i in 0..rows {
        let class = (i % 4) as u32;
        for r in 0..4 {
            for c in 0..4 {
                let on = match class {
                    0 => r == 0,
                    1 => r == 3,
                    2 => c == 0,
                    _ => c == 3,
                };
                features.push(f32::from(u8::from(on)) + (rng.random::<f32>() - 0.5) * 0.6);
            }
        }
        labels.push(class);
    }
    Dataset {
        feature_names: (0..16).map(|i| format!("p{i}")).collect(),
        features,
        labels,
        classes: 4,
        targets: None,
    }
}

#[test]
fn the_cnn_reads_square_image_rows_in_its_documented_layout_and_learns() {
    let spec = ModelSpec {
        architecture: "cnn:4".parse().unwrap(),
        inputs: 16,
        classes: 4,
    };
    assert_eq!(spec.architecture, Architecture::Cnn { channels: 4 });
    assert_eq!(spec.architecture.to_string(), "cnn:4");
    let shapes = spec.tensors();
    let names: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["conv0.weight", "conv0.bias", "layer0.weight", "layer0.bias"]
    );
    // 4 kernels of 3×3, then 4 channels of 2×2 pooled cells to 4 logits.
    assert_eq!(shapes[0].1, vec![4, 1, 3, 3]);
    assert_eq!(shapes[2].1, vec![4, 16]);
    assert_eq!(spec.num_params(), 36 + 4 + 64 + 4);
    let start = spec.init(3);
    assert!(start[..36].iter().any(|v| *v != 0.0), "kernels are random");
    assert!(start[36..40].iter().all(|v| *v == 0.0), "biases are zero");
    let model = Model::from_flat(&spec, &start).unwrap();
    assert_eq!(model.to_flat().unwrap(), start);
    let settings = LocalTraining {
        optimizer: LocalOptimizer::Adam,
        epochs: 20,
        batch_size: 16,
        learning_rate: 0.05,
    };
    let delta = train_local(&spec, &start, &bars(200, 1), &settings, 2).unwrap();
    let trained: Vec<f32> = start.iter().zip(&delta).map(|(a, b)| a + b).collect();
    let m = evaluate(&spec, &trained, &bars(100, 5)).unwrap();
    assert!(m.accuracy >= 0.95, "{m:?}");
    // Rows that are not a square of an even side, and bad kernel counts.
    for (arch, inputs) in [("cnn:4", 15), ("cnn:4", 9), ("cnn:4", 1)] {
        let bad = ModelSpec {
            architecture: arch.parse().unwrap(),
            inputs,
            classes: 2,
        };
        assert!(bad.check().is_err(), "{inputs}");
    }
    assert!("cnn:0".parse::<Architecture>().is_err());
    assert!("cnn:257".parse::<Architecture>().is_err());
    assert!("cnn:x".parse::<Architecture>().is_err());
}

#[test]
fn linear_regression_learns_the_diabetes_progression_close_to_the_closed_form() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/diabetes.csv"
    ));
    let data = Dataset::load_csv_regression(path).unwrap();
    assert!(data.is_regression() && data.classes == 0 && data.rows() == 442);
    let test =
        veil_learn::dataset::load_indices(&path.with_file_name("diabetes.test_idx.txt")).unwrap();
    let (mut train, mut test) = data.split(&test).unwrap();
    let scaler = Standardizer::fit(&train);
    // Ten features and the label.
    assert_eq!(scaler.mean().len(), 11);
    scaler.apply(&mut train);
    scaler.apply(&mut test);
    let spec = ModelSpec {
        architecture: Architecture::Linear,
        inputs: 10,
        classes: 0,
    };
    let mut params = spec.init(0);
    let local = LocalTraining {
        optimizer: LocalOptimizer::Sgd,
        epochs: 1,
        batch_size: 16,
        learning_rate: 0.05,
    };
    for round in 0..40 {
        let update = train_local(&spec, &params, &train, &local, round).unwrap();
        params.iter_mut().zip(&update).for_each(|(p, u)| *p += u);
    }
    let m = evaluate(&spec, &params, &test).unwrap();
    // scikit-learn's least squares on this split: R² 0.332 (SGD's 40
    // epochs here: 0.299).
    let r2 = m.r2.unwrap();
    assert!(r2 > 0.28 && r2 < 0.36, "{m:?}");
    assert!(m.accuracy.is_nan() && m.auc.is_none());
    // In the label's units the MSE is near scikit-learn's 3424.
    let (_, sd) = scaler.target(10).unwrap();
    let mse = m.loss * f64::from(sd).powi(2);
    assert!((3200.0..3700.0).contains(&mse), "{mse}");
    // A prediction unscales to the label's units.
    let p = veil_learn::eval::predict(&spec, &params, &test).unwrap();
    let first = scaler.unscale(10, p.values.unwrap()[0]);
    assert!((0.0..400.0).contains(&first), "{first}");
}

#[test]
fn a_regression_csv_needs_numbers_and_its_model_the_right_family() {
    let bad = b"a,b,label\n1,2,3.5\n4,5,x\n";
    let e = Dataset::parse_csv_regression(bad, Path::new("r.csv"), CsvFormat::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 3") && e.contains("label") && e.contains("regression"),
        "{e}"
    );
    let inf = b"a,b,label\n1,2,inf\n";
    assert!(Dataset::parse_csv_regression(inf, Path::new("r.csv"), CsvFormat::default()).is_err());
    let ok = Dataset::parse_csv_regression(
        b"a,b,label\n1,2,3.5\n",
        Path::new("r.csv"),
        CsvFormat::default(),
    )
    .unwrap();
    assert_eq!(ok.targets, Some(vec![3.5]));
    // The schema of a regression (no classes) reads numbers too.
    let schema = veil_learn::dataset::Schema {
        features: vec!["a".into(), "b".into()],
        classes: Vec::new(),
    };
    let (d, labelled) = Dataset::parse_csv_for(
        b"a,b,label\n1,2,-7.25\n",
        Path::new("r.csv"),
        CsvFormat::default(),
        &schema,
        true,
    )
    .unwrap();
    assert!(labelled && d.targets == Some(vec![-7.25]));
    for (architecture, classes) in [(Architecture::Logistic, 0), (Architecture::Linear, 2)] {
        let spec = ModelSpec {
            architecture,
            inputs: 2,
            classes,
        };
        assert!(spec.check().is_err(), "{spec:?}");
    }
    let one = ModelSpec {
        architecture: Architecture::Mlp { hidden: vec![4] },
        inputs: 2,
        classes: 1,
    };
    assert!(one.check().is_err());
    let mlp = ModelSpec { classes: 0, ..one };
    assert!(mlp.check().is_ok() && mlp.outputs() == 1);
}
