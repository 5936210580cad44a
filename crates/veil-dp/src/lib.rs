//! veil-dp: differential privacy for federated updates.
//!
//! This crate is a placeholder in the workspace layout: it holds no code yet.
//! It will hold clipping, quantisation with stochastic rounding, distributed integer noise (Skellam, discrete Gaussian), the RDP and PLD privacy accountants, calibration, and the privacy ledger. It knows nothing of networks or candle.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
