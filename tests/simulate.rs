//! `veil simulate` as a process: the embedded default trains over real QUIC
//! and writes its run directory; the privacy ledger stays within the target;
//! bad data and an existing run directory are one-line errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::Path;
use std::process::Command;

const VEIL: &str = env!("CARGO_BIN_EXE_veil");

fn simulate(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(VEIL)
        .arg("simulate")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_default_run_learns_and_writes_its_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = simulate(
        dir.path(),
        &["--rounds", "4", "--dp", "off", "--out", "run"],
    );
    assert!(ok, "{err}");
    assert!(out.contains("20 clients (dirichlet:0.5)"), "{out}");
    assert!(out.contains("privacy: off"), "{out}");
    let run = dir.path().join("run");
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 4);
    // Learning works: a zero model scores 0.63 (the majority class).
    let accuracy: f64 = rows[3][4].parse().unwrap();
    assert!(accuracy >= 0.9, "{csv}");
    for r in &rows {
        assert_eq!(r[1], "20", "every client in every sum: {csv}");
    }
    let bytes = std::fs::read(run.join("accuracy_loss.png")).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    // No privacy, no epsilon plot.
    assert!(!run.join("epsilon.png").exists());
    assert!(!out.contains("epsilon.png"), "{out}");
    let spec = veil_learn::model::ModelSpec {
        architecture: veil_learn::model::Architecture::Logistic,
        inputs: 30,
        classes: 2,
    };
    let model = veil_learn::checkpoint::load(&run.join("model.safetensors"), &spec).unwrap();
    assert!(model.iter().any(|w| *w != 0.0));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(json.as_array().unwrap().len(), 4);
    predict_scores_raw_rows_as_the_run_did(dir.path(), json[3]["test_accuracy"].as_f64().unwrap());
}

/// `veil predict` on the held-out rows as they are in the data file (not
/// standardised): the checkpoint's card carries the features, classes and
/// standardisation, so it scores exactly what the run reported.
fn predict_scores_raw_rows_as_the_run_did(dir: &Path, accuracy: f64) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let csv = std::fs::read_to_string(data.join("breast_cancer.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    let test: Vec<usize> = std::fs::read_to_string(data.join("breast_cancer.test_idx.txt"))
        .unwrap()
        .split_whitespace()
        .map(|i| i.parse().unwrap())
        .collect();
    let mut rows = vec![lines[0].to_owned()];
    rows.extend(test.iter().map(|i| lines[i + 1].to_owned()));
    std::fs::write(dir.join("test.csv"), rows.join("\n") + "\n").unwrap();
    let predict = |data: &str| {
        Command::new(VEIL)
            .args([
                "predict",
                "--model",
                "run/model.safetensors",
                "--data",
                data,
                "--json",
            ])
            .current_dir(dir)
            .output()
            .unwrap()
    };
    let out = predict("test.csv");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"].as_u64(), Some(test.len() as u64));
    assert!(
        (v["accuracy"].as_f64().unwrap() - accuracy).abs() < 1e-9,
        "{v}"
    );
    let confusion: u64 = v["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|c| c.as_u64().unwrap()))
        .sum();
    assert_eq!(confusion, test.len() as u64);
    // A file without one of the model's columns is refused naming it.
    let header: Vec<&str> = lines[0].split(',').collect();
    let dropped: Vec<String> = rows
        .iter()
        .map(|r| r.split(',').skip(1).collect::<Vec<_>>().join(","))
        .collect();
    std::fs::write(dir.join("short.csv"), dropped.join("\n") + "\n").unwrap();
    let out = predict("short.csv");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("short.csv: line 1") && err.contains(header[0]),
        "{err}"
    );
}

#[test]
fn a_private_run_spends_no_more_than_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = simulate(
        dir.path(),
        &[
            "--rounds",
            "3",
            "--epsilon",
            "3",
            "--partition",
            "iid",
            "--out",
            "run",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("distributed discrete Gaussian"), "{out}");
    let png = std::fs::read(dir.path().join("run/epsilon.png")).unwrap();
    assert_eq!(
        &png[..8],
        b"\x89PNG\r\n\x1a\n",
        "the epsilon plot of a private run"
    );
    let summary =
        veil_dp::ledger::replay(&std::fs::read(dir.path().join("run/state/ledger.jsonl")).unwrap())
            .unwrap();
    assert_eq!(summary.rounds, 3);
    assert!(summary.epsilon <= 3.0 * 1.001, "{}", summary.epsilon);
    assert!(
        summary.epsilon >= 2.9,
        "calibrated to the target: {}",
        summary.epsilon
    );
}

#[test]
fn bad_data_and_an_existing_run_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.csv"), "a,b,label\n1,2,0\n3,4\n").unwrap();
    let (ok, _, err) = simulate(dir.path(), &["--data", "bad.csv", "--out", "run"]);
    assert!(!ok);
    assert!(
        err.contains("bad.csv: line 3: 2 values: the label is missing"),
        "{err}"
    );
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    let (ok, _, err) = simulate(dir.path(), &["--out", "taken"]);
    assert!(!ok);
    assert!(err.contains("the run directory exists"), "{err}");
    let (ok, _, err) = simulate(dir.path(), &["--model", "mlp:0", "--out", "run2"]);
    assert!(!ok);
    assert!(err.contains("hidden widths"), "{err}");
}

