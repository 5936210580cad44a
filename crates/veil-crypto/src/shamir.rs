//! Shamir secret sharing over curve25519's scalar field `F_ℓ`,
//! `ℓ = 2^252 + 27742317777372353535851937790883648493` (SPEC.md §5).
//!
//! A secret is one field element, so a secret is never split into chunks.
//! Shares of a secret `s` with threshold `t` are `(x, f(x))` for the
//! polynomial `f(X) = s + a_1 X + ... + a_{t-1} X^{t-1}` with uniformly random
//! coefficients; x-coordinates are nonzero 32-bit integers ([`ShareIndex`]).
//!
//! Reconstruction goes through a [`Reconstructor`], built once for a set of
//! share holders: the server of a round reconstructs many secrets from the
//! same holders, and the Lagrange coefficients (an `O(m^2)` computation) are
//! shared by all of them, so each secret then costs `O(m)`. When more than `t`
//! shares are given, the reconstructor also checks that they lie on one
//! polynomial of degree below `t`, and refuses to return a secret otherwise.

use core::num::NonZeroU32;

use curve25519_dalek::Scalar;
use rand_core::CryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use sha2::{Digest, Sha256};

use crate::kdf::{self, KdfInfo, LABEL_SHARE_COMMITMENT};
use crate::prg::MaskSeed;
use crate::{Error, ParticipantId, Result, RoundId};

/// The most shares one sharing may have, and the most shares one
/// reconstruction may take.
pub const MAX_SHARES: usize = 65_535;

/// The length of an encoded [`Share`]: a 4-byte index and a 32-byte value.
pub const SHARE_LEN: usize = 36;

/// A secret element of the scalar field: a self-mask secret `b_u`, a
/// mask-agreement secret key, or any other secret that is Shamir-shared.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretScalar(Scalar);

secret_debug!(SecretScalar);

impl SecretScalar {
    /// A uniformly random secret (64 random bytes reduced modulo `ℓ`).
    pub fn random<R: CryptoRng + ?Sized>(rng: &mut R) -> Self {
        Self(Scalar::random(rng))
    }

    /// The secret encoded as 32 canonical little-endian bytes (`< ℓ`).
    ///
    /// # Errors
    /// [`Error::InvalidLength`] unless `bytes` is 32 bytes long;
    /// [`Error::NonCanonicalScalar`] if it encodes a value `>= ℓ`.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self> {
        decode_scalar(bytes, "secret scalar").map(Self)
    }

    /// The seed of this participant's self mask in `round`:
    /// `HKDF(ikm = LE32(b_u), info = SelfMask { round, owner })` (SPEC.md §3.3).
    #[must_use]
    pub fn self_mask_seed(&self, round: RoundId, owner: ParticipantId) -> MaskSeed {
        let okm = kdf::derive_32(self.0.as_bytes(), &KdfInfo::SelfMask { round, owner });
        MaskSeed::from_bytes(*okm)
    }

    /// The secret's canonical bytes. This is the one way its value leaves the
    /// type; the caller must keep the result secret (it zeroizes on drop).
    #[must_use]
    pub fn export_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub(crate) fn as_scalar(&self) -> &Scalar {
        &self.0
    }
}

impl ConstantTimeEq for SecretScalar {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

/// A Shamir x-coordinate: a nonzero 32-bit integer. Public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShareIndex(NonZeroU32);

impl ShareIndex {
    /// The x-coordinate `index`.
    ///
    /// # Errors
    /// [`Error::ZeroShareIndex`] for 0: a share there would be the secret.
    pub fn new(index: u32) -> Result<Self> {
        NonZeroU32::new(index)
            .map(Self)
            .ok_or(Error::ZeroShareIndex)
    }

    /// The x-coordinate of participant `id`'s shares: `id + 1`.
    ///
    /// # Errors
    /// [`Error::ParticipantIdOutOfRange`] for `id = u32::MAX`.
    pub fn for_participant(id: ParticipantId) -> Result<Self> {
        id.checked_add(1)
            .and_then(NonZeroU32::new)
            .map(Self)
            .ok_or(Error::ParticipantIdOutOfRange { id })
    }

    /// The x-coordinate as an integer.
    #[must_use]
    pub fn get(self) -> u32 {
        self.0.get()
    }

