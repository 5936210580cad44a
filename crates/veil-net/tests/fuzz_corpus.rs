//! Replays the committed fuzz inputs of veil-net's targets (`fuzz/seeds/`
//! and `fuzz/regressions/`) through the entry points the targets call.

#![allow(clippy::unwrap_used)]

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
fn task_decode() {
    let inputs = inputs("task_decode");
    for input in &inputs {
        veil_net::fuzzing::task_decode(input);
    }
    // The seeds are real tasks.
    assert!(
        inputs
            .iter()
            .all(|i| veil_net::task::Task::decode(i, 16).is_ok())
    );
}

#[test]
fn frame_header() {
    for input in inputs("frame_header") {
        veil_net::fuzzing::frame_header(&input);
    }
}
