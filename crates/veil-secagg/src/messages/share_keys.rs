//! Phase 2 (SPEC.md §10.7): `ShareKeys`, `SharesForYou`, and the plaintext
//! sealed in each share envelope.

use veil_crypto::ParticipantId;
use veil_crypto::shamir::{SHARE_LEN, Share, ShareCommitment};
use zeroize::Zeroizing;

use crate::codec::{Reader, put_count, strictly_increasing};
use crate::config::RoundConfig;
use crate::error::{DecodeErrorKind, Error, Result};

/// The plaintext in a share envelope: `u32 sender || u32 receiver ||
/// share of b_sender || share of c_sender`.
pub const SHARES_PLAINTEXT_LEN: usize = 4 + 4 + 2 * SHARE_LEN;

/// A sealed share envelope: the plaintext and a 16-byte tag.
pub const SEALED_SHARES_LEN: usize = SHARES_PLAINTEXT_LEN + veil_crypto::envelope::TAG_LEN;

/// One client's commitments to every share it dealt, and its envelopes, one
/// per neighbour that advertised keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareKeys {
    /// `(holder, commitment to its share of b, commitment to its share of c)`
    /// for every holder, the dealer included; strictly increasing holders.
    pub commitments: Vec<(ParticipantId, ShareCommitment, ShareCommitment)>,
    /// `(receiver, sealed envelope)`, strictly increasing receivers.
    pub entries: Vec<(ParticipantId, Vec<u8>)>,
}

/// The envelopes addressed to the receiving client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharesForYou {
    /// `(sender, sealed envelope)`, strictly increasing senders.
    pub entries: Vec<(ParticipantId, Vec<u8>)>,
}

fn encode_entries(entries: &[(ParticipantId, Vec<u8>)], out: &mut Vec<u8>) {
    put_count(out, entries.len());
    for (id, sealed) in entries {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(sealed);
    }
}

fn decode_entries(
    r: &mut Reader<'_>,
    config: &RoundConfig,
) -> Result<Vec<(ParticipantId, Vec<u8>)>> {
    let count = r.count("entries", config.k(), 4 + SEALED_SHARES_LEN)?;
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let id = r.u32("entries.id")?;
        entries.push((id, r.bytes(SEALED_SHARES_LEN, "entries.sealed")?.to_vec()));
    }
    if !strictly_increasing(&entries, |(id, _)| *id) {
        return Err(r.err("entries.id", DecodeErrorKind::NotCanonical));
    }
    Ok(entries)
}

impl ShareKeys {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        put_count(out, self.commitments.len());
        for (holder, b, c) in &self.commitments {
            out.extend_from_slice(&holder.to_be_bytes());
            out.extend_from_slice(&b.0);
            out.extend_from_slice(&c.0);
        }
        encode_entries(&self.entries, out);
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, config: &RoundConfig) -> Result<Self> {
        let count = r.count("commitments", config.k().saturating_add(1), 4 + 64)?;
        let mut commitments = Vec::with_capacity(count);
        for _ in 0..count {
            let holder = r.u32("commitments.holder")?;
            let b = ShareCommitment(r.array::<32>("commitments.self_mask")?);
            let c = ShareCommitment(r.array::<32>("commitments.mask_key")?);
            commitments.push((holder, b, c));
        }
        if !strictly_increasing(&commitments, |(h, _, _)| *h) {
            return Err(r.err("commitments.holder", DecodeErrorKind::NotCanonical));
        }
        Ok(Self {
            commitments,
            entries: decode_entries(r, config)?,
        })
    }
}

impl SharesForYou {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        encode_entries(&self.entries, out);
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, config: &RoundConfig) -> Result<Self> {
        Ok(Self {
            entries: decode_entries(r, config)?,
        })
    }
}

/// The opened content of a share envelope. Secret: zeroizes on drop.
pub struct SharesPlaintext {
    /// Who sealed it.
    pub sender: ParticipantId,
    /// For whom.
    pub receiver: ParticipantId,
    /// The receiver's share of the sender's self-mask secret `b`.
    pub self_mask_share: Share,
    /// The receiver's share of the sender's mask-agreement secret `c`.
    pub mask_key_share: Share,
}

impl core::fmt::Debug for SharesPlaintext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SharesPlaintext(<secret>)")
    }
}

impl SharesPlaintext {
    /// The 80-byte plaintext, zeroizing on drop.
    #[must_use]
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(SHARES_PLAINTEXT_LEN));
        out.extend_from_slice(&self.sender.to_be_bytes());
        out.extend_from_slice(&self.receiver.to_be_bytes());
        out.extend_from_slice(self.self_mask_share.to_bytes().as_ref());
        out.extend_from_slice(self.mask_key_share.to_bytes().as_ref());
        out
    }

    /// Decodes an opened envelope.
    ///
    /// # Errors
    /// [`Error::Decode`] for a wrong length or a bad share.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "shares_plaintext");
        let sender = r.u32("sender")?;
        let receiver = r.u32("receiver")?;
        let share = |r: &mut Reader<'_>, field| -> Result<Share> {
            let b = r.bytes(SHARE_LEN, field)?;
            Share::from_bytes(b).map_err(|e| Error::Decode {
                message: "shares_plaintext",
                field,
                kind: DecodeErrorKind::Crypto(e),
            })
        };
        let self_mask_share = share(&mut r, "self_mask_share")?;
        let mask_key_share = share(&mut r, "mask_key_share")?;
        r.finish()?;
        Ok(Self {
            sender,
            receiver,
            self_mask_share,
            mask_key_share,
        })
    }
}