    fn to_scalar(self) -> Scalar {
        Scalar::from(self.get())
    }
}

/// One share `(x, f(x))` of a secret.
///
/// The value is secret: it zeroizes on drop and is not printed. The encoding
/// (SPEC.md §5.2) is `x` as a big-endian `u32` followed by `f(x)` as 32
/// canonical little-endian bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    #[zeroize(skip)]
    index: ShareIndex,
    value: Scalar,
}

secret_debug!(Share);

impl Share {
    /// The share's x-coordinate.
    #[must_use]
    pub fn index(&self) -> ShareIndex {
        self.index
    }

    /// The canonical 36-byte encoding. The result holds the secret value and
    /// zeroizes on drop.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; SHARE_LEN]> {
        let mut out = Zeroizing::new([0_u8; SHARE_LEN]);
        let (x, y) = out.split_at_mut(4);
        x.copy_from_slice(&self.index.get().to_be_bytes());
        y.copy_from_slice(self.value.as_bytes());
        out
    }

    /// Decodes the canonical encoding.
    ///
    /// # Errors
    /// [`Error::InvalidLength`] unless `bytes` is [`SHARE_LEN`] long;
    /// [`Error::ZeroShareIndex`] for `x = 0`; [`Error::NonCanonicalScalar`]
    /// for a value `>= ℓ`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let bytes: &[u8; SHARE_LEN] = bytes.try_into().map_err(|_| Error::InvalidLength {
            what: "share",
            expected: SHARE_LEN,
            got: bytes.len(),
        })?;
        let (x, y) = bytes.split_first_chunk::<4>().ok_or(Error::InvalidLength {
            what: "share",
            expected: SHARE_LEN,
            got: bytes.len(),
        })?;
        let index = ShareIndex::new(u32::from_be_bytes(*x))?;
        let value = decode_scalar(y, "share value")?;
        Ok(Self { index, value })
    }
}

/// A binding, hiding commitment to one dealt share (SPEC.md §5.4):
/// `SHA-256(label || u64 round || u32 dealer || u8 kind || share)`.
///
/// The dealer publishes it when it deals; whoever later receives the share
/// checks it, so a holder (or anyone on the way) that alters a share is
/// caught and identified. `kind` tells the dealer's secrets apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShareCommitment(pub [u8; 32]);

impl ShareCommitment {
    /// The commitment to `share` of `dealer`'s secret `kind` in `round`.
    #[must_use]
    pub fn compute(round: RoundId, dealer: ParticipantId, kind: u8, share: &Share) -> Self {
        let label = LABEL_SHARE_COMMITMENT.as_bytes();
        let mut h = Sha256::new();
        h.update([u8::try_from(label.len()).unwrap_or(u8::MAX)]);
        h.update(label);
        h.update(round.to_be_bytes());
        h.update(dealer.to_be_bytes());
        h.update([kind]);
        h.update(share.to_bytes().as_ref());
        Self(h.finalize().into())
    }

    /// Whether `share` is the one committed to. Compared in constant time.
    #[must_use]
    pub fn opens_to(&self, round: RoundId, dealer: ParticipantId, kind: u8, share: &Share) -> bool {
        bool::from(Self::compute(round, dealer, kind, share).0.ct_eq(&self.0))
    }
}

impl ConstantTimeEq for Share {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.index.get().ct_eq(&other.index.get()) & self.value.ct_eq(&other.value)
    }
}

fn decode_scalar(bytes: &[u8], what: &'static str) -> Result<Scalar> {
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| Error::InvalidLength {
        what,
        expected: 32,
        got: bytes.len(),
    })?;
    Option::from(Scalar::from_canonical_bytes(bytes)).ok_or(Error::NonCanonicalScalar { what })
}

/// Checks `1 <= threshold <= n <= MAX_SHARES` and that `indices` are distinct.
fn check_indices(indices: &[ShareIndex], threshold: usize) -> Result<()> {
    let n = indices.len();
    if n > MAX_SHARES {
        return Err(Error::TooManyShares {
            shares: n,
            max: MAX_SHARES,
        });
    }
    if threshold == 0 {
        return Err(Error::InvalidThreshold {
            threshold,
            shares: n,
        });
    }
    let mut sorted: Vec<u32> = indices.iter().map(|i| i.get()).collect();
    sorted.sort_unstable();
    if let Some(pair) = sorted.windows(2).find(|w| w.first() == w.get(1)) {
        return Err(Error::DuplicateShareIndex {
            index: pair.first().copied().unwrap_or_default(),
        });
    }
    Ok(())
}

