//! X25519 key agreement (RFC 7748) between participants (SPEC.md §2).
//!
//! An [`AgreementSecret`] is made from a [`SecretScalar`]: its X25519 private
//! key is the scalar's 32-byte canonical encoding (RFC 7748 clamping then
//! applies as usual). The mask-agreement secret of a client is therefore one
//! field element that Shamir sharing can split and reconstruct whole.
//!
//! An agreement whose result is all zeros (the peer sent a key of small
//! order) is refused with [`Error::NonContributory`].

use subtle::{Choice, ConstantTimeEq};
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop};

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
        let shared = self.0.diffie_hellman(&PublicKey::from(peer.0));
        if !shared.was_contributory() {
            return Err(Error::NonContributory);
        }
        Ok(SharedSecret(shared.to_bytes()))
    }
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
