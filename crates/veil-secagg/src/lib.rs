//! veil-secagg: the secure-aggregation protocol of veil (SecAgg and SecAgg+),
//! sans-IO.
//!
//! `n` clients hold vectors in `Z_2^b`; the server learns their sum and
//! nothing else, and still completes the round when clients drop out
//! (Bonawitz et al., CCS 2017; Bell et al., CCS 2020). With degree
//! `k = n - 1` every client neighbours every other (classic SecAgg); with a
//! smaller even `k` each client masks with and shares secrets among `k`
//! neighbours of a Harary graph (SecAgg+), so its cost grows with `k`, not
//! `n`.
//!
//! [`ClientSession`] and [`ServerSession`] are plain state machines. Input:
//! a received message (bytes, and for the server its sender), a deadline that
//! passed, a disconnect or an operator abort, each with `now` passed in.
//! Output: messages to send (`poll_transmit`), the next deadline
//! (`poll_timeout`) and events (`poll_event`). This crate never touches a
//! socket, the clock, the file system or an OS random number generator:
//! randomness arrives as a [`rand_core::CryptoRng`].
//!
//! The protocol is specified in `protocol/SPEC.md` §9–§11; message layouts
//! in §10. Primitives come from `veil-crypto`.
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

mod client;
mod codec;
pub mod config;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod graph;
pub mod messages;
pub mod packing;
mod phase;
mod server;
#[cfg(feature = "test-util")]
pub mod sim;
pub mod site_floor;
mod tags;
#[cfg(feature = "test-util")]
#[doc(hidden)]
pub mod test_vectors;

pub use client::{ClientEvent, ClientSession};
pub use config::{
    Recommendation, Roster, RoundConfig, SessionId, complete_graph_parameters, recommend_parameters,
};
pub use error::{DecodeErrorKind, Error, Result, Violation};
pub use phase::Phase;
pub use server::{RoundResult, ServerEvent, ServerSession};
pub use site_floor::SiteFloor;
pub use tags::FloorRefusal;