/// Splits `secret` into one share for each of `indices` with threshold `t`:
/// any `t` of them reconstruct it, fewer reveal nothing.
///
/// # Errors
/// [`Error::InvalidThreshold`] unless `1 <= t <= indices.len()`;
/// [`Error::TooManyShares`] beyond [`MAX_SHARES`];
/// [`Error::DuplicateShareIndex`] if an index repeats.
pub fn split<R: CryptoRng + ?Sized>(
    secret: &SecretScalar,
    threshold: usize,
    indices: &[ShareIndex],
    rng: &mut R,
) -> Result<Vec<Share>> {
    check_split(threshold, indices)?;
    let coefficients: Zeroizing<Vec<Scalar>> =
        Zeroizing::new((1..threshold).map(|_| Scalar::random(&mut *rng)).collect());
    Ok(evaluate(secret, &coefficients, indices))
}

fn check_split(threshold: usize, indices: &[ShareIndex]) -> Result<()> {
    check_indices(indices, threshold)?;
    if threshold > indices.len() {
        return Err(Error::InvalidThreshold {
            threshold,
            shares: indices.len(),
        });
    }
    Ok(())
}

/// [`split`] with the coefficients `a_1 .. a_{t-1}` given, for test vectors.
///
/// # Errors
/// As [`split`], with `t = coefficients.len() + 1`.
#[cfg(any(test, feature = "test-util"))]
pub fn split_with_coefficients(
    secret: &SecretScalar,
    coefficients: &[SecretScalar],
    indices: &[ShareIndex],
) -> Result<Vec<Share>> {
    check_split(coefficients.len().saturating_add(1), indices)?;
    let coefficients: Zeroizing<Vec<Scalar>> =
        Zeroizing::new(coefficients.iter().map(|c| c.0).collect());
    Ok(evaluate(secret, &coefficients, indices))
}

/// `f(x)` for each index by Horner's rule, `f = secret + sum a_i X^i`.
fn evaluate(secret: &SecretScalar, coefficients: &[Scalar], indices: &[ShareIndex]) -> Vec<Share> {
    indices
        .iter()
        .map(|&index| {
            let x = index.to_scalar();
            let mut acc = Zeroizing::new(Scalar::ZERO);
            for a in coefficients.iter().rev() {
                *acc = *acc * x + a;
            }
            Share {
                index,
                value: *acc * x + secret.0,
            }
        })
        .collect()
}

/// Reconstructs secrets from the shares of one fixed, ordered set of holders.
///
/// Building it costs `O(m^2)` field multiplications for `m` holders; each
/// [`Reconstructor::reconstruct`] then costs `O(m)`.
///
/// Interpolation uses all `m` shares. When `m > t`, the shares must also lie
/// on one polynomial of degree `< t`; the reconstructor checks this with a
/// random linear combination of the parity checks of the Reed-Solomon code
/// (SPEC.md §5.3): for barycentric weights `v_i = 1 / prod_{j != i}(x_i - x_j)`
/// the shares are consistent exactly when `sum_i v_i x_i^k y_i = 0` for
/// `k = 0 .. m - t - 1`, and the reconstructor tests
/// `sum_i y_i v_i sum_k (r x_i)^k = 0` for a secret random `r` drawn when it
/// is built. Inconsistent shares pass with probability at most
/// `(m - t) / ℓ < 2^-236`.
pub struct Reconstructor {
    indices: Vec<ShareIndex>,
    threshold: usize,
    /// `λ_i`, the Lagrange coefficients at 0 over all `m` holders.
    lagrange: Vec<Scalar>,
    /// The parity-check weights `c_i`; empty when `m == t`.
    check: Vec<Scalar>,
}

impl core::fmt::Debug for Reconstructor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The check weights depend on the secret challenge r: not printed.
        f.debug_struct("Reconstructor")
            .field("indices", &self.indices)
            .field("threshold", &self.threshold)
            .finish_non_exhaustive()
    }
}

