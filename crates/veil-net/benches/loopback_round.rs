//! A whole round over real QUIC on loopback next to the in-memory engine,
//! measured in the same run (issue: veil-net, Benchmarks).
//!
//! `cargo bench -p veil-net --bench loopback_round` (defaults n = 100,
//! d = 100 000, 3 rounds; `VEIL_BENCH_N`, `VEIL_BENCH_D`, `VEIL_BENCH_ROUNDS`
//! override). The QUIC side is the real server runtime and 100 real client
//! runtimes as tasks of one process (mutual TLS, framing, the synthetic
//! update, quantisation, the model checkpoint and fsyncs included); the
//! in-memory side is `veil_secagg::sim` with the same n, k, t, d and b and
//! no transport. Both use every core of the machine they share.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::time::{Duration, Instant};

use veil_net::client::run_client;
use veil_net::local::LocalDeployment;
use veil_net::server::{KeepModel, RoundPlan, SecAggPlan, bind, run_server};
use veil_net::synthetic::SyntheticSource;
use veil_secagg::sim::{SimParams, Simulation};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n = usize::try_from(env("VEIL_BENCH_N", 100)).unwrap();
    let d = u32::try_from(env("VEIL_BENCH_D", 100_000)).unwrap();
    let rounds = env("VEIL_BENCH_ROUNDS", 3);
    let secagg = SecAggPlan {
        expected_dropout: 0.1,
        corrupt_fraction: 0.05,
        complete_graph_threshold: None,
    };
    let rec = secagg.parameters(n).unwrap();
    let plan = RoundPlan {
        dimension: d,
        rounds,
        sampling_rate: 1.0,
        min_clients: n,
        max_clients: n,
        start_delay: Duration::ZERO,
        phase_timeout: Duration::from_secs(120),
        secagg,
        clip_norm: 1000.0,
        scale: 1024.0,
        privacy: None,
        keep_sums: false,
        training: None,
        evaluation: None,
        statistics: None,
    };
    let bits = plan.ring_bits().unwrap();

    // --- in-memory engine, same parameters ---
    let mut sim_ms = Vec::new();
    for seed in 0..rounds {
        let sim = Simulation::new(SimParams {
            n,
            k: rec.degree,
            t: rec.threshold,
            d,
            bits,
            seed,
            sparse_ids: false,
            max_corrupt: rec.max_corrupt,
        });
        let start = Instant::now();
        let outcome = sim.run();
        sim_ms.push(start.elapsed().as_secs_f64() * 1e3);
        assert!(outcome.result.is_some());
    }

    // --- real QUIC on loopback ---
    let dir = tempfile::tempdir().unwrap();
    let deployment = LocalDeployment::generate(n).unwrap();
    let options =
        deployment.server_options(dir.path().join("state"), plan, Box::new(KeepModel), None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let wall = rt.block_on(async {
        let endpoint = bind(&options).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let server = tokio::spawn(run_server(options, endpoint, std::future::pending()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (i, client) in deployment.clients.iter().enumerate() {
            let options = deployment.client_options(i, addr, d).unwrap();
            let name = client.name.clone();
            tasks.push(tokio::spawn(async move {
                let mut source = SyntheticSource::new(&name);
                run_client(options, &mut source, std::future::pending())
                    .await
                    .unwrap()
            }));
        }
        let summary = server.await.unwrap().unwrap();
        assert_eq!(summary.released_rounds, rounds);
        for t in tasks {
            t.await.unwrap();
        }
        start.elapsed()
    });

    let text = std::fs::read_to_string(dir.path().join("state/rounds.jsonl")).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut quic_ms: Vec<f64> = records
        .iter()
        .map(|r| r["total_ms"].as_f64().unwrap())
        .collect();
    let per_client = |field: &str| {
        records
            .iter()
            .map(|r| r[field].as_f64().unwrap() / n as f64)
            .sum::<f64>()
            / records.len() as f64
    };
    let quic = median(&mut quic_ms);
    let sim = median(&mut sim_ms);
    let packed = (f64::from(d) * f64::from(bits) / 8.0).ceil();
    println!(
        "loopback round: n = {n}, d = {d}, k = {}, t = {}, b = {bits}, {rounds} rounds, {} cores",
        rec.degree,
        rec.threshold,
        veil_net::server::all_cores()
    );
    println!();
    println!(
        "| engine | round latency (median) | client → server per client | server → client per client |"
    );
    println!("|---|---|---|---|");
    println!(
        "| in-memory (veil_secagg::sim) | {sim:.0} ms | {packed:.0} B masked input + keys/shares | — |"
    );
    println!(
        "| QUIC loopback (veil-net) | {quic:.0} ms | {:.0} B frames, {:.0} B UDP | {:.0} B frames, {:.0} B UDP |",
        per_client("bytes_in"),
        per_client("udp_bytes_in"),
        per_client("bytes_out"),
        per_client("udp_bytes_out"),
    );
    println!();
    println!(
        "QUIC / in-memory latency: {:.2}x; UDP / frame bytes upstream: {:.3}; whole run incl. connection setup: {:.1} s",
        quic / sim,
        per_client("udp_bytes_in") / per_client("bytes_in"),
        wall.as_secs_f64()
    );
}
