//! `veil`: the command-line entry point of the veil federated-learning service.
//!
//! Available: `veil privacy` (plan, calibrate and audit privacy budgets).
//! `veil simulate` says plainly that it is not yet available and exits with
//! status 2 until the transport and learning crates land.
#![forbid(unsafe_code)]

mod privacy;

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
    /// Plan, calibrate and audit privacy budgets.
    #[command(subcommand)]
    Privacy(privacy::PrivacyCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate => {
            eprintln!(
                "veil simulate: not yet available in this version. The cryptographic \
                 primitives, the secure-aggregation protocol and the privacy accountant are in \
                 place (cargo test --workspace checks them); the transport and training arrive \
                 with their own releases."
            );
            ExitCode::from(2)
        }
        Command::Privacy(command) => match privacy::run(&command) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
    }
}
