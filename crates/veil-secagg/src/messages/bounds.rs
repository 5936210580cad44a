//! The largest encoding of each direction's messages, from the round config
//! alone (SPEC.md §10.11). A transport reads a frame's length first and
//! refuses one longer than these before it buffers a byte of it.

use crate::config::{MAX_PARTICIPANTS, RoundConfig};

use super::HEADER_LEN;
use super::share_keys::SEALED_SHARES_LEN;

/// A list's `u32` count.
const COUNT: u64 = 4;
/// An id.
const ID: u64 = 4;
/// AdvertiseKeys' body: two X25519 keys and a signature.
const KEYS: u64 = 32 + 32 + 64;
/// A ShareKeys commitment: holder id and two SHA-256 digests.
const COMMITMENT: u64 = ID + 32 + 32;
/// An UnmaskShares entry: id, kind, 36-byte share.
const UNMASK_ENTRY: u64 = ID + 1 + 36;
/// The fixed part of a RoundConfig body: dimension, ring bits, threshold,
/// degree, colluders, timeout, graph seed, task digest.
const CONFIG_FIXED: u64 = 4 + 1 + 4 + 4 + 4 + 4 + 32 + 32;

/// The largest RoundConfig any config can produce (65,534 participants):
/// the cap for a client's first message, before it knows the round.
pub const MAX_ROUND_CONFIG_LEN: usize =
    HEADER_LEN + 4 + 1 + 4 + 4 + 4 + 4 + 32 + 32 + 4 + 4 * MAX_PARTICIPANTS;

fn header() -> u64 {
    HEADER_LEN as u64
}

fn saturate(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// The longest message a client may send in `config`'s round: the masked
/// input unless `d·b` is tiny.
#[must_use]
pub fn max_client_message_len(config: &RoundConfig) -> usize {
    let k = u64::from(config.degree);
    let h = header();
    let sealed = SEALED_SHARES_LEN as u64;
    let packed = config.packed_len() as u64;
    let advertise = h.saturating_add(KEYS);
    let share_keys = h
        .saturating_add(COUNT)
        .saturating_add(k.saturating_add(1).saturating_mul(COMMITMENT))
        .saturating_add(COUNT)
        .saturating_add(k.saturating_mul(ID.saturating_add(sealed)));
    let masked = h
        .saturating_add(COUNT)
        .saturating_add(k.saturating_mul(ID))
        .saturating_add(packed);
    let signature = h.saturating_add(64);
    let decline = h.saturating_add(1);
    let unmask = h
        .saturating_add(COUNT)
        .saturating_add(k.saturating_add(1).saturating_mul(UNMASK_ENTRY));
    saturate(
        advertise
            .max(share_keys)
            .max(masked)
            .max(signature)
            .max(decline)
            .max(unmask),
    )
}

/// The longest message the server may send in `config`'s round.
#[must_use]
pub fn max_server_message_len(config: &RoundConfig) -> usize {
    let k = u64::from(config.degree);
    let n = config.n() as u64;
    let h = header();
    let sealed = SEALED_SHARES_LEN as u64;
    let round_config = h
        .saturating_add(CONFIG_FIXED)
        .saturating_add(COUNT)
        .saturating_add(n.saturating_mul(ID));
    let neighbour_keys = h
        .saturating_add(COUNT)
        .saturating_add(k.saturating_mul(ID.saturating_add(KEYS)));
    let shares = h
        .saturating_add(COUNT)
        .saturating_add(k.saturating_mul(ID.saturating_add(sealed)));
    let survivors = h.saturating_add(COUNT).saturating_add(n.saturating_mul(ID));
    // Every survivor's signature, not only the neighbours' (SPEC.md §11.1.5).
    let signatures = h
        .saturating_add(COUNT)
        .saturating_add(n.saturating_mul(ID.saturating_add(64)));
    let abort = h.saturating_add(1);
    saturate(
        round_config
            .max(neighbour_keys)
            .max(shares)
            .max(survivors)
            .max(signatures)
            .max(abort),
    )
}
