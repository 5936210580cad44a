//! `veil`: the command-line entry point of the veil federated-learning service.
//!
//! - `veil server` / `veil client`: the service over QUIC (veil-net);
//! - `veil certs`: a development CA, certificates, identity keys, roster;
//! - `veil privacy`: plan, calibrate and audit privacy budgets;
//! - `veil predict`: score a CSV with a model checkpoint.
//!
//! - `veil simulate`: a whole federated training run on this machine.
#![forbid(unsafe_code)]

mod certs;
mod config;
mod failure;
mod learning;
mod predict;
mod privacy;
mod serve;
mod simulate;

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
    /// clients on loopback QUIC, on the shipped data set by default.
    Simulate(Box<simulate::SimulateArgs>),
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
    /// Score a CSV with a model checkpoint: accuracy, ROC-AUC and the
    /// confusion matrix, or each row's class.
    Predict(predict::PredictArgs),
}

/// Logs go to stderr; `RUST_LOG` filters them (else `default`).
fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Prints the result; a failure exits with its class's code. A reader
/// that closed the pipe (`veil privacy ledger F | head -2`) ends the
/// command quietly, with success.
fn report<E: Into<failure::Failure>>(result: Result<String, E>) -> ExitCode {
    match result.map_err(Into::into) {
        Ok(text) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match writeln!(out, "{text}").and_then(|()| out.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    eprintln!("error: cannot write the output: {e}");
                    ExitCode::from(3)
                }
                _ => ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Simulate(args) => {
            init_logging("warn");
            report(simulate::run(&args))
        }
        Command::Server(args) => {
            init_logging("info");
            report(serve::server(&args))
        }
        Command::Client(args) => {
            init_logging("info");
            report(serve::client(&args))
        }
        Command::Certs(command) => report(certs::run(&command)),
        Command::Predict(args) => report(predict::run(&args)),
        Command::Privacy(command) => report(privacy::run(&command).map_err(|e| e.to_string())),
    }
}
