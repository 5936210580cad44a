//! Replays the committed fuzz inputs of veil-net's targets (`fuzz/seeds/`
//! and `fuzz/regressions/`) through the entry points the targets call.

#![allow(clippy::unwrap_used)]

#[path = "../../../fuzz/committed_inputs.rs"]
mod committed_inputs;

use committed_inputs::inputs;

#[test]
fn frame_header() {
    for input in inputs("frame_header") {
        veil_net::fuzzing::frame_header(&input);
    }
}
