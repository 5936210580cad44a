//! Properties of clipping and quantisation: a clipped update's norm never
//! exceeds the bound; the de-quantised sum of many clients' quantised
//! updates is within the rounding bound of the true sum.

use proptest::prelude::*;
use rand::rngs::ChaCha20Rng;
use rand::{RngExt, SeedableRng};
use veil_dp::clip::{clip_l2, l2_norm};
use veil_dp::quantize::{dequantize_sum, plan_bits, quantize};

proptest! {
    #[test]
    fn clipped_norm_never_exceeds_the_bound(
        v in proptest::collection::vec(-1e6_f32..1e6, 1..300),
        c in 1e-3_f64..1e3,
    ) {
        let mut v = v;
        let before = l2_norm(&v).unwrap();
        let reported = clip_l2(&mut v, c).unwrap();
        prop_assert!((reported - before).abs() <= 1e-9 * before.max(1.0));
        prop_assert!(l2_norm(&v).unwrap() <= c);
        if before <= c {
            // Within the bound already: unchanged.
            prop_assert!((l2_norm(&v).unwrap() - before).abs() <= 1e-9 * before.max(1.0));
        }
    }

    #[test]
    fn dequantised_sum_is_within_the_rounding_bound(
        clients in 1_usize..40,
        d in 1_usize..30,
        c in 0.1_f64..10.0,
        scale_exp in 4_i32..16,
        seed in any::<u64>(),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let scale = 2_f64.powi(scale_exp);
        let plan = plan_bits(clients as u64, c, scale, 0.0).unwrap();
        let mask = u64::MAX >> (64 - plan.bits);
        let mut exact = vec![0.0_f64; d];
        let mut sum = vec![0_u64; d];
        for _ in 0..clients {
            let mut x: Vec<f32> = (0..d).map(|_| rng.random_range(-1.0_f32..1.0) * 100.0).collect();
            clip_l2(&mut x, c).unwrap();
            for (e, v) in exact.iter_mut().zip(&x) {
                *e += f64::from(*v);
            }
            let q = quantize(&x, scale, plan.bits, &mut rng).unwrap();
            for (s, v) in sum.iter_mut().zip(q) {
                *s = s.wrapping_add(v) & mask;
            }
        }
        let back = dequantize_sum(&sum, scale, plan.bits).unwrap();
        // Each client's rounding moves a coordinate by less than 1/scale.
        let bound = clients as f64 / scale;
        for (b, e) in back.iter().zip(&exact) {
            prop_assert!((b - e).abs() < bound + 1e-9, "{b} vs {e}, bound {bound}");
        }
    }
}
