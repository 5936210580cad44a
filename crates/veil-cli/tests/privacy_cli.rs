//! `veil privacy` as a user runs it: the real binary, real files. Good input
//! gives the library's numbers (human table, or JSON with `--json`); bad
//! input gives a one-line error naming the argument and exit code 2.

use std::process::{Command, Output};

use veil_dp::calibrate::epsilon;
use veil_dp::ledger::{Ledger, RoundSpend};
use veil_dp::pld::PldAccountant;
use veil_dp::rdp::Conversion;

fn veil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_veil"))
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Exit code 2 and a first stderr line that names `arg`.
fn refused(args: &[&str], arg: &str) {
    let out = veil(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("error: ") && first.contains(arg),
        "{args:?}: {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout for {args:?}");
}

const EPS: [&str; 10] = [
    "privacy",
    "epsilon",
    "--noise-multiplier",
    "1.1",
    "--sampling-rate",
    "0.01",
    "--rounds",
    "1000",
    "--delta",
    "1e-5",
];

#[test]
fn epsilon_matches_the_library() {
    let mut args = EPS.to_vec();
    args.push("--json");
    let v = json(&veil(&args));
    let expected = epsilon(1.1, 0.01, 1000, 1e-5, Conversion::Improved).unwrap();
    assert_eq!(v["epsilon"].as_f64().unwrap(), expected);
    let human = veil(&EPS);
    assert!(String::from_utf8_lossy(&human.stdout).contains(&format!("{expected:.4}")));
    args.extend(["--conversion", "classic"]);
    let classic = json(&veil(&args));
    assert!(classic["epsilon"].as_f64().unwrap() > expected);
}

#[test]
fn the_pld_accountant_is_the_library_s_and_tighter() {
    let mut args = EPS.to_vec();
    args.extend(["--accountant", "pld", "--json"]);
    let v = json(&veil(&args));
    let mut acc = PldAccountant::new();
    acc.compose_subsampled_gaussian(1.1, 0.01, 1000).unwrap();
    let expected = acc.epsilon(1e-5).unwrap();
    assert_eq!(v["accountant"], "pld");
    assert_eq!(v["epsilon"].as_f64().unwrap(), expected);
    assert!(v["optimal_order"].is_null() && v["conversion"].is_null());
    let rdp = epsilon(1.1, 0.01, 1000, 1e-5, Conversion::Improved).unwrap();
    assert!(expected < rdp, "PLD {expected} vs RDP {rdp}");
    let cal = json(&veil(&[
        "privacy",
        "calibrate",
        "--epsilon",
        "2",
        "--delta",
        "1e-5",
        "--sampling-rate",
        "0.01",
        "--rounds",
        "100",
        "--accountant",
        "pld",
        "--json",
    ]));
    let z = cal["noise_multiplier"].as_f64().unwrap();
    let mut at = PldAccountant::new();
    at.compose_subsampled_gaussian(z, 0.01, 100).unwrap();
    assert!(at.epsilon(1e-5).unwrap() <= 2.0);
    assert_eq!(cal["accountant"], "PLD");
}

#[test]
fn calibrate_meets_its_target_for_the_mechanism_the_service_runs_and_splits_the_noise() {
    let v = json(&veil(&[
        "privacy",
        "calibrate",
        "--epsilon",
        "3",
        "--delta",
        "1e-5",
        "--sampling-rate",
        "0.01",
        "--rounds",
        "100",
        "--min-survivors",
        "50",
        "--dimension",
        "1000",
        "--scale",
        "1024",
        "--clip-norm",
        "0.5",
        "--json",
    ]));
    let z = v["noise_multiplier"].as_f64().unwrap();
    // What the ledger of the service will account with that noise.
    let dep = veil_dp::distributed::Deployment {
        clients: 50,
        dimension: 1000,
        scaled_clip: 0.5 * 1024.0,
    };
    let eps = veil_dp::distributed::epsilon(z, 100, 1e-5, &dep).unwrap();
    assert!((3.0 * 0.995..=3.0).contains(&eps), "{eps}");
    let total = v["noise_std"].as_f64().unwrap();
    assert!((total - 0.5 * z).abs() < 1e-12);
    let share = v["per_client_noise_std"].as_f64().unwrap();
    assert!((share * share * 50.0 - total * total).abs() < 1e-9);
    // --min-survivors alone used to split a central calibration that credits
    // sampling, which the service does not get (13x too little noise at
    // q = 0.05): refused, naming what is missing.
    refused(
        &[
            "privacy",
            "calibrate",
            "--epsilon",
            "3",
            "--delta",
            "1e-5",
            "--sampling-rate",
            "0.05",
            "--rounds",
            "100",
            "--min-survivors",
            "20",
        ],
        "--dimension",
    );
}

