//! `veil-bench`: veil's secure-aggregation round side by side with Flower
//! 1.42's SecAgg+, and next to its own PRG floor (and that floor plus the
//! protocol's public-key operations), in one invocation on one machine (see
//! README, Performance).
//!
//! ```sh
//! cargo run --release -p veil-bench -- compare            # the full grid
//! cargo run --release -p veil-bench -- compare --no-flower --n 100 --d 100000
//! ```
//!
//! Every measured round runs in a fresh child process (this binary's `one`
//! subcommand, or Flower's script), so each peak memory is that round's.
//! veil and Flower alternate, repetition by repetition.

#![forbid(unsafe_code)]

mod flower;
mod report;
mod veil_round;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use veil_round::{Shape, Stage};

#[derive(Parser)]
#[command(
    name = "veil-bench",
    about = "veil's round against Flower's SecAgg+ and its own floor"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// The grid: veil (in memory, and over QUIC) and Flower, alternating.
    Compare(CompareArgs),
    /// One veil round in memory, as JSON (what `compare` runs per cell).
    One(Shape),
}

#[derive(clap::Args)]
struct CompareArgs {
    /// Numbers of clients.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 50, 100, 200])]
    n: Vec<usize>,
    /// Vector lengths.
    #[arg(long, value_delimiter = ',', default_values_t = [10_000, 100_000, 1_000_000])]
    d: Vec<u32>,
    /// Repetitions of each cell (median and spread are reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// The dropout rate of the dropout rows.
    #[arg(long, default_value_t = 0.1)]
    dropout: f64,
    /// Leave Flower out (no Python needed).
    #[arg(long)]
    no_flower: bool,
    /// Leave the QUIC column out.
    #[arg(long)]
    no_quic: bool,
    /// Where the Flower virtual environment lives.
    #[arg(long, default_value = "target/flower-venv")]
    venv: PathBuf,
    /// Where the Markdown table is written.
    #[arg(long, default_value = "target/veil-bench.md")]
    out: PathBuf,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Cmd::One(a) => {
            let m = veil_round::in_memory(a)?;
            println!("{}", serde_json::to_string(&m)?);
            Ok(())
        }
        Cmd::Compare(a) => compare(&a),
    }
}

/// One veil round in a child process.
fn veil_child(shape: Shape) -> anyhow::Result<report::VeilRun> {
    let out = Command::new(std::env::current_exe()?)
        .arg("one")
        .args(shape.to_args())
        .output()?;
    if !out.status.success() {
        bail!(
            "veil round failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn compare(a: &CompareArgs) -> anyhow::Result<()> {
    if !(0.0..1.0).contains(&a.dropout) || a.reps == 0 {
        bail!("--dropout must be in [0, 1) and --reps at least 1");
    }
    let bench_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench");
    let flower = if a.no_flower {
        None
    } else {
        Some(flower::Flower::setup(&bench_dir, &a.venv).context("setting up Flower")?)
    };
    // The server unmasks on every core, as `veil server` does.
    let server_threads = veil_net::server::all_cores();
    let mut table = report::Table::new(&report::machine());
    for &n in &a.n {
        // The recommended parameters for 10 % dropout and 5 % colluding
        // clients (SPEC.md §9.3): SecAgg+'s sparse graph where it exists,
        // else the complete graph with the smallest valid threshold.
        let rec = veil_net::server::SecAggPlan {
            expected_dropout: 0.1,
            corrupt_fraction: 0.05,
            complete_graph_threshold: None,
        }
        .parameters(n)?;
        let (k, t, c) = (rec.degree, rec.threshold, rec.max_corrupt);
        let complete = rec.complete.then_some(t);
        let dropped = (n as f64 * a.dropout).round() as usize;
        for &d in &a.d {
            let scenarios = [
                (0, Stage::After),
                (dropped, Stage::Before),
                (dropped, Stage::After),
            ];
            for (drop, stage) in scenarios {
                let mut cell = report::Cell::new(n, d, k, t, drop, stage);
                for rep in 0..a.reps {
                    eprintln!("n {n} d {d} drop {drop} {stage:?} rep {rep}: veil");
                    cell.veil.push(veil_child(Shape {
                        n,
                        d,
                        k,
                        t,
                        c,
                        bits: 32,
                        drop,
                        stage,
                        server_threads,
                    })?);
                    if let Some(f) = &flower {
                        eprintln!("n {n} d {d} drop {drop} {stage:?} rep {rep}: Flower");
                        cell.flower.push(f.round(n, d, k + 1, t, drop, stage)?);
                    }
                    if !a.no_quic {
                        eprintln!("n {n} d {d} drop {drop} {stage:?} rep {rep}: veil over QUIC");
                        cell.quic
                            .push(veil_round::over_quic(n, d, complete, drop, stage)?);
                    }
                }
                println!("{}", table.push(cell));
            }
        }
        // Bytes at b = 20 (one run per n, at the largest d).
        if let Some(&d) = a.d.last() {
            let m = veil_child(Shape {
                n,
                d,
                k,
                t,
                c,
                bits: 20,
                drop: 0,
                stage: Stage::After,
                server_threads,
            })?;
            table.note_b20(n, d, m.bytes_per_client);
        }
    }
    let text = table.render();
    if let Some(dir) = a.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&a.out, &text)?;
    println!("\n{text}\nwritten to {}", a.out.display());
    Ok(())
}