impl Drop for Reconstructor {
    fn drop(&mut self) {
        self.check.zeroize();
    }
}

impl Reconstructor {
    /// Prepares reconstruction from the holders `indices` (in this order)
    /// with threshold `t`.
    ///
    /// # Errors
    /// [`Error::InvalidThreshold`] for `t = 0`; [`Error::TooFewShares`] if
    /// fewer than `t` holders; [`Error::TooManyShares`] beyond
    /// [`MAX_SHARES`]; [`Error::DuplicateShareIndex`] if an index repeats.
    pub fn new<R: CryptoRng + ?Sized>(
        indices: &[ShareIndex],
        threshold: usize,
        rng: &mut R,
    ) -> Result<Self> {
        check_indices(indices, threshold)?;
        let m = indices.len();
        if m < threshold {
            return Err(Error::TooFewShares { got: m, threshold });
        }
        let xs: Vec<Scalar> = indices.iter().map(|i| i.to_scalar()).collect();

        // d_i = prod_{j != i} (x_j - x_i); nonzero because the x are distinct
        // integers below 2^32 < ℓ.
        let ints: Vec<u32> = indices.iter().map(|i| i.get()).collect();
        let mut inv_d: Vec<Scalar> = (0..m).map(|i| product_of_differences(&ints, i)).collect();
        Scalar::invert_batch_alloc(&mut inv_d);

        // n_i = prod_{j != i} x_j from prefix and suffix products.
        let mut prefix = Vec::with_capacity(m);
        let mut acc = Scalar::ONE;
        for x in &xs {
            prefix.push(acc);
            acc *= x;
        }
        let mut lagrange = vec![Scalar::ZERO; m];
        let mut suffix = Scalar::ONE;
        for ((l, (p, x)), d) in lagrange
            .iter_mut()
            .zip(prefix.iter().zip(&xs))
            .zip(&inv_d)
            .rev()
        {
            *l = p * suffix * d;
            suffix *= x;
        }

        // Parity-check weights c_i = v_i * sum_{k < e} (r x_i)^k, e = m - t,
        // with v_i = ± inv_d_i (a common sign does not change a zero test).
        let e = m.saturating_sub(threshold);
        let check = if e == 0 {
            Vec::new()
        } else {
            parity_weights(&xs, &inv_d, u64::try_from(e).unwrap_or(u64::MAX), rng)
        };
        Ok(Self {
            indices: indices.to_vec(),
            threshold,
            lagrange,
            check,
        })
    }

    /// The holders this reconstructor was built for, in order.
    #[must_use]
    pub fn indices(&self) -> &[ShareIndex] {
        &self.indices
    }

    /// The threshold `t`.
    #[must_use]
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The secret behind `shares`, which must come from the holders given to
    /// [`Reconstructor::new`], in the same order.
    ///
    /// # Errors
    /// [`Error::LengthMismatch`] or [`Error::ShareIndexMismatch`] if the
    /// shares are not those of the holders; [`Error::InconsistentShares`] if
    /// they do not lie on one polynomial of degree `< t`.
    pub fn reconstruct(&self, shares: &[Share]) -> Result<SecretScalar> {
        if shares.len() != self.indices.len() {
            return Err(Error::LengthMismatch {
                expected: self.indices.len(),
                got: shares.len(),
            });
        }
        if let Some((position, (want, share))) = self
            .indices
            .iter()
            .zip(shares)
            .enumerate()
            .find(|(_, (want, share))| **want != share.index)
        {
            return Err(Error::ShareIndexMismatch {
                position,
                expected: want.get(),
                got: share.index.get(),
            });
        }
        if !self.check.is_empty() {
            let parity: Scalar = self
                .check
                .iter()
                .zip(shares)
                .map(|(c, s)| c * s.value)
                .sum();
            if !bool::from(parity.ct_eq(&Scalar::ZERO)) {
                return Err(Error::InconsistentShares {
                    threshold: self.threshold,
                });
            }
        }
        let mut secret = SecretScalar(Scalar::ZERO);
        for (l, s) in self.lagrange.iter().zip(shares) {
            secret.0 += l * s.value;
        }
        Ok(secret)
    }
}