#[test]
fn plan_is_a_table_of_epsilons() {
    let plan = &[
        "privacy",
        "plan",
        "--sampling-rate",
        "0.01",
        "--delta",
        "1e-5",
    ];
    let mut args = plan.to_vec();
    args.push("--json");
    let rows = json(&veil(&args));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for r in rows {
        let a = r["epsilon_10"].as_f64().unwrap();
        let b = r["epsilon_100"].as_f64().unwrap();
        let c = r["epsilon_1000"].as_f64().unwrap();
        assert!(a <= b && b <= c);
    }
    let mut args = plan.to_vec();
    args.extend(["--noise-multipliers", "1,2"]);
    let text = veil(&args);
    // A title, a blank line, the header, the rule, and one row each.
    assert_eq!(String::from_utf8_lossy(&text.stdout).lines().count(), 6);
}

#[test]
fn ledger_replays_and_refuses_a_damaged_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = Ledger::open(&[], 5.0, 1e-5).unwrap();
    let mut file = Vec::new();
    for round in 1..=4 {
        let recorded = ledger
            .record_round(&RoundSpend::new(round, 1.0, 0.05, 1.0, 20))
            .unwrap();
        file.extend_from_slice(&recorded.line);
    }
    std::fs::write(&path, &file).unwrap();
    let p = path.to_str().unwrap();
    let v = json(&veil(&["privacy", "ledger", p, "--json"]));
    assert_eq!(v["rounds"].as_u64(), Some(4));
    let expected = epsilon(1.0, 0.05, 4, 1e-5, Conversion::Improved).unwrap();
    assert_eq!(v["epsilon"].as_f64().unwrap(), expected);
    assert!((v["remaining"].as_f64().unwrap() - (5.0 - expected)).abs() < 1e-12);
    assert!(v["pld_epsilon"].is_null());
    let with_pld = json(&veil(&[
        "privacy",
        "ledger",
        p,
        "--accountant",
        "pld",
        "--json",
    ]));
    let mut acc = PldAccountant::new();
    acc.compose_subsampled_gaussian(1.0, 0.05, 4).unwrap();
    assert_eq!(
        with_pld["pld_epsilon"].as_f64().unwrap(),
        acc.epsilon(1e-5).unwrap()
    );
    assert!(with_pld["pld_epsilon"].as_f64().unwrap() < expected);
    // Cut mid-line: refused, naming the line.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 10]).unwrap();
    refused(&["privacy", "ledger", p], "line 4");
    refused(
        &["privacy", "ledger", "/nonexistent/ledger.jsonl"],
        "ledger",
    );
}

