//! One veil round, measured: in memory (`veil_secagg::sim`: clients one
//! after another, the server's unmasking on `--server-threads`) or
//! over real QUIC on loopback (`veil-net`'s server and client runtimes).

use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use veil_crypto::prg::RingBits;
use veil_secagg::Phase;
use veil_secagg::sim::{SimParams, Simulation};

use veil_bench::floor::Floor;

/// When the dropped clients stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Stage {
    /// Before sending their masked input (their input is not in the sum).
    Before,
    /// Right after sending it (their input is in the sum; the server must
    /// recover their self masks).
    After,
}

/// One in-memory round: the cohort, the vector, the graph, who drops and
/// when, and the server's threads (the arguments of `veil-bench one`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct Shape {
    /// Clients.
    #[arg(long)]
    pub(crate) n: usize,
    /// Vector length.
    #[arg(long)]
    pub(crate) d: u32,
    /// Neighbours of each client.
    #[arg(long)]
    pub(crate) k: u32,
    /// Threshold.
    #[arg(long)]
    pub(crate) t: u32,
    /// Colluders the round withstands (`c`; SPEC.md §9.3: `t >= c + 2`,
    /// and the consistency quorum `floor((n + c) / 2) + 1`).
    #[arg(long, default_value_t = 0)]
    pub(crate) c: u32,
    /// Ring width in bits.
    #[arg(long, default_value_t = 32)]
    pub(crate) bits: u32,
    /// Clients that drop.
    #[arg(long, default_value_t = 0)]
    pub(crate) drop: usize,
    /// When they drop.
    #[arg(long, value_enum, default_value_t = Stage::After)]
    pub(crate) stage: Stage,
    /// Threads the server's final unmasking may use.
    #[arg(long, default_value_t = 1)]
    pub(crate) server_threads: usize,
}

