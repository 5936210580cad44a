//! The cost floor of a round: the PRG work no implementation can skip,
//! timed on this core with the same fused routine the protocol uses.
//!
//! A client expands `k + 1` masks of `d` elements (one per neighbour, one
//! self mask). The server sums the survivors' vectors and expands one mask
//! per survivor's self mask and per (survivor, dropped neighbour) pair.

use std::hint::black_box;
use std::time::{Duration, Instant};

use veil_crypto::prg::{self, MaskSeed, MaskSign, RingBits};

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
pub(crate) fn expansions(streams: usize, d: usize, ring: RingBits) -> anyhow::Result<Duration> {
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
    match failed {
        Some(e) => Err(e.into()),
        None => Ok(t),
    }
}

/// Summing `vectors` vectors of `d` elements modulo `2^b`.
#[must_use]
pub(crate) fn summing(vectors: usize, d: usize, ring: RingBits) -> Duration {
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