#[test]
fn bad_input_is_a_one_line_error_and_exit_code_2() {
    let with = |flag: &str, value: &str| {
        let mut a: Vec<String> = EPS.iter().map(|s| (*s).to_owned()).collect();
        let i = a.iter().position(|x| x == flag).unwrap();
        a[i + 1] = value.to_owned();
        a
    };
    for (flag, value, name) in [
        ("--noise-multiplier", "-1", "noise-multiplier"),
        ("--noise-multiplier", "0", "noise-multiplier"),
        ("--noise-multiplier", "NaN", "noise-multiplier"),
        ("--noise-multiplier", "inf", "noise-multiplier"),
        ("--sampling-rate", "0", "sampling-rate"),
        ("--sampling-rate", "1.5", "sampling-rate"),
        ("--sampling-rate", "-0.1", "sampling-rate"),
        ("--delta", "0", "delta"),
        ("--delta", "1", "delta"),
        ("--delta", "nan", "delta"),
        ("--rounds", "0", "rounds"),
        ("--rounds", "-3", "rounds"),
        ("--rounds", "ten", "rounds"),
        ("--noise-multiplier", "abc", "noise-multiplier"),
    ] {
        let args = with(flag, value);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, name);
    }
    // The PLD accountant checks the same arguments, and bounds the rounds.
    for (flag, value, name) in [
        ("--noise-multiplier", "-1", "noise-multiplier"),
        ("--sampling-rate", "0", "sampling-rate"),
        ("--delta", "1", "delta"),
        ("--rounds", "5000000000", "rounds"),
    ] {
        let mut args = with(flag, value);
        args.extend(["--accountant".to_owned(), "pld".to_owned()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, name);
    }
    let mut bad = EPS.to_vec();
    bad.extend(["--accountant", "moments"]);
    refused(&bad, "accountant");
    let calibrate = |extra: &[&'static str]| {
        let mut a = vec![
            "privacy",
            "calibrate",
            "--epsilon",
            "2",
            "--delta",
            "1e-5",
            "--sampling-rate",
            "0.1",
            "--rounds",
            "10",
        ];
        a.extend(extra);
        a
    };
    let mut negative = calibrate(&[]);
    negative[3] = "-2";
    refused(&negative, "epsilon");
    refused(&calibrate(&["--min-survivors", "0"]), "min-survivors");
    refused(&calibrate(&["--clip-norm", "0"]), "clip-norm");
}

const DISTRIBUTED: [&str; 8] = [
    "--min-survivors",
    "20",
    "--dimension",
    "100000",
    "--scale",
    "64",
    "--clip-norm",
    "2",
];

