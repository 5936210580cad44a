//! Replays the committed fuzz inputs of veil-net's targets (`fuzz/seeds/`
//! and `fuzz/regressions/`) through the entry points the targets call.

#![allow(clippy::unwrap_used)]

#[path = "../../../fuzz/committed_inputs.rs"]
mod committed_inputs;

use committed_inputs::inputs;

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
