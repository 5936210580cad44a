//! veil-round: the round coordinator of veil's server, sans-IO.
//!
//! One level above veil-secagg's [`veil_secagg::ServerSession`], the
//! [`Coordinator`] runs a deployment's rounds: it keeps the pool of
//! connected clients, samples each round's cohort (Poisson, as the
//! accountant assumes), takes a fresh round id, sends the task and the
//! round's messages, and on completion turns the sum into a mean update, a
//! ledger line and the next model, in the order SPEC.md §12.5 fixes.
//!
//! Like the session it drives, it is a plain state machine. Input: a client
//! that connected or left, a received message, a deadline that passed,
//! each with `now` passed in. Output: [`Action`]s (`poll_action`) to carry
//! out in order: persist the counters, send a message, disconnect a
//! client, persist a released round; and the next deadline
//! (`poll_timeout`). It never touches a socket, the clock or the file
//! system, so the QUIC server (veil-net), the in-memory transport and any
//! test drive the very same rounds, as quinn drives quinn-proto.
//!
//! - [`plan`]: what every round does ([`RoundPlan`]), and the one place a
//!   cohort's SecAgg parameters are chosen ([`SecAggPlan::parameters`]);
//! - [`record`]: what a round leaves behind (counters, the round record,
//!   the report an observer sees);
//! - [`coordinator`]: the state machine.
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

pub mod coordinator;
mod error;
pub mod plan;
pub mod record;

pub use coordinator::{Action, Coordinator, KeepModel, Release, Resume, ServerModel, StopReason};
pub use error::{Error, ModelError, Result};
pub use plan::{EvaluationPlan, PrivacyPlan, RoundPlan, SecAggPlan, StatisticsPlan};
pub use record::{
    Counters, EvaluationRecord, RoundKind, RoundRecord, RoundReport, StatisticsRecord,
};
