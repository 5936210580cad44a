//! The measuring side of `veil-bench`, shared by its binary and its round
//! benchmark: [`floor`], the cost floor of a round. Benchmark timing code
//! lives here, not in the protocol crate.

pub mod floor;
