//! Bit packing of vectors in `Z_2^b` (SPEC.md §10.2).
//!
//! Element `i` occupies bits `i*b .. (i+1)*b` of the packed string, least
//! significant bit first, where bit `j` of the string is bit `j mod 8` of
//! byte `j / 8`. The string is `ceil(d * b / 8)` bytes, and the bits after
//! the last element must be zero.

use veil_crypto::prg::RingBits;

use crate::error::{DecodeErrorKind, Error, Result};

/// Packs `values` (each below `2^b`; higher bits are dropped) into
/// `ceil(len * b / 8)` bytes.
#[must_use]
pub fn pack(values: &[u64], ring: RingBits) -> Vec<u8> {
    // Byte-aligned widths: each element is its low `width` bytes, LE.
    match byte_width(ring) {
        Some(1) => pack_aligned::<1>(values),
        Some(2) => pack_aligned::<2>(values),
        Some(4) => pack_aligned::<4>(values),
        Some(8) => pack_aligned::<8>(values),
        _ => pack_bits(values, ring),
    }
}

/// [`pack`] for a ring of `W` whole bytes: element `i` is bytes
/// `i*W .. (i+1)*W`, written in place (no per-element copy call).
fn pack_aligned<const W: usize>(values: &[u64]) -> Vec<u8> {
    let mut out = vec![0_u8; values.len().saturating_mul(W)];
    let (slots, _) = out.as_chunks_mut::<W>();
    for (slot, v) in slots.iter_mut().zip(values) {
        if let Some(low) = v.to_le_bytes().first_chunk::<W>() {
            *slot = *low;
        }
    }
    out
}

/// [`pack`] by the general bit loop, for any width.
#[expect(
    clippy::cast_possible_truncation,
    reason = "`acc as u64` takes the low 64 bits of the accumulator, which is the intent"
)]
fn pack_bits(values: &[u64], ring: RingBits) -> Vec<u8> {
    let b = ring.bits();
    let mask = ring.mask();
    let total_bits = (values.len() as u64).saturating_mul(u64::from(b));
    let mut out = Vec::with_capacity(usize::try_from(total_bits.div_ceil(8)).unwrap_or(0));
    let mut acc: u128 = 0;
    let mut nbits: u32 = 0;
    // Invariant: nbits < 64 at the top of the loop, b <= 64, so the
    // accumulator never holds more than 128 bits.
    for v in values {
        acc |= u128::from(v & mask) << nbits;
        nbits = nbits.wrapping_add(b);
        if nbits >= 64 {
            out.extend_from_slice(&(acc as u64).to_le_bytes());
            acc >>= 64;
            nbits = nbits.wrapping_sub(64);
        }
    }
    let tail = usize::try_from(nbits.div_ceil(8)).unwrap_or(0);
    out.extend_from_slice((acc as u64).to_le_bytes().get(..tail).unwrap_or_default());
    out
}

/// The width in bytes of a byte-aligned ring (b = 8, 16, 32 or 64), for
/// which packing is a plain little-endian layout.
fn byte_width(ring: RingBits) -> Option<usize> {
    match ring.bits() {
        8 => Some(1),
        16 => Some(2),
        32 => Some(4),
        64 => Some(8),
        _ => None,
    }
}

fn decode_err(field: &'static str, kind: DecodeErrorKind) -> Error {
    Error::Decode {
        message: "masked_input",
        field,
        kind,
    }
}