#[test]
fn distributed_mode_is_the_library_s_kls21_accounting() {
    let deployment = veil_dp::distributed::Deployment {
        clients: 20,
        dimension: 100_000,
        scaled_clip: 128.0,
    };
    let mut args = EPS.to_vec();
    args.extend(DISTRIBUTED);
    args.push("--json");
    let v = json(&veil(&args));
    let expected = veil_dp::distributed::epsilon(1.1, 1000, 1e-5, &deployment).unwrap();
    assert_eq!(v["epsilon"].as_f64().unwrap(), expected);
    // At 64 quanta per unit, rounding inflates the sensitivity (d = 10^5)
    // and, with sampling not credited, ε is far above the central figure.
    let central = epsilon(1.1, 0.01, 1000, 1e-5, Conversion::Improved).unwrap();
    assert!(expected > central, "{expected} vs {central}");
    let l2 = v["l2_sensitivity_quanta"].as_f64().unwrap();
    assert!(l2 > 128.0 * 1.5, "{l2}");
    // Sampling at 0.01 is reported beside it, credited by Zhu–Wang 2019,
    // and is not what the service enforces (the main figure).
    let credited =
        veil_dp::distributed::epsilon_sampled(1.1, 0.01, 1000, 1e-5, &deployment).unwrap();
    assert_eq!(v["epsilon_sampling_credited"].as_f64().unwrap(), credited);
    assert!(credited * 10.0 < expected, "{credited} vs {expected}");
    let mut text = EPS.to_vec();
    text.extend(DISTRIBUTED);
    let out = veil(&text);
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains(&format!("epsilon, sampled  {credited:.4}"))
            && shown.contains("veil server enforces the epsilon without sampling"),
        "{shown}"
    );
    let mut full = text.clone();
    let at = full.iter().position(|x| *x == "0.01").unwrap();
    full[at] = "1";
    full.push("--json");
    assert!(json(&veil(&full))["epsilon_sampling_credited"].is_null());

    // Calibration meets its target in distributed mode, with the share in
    // quanta.
    let mut cal = vec![
        "privacy",
        "calibrate",
        "--epsilon",
        "8",
        "--delta",
        "1e-5",
        "--sampling-rate",
        "1",
        "--rounds",
        "100",
        "--json",
    ];
    cal.extend(DISTRIBUTED);
    let c = json(&veil(&cal));
    let z = c["noise_multiplier"].as_f64().unwrap();
    assert!(c["epsilon_achieved"].as_f64().unwrap() <= 8.0);
    let share = c["per_client_sigma_quanta"].as_f64().unwrap();
    assert!((share - z * 128.0 / 20_f64.sqrt()).abs() < 1e-9 * share);
    let central = veil_dp::calibrate::noise_multiplier(8.0, 1e-5, 1.0, 100).unwrap();
    assert!(z > central, "rounding costs noise: {z} vs {central}");

    // Distributed mode's bad input.
    let mut pld = EPS.to_vec();
    pld.extend(DISTRIBUTED);
    pld.extend(["--accountant", "pld"]);
    refused(&pld, "--accountant");
    let mut missing = EPS.to_vec();
    missing.extend(["--dimension", "10", "--scale", "4"]);
    refused(&missing, "--min-survivors");
    let mut alone = EPS.to_vec();
    alone.extend(["--min-survivors", "4"]);
    refused(&alone, "min-survivors");
    for (flag, bad) in [
        ("--scale", "-1"),
        ("--scale", "NaN"),
        ("--dimension", "0"),
        ("--min-survivors", "0"),
    ] {
        let mut a = EPS.to_vec();
        a.extend(DISTRIBUTED);
        let at = a.iter().position(|x| *x == flag).unwrap();
        a[at + 1] = bad;
        refused(&a, flag.trim_start_matches("--"));
    }
    // Shares below σ = 1/2 quanta are outside what the accountant covers.
    let mut tiny = EPS.to_vec();
    tiny.extend([
        "--min-survivors",
        "4",
        "--dimension",
        "10",
        "--scale",
        "0.1",
    ]);
    refused(&tiny, "client-sigma");
}

/// A state directory as the server leaves it: `rounds` released rounds in
/// the ledger, and `state.json` recording the first `recorded` of them
/// (fewer when a crash came between a ledger line and its state).
fn state_dir(dir: &std::path::Path, rounds: u64, recorded: u64) -> Vec<Vec<u8>> {
    let mut ledger = Ledger::open(&[], 50.0, 1e-5).unwrap();
    let mut lines = Vec::new();
    let mut counters = veil_round::Counters::new(10);
    for round in 1..=rounds {
        let r = ledger
            .record_round(&RoundSpend::new(round, 1.0, 0.05, 1.0, 20))
            .unwrap();
        lines.push(r.line.clone());
        if round <= recorded {
            counters.ledger_lines = Some(round);
            counters.ledger_tail = Some(r.hash);
            counters.released_rounds = round;
        }
    }
    std::fs::write(dir.join("ledger.jsonl"), lines.concat()).unwrap();
    std::fs::write(
        dir.join("state.json"),
        serde_json::to_vec(&counters).unwrap(),
    )
    .unwrap();
    lines
}

