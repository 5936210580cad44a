//! Entry points for the fuzz targets in `fuzz/`, kept here so that the unit
//! tests replay the committed corpus through exactly the same code.
//!
//! Each function takes arbitrary bytes, must never panic, and asserts the
//! invariants of what it exercises. Not part of the stable API.

#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a fuzz entry point reports a broken invariant by panicking"
)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use subtle::ConstantTimeEq;

use crate::agreement::{AgreementPublicKey, AgreementSecret};
use crate::envelope::EnvelopeContext;
use crate::shamir::{self, SHARE_LEN, SecretScalar, Share};
use crate::sign::{IdentityVerifyingKey, Signature, SignatureDomain};

/// The most shares the reconstruction target feeds in (quadratic set-up cost).
const MAX_FUZZ_SHARES: usize = 64;

/// Decodes a share; a share that decodes re-encodes to the same bytes.
pub fn share_decode(data: &[u8]) {
    if let Ok(share) = Share::from_bytes(data) {
        assert_eq!(
            share.to_bytes().as_slice(),
            data,
            "share encoding is not canonical"
        );
    }
}

/// `data = threshold (u8) || shares (36 bytes each)`: reconstruction never
/// panics, and a secret it returns is the one any `t` of the shares give.
pub fn shamir_reconstruct(data: &[u8]) {
    let Some((&t, rest)) = data.split_first() else {
        return;
    };
    let shares: Vec<Share> = rest
        .chunks_exact(SHARE_LEN)
        .take(MAX_FUZZ_SHARES)
        .filter_map(|c| Share::from_bytes(c).ok())
        .collect();
    let t = usize::from(t);
    let mut rng = ChaCha20Rng::from_seed([0; 32]);
    if let Ok(secret) = shamir::reconstruct(&shares, t, &mut rng) {
        assert!(shares.len() >= t && t >= 1);
        let last_t = &shares[shares.len().saturating_sub(t)..];
        let again = shamir::reconstruct(last_t, t, &mut rng)
            .unwrap_or_else(|e| panic!("a subset of consistent shares failed: {e}"));
        assert!(
            bool::from(secret.ct_eq(&again)),
            "two subsets of consistent shares gave different secrets"
        );
    }
}

/// Opens arbitrary bytes as an envelope under a fixed key: never panics, and
/// forging an envelope must fail.
pub fn envelope_open(data: &[u8]) {
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let a = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
    let b = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
    let Ok(shared) = a.agree(&b.public_key()) else {
        panic!("fixed keys are contributory");
    };
    let ctx = EnvelopeContext {
        round: 1,
        phase: 2,
        sender: 3,
        receiver: 4,
    };
    assert!(
        shared.opening_key(ctx).open(b"", data).is_err(),
        "an envelope was forged"
    );
}

/// Decodes public keys and signatures from arbitrary bytes and verifies:
/// veil's verdict is exactly upstream strict Ed25519 verification of the
/// domain-separated bytes, with keys of small order refused.
pub fn public_decode(data: &[u8]) {
    if let Ok(key) = AgreementPublicKey::from_slice(data.get(..32).unwrap_or(data)) {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let me = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
        let _ = me.agree(&key);
    }
    let (Some(k), Some(s)) = (data.get(..32), data.get(32..96)) else {
        return;
    };
    let message = data.get(96..).unwrap_or_default();
    let domain = SignatureDomain::ADVERTISE_KEYS;
    let upstream = <&[u8; 32]>::try_from(k)
        .ok()
        .and_then(|k| ed25519_dalek::VerifyingKey::from_bytes(k).ok())
        .filter(|k| !k.is_weak());
    match (IdentityVerifyingKey::from_slice(k), upstream) {
        (Ok(key), Some(upstream)) => {
            let Ok(sig) = Signature::from_slice(s) else {
                panic!("64 bytes always decode as a signature");
            };
            let theirs = upstream
                .verify_strict(
                    &domain.signed_bytes(message),
                    &ed25519_dalek::Signature::from_bytes(&sig.to_bytes()),
                )
                .is_ok();
            assert_eq!(key.verify(domain, message, &sig).is_ok(), theirs);
        }
        (Err(_), None) => {}
        _ => panic!("veil and ed25519-dalek disagree on whether a key is valid"),
    }
}
