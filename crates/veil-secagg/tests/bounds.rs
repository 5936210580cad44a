//! The message-size bounds a transport enforces before buffering a frame
//! (SPEC.md §10.11): every message of real rounds fits, and the bound is
//! reached by a masked input that excludes `k` senders.

use std::cell::RefCell;
use std::rc::Rc;

use veil_secagg::messages::{
    ClientMessage, MAX_ROUND_CONFIG_LEN, MaskedInput, max_client_message_len,
    max_server_message_len,
};
use veil_secagg::sim::{SimParams, Simulation};
use veil_secagg::{Phase, RoundConfig};

fn run_and_measure(p: SimParams, crash: Option<(u32, Phase)>) -> (RoundConfig, usize, usize) {
    let mut sim = Simulation::new(p);
    if let Some((id, phase)) = crash {
        sim.crash(id, phase);
    }
    let config = sim.config.clone();
    let largest = Rc::new(RefCell::new((0_usize, 0_usize)));
    let seen = Rc::clone(&largest);
    sim.set_hook(move |d, _| {
        let mut l = seen.borrow_mut();
        if d.to_server {
            l.0 = l.0.max(d.bytes.len());
        } else {
            l.1 = l.1.max(d.bytes.len());
        }
        vec![d]
    });
    let outcome = sim.run();
    assert!(outcome.result.is_some(), "the round completes");
    let (client, server) = *largest.borrow();
    (config, client, server)
}

#[test]
fn every_message_of_a_round_fits_its_bound() {
    for (n, k, t, d, bits) in [
        (5_usize, 4_u32, 3_u32, 12_u32, 16_u32),
        (12, 4, 3, 1000, 20),
        (9, 8, 5, 1, 1),
        (30, 6, 4, 5, 64),
    ] {
        let p = SimParams {
            n,
            k,
            t,
            d,
            bits,
            seed: 3,
            sparse_ids: true,
            max_corrupt: 0,
        };
        for crash in [None, Some((1, Phase::MaskedInput))] {
            let (config, client, server) = run_and_measure(p, crash);
            assert!(client <= max_client_message_len(&config), "{n} {k} {d}");
            assert!(server <= max_server_message_len(&config), "{n} {k} {d}");
            assert!(server <= MAX_ROUND_CONFIG_LEN.max(max_server_message_len(&config)));
        }
    }
}

#[test]
fn the_client_bound_is_a_masked_input_excluding_k_senders() {
    let p = SimParams {
        n: 12,
        k: 4,
        t: 3,
        d: 1000,
        bits: 20,
        seed: 3,
        sparse_ids: false,
        max_corrupt: 0,
    };
    let config = Simulation::new(p).config;
    let excluded: Vec<u32> = (0..config.degree).collect();
    let worst = ClientMessage::MaskedInput(MaskedInput {
        excluded,
        packed: vec![0; config.packed_len()],
    })
    .encode(config.round);
    assert_eq!(worst.len(), max_client_message_len(&config));
    assert_eq!(MAX_ROUND_CONFIG_LEN, 262_235, "SPEC.md §10.11");
    // A server bound that admits the whole round config for n participants.
    assert!(max_server_message_len(&config) >= 10 + 57 + 4 * config.n());
}
