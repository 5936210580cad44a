//! `veil`: the command-line entry point of the veil federated-learning service.
//!
//! - `veil server` / `veil client`: the service over QUIC (veil-net);
//! - `veil certs`: a development CA, certificates, identity keys, roster;
//! - `veil privacy`: plan, calibrate and audit privacy budgets.
//!
//! `veil simulate` says plainly that it is not yet available and exits with
//! status 2 until the learning crate lands.
#![forbid(unsafe_code)]

mod certs;
mod config;
mod privacy;
mod serve;

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
    /// Run the aggregation server.
    Server(serve::ServerArgs),
    /// Run a client.
    Client(serve::ClientArgs),
    /// Development certificates and the deployment roster.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Plan, calibrate and audit privacy budgets.
    #[command(subcommand)]
    Privacy(privacy::PrivacyCommand),
}

/// Logs go to stderr; `RUST_LOG` filters them (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn report(result: Result<String, String>) -> ExitCode {
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate => {
            eprintln!(
                "veil simulate: not yet available in this version. The protocol, the privacy \
                 accountant and the QUIC service (`veil server`, `veil client`) are in place; \
                 training arrives with the learning crate."
            );
            ExitCode::from(2)
        }
        Command::Server(args) => {
            init_logging();
            report(serve::server(&args))
        }
        Command::Client(args) => {
            init_logging();
            report(serve::client(&args))
        }
        Command::Certs(command) => report(certs::run(&command)),
        Command::Privacy(command) => report(privacy::run(&command).map_err(|e| e.to_string())),
    }
}
