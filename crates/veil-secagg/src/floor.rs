//! The cost floor of a round: the PRG work no implementation can skip,
//! timed on this core with the same fused routine the protocol uses. Shared
//! by `cargo bench -p veil-secagg --bench round` and `veil-bench`.
//!
//! A client expands `k + 1` masks of `d` elements (one per neighbour, one
//! self mask). The server sums the survivors' vectors and expands one mask
//! per survivor's self mask and per (survivor, dropped neighbour) pair.

use std::hint::black_box;
use std::time::{Duration, Instant};

use veil_crypto::ParticipantId;
use veil_crypto::prg::{self, MaskSeed, MaskSign, RingBits};

use crate::graph::NeighbourGraph;

/// The floors of one round, each timed on one core.
#[derive(Debug, Clone, Copy)]
pub struct Floor {
    /// One client's `k + 1` expansions.
    pub client: Duration,
    /// The server's sum and expansions.
    pub server: Duration,
}

impl Floor {
    /// The floor of a round with neighbour count `k`, vectors of `d`
    /// elements, whose masked inputs came from `arrived` and not from `gone`.
    ///
    /// # Errors
    /// If the PRG refuses the ring (it never does for a valid `RingBits`).
    pub fn measure(
        k: u32,
        d: usize,
        ring: RingBits,
        graph: &NeighbourGraph,
        arrived: usize,
        gone: &[ParticipantId],
    ) -> veil_crypto::Result<Self> {
        let pairs = surviving_edges(graph, gone);
        let client = expansions(
            usize::try_from(k).unwrap_or(usize::MAX).saturating_add(1),
            d,
            ring,
        )?;
        let server = summing(arrived, d, ring).saturating_add(expansions(
            arrived.saturating_add(pairs),
            d,
            ring,
        )?);
        Ok(Self { client, server })
    }
}

/// The (survivor, dropped neighbour) pairs: the pairwise masks the server
/// must remove.
#[must_use]
pub fn surviving_edges(graph: &NeighbourGraph, gone: &[ParticipantId]) -> usize {
    gone.iter()
        .map(|v| {
            graph
                .neighbours(*v)
                .iter()
                .filter(|u| !gone.contains(u))
                .count()
        })
        .sum()
}

/// Time of `f`: the best of `reps` runs (a floor is a lower bound).
fn best_of(reps: usize, mut f: impl FnMut()) -> Duration {
    (0..reps)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// `streams` fused mask expansions into one vector of `d` elements.
///
/// # Errors
/// If the PRG refuses the ring (it never does for a valid `RingBits`).
pub fn expansions(streams: usize, d: usize, ring: RingBits) -> veil_crypto::Result<Duration> {
    let seeds: Vec<MaskSeed> = (0..streams)
        .map(|i| MaskSeed::from_bytes([u8::try_from(i % 251).unwrap_or(0); 32]))
        .collect();
    let plan: Vec<(&MaskSeed, MaskSign)> = seeds.iter().map(|s| (s, MaskSign::Add)).collect();
    let mut x = vec![0_u64; d];
    let mut failed = None;
    let t = best_of(3, || {
        if let Err(e) = prg::apply_masks(&plan, ring, black_box(&mut x)) {
            failed = Some(e);
        }
    });
    failed.map_or(Ok(t), Err)
}

/// Summing `vectors` vectors of `d` elements modulo `2^b`.
#[must_use]
pub fn summing(vectors: usize, d: usize, ring: RingBits) -> Duration {
    let inputs: Vec<Vec<u64>> = (0..vectors.clamp(1, 64))
        .map(|i| vec![i as u64; d])
        .collect();
    let mut acc = vec![0_u64; d];
    best_of(3, || {
        for input in inputs.iter().cycle().take(vectors) {
            for (a, v) in acc.iter_mut().zip(input) {
                *a = ring.add(*a, *v);
            }
        }
        black_box(&acc);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{SimParams, Simulation};

    #[test]
    fn edges_to_the_dropped_are_counted_once_per_survivor() {
        // The complete graph on 5: dropping 2 clients leaves 3 survivors,
        // each the neighbour of both, so 6 edges; a survivor-free drop of
        // everyone leaves none.
        let config = Simulation::new(SimParams {
            n: 5,
            k: 4,
            t: 3,
            d: 10,
            bits: 32,
            seed: 1,
            sparse_ids: false,
        })
        .config;
        let graph = config.graph();
        let ids = config.participants;
        assert_eq!(surviving_edges(&graph, &ids[..2]), 6);
        assert_eq!(surviving_edges(&graph, &[]), 0);
        assert_eq!(surviving_edges(&graph, &ids), 0);
    }

    #[test]
    fn a_floor_is_measured() {
        let ring = RingBits::new(32).unwrap();
        assert!(expansions(2, 10_000, ring).unwrap() > Duration::ZERO);
        assert!(summing(3, 10_000, ring) > Duration::ZERO);
    }
}
