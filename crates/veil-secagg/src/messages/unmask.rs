//! Phase 5 (SPEC.md §10.10): `UnmaskShares`.

use veil_crypto::ParticipantId;
use veil_crypto::shamir::{SHARE_LEN, Share};

use crate::codec::{Reader, put_count, strictly_increasing};
use crate::config::RoundConfig;
use crate::error::{DecodeErrorKind, Error, Result};

/// Which secret of a peer a revealed share belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareKind {
    /// `b_v`: revealed for a survivor, so its self mask can be removed.
    SelfMask = 0,
    /// `c_v`: revealed for a dropped peer, so its pairwise masks can be removed.
    MaskKey = 1,
}

/// One revealed share.
#[derive(Debug, Clone)]
pub struct UnmaskShare {
    /// Whose secret.
    pub about: ParticipantId,
    /// Which secret.
    pub kind: ShareKind,
    /// The share; its x-coordinate is the revealing client's.
    pub share: Share,
}

impl PartialEq for UnmaskShare {
    fn eq(&self, other: &Self) -> bool {
        // Shares travel to the server in the clear; comparing them is for
        // codec round-trip tests, not a secret comparison.
        self.about == other.about
            && self.kind == other.kind
            && self.share.to_bytes().as_ref() == other.share.to_bytes().as_ref()
    }
}

impl Eq for UnmaskShare {}

/// A client's revealed shares: one per peer it holds shares of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmaskShares {
    /// Strictly increasing `about`.
    pub entries: Vec<UnmaskShare>,
}

impl UnmaskShares {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        put_count(out, self.entries.len());
        for e in &self.entries {
            out.extend_from_slice(&e.about.to_be_bytes());
            out.push(e.kind as u8);
            out.extend_from_slice(e.share.to_bytes().as_ref());
        }
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, config: &RoundConfig) -> Result<Self> {
        // One share per holder of the neighbourhood: k neighbours and the sender.
        let count = r.count("entries", config.k().saturating_add(1), 4 + 1 + SHARE_LEN)?;
        let mut entries = Vec::with_capacity(count);
        for _ in 0..count {
            let about = r.u32("entries.about")?;
            let kind = match r.u8("entries.kind")? {
                0 => ShareKind::SelfMask,
                1 => ShareKind::MaskKey,
                _ => return Err(r.err("entries.kind", DecodeErrorKind::OutOfRange)),
            };
            let share = Share::from_bytes(r.bytes(SHARE_LEN, "entries.share")?).map_err(|e| {
                Error::Decode {
                    message: "unmask_shares",
                    field: "entries.share",
                    kind: DecodeErrorKind::Crypto(e),
                }
            })?;
            entries.push(UnmaskShare { about, kind, share });
        }
        if !strictly_increasing(&entries, |e| e.about) {
            return Err(r.err("entries.about", DecodeErrorKind::NotCanonical));
        }
        Ok(Self { entries })
    }
}
