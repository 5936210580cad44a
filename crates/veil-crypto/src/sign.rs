//! Ed25519 identity signatures (RFC 8032) over domain-separated byte strings
//! (SPEC.md §7).
//!
//! Every signed byte string is `u8 len || domain || message`, where the domain
//! is one of the [`SignatureDomain`] constants, so a signature made for one
//! purpose is never valid for another. Verification is RFC 8032 strict
//! (ed25519-dalek's `verify_strict`: canonical `S`, no small-order `R` or
//! key), and keys of small order are refused when decoded.
//!
//! [`verify_batch`] checks many signatures at once (about 2.5× cheaper per
//! signature at 34); SPEC.md §7 says where it may be used and what it accepts.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::{Error, Result};

/// The length of an encoded [`IdentityVerifyingKey`].
pub const VERIFYING_KEY_LEN: usize = 32;
/// The length of an encoded [`Signature`].
pub const SIGNATURE_LEN: usize = 64;

/// What a signature is for; its label is signed ahead of the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureDomain(&'static str);

impl SignatureDomain {
    /// A client's advertised public keys (protocol phase 1).
    pub const ADVERTISE_KEYS: Self = Self("veil/1 advertise-keys");
    /// A survivor's signature over the survivor set (protocol phase 4).
    pub const CONSISTENCY_CHECK: Self = Self("veil/1 consistency-check");

    /// The domain's label.
    #[must_use]
    pub fn label(self) -> &'static str {
        self.0
    }

    /// The exact bytes that are signed for `message` in this domain.
    #[must_use]
    pub fn signed_bytes(self, message: &[u8]) -> Vec<u8> {
        let label = self.0.as_bytes();
        let mut out =
            Vec::with_capacity(label.len().saturating_add(message.len()).saturating_add(1));
        out.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(label);
        out.extend_from_slice(message);
        out
    }
}

/// A participant's long-term Ed25519 identity key. Zeroizes on drop (the
/// upstream type does), never printed. `Clone` because a client's session of
/// each round keeps its own copy.
#[derive(Clone)]
pub struct IdentitySigningKey(SigningKey);

secret_debug!(IdentitySigningKey);

impl IdentitySigningKey {
    /// A fresh random identity key.
    pub fn generate<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self(SigningKey::generate(rng))
    }

    /// The identity key with this 32-byte RFC 8032 seed.
    #[must_use]
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, to store the key. The one way it leaves the type;
    /// the result zeroizes on drop.
    #[must_use]
    pub fn export_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    #[must_use]
    pub fn verifying_key(&self) -> IdentityVerifyingKey {
        IdentityVerifyingKey(self.0.verifying_key())
    }

    /// Signs `message` in `domain`.
    #[must_use]
    pub fn sign(&self, domain: SignatureDomain, message: &[u8]) -> Signature {
        Signature(self.0.sign(&domain.signed_bytes(message)).to_bytes())
    }
}

/// A participant's public identity key. Public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityVerifyingKey(VerifyingKey);

impl IdentityVerifyingKey {
    /// Decodes a compressed Edwards point.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] unless 32 bytes; [`Error::InvalidVerifyingKey`]
    /// if they are not a point, or a point of small order.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; VERIFYING_KEY_LEN] =
            bytes.try_into().map_err(|_| Error::InvalidLength {
                what: "ed25519 public key",
                expected: VERIFYING_KEY_LEN,
                got: bytes.len(),
            })?;
        let key = VerifyingKey::from_bytes(bytes).map_err(|_| Error::InvalidVerifyingKey)?;
        if key.is_weak() {
            return Err(Error::InvalidVerifyingKey);
        }
        Ok(Self(key))
    }

    /// The compressed point.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; VERIFYING_KEY_LEN] {
        self.0.to_bytes()
    }

    /// Checks `signature` on `message` in `domain`.
    ///
    /// # Errors
    /// [`Error::BadSignature`] if it does not verify strictly.
    pub fn verify(
        &self,
        domain: SignatureDomain,
        message: &[u8],
        signature: &Signature,
    ) -> Result<()> {
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(&domain.signed_bytes(message), &sig)
            .map_err(|_| Error::BadSignature)
    }
}

/// One entry of a [`verify_batch`]: a signer's key, the message it signed
/// (without the domain, as for [`IdentityVerifyingKey::verify`]) and the
/// signature.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    /// The signer's key.
    pub key: &'a IdentityVerifyingKey,
    /// The message.
    pub message: &'a [u8],
    /// The signature on it.
    pub signature: &'a Signature,
}

/// A [`verify_batch`] refused its batch; `index` is the first entry that
/// does not verify strictly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchRejected {
    /// The position in the batch of the first bad signature.
    pub index: usize,
}