#[test]
fn example_level_dp_sgd_reports_each_clients_epsilon() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = simulate(
        dir.path(),
        &[
            "--dp",
            "dp-sgd",
            "--clients",
            "4",
            "--partition",
            "iid",
            "--rounds",
            "2",
            "--epsilon",
            "5",
            "--out",
            "run",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("example-level DP-SGD"), "{out}");
    assert!(out.contains("epsilon 5.000"), "{out}");
    assert!(out.contains("classic SecAgg with k = 3, t = 3"), "{out}");
    let csv = std::fs::read_to_string(dir.path().join("run/metrics.csv")).unwrap();
    let column = csv
        .lines()
        .next()
        .unwrap()
        .split(',')
        .position(|c| c == "epsilon")
        .unwrap();
    let eps: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(column).unwrap().parse().unwrap())
        .collect();
    assert_eq!(eps.len(), 2);
    assert!(eps[0] < eps[1] && eps[1] <= 5.0 * 1.0001, "{eps:?}");

    // Each site kept its own ledger of its DP-SGD rounds, enforcing the
    // target; `veil privacy ledger` replays each, and the worst site's is
    // the figure reported.
    let mut worst = 0.0_f64;
    for site in 1..=4 {
        let path = dir
            .path()
            .join(format!("run/sites/site-{site:03}/ledger.jsonl"));
        let out = Command::new(VEIL)
            .args(["privacy", "ledger", "--json"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["rounds"], 2, "{v}");
        assert_eq!(v["budget"], 5.0, "{v}");
        let e = v["epsilon"].as_f64().unwrap();
        assert!(e <= 5.0, "{e}");
        worst = worst.max(e);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"mechanism\":\"poisson_subsampled_gaussian\""));
        assert!(text.contains("\"steps\":"), "{text}");
    }
    assert!((worst - eps[1]).abs() < 1e-9, "{worst} vs {eps:?}");

    // Its statistics and evaluation sums would carry no noise: refused.
    for extra in [["--standardize", "secure"], ["--evaluate-every", "1"]] {
        let mut args = vec!["--dp", "dp-sgd", "--out", "refused"];
        args.extend(extra);
        let (ok, _, err) = simulate(dir.path(), &args);
        assert!(!ok && err.contains("would carry no noise"), "{err}");
        assert!(!dir.path().join("refused").exists());
    }
}

