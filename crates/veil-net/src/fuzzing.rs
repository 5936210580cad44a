//! Entry points of veil-net's fuzz targets (`fuzz/`), kept here so that the
//! committed corpus is replayed by `cargo test` without a fuzzer.

use crate::frame::{FRAME_HEADER_LEN, FrameKind, parse_header};

/// Parses the first 5 bytes as a frame header, with caps from the next 4
/// bytes (the SecAgg cap) and Hello capped at 0; an accepted header never
/// exceeds its cap.
///
/// # Panics
/// If the invariant breaks.
#[allow(clippy::panic, reason = "a broken invariant is the finding")]
pub fn frame_header(data: &[u8]) {
    let Some((header, rest)) = data.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return;
    };
    let cap = rest
        .first_chunk::<4>()
        .map_or(0, |c| u32::from_be_bytes(*c)) as usize;
    let caps = |k| match k {
        FrameKind::SecAgg => Some(cap),
        FrameKind::Hello => Some(0),
    };
    if let Ok((kind, len)) = parse_header(*header, caps)
        && caps(kind).is_none_or(|c| len > c)
    {
        panic!("a frame over its cap was accepted");
    }
}
