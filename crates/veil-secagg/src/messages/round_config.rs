//! `RoundConfig` on the wire (SPEC.md §10.5).

use veil_crypto::RoundId;
use veil_crypto::prg::RingBits;

use crate::codec::{Reader, put_ids};
use crate::config::{MAX_PARTICIPANTS, RoundConfig};
use crate::error::{DecodeErrorKind, Result};

/// The whole `RoundConfig` message, header included: what the session id
/// hashes.
pub(crate) fn encode_message(c: &RoundConfig) -> Vec<u8> {
    super::ServerMessage::RoundConfig(c.clone()).encode(c.round)
}

pub(crate) fn encode_body(c: &RoundConfig, out: &mut Vec<u8>) {
    out.extend_from_slice(&c.dimension.to_be_bytes());
    out.push(u8::try_from(c.ring.bits()).unwrap_or(0));
    out.extend_from_slice(&c.threshold.to_be_bytes());
    out.extend_from_slice(&c.degree.to_be_bytes());
    out.extend_from_slice(&c.max_corrupt.to_be_bytes());
    out.extend_from_slice(&c.phase_timeout_ms.to_be_bytes());
    out.extend_from_slice(&c.graph_seed);
    put_ids(out, &c.participants);
}

pub(crate) fn decode_body(r: &mut Reader<'_>, round: RoundId) -> Result<RoundConfig> {
    let dimension = r.u32("dimension")?;
    let bits = r.u8("ring_bits")?;
    let ring = RingBits::new(u32::from(bits))
        .map_err(|_| r.err("ring_bits", DecodeErrorKind::OutOfRange))?;
    let threshold = r.u32("threshold")?;
    let degree = r.u32("degree")?;
    let max_corrupt = r.u32("max_corrupt")?;
    let phase_timeout_ms = r.u32("phase_timeout_ms")?;
    let graph_seed = r.array::<32>("graph_seed")?;
    let participants = r.id_list("participants", MAX_PARTICIPANTS)?;
    RoundConfig::new(
        round,
        participants,
        dimension,
        ring,
        threshold,
        degree,
        max_corrupt,
        phase_timeout_ms,
        graph_seed,
    )
}
