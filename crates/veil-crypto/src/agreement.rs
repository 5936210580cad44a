//! X25519 key agreement (RFC 7748) between participants (SPEC.md §2).
//!
//! An [`AgreementSecret`] is made from a [`SecretScalar`]: its X25519 private
//! key is the scalar's 32-byte canonical encoding (RFC 7748 clamping then
//! applies as usual). The mask-agreement secret of a client is therefore one
//! field element that Shamir sharing can split and reconstruct whole.
//!
//! An agreement whose result is all zeros (the peer sent a key of small
//! order) is refused with [`Error::NonContributory`].
//!
//! # How the agreement is computed
//!
//! The result is RFC 7748's `X25519(k, u)` bit for bit, but for a peer key on
//! the curve it is not computed with the Montgomery ladder. The point is
//! mapped to Edwards form, multiplied by the clamped scalar there, and mapped
//! back. curve25519-dalek's Edwards variable-base multiplication is constant
//! time and uses its AVX2 backend where the CPU has one, which makes an
//! agreement about a quarter cheaper on such CPUs (`cargo bench -p
//! veil-crypto --bench agreement` compares both in one run). A client makes
//! 2k agreements a round, so this is a visible part of its time.
//!
//! Why the result is the same: the birational map between Curve25519 and
//! edwards25519 is a group isomorphism that preserves `u`, and `[k]P` and
//! `[k](−P)` have the same `u`, so either Edwards point with the peer's `u`
//! gives `X25519(k, u)`. The identity maps to `u = 0`, which is what the
//! ladder returns for a point of small order. A `u` that is not on the curve
//! (it is on the twist) has no Edwards point; it goes through x25519-dalek's
//! ladder, as does `u = −1`. The map branches only on the peer's public key.
//! Tests check equality with the ladder on random keys, random byte strings
//! (about half on the twist), non-canonical encodings and every small-order
//! point.

use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::montgomery::MontgomeryPoint;
use subtle::{Choice, ConstantTimeEq};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::envelope::{EnvelopeContext, OpeningKey, SealingKey};
use crate::kdf::{self, KdfInfo};
use crate::prg::MaskSeed;
use crate::shamir::SecretScalar;
use crate::{Error, ParticipantId, Result, RoundId};

/// The length of an encoded [`AgreementPublicKey`].
pub const PUBLIC_KEY_LEN: usize = 32;

/// An X25519 private key.
///
/// It zeroizes on drop (x25519-dalek's `StaticSecret` does) and is not printed.
pub struct AgreementSecret(StaticSecret);

secret_debug!(AgreementSecret);

impl AgreementSecret {
    /// The X25519 private key whose bytes are `LE32(scalar)`.
    #[must_use]
    pub fn from_scalar(scalar: &SecretScalar) -> Self {
        Self(StaticSecret::from(scalar.as_scalar().to_bytes()))
    }

    /// The X25519 public key `X25519(k, 9)`.
    #[must_use]
    pub fn public_key(&self) -> AgreementPublicKey {
        AgreementPublicKey(PublicKey::from(&self.0).to_bytes())
    }

    /// The shared secret `X25519(k, peer)`.
    ///
    /// # Errors
    /// [`Error::NonContributory`] if the result is all zeros.
    pub fn agree(&self, peer: &AgreementPublicKey) -> Result<SharedSecret> {
        let shared = match MontgomeryPoint(peer.0).to_edwards(0) {
            Some(point) => SharedSecret(edwards_x25519(&self.0, point)),
            None => SharedSecret(self.0.diffie_hellman(&PublicKey::from(peer.0)).to_bytes()),
        };
        if bool::from(shared.0.ct_eq(&[0_u8; 32])) {
            return Err(Error::NonContributory);
        }
        Ok(shared)
    }

    /// The agreement by x25519-dalek's Montgomery ladder, which
    /// [`AgreementSecret::agree`] must equal; for tests and the benchmark.
    #[cfg(any(test, feature = "test-util"))]
    #[must_use]
    pub fn agree_by_ladder_for_test(&self, peer: &AgreementPublicKey) -> [u8; 32] {
        self.0.diffie_hellman(&PublicKey::from(peer.0)).to_bytes()
    }
}

/// `X25519(k, u(point))` computed on edwards25519 (module docs).
fn edwards_x25519(secret: &StaticSecret, point: EdwardsPoint) -> [u8; 32] {
    let scalar = Zeroizing::new(secret.to_bytes());
    let mut product = point.mul_clamped(*scalar);
    let u = product.to_montgomery().to_bytes();
    product.zeroize();
    u
}

/// An X25519 public key: 32 bytes, the u-coordinate (RFC 7748). Public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AgreementPublicKey([u8; PUBLIC_KEY_LEN]);

impl AgreementPublicKey {
    /// The key with these bytes. Every 32-byte string is a u-coordinate
    /// (RFC 7748 §5); a key of small order is caught by
    /// [`AgreementSecret::agree`].
    #[must_use]
    pub fn from_bytes(bytes: [u8; PUBLIC_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Decodes a key from a byte string of exactly 32 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| Error::InvalidLength {
                what: "x25519 public key",
                expected: PUBLIC_KEY_LEN,
                got: bytes.len(),
            })
    }

    /// The key's bytes.
    #[must_use]
    pub fn to_bytes(self) -> [u8; PUBLIC_KEY_LEN] {
        self.0
    }
}

/// The result of an X25519 agreement; only ever used as HKDF input.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret([u8; 32]);

secret_debug!(SharedSecret);

