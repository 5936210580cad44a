//! The protocol messages and their canonical encoding (SPEC.md §10).
//!
//! Every message is `u8 version || u8 type || u64 round || body`. Messages
//! from a client to the server are [`ClientMessage`]s; from the server to a
//! client, [`ServerMessage`]s. A decoder takes the round config wherever a
//! layout or a cap depends on it, checks every cap before allocating, and
//! rejects trailing bytes, unknown tags and non-canonical lists.

mod abort;
mod advertise;
mod bounds;
mod consistency;
mod decline;
mod evaluation;
mod masked_input;
mod round_config;
mod share_keys;
mod statistics;
mod task;
mod training;
mod unmask;

pub use crate::tags::DeclineReason;
pub use abort::{ABORT_DISCARDED, Abort};
pub use advertise::{AdvertiseKeys, NeighbourKeys};
pub use bounds::{MAX_ROUND_CONFIG_LEN, max_client_message_len, max_server_message_len};
pub use consistency::{
    ConsistencySignature, ConsistencySignatures, SurvivorSet, survivor_set_message,
};
pub use decline::Decline;
pub use evaluation::{
    AUC_BINS, EVALUATION_CLIP_NORM, EvaluationCounts, LOSS_CAP, SQUARED_ERROR_CAP, auc_bin,
    evaluation_len,
};
pub use masked_input::MaskedInput;
pub use round_config::session_id;
pub use share_keys::{
    SEALED_SHARES_LEN, SHARES_PLAINTEXT_LEN, ShareKeys, SharesForYou, SharesPlaintext,
};
pub use statistics::{FeatureSums, MIN_STD_FRACTION, statistics_len};
pub use task::{MAX_PURPOSE_LEN, Purpose, TASK_FIXED_LEN, Task, max_task_len};
pub use training::{
    LocalOptimizer, MAX_ARCHITECTURE_LEN, MAX_CLASSES, MAX_FEATURES, MAX_HOLDOUT, MAX_NAME_LEN,
    MAX_TRAINING_SPEC_LEN, TrainingSpec, held_out,
};
pub use unmask::{ShareKind, UnmaskShare, UnmaskShares};

use veil_crypto::RoundId;

use crate::codec::Reader;
use crate::config::RoundConfig;
use crate::error::{DecodeErrorKind, Result};

pub use crate::tags::{HEADER_LEN, MessageType, PROTOCOL_VERSION, peek_header};

fn put_header(out: &mut Vec<u8>, ty: MessageType, round: RoundId) {
    out.push(PROTOCOL_VERSION);
    out.push(ty as u8);
    out.extend_from_slice(&round.to_be_bytes());
}

/// Reads the header; returns the type and the round.
fn read_header(r: &mut Reader<'_>) -> Result<(MessageType, RoundId)> {
    let version = r.u8("version")?;
    if version != PROTOCOL_VERSION {
        return Err(r.err("version", DecodeErrorKind::UnknownVersion(version)));
    }
    let tag = r.u8("type")?;
    let ty = MessageType::from_tag(tag)
        .ok_or_else(|| r.err("type", DecodeErrorKind::UnknownTag(tag)))?;
    let round = r.u64("round")?;
    Ok((ty, round))
}

/// A message from a client to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientMessage {
    /// Phase 1.
    AdvertiseKeys(AdvertiseKeys),
    /// Phase 2.
    ShareKeys(ShareKeys),
    /// Phase 3.
    MaskedInput(MaskedInput),
    /// Phase 4.
    ConsistencySignature(ConsistencySignature),
    /// Phase 5.
    UnmaskShares(UnmaskShares),
    /// Instead of phase 1: the client refuses the round.
    Decline(Decline),
}