#[test]
fn the_in_memory_transport_runs_the_same_rounds_and_skips_dropouts_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = simulate(
        dir.path(),
        &[
            "--transport",
            "memory",
            "--dp",
            "off",
            "--rounds",
            "4",
            "--out",
            "same",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("4 rounds in memory"), "{out}");
    assert!(out.contains("(messages, median)"), "{out}");
    // Without DP only stochastic rounding differs between runs (each mean
    // is within 2^-16 of the plain mean), so the two models agree closely.
    let (ok, _, err) = simulate(
        dir.path(),
        &["--dp", "off", "--rounds", "4", "--out", "quic"],
    );
    assert!(ok, "{err}");
    let spec = veil_learn::model::ModelSpec {
        architecture: veil_learn::model::Architecture::Logistic,
        inputs: 30,
        classes: 2,
    };
    let load = |d: &str| {
        veil_learn::checkpoint::load(&dir.path().join(d).join("model.safetensors"), &spec).unwrap()
    };
    let (a, b) = (load("same"), load("quic"));
    let gap = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0_f32, f32::max);
    assert!(gap < 1e-3, "models differ by {gap}");
    // Dropouts wait for no real deadline here.
    let (ok, out, err) = simulate(
        dir.path(),
        &[
            "--transport",
            "memory",
            "--dropout",
            "0.3",
            "--rounds",
            "3",
            "--out",
            "drop",
        ],
    );
    assert!(ok, "{err}");
    let csv = std::fs::read_to_string(dir.path().join("drop/metrics.csv")).unwrap();
    let included: Vec<u64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(included.len(), 3, "{out}");
    assert!(
        included.iter().any(|n| *n < 20),
        "someone sat a round out: {included:?}"
    );
}

#[test]
fn without_dp_the_standardisation_comes_from_the_secure_statistics_round_and_evaluation_is_secure()
{
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = simulate(
        dir.path(),
        &[
            "--rounds",
            "4",
            "--dp",
            "off",
            "--transport",
            "memory",
            "--evaluate-every",
            "2",
            "--out",
            "run",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("secure evaluation of round 4"), "{out}");
    let run = dir.path().join("run");
    // The statistics round's standardisation is the pooled training rows'
    // (less each site's held-out fifth), which no process held.
    let state = run.join("state");
    let (mean, std): (Vec<f64>, Vec<f64>) =
        serde_json::from_str(&std::fs::read_to_string(state.join("standardization.json")).unwrap())
            .unwrap();
    let rounds: Vec<serde_json::Value> = std::fs::read_to_string(state.join("rounds.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rounds[0]["kind"], "statistics");
    let rows = rounds[0]["statistics"]["rows"].as_f64().unwrap();
    // 455 training rows, 20 sites, each holding out a fifth (rounded down).
    assert!((340.0..=380.0).contains(&rows), "{rows}");
    let csv = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/breast_cancer.csv"
    ))
    .unwrap();
    let values: Vec<Vec<f64>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    // Every feature's mean is within half a deviation of all rows' (the
    // split and the held-out rows aside), and positive deviations.
    for j in 0..mean.len() {
        let m = values.iter().map(|r| r[j]).sum::<f64>() / values.len() as f64;
        let sd =
            (values.iter().map(|r| (r[j] - m).powi(2)).sum::<f64>() / values.len() as f64).sqrt();
        assert!(
            (mean[j] - m).abs() < 0.5 * sd,
            "feature {j}: {} vs {m}",
            mean[j]
        );
        assert!(std[j] > 0.5 * sd && std[j] < 1.5 * sd, "feature {j}");
    }
    // The secure evaluations of rounds 2 and 4, in metrics.csv and plotted.
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|c| *c == "secure_accuracy").unwrap();
    let secure: Vec<&str> = metrics
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(col).unwrap())
        .collect();
    assert!(secure[0].is_empty() && secure[2].is_empty(), "{secure:?}");
    let acc: f64 = secure[3].parse().unwrap();
    assert!(acc > 0.8, "{secure:?}");
    assert!(run.join("secure_evaluation.png").exists());
}