/// Checks every signature of `batch` in `domain` at once.
///
/// The batch is one random linear combination of the verification equations
/// (ed25519-dalek's `verify_batch`: coefficients drawn from a transcript of
/// the whole batch, so the check is deterministic). It accepts every batch of
/// signatures that each verify strictly. It refuses every batch that holds a
/// forgery, and also accepts a signature that is valid up to a small-order
/// component in `R` or in the key, which `verify_strict` would refuse; only
/// the key's holder can make one (SPEC.md §7 says why a client may accept
/// it). On refusal each signature is checked strictly, one by one, to name
/// the first bad one.
///
/// # Errors
/// [`BatchRejected`] with the index of the first signature that does not
/// verify strictly. A refused batch always holds one: a batch of strictly
/// valid signatures sums to the identity whatever the coefficients. Should
/// none be found all the same, the batch is still refused, at index 0.
pub fn verify_batch(
    domain: SignatureDomain,
    batch: &[Signed<'_>],
) -> core::result::Result<(), BatchRejected> {
    let strict = |i: usize, s: &Signed<'_>| {
        s.key
            .verify(domain, s.message, s.signature)
            .map_err(|_| BatchRejected { index: i })
    };
    if batch.len() <= 1 {
        return batch.iter().enumerate().try_for_each(|(i, s)| strict(i, s));
    }
    let messages: Vec<Vec<u8>> = batch
        .iter()
        .map(|s| domain.signed_bytes(s.message))
        .collect();
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let signatures: Vec<ed25519_dalek::Signature> = batch
        .iter()
        .map(|s| ed25519_dalek::Signature::from_bytes(&s.signature.0))
        .collect();
    let keys: Vec<VerifyingKey> = batch.iter().map(|s| s.key.0).collect();
    if ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).is_ok() {
        return Ok(());
    }
    batch
        .iter()
        .enumerate()
        .try_for_each(|(i, s)| strict(i, s))?;
    Err(BatchRejected { index: 0 })
}

/// An Ed25519 signature: `R || S`, 64 bytes. Public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signature([u8; SIGNATURE_LEN]);

impl Signature {
    /// The signature with these bytes; whether they are well formed is
    /// checked by [`IdentityVerifyingKey::verify`].
    #[must_use]
    pub fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> Self {
        Self(bytes)
    }

