//! veil-secagg: the secure-aggregation protocol (SecAgg and SecAgg+), sans-IO.
//!
//! This crate is a placeholder in the workspace layout: it holds no code yet.
//! It will hold the messages and their canonical codec, the neighbour graph, ring arithmetic and bit packing, and the `ClientSession` and `ServerSession` state machines, built on veil-crypto. It will never touch sockets, the clock or an OS RNG: inputs, time and a `CryptoRng` are passed in. See protocol/SPEC.md.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
