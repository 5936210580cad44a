//! HKDF-SHA256 key derivation under labelled, versioned inputs (SPEC.md §3).
//!
//! Every key or seed in veil is `HKDF-SHA256(salt = "veil/1", IKM, info, L = 32)`
//! (RFC 5869), where `info` is the canonical encoding of a [`KdfInfo`]: a
//! one-byte length, the ASCII label, then the fixed-width, big-endian integers
//! that bind the round and the participants. Labels name the protocol version,
//! so a key of one version or purpose is never a key of another.

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::{ParticipantId, RoundId};

/// The protocol version every label names.
pub const PROTOCOL_VERSION: u8 = 1;

/// The HKDF salt of every derivation.
pub const HKDF_SALT: &[u8] = b"veil/1";

/// Label of the pairwise mask seed `s_uv` (SPEC.md §3.2).
pub const LABEL_PAIRWISE_MASK: &str = "veil/1 pairwise-mask";
/// Label of the self-mask seed derived from `b_u` (SPEC.md §3.3).
pub const LABEL_SELF_MASK: &str = "veil/1 self-mask";
/// Label of an envelope key (SPEC.md §3.4).
pub const LABEL_ENVELOPE_KEY: &str = "veil/1 envelope-key";
/// Label of a share commitment (SPEC.md §5.4).
pub const LABEL_SHARE_COMMITMENT: &str = "veil/1 share-commitment";
/// Label of a round's session id (SPEC.md §9.1).
pub const LABEL_SESSION_ID: &str = "veil/1 session-id";

/// The label of a round's task digest (SPEC.md §10.13).
pub const LABEL_TASK_DIGEST: &str = "veil/1 task-digest";

/// A round's session id: `SHA-256(label("veil/1 session-id") || config)`,
/// where `config` is the canonical encoding of the whole round config
/// (SPEC.md §9.1). Public: it names the round's transcript in every
/// signature, so a signature of one round, or of another config under a
/// reused round id, is never a signature of this one.
#[must_use]
pub fn session_id(config: &[u8]) -> [u8; 32] {
    labelled_sha256(LABEL_SESSION_ID, config)
}

/// A round's task digest: `SHA-256(label("veil/1 task-digest") || task)`,
/// where `task` is the whole Task message the server sent (SPEC.md
/// §10.13). The round config carries it, so the session id, and with it
/// every signature of the round, binds the task: a server that shows two
/// clients two tasks shows them two rounds.
#[must_use]
pub fn task_digest(task: &[u8]) -> [u8; 32] {
    labelled_sha256(LABEL_TASK_DIGEST, task)
}

/// `SHA-256(u8 len(label) || label || bytes)`.
fn labelled_sha256(label: &str, bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    let label = label.as_bytes();
    let mut h = Sha256::new();
    h.update([u8::try_from(label.len()).unwrap_or(u8::MAX)]);
    h.update(label);
    h.update(bytes);
    h.finalize().into()
}

/// The inputs that, with a label, make an HKDF `info` string.
///
/// Each variant fixes its own layout (SPEC.md §3.1). All integers are
/// big-endian and fixed-width, so the encoding is injective.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KdfInfo {
    /// The pairwise mask seed of the unordered pair `{low, high}`:
    /// `label || round (u64) || low (u32) || high (u32)` with `low < high`.
    PairwiseMask {
        /// The round.
        round: RoundId,
        /// The smaller participant id of the pair.
        low: ParticipantId,
        /// The larger participant id of the pair.
        high: ParticipantId,
    },
    /// The self-mask seed of `owner`: `label || round (u64) || owner (u32)`.
    SelfMask {
        /// The round.
        round: RoundId,
        /// The participant whose self mask this is.
        owner: ParticipantId,
    },
    /// The key of the envelopes that `sender` seals for `receiver` in one
    /// phase of one round:
    /// `label || round (u64) || phase (u8) || sender (u32) || receiver (u32)`.
    EnvelopeKey {
        /// The round.
        round: RoundId,
        /// The protocol phase, as SPEC.md numbers it.
        phase: u8,
        /// The participant who seals.
        sender: ParticipantId,
        /// The participant who opens.
        receiver: ParticipantId,
    },
}

impl KdfInfo {
    /// The pairwise-mask info for the pair `{a, b}`, whichever order they come in.
    #[must_use]
    pub fn pairwise_mask(round: RoundId, a: ParticipantId, b: ParticipantId) -> Self {
        Self::PairwiseMask {
            round,
            low: a.min(b),
            high: a.max(b),
        }
    }

