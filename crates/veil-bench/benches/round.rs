//! Whole in-memory rounds next to their lower bound, measured in one run.
//!
//! `cargo bench -p veil-bench --bench round` (add `-- --quick` for the
//! first row only)
//!
//! For each (n, d) and dropout rate, one round runs through the in-memory
//! simulator on one core (all clients and the server in this process). The
//! dropped clients crash after sending their shares, so the server must
//! reconstruct their mask-agreement secrets and remove their pairwise masks.
//!
//! The floor is the unavoidable PRG work, timed right after the round with
//! the same fused routine: per client, k + 1 mask expansions of d elements;
//! for the server, summing the survivors' vectors plus one expansion per
//! survivor's self mask and per (survivor, dropped neighbour) pair.
//! Ratio = measured / floor. Bytes are everything a client sent, as a
//! multiple of a plain f32 vector (4d bytes).

use std::time::{Duration, Instant};

use veil_bench::floor::Floor;
use veil_crypto::prg::RingBits;
use veil_secagg::Phase;
use veil_secagg::sim::{SimParams, Simulation};

struct Row {
    n: usize,
    d: u32,
    k: u32,
    t: u32,
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rows = [
        Row {
            n: 10,
            d: 1_000_000,
            k: 9,
            t: 6,
        },
        Row {
            n: 100,
            d: 100_000,
            k: 10,
            t: 6,
        },
        Row {
            n: 100,
            d: 1_000_000,
            k: 10,
            t: 6,
        },
        Row {
            n: 1000,
            d: 10_000,
            k: 10,
            t: 6,
        },
        Row {
            n: 1000,
            d: 100_000,
            k: 10,
            t: 6,
        },
    ];
    let bits = 32;
    let ring = RingBits::new(bits).unwrap();
    println!(
        "| n | d | k | t | dropout | round s | per client ms | client floor ms | client ratio | server ms | server floor ms | server ratio | bytes/client ÷ 4d |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for row in rows.iter().take(if quick { 1 } else { rows.len() }) {
        for dropout in [0.0, 0.1] {
            let mut sim = Simulation::new(SimParams {
                n: row.n,
                k: row.k,
                t: row.t,
                d: row.d,
                bits,
                seed: 1,
                sparse_ids: false,
                max_corrupt: 0,
            });
            let dropped = (row.n as f64 * dropout).round() as usize;
            // Spread the dropped clients over the ring of ids.
            let ids = sim.config.participants.clone();
            let victims: Vec<u32> = (0..dropped)
                .map(|i| ids[i * row.n / dropped.max(1)])
                .collect();
            for &v in &victims {
                sim.crash(v, Phase::MaskedInput);
            }
            let graph = sim.config.graph();
            let started = Instant::now();
            let outcome = sim.run();
            let wall = started.elapsed();
            let result = outcome.result.expect("the benchmark round completes");
            assert_eq!(result.included.len(), row.n - dropped);

            let survivors = row.n - dropped;
            let floor = Floor::measure(row.k, row.d as usize, ring, &graph, survivors, &victims)
                .expect("a valid ring");
            let (client_floor, server_floor) = (floor.client, floor.server);
            let per_client = outcome.costs.client_time / row.n as u32;
            let sent: usize = outcome.costs.sent_by.values().sum();
            let bytes_ratio = sent as f64 / row.n as f64 / (4.0 * f64::from(row.d));
            println!(
                "| {} | {} | {} | {} | {:.0} % | {:.2} | {} | {} | {:.2} | {} | {} | {:.2} | {:.3} |",
                row.n,
                row.d,
                row.k,
                row.t,
                dropout * 100.0,
                wall.as_secs_f64(),
                ms(per_client),
                ms(client_floor),
                per_client.as_secs_f64() / client_floor.as_secs_f64(),
                ms(outcome.costs.server_time),
                ms(server_floor),
                outcome.costs.server_time.as_secs_f64() / server_floor.as_secs_f64(),
                bytes_ratio,
            );
        }
    }
}