/// `prod_{j != i} (x_j - x_i)` in `F_ℓ`. Each factor is below `2^32` in
/// absolute value, so four of them multiply exactly in a `u128` before one
/// field multiplication: a quarter of the field multiplications of the
/// direct product, which dominates the reconstructor's set-up.
fn product_of_differences(xs: &[u32], i: usize) -> Scalar {
    let Some(&xi) = xs.get(i) else {
        return Scalar::ONE;
    };
    let mut negative = false;
    let mut factors = xs
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(_, &xj)| {
            negative ^= xj < xi;
            u128::from(xj.abs_diff(xi))
        });
    let mut acc = Scalar::ONE;
    while let Some(a) = factors.next() {
        let mut chunk = a;
        for _ in 0..3 {
            // Four factors below 2^32 multiply to below 2^128: no wrap.
            chunk = chunk.wrapping_mul(factors.next().unwrap_or(1));
        }
        acc *= Scalar::from(chunk);
    }
    drop(factors);
    if negative { -acc } else { acc }
}

/// `c_i = inv_d_i * (a_i^e - 1) / (a_i - 1)` with `a_i = r x_i` (and
/// `c_i = inv_d_i * e` where `a_i = 1`).
fn parity_weights<R: CryptoRng + ?Sized>(
    xs: &[Scalar],
    inv_d: &[Scalar],
    e: u64,
    rng: &mut R,
) -> Vec<Scalar> {
    let r = Zeroizing::new(Scalar::random(rng));
    let a: Zeroizing<Vec<Scalar>> = Zeroizing::new(xs.iter().map(|x| *r * x).collect());
    // a_i - 1, replaced by 1 where it is zero so the batch inversion is defined.
    let mut denominators: Zeroizing<Vec<Scalar>> = Zeroizing::new(
        a.iter()
            .map(|ai| {
                let d = ai - Scalar::ONE;
                if d == Scalar::ZERO { Scalar::ONE } else { d }
            })
            .collect(),
    );
    Scalar::invert_batch_alloc(&mut denominators);
    a.iter()
        .zip(denominators.iter())
        .zip(inv_d)
        .map(|((ai, inv_den), v)| {
            let geometric = if *ai == Scalar::ONE {
                Scalar::from(e)
            } else {
                (pow(ai, e) - Scalar::ONE) * inv_den
            };
            v * geometric
        })
        .collect()
}

/// `base^e` by square-and-multiply.
fn pow(base: &Scalar, mut e: u64) -> Scalar {
    let mut result = Scalar::ONE;
    let mut b = *base;
    while e > 0 {
        if e & 1 == 1 {
            result *= b;
        }
        b = b * b;
        e >>= 1;
    }
    result
}

