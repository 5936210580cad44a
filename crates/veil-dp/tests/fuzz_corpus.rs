//! Replays the committed fuzz inputs of veil-dp's targets (`fuzz/seeds/`
//! and `fuzz/regressions/`) through the entry points the targets call.

#[path = "../../../fuzz/committed_inputs.rs"]
mod committed_inputs;

use committed_inputs::inputs;

#[test]
fn ledger_replay() {
    for input in inputs("ledger_replay") {
        veil_dp::fuzzing::ledger_replay(&input);
    }
    // The seed is a real ledger, and it replays.
    let seed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/seeds/ledger_replay/three-rounds"
    ))
    .unwrap();
    assert_eq!(veil_dp::ledger::replay(&seed).unwrap().rounds, 3);
    let mixed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/seeds/ledger_replay/mixed-rounds"
    ))
    .unwrap();
    let summary = veil_dp::ledger::replay(&mixed).unwrap();
    assert_eq!((summary.rounds, summary.distributed_rounds), (2, 1));
}

#[test]
fn dp_parameters() {
    for input in inputs("dp_parameters") {
        veil_dp::fuzzing::dp_parameters(&input);
    }
}
