//! Replays the committed fuzz inputs of veil-dp's targets (`fuzz/seeds/`
//! and `fuzz/regressions/`) through the entry points the targets call.

use std::path::PathBuf;

fn inputs(target: &str) -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n != ".keep") {
                out.push(std::fs::read(&path).unwrap());
            }
        }
    }
    assert!(
        !out.is_empty(),
        "no committed inputs for fuzz target {target}"
    );
    out
}

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
    assert_eq!(veil_dp::ledger::replay_bytes(&seed).unwrap().rounds, 3);
}

#[test]
fn dp_parameters() {
    for input in inputs("dp_parameters") {
        veil_dp::fuzzing::dp_parameters(&input);
    }
}