/// Reconstructs one secret from `shares` with threshold `t`: a
/// [`Reconstructor`] for the shares' indices, used once.
///
/// # Errors
/// As [`Reconstructor::new`] and [`Reconstructor::reconstruct`].
pub fn reconstruct<R: CryptoRng + ?Sized>(
    shares: &[Share],
    threshold: usize,
    rng: &mut R,
) -> Result<SecretScalar> {
    let indices: Vec<ShareIndex> = shares.iter().map(Share::index).collect();
    Reconstructor::new(&indices, threshold, rng)?.reconstruct(shares)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::ChaCha20Rng;

    use super::*;

    fn rng() -> ChaCha20Rng {
        ChaCha20Rng::from_seed([42; 32])
    }

    fn idx(range: core::ops::RangeInclusive<u32>) -> Vec<ShareIndex> {
        range.map(|i| ShareIndex::new(i).unwrap()).collect()
    }

    fn eq(a: &SecretScalar, b: &SecretScalar) -> bool {
        bool::from(a.ct_eq(b))
    }

    #[test]
    fn any_t_shares_reconstruct_and_more_are_checked() {
        let mut rng = rng();
        let secret = SecretScalar::random(&mut rng);
        let shares = split(&secret, 3, &idx(1..=6), &mut rng).unwrap();
        for subset in [[0, 1, 2], [3, 4, 5], [5, 0, 3]] {
            let chosen: Vec<Share> = subset.iter().map(|&i| shares[i].clone()).collect();
            assert!(eq(&reconstruct(&chosen, 3, &mut rng).unwrap(), &secret));
        }
        assert!(eq(&reconstruct(&shares, 3, &mut rng).unwrap(), &secret));
    }

    #[test]
    fn ten_thousand_holders() {
        // n = 10,000 with the largest x-coordinates a u32 allows.
        let mut rng = rng();
        let secret = SecretScalar::random(&mut rng);
        let xs: Vec<ShareIndex> = (0..10_000_u32)
            .map(|i| ShareIndex::new(u32::MAX - i).unwrap())
            .collect();
        let shares = split(&secret, 4, &xs, &mut rng).unwrap();
        assert_eq!(shares.len(), 10_000);
        for window in [0..4, 5000..5004, 9996..10_000] {
            let got = reconstruct(&shares[window], 4, &mut rng).unwrap();
            assert!(eq(&got, &secret));
        }
        // Five shares, one of them altered: caught.
        let mut five: Vec<Share> = shares[100..105].to_vec();
        five[2].value += Scalar::ONE;
        assert_eq!(
            reconstruct(&five, 4, &mut rng).unwrap_err(),
            Error::InconsistentShares { threshold: 4 }
        );
    }

    #[test]
    fn threshold_one_shares_are_the_secret() {
        let mut rng = rng();
        let secret = SecretScalar::random(&mut rng);
        let shares = split(&secret, 1, &idx(1..=3), &mut rng).unwrap();
        for s in &shares {
            assert!(bool::from(s.value.ct_eq(&secret.0)));
        }
        assert!(eq(&reconstruct(&shares, 1, &mut rng).unwrap(), &secret));
    }

    #[test]
    fn fewer_than_t_shares_are_refused() {
        let mut rng = rng();
        let secret = SecretScalar::random(&mut rng);
        let shares = split(&secret, 4, &idx(1..=5), &mut rng).unwrap();
        assert_eq!(
            reconstruct(&shares[..3], 4, &mut rng).unwrap_err(),
            Error::TooFewShares {
                got: 3,
                threshold: 4
            }
        );
    }

    #[test]
    fn bad_thresholds_and_indices_are_refused() {
        let mut rng = rng();
        let secret = SecretScalar::random(&mut rng);
        assert_eq!(
            split(&secret, 0, &idx(1..=3), &mut rng).unwrap_err(),
            Error::InvalidThreshold {
                threshold: 0,
                shares: 3
            }
        );
        assert_eq!(
            split(&secret, 4, &idx(1..=3), &mut rng).unwrap_err(),
            Error::InvalidThreshold {
                threshold: 4,
                shares: 3
            }
        );
        let dup = [idx(1..=3), idx(3..=3)].concat();
        assert_eq!(
            split(&secret, 2, &dup, &mut rng).unwrap_err(),
            Error::DuplicateShareIndex { index: 3 }
        );
        assert_eq!(ShareIndex::new(0), Err(Error::ZeroShareIndex));
        assert_eq!(ShareIndex::for_participant(0).unwrap().get(), 1);
        assert_eq!(
            ShareIndex::for_participant(u32::MAX),
            Err(Error::ParticipantIdOutOfRange { id: u32::MAX })
        );
        let too_many: Vec<ShareIndex> = (1..=u32::try_from(MAX_SHARES + 1).unwrap())
            .map(|i| ShareIndex::new(i).unwrap())
            .collect();
        assert_eq!(
            split(&secret, 2, &too_many, &mut rng).unwrap_err(),
            Error::TooManyShares {
                shares: MAX_SHARES + 1,
                max: MAX_SHARES
            }
        );
    }

    #[test]
    fn duplicate_shares_are_refused_at_reconstruction() {
        let mut rng = rng();
        let secret = SecretScalar::random(&mut rng);
        let shares = split(&secret, 2, &idx(1..=3), &mut rng).unwrap();
        let dup = vec![shares[0].clone(), shares[1].clone(), shares[0].clone()];
        assert_eq!(
            reconstruct(&dup, 2, &mut rng).unwrap_err(),
            Error::DuplicateShareIndex { index: 1 }
        );
    }

    #[test]
    fn one_altered_share_among_more_than_t_is_caught() {
        let mut rng = rng();
        let secret = SecretScalar::random(&mut rng);
        let shares = split(&secret, 3, &idx(1..=5), &mut rng).unwrap();
        for victim in 0..5 {
            let mut bad = shares.clone();
            bad[victim].value += Scalar::ONE;
            assert_eq!(
                reconstruct(&bad, 3, &mut rng).unwrap_err(),
                Error::InconsistentShares { threshold: 3 },
                "altered share {victim}"
            );
        }
    }

    #[test]
    fn shares_of_a_higher_degree_polynomial_are_caught() {
        // t + 1 shares of a degree-t polynomial claim threshold t.
        let mut rng = rng();
        let secret = SecretScalar::random(&mut rng);
        let shares = split(&secret, 4, &idx(1..=4), &mut rng).unwrap();
        assert_eq!(
            reconstruct(&shares, 3, &mut rng).unwrap_err(),
            Error::InconsistentShares { threshold: 3 }
        );
    }

    #[test]
    fn reconstructor_is_reused_and_checks_its_holders() {
        let mut rng = rng();
        let holders = [2_u32, 9, 4, 100]
            .map(|i| ShareIndex::new(i).unwrap())
            .to_vec();
        let rec = Reconstructor::new(&holders, 3, &mut rng).unwrap();
        for _ in 0..5 {
            let secret = SecretScalar::random(&mut rng);
            let shares = split(&secret, 3, &holders, &mut rng).unwrap();
            assert!(eq(&rec.reconstruct(&shares).unwrap(), &secret));
            let mut swapped = shares.clone();
            swapped.swap(0, 1);
            assert_eq!(
                rec.reconstruct(&swapped).unwrap_err(),
                Error::ShareIndexMismatch {
                    position: 0,
                    expected: 2,
                    got: 9
                }
            );
            assert_eq!(
                rec.reconstruct(&shares[..3]).unwrap_err(),
                Error::LengthMismatch {
                    expected: 4,
                    got: 3
                }
            );
        }
    }

    #[test]
    fn share_encoding_round_trips_and_rejects_bad_bytes() {
        let mut rng = rng();
        let secret = SecretScalar::random(&mut rng);
        let shares = split(&secret, 2, &idx(1..=2), &mut rng).unwrap();
        let bytes = shares[1].to_bytes();
        assert_eq!(&bytes[..4], &[0, 0, 0, 2]);
        let back = Share::from_bytes(bytes.as_ref()).unwrap();
        assert!(bool::from(back.ct_eq(&shares[1])));

        assert_eq!(
            Share::from_bytes(&bytes[..35]).unwrap_err(),
            Error::InvalidLength {
                what: "share",
                expected: 36,
                got: 35
            }
        );
        let mut zero = *bytes;
        zero[..4].copy_from_slice(&[0; 4]);
        assert_eq!(Share::from_bytes(&zero).unwrap_err(), Error::ZeroShareIndex);
        let mut big = *bytes;
        big[4..].copy_from_slice(&[0xff; 32]);
        assert_eq!(
            Share::from_bytes(&big).unwrap_err(),
            Error::NonCanonicalScalar {
                what: "share value"
            }
        );
    }

    #[test]
    fn product_of_differences_matches_the_field_product() {
        let xs = [1_u32, u32::MAX, 7, 4_000_000_000, 2, 65_536, 3, 9, 11];
        for i in 0..xs.len() {
            let direct = xs
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .fold(Scalar::ONE, |acc, (_, xj)| {
                    acc * (Scalar::from(*xj) - Scalar::from(xs[i]))
                });
            assert_eq!(product_of_differences(&xs, i), direct, "i = {i}");
        }
    }

    #[test]
    fn commitments_bind_every_input() {
        let mut rng = rng();
        let secret = SecretScalar::random(&mut rng);
        let shares = split(&secret, 2, &idx(1..=3), &mut rng).unwrap();
        let c = ShareCommitment::compute(5, 9, 0, &shares[0]);
        assert!(c.opens_to(5, 9, 0, &shares[0]));
        assert!(!c.opens_to(6, 9, 0, &shares[0]));
        assert!(!c.opens_to(5, 8, 0, &shares[0]));
        assert!(!c.opens_to(5, 9, 1, &shares[0]));
        assert!(!c.opens_to(5, 9, 0, &shares[1]));
    }

    #[test]
    fn pow_matches_repeated_multiplication() {
        let b = Scalar::from(12345_u64);
        let mut acc = Scalar::ONE;
        for e in 0..40_u64 {
            assert_eq!(pow(&b, e), acc);
            acc *= b;
        }
    }
}