impl SharedSecret {
    /// The seed of the pairwise mask between `me` and `peer` in `round`
    /// (SPEC.md §3.2). Both ends derive the same seed.
    #[must_use]
    pub fn pairwise_mask_seed(
        &self,
        round: RoundId,
        me: ParticipantId,
        peer: ParticipantId,
    ) -> MaskSeed {
        let okm = kdf::derive_32(&self.0, &KdfInfo::pairwise_mask(round, me, peer));
        MaskSeed::from_bytes(*okm)
    }

    /// The single-use key with which `context.sender` seals one envelope for
    /// `context.receiver` (SPEC.md §3.4, §6).
    #[must_use]
    pub fn sealing_key(&self, context: EnvelopeContext) -> SealingKey {
        SealingKey::new(kdf::derive_32(&self.0, &context.kdf_info()), context)
    }

    /// The key with which `context.receiver` opens the envelope that
    /// `context.sender` sealed.
    #[must_use]
    pub fn opening_key(&self, context: EnvelopeContext) -> OpeningKey {
        OpeningKey::new(kdf::derive_32(&self.0, &context.kdf_info()), context)
    }

    /// The raw shared secret, for test vectors. Not in a default build.
    #[cfg(any(test, feature = "test-util"))]
    #[must_use]
    pub fn expose_for_test(&self) -> [u8; 32] {
        self.0
    }
}

impl ConstantTimeEq for SharedSecret {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;

    #[test]
    fn both_sides_agree_and_derive_the_same_seed() {
        let mut rng = ChaCha20Rng::from_seed([1; 32]);
        let a = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
        let b = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
        let ab = a.agree(&b.public_key()).unwrap();
        let ba = b.agree(&a.public_key()).unwrap();
        assert!(bool::from(ab.ct_eq(&ba)));
        let s1 = ab.pairwise_mask_seed(5, 10, 20);
        let s2 = ba.pairwise_mask_seed(5, 20, 10);
        assert!(bool::from(s1.ct_eq(&s2)));
        assert!(!bool::from(s1.ct_eq(&ab.pairwise_mask_seed(6, 10, 20))));
    }

    #[test]
    fn small_order_keys_are_refused() {
        let mut rng = ChaCha20Rng::from_seed([2; 32]);
        let a = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
        // u = 0 and u = 1 have small order on curve25519 (and the twist).
        let mut one = [0_u8; 32];
        one[0] = 1;
        for bad in [[0_u8; 32], one] {
            assert_eq!(
                a.agree(&AgreementPublicKey::from_bytes(bad)).unwrap_err(),
                Error::NonContributory
            );
        }
    }

    /// The agreement's result and verdict for `peer`, next to the ladder's.
    fn both_ways(a: &AgreementSecret, peer: [u8; 32]) -> (Option<[u8; 32]>, [u8; 32]) {
        let peer = AgreementPublicKey::from_bytes(peer);
        let ours = match a.agree(&peer) {
            Ok(shared) => Some(shared.expose_for_test()),
            Err(e) => {
                assert_eq!(e, Error::NonContributory);
                None
            }
        };
        (ours, a.agree_by_ladder_for_test(&peer))
    }

    #[test]
    fn the_edwards_route_equals_the_ladder_on_curve_and_twist_points() {
        use rand::RngExt;
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        let (mut on_curve, mut on_twist) = (0_usize, 0_usize);
        for i in 0..400 {
            let a = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
            let mut peer: [u8; 32] = if i % 2 == 0 {
                AgreementSecret::from_scalar(&SecretScalar::random(&mut rng))
                    .public_key()
                    .to_bytes()
            } else {
                rng.random()
            };
            if i % 4 == 2 {
                peer[31] |= 0x80; // the bit RFC 7748 ignores
            }
            if MontgomeryPoint(peer).to_edwards(0).is_some() {
                on_curve += 1;
            } else {
                on_twist += 1;
            }
            let (ours, ladder) = both_ways(&a, peer);
            assert_eq!(ours, Some(ladder), "peer {peer:02x?}");
        }
        // Both branches ran, many times.
        assert!(on_curve > 250 && on_twist > 50, "{on_curve} / {on_twist}");
    }

    #[test]
    fn small_order_and_non_canonical_keys_agree_with_the_ladder() {
        let hex32 = |h: &str| -> [u8; 32] { hex::decode(h).unwrap().try_into().unwrap() };
        // The u-coordinates of points of small order on the curve and its
        // twist (0, 1, the two of order 8, p - 1), and p, p + 1, which
        // encode 0 and 1 non-canonically; each also with the top bit set.
        let small = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ];
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let a = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
        for h in small {
            for top in [0, 0x80] {
                let mut peer = hex32(h);
                peer[31] |= top;
                let (ours, ladder) = both_ways(&a, peer);
                assert_eq!(ladder, [0; 32], "{h}");
                assert_eq!(ours, None, "{h} is refused");
            }
        }
        // A key of full order, encoded as u + p (not reduced): same result
        // as u, on both routes. u = 9 is the base point, 9 + p fits 255 bits.
        let mut nine_plus_p =
            hex32("f6ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
        let (ours, ladder) = both_ways(&a, nine_plus_p);
        let mut nine = [0_u8; 32];
        nine[0] = 9;
        assert_eq!(ours, Some(ladder));
        assert_eq!(ours, both_ways(&a, nine).0);
        nine_plus_p[31] |= 0x80;
        assert_eq!(both_ways(&a, nine_plus_p).0, ours);
    }

    #[test]
    fn public_key_decoding_checks_length() {
        assert_eq!(
            AgreementPublicKey::from_slice(&[0; 31]).unwrap_err(),
            Error::InvalidLength {
                what: "x25519 public key",
                expected: 32,
                got: 31
            }
        );
        let k = AgreementPublicKey::from_slice(&[9; 32]).unwrap();
        assert_eq!(k.to_bytes(), [9; 32]);
    }
}