    /// The label of this derivation.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Self::PairwiseMask { .. } => LABEL_PAIRWISE_MASK,
            Self::SelfMask { .. } => LABEL_SELF_MASK,
            Self::EnvelopeKey { .. } => LABEL_ENVELOPE_KEY,
        }
    }

    /// The canonical `info` bytes (SPEC.md §3.1).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let label = self.label().as_bytes();
        let mut out = Vec::with_capacity(label.len().saturating_add(18));
        // Labels are compile-time constants shorter than 256 bytes.
        out.push(u8::try_from(label.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(label);
        match *self {
            Self::PairwiseMask { round, low, high } => {
                out.extend_from_slice(&round.to_be_bytes());
                out.extend_from_slice(&low.to_be_bytes());
                out.extend_from_slice(&high.to_be_bytes());
            }
            Self::SelfMask { round, owner } => {
                out.extend_from_slice(&round.to_be_bytes());
                out.extend_from_slice(&owner.to_be_bytes());
            }
            Self::EnvelopeKey {
                round,
                phase,
                sender,
                receiver,
            } => {
                out.extend_from_slice(&round.to_be_bytes());
                out.push(phase);
                out.extend_from_slice(&sender.to_be_bytes());
                out.extend_from_slice(&receiver.to_be_bytes());
            }
        }
        out
    }
}

/// `HKDF-SHA256(salt = HKDF_SALT, ikm, info.encode(), L = 32)`.
///
/// The output is secret; callers wrap it in their own secret type at once.
pub(crate) fn derive_32(ikm: &[u8], info: &KdfInfo) -> Zeroizing<[u8; 32]> {
    let hkdf = Hkdf::<Sha256>::new(Some(HKDF_SALT), ikm);
    let mut okm = Zeroizing::new([0_u8; 32]);
    #[expect(
        clippy::expect_used,
        reason = "HKDF-SHA256 can expand up to 255 * 32 bytes; 32 is always accepted"
    )]
    hkdf.expand(&info.encode(), okm.as_mut())
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    okm
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_the_protocol_version() {
        for label in [
            LABEL_PAIRWISE_MASK,
            LABEL_SELF_MASK,
            LABEL_ENVELOPE_KEY,
            LABEL_SHARE_COMMITMENT,
            LABEL_SESSION_ID,
            LABEL_TASK_DIGEST,
        ] {
            assert!(label.starts_with(&format!("veil/{PROTOCOL_VERSION} ")));
        }
    }

    #[test]
    fn pairwise_info_is_symmetric_and_ordered() {
        let ab = KdfInfo::pairwise_mask(3, 9, 4);
        assert_eq!(ab, KdfInfo::pairwise_mask(3, 4, 9));
        assert_eq!(
            ab,
            KdfInfo::PairwiseMask {
                round: 3,
                low: 4,
                high: 9
            }
        );
    }

    #[test]
    fn info_layout_is_fixed() {
        let info = KdfInfo::EnvelopeKey {
            round: 0x0102_0304_0506_0708,
            phase: 2,
            sender: 0x0a0b_0c0d,
            receiver: 0x11,
        }
        .encode();
        let label = LABEL_ENVELOPE_KEY.as_bytes();
        assert_eq!(usize::from(info[0]), label.len());
        assert_eq!(&info[1..=label.len()], label);
        assert_eq!(
            &info[1 + label.len()..],
            &[
                1, 2, 3, 4, 5, 6, 7, 8, 2, 0x0a, 0x0b, 0x0c, 0x0d, 0, 0, 0, 0x11
            ]
        );
    }

    #[test]
    fn distinct_inputs_give_distinct_keys() {
        let ikm = [7_u8; 32];
        let infos = [
            KdfInfo::pairwise_mask(1, 1, 2),
            KdfInfo::pairwise_mask(2, 1, 2),
            KdfInfo::pairwise_mask(1, 1, 3),
            KdfInfo::SelfMask { round: 1, owner: 1 },
            KdfInfo::EnvelopeKey {
                round: 1,
                phase: 0,
                sender: 1,
                receiver: 2,
            },
            KdfInfo::EnvelopeKey {
                round: 1,
                phase: 0,
                sender: 2,
                receiver: 1,
            },
        ];
        let keys: Vec<[u8; 32]> = infos.iter().map(|i| *derive_32(&ikm, i)).collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
