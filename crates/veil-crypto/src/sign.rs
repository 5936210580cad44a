//! Ed25519 identity signatures (RFC 8032) over domain-separated byte strings
//! (SPEC.md §7).
//!
//! Every signed byte string is `u8 len || domain || message`, where the domain
//! is one of the [`SignatureDomain`] constants, so a signature made for one
//! purpose is never valid for another. Verification is RFC 8032 strict
//! (ed25519-dalek's `verify_strict`: canonical `S`, no small-order `R` or
//! key), and keys of small order are refused when decoded.

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
