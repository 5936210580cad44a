//! L2 clipping of updates.

use crate::error::{Result, check_positive, check_range};

/// Scales `update` so its L2 norm is at most `clip_norm`; returns the norm
/// before clipping (for adaptive clipping). A norm already within the bound
/// leaves the update unchanged.
///
/// # Errors
/// [`crate::Error::InvalidParameter`] unless `clip_norm` is finite and
/// positive, or if the update holds a non-finite value.
#[expect(
    clippy::cast_possible_truncation,
    reason = "a scale factor in (0, 1) rounded to f32 is the intent"
)]
pub fn clip_l2(update: &mut [f32], clip_norm: f64) -> Result<f64> {
    let c = check_positive("clip-norm", clip_norm)?;
    let norm = l2_norm(update)?;
    if norm > c {
        let scale = (c / norm) as f32;
        for x in update.iter_mut() {
            *x *= scale;
        }
        // f32 rounding can leave the norm a hair above c: shrink once more.
        let after = l2_norm(update)?;
        if after > c {
            let fix = (c / after) as f32 * (1.0 - f32::EPSILON);
            for x in update.iter_mut() {
                *x *= fix;
            }
        }
    }
    Ok(norm)
}

/// Clips each named tensor to its own bound; returns the norms before.
///
/// # Errors
/// As [`clip_l2`].
pub fn clip_per_tensor(tensors: &mut [(&str, &mut [f32], f64)]) -> Result<Vec<f64>> {
    tensors.iter_mut().map(|(_, t, c)| clip_l2(t, *c)).collect()
}

/// The L2 norm, accumulated in f64.
///
/// # Errors
/// [`crate::Error::InvalidParameter`] if a value is NaN or infinite.
pub fn l2_norm(v: &[f32]) -> Result<f64> {
    let sum: f64 = v.iter().map(|x| f64::from(*x) * f64::from(*x)).sum();
    check_range("update", sum, 0.0, f64::MAX, false, "finite values").map(f64::sqrt)
}
