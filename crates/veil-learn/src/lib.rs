//! veil-learn: federated learning with candle.
//!
//! This crate is a placeholder in the workspace layout: it holds no code yet.
//! It will hold CSV datasets, partitioning (IID, Dirichlet), models, local training, flatten/unflatten of model parameters, the server optimisers (FedAvg, FedAdam, FedYogi), evaluation and safetensors checkpoints.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
