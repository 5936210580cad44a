//! veil-crypto: the cryptographic primitives of the veil secure-aggregation
//! protocol, and nothing else.
//!
//! - [`agreement`]: X25519 key agreement that rejects non-contributory
//!   (all-zero) results.
//! - [`kdf`]: HKDF-SHA256 derivations under labelled, versioned inputs that
//!   bind the protocol version, the purpose, the round and the participants.
//! - [`prg`]: the mask PRG, the ChaCha20 keystream read as little-endian words
//!   truncated to `b` bits, written or added straight into the caller's buffer.
//! - [`shamir`]: Shamir secret sharing over curve25519's scalar field, with
//!   Lagrange coefficients computed once per set of share holders, and
//!   detection of inconsistent shares.
//! - [`envelope`]: ChaCha20-Poly1305 envelopes with single-use keys derived
//!   from X25519 + HKDF and associated data that binds round, phase, sender
//!   and receiver.
//! - [`sign`]: Ed25519 identity signatures over domain-separated byte strings.
//!
//! The crate performs no I/O, reads no clock and never draws randomness on its
//! own: every function that needs randomness takes a [`rand_core::CryptoRng`].
//! Every secret is a newtype that zeroizes on drop, whose `Debug` prints only
//! its type name, and whose equality (where it has one) is constant-time.
//! Every byte layout here is fixed by `protocol/SPEC.md`, sections 2 to 7.
//!
//! # Example: a pairwise mask cancels in a sum
//!
//! ```
//! use veil_crypto::agreement::AgreementSecret;
//! use veil_crypto::prg::{self, RingBits};
//! use veil_crypto::shamir::SecretScalar;
//!
//! # fn main() -> Result<(), veil_crypto::Error> {
//! let mut rng = rand::rng();
//! let round = 7;
//! let (alice, bob) = (1_u32, 2_u32);
//! let a = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
//! let b = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
//!
//! // Each side derives the same seed from its own secret and the other's key.
//! let seed_a = a.agree(&b.public_key())?.pairwise_mask_seed(round, alice, bob);
//! let seed_b = b.agree(&a.public_key())?.pairwise_mask_seed(round, bob, alice);
//!
//! let ring = RingBits::new(20)?;
//! let (mut x, mut y) = (vec![5_u32; 1000], vec![9_u32; 1000]);
//! prg::add_mask(&seed_a, ring, &mut x)?; // the lower id adds
//! prg::sub_mask(&seed_b, ring, &mut y)?; // the higher id subtracts
//! let sum: Vec<u32> = x.iter().zip(&y).map(|(p, q)| ring.add(*p, *q)).collect();
//! assert!(sum.iter().all(|s| *s == 14));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

/// `Debug` for a secret type: the type name and nothing of its contents.
macro_rules! secret_debug {
    ($ty:ident) => {
        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($ty), "(<secret>)"))
            }
        }
    };
}

pub mod agreement;
pub mod envelope;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod kdf;
pub mod prg;
pub mod shamir;
pub mod sign;
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod test_vectors;

pub use error::{Error, Result};

/// The identifier of a participant in a round, as the protocol assigns it.
///
/// Participant ids are public. They name the ordered pair in every key
/// derivation, and `id + 1` is the participant's Shamir x-coordinate
/// ([`shamir::ShareIndex::for_participant`]).
pub type ParticipantId = u32;

/// The identifier of a round. A restart is a new round id, never a rewind.
pub type RoundId = u64;
