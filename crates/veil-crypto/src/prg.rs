//! The mask PRG: a 32-byte seed expanded into elements of the ring `Z_2^b`
//! (SPEC.md §4).
//!
//! The expansion of `seed` to `len` elements is the RFC 8439 ChaCha20
//! keystream under key `seed`, nonce `0^12` and initial block counter 0, cut
//! into little-endian words of `w = 32` bits when `b <= 32` and `w = 64` bits
//! when `b > 32`; element `i` is word `i` reduced modulo `2^b` (its low `b`
//! bits). Each word is uniform, so each element is uniform in `Z_2^b`.
//!
//! This is the protocol's hot loop: a client adds `k + 1` masks of `d`
//! elements, and the server removes those of the survivors and of the dropped
//! clients' edges. The keystream is written in small chunks into a stack
//! buffer and added straight into the caller's vector: no allocation, and with
//! [`apply_masks`] the chunk of the vector stays in L1 cache while every
//! stream is added to it. [`apply_masks_parallel`] cuts the vector into
//! contiguous parts and runs each on its own thread, every stream started at
//! the part's offset in its keystream: the server's unmasking on every core.

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{Error, Result};

/// The largest number of elements one seed expands to: `2^32`. At 8 bytes an
/// element that is 32 GiB, within the 256 GiB one ChaCha20 nonce can produce.
pub const MAX_MASK_LEN: u64 = 1 << 32;

/// Bytes of keystream produced per step; 4 KiB keeps both the keystream and
/// the matching chunk of the caller's vector in L1 cache.
const CHUNK_BYTES: usize = 4096;

/// A seed of the mask PRG: the key of one ChaCha20 keystream.
///
/// Seeds come from [`crate::agreement::SharedSecret::pairwise_mask_seed`] and
/// [`crate::shamir::SecretScalar::self_mask_seed`].
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MaskSeed([u8; 32]);

secret_debug!(MaskSeed);

impl MaskSeed {
    /// A seed with the given bytes. In the protocol seeds are only derived;
    /// this exists for test vectors and for state restored from storage.
    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The seed's bytes, for test vectors. Not in a default build.
    #[cfg(any(test, feature = "test-util"))]
    #[must_use]
    pub fn expose_for_test(&self) -> [u8; 32] {
        self.0
    }
}

impl ConstantTimeEq for MaskSeed {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

/// The width `b` of the ring `Z_2^b`, from 1 to 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RingBits(u8);

impl RingBits {
    /// `Z_2^b` for `b` in `1..=64`.
    ///
    /// # Errors
    /// [`Error::RingBitsOutOfRange`] for any other `b`.
    pub fn new(bits: u32) -> Result<Self> {
        match u8::try_from(bits) {
            Ok(b @ 1..=64) => Ok(Self(b)),
            _ => Err(Error::RingBitsOutOfRange { bits }),
        }
    }

    /// `b`.
    #[must_use]
    pub fn bits(self) -> u32 {
        u32::from(self.0)
    }

    /// `2^b - 1`, the mask that reduces a word modulo `2^b`.
    #[must_use]
    pub fn mask(self) -> u64 {
        u64::MAX >> (64_u32.saturating_sub(self.bits()))
    }

    /// The width in bytes of the keystream word behind one element: 4 for
    /// `b <= 32`, 8 above.
    #[must_use]
    pub fn word_bytes(self) -> usize {
        if self.0 <= 32 { 4 } else { 8 }
    }

    /// `a + b mod 2^b`.
    #[must_use]
    pub fn add<T: RingElement>(self, a: T, b: T) -> T {
        a.wrapping_add(b).reduce(self)
    }

    /// `a - b mod 2^b`.
    #[must_use]
    pub fn sub<T: RingElement>(self, a: T, b: T) -> T {
        a.wrapping_sub(b).reduce(self)
    }

    /// `a mod 2^b`.
    #[must_use]
    pub fn reduce<T: RingElement>(self, a: T) -> T {
        a.reduce(self)
    }

