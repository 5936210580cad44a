//! The privacy ledger: budget enforcement, crash safety, tamper detection.

use std::io::Write;
use std::path::{Path, PathBuf};
use veil_dp::Error;
use veil_dp::calibrate::epsilon;
use veil_dp::distributed::DistributedDiscreteGaussian;

use veil_dp::ledger::{self, DistributedNoise, Ledger, LedgerSummary, RoundSpend};
use veil_dp::rdp::{Conversion, RdpAccountant};

/// A ledger kept in a file, as the server's state directory keeps it: the
/// file's bytes open it, and each recorded line is appended.
struct OnDisk {
    path: PathBuf,
    ledger: Ledger,
}

impl OnDisk {
    fn open(path: &Path, budget: f64, delta: f64) -> veil_dp::Result<Self> {
        let bytes = std::fs::read(path).unwrap_or_default();
        Ok(Self {
            path: path.to_owned(),
            ledger: Ledger::open(&bytes, budget, delta)?,
        })
    }

    fn record_round(&mut self, spend: &RoundSpend) -> veil_dp::Result<f64> {
        let recorded = self.ledger.record_round(spend)?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .unwrap();
        file.write_all(&recorded.line).unwrap();
        Ok(recorded.epsilon)
    }

    fn summary(&self) -> &LedgerSummary {
        self.ledger.summary()
    }
}

fn replay(path: &Path) -> veil_dp::Result<LedgerSummary> {
    ledger::replay(&std::fs::read(path).unwrap())
}

fn spend(round: u64) -> RoundSpend {
    RoundSpend::new(round, 1.0, 0.1, 1.0, 12)
}

#[test]
fn records_replay_to_the_same_epsilon_as_direct_accounting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = OnDisk::open(&path, 10.0, 1e-5).unwrap();
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
    let mut again = OnDisk::open(&path, 10.0, 1e-5).unwrap();
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
    let mut ledger = OnDisk::open(&path, budget, 1e-5).unwrap();
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
    let mut ledger = OnDisk::open(&path, 10.0, 1e-5).unwrap();
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
            OnDisk::open(&path, 10.0, 1e-5).is_err(),
            "never reopened in part"
        );
    }
}

#[test]
fn edits_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = OnDisk::open(&path, 10.0, 1e-5).unwrap();
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
    let mut ledger = OnDisk::open(&path, 10.0, 1e-5).unwrap();
    ledger.record_round(&spend(1)).unwrap();
    assert!(OnDisk::open(&path, 11.0, 1e-5).is_err());
    assert!(OnDisk::open(&path, 10.0, 1e-6).is_err());
    assert!(OnDisk::open(&dir.path().join("x"), f64::NAN, 1e-5).is_err());
    assert!(OnDisk::open(&dir.path().join("x"), 1.0, 1.0).is_err());
    assert!(matches!(
        ledger.record_round(&spend(1)),
        Err(Error::InvalidParameter { name: "round", .. })
    ));
}

fn distributed_spend(round: u64, participants: u64) -> RoundSpend {
    // 10^4 coordinates, clip 1 at scale 4096, σ = 3000 per share.
    RoundSpend::distributed(
        round,
        DistributedNoise::new(3000.0, 4096.0, 10_000, participants - 2),
        1.0,
        1.0,
        participants,
    )
}

#[test]
fn distributed_rounds_are_accounted_by_kls21_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = OnDisk::open(&path, 50.0, 1e-5).unwrap();
    ledger.record_round(&spend(1)).unwrap();
    let mut last = 0.0;
    for round in 2..=4 {
        last = ledger
            .record_round(&distributed_spend(round, 10 + round))
            .unwrap();
    }
    // The same spend composed directly.
    let mut acc = RdpAccountant::new();
    acc.compose_subsampled_gaussian(1.0, 0.1, 1).unwrap();
    for m in 10..=12 {
        let mech = DistributedDiscreteGaussian::new(3000.0, m, 10_000, 4096.0).unwrap();
        acc.compose_distributed_discrete_gaussian(&mech, 1);
    }
    let direct = acc.epsilon(1e-5, Conversion::Improved).unwrap().0;
    assert!(
        (last - direct).abs() <= 1e-12 * direct,
        "{last} vs {direct}"
    );
    let summary = replay(&path).unwrap();
    assert!((summary.epsilon - direct).abs() <= 1e-12 * direct);
    assert_eq!((summary.rounds, summary.distributed_rounds), (4, 3));
    assert_eq!(summary.mechanisms, vec![(1.0, 0.1, 1)]);
    // PLD does not account these rounds, and says so naming the argument.
    assert!(matches!(
        summary.pld_epsilon(),
        Err(Error::InvalidParameter {
            name: "accountant",
            ..
        })
    ));
    // The line carries what replay needs, readable.
    let text = std::fs::read_to_string(&path).unwrap();
    let line: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    assert_eq!(line["mechanism"], "distributed_discrete_gaussian");
    assert_eq!(line["client_sigma"], 3000.0);
    assert_eq!(line["dimension"], 10_000);
    let z = line["noise_multiplier"].as_f64().unwrap();
    assert_eq!(
        (line["participants"].as_u64(), line["shares"].as_u64()),
        (Some(12), Some(10))
    );
    assert!((z - 10_f64.sqrt() * 3000.0 / 4096.0).abs() < 1e-12);
}

