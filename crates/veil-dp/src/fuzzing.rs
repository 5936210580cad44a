//! Entry points for the fuzz targets in `fuzz/`, kept here so that the unit
//! tests replay the committed corpus through the same code.

#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    reason = "a fuzz entry point reports a broken invariant by panicking"
)]

use crate::distributed::DistributedDiscreteGaussian;
use crate::ledger;
use crate::rdp::{Conversion, RdpAccountant};

/// Replays arbitrary bytes as a ledger: never panics; a ledger that replays
/// has a finite, non-negative epsilon and one history entry per round.
pub fn ledger_replay(data: &[u8]) {
    if let Ok(s) = ledger::replay(data) {
        assert!(s.epsilon.is_finite() && s.epsilon >= 0.0);
        assert_eq!(s.history.len() as u64, s.rounds);
        assert!(
            s.history
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
    }
}

/// Arbitrary privacy parameters (three f64 and a u16 step count from the
/// bytes): the accountant either refuses them or returns a finite,
/// non-negative epsilon, and never a NaN. With 16 more bytes (u32 shares,
/// u32 dimension, f64 scaled clip), the first f64 is also a client's `σ`
/// for the distributed accounting, which obeys the same rule.
pub fn dp_parameters(data: &[u8]) {
    distributed_parameters(data);
    let f = |i: usize| {
        data.get(i..i + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0.5, f64::from_le_bytes)
    };
    let steps = data
        .get(24..26)
        .and_then(|b| b.try_into().ok())
        .map_or(1, u16::from_le_bytes);
    let (sigma, q, delta) = (f(0), f(8), f(16));
    let mut acc = RdpAccountant::new();
    if acc
        .compose_subsampled_gaussian(sigma, q, u64::from(steps))
        .is_err()
    {
        return;
    }
    for conversion in [Conversion::Improved, Conversion::Classic] {
        if let Ok((eps, _)) = acc.epsilon(delta, conversion) {
            assert!(
                !eps.is_nan() && eps >= 0.0,
                "epsilon {eps} for {sigma} {q} {delta} {steps}"
            );
        }
    }
}

fn distributed_parameters(data: &[u8]) {
    let word = |i: usize| {
        data.get(i..i + 4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    };
    let (Some(shares), Some(dimension), Some(clip)) = (
        word(26),
        word(30),
        data.get(34..42)
            .and_then(|b| b.try_into().ok())
            .map(f64::from_le_bytes),
    ) else {
        return;
    };
    let f = |i: usize| f64::from_le_bytes(data[i..i + 8].try_into().unwrap_or([0; 8]));
    let (sigma, delta) = (f(0), f(16));
    let steps = u64::from(u16::from_le_bytes([data[24], data[25]]));
    let Ok(m) =
        DistributedDiscreteGaussian::new(sigma, u64::from(shares), u64::from(dimension), clip)
    else {
        return;
    };
    assert!(m.tau() >= 0.0 && m.l2_sensitivity() > 0.0, "{m:?}");
    let mut acc = RdpAccountant::new();
    acc.compose_distributed_discrete_gaussian(&m, steps);
    if let Ok((eps, _)) = acc.epsilon(delta, Conversion::Improved) {
        assert!(!eps.is_nan() && eps >= 0.0, "epsilon {eps} for {m:?}");
    }
}
