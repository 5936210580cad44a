//! `RoundConfig` on the wire (SPEC.md §10.5).

use veil_crypto::RoundId;
use veil_crypto::prg::RingBits;

use crate::codec::{Reader, put_ids};
use crate::config::{MAX_PARTICIPANTS, RoundConfig, SessionId};
use crate::error::{DecodeErrorKind, Result};

/// The session id of `config` (SPEC.md §9.1): `SHA-256(label("veil/1
/// session-id") || the RoundConfig message)`, header included, so it binds
/// the round id, the participants, the graph seed and every parameter.
#[must_use]
pub fn session_id(config: &RoundConfig) -> SessionId {
    let message = super::ServerMessage::RoundConfig(config.clone()).encode(config.round);
    veil_crypto::kdf::session_id(&message)
}

pub(crate) fn encode_body(c: &RoundConfig, out: &mut Vec<u8>) {
    out.extend_from_slice(&c.dimension.to_be_bytes());
    out.push(u8::try_from(c.ring.bits()).unwrap_or(0));
    out.extend_from_slice(&c.threshold.to_be_bytes());
    out.extend_from_slice(&c.degree.to_be_bytes());
    out.extend_from_slice(&c.max_corrupt.to_be_bytes());
    out.extend_from_slice(&c.phase_timeout_ms.to_be_bytes());
    out.extend_from_slice(&c.graph_seed);
    out.extend_from_slice(&c.task_digest);
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
    let task_digest = r.array::<32>("task_digest")?;
    let participants = r.id_list("participants", MAX_PARTICIPANTS)?;
    let config = RoundConfig::new(
        round,
        participants,
        dimension,
        ring,
        threshold,
        degree,
        max_corrupt,
        phase_timeout_ms,
        graph_seed,
    )?;
    Ok(config.with_task_digest(task_digest))
}

#[cfg(test)]
mod tests {
    use veil_crypto::prg::RingBits;

    use super::*;

    #[test]
    fn the_session_id_changes_with_every_field_of_the_config() {
        let c = RoundConfig::new(
            1,
            (0..10).collect(),
            10,
            RingBits::new(16).unwrap(),
            5,
            4,
            3,
            1000,
            [0; 32],
        )
        .unwrap();
        let base = session_id(&c);
        let mut other = c.clone();
        other.graph_seed[0] ^= 1;
        assert_ne!(session_id(&other), base);
        let mut other = c.clone();
        other.max_corrupt = 2;
        assert_ne!(session_id(&other), base);
        let other = c.clone().with_task_digest([1; 32]);
        assert_ne!(session_id(&other), base);
        let mut other = c.clone();
        other.participants[9] = 10;
        assert_ne!(session_id(&other), base);
        let mut other = c.clone();
        other.round = 2;
        assert_ne!(session_id(&other), base);
        assert_eq!(session_id(&c), base, "the id is a function of the config");
    }
}
