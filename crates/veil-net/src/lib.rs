//! veil-net: the QUIC service.
//!
//! This crate is a placeholder in the workspace layout: it holds no code yet.
//! It will move bytes and time only: QUIC (quinn) with TLS 1.3 and mutual authentication (rustls), framing with size caps from the round config, and the server and client runtimes that drive veil-secagg's sessions. No protocol decision lives here.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
