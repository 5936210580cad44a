//! AEAD envelopes: ChaCha20-Poly1305 (RFC 8439) under single-use keys
//! (SPEC.md §6).
//!
//! The key of an envelope is derived from the X25519 agreement of sender and
//! receiver under [`KdfInfo::EnvelopeKey`], which binds the round, the phase
//! and the ordered pair (sender, receiver). A [`SealingKey`] seals exactly one
//! envelope: [`SealingKey::seal`] consumes it. Each key therefore meets one
//! nonce, and the nonce is the constant `0^12`; no nonce is ever repeated
//! under a key unless the same key is derived twice for different plaintexts,
//! which the protocol rules out by sealing once per (round, phase, sender,
//! receiver).
//!
//! The associated data repeats the context and appends the caller's bytes:
//! `AD = u8 len || "veil/1 envelope" || round (u64) || phase (u8) ||
//! sender (u32) || receiver (u32) || extra`. Any failed open is the one opaque
//! [`Error::OpenFailed`].

use chacha20poly1305::aead::{Aead, AeadInOut, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use zeroize::Zeroizing;

use crate::kdf::KdfInfo;
use crate::{Error, ParticipantId, Result, RoundId};

/// The label at the start of every envelope's associated data.
pub const LABEL_ENVELOPE_AD: &str = "veil/1 envelope";

/// The Poly1305 tag length; a sealed envelope is the plaintext length plus this.
pub const TAG_LEN: usize = 16;

/// The largest plaintext an envelope carries: 64 KiB, far above the protocol's
/// need (two Shamir shares) and a bound for a receiver before it allocates.
pub const MAX_PLAINTEXT_LEN: usize = 1 << 16;

/// The constant nonce of every envelope: each key seals one message.
const NONCE: [u8; 12] = [0; 12];

/// Who seals for whom, in which phase of which round. Public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeContext {
    /// The round.
    pub round: RoundId,
    /// The phase, as SPEC.md numbers it.
    pub phase: u8,
    /// The participant who seals.
    pub sender: ParticipantId,
    /// The participant who opens.
    pub receiver: ParticipantId,
}

impl EnvelopeContext {
    pub(crate) fn kdf_info(&self) -> KdfInfo {
        KdfInfo::EnvelopeKey {
            round: self.round,
            phase: self.phase,
            sender: self.sender,
            receiver: self.receiver,
        }
    }

    /// The associated data of an envelope in this context with the caller's
    /// `extra` bytes appended.
    #[must_use]
    pub fn associated_data(&self, extra: &[u8]) -> Vec<u8> {
        let label = LABEL_ENVELOPE_AD.as_bytes();
        let mut ad = Vec::with_capacity(label.len().saturating_add(extra.len()).saturating_add(18));
        ad.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
        ad.extend_from_slice(label);
        ad.extend_from_slice(&self.round.to_be_bytes());
        ad.push(self.phase);
        ad.extend_from_slice(&self.sender.to_be_bytes());
        ad.extend_from_slice(&self.receiver.to_be_bytes());
        ad.extend_from_slice(extra);
        ad
    }
}

/// A single-use key that seals one envelope. Zeroizes on drop.
pub struct SealingKey {
    key: Zeroizing<[u8; 32]>,
    context: EnvelopeContext,
}

secret_debug!(SealingKey);

impl SealingKey {
    pub(crate) fn new(key: Zeroizing<[u8; 32]>, context: EnvelopeContext) -> Self {
        Self { key, context }
    }

    /// Seals `plaintext`; the result is the ciphertext followed by the tag.
    /// The key is consumed: it never meets a second plaintext.
    ///
    /// # Errors
    /// [`Error::EnvelopeTooLarge`] beyond [`MAX_PLAINTEXT_LEN`].
    pub fn seal(self, extra_ad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(Error::EnvelopeTooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let ad = self.context.associated_data(extra_ad);
        ChaCha20Poly1305::new(&(*self.key).into())
            .encrypt(
                &NONCE.into(),
                Payload {
                    msg: plaintext,
                    aad: &ad,
                },
            )
            // Only lengths beyond 2^38 bytes fail, far above the cap above.
            .map_err(|_| Error::EnvelopeTooLarge {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            })
    }

    /// The raw key, for test vectors. Not in a default build.
    #[cfg(any(test, feature = "test-util"))]
    #[must_use]
    pub fn expose_for_test(&self) -> [u8; 32] {
        *self.key
    }
}

/// The key that opens the envelope sealed under the matching
/// [`SealingKey`]. Zeroizes on drop.
pub struct OpeningKey {
    key: Zeroizing<[u8; 32]>,
    context: EnvelopeContext,
}

secret_debug!(OpeningKey);

impl OpeningKey {
    pub(crate) fn new(key: Zeroizing<[u8; 32]>, context: EnvelopeContext) -> Self {
        Self { key, context }
    }

