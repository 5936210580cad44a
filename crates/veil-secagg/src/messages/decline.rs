//! `Decline` (SPEC.md §10.12): a client refuses a round before its phase 1
//! and says which rule of its own the round broke, so the server's log can
//! say which client refused and why.

use crate::codec::Reader;
use crate::error::{DecodeErrorKind, Result};
use crate::tags::DeclineReason;

/// A client's refusal of the round, sent instead of `AdvertiseKeys`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decline {
    /// Why.
    pub reason: DeclineReason,
}

impl Decline {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.reason.code());
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        let code = r.u8("reason")?;
        let reason = DeclineReason::from_code(code)
            .ok_or_else(|| r.err("reason", DecodeErrorKind::OutOfRange))?;
        Ok(Self { reason })
    }
}
