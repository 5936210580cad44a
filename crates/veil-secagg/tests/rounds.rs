//! Whole rounds through the in-memory simulator: the released sum is exactly
//! the sum of the included clients' inputs, with and without dropouts.

use veil_secagg::sim::{SimParams, Simulation};
use veil_secagg::{Error, Phase};

fn params(n: usize, k: u32, t: u32) -> SimParams {
    SimParams {
        n,
        k,
        t,
        d: 50,
        bits: 20,
        seed: 7,
        sparse_ids: false,
        max_corrupt: 0,
    }
}

fn assert_correct(sim: Simulation) -> veil_secagg::sim::Outcome {
    let expected_inputs = sim.inputs.clone();
    let config = sim.config.clone();
    let outcome = sim.run();
    let result = outcome
        .result
        .clone()
        .unwrap_or_else(|| panic!("round failed: {:?}", outcome.server_error));
    let ring = config.ring;
    let mut sum = vec![0_u64; config.d()];
    for id in &result.included {
        for (s, v) in sum.iter_mut().zip(&expected_inputs[id]) {
            *s = ring.add(*s, *v);
        }
    }
    assert_eq!(result.sum, sum);
    outcome
}

#[test]
fn classic_secagg_without_dropouts() {
    let outcome = assert_correct(Simulation::new(params(6, 5, 4)));
    assert_eq!(outcome.result.unwrap().included.len(), 6);
    assert_eq!(outcome.completed.len(), 6);
    assert!(outcome.client_errors.is_empty());
}

#[test]
fn secagg_plus_without_dropouts() {
    let outcome = assert_correct(Simulation::new(SimParams {
        sparse_ids: true,
        max_corrupt: 0,
        ..params(30, 6, 5)
    }));
    assert_eq!(outcome.result.unwrap().included.len(), 30);
}

#[test]
fn a_server_unmasking_on_several_threads_releases_the_same_exact_sum() {
    // d long enough that three threads each get a part; one client drops
    // before its masked input (its pairwise masks are removed) and one after
    // (its self mask is removed), so both kinds of seed run in parallel.
    let mut sums = Vec::new();
    for threads in [1, 3] {
        let mut sim = Simulation::new(SimParams {
            d: u32::try_from(3 * veil_crypto::prg::MIN_ELEMENTS_PER_THREAD + 21).unwrap(),
            bits: 32,
            ..params(8, 7, 5)
        });
        sim.crash(2, Phase::MaskedInput);
        sim.crash(5, Phase::ConsistencyCheck);
        sim.set_server_threads(threads);
        let result = assert_correct(sim).result.unwrap();
        assert_eq!(result.included.len(), 7);
        sums.push(result.sum);
    }
    assert!(sums[0] == sums[1]);
}

#[test]
fn dropouts_at_every_phase() {
    for phase in [
        Phase::AdvertiseKeys,
        Phase::ShareKeys,
        Phase::MaskedInput,
        Phase::ConsistencyCheck,
        Phase::Unmask,
    ] {
        for (n, k, t) in [(8_usize, 7_u32, 5_u32), (20, 6, 5)] {
            let mut sim = Simulation::new(params(n, k, t));
            sim.crash(2, phase);
            let outcome = assert_correct(sim);
            let included = outcome.result.unwrap().included;
            // A client that crashed before its masked input is not in the sum;
            // one that crashed later is.
            assert_eq!(
                included.contains(&2),
                phase > Phase::MaskedInput,
                "{phase:?}"
            );
        }
    }
}

#[test]
fn a_client_that_disconnects_after_answering_is_not_waited_for() {
    // Client 0 answers first and disconnects while the phase is still
    // open: the server drops it then, and must neither send it the next
    // phase's message nor wait for its answer. No deadline passes (the
    // simulator's clock only moves to a deadline or a delayed message).
    for phase in [
        Phase::AdvertiseKeys,
        Phase::ShareKeys,
        Phase::MaskedInput,
        Phase::ConsistencyCheck,
    ] {
        for (n, k, t) in [(8_usize, 7_u32, 5_u32), (20, 6, 5)] {
            let mut sim = Simulation::new(params(n, k, t));
            sim.leave(0, phase);
            let outcome = assert_correct(sim);
            assert_eq!(outcome.elapsed, std::time::Duration::ZERO, "{phase:?}");
            assert_eq!(outcome.dropped().len(), 1, "{phase:?}");
            // Its input is in the sum once its masked input was delivered.
            assert_eq!(
                outcome.result.unwrap().included.contains(&0),
                phase >= Phase::MaskedInput,
                "{phase:?}"
            );
        }
    }
}

#[test]
fn too_few_survivors_abort_without_a_sum() {
    let mut sim = Simulation::new(params(6, 5, 4));
    for id in 0..3 {
        sim.crash(id, Phase::MaskedInput);
    }
    let outcome = sim.run();
    assert!(outcome.result.is_none());
    assert!(matches!(
        outcome.server_error,
        Some(Error::TooFewSurvivors {
            phase: Phase::MaskedInput,
            survivors: 3,
            needed: 4,
            ..
        })
    ));
}
