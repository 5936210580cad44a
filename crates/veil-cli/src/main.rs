//! `veil`: the command-line entry point of the veil federated-learning service.
//!
//! Only the command skeleton exists so far. Each subcommand arrives with the
//! issue that builds it; until then it says so plainly and exits with status 2.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Federated learning in which the server learns only the differentially
/// private sum of the clients' updates.
#[derive(Debug, Parser)]
#[command(name = "veil", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a whole federated training job on this machine: a server and its
    /// clients on loopback, on the shipped data set.
    Simulate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate => {
            eprintln!(
                "veil simulate: not yet available in this version. The cryptographic \
                 primitives are in place (cargo test --workspace checks them); the \
                 protocol, transport and training arrive with their own releases."
            );
            ExitCode::from(2)
        }
    }
}