    fn check_fits<T: RingElement>(self) -> Result<()> {
        if self.bits() > T::BITS {
            return Err(Error::RingBitsTooWide {
                bits: self.bits(),
                word_bits: T::BITS,
            });
        }
        Ok(())
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for u32 {}
    impl Sealed for u64 {}
}

/// An unsigned integer type that holds elements of `Z_2^b`: `u32` for
/// `b <= 32`, `u64` for any `b`.
pub trait RingElement: Copy + sealed::Sealed {
    /// The width of the type in bits.
    const BITS: u32;
    /// Word `w` of the keystream, reduced modulo `2^b`.
    fn from_word(w: u64, ring: RingBits) -> Self;
    /// Wrapping addition in the type's own width.
    #[must_use]
    fn wrapping_add(self, other: Self) -> Self;
    /// Wrapping subtraction in the type's own width.
    #[must_use]
    fn wrapping_sub(self, other: Self) -> Self;
    /// The value modulo `2^b`.
    #[must_use]
    fn reduce(self, ring: RingBits) -> Self;
}

#[expect(
    clippy::use_self,
    reason = "the trait fixes the constant's type as u32, which here is also Self"
)]
impl RingElement for u32 {
    const BITS: u32 = Self::BITS;
    #[inline(always)]
    #[expect(
        clippy::cast_possible_truncation,
        reason = "truncation to the low b <= 32 bits is the specified reduction"
    )]
    fn from_word(w: u64, ring: RingBits) -> Self {
        (w & ring.mask()) as Self
    }
    #[inline(always)]
    fn wrapping_add(self, other: Self) -> Self {
        Self::wrapping_add(self, other)
    }
    #[inline(always)]
    fn wrapping_sub(self, other: Self) -> Self {
        Self::wrapping_sub(self, other)
    }
    #[inline(always)]
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a u32 ring has b <= 32, so the mask fits in 32 bits"
    )]
    fn reduce(self, ring: RingBits) -> Self {
        self & (ring.mask() as Self)
    }
}

impl RingElement for u64 {
    const BITS: u32 = Self::BITS;
    #[inline(always)]
    fn from_word(w: u64, ring: RingBits) -> Self {
        w & ring.mask()
    }
    #[inline(always)]
    fn wrapping_add(self, other: Self) -> Self {
        Self::wrapping_add(self, other)
    }
    #[inline(always)]
    fn wrapping_sub(self, other: Self) -> Self {
        Self::wrapping_sub(self, other)
    }
    #[inline(always)]
    fn reduce(self, ring: RingBits) -> Self {
        self & ring.mask()
    }
}

/// Whether a mask is added to or subtracted from the vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaskSign {
    /// `x <- x + mask (mod 2^b)`.
    Add,
    /// `x <- x - mask (mod 2^b)`.
    Subtract,
}

/// One ChaCha20 keystream positioned at the start of the expansion of a seed.
struct Stream {
    cipher: ChaCha20,
    sign: MaskSign,
}

impl Stream {
    fn new(seed: &MaskSeed, sign: MaskSign) -> Self {
        let nonce = [0_u8; 12];
        Self {
            cipher: ChaCha20::new(&seed.0.into(), &nonce.into()),
            sign,
        }
    }

    /// The stream positioned `offset` bytes into its keystream.
    fn at(seed: &MaskSeed, sign: MaskSign, offset: u64) -> Self {
        let mut stream = Self::new(seed, sign);
        stream.cipher.seek(offset);
        stream
    }
}

/// How the expanded words combine with the vector.
#[derive(Clone, Copy)]
enum Op {
    Write,
    Combine(MaskSign),
}

fn check_len(len: usize) -> Result<()> {
    if u64::try_from(len).map_or(true, |l| l > MAX_MASK_LEN) {
        return Err(Error::MaskTooLong {
            len,
            max: usize::try_from(MAX_MASK_LEN).unwrap_or(usize::MAX),
        });
    }
    Ok(())
}