impl ClientMessage {
    /// The message's type.
    #[must_use]
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::AdvertiseKeys(_) => MessageType::AdvertiseKeys,
            Self::ShareKeys(_) => MessageType::ShareKeys,
            Self::MaskedInput(_) => MessageType::MaskedInput,
            Self::ConsistencySignature(_) => MessageType::ConsistencySignature,
            Self::UnmaskShares(_) => MessageType::UnmaskShares,
            Self::Decline(_) => MessageType::Decline,
        }
    }

    /// The canonical encoding, header included.
    #[must_use]
    pub fn encode(&self, round: RoundId) -> Vec<u8> {
        // The masked input dominates; size the buffer for it at once.
        let body = match self {
            Self::MaskedInput(m) => m
                .packed
                .len()
                .saturating_add(m.excluded.len().saturating_mul(4))
                .saturating_add(4),
            _ => 256,
        };
        let mut out = Vec::with_capacity(HEADER_LEN.saturating_add(body));
        put_header(&mut out, self.message_type(), round);
        match self {
            Self::AdvertiseKeys(m) => m.encode_body(&mut out),
            Self::ShareKeys(m) => m.encode_body(&mut out),
            Self::MaskedInput(m) => m.encode_body(&mut out),
            Self::ConsistencySignature(m) => m.encode_body(&mut out),
            Self::UnmaskShares(m) => m.encode_body(&mut out),
            Self::Decline(m) => m.encode_body(&mut out),
        }
        out
    }

    /// Decodes a whole message; caps and layouts come from `config`.
    ///
    /// # Errors
    /// [`crate::Error::Decode`] naming the field.
    pub fn decode(bytes: &[u8], config: &RoundConfig) -> Result<(RoundId, Self)> {
        let mut r = Reader::new(bytes, "client_message");
        let (ty, round) = read_header(&mut r)?;
        let msg = match ty {
            MessageType::AdvertiseKeys => Self::AdvertiseKeys(AdvertiseKeys::decode_body(&mut r)?),
            MessageType::ShareKeys => Self::ShareKeys(ShareKeys::decode_body(&mut r, config)?),
            MessageType::MaskedInput => {
                Self::MaskedInput(MaskedInput::decode_body(&mut r, config)?)
            }
            MessageType::ConsistencySignature => {
                Self::ConsistencySignature(ConsistencySignature::decode_body(&mut r)?)
            }
            MessageType::UnmaskShares => {
                Self::UnmaskShares(UnmaskShares::decode_body(&mut r, config)?)
            }
            MessageType::Decline => Self::Decline(Decline::decode_body(&mut r)?),
            _ => return Err(r.err("type", DecodeErrorKind::UnknownTag(ty as u8))),
        };
        r.finish()?;
        Ok((round, msg))
    }
}

/// A message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerMessage {
    /// The round's parameters.
    RoundConfig(RoundConfig),
    /// After phase 1.
    NeighbourKeys(NeighbourKeys),
    /// After phase 2.
    SharesForYou(SharesForYou),
    /// After phase 3.
    SurvivorSet(SurvivorSet),
    /// After phase 4.
    ConsistencySignatures(ConsistencySignatures),
    /// The round is over for this client.
    Abort(Abort),
}

impl ServerMessage {
    /// The message's type.
    #[must_use]
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::RoundConfig(_) => MessageType::RoundConfig,
            Self::NeighbourKeys(_) => MessageType::NeighbourKeys,
            Self::SharesForYou(_) => MessageType::SharesForYou,
            Self::SurvivorSet(_) => MessageType::SurvivorSet,
            Self::ConsistencySignatures(_) => MessageType::ConsistencySignatures,
            Self::Abort(_) => MessageType::Abort,
        }
    }

    /// The canonical encoding, header included.
    #[must_use]
    pub fn encode(&self, round: RoundId) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 128);
        put_header(&mut out, self.message_type(), round);
        match self {
            Self::RoundConfig(m) => round_config::encode_body(m, &mut out),
            Self::NeighbourKeys(m) => m.encode_body(&mut out),
            Self::SharesForYou(m) => m.encode_body(&mut out),
            Self::SurvivorSet(m) => m.encode_body(&mut out),
            Self::ConsistencySignatures(m) => m.encode_body(&mut out),
            Self::Abort(m) => m.encode_body(&mut out),
        }
        out
    }

    /// Decodes a whole message. `config` is `None` until the client has a
    /// round config; only a `RoundConfig` or `Abort` decodes then.
    ///
    /// # Errors
    /// [`crate::Error::Decode`] naming the field.
    pub fn decode(bytes: &[u8], config: Option<&RoundConfig>) -> Result<(RoundId, Self)> {
        let mut r = Reader::new(bytes, "server_message");
        let (ty, round) = read_header(&mut r)?;
        let msg = match (ty, config) {
            (MessageType::RoundConfig, _) => {
                Self::RoundConfig(round_config::decode_body(&mut r, round)?)
            }
            (MessageType::Abort, _) => Self::Abort(Abort::decode_body(&mut r)?),
            (MessageType::NeighbourKeys, Some(c)) => {
                Self::NeighbourKeys(NeighbourKeys::decode_body(&mut r, c)?)
            }
            (MessageType::SharesForYou, Some(c)) => {
                Self::SharesForYou(SharesForYou::decode_body(&mut r, c)?)
            }
            (MessageType::SurvivorSet, Some(c)) => {
                Self::SurvivorSet(SurvivorSet::decode_body(&mut r, c)?)
            }
            (MessageType::ConsistencySignatures, Some(c)) => {
                Self::ConsistencySignatures(ConsistencySignatures::decode_body(&mut r, c)?)
            }
            _ => return Err(r.err("type", DecodeErrorKind::UnknownTag(ty as u8))),
        };
        r.finish()?;
        Ok((round, msg))
    }
}
