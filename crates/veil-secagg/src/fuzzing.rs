//! Entry points for the fuzz targets in `fuzz/`, kept here so that the unit
//! tests replay the committed corpus through the same code. Each takes
//! arbitrary bytes, must never panic, and asserts the invariants named.

#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a fuzz entry point reports a broken invariant by panicking"
)]

use veil_crypto::prg::RingBits;

use crate::config::RoundConfig;
use crate::messages::{ClientMessage, ServerMessage, Task};

/// The round config the decoder target decodes against: n = 5, k = 2, t = 2,
/// d = 3, b = 12.
fn decode_config() -> Option<RoundConfig> {
    let ring = RingBits::new(12).ok()?;
    RoundConfig::new(7, vec![1, 2, 3, 4, 5], 3, ring, 2, 2, 0, 1000, [0; 32]).ok()
}

/// Decodes `data` as every kind of message; whatever decodes re-encodes to
/// exactly `data` (the encoding is canonical), and decodes again to the same.
pub fn decode_messages(data: &[u8]) {
    let Some(config) = decode_config() else {
        panic!("the fuzz config is valid");
    };
    if let Ok((round, m)) = ClientMessage::decode(data, &config) {
        let again = m.encode(round);
        assert_eq!(again, data, "client message encoding is not canonical");
        assert!(ClientMessage::decode(&again, &config).is_ok_and(|d| d == (round, m)));
    }
    for c in [Some(&config), None] {
        if let Ok((round, m)) = ServerMessage::decode(data, c) {
            let again = m.encode(round);
            assert_eq!(again, data, "server message encoding is not canonical");
            assert!(ServerMessage::decode(&again, c).is_ok_and(|d| d == (round, m)));
        }
    }
}

/// Decodes `data` as a task (at most 4096 elements); a task that decodes
/// re-encodes to exactly `data` (the encoding is canonical).
pub fn task_decode(data: &[u8]) {
    if let Ok((round, task)) = Task::decode(data, 4096) {
        assert_eq!(
            task.encode(round),
            data,
            "a decoded task re-encodes differently"
        );
    }
}

/// The simulated round the session targets use (deterministic).
#[cfg(feature = "test-util")]
#[must_use]
pub fn session_params() -> crate::sim::SimParams {
    crate::sim::SimParams {
        n: 5,
        k: 4,
        t: 3,
        d: 4,
        bits: 16,
        seed: 2024,
        sparse_ids: false,
        max_corrupt: 0,
    }
}

/// Feeds a script of operations from arbitrary senders to a server session.
/// Invariants: no panic; a released sum includes at least `t` participants,
/// all of the round, with elements below `2^b`. (That the honest transcript
/// gives the exact sum is a unit test: it is too slow to recompute here.)
#[cfg(feature = "test-util")]
pub fn server_session(data: &[u8]) {
    let sim = crate::sim::Simulation::new(session_params());
    let config = sim.config.clone();
    let outcome = sim.replay_to_server(data);
    if let Some(result) = outcome.result {
        assert!(result.included.len() >= config.t());
        assert!(result.included.iter().all(|id| config.contains(*id)));
        assert!(result.sum.iter().all(|v| *v <= config.ring.mask()));
    }
}

/// Feeds a script of server messages to a client session. Invariants: no
/// panic; failure is sticky (checked inside the replay); a completed session
/// refuses every later message.
#[cfg(feature = "test-util")]
pub fn client_session(data: &[u8]) {
    let _errors = crate::sim::Simulation::new(session_params()).replay_to_client(data);
}