/// Combines the keystream bytes `ks` (exactly `out.len()` words) into `out`.
#[inline(always)]
fn combine_chunk<T: RingElement>(ks: &[u8], out: &mut [T], ring: RingBits, op: Op) {
    match ring.word_bytes() {
        4 => {
            let (words, _) = ks.as_chunks::<4>();
            combine_words(
                words.iter().map(|w| u64::from(u32::from_le_bytes(*w))),
                out,
                ring,
                op,
            );
        }
        _ => {
            let (words, _) = ks.as_chunks::<8>();
            combine_words(words.iter().map(|w| u64::from_le_bytes(*w)), out, ring, op);
        }
    }
}

#[inline(always)]
fn combine_words<T: RingElement>(
    words: impl Iterator<Item = u64>,
    out: &mut [T],
    ring: RingBits,
    op: Op,
) {
    match op {
        Op::Write => out
            .iter_mut()
            .zip(words)
            .for_each(|(x, w)| *x = T::from_word(w, ring)),
        Op::Combine(MaskSign::Add) => out
            .iter_mut()
            .zip(words)
            .for_each(|(x, w)| *x = ring.add(*x, T::from_word(w, ring))),
        Op::Combine(MaskSign::Subtract) => out
            .iter_mut()
            .zip(words)
            .for_each(|(x, w)| *x = ring.sub(*x, T::from_word(w, ring))),
    }
}

/// Runs `streams` over `out` chunk by chunk; with `Op::Write` there is exactly
/// one stream.
fn run<T: RingElement>(
    streams: &mut [Stream],
    ring: RingBits,
    out: &mut [T],
    write: bool,
) -> Result<()> {
    ring.check_fits::<T>()?;
    check_len(out.len())?;
    let word_bytes = ring.word_bytes();
    let per_chunk = if word_bytes == 4 {
        CHUNK_BYTES / 4
    } else {
        CHUNK_BYTES / 8
    };
    let mut ks = [0_u8; CHUNK_BYTES];
    for chunk in out.chunks_mut(per_chunk) {
        // chunk.len() <= per_chunk, so this is at most CHUNK_BYTES.
        let n_bytes = chunk.len().saturating_mul(word_bytes);
        let Some(ks) = ks.get_mut(..n_bytes) else {
            continue;
        };
        for stream in streams.iter_mut() {
            stream.cipher.write_keystream(ks);
            let op = if write {
                Op::Write
            } else {
                Op::Combine(stream.sign)
            };
            combine_chunk(ks, chunk, ring, op);
        }
    }
    ks.zeroize();
    Ok(())
}

/// Writes the expansion of `seed` into `out`: `out[i] = PRG(seed)[i]`.
///
/// # Errors
/// [`Error::RingBitsTooWide`] if `T` cannot hold `b` bits;
/// [`Error::MaskTooLong`] if `out` is longer than [`MAX_MASK_LEN`].
pub fn expand_into<T: RingElement>(seed: &MaskSeed, ring: RingBits, out: &mut [T]) -> Result<()> {
    run(&mut [Stream::new(seed, MaskSign::Add)], ring, out, true)
}

/// `x[i] <- x[i] + PRG(seed)[i] mod 2^b`.
///
/// # Errors
/// As [`expand_into`].
pub fn add_mask<T: RingElement>(seed: &MaskSeed, ring: RingBits, x: &mut [T]) -> Result<()> {
    run(&mut [Stream::new(seed, MaskSign::Add)], ring, x, false)
}

/// `x[i] <- x[i] - PRG(seed)[i] mod 2^b`.
///
/// # Errors
/// As [`expand_into`].
pub fn sub_mask<T: RingElement>(seed: &MaskSeed, ring: RingBits, x: &mut [T]) -> Result<()> {
    run(&mut [Stream::new(seed, MaskSign::Subtract)], ring, x, false)
}