#[test]
fn bad_or_conflicting_privacy_flags_are_refused_by_name_and_leave_no_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (&["--epsilon", "-1"][..], "epsilon"),
        (&["--clip-norm", "-1"][..], "clip-norm"),
        (&["--noise-multiplier", "-1"][..], "noise-multiplier"),
        (&["--learning-rate", "-1"][..], "learning-rate"),
        (&["--delta", "2"][..], "delta"),
        (
            &["--noise-multiplier", "1", "--epsilon", "3"][..],
            "cannot be used with",
        ),
        (&["--dp", "off", "--epsilon", "3"][..], "--dp off"),
    ] {
        let mut all = args.to_vec();
        all.extend(["--out", "run"]);
        let (ok, _, err) = simulate(dir.path(), &all);
        assert!(!ok, "{args:?}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            !dir.path().join("run").exists(),
            "{args:?} left a run directory"
        );
    }
}

#[test]
fn a_regression_trains_federated_with_secure_statistics_and_evaluation_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let data = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/diabetes.csv");
    let (ok, out, err) = simulate(
        dir.path(),
        &[
            "--data",
            data,
            "--kind",
            "regression",
            "--dp",
            "off",
            "--rounds",
            "10",
            "--evaluate-every",
            "5",
            "--transport",
            "memory",
            "--out",
            "run",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("linear regression"), "{out}");
    assert!(out.contains("secure evaluation of round 10"), "{out}");
    let run = dir.path().join("run");
    // The statistics round standardised the label too: 10 features + 1.
    let (mean, std): (Vec<f64>, Vec<f64>) = serde_json::from_str(
        &std::fs::read_to_string(run.join("state/standardization.json")).unwrap(),
    )
    .unwrap();
    assert_eq!((mean.len(), std.len()), (11, 11));
    // The label's mean and deviation (all rows: 152, 77).
    assert!((mean[10] - 152.0).abs() < 20.0 && (std[10] - 77.0).abs() < 15.0);
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let header: Vec<&str> = metrics.lines().next().unwrap().split(',').collect();
    let last: Vec<&str> = metrics.lines().last().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let r2: f64 = last[col("test_r2")].parse().unwrap();
    let mse: f64 = last[col("test_loss")].parse().unwrap();
    // Centralised linear regression on this split: R² 0.332, MSE 3424.
    assert!(r2 > 0.28, "{metrics}");
    let secure: f64 = last[col("secure_r2")].parse().unwrap();
    assert!(secure > 0.2 && secure < 1.0, "{metrics}");
    assert!(last[col("test_accuracy")].is_empty(), "{metrics}");

    // The checkpoint scores the test rows as the run did.
    let csv = std::fs::read_to_string(data).unwrap();
    let test: std::collections::BTreeSet<usize> = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/diabetes.test_idx.txt"
    ))
    .unwrap()
    .lines()
    .map(|l| l.trim().parse().unwrap())
    .collect();
    let mut rows = csv.lines().next().unwrap().to_owned() + "\n";
    for (i, line) in csv.lines().skip(1).enumerate() {
        if test.contains(&i) {
            rows += line;
            rows += "\n";
        }
    }
    std::fs::write(dir.path().join("test.csv"), rows).unwrap();
    let out = Command::new(VEIL)
        .args(["predict", "--json", "--model"])
        .arg(run.join("model.safetensors"))
        .arg("--data")
        .arg(dir.path().join("test.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"], 89);
    assert!((v["r2"].as_f64().unwrap() - r2).abs() < 1e-4, "{v} vs {r2}");
    assert!(
        (v["mse"].as_f64().unwrap() - mse).abs() < 1e-2 * mse,
        "{v} vs {mse}"
    );

    // A label that is a number is not 214 classes; the embedded set is not
    // a regression.
    let (ok, _, err) = simulate(dir.path(), &["--data", data, "--out", "x"]);
    assert!(!ok && err.contains("--kind regression"), "{err}");
    let (ok, _, err) = simulate(dir.path(), &["--kind", "regression", "--out", "x"]);
    assert!(!ok && err.contains("give --data"), "{err}");
    let (ok, _, err) = simulate(
        dir.path(),
        &[
            "--data",
            data,
            "--kind",
            "regression",
            "--model",
            "logistic",
            "--out",
            "x",
        ],
    );
    assert!(!ok && err.contains("use `linear`"), "{err}");
    assert!(!dir.path().join("x").exists());
}