impl Shape {
    /// The command-line arguments that give this shape to `veil-bench one`.
    pub(crate) fn to_args(self) -> Vec<String> {
        let stage = match self.stage {
            Stage::Before => "before",
            Stage::After => "after",
        };
        [
            ("--n", self.n.to_string()),
            ("--d", self.d.to_string()),
            ("--k", self.k.to_string()),
            ("--t", self.t.to_string()),
            ("--c", self.c.to_string()),
            ("--bits", self.bits.to_string()),
            ("--drop", self.drop.to_string()),
            ("--stage", stage.to_owned()),
            ("--server-threads", self.server_threads.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect()
    }
}

/// What one round measured.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Measured {
    /// All the round's work: the CPU time of every thread of this process
    /// during the round (the clients run one after another; the server's
    /// unmasking may use several threads, and all their time counts).
    pub(crate) round_s: f64,
    /// The round's latency with every client on its own machine and a
    /// free network: server time plus each phase's slowest client.
    pub(crate) latency_s: f64,
    /// Mean time inside one client's session.
    pub(crate) client_ms: f64,
    /// Time inside the server session.
    pub(crate) server_ms: f64,
    /// The floor of one client's work.
    pub(crate) client_floor_ms: f64,
    /// The floor of the server's work.
    pub(crate) server_floor_ms: f64,
    /// One client's public-key operations, timed alone (not in its floor).
    pub(crate) client_public_key_ms: f64,
    /// The server's public-key operations, timed alone (not in its floor).
    pub(crate) server_public_key_ms: f64,
    /// Bytes a client sent, averaged over all clients.
    pub(crate) bytes_per_client: f64,
    /// Bytes a client received, averaged over all clients.
    #[serde(default)]
    pub(crate) bytes_down_per_client: f64,
    /// Peak resident memory of this process.
    pub(crate) peak_rss_bytes: u64,
    /// Clients in the sum.
    pub(crate) included: usize,
    /// The released sum equals the sum of the included clients' inputs.
    pub(crate) correct: bool,
}

/// The ids the dropped clients have: spread over the ring of ids.
#[must_use]
pub(crate) fn victims(
    ids: &[veil_crypto::ParticipantId],
    drop: usize,
) -> Vec<veil_crypto::ParticipantId> {
    (0..drop)
        .filter_map(|i| ids.get(i * ids.len() / drop.max(1)).copied())
        .collect()
}

/// The peak resident set of this process (Linux `VmHWM`), or 0.
#[must_use]
pub(crate) fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One in-memory round with `drop` clients stopping at `stage`.
///
/// # Errors
/// If the round does not complete.
pub(crate) fn in_memory(shape: Shape) -> anyhow::Result<Measured> {
    let Shape {
        n,
        d,
        k,
        t,
        c,
        bits,
        drop,
        stage,
        server_threads,
    } = shape;
    let mut sim = Simulation::try_new(SimParams {
        n,
        k,
        t,
        d,
        bits,
        seed: 1,
        sparse_ids: false,
        max_corrupt: c,
    })
    .context("round parameters")?;
    let ids = sim.config.participants.clone();
    let victims = victims(&ids, drop);
    let crash_at = match stage {
        Stage::Before => Phase::MaskedInput,
        Stage::After => Phase::ConsistencyCheck,
    };
    for &v in &victims {
        sim.crash(v, crash_at);
    }
    let graph = sim.config.graph();
    let inputs = sim.inputs.clone();
    sim.set_server_threads(server_threads);
    let started = cpu_time::ProcessTime::now();
    let outcome = sim.run();
    let work = started.elapsed();
    let result = outcome.result.context("the round did not complete")?;
    let ring = RingBits::new(bits)?;
    let mut expected = vec![0_u64; d as usize];
    for id in &result.included {
        for (e, x) in expected.iter_mut().zip(&inputs[id]) {
            *e = ring.add(*e, *x);
        }
    }
    // The floor: survivors are the clients whose masked input arrived.
    let arrived = match stage {
        Stage::Before => n - victims.len(),
        Stage::After => n,
    };
    let gone: &[veil_crypto::ParticipantId] = match stage {
        Stage::Before => &victims,
        Stage::After => &[],
    };
    let floor = Floor::measure(k, d as usize, ring, &graph, arrived, gone)?;
    let sent: usize = outcome.costs.sent_by.values().sum();
    let received: usize = outcome.costs.received_by.values().sum();
    Ok(Measured {
        round_s: work.as_secs_f64(),
        latency_s: outcome.costs.critical_path().as_secs_f64(),
        client_ms: ms(outcome.costs.client_time) / n as f64,
        server_ms: ms(outcome.costs.server_time),
        client_floor_ms: ms(floor.client),
        server_floor_ms: ms(floor.server),
        client_public_key_ms: ms(floor.client_public_key),
        server_public_key_ms: ms(floor.server_public_key),
        bytes_per_client: sent as f64 / n as f64,
        bytes_down_per_client: received as f64 / n as f64,
        peak_rss_bytes: peak_rss(),
        included: result.included.len(),
        correct: result.sum == expected && result.included.len() == arrived,
    })
}

/// What one round over QUIC measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuicMeasured {
    /// The round's wall-clock time (`total_ms` in the server's
    /// `rounds.jsonl`).
    pub(crate) round_s: f64,
    /// Bytes the server received, per client.
    pub(crate) bytes_per_client: f64,
    /// The plan's ring width.
    pub(crate) bits: u32,
    /// The kept sum equals the sum of the included clients' synthetic
    /// updates, and the included set is the expected one.
    pub(crate) correct: bool,
}

