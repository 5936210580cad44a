//! Phase 1 (SPEC.md §10.6): `AdvertiseKeys` and `NeighbourKeys`.

use veil_crypto::ParticipantId;
use veil_crypto::agreement::AgreementPublicKey;
use veil_crypto::sign::{IdentityVerifyingKey, Signature, SignatureDomain};

use crate::codec::{Reader, put_count, strictly_increasing};
use crate::config::{RoundConfig, SessionId};
use crate::error::{DecodeErrorKind, Result};

/// A client's two X25519 public keys, signed with its identity key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertiseKeys {
    /// The key that share envelopes are agreed with.
    pub encryption_key: AgreementPublicKey,
    /// The key that pairwise mask seeds are agreed with.
    pub mask_key: AgreementPublicKey,
    /// Ed25519 over [`AdvertiseKeys::signed_message`] in the
    /// `veil/1 advertise-keys` domain.
    pub signature: Signature,
}

/// The encoded length of [`AdvertiseKeys`].
const ADVERTISE_LEN: usize = 32 + 32 + 64;

impl AdvertiseKeys {
    /// What a client signs: `session_id[32] || u32 id || encryption_key ||
    /// mask_key`, where the session id hashes the whole round config
    /// (SPEC.md §9.1, §10.6).
    #[must_use]
    pub fn signed_message(
        session: &SessionId,
        id: ParticipantId,
        encryption_key: &AgreementPublicKey,
        mask_key: &AgreementPublicKey,
    ) -> Vec<u8> {
        let mut m = Vec::with_capacity(100);
        m.extend_from_slice(session);
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&encryption_key.to_bytes());
        m.extend_from_slice(&mask_key.to_bytes());
        m
    }

    /// What `id` signed in the session `session`, were these its keys.
    #[must_use]
    pub fn signed_message_for(&self, session: &SessionId, id: ParticipantId) -> Vec<u8> {
        Self::signed_message(session, id, &self.encryption_key, &self.mask_key)
    }

    /// Whether the signature is `id`'s, in the session `session`.
    #[must_use]
    pub fn verify(
        &self,
        session: &SessionId,
        id: ParticipantId,
        identity: &IdentityVerifyingKey,
    ) -> bool {
        identity
            .verify(
                SignatureDomain::ADVERTISE_KEYS,
                &self.signed_message_for(session, id),
                &self.signature,
            )
            .is_ok()
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encryption_key.to_bytes());
        out.extend_from_slice(&self.mask_key.to_bytes());
        out.extend_from_slice(&self.signature.to_bytes());
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            encryption_key: AgreementPublicKey::from_bytes(r.array::<32>("encryption_key")?),
            mask_key: AgreementPublicKey::from_bytes(r.array::<32>("mask_key")?),
            signature: Signature::from_bytes(r.array::<64>("signature")?),
        })
    }
}

/// The advertised keys of the receiving client's neighbours that advertised,
/// in increasing id order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighbourKeys {
    /// `(neighbour id, its advertisement)`, strictly increasing ids.
    pub entries: Vec<(ParticipantId, AdvertiseKeys)>,
}

impl NeighbourKeys {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        put_count(out, self.entries.len());
        for (id, keys) in &self.entries {
            out.extend_from_slice(&id.to_be_bytes());
            keys.encode_body(out);
        }
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, config: &RoundConfig) -> Result<Self> {
        let count = r.count("entries", config.k(), 4 + ADVERTISE_LEN)?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let id = r.u32("entries.id")?;
            entries.push((id, AdvertiseKeys::decode_body(r)?));
        }
        if !strictly_increasing(&entries, |(id, _)| *id) {
            return Err(r.err("entries.id", DecodeErrorKind::NotCanonical));
        }
        Ok(Self { entries })
    }
}