    /// Opens `sealed` (ciphertext and tag). The plaintext is released only
    /// after the tag has been checked.
    ///
    /// # Errors
    /// [`Error::EnvelopeTooLarge`] if `sealed` is longer than any envelope can
    /// be; [`Error::OpenFailed`] for anything else that is wrong (too short,
    /// wrong key, context or associated data, altered bytes).
    pub fn open(&self, extra_ad: &[u8], sealed: &[u8]) -> Result<Plaintext> {
        let max = MAX_PLAINTEXT_LEN.saturating_add(TAG_LEN);
        if sealed.len() > max {
            return Err(Error::EnvelopeTooLarge {
                len: sealed.len(),
                max,
            });
        }
        if sealed.len() < TAG_LEN {
            return Err(Error::OpenFailed);
        }
        let ad = self.context.associated_data(extra_ad);
        let mut buffer = Zeroizing::new(sealed.to_vec());
        ChaCha20Poly1305::new(&(*self.key).into())
            .decrypt_in_place(&NONCE.into(), &ad, &mut *buffer)
            .map_err(|_| Error::OpenFailed)?;
        Ok(Plaintext(buffer))
    }
}

/// The plaintext of an opened envelope. Zeroizes on drop, never printed.
pub struct Plaintext(Zeroizing<Vec<u8>>);

secret_debug!(Plaintext);

impl Plaintext {
    /// The plaintext bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;
    use crate::agreement::AgreementSecret;
    use crate::shamir::SecretScalar;

    fn pair() -> (AgreementSecret, AgreementSecret) {
        let mut rng = ChaCha20Rng::from_seed([3; 32]);
        (
            AgreementSecret::from_scalar(&SecretScalar::random(&mut rng)),
            AgreementSecret::from_scalar(&SecretScalar::random(&mut rng)),
        )
    }

    const CTX: EnvelopeContext = EnvelopeContext {
        round: 1,
        phase: 2,
        sender: 3,
        receiver: 4,
    };

    #[test]
    fn seal_then_open() {
        let (a, b) = pair();
        let sealed = a
            .agree(&b.public_key())
            .unwrap()
            .sealing_key(CTX)
            .seal(b"x", b"two shares")
            .unwrap();
        assert_eq!(sealed.len(), 10 + TAG_LEN);
        let opened = b
            .agree(&a.public_key())
            .unwrap()
            .opening_key(CTX)
            .open(b"x", &sealed)
            .unwrap();
        assert_eq!(opened.as_bytes(), b"two shares");
    }

    #[test]
    fn any_change_fails_with_one_opaque_error() {
        let (a, b) = pair();
        let ab = a.agree(&b.public_key()).unwrap();
        let ba = b.agree(&a.public_key()).unwrap();
        let sealed = ab.sealing_key(CTX).seal(b"x", b"payload").unwrap();

        let contexts = [
            EnvelopeContext { round: 2, ..CTX },
            EnvelopeContext { phase: 3, ..CTX },
            EnvelopeContext {
                sender: 4,
                receiver: 3,
                ..CTX
            },
        ];
        for ctx in contexts {
            assert_eq!(
                ba.opening_key(ctx).open(b"x", &sealed).unwrap_err(),
                Error::OpenFailed
            );
        }
        let key = ba.opening_key(CTX);
        assert_eq!(key.open(b"y", &sealed).unwrap_err(), Error::OpenFailed);
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 1;
            assert_eq!(key.open(b"x", &bad).unwrap_err(), Error::OpenFailed);
        }
        for len in 0..sealed.len() {
            assert_eq!(
                key.open(b"x", &sealed[..len]).unwrap_err(),
                Error::OpenFailed
            );
        }
    }

    #[test]
    fn lengths_are_bounded() {
        let (a, b) = pair();
        let ab = a.agree(&b.public_key()).unwrap();
        let big = vec![0_u8; MAX_PLAINTEXT_LEN + 1];
        assert_eq!(
            ab.sealing_key(CTX).seal(b"", &big).unwrap_err(),
            Error::EnvelopeTooLarge {
                len: MAX_PLAINTEXT_LEN + 1,
                max: MAX_PLAINTEXT_LEN
            }
        );
        let huge = vec![0_u8; MAX_PLAINTEXT_LEN + TAG_LEN + 1];
        assert!(matches!(
            ab.opening_key(CTX).open(b"", &huge).unwrap_err(),
            Error::EnvelopeTooLarge { .. }
        ));
    }
}