#[test]
fn distributed_lines_that_were_edited_or_misshapen_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = OnDisk::open(&path, 50.0, 1e-5).unwrap();
    ledger.record_round(&distributed_spend(1, 10)).unwrap();
    let original = std::fs::read_to_string(&path).unwrap();
    for (from, to) in [
        // More noise per share than was added: ε would fall.
        ("\"client_sigma\":3000.0", "\"client_sigma\":6000.0"),
        // More shares credited than were recorded.
        ("\"shares\":8", "\"shares\":9"),
        // Fewer participants than shares credited.
        ("\"participants\":10", "\"participants\":7"),
        // A central-Gaussian line with distributed fields.
        (
            "distributed_discrete_gaussian",
            "poisson_subsampled_gaussian",
        ),
        // A distributed line without its dimension.
        (",\"dimension\":10000", ""),
        ("distributed_discrete_gaussian", "skellam"),
    ] {
        let edited = original.replacen(from, to, 1);
        assert_ne!(edited, original, "pattern {from}");
        std::fs::write(&path, &edited).unwrap();
        let err = replay(&path).unwrap_err();
        assert!(
            matches!(err, Error::Ledger { line: 1, .. }),
            "{from} -> {to}: {err:?}"
        );
    }
    // Shares below σ = 1/2 are outside what the accountant covers.
    let mut fresh = OnDisk::open(&dir.path().join("b.jsonl"), 50.0, 1e-5).unwrap();
    let tiny = RoundSpend::distributed(1, DistributedNoise::new(0.1, 1.0, 10, 5), 1.0, 1.0, 5);
    assert!(matches!(
        fresh.record_round(&tiny),
        Err(Error::InvalidParameter {
            name: "client-sigma",
            ..
        })
    ));
}

#[test]
fn a_dp_sgd_round_of_many_steps_is_one_line_and_replays() {
    // A DP-SGD site's round: 12 local steps of the subsampled Gaussian.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.jsonl");
    let mut l = OnDisk::open(&path, 50.0, 1e-5).unwrap();
    for round in 1..=3 {
        let s = RoundSpend::new(round, 1.2, 0.05, 1.0, 400).with_steps(12);
        l.record_round(&s).unwrap();
    }
    let direct = epsilon(1.2, 0.05, 36, 1e-5, Conversion::Improved).unwrap();
    let summary = replay(&path).unwrap();
    assert!(
        (summary.epsilon - direct).abs() < 1e-9,
        "{}",
        summary.epsilon
    );
    assert_eq!(summary.rounds, 3);
    assert_eq!(summary.mechanisms, vec![(1.2, 0.05, 12); 3]);
    let pld = summary.pld_epsilon().unwrap();
    assert!(pld > 0.0 && pld <= summary.epsilon, "{pld}");

    // Fewer steps recorded than taken is an edit the replay catches.
    let text = std::fs::read_to_string(&path).unwrap();
    let fewer = text.replacen("\"steps\":12", "\"steps\":2", 1);
    assert_ne!(fewer, text);
    assert!(ledger::replay(fewer.as_bytes()).is_err());
    // `steps` is omitted for 1, never 0 or 1 in the file.
    for bad in ["\"steps\":1,", "\"steps\":0,"] {
        let edited = text.replacen("\"steps\":12,", bad, 1);
        assert!(ledger::replay(edited.as_bytes()).is_err(), "{bad}");
    }
    // A distributed round is one release.
    let mut d = Ledger::open(&[], 1e9, 1e-5).unwrap();
    assert!(
        d.record_round(&distributed_spend(1, 20).with_steps(2))
            .is_err()
    );
    assert!(d.record_round(&spend(1).with_steps(0)).is_err());
}