/// Calls `f(i, element_i)` for each of the `d` elements packed in `bytes`.
///
/// # Errors
/// A decode error unless `bytes` is exactly `ceil(d * b / 8)` long with zero
/// padding bits.
#[expect(
    clippy::cast_possible_truncation,
    reason = "`acc as u64` takes the low 64 bits of the accumulator, which is the intent"
)]
pub fn unpack_each(
    bytes: &[u8],
    d: usize,
    ring: RingBits,
    mut f: impl FnMut(usize, u64),
) -> Result<()> {
    let b = ring.bits();
    let mask = ring.mask();
    check_length(bytes, d, ring)?;
    let (words, rest) = bytes.as_chunks::<8>();
    let mut words = words.iter().map(|w| u64::from_le_bytes(*w));
    let mut tail = [0_u8; 8];
    for (t, r) in tail.iter_mut().zip(rest) {
        *t = *r;
    }
    let mut tail = Some(u64::from_le_bytes(tail));
    let mut next_word = move || words.next().or_else(|| tail.take()).unwrap_or(0);
    let mut acc: u128 = 0;
    let mut nbits: u32 = 0;
    // Invariant: nbits < 64 + b <= 128 bits are buffered, and at least b
    // of them are available before an element is taken.
    for i in 0..d {
        if nbits < b {
            acc |= u128::from(next_word()) << nbits;
            nbits = nbits.wrapping_add(64);
        }
        f(i, (acc as u64) & mask);
        acc >>= b;
        nbits = nbits.wrapping_sub(b);
    }
    // What is left in the accumulator and the unread tail must be zero.
    if acc != 0 || next_word() != 0 {
        return Err(decode_err("packed", DecodeErrorKind::NonZeroPadding));
    }
    Ok(())
}

/// Checks that `bytes` is `ceil(d * b / 8)` long; returns `d * b`.
fn check_length(bytes: &[u8], d: usize, ring: RingBits) -> Result<u64> {
    let total_bits = (d as u64).saturating_mul(u64::from(ring.bits()));
    let expected = total_bits.div_ceil(8);
    if bytes.len() as u64 != expected {
        return Err(decode_err(
            "packed",
            DecodeErrorKind::WrongLength {
                expected,
                got: bytes.len() as u64,
            },
        ));
    }
    Ok(total_bits)
}

/// Checks that `bytes` is a canonical packing of `d` elements: exactly
/// `ceil(d * b / 8)` bytes, with zero bits after the last element. This is
/// what the decoder of a masked input checks, so that a packing accepted
/// from a peer always unpacks later.
///
/// # Errors
/// As [`unpack_each`].
pub fn check_canonical(bytes: &[u8], d: usize, ring: RingBits) -> Result<()> {
    let total_bits = check_length(bytes, d, ring)?;
    let used = u32::try_from(total_bits % 8).unwrap_or(0);
    if let (Some(last), true) = (bytes.last(), used != 0)
        && last >> used != 0
    {
        return Err(decode_err("packed", DecodeErrorKind::NonZeroPadding));
    }
    Ok(())
}

/// Unpacks `d` elements.
///
/// # Errors
/// As [`unpack_each`].
pub fn unpack(bytes: &[u8], d: usize, ring: RingBits) -> Result<Vec<u64>> {
    let mut out = vec![0_u64; d];
    unpack_each(bytes, d, ring, |i, v| {
        if let Some(slot) = out.get_mut(i) {
            *slot = v;
        }
    })?;
    Ok(out)
}