/// Adds or subtracts every mask in `masks` into `x` in one pass over `x`.
///
/// The result equals applying [`add_mask`] / [`sub_mask`] once per seed (the
/// ring is commutative), but `x` is read and written once per chunk rather
/// than once per seed. This is the client's masking step and the server's
/// unmasking step.
///
/// # Errors
/// As [`expand_into`].
pub fn apply_masks<T: RingElement>(
    masks: &[(&MaskSeed, MaskSign)],
    ring: RingBits,
    x: &mut [T],
) -> Result<()> {
    let mut streams: Vec<Stream> = masks
        .iter()
        .map(|(seed, sign)| Stream::new(seed, *sign))
        .collect();
    run(&mut streams, ring, x, false)
}

/// The fewest elements [`apply_masks_parallel`] gives one thread: below this
/// a thread's start-up costs more than it saves.
pub const MIN_ELEMENTS_PER_THREAD: usize = 1 << 15;

/// [`apply_masks`] on up to `threads` threads: `x` is cut into contiguous
/// parts of at least [`MIN_ELEMENTS_PER_THREAD`] elements, and each part is
/// masked on its own thread with every stream started at the part's offset
/// in its keystream. The result is that of [`apply_masks`], element for
/// element; with `threads <= 1`, or too short an `x`, it is `apply_masks`.
///
/// # Errors
/// As [`expand_into`].
pub fn apply_masks_parallel<T: RingElement + Send>(
    masks: &[(&MaskSeed, MaskSign)],
    ring: RingBits,
    x: &mut [T],
    threads: usize,
) -> Result<()> {
    ring.check_fits::<T>()?;
    check_len(x.len())?;
    let parts = threads.min(x.len() / MIN_ELEMENTS_PER_THREAD);
    if parts <= 1 || masks.is_empty() {
        return apply_masks(masks, ring, x);
    }
    // Parts start on a 64-byte ChaCha20 block at either word size.
    let per_part = x.len().div_ceil(parts).next_multiple_of(16);
    let word_bytes = ring.word_bytes();
    std::thread::scope(|scope| {
        let workers: Vec<_> = x
            .chunks_mut(per_part)
            .enumerate()
            .map(|(i, part)| {
                scope.spawn(move || {
                    // i * per_part < x.len() <= MAX_MASK_LEN, so the byte
                    // offset is below 2^35.
                    let offset =
                        u64::try_from(i.saturating_mul(per_part).saturating_mul(word_bytes))
                            .unwrap_or(u64::MAX);
                    let mut streams: Vec<Stream> = masks
                        .iter()
                        .map(|(seed, sign)| Stream::at(seed, *sign, offset))
                        .collect();
                    run(&mut streams, ring, part, false)
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })
}

/// A stream of uniform 32-bit words from a **public** seed: the ChaCha20
/// keystream under key `seed`, nonce `0^12`, read as little-endian `u32`s
/// (SPEC.md §4.1). For values every party must compute alike, such as the
/// neighbour-graph permutation; never for secrets.
pub struct PublicWordStream {
    cipher: ChaCha20,
    buf: [u8; 64],
    next: usize,
}

impl core::fmt::Debug for PublicWordStream {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PublicWordStream")
    }
}

impl PublicWordStream {
    /// The stream of `seed`.
    #[must_use]
    pub fn new(seed: &[u8; 32]) -> Self {
        Self {
            cipher: ChaCha20::new(&(*seed).into(), &[0_u8; 12].into()),
            buf: [0; 64],
            next: 64,
        }
    }

    /// The next word.
    pub fn next_u32(&mut self) -> u32 {
        if self.next >= self.buf.len() {
            self.cipher.write_keystream(&mut self.buf);
            self.next = 0;
        }
        let word = self
            .buf
            .get(self.next..)
            .and_then(|rest| rest.first_chunk::<4>())
            .map_or(0, |w| u32::from_le_bytes(*w));
        self.next = self.next.saturating_add(4);
        word
    }

    /// A uniform integer in `[0, bound)` by rejection: draw words `w` until
    /// `w < 2^32 - (2^32 mod bound)`, then return `w mod bound`. Returns 0
    /// for `bound = 0`.
    pub fn uniform_below(&mut self, bound: u32) -> u32 {
        let Some(bound) = core::num::NonZeroU32::new(bound) else {
            return 0;
        };
        // 2^32 mod bound, computed in u64 to avoid overflow.
        let rejected = (1_u64 << 32) % core::num::NonZeroU64::from(bound);
        let limit = (1_u64 << 32).saturating_sub(rejected);
        loop {
            let w = self.next_u32();
            if u64::from(w) < limit {
                return w % bound;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chacha20::cipher::StreamCipher;

    use super::*;

    fn seed(byte: u8) -> MaskSeed {
        MaskSeed::from_bytes([byte; 32])
    }

    fn raw_keystream(seed: &MaskSeed, len: usize) -> Vec<u8> {
        let mut c = ChaCha20::new(&seed.0.into(), &[0_u8; 12].into());
        let mut out = vec![0_u8; len];
        c.write_keystream(&mut out);
        out
    }

    /// The parallel unmasking equals the one-thread pass, element for
    /// element, whatever the thread count, length (parts that end inside a
    /// ChaCha20 block included), word size and signs.
    #[test]
    fn parallel_masking_equals_one_pass() {
        let seeds: Vec<MaskSeed> = (1..=5).map(seed).collect();
        let signs = [MaskSign::Add, MaskSign::Subtract];
        let plan: Vec<(&MaskSeed, MaskSign)> = seeds
            .iter()
            .zip(signs.iter().cycle())
            .map(|(s, sign)| (s, *sign))
            .collect();
        let m = MIN_ELEMENTS_PER_THREAD;
        for len in [0, 1000, m - 1, 2 * m, 2 * m + 5, 3 * m + 17, 5 * m + 3] {
            for bits in [20, 32] {
                let ring = RingBits::new(bits).unwrap();
                let mask = u32::try_from(ring.mask()).unwrap();
                let start: Vec<u32> = (0..u32::try_from(len).unwrap())
                    .map(|i| i.wrapping_mul(2_654_435_761) & mask)
                    .collect();
                let mut one = start.clone();
                apply_masks(&plan, ring, &mut one).unwrap();
                for threads in [0, 1, 2, 3, 4, 7] {
                    let mut many = start.clone();
                    apply_masks_parallel(&plan, ring, &mut many, threads).unwrap();
                    assert!(one == many, "len {len}, b = {bits}, {threads} threads");
                }
            }
            let ring = RingBits::new(64).unwrap();
            let start: Vec<u64> = (0..len as u64).collect();
            let mut one = start.clone();
            apply_masks(&plan, ring, &mut one).unwrap();
            let mut many = start;
            apply_masks_parallel(&plan, ring, &mut many, 3).unwrap();
            assert!(one == many, "len {len}, b = 64");
        }
        // The same checks as the one-thread pass.
        let mut x = [0_u32; 4];
        assert!(matches!(
            apply_masks_parallel(&plan, RingBits::new(33).unwrap(), &mut x, 2),
            Err(Error::RingBitsTooWide { .. })
        ));
    }

    #[test]
    fn ring_bits_range() {
        assert_eq!(RingBits::new(0), Err(Error::RingBitsOutOfRange { bits: 0 }));
        assert_eq!(
            RingBits::new(65),
            Err(Error::RingBitsOutOfRange { bits: 65 })
        );
        assert_eq!(
            RingBits::new(300),
            Err(Error::RingBitsOutOfRange { bits: 300 })
        );
        assert_eq!(RingBits::new(1).unwrap().mask(), 1);
        assert_eq!(RingBits::new(20).unwrap().mask(), 0xf_ffff);
        assert_eq!(RingBits::new(64).unwrap().mask(), u64::MAX);
    }

    #[test]
    fn u32_buffer_refuses_wide_ring() {
        let mut x = [0_u32; 4];
        assert_eq!(
            expand_into(&seed(1), RingBits::new(33).unwrap(), &mut x),
            Err(Error::RingBitsTooWide {
                bits: 33,
                word_bits: 32
            })
        );
    }

    #[test]
    fn expansion_is_truncated_le_words_of_the_keystream() {
        for bits in [1, 7, 20, 31, 32, 33, 48, 63, 64] {
            let ring = RingBits::new(bits).unwrap();
            // Lengths around the chunk boundary.
            for len in [0, 1, 1023, 1024, 1025, 3000] {
                let s = seed(u8::try_from(bits).unwrap());
                let ks = raw_keystream(&s, len * ring.word_bytes());
                let mut out = vec![0_u64; len];
                expand_into(&s, ring, &mut out).unwrap();
                for (i, v) in out.iter().enumerate() {
                    let w = if ring.word_bytes() == 4 {
                        u64::from(u32::from_le_bytes(ks[4 * i..4 * i + 4].try_into().unwrap()))
                    } else {
                        u64::from_le_bytes(ks[8 * i..8 * i + 8].try_into().unwrap())
                    };
                    assert_eq!(*v, w & ring.mask(), "b = {bits}, i = {i}");
                }
                if bits <= 32 {
                    let mut out32 = vec![0_u32; len];
                    expand_into(&s, ring, &mut out32).unwrap();
                    assert!(out32.iter().zip(&out).all(|(a, b)| u64::from(*a) == *b));
                }
            }
        }
    }

    #[test]
    fn add_then_sub_is_identity_and_fused_equals_sequential() {
        let ring = RingBits::new(20).unwrap();
        let x0: Vec<u32> = (0..5000_u32).map(|i| (i * 7919) & 0xf_ffff).collect();
        let (a, b, c) = (seed(1), seed(2), seed(3));

        let mut seq = x0.clone();
        add_mask(&a, ring, &mut seq).unwrap();
        sub_mask(&b, ring, &mut seq).unwrap();
        add_mask(&c, ring, &mut seq).unwrap();

        let mut fused = x0.clone();
        apply_masks(
            &[
                (&a, MaskSign::Add),
                (&b, MaskSign::Subtract),
                (&c, MaskSign::Add),
            ],
            ring,
            &mut fused,
        )
        .unwrap();
        assert_eq!(seq, fused);
        assert!(fused.iter().all(|v| *v <= 0xf_ffff));
        assert_ne!(fused, x0);

        apply_masks(
            &[
                (&a, MaskSign::Subtract),
                (&b, MaskSign::Add),
                (&c, MaskSign::Subtract),
            ],
            ring,
            &mut fused,
        )
        .unwrap();
        assert_eq!(fused, x0);
    }

    #[test]
    fn full_width_rings_wrap() {
        let ring = RingBits::new(64).unwrap();
        let mut x = vec![u64::MAX; 10];
        let mut m = vec![0_u64; 10];
        expand_into(&seed(9), ring, &mut m).unwrap();
        add_mask(&seed(9), ring, &mut x).unwrap();
        for (xi, mi) in x.iter().zip(&m) {
            assert_eq!(*xi, mi.wrapping_sub(1));
        }
    }

    #[test]
    fn public_words_are_the_keystream_and_uniform_below_is_in_range() {
        let ks = raw_keystream(&seed(5), 400);
        let mut stream = PublicWordStream::new(&[5; 32]);
        for i in 0..100 {
            let w = u32::from_le_bytes(ks[4 * i..4 * i + 4].try_into().unwrap());
            assert_eq!(stream.next_u32(), w);
        }
        let mut stream = PublicWordStream::new(&[6; 32]);
        let mut seen = [0_u32; 7];
        for _ in 0..7000 {
            seen[stream.uniform_below(7) as usize] += 1;
        }
        assert!(seen.iter().all(|c| (800..1200).contains(c)), "{seen:?}");
        assert_eq!(stream.uniform_below(0), 0);
        assert_eq!(stream.uniform_below(1), 0);
    }

    #[test]
    fn seeds_compare_in_constant_time() {
        assert!(bool::from(seed(1).ct_eq(&seed(1))));
        assert!(!bool::from(seed(1).ct_eq(&seed(2))));
    }
}
