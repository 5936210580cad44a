//! veil-net: the QUIC transport of veil and its server and client runtimes.
//!
//! - [`tls`]: TLS 1.3 over QUIC (quinn, rustls with ring), mutual TLS
//!   against the deployment CA, admission by the roster at the handshake,
//!   ALPN `veil/1`, connection limits and idle timeouts;
//! - [`frame`]: frames on the one bidirectional stream of a connection,
//!   each capped by the round config before it is buffered;
//! - [`server`]: the pool of authenticated clients, Poisson sampling of a
//!   cohort per round, the [`veil_secagg::ServerSession`] driven over the
//!   connections, and a release that happens only after the privacy ledger,
//!   the model checkpoint and the counters are on disk ([`state`]);
//! - [`client`]: connect with backoff, receive the task and config, compute
//!   the input from an [`client::UpdateSource`], drive the
//!   [`veil_secagg::ClientSession`];
//! - [`pki`] and [`deployment`]: the development CA (rcgen), PEM loading,
//!   the roster file and identity keys.
//!
//! This crate moves bytes and time; every protocol decision is veil-secagg's
//! and every privacy decision veil-dp's. The transport is specified in
//! `protocol/SPEC.md` §12.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod client;
pub mod client_state;
mod conn;
pub mod deployment;
mod error;
pub mod files;
pub mod frame;
#[doc(hidden)]
pub mod fuzzing;
pub mod local;
pub mod pki;
pub mod server;
pub mod state;
pub mod synthetic;
pub mod tls;

pub use error::{ConfigError, ConnectionError, Error, Result};
