//! veil-learn: the learning side of veil, on candle (CPU).
//!
//! - [`dataset`]: numeric CSV with a `label` column, fixed test splits,
//!   standardisation;
//! - [`partition`]: IID and Dirichlet(α) non-IID splits among clients;
//! - [`model`]: logistic regression and MLPs, flattened to and restored from
//!   one `f32` vector in a documented order (the secure-aggregation
//!   vector);
//! - [`train`]: local SGD or Adam, returning the model delta;
//! - [`dp_sgd`]: example-level DP-SGD (per-example clipping and noise);
//! - [`server_opt`]: FedAvg, FedAdam, FedYogi on the aggregated delta;
//! - [`eval`]: loss, accuracy and ROC-AUC;
//! - [`checkpoint`]: safetensors checkpoints, written atomically.
//!
//! No network, no clock; randomness comes from seeds passed in.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod checkpoint;
pub mod dataset;
pub mod dp_sgd;
mod error;
pub mod eval;
pub mod model;
pub mod partition;
pub mod server_opt;
pub mod train;

pub use error::{Error, Result};
