//! `Abort` (SPEC.md §10.4): the server ends the round for a client.

use crate::codec::Reader;
use crate::error::Result;

/// The code of an `Abort` the server sends, after a round completed, to
/// each participant whose input was in the sum, when it discards the sum
/// unreleased (fewer contributions than the noise is sized for, or a
/// statistics sum of no rows): the round did not count.
pub const ABORT_DISCARDED: u8 = 10;

/// The round is over for the receiving client; `code` is
/// [`crate::Error::abort_code`] of the reason, or [`ABORT_DISCARDED`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Abort {
    /// Why, as a wire code.
    pub code: u8,
}

impl Abort {
    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(self.code);
    }

    pub(crate) fn decode_body(r: &mut Reader<'_>) -> Result<Self> {
        Ok(Self {
            code: r.u8("code")?,
        })
    }
}
