//! Property tests over random rounds: whenever a round completes, its output
//! is exactly the sum modulo 2^b of the included clients' inputs; whenever it
//! does not, it aborted because too few survived; it never releases a wrong
//! sum. Parameters: n in 2..=200, k (complete or even), t (2t > k+1), b in
//! 1..=64, and a random crash phase for a random subset of clients.

use proptest::prelude::*;
use veil_secagg::sim::{SimParams, Simulation};
use veil_secagg::{Error, Phase};

const PHASES: [Phase; 5] = [
    Phase::AdvertiseKeys,
    Phase::ShareKeys,
    Phase::MaskedInput,
    Phase::ConsistencyCheck,
    Phase::Unmask,
];

/// (n, k, t): classic SecAgg for n <= 40, else SecAgg+ with an even k.
fn shape() -> impl Strategy<Value = (usize, u32, u32)> {
    (
        2_usize..=200,
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
    )
        .prop_map(|(n, ki, ti)| {
            let k = if n <= 40 {
                (n - 1) as u32
            } else {
                // even, 2..=20
                2 * (1 + ki.index(10) as u32)
            };
            let holders = k + 1;
            let t_min = holders / 2 + 1;
            let t = t_min + ti.index((holders - t_min + 1) as usize) as u32;
            (n, k, t)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn completed_rounds_are_exact_and_failed_rounds_release_nothing(
        (n, k, t) in shape(),
        bits in 1_u32..=64,
        d in 1_u32..=40,
        seed in any::<u64>(),
        crashes in proptest::collection::vec((any::<prop::sample::Index>(), 0_usize..5), 0..6),
        sparse_ids in any::<bool>(),
    ) {
        let mut sim = Simulation::new(SimParams { n, k, t, d, bits, seed, sparse_ids, max_corrupt: 0 });
        let ids = sim.config.participants.clone();
        let mut crashed = std::collections::BTreeMap::new();
        for (who, phase) in &crashes {
            let id = ids[who.index(ids.len())];
            sim.crash(id, PHASES[*phase]);
            crashed.insert(id, PHASES[*phase]);
        }
        let inputs = sim.inputs.clone();
        let ring = sim.config.ring;
        let outcome = sim.run();
        match (&outcome.result, &outcome.server_error) {
            (Some(result), None) => {
                let mut sum = vec![0_u64; d as usize];
                for id in &result.included {
                    for (s, v) in sum.iter_mut().zip(&inputs[id]) {
                        *s = ring.add(*s, *v);
                    }
                }
                prop_assert_eq!(&result.sum, &sum);
                // Clients that crashed before sending their masked input are
                // never in the sum; everyone else who did not crash is,
                // unless crashes around it left it fewer than t holders, so
                // that it refused to mask (in a sparse graph a client's
                // neighbours can all crash).
                for id in &ids {
                    let in_sum = result.included.contains(id);
                    match crashed.get(id) {
                        Some(p) if *p <= Phase::MaskedInput => prop_assert!(!in_sum),
                        None if !in_sum => prop_assert!(
                            matches!(
                                outcome.client_errors.get(id),
                                Some(Error::TooFewSurvivors {
                                    phase: Phase::ShareKeys | Phase::MaskedInput,
                                    ..
                                })
                            ),
                            "client {} did not crash, yet is not in the sum: {:?}",
                            id,
                            outcome.client_errors.get(id)
                        ),
                        _ => {}
                    }
                }
                prop_assert!(result.included.len() >= t as usize);
            }
            (None, Some(Error::TooFewSurvivors { survivors, needed, .. })) => {
                prop_assert!(survivors < needed);
                prop_assert!(!crashed.is_empty(), "a round without crashes must complete");
            }
            other => prop_assert!(false, "unexpected outcome {:?}", other),
        }
    }
}

#[test]
fn no_crashes_always_complete_across_shapes() {
    for (n, k, t) in [
        (2_usize, 1_u32, 2_u32),
        (3, 2, 2),
        (5, 4, 3),
        (41, 2, 2),
        (60, 4, 5),
        (200, 20, 11),
    ] {
        for bits in [1_u32, 20, 32, 64] {
            let sim = Simulation::new(SimParams {
                n,
                k,
                t,
                d: 9,
                bits,
                seed: n as u64,
                sparse_ids: true,
                max_corrupt: 0,
            });
            let inputs = sim.inputs.clone();
            let ring = sim.config.ring;
            let outcome = sim.run();
            let result = outcome
                .result
                .unwrap_or_else(|| panic!("{n},{k},{t},{bits}: {:?}", outcome.server_error));
            assert_eq!(result.included.len(), n);
            let mut sum = vec![0_u64; 9];
            for input in inputs.values() {
                for (s, v) in sum.iter_mut().zip(input) {
                    *s = ring.add(*s, *v);
                }
            }
            assert_eq!(result.sum, sum);
        }
    }
}
