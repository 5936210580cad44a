//! Replays the committed fuzz inputs (`fuzz/seeds/` and `fuzz/regressions/`)
//! through the same entry points the fuzz targets call, so every input that
//! once crashed a target is checked on every test run.

#[path = "../../../fuzz/committed_inputs.rs"]
mod committed_inputs;

use committed_inputs::inputs;

fn replay(target: &str, run: fn(&[u8])) {
    for input in inputs(target) {
        run(&input);
    }
}

#[test]
fn share_decode() {
    replay("share_decode", veil_crypto::fuzzing::share_decode);
}

#[test]
fn shamir_reconstruct() {
    replay(
        "shamir_reconstruct",
        veil_crypto::fuzzing::shamir_reconstruct,
    );
}

#[test]
fn envelope_open() {
    replay("envelope_open", veil_crypto::fuzzing::envelope_open);
}

#[test]
fn public_decode() {
    replay("public_decode", veil_crypto::fuzzing::public_decode);
}