/// One round over QUIC on loopback, all clients as tasks of this process
/// (every core). `drop` clients (the same ids as in memory) leave at
/// `stage`: they deliver their last message, close their connection and
/// stop ([`veil_net::client::Fault::LeaveAfter`]), as a client application
/// that quits there would; the server drops them when the connection ends.
///
/// # Errors
/// If the deployment or the round fails.
pub(crate) fn over_quic(
    n: usize,
    d: u32,
    complete_graph_threshold: Option<u32>,
    drop: usize,
    stage: Stage,
) -> anyhow::Result<QuicMeasured> {
    use veil_net::client::{Fault, run_client};
    use veil_net::local::LocalDeployment;
    use veil_net::server::{KeepModel, RoundPlan, SecAggPlan, bind, run_server};
    use veil_net::synthetic::SyntheticSource;
    use veil_secagg::messages::MessageType;

    let plan = RoundPlan {
        dimension: d,
        rounds: 1,
        sampling_rate: 1.0,
        min_clients: n,
        max_clients: n,
        start_delay: Duration::ZERO,
        phase_timeout: Duration::from_secs(600),
        secagg: SecAggPlan {
            expected_dropout: 0.1,
            corrupt_fraction: 0.05,
            complete_graph_threshold,
        },
        clip_norm: 1000.0,
        scale: 1024.0,
        privacy: None,
        keep_sums: true,
        training: None,
        evaluation: None,
        statistics: None,
    };
    let bits = plan.ring_bits()?;
    let dir = tempfile::tempdir()?;
    let deployment = LocalDeployment::generate(n)?;
    let ids: Vec<veil_crypto::ParticipantId> = (0..u32::try_from(n)?).collect();
    let leaving = victims(&ids, drop);
    let fault = match stage {
        Stage::Before => Fault::LeaveAfter(MessageType::ShareKeys),
        Stage::After => Fault::LeaveAfter(MessageType::MaskedInput),
    };
    let options =
        deployment.server_options(dir.path().join("state"), plan, Box::new(KeepModel), None);
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let endpoint = bind(&options)?;
        let addr = endpoint.local_addr()?;
        let server = tokio::spawn(run_server(options, endpoint, std::future::pending()));
        let mut tasks = Vec::new();
        for (i, client) in deployment.clients.iter().enumerate() {
            let mut options = deployment.client_options(i, addr, d)?;
            if leaving.contains(&u32::try_from(i)?) {
                options.fault = Some(fault);
            }
            let name = client.name.clone();
            tasks.push(tokio::spawn(async move {
                let mut source = SyntheticSource::new(&name);
                run_client(options, &mut source, std::future::pending()).await
            }));
        }
        let summary = server.await??;
        if summary.released_rounds != 1 {
            bail!("the QUIC round was not released");
        }
        for t in tasks {
            t.await??;
        }
        anyhow::Ok(())
    })?;
    let state = dir.path().join("state");
    let text = std::fs::read_to_string(state.join("rounds.jsonl"))?;
    let record: serde_json::Value =
        serde_json::from_str(text.lines().next().context("no round record")?)?;
    let total = record["total_ms"].as_f64().context("total_ms")?;
    let bytes = record["bytes_in"].as_f64().context("bytes_in")? / n as f64;
    let included: Vec<u32> = record["included"]
        .as_array()
        .context("included")?
        .iter()
        .map(|v| v.as_u64().and_then(|v| u32::try_from(v).ok()))
        .collect::<Option<_>>()
        .context("included ids")?;
    // Those that left before their masked input are out of the sum; those
    // that left after it are in.
    let expected_ids: Vec<u32> = match stage {
        Stage::Before => ids
            .iter()
            .copied()
            .filter(|i| !leaving.contains(i))
            .collect(),
        Stage::After => ids,
    };
    let mask = u64::MAX >> (64 - bits);
    let mut expected = vec![0_u64; d as usize];
    for &id in &included {
        let name = &deployment.clients[id as usize].name;
        for (e, k) in expected
            .iter_mut()
            .zip(veil_net::synthetic::integers(name, 1, d as usize))
        {
            *e = e.wrapping_add(k as u64) & mask;
        }
    }
    let kept: Vec<u64> = std::fs::read(state.join("sums/round-000001.u64le"))?
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default()))
        .collect();
    Ok(QuicMeasured {
        round_s: total / 1e3,
        bytes_per_client: bytes,
        bits,
        correct: included == expected_ids && kept == expected,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_round_is_measured_and_checked() {
        for (stage, included) in [(Stage::Before, 4), (Stage::After, 5)] {
            let m = in_memory(Shape {
                n: 5,
                d: 1000,
                k: 4,
                t: 3,
                c: 1,
                bits: 32,
                drop: 1,
                stage,
                server_threads: 1,
            })
            .unwrap();
            assert!(m.correct, "{stage:?}");
            assert_eq!(m.included, included);
            assert!(m.latency_s <= m.round_s && m.client_floor_ms > 0.0);
            // 4 bytes per element at b = 32, plus the protocol's messages.
            assert!(m.bytes_per_client > 3000.0, "{}", m.bytes_per_client);
        }
    }

    #[test]
    fn a_small_quic_round_with_leavers_is_measured_and_checked() {
        // `correct` checks the included set too: the two that left before
        // their masked input are out of the sum, the two that left after
        // it are in.
        for (drop, stage) in [(0, Stage::After), (2, Stage::Before), (2, Stage::After)] {
            let m = over_quic(6, 500, Some(4), drop, stage).unwrap();
            assert!(m.correct, "{drop} {stage:?}: {m:?}");
            assert!(m.round_s > 0.0 && m.bytes_per_client > 500.0, "{m:?}");
        }
    }

    #[test]
    fn victims_are_spread_over_the_ids() {
        let ids: Vec<veil_crypto::ParticipantId> = (1..=10).collect();
        let v = victims(&ids, 2);
        assert_eq!(v, vec![ids[0], ids[5]]);
        assert!(victims(&ids, 0).is_empty());
    }
}
