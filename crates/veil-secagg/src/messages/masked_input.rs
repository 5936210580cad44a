//! Phase 3 (SPEC.md §10.8): `MaskedInput`.

use veil_crypto::ParticipantId;

use crate::codec::{Reader, put_ids};
use crate::config::RoundConfig;
use crate::error::{DecodeErrorKind, Result};

/// A client's masked input, and the senders whose share envelopes it
/// rejected (and so did not mask with).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedInput {
    /// Senders of envelopes that did not open or did not check, strictly
    /// increasing; the server treats each as dropped.
    pub excluded: Vec<ParticipantId>,
    /// The masked vector, bit-packed (SPEC.md §10.2): exactly
    /// [`RoundConfig::packed_len`] bytes.
    pub packed: Vec<u8>,
}

impl MaskedInput {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        put_ids(out, &self.excluded);
        out.extend_from_slice(&self.packed);
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>, config: &RoundConfig) -> Result<Self> {
        let excluded = r.id_list("excluded", config.k())?;
        let len = config.packed_len();
        if r.remaining() != len {
            return Err(r.err(
                "packed",
                DecodeErrorKind::WrongLength {
                    expected: len as u64,
                    got: r.remaining() as u64,
                },
            ));
        }
        let packed = r.bytes(len, "packed")?;
        crate::packing::check_canonical(packed, config.d(), config.ring)?;
        Ok(Self {
            excluded,
            packed: packed.to_vec(),
        })
    }
}
