//! The privacy ledger: budget enforcement, crash safety, tamper detection.

use veil_dp::Error;
use veil_dp::calibrate::epsilon;
use veil_dp::ledger::{Ledger, RoundSpend, replay};
use veil_dp::rdp::Conversion;

fn spend(round: u64) -> RoundSpend {
    RoundSpend::new(round, 1.0, 0.1, 1.0, 12)
}

#[test]
fn records_replay_to_the_same_epsilon_as_direct_accounting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = Ledger::open(&path, 10.0, 1e-5).unwrap();
    let mut last = 0.0;
    for round in 1..=5 {
        last = ledger.record_round(&spend(round)).unwrap();
    }
    let direct = epsilon(1.0, 0.1, 5, 1e-5, Conversion::Improved).unwrap();
    assert!((last - direct).abs() < 1e-12);
    let summary = replay(&path).unwrap();
    assert_eq!(summary.rounds, 5);
    assert_eq!(summary.last_round, Some(5));
    assert!((summary.epsilon - direct).abs() < 1e-12);
    assert_eq!(summary.history.len(), 5);
    // Reopening continues the same spend.
    let mut again = Ledger::open(&path, 10.0, 1e-5).unwrap();
    let six = again.record_round(&spend(6)).unwrap();
    assert!((six - epsilon(1.0, 0.1, 6, 1e-5, Conversion::Improved).unwrap()).abs() < 1e-12);
    // It is human-readable JSON lines.
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 6);
    assert!(text.lines().all(|l| l.starts_with("{\"v\":1,\"round\":")));
}

#[test]
fn a_round_over_budget_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let one = epsilon(1.0, 0.1, 1, 1e-5, Conversion::Improved).unwrap();
    let two = epsilon(1.0, 0.1, 2, 1e-5, Conversion::Improved).unwrap();
    let budget = (one + two) / 2.0;
    let mut ledger = Ledger::open(&path, budget, 1e-5).unwrap();
    ledger.record_round(&spend(1)).unwrap();
    let before = std::fs::read(&path).unwrap();
    assert!(matches!(
        ledger.record_round(&spend(2)),
        Err(Error::BudgetExceeded { .. })
    ));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(ledger.summary().rounds, 1);
}

#[test]
fn a_line_cut_mid_write_is_reported_not_undercounted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = Ledger::open(&path, 10.0, 1e-5).unwrap();
    for round in 1..=3 {
        ledger.record_round(&spend(round)).unwrap();
    }
    let full = std::fs::read(&path).unwrap();
    // Every possible cut inside the last line.
    let last_start = full[..full.len() - 1]
        .iter()
        .rposition(|b| *b == b'\n')
        .unwrap()
        + 1;
    for cut in last_start + 1..full.len() {
        std::fs::write(&path, &full[..cut]).unwrap();
        let err = replay(&path).unwrap_err();
        assert!(
            matches!(err, Error::Ledger { line: 3, .. }),
            "cut at {cut}: {err:?}"
        );
        assert!(
            Ledger::open(&path, 10.0, 1e-5).is_err(),
            "never reopened in part"
        );
    }
}

#[test]
fn edits_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = Ledger::open(&path, 10.0, 1e-5).unwrap();
    for round in 1..=3 {
        ledger.record_round(&spend(round)).unwrap();
    }
    let original = std::fs::read_to_string(&path).unwrap();
    let tamper = |from: &str, to: &str, line: usize| {
        let edited = original.replacen(from, to, 1);
        assert_ne!(edited, original, "pattern {from}");
        std::fs::write(&path, &edited).unwrap();
        let err = replay(&path).unwrap_err();
        assert!(
            matches!(err, Error::Ledger { line: l, .. } if l == line),
            "{from} -> {to}: {err:?}"
        );
    };
    // A larger noise multiplier in round 1 would lower the recorded epsilon.
    tamper("\"noise_multiplier\":1.0", "\"noise_multiplier\":2.0", 1);
    // Deleting the middle line breaks the chain at the line after it.
    let lines: Vec<&str> = original.lines().collect();
    std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
    assert!(matches!(replay(&path), Err(Error::Ledger { line: 2, .. })));
    // Swapping two lines.
    std::fs::write(&path, format!("{}\n{}\n{}\n", lines[1], lines[0], lines[2])).unwrap();
    assert!(matches!(replay(&path), Err(Error::Ledger { line: 1, .. })));
    // A lower recorded epsilon on the last line.
    let last: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
    let eps = last["epsilon"].as_f64().unwrap();
    tamper(&format!("\"epsilon\":{eps}"), "\"epsilon\":0.5", 3);
    // An unknown field, garbage, a changed budget.
    tamper("\"v\":1,", "\"v\":1,\"x\":0,", 1);
    // A raised budget on line 1 is caught where the chain breaks, at line 2.
    tamper("\"budget\":10.0", "\"budget\":100.0", 2);
    std::fs::write(&path, "not json\n").unwrap();
    assert!(matches!(replay(&path), Err(Error::Ledger { line: 1, .. })));
}

#[test]
fn opening_with_other_parameters_or_bad_ones_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = Ledger::open(&path, 10.0, 1e-5).unwrap();
    ledger.record_round(&spend(1)).unwrap();
    assert!(Ledger::open(&path, 11.0, 1e-5).is_err());
    assert!(Ledger::open(&path, 10.0, 1e-6).is_err());
    assert!(Ledger::open(&dir.path().join("x"), f64::NAN, 1e-5).is_err());
    assert!(Ledger::open(&dir.path().join("x"), 1.0, 1.0).is_err());
    assert!(matches!(
        ledger.record_round(&spend(1)),
        Err(Error::InvalidParameter { name: "round", .. })
    ));
}