    /// Decodes a signature from exactly 64 bytes.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] for any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| Error::InvalidLength {
                what: "ed25519 signature",
                expected: SIGNATURE_LEN,
                got: bytes.len(),
            })
    }

    /// The signature's bytes.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; SIGNATURE_LEN] {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;

    #[test]
    fn sign_verify_and_domain_separation() {
        let mut rng = ChaCha20Rng::from_seed([4; 32]);
        let key = IdentitySigningKey::generate(&mut rng);
        let public = key.verifying_key();
        let sig = key.sign(SignatureDomain::ADVERTISE_KEYS, b"keys");
        public
            .verify(SignatureDomain::ADVERTISE_KEYS, b"keys", &sig)
            .unwrap();
        assert_eq!(
            public.verify(SignatureDomain::CONSISTENCY_CHECK, b"keys", &sig),
            Err(Error::BadSignature)
        );
        assert_eq!(
            public.verify(SignatureDomain::ADVERTISE_KEYS, b"keyz", &sig),
            Err(Error::BadSignature)
        );
        let other = IdentitySigningKey::generate(&mut rng).verifying_key();
        assert_eq!(
            other.verify(SignatureDomain::ADVERTISE_KEYS, b"keys", &sig),
            Err(Error::BadSignature)
        );
        let mut bytes = sig.to_bytes();
        bytes[63] ^= 0x80; // S no longer canonical
        assert_eq!(
            public.verify(
                SignatureDomain::ADVERTISE_KEYS,
                b"keys",
                &Signature::from_bytes(bytes)
            ),
            Err(Error::BadSignature)
        );
    }

    /// `count` signatures by distinct keys on distinct messages.
    fn signed_by_many(count: u8) -> Vec<(IdentityVerifyingKey, Vec<u8>, Signature)> {
        let mut rng = ChaCha20Rng::from_seed([6; 32]);
        (0..count)
            .map(|i| {
                let key = IdentitySigningKey::generate(&mut rng);
                let message = vec![i; usize::from(i) + 1];
                let sig = key.sign(SignatureDomain::CONSISTENCY_CHECK, &message);
                (key.verifying_key(), message, sig)
            })
            .collect()
    }

    fn as_batch(entries: &[(IdentityVerifyingKey, Vec<u8>, Signature)]) -> Vec<Signed<'_>> {
        entries
            .iter()
            .map(|(key, message, signature)| Signed {
                key,
                message,
                signature,
            })
            .collect()
    }

    #[test]
    fn a_batch_of_valid_signatures_verifies() {
        let d = SignatureDomain::CONSISTENCY_CHECK;
        for count in [0, 1, 2, 34] {
            let entries = signed_by_many(count);
            assert_eq!(verify_batch(d, &as_batch(&entries)), Ok(()), "{count}");
        }
        // The domain is part of what is checked.
        let entries = signed_by_many(5);
        assert_eq!(
            verify_batch(SignatureDomain::ADVERTISE_KEYS, &as_batch(&entries)),
            Err(BatchRejected { index: 0 })
        );
    }

    #[test]
    fn a_batch_names_its_first_bad_signature() {
        let d = SignatureDomain::CONSISTENCY_CHECK;
        let good = signed_by_many(34);
        // Each way of spoiling entry `at`, at the front, middle and end.
        for at in [0, 17, 33] {
            let mut message = good.clone();
            message[at].1.push(0);
            let mut key = good.clone();
            key[at].0 = good[(at + 1) % 34].0;
            let mut non_canonical = good.clone();
            let mut bytes = non_canonical[at].2.to_bytes();
            bytes[63] ^= 0x80;
            non_canonical[at].2 = Signature::from_bytes(bytes);
            let mut not_a_point = good.clone();
            let mut bytes = not_a_point[at].2.to_bytes();
            bytes[..32].copy_from_slice(&[2; 32]);
            not_a_point[at].2 = Signature::from_bytes(bytes);
            let mut swapped = good.clone();
            let (a, b) = (swapped[at].2, swapped[(at + 1) % 34].2);
            swapped[at].2 = b;
            swapped[(at + 1) % 34].2 = a;
            for (what, entries) in [
                ("message", message),
                ("key", key),
                ("non-canonical S", non_canonical),
                ("R replaced", not_a_point),
                ("swapped", swapped),
            ] {
                let first = if what == "swapped" && at == 33 { 0 } else { at };
                assert_eq!(
                    verify_batch(d, &as_batch(&entries)),
                    Err(BatchRejected { index: first }),
                    "{what} at {at}"
                );
            }
        }
    }

    /// What the batch accepts beyond strict verification, pinned down: a
    /// signature whose `R` has a component of order 2, which only the key's
    /// holder can make (it needs the secret scalar). Strict verification
    /// refuses it always; a batch holding it passes exactly when its
    /// transcript-derived coefficient for it is even, so some batches pass
    /// and others are refused, and a refused batch names it.
    #[test]
    fn a_torsion_signature_only_its_key_holder_can_make_is_refused_strictly() {
        use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
        use curve25519_dalek::edwards::CompressedEdwardsY;
        use curve25519_dalek::scalar::Scalar;
        use sha2::{Digest, Sha512};

        let d = SignatureDomain::CONSISTENCY_CHECK;
        let secret = Scalar::from(0x1234_5678_9abc_def0_u64) * Scalar::from(0x0fed_cba9_u64);
        let public = &secret * ED25519_BASEPOINT_TABLE;
        let key = IdentityVerifyingKey::from_slice(public.compress().as_bytes()).unwrap();
        let mut minus_one = [0xff_u8; 32];
        minus_one[0] = 0xec;
        minus_one[31] = 0x7f;
        let order_two = CompressedEdwardsY(minus_one).decompress().unwrap();
        let honest = signed_by_many(40);
        let (mut passed, mut refused) = (0, 0);
        for (i, (other_key, other_message, other_sig)) in honest.iter().enumerate() {
            let message = [u8::try_from(i).unwrap(); 8];
            let r = Scalar::from(u64::try_from(i).unwrap() + 7) * Scalar::from(0xdead_beef_u64);
            let big_r = (&r * ED25519_BASEPOINT_TABLE + order_two).compress();
            let k = Scalar::from_hash(
                Sha512::new()
                    .chain_update(big_r.as_bytes())
                    .chain_update(public.compress().as_bytes())
                    .chain_update(d.signed_bytes(&message)),
            );
            let mut bytes = [0_u8; 64];
            bytes[..32].copy_from_slice(big_r.as_bytes());
            bytes[32..].copy_from_slice((r + k * secret).as_bytes());
            let torsion = Signature::from_bytes(bytes);
            assert_eq!(key.verify(d, &message, &torsion), Err(Error::BadSignature));
            let batch = [
                Signed {
                    key: other_key,
                    message: other_message,
                    signature: other_sig,
                },
                Signed {
                    key: &key,
                    message: &message,
                    signature: &torsion,
                },
            ];
            match verify_batch(d, &batch) {
                Ok(()) => passed += 1,
                Err(e) => {
                    assert_eq!(e, BatchRejected { index: 1 });
                    refused += 1;
                }
            }
        }
        assert!(
            passed > 0 && refused > 0,
            "{passed} passed, {refused} refused"
        );
    }

    #[test]
    fn seed_round_trips() {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let key = IdentitySigningKey::generate(&mut rng);
        let again = IdentitySigningKey::from_seed(&key.export_seed());
        assert_eq!(key.verifying_key(), again.verifying_key());
    }

    #[test]
    fn weak_and_malformed_keys_are_refused() {
        // The identity point (small order) and a y that is not on the curve.
        let mut identity = [0_u8; 32];
        identity[0] = 1;
        assert_eq!(
            IdentityVerifyingKey::from_slice(&identity),
            Err(Error::InvalidVerifyingKey)
        );
        let mut not_on_curve = [0_u8; 32];
        not_on_curve[0] = 2;
        assert_eq!(
            IdentityVerifyingKey::from_slice(&not_on_curve),
            Err(Error::InvalidVerifyingKey)
        );
        assert!(matches!(
            IdentityVerifyingKey::from_slice(&[0; 31]),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            Signature::from_slice(&[0; 65]),
            Err(Error::InvalidLength { .. })
        ));
    }
}
