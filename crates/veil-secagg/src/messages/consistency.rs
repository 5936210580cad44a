//! Phase 4 (SPEC.md §10.9): `SurvivorSet`, `ConsistencySignature`,
//! `ConsistencySignatures`.

use veil_crypto::ParticipantId;
use veil_crypto::sign::Signature;

use crate::codec::{Reader, put_count, put_ids, strictly_increasing};
use crate::config::{RoundConfig, SessionId};
use crate::error::{DecodeErrorKind, Result};

/// What a survivor signs: `session_id[32] || u32 count || ids`, the whole
/// survivor set under the session id of the round (SPEC.md §10.9).
#[must_use]
pub fn survivor_set_message(session: &SessionId, survivors: &[ParticipantId]) -> Vec<u8> {
    let mut m = Vec::with_capacity(survivors.len().saturating_mul(4).saturating_add(36));
    m.extend_from_slice(session);
    put_ids(&mut m, survivors);
    m
}

/// The clients whose masked inputs the server will sum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurvivorSet {
    /// Strictly increasing ids.
    pub survivors: Vec<ParticipantId>,
}

impl SurvivorSet {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        put_ids(out, &self.survivors);
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, config: &RoundConfig) -> Result<Self> {
        Ok(Self {
            survivors: r.id_list("survivors", config.n())?,
        })
    }
}

/// A survivor's signature over the survivor set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsistencySignature {
    /// Ed25519 in the `veil/1 consistency-check` domain.
    pub signature: Signature,
}

impl ConsistencySignature {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.signature.to_bytes());
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            signature: Signature::from_bytes(r.array::<64>("signature")?),
        })
    }
}

/// The receiving client's neighbours' signatures over the survivor set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencySignatures {
    /// `(neighbour, signature)`, strictly increasing ids.
    pub entries: Vec<(ParticipantId, Signature)>,
}

impl ConsistencySignatures {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        put_count(out, self.entries.len());
        for (id, sig) in &self.entries {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&sig.to_bytes());
        }
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, config: &RoundConfig) -> Result<Self> {
        let count = r.count("entries", config.n(), 4 + 64)?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let id = r.u32("entries.id")?;
            entries.push((
                id,
                Signature::from_bytes(r.array::<64>("entries.signature")?),
            ));
        }
        if !strictly_increasing(&entries, |(id, _)| *id) {
            return Err(r.err("entries.id", DecodeErrorKind::NotCanonical));
        }
        Ok(Self { entries })
    }
}