/// Adds the `acc.len()` elements packed in `bytes` into `acc`, modulo `2^b`.
///
/// # Errors
/// As [`unpack_each`].
pub fn unpack_add(bytes: &[u8], ring: RingBits, acc: &mut [u64]) -> Result<()> {
    let d = acc.len();
    if let Some(width) = byte_width(ring) {
        check_canonical(bytes, d, ring)?;
        match width {
            4 => {
                let (words, _) = bytes.as_chunks::<4>();
                for (a, w) in acc.iter_mut().zip(words) {
                    *a = ring.add(*a, u64::from(u32::from_le_bytes(*w)));
                }
            }
            8 => {
                let (words, _) = bytes.as_chunks::<8>();
                for (a, w) in acc.iter_mut().zip(words) {
                    *a = ring.add(*a, u64::from_le_bytes(*w));
                }
            }
            _ => {
                for (a, w) in acc.iter_mut().zip(bytes.chunks_exact(width)) {
                    let mut b = [0_u8; 8];
                    for (dst, src) in b.iter_mut().zip(w) {
                        *dst = *src;
                    }
                    *a = ring.add(*a, u64::from_le_bytes(b));
                }
            }
        }
        return Ok(());
    }
    unpack_each(bytes, d, ring, |i, v| {
        if let Some(slot) = acc.get_mut(i) {
            *slot = ring.add(*slot, v);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_for_every_width_and_length() {
        for bits in 1..=64 {
            let ring = RingBits::new(bits).unwrap();
            for d in [0_usize, 1, 2, 7, 8, 9, 63, 64, 65, 200] {
                let values: Vec<u64> = (0..d as u64)
                    .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & ring.mask())
                    .collect();
                let packed = pack(&values, ring);
                assert_eq!(packed.len() as u64, (d as u64 * bits as u64).div_ceil(8));
                assert_eq!(
                    unpack(&packed, d, ring).unwrap(),
                    values,
                    "b = {bits}, d = {d}"
                );
            }
        }
    }

    #[test]
    fn layout_is_lsb_first() {
        let ring = RingBits::new(4).unwrap();
        assert_eq!(pack(&[0x1, 0x2, 0x3], ring), vec![0x21, 0x03]);
        let ring = RingBits::new(12).unwrap();
        assert_eq!(pack(&[0xabc, 0x123], ring), vec![0xbc, 0x3a, 0x12]);
    }

    #[test]
    fn wrong_length_and_padding_are_refused() {
        let ring = RingBits::new(4).unwrap();
        assert!(matches!(
            unpack(&[0x21], 3, ring),
            Err(Error::Decode {
                kind: DecodeErrorKind::WrongLength {
                    expected: 2,
                    got: 1
                },
                ..
            })
        ));
        assert!(matches!(
            unpack(&[0x21, 0x13], 3, ring),
            Err(Error::Decode {
                kind: DecodeErrorKind::NonZeroPadding,
                ..
            })
        ));
    }

    #[test]
    fn canonical_check_agrees_with_unpack() {
        for bits in [1_u32, 3, 12, 20, 32, 63, 64] {
            let ring = RingBits::new(bits).unwrap();
            for d in [1_usize, 2, 5, 9] {
                let packed = pack(&vec![ring.mask(); d], ring);
                check_canonical(&packed, d, ring).unwrap();
                for bit in 0..8 {
                    let mut dirty = packed.clone();
                    *dirty.last_mut().unwrap() |= 1 << bit;
                    assert_eq!(
                        check_canonical(&dirty, d, ring).is_ok(),
                        unpack(&dirty, d, ring).is_ok(),
                        "b = {bits}, d = {d}, bit {bit}"
                    );
                }
            }
        }
    }

    #[test]
    fn byte_aligned_fast_paths_agree_with_the_bit_loop() {
        for bits in [8_u32, 16, 32, 64] {
            let ring = RingBits::new(bits).unwrap();
            let values: Vec<u64> = (0..37_u64)
                .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & ring.mask())
                .collect();
            let packed = pack(&values, ring);
            // The general bit loops write and read the same layout.
            assert_eq!(packed, pack_bits(&values, ring), "b = {bits}");
            // Both drop the bits above b alike.
            let wide: Vec<u64> = values.iter().map(|v| v | !ring.mask()).collect();
            assert_eq!(pack(&wide, ring), pack_bits(&wide, ring), "b = {bits}");
            assert_eq!(pack(&wide, ring), packed, "b = {bits}");
            assert_eq!(unpack(&packed, values.len(), ring).unwrap(), values);
            let mut acc = vec![1_u64; values.len()];
            unpack_add(&packed, ring, &mut acc).unwrap();
            for (a, v) in acc.iter().zip(&values) {
                assert_eq!(*a, ring.add(1, *v));
            }
            assert!(unpack_add(&packed[1..], ring, &mut acc).is_err());
        }
    }

    #[test]
    fn unpack_add_wraps() {
        let ring = RingBits::new(8).unwrap();
        let mut acc = vec![250_u64, 1];
        unpack_add(&pack(&[10, 2], ring), ring, &mut acc).unwrap();
        assert_eq!(acc, vec![4, 3]);
    }
}
