//! veil-dp: differential privacy for federated updates.
//!
//! - [`rdp`]: the Rényi-DP accountant of the Poisson-subsampled Gaussian
//!   mechanism, with exact fractional orders, and its conversion to
//!   `(ε, δ)`;
//! - [`distributed`]: RDP of the sum of clients' discrete-Gaussian noise
//!   shares (Kairouz, Liu, Steinke 2021), including the sensitivity that
//!   rounding adds;
//! - [`subsample`]: amplification by Poisson sampling for any RDP curve
//!   (Zhu, Wang 2019, Theorem 6), for the distributed mechanism;
//! - [`calibrate`]: the smallest noise multiplier that meets a target
//!   `(ε, δ)`;
//! - [`clip`]: L2 clipping, flat and per named tensor;
//! - [`dp_sgd`]: the example-level DP-SGD step (per-example clipping and
//!   noise);
//! - [`quantize`]: unbiased (and conditional) stochastic rounding to `Z_2^b`, the centred
//!   read-back of a sum, and the choice of `b`;
//! - [`noise`]: continuous Gaussian noise and the exact discrete Gaussian
//!   sampler for distributed noise;
//! - [`plan`]: a deployment's privacy plan: each client's noise, what a
//!   round spends, the ring width (the one place the per-client `σ` is
//!   derived);
//! - [`ledger`]: the append-only privacy ledger, replayable and refusing
//!   rounds over budget; it produces the lines its owner appends and syncs
//!   before a round is released.
//!
//! The crate performs no I/O, reads no clock, and draws randomness only from a [`rand_core::CryptoRng`] passed in.
//! Every privacy parameter is checked finite and in range before use; a bad
//! one is an [`Error::InvalidParameter`] naming it, never a silently wrong
//! epsilon.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation
)]

pub mod calibrate;
pub mod clip;
pub mod contribution;
pub mod distributed;
pub mod dp_sgd;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod ledger;
pub mod noise;
pub mod plan;
pub mod pld;
pub mod quantize;
pub mod rdp;
pub mod subsample;

pub use error::{Error, Result};
