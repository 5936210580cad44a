//! Property tests: Shamir sharing round-trips for random (n, t) and random
//! subsets and catches altered shares; the mask PRG is a group action.

use proptest::prelude::*;
use rand::rngs::ChaCha20Rng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use subtle::ConstantTimeEq;
use veil_crypto::Error;
use veil_crypto::prg::{self, MaskSeed, MaskSign, RingBits};
use veil_crypto::shamir::{self, Reconstructor, SecretScalar, Share, ShareIndex};

/// Distinct nonzero x-coordinates, `n` of them, drawn from the seed.
fn indices(n: usize, seed: u64) -> Vec<ShareIndex> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut set = std::collections::BTreeSet::new();
    while set.len() < n {
        set.insert(rng.random_range(1..=u32::MAX));
    }
    let mut v: Vec<u32> = set.into_iter().collect();
    // Order must not matter: shuffle deterministically.
    v.shuffle(&mut rng);
    v.into_iter().map(|x| ShareIndex::new(x).unwrap()).collect()
}

fn subset(shares: &[Share], mask: &[bool]) -> Vec<Share> {
    shares
        .iter()
        .zip(mask)
        .filter(|(_, keep)| **keep)
        .map(|(s, _)| s.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn shamir_round_trips_on_random_subsets(
        n in 1_usize..=40,
        t_frac in 0.0_f64..=1.0,
        seed in any::<u64>(),
        mask in proptest::collection::vec(any::<bool>(), 40),
    ) {
        let t = ((t_frac * n as f64).ceil() as usize).clamp(1, n);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let secret = SecretScalar::random(&mut rng);
        let xs = indices(n, seed);
        let shares = shamir::split(&secret, t, &xs, &mut rng).unwrap();
        prop_assert_eq!(shares.len(), n);
        let chosen = subset(&shares, &mask[..n]);
        match shamir::reconstruct(&chosen, t, &mut rng) {
            Ok(got) => {
                prop_assert!(chosen.len() >= t);
                prop_assert!(bool::from(got.ct_eq(&secret)));
            }
            Err(e) => {
                prop_assert!(chosen.len() < t);
                prop_assert_eq!(e, Error::TooFewShares { got: chosen.len(), threshold: t });
            }
        }
    }

    #[test]
    fn an_altered_share_never_yields_a_secret_when_there_is_redundancy(
        n in 2_usize..=30,
        seed in any::<u64>(),
        victim in any::<prop::sample::Index>(),
        delta in 1_u64..,
    ) {
        let t = n / 2 + 1;
        prop_assume!(n > t);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let secret = SecretScalar::random(&mut rng);
        let xs = indices(n, seed);
        let shares = shamir::split(&secret, t, &xs, &mut rng).unwrap();
        let mut bytes: Vec<Vec<u8>> = shares.iter().map(|s| s.to_bytes().to_vec()).collect();
        let v = victim.index(n);
        // Add delta to the low 8 bytes of the value (stays canonical: the
        // top byte of a canonical scalar is at most 0x10).
        let low = u64::from_le_bytes(bytes[v][4..12].try_into().unwrap());
        let (sum, carry) = low.overflowing_add(delta);
        bytes[v][4..12].copy_from_slice(&sum.to_le_bytes());
        if carry { bytes[v][12] = bytes[v][12].wrapping_add(1); }
        let Ok(bad) = Share::from_bytes(&bytes[v]) else { return Ok(()) };
        let mut tampered = shares;
        tampered[v] = bad;
        prop_assert_eq!(
            shamir::reconstruct(&tampered, t, &mut rng).unwrap_err(),
            Error::InconsistentShares { threshold: t }
        );
    }

    #[test]
    fn reconstructor_serves_many_secrets(
        n in 1_usize..=25,
        seed in any::<u64>(),
        secrets in 1_usize..=5,
    ) {
        let t = n.div_ceil(2);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let xs = indices(n, seed);
        let rec = Reconstructor::new(&xs, t, &mut rng).unwrap();
        for _ in 0..secrets {
            let secret = SecretScalar::random(&mut rng);
            let shares = shamir::split(&secret, t, &xs, &mut rng).unwrap();
            prop_assert!(bool::from(rec.reconstruct(&shares).unwrap().ct_eq(&secret)));
        }
    }

    #[test]
    fn masks_cancel_and_commute(
        bits in 1_u32..=64,
        len in 0_usize..3000,
        seeds in proptest::collection::vec(any::<[u8; 32]>(), 1..6),
        signs in proptest::collection::vec(any::<bool>(), 6),
        x0 in any::<u64>(),
    ) {
        let ring = RingBits::new(bits).unwrap();
        let seeds: Vec<MaskSeed> = seeds.into_iter().map(MaskSeed::from_bytes).collect();
        let plan: Vec<(&MaskSeed, MaskSign)> = seeds
            .iter()
            .zip(&signs)
            .map(|(s, add)| (s, if *add { MaskSign::Add } else { MaskSign::Subtract }))
            .collect();
        let x: Vec<u64> = (0..len as u64).map(|i| ring.reduce(x0.wrapping_mul(i + 1))).collect();

        let mut fused = x.clone();
        prg::apply_masks(&plan, ring, &mut fused).unwrap();
        let mut one_by_one = x.clone();
        for (seed, sign) in plan.iter().rev() {
            match sign {
                MaskSign::Add => prg::add_mask(seed, ring, &mut one_by_one).unwrap(),
                MaskSign::Subtract => prg::sub_mask(seed, ring, &mut one_by_one).unwrap(),
            }
        }
        prop_assert_eq!(&fused, &one_by_one);
        prop_assert!(fused.iter().all(|v| *v <= ring.mask()));

        let inverse: Vec<(&MaskSeed, MaskSign)> = plan
            .iter()
            .map(|(s, sign)| (*s, if *sign == MaskSign::Add { MaskSign::Subtract } else { MaskSign::Add }))
            .collect();
        prg::apply_masks(&inverse, ring, &mut fused).unwrap();
        prop_assert_eq!(fused, x);
    }
}
