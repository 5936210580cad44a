//! Replays the committed fuzz inputs (`fuzz/seeds/` and `fuzz/regressions/`)
//! of veil-secagg's targets through the entry points the targets call, and
//! checks that the honest transcript in the seeds still replays to the exact
//! sum.

#[path = "../../../fuzz/committed_inputs.rs"]
mod committed_inputs;

use committed_inputs::inputs;

use veil_secagg::fuzzing::session_params;
use veil_secagg::sim::Simulation;

#[test]
fn decode_messages() {
    for input in inputs("decode_messages") {
        veil_secagg::fuzzing::decode_messages(&input);
    }
}

#[test]
fn task_decode() {
    let inputs = inputs("task_decode");
    for input in &inputs {
        veil_secagg::fuzzing::task_decode(input);
    }
    // The seeds are real tasks.
    let seeds = inputs
        .iter()
        .filter(|i| veil_secagg::messages::Task::decode(i, 16).is_ok())
        .count();
    assert!(seeds >= 3, "{seeds} tasks among the committed inputs");
}

#[test]
fn server_session() {
    for input in inputs("server_session") {
        veil_secagg::fuzzing::server_session(&input);
    }
}

#[test]
fn client_session() {
    for input in inputs("client_session") {
        veil_secagg::fuzzing::client_session(&input);
    }
}

#[test]
fn the_committed_honest_transcript_is_current_and_exact() {
    let (to_server, to_client) = Simulation::new(session_params()).record_scripts(0);
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    assert_eq!(
        std::fs::read(root.join("server_session/honest-round")).unwrap(),
        to_server,
        "stale seed: run `cargo run -p veil-secagg --features test-util --example fuzz_seeds`"
    );
    assert_eq!(
        std::fs::read(root.join("client_session/honest-round")).unwrap(),
        to_client
    );
    let sim = Simulation::new(session_params());
    let expected_all = sim.expected_sum(&sim.config.participants.clone());
    let outcome = Simulation::new(session_params()).replay_to_server(&to_server);
    let result = outcome.result.expect("the honest transcript completes");
    assert_eq!(result.included.len(), 5);
    assert_eq!(result.sum, expected_all);
}