#[test]
fn a_state_directory_makes_the_ledger_s_tail_tamper_evident() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = d.to_str().unwrap();
    // In step.
    let lines = state_dir(d, 4, 4);
    let v = json(&veil(&["privacy", "ledger", p, "--json"]));
    assert_eq!(v["rounds"].as_u64(), Some(4));
    assert!(v["state"].as_str().unwrap().contains("in step"), "{v}");
    // The last line deleted: the file alone replays (3 valid lines); with
    // its state it is refused, naming what is missing.
    std::fs::write(d.join("ledger.jsonl"), lines[..3].concat()).unwrap();
    let alone = d.join("ledger.jsonl");
    let v = json(&veil(&[
        "privacy",
        "ledger",
        alone.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(v["rounds"].as_u64(), Some(3));
    refused(&["privacy", "ledger", p], "truncated");
    // The last line replaced by another valid one (the first three, and a
    // fourth round of less noise, chained): refused.
    let mut ledger = Ledger::open(&lines[..3].concat(), 50.0, 1e-5).unwrap();
    let other = ledger
        .record_round(&RoundSpend::new(4, 3.0, 0.05, 1.0, 20))
        .unwrap();
    std::fs::write(
        d.join("ledger.jsonl"),
        [lines[..3].concat(), other.line].concat(),
    )
    .unwrap();
    refused(&["privacy", "ledger", p], "not the one the state recorded");
    // A SIGKILL between the ledger line and the state write: the ledger is
    // one line ahead. Valid, and that line stays counted.
    state_dir(d, 4, 3);
    let v = json(&veil(&["privacy", "ledger", p, "--json"]));
    assert_eq!(v["rounds"].as_u64(), Some(4));
    assert!(v["state"].as_str().unwrap().contains("one more"), "{v}");
}

#[test]
fn a_reader_that_closes_the_pipe_ends_the_command_quietly() {
    // The reader is gone before the command writes (as with `| head -2`
    // once it has its lines): the write fails with a broken pipe.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_veil"))
        .args([
            "privacy",
            "plan",
            "--sampling-rate",
            "0.01",
            "--delta",
            "1e-5",
        ])
        .stdout(writer)
        .output()
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pld_on_a_distributed_ledger_is_one_clear_refusal_and_no_budget_prints_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    // What `veil simulate` without a target records: a budget near f64::MAX.
    let mut ledger = Ledger::open(&[], f64::MAX / 4.0, 1e-5).unwrap();
    let spend = RoundSpend::distributed(
        1,
        veil_dp::ledger::DistributedNoise::new(2048.0, 1024.0, 100, 4),
        1.0,
        1.0,
        4,
    );
    let r = ledger.record_round(&spend).unwrap();
    std::fs::write(&path, &r.line).unwrap();
    let p = path.to_str().unwrap();
    let text = String::from_utf8(veil(&["privacy", "ledger", p]).stdout).unwrap();
    assert!(text.contains("budget            none"), "{text}");
    assert!(text.contains("remaining         none"), "{text}");
    let out = veil(&["privacy", "ledger", p, "--accountant", "pld"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: --accountant pld: this ledger has 1 distributed"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
}

#[test]
fn plan_takes_the_distributed_flags_and_agrees_with_calibrate() {
    let v = json(&veil(&[
        "privacy",
        "plan",
        "--sampling-rate",
        "0.05",
        "--delta",
        "1e-5",
        "--noise-multipliers",
        "14.9414",
        "--min-survivors",
        "20",
        "--dimension",
        "1000",
        "--scale",
        "1024",
        "--json",
    ]));
    let dep = veil_dp::distributed::Deployment {
        clients: 20,
        dimension: 1000,
        scaled_clip: 1024.0,
    };
    let row = &v[0];
    for (t, key) in [
        (10, "epsilon_10"),
        (100, "epsilon_100"),
        (1000, "epsilon_1000"),
    ] {
        let want = veil_dp::distributed::epsilon(14.9414, t, 1e-5, &dep).unwrap();
        assert_eq!(row[key].as_f64().unwrap(), want, "{key}");
    }
    // calibrate's answer for epsilon 3 over 100 rounds, read back.
    assert!((row["epsilon_100"].as_f64().unwrap() - 3.0).abs() < 0.01);
    refused(
        &[
            "privacy",
            "plan",
            "--sampling-rate",
            "0.05",
            "--delta",
            "1e-5",
            "--min-survivors",
            "20",
        ],
        "--dimension",
    );
}
