//! End-to-end rounds over real QUIC on 127.0.0.1, with the `veil` binary as
//! separate server and client processes (issue: veil-net).
//!
//! Every client sends the deterministic synthetic update of
//! `veil_net::synthetic`, so each released sum (kept by the server under
//! `sums/`) is compared with the sum recomputed here over the clients the
//! server reports as included. Waits are liveness bounds, not timings.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

const VEIL: &str = env!("CARGO_BIN_EXE_veil");
const LIVENESS: Duration = Duration::from_secs(120);

struct Deployment {
    dir: tempfile::TempDir,
    clients: Vec<String>,
    port: u16,
}

fn veil(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(VEIL)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "veil {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct ServerSettings {
    max_connections: usize,
    dimension: u32,
    rounds: u64,
    phase_timeout_ms: u64,
    threshold: u32,
    min_clients: usize,
    privacy: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            max_connections: 100,
            dimension: 300,
            rounds: 3,
            phase_timeout_ms: 10_000,
            threshold: 0,
            min_clients: 3,
            privacy: false,
        }
    }
}

/// A client's keys made the way a site makes them: `veil certs keygen` (its
/// private keys never leave it), then `veil certs enroll` from its public
/// files alone, into `dir`'s roster (the CA signs its request into
/// `dir/NAME.pem`).
fn client_keys(root: &Path, dir: &str, name: &str) {
    veil(root, &["certs", "keygen", "--dir", dir, "--name", name]);
    veil(
        root,
        &[
            "certs",
            "enroll",
            "--dir",
            dir,
            "--client",
            name,
            "--identity",
            &format!("{dir}/{name}.identity.pub"),
            "--csr",
            &format!("{dir}/{name}.csr"),
        ],
    );
}

impl Deployment {
    fn new(n: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        veil(dir.path(), &["certs", "init", "--dir", "certs"]);
        veil(
            dir.path(),
            &["certs", "issue", "--dir", "certs", "--server", "localhost"],
        );
        let clients: Vec<String> = (1..=n).map(|i| format!("client-{i}")).collect();
        for c in &clients {
            client_keys(dir.path(), "certs", c);
        }
        Self {
            dir,
            clients,
            port: free_port(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write_server_config(&self, s: &ServerSettings) {
        let threshold = if s.threshold > 0 {
            format!("complete_graph_threshold = {}", s.threshold)
        } else {
            format!("complete_graph_threshold = {}", self.clients.len() / 2 + 1)
        };
        let privacy = if s.privacy {
            "[privacy]\nnoise_multiplier = 1.0\ndelta = 1e-5\nbudget = 50.0\n"
        } else {
            ""
        };
        let text = format!(
            r#"listen = "127.0.0.1:{port}"
state_dir = "state"
[tls]
ca = "certs/ca.pem"
cert = "certs/server.pem"
key = "certs/server.key"
roster = "certs/roster.toml"
[rounds]
dimension = {d}
rounds = {rounds}
sampling_rate = 1.0
min_clients = {min}
max_clients = 100
start_delay_ms = 5000
phase_timeout_ms = {timeout}
clip_norm = 100.0
scale = 1024.0
keep_sums = true
[secagg]
{threshold}
{privacy}
[limits]
idle_timeout_ms = 3000
handshake_timeout_ms = 3000
max_connections = {max_connections}
unmask_threads = 2
"#,
            max_connections = s.max_connections,
            port = self.port,
            d = s.dimension,
            rounds = s.rounds,
            min = s.min_clients,
            timeout = s.phase_timeout_ms,
        );
        std::fs::write(self.path().join("server.toml"), text).unwrap();
    }

    fn write_client_config(&self, name: &str, cert_dir: &str) {
        let text = format!(
            r#"server = "127.0.0.1:{port}"
server_name = "localhost"
identity = "{cert_dir}/{name}.identity"
idle_timeout_ms = 2000
[tls]
ca = "certs/ca.pem"
cert = "{cert_dir}/{name}.pem"
key = "{cert_dir}/{name}.key"
roster = "certs/roster.toml"
[backoff]
initial_ms = 100
max_ms = 1000
connect_timeout_ms = 1000
max_attempts = 100
"#,
            port = self.port
        );
        std::fs::write(self.path().join(format!("{name}.toml")), text).unwrap();
    }

    fn spawn(&self, args: &[&str], log: &str) -> Child {
        let log = std::fs::File::create(self.path().join(log)).unwrap();
        Command::new(VEIL)
            .args(args)
            .current_dir(self.path())
            .env("RUST_LOG", "veil_net=debug,veil_round=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn spawn_server(&self) -> Child {
        self.spawn(&["server", "--config", "server.toml"], "server.log")
    }

    fn spawn_client(&self, name: &str) -> Child {
        if !self.path().join(format!("{name}.toml")).exists() {
            self.write_client_config(name, "certs");
        }
        self.spawn(
            &["client", "--config", &format!("{name}.toml")],
            &format!("{name}.log"),
        )
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    fn rounds(&self) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.path().join("state/rounds.jsonl")).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Polls `cond` until it holds; on a liveness failure, shows the logs.
    fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            if start.elapsed() > LIVENESS {
                panic!(
                    "gave up waiting for {what}; server log:\n{}",
                    self.log("server.log")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_exit(&self, child: &mut Child, what: &str) -> (bool, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut out = String::new();
                if let Some(stdout) = child.stdout.take() {
                    for line in BufReader::new(stdout).lines() {
                        out.push_str(&line.unwrap());
                        out.push('\n');
                    }
                }
                return (status.success(), out);
            }
            if start.elapsed() > LIVENESS {
                let _ = child.kill();
                panic!(
                    "{what} did not exit; server log:\n{}",
                    self.log("server.log")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for every client to exit successfully.
    fn wait_clients_ok(&self, clients: &mut [Child]) {
        for child in clients {
            let (ok, _) = self.wait_exit(child, "client");
            assert!(
                ok,
                "a client failed; server log:\n{}",
                self.log("server.log")
            );
        }
    }

    /// The participant id of each client name (roster order: client-1 is 0).
    fn name_of(&self, id: u64) -> &str {
        &self.clients[usize::try_from(id).unwrap()]
    }

    /// Checks a released round's kept sum against the synthetic updates of
    /// the clients it includes.
    fn check_sum(&self, record: &Value, dimension: usize) {
        let training_round = record["training_round"].as_u64().unwrap();
        let bits = record["ring_bits"].as_u64().unwrap();
        let mask = u64::MAX >> (64 - bits);
        let mut expected = vec![0_u64; dimension];
        for id in record["included"].as_array().unwrap() {
            let name = self.name_of(id.as_u64().unwrap());
            for (e, k) in expected.iter_mut().zip(veil_net::synthetic::integers(
                name,
                training_round,
                dimension,
            )) {
                *e = e.wrapping_add(k as u64) & mask;
            }
        }
        let bytes = std::fs::read(
            self.path()
                .join(format!("state/sums/round-{training_round:06}.u64le")),
        )
        .unwrap();
        let got: Vec<u64> = bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(got, expected, "round {training_round}: released sum");
    }
}

/// `veil predict --json` of the server's checkpoint on `csv` (in the
/// deployment's directory).
/// `veil predict --json` on the run's checkpoint and `csv` (in the
/// deployment's directory), which must succeed: its JSON.
fn predict_json(dep: &Deployment, csv: &str) -> Value {
    let out = predict_output(dep, csv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Writes `rows` under `header` as `csv` in the deployment's directory.
fn write_rows(dep: &Deployment, csv: &str, header: &str, rows: &[String]) {
    std::fs::write(
        dep.path().join(csv),
        format!("{header}\n{}\n", rows.join("\n")),
    )
    .unwrap();
}

fn predict_output(dep: &Deployment, csv: &str) -> std::process::Output {
    Command::new(VEIL)
        .args([
            "predict",
            "--model",
            "state/checkpoint.safetensors",
            "--data",
            csv,
            "--json",
        ])
        .current_dir(dep.path())
        .output()
        .unwrap()
}

/// The released training rounds.
fn released(rounds: &[Value]) -> Vec<&Value> {
    rounds
        .iter()
        .filter(|r| r["outcome"] == "released" && r["kind"] == "train")
        .collect()
}

fn ids(record: &Value, field: &str) -> Vec<u64> {
    record[field]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn ten_clients_three_rounds_release_exact_sums() {
    let dep = Deployment::new(10);
    let settings = ServerSettings::default();
    dep.write_server_config(&settings);
    let mut server = dep.spawn_server();
    let mut clients: Vec<Child> = dep.clients.iter().map(|c| dep.spawn_client(c)).collect();
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "server failed: {out}\n{}", dep.log("server.log"));
    assert!(out.contains("3 training rounds released"), "{out}");
    let rounds = dep.rounds();
    let rel = released(&rounds);
    assert_eq!(rel.len(), 3);
    for (i, r) in rel.iter().enumerate() {
        assert_eq!(r["training_round"].as_u64().unwrap(), i as u64 + 1);
        assert_eq!(ids(r, "included").len(), 10, "no client dropped: {r}");
        dep.check_sum(r, 300);
    }
    for (name, child) in dep.clients.iter().zip(&mut clients) {
        let (ok, out) = dep.wait_exit(child, name);
        assert!(ok, "{name}: {}", dep.log(&format!("{name}.log")));
        assert!(out.contains("3 training rounds completed"), "{name}: {out}");
    }
}

/// Each site's own rules, enforced by the site (SPEC §9.5, §12.4): a client
/// whose floor demands more participants than the round has, and one whose
/// record says it already took part in round 1, decline; the server's log
/// names each and its reason, keeps their connections, and the round goes on
/// with the others.
#[test]
fn sites_decline_rounds_below_their_floor_or_with_a_used_round_id() {
    let dep = Deployment::new(6);
    dep.write_server_config(&ServerSettings {
        rounds: 2,
        ..ServerSettings::default()
    });
    // client-1 (participant 0) wants at least ten participants.
    dep.write_client_config("client-1", "certs");
    let path = dep.path().join("client-1.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("[floor]\nmin_participants = 10\n");
    std::fs::write(&path, text).unwrap();
    // client-2 (participant 1) took part in round 1 before.
    std::fs::create_dir_all(dep.path().join("client-2.state")).unwrap();
    std::fs::write(
        dep.path().join("client-2.state/client-state.json"),
        r#"{"last_round": 1}"#,
    )
    .unwrap();
    let mut server = dep.spawn_server();
    let mut clients: Vec<Child> = dep.clients.iter().map(|c| dep.spawn_client(c)).collect();
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "server failed: {out}\n{}", dep.log("server.log"));
    let rounds = dep.rounds();
    let rel = released(&rounds);
    assert_eq!(rel.len(), 2, "{rounds:?}");
    assert_eq!(ids(rel[0], "included"), vec![2, 3, 4, 5], "{}", rel[0]);
    assert_eq!(ids(rel[1], "included"), vec![1, 2, 3, 4, 5], "{}", rel[1]);
    for r in &rel {
        dep.check_sum(r, 300);
    }
    let log = dep.log("server.log");
    for (participant, reason) in [(0, "min_participants"), (1, "round id reused")] {
        let line = log
            .lines()
            .find(|l| {
                l.contains("participant declined the round")
                    && l.contains(&format!("participant={participant} "))
            })
            .unwrap_or_else(|| panic!("no decline of {participant} logged:\n{log}"));
        assert!(line.contains(reason), "{line}");
    }
    assert!(
        !log.contains("participant dropped round=1 participant=0"),
        "{log}"
    );
    let site = dep.log("client-1.log");
    assert!(
        site.contains("this client declines the round") && site.contains("min_participants"),
        "{site}"
    );
    let state =
        std::fs::read_to_string(dep.path().join("client-2.state/client-state.json")).unwrap();
    assert!(state.contains("\"last_round\":2"), "{state}");
    for (name, child) in dep.clients.iter().zip(&mut clients) {
        let (ok, _) = dep.wait_exit(child, name);
        assert!(ok, "{name}: {}", dep.log(&format!("{name}.log")));
    }
}

/// Starts `name` with a fault that makes it go silent at `point` of the
/// first round.
fn spawn_faulty(dep: &Deployment, name: &str, point: &str) -> Child {
    spawn_with_fault(dep, name, "--fault-stall-after", point)
}

/// Starts `name` with the injected fault `flag` at `point`.
fn spawn_with_fault(dep: &Deployment, name: &str, flag: &str, point: &str) -> Child {
    if !dep.path().join(format!("{name}.toml")).exists() {
        dep.write_client_config(name, "certs");
    }
    dep.spawn(
        &["client", "--config", &format!("{name}.toml"), flag, point],
        &format!("{name}.log"),
    )
}

/// Once `name` has gone silent at its fault point, kills it (SIGKILL: no
/// QUIC close is sent): a client killed at a known phase.
fn kill_when_stalled(dep: &Deployment, name: &str, mut child: Child) {
    dep.wait_for(&format!("{name} to stall"), || {
        dep.log(&format!("{name}.log")).contains("fault injected")
    });
    child.kill().unwrap();
    child.wait().unwrap();
}

fn kill_at(dep: &Deployment, name: &str, point: &str) {
    let child = spawn_faulty(dep, name, point);
    kill_when_stalled(dep, name, child);
}

#[test]
fn clients_killed_mid_round_drop_out_and_the_sum_is_still_exact() {
    let dep = Deployment::new(10);
    dep.write_server_config(&ServerSettings {
        rounds: 2,
        ..ServerSettings::default()
    });
    let mut server = dep.spawn_server();
    let killed = ["client-3", "client-7"];
    let mut clients: Vec<Child> = dep
        .clients
        .iter()
        .filter(|c| !killed.contains(&c.as_str()))
        .map(|c| dep.spawn_client(c))
        .collect();
    // client-3 dies after advertising its keys, before sharing its
    // secrets; client-7 after sharing them, before its masked input, so
    // its pairwise masks are in its neighbours' inputs and must be removed
    // with its reconstructed key.
    let late = spawn_faulty(&dep, "client-7", "share-keys");
    kill_at(&dep, "client-3", "advertise-keys");
    // client-7 is killed only once the share phase has closed without
    // client-3, so it is lost in the masked-input phase.
    dep.wait_for("the share phase to close", || {
        dep.log("server.log")
            .contains("phase done round=1 phase=ShareKeys")
    });
    kill_when_stalled(&dep, "client-7", late);
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "server failed: {out}\n{}", dep.log("server.log"));
    let rounds = dep.rounds();
    let rel = released(&rounds);
    assert_eq!(rel.len(), 2, "{rounds:?}");
    let first = rel[0];
    assert_eq!(ids(first, "participants").len(), 10);
    let included = ids(first, "included");
    assert_eq!(included, vec![0, 1, 3, 4, 5, 7, 8, 9], "{first}");
    let log = dep.log("server.log");
    assert!(
        log.contains("participant dropped round=1 participant=2 phase=ShareKeys"),
        "{log}"
    );
    assert!(
        log.contains("participant dropped round=1 participant=6 phase=MaskedInput"),
        "{log}"
    );
    for r in &rel {
        dep.check_sum(r, 300);
    }
    // The next round runs with the survivors only.
    assert_eq!(ids(rel[1], "participants").len(), 8, "{}", rel[1]);
    dep.wait_clients_ok(&mut clients);
}

/// Clients that quit mid-round (`--fault-leave-after`: deliver what they
/// sent, close the connection, exit) are dropped when their connection
/// ends, not at a deadline: the phase timeout here is longer than the test's
/// liveness bound, so a client that lingered would fail the test.
#[test]
fn clients_that_leave_mid_round_are_dropped_and_the_sum_is_exact() {
    let dep = Deployment::new(10);
    dep.write_server_config(&ServerSettings {
        rounds: 1,
        phase_timeout_ms: 300_000,
        ..ServerSettings::default()
    });
    let mut server = dep.spawn_server();
    let leaving = [("client-4", "share-keys"), ("client-8", "masked-input")];
    let mut clients: Vec<Child> = dep
        .clients
        .iter()
        .filter(|c| !leaving.iter().any(|(l, _)| l == c))
        .map(|c| dep.spawn_client(c))
        .collect();
    let mut leavers: Vec<(&str, Child)> = leaving
        .iter()
        .map(|&(name, point)| {
            (
                name,
                spawn_with_fault(&dep, name, "--fault-leave-after", point),
            )
        })
        .collect();
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "server failed: {out}\n{}", dep.log("server.log"));
    let rounds = dep.rounds();
    let rel = released(&rounds);
    assert_eq!(rel.len(), 1, "{rounds:?}");
    // client-4 (id 3) left after sharing its keys, before its masked input:
    // out of the sum. client-8 (id 7) left right after sending its masked
    // input: in the sum, its self mask recovered from its neighbours.
    assert_eq!(ids(rel[0], "participants").len(), 10);
    assert_eq!(ids(rel[0], "included"), vec![0, 1, 2, 4, 5, 6, 7, 8, 9]);
    dep.check_sum(rel[0], 300);
    let log = dep.log("server.log");
    // Each is dropped when its connection ends (in the phase it answered,
    // or the next if that one had already closed).
    for id in [3, 7] {
        assert!(
            log.contains(&format!(
                "participant dropped round=1 participant={id} phase="
            )),
            "{log}"
        );
    }
    for (name, child) in &mut leavers {
        let (ok, out) = dep.wait_exit(child, name);
        assert!(ok, "{name}: {}", dep.log(&format!("{name}.log")));
        assert!(out.contains("made it leave mid-round"), "{name}: {out}");
    }
    dep.wait_clients_ok(&mut clients);
}

#[test]
fn too_few_survivors_abort_the_round_and_the_next_one_starts() {
    let dep = Deployment::new(5);
    dep.write_server_config(&ServerSettings {
        rounds: 1,
        threshold: 5,
        ..ServerSettings::default()
    });
    let mut server = dep.spawn_server();
    let mut clients: Vec<Child> = dep.clients[..4]
        .iter()
        .map(|c| dep.spawn_client(c))
        .collect();
    // With t = 5 of 5, one client lost after advertising leaves 4 < t.
    kill_at(&dep, "client-5", "advertise-keys");
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "server failed: {out}\n{}", dep.log("server.log"));
    let rounds = dep.rounds();
    assert_eq!(rounds[0]["outcome"], "aborted", "{rounds:?}");
    assert_eq!(rounds[0]["training_round"], 1);
    assert!(
        !dep.path().join("state/sums/round-000001.u64le").exists()
            || rounds.iter().any(|r| r["outcome"] == "released"),
        "nothing is kept for the aborted round"
    );
    // The next round, with the 4 left, releases training round 1.
    let rel = released(&rounds);
    assert_eq!(rel.len(), 1, "{rounds:?}");
    assert!(rel[0]["round_id"].as_u64() > rounds[0]["round_id"].as_u64());
    assert_eq!(ids(rel[0], "included"), vec![0, 1, 2, 3]);
    dep.check_sum(rel[0], 300);
    dep.wait_clients_ok(&mut clients);
}

#[test]
fn server_killed_after_round_two_resumes_at_round_three_with_model_and_ledger() {
    // A fifth roster client never connects, so the server waits its start
    // delay (5 s) before each round: the kill lands between rounds 2 and 3.
    let dep = Deployment::new(5);
    dep.write_server_config(&ServerSettings {
        rounds: 3,
        privacy: true,
        ..ServerSettings::default()
    });
    let mut server = dep.spawn_server();
    let mut clients: Vec<Child> = dep.clients[..4]
        .iter()
        .map(|c| dep.spawn_client(c))
        .collect();
    dep.wait_for("round 2 to be released", || {
        released(&dep.rounds())
            .iter()
            .any(|r| r["training_round"] == 2)
    });
    server.kill().unwrap();
    server.wait().unwrap();
    let model_after_2 = std::fs::read(dep.path().join("state/model.safetensors")).unwrap();
    let ledger_after_2 = std::fs::read_to_string(dep.path().join("state/ledger.jsonl")).unwrap();
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(dep.path().join("state/state.json")).unwrap(),
    )
    .unwrap();
    let released_before = released(&dep.rounds()).len();
    assert_eq!(state["released_rounds"], released_before as u64);
    assert_eq!(released_before, 2);

    let mut server = dep.spawn_server();
    let (ok, out) = dep.wait_exit(&mut server, "restarted server");
    assert!(ok, "{out}\n{}", dep.log("server.log"));
    assert!(dep.log("server.log").contains("resumed from"));
    let rounds = dep.rounds();
    let rel = released(&rounds);
    assert_eq!(
        rel.iter()
            .map(|r| r["training_round"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    // The ledger kept its first two lines and added round 3.
    let ledger = std::fs::read_to_string(dep.path().join("state/ledger.jsonl")).unwrap();
    assert!(ledger.starts_with(&ledger_after_2));
    assert_eq!(ledger.lines().count(), 3);
    let summary =
        veil_dp::ledger::replay(&std::fs::read(dep.path().join("state/ledger.jsonl")).unwrap())
            .unwrap();
    assert_eq!(summary.rounds, 3);
    // The model is round 2's plus round 3's mean update.
    let third = rel[2];
    let sum: Vec<u64> = std::fs::read(dep.path().join("state/sums/round-000003.u64le"))
        .unwrap()
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mean = veil_dp::contribution::mean_update(
        &sum,
        1024.0,
        u32::try_from(third["ring_bits"].as_u64().unwrap()).unwrap(),
        ids(third, "included").len(),
    )
    .unwrap();
    let before = veil_net::state::load_model_bytes(&model_after_2, 300).unwrap();
    let after =
        veil_net::state::load_model(&dep.path().join("state/model.safetensors"), 300).unwrap();
    let expected: Vec<f32> = before.iter().zip(&mean).map(|(w, u)| w + u).collect();
    assert_eq!(after, expected);
    dep.wait_clients_ok(&mut clients);
    // The state records the ledger's tail: `veil privacy ledger state`
    // finds them in step; with the last line deleted, the ledger alone
    // still replays, but a server will not start on it and the command
    // refuses it.
    let audit = veil(dep.path(), &["privacy", "ledger", "state"]);
    assert!(audit.contains("in step"), "{audit}");
    let cut: String = ledger.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(dep.path().join("state/ledger.jsonl"), cut).unwrap();
    let out = Command::new(VEIL)
        .args(["privacy", "ledger", "state"])
        .current_dir(dep.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    let mut server = dep.spawn_server();
    let (ok, _) = dep.wait_exit(&mut server, "server on a truncated ledger");
    assert!(!ok);
    let log = dep.log("server.log");
    assert!(log.contains("truncated"), "{log}");
}

#[test]
fn foreign_and_unlisted_certificates_are_refused_at_the_handshake() {
    let dep = Deployment::new(3);
    // A client from another CA, and one from the right CA but not in the
    // roster (the roster is restored after issuing it).
    veil(dep.path(), &["certs", "init", "--dir", "other"]);
    client_keys(dep.path(), "other", "intruder");
    let roster = std::fs::read(dep.path().join("certs/roster.toml")).unwrap();
    client_keys(dep.path(), "certs", "unlisted");
    std::fs::write(dep.path().join("certs/roster.toml"), roster).unwrap();
    dep.write_server_config(&ServerSettings {
        rounds: 1,
        ..ServerSettings::default()
    });
    let mut server = dep.spawn_server();

    // The intruder's own roster check would stop it before connecting, so
    // it is given a roster that lists it: only the server can refuse it.
    let fake = dep.path().join("fake");
    std::fs::create_dir(&fake).unwrap();
    for (name, dir) in [("intruder", "other"), ("unlisted", "certs")] {
        let mut roster =
            veil_net::deployment::RosterFile::load(&dep.path().join("certs/roster.toml")).unwrap();
        let id =
            veil_net::deployment::load_identity(&dep.path().join(format!("{dir}/{name}.identity")))
                .unwrap();
        let fp =
            veil_net::pki::fingerprint_file(&dep.path().join(format!("{dir}/{name}.pem"))).unwrap();
        roster.add(name, &id.verifying_key(), &fp).unwrap();
        let roster_path = fake.join(format!("{name}-roster.toml"));
        roster.save(&roster_path).unwrap();
        dep.write_client_config(name, dir);
        let config = dep.path().join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "roster = \"certs/roster.toml\"",
            &format!("roster = \"fake/{name}-roster.toml\""),
        );
        std::fs::write(&config, text).unwrap();
        let mut child = dep.spawn_client(name);
        let (ok, _) = dep.wait_exit(&mut child, name);
        assert!(!ok, "{name} must be refused");
        let log = dep.log(&format!("{name}.log"));
        assert!(
            log.contains("refused this client at the handshake"),
            "{name}: {log}"
        );
    }
    // The server goes on with the roster's clients.
    let mut clients: Vec<Child> = dep.clients.iter().map(|c| dep.spawn_client(c)).collect();
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "{out}");
    let rel = released(&dep.rounds()).len();
    assert_eq!(rel, 1);
    assert!(
        !dep.log("server.log")
            .contains("client connected participant=3")
    );
    dep.wait_clients_ok(&mut clients);
}

/// A QUIC endpoint presenting `name`'s roster certificate, and the
/// server's address.
fn rogue_endpoint(dep: &Deployment, name: &str) -> (quinn::Endpoint, SocketAddr) {
    let certs = dep.path().join("certs");
    let ca = veil_net::pki::load_certs(&certs.join("ca.pem")).unwrap();
    let chain = veil_net::pki::load_certs(&certs.join(format!("{name}.pem"))).unwrap();
    let key = veil_net::pki::load_key(&certs.join(format!("{name}.key"))).unwrap();
    let limits = veil_net::tls::Limits {
        idle_timeout: Duration::from_secs(30),
        max_connections: 1,
    };
    let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    endpoint
        .set_default_client_config(veil_net::tls::client_config(&ca, chain, key, &limits).unwrap());
    let addr: SocketAddr = format!("127.0.0.1:{}", dep.port).parse().unwrap();
    (endpoint, addr)
}

/// Connects, retrying until the server listens.
async fn connect_when_up(endpoint: &quinn::Endpoint, addr: SocketAddr) -> quinn::Connection {
    loop {
        match endpoint.connect(addr, "localhost").unwrap().await {
            Ok(c) => return c,
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A hand-driven client: real TLS with a roster certificate, its stream
/// opened with a Hello, then frames of the test's choosing.
async fn rogue_connect(
    dep: &Deployment,
    name: &str,
) -> (
    quinn::Endpoint,
    quinn::Connection,
    quinn::SendStream,
    quinn::RecvStream,
) {
    let (endpoint, addr) = rogue_endpoint(dep, name);
    let conn = connect_when_up(&endpoint, addr).await;
    let (mut send, recv) = conn.open_bi().await.unwrap();
    let hello = veil_net::frame::encode_frame(veil_net::frame::FrameKind::Hello, &[]).unwrap();
    send.write_all(&hello).await.unwrap();
    (endpoint, conn, send, recv)
}

/// Waits for the task and the round config, then sends `bad`; returns how
/// the server closed the connection.
async fn misbehave(dep: &Deployment, name: &str, bad: Vec<u8>) -> String {
    let (_endpoint, conn, mut send, mut recv) = rogue_connect(dep, name).await;
    let caps = |_| Some(64 << 20);
    let mut seen = 0;
    while seen < 2 {
        match veil_net::frame::read_frame(&mut recv, caps).await {
            Ok(Some(_)) => seen += 1,
            other => panic!("no round reached the rogue client: {other:?}"),
        }
    }
    send.write_all(&bad).await.unwrap();
    let reason = tokio::time::timeout(LIVENESS, conn.closed()).await.unwrap();
    reason.to_string()
}

#[test]
fn oversized_and_malformed_frames_cost_only_the_sender() {
    let dep = Deployment::new(6);
    dep.write_server_config(&ServerSettings {
        rounds: 1,
        ..ServerSettings::default()
    });
    let mut server = dep.spawn_server();
    let mut clients: Vec<Child> = dep.clients[..4]
        .iter()
        .map(|c| dep.spawn_client(c))
        .collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // client-5 claims a 1 GiB frame; client-6 sends a well-sized frame of
    // garbage. Neither is buffered or decoded into the round.
    let mut oversized = vec![3_u8];
    oversized.extend_from_slice(&(1_u32 << 30).to_be_bytes());
    oversized.extend_from_slice(&[0; 64]);
    // client-6 first sends a message of round 0, older than any round: it
    // is ignored as stale and costs nothing; then the garbage.
    let mut stale_message = vec![1_u8, 2, 0, 0, 0, 0, 0, 0, 0, 0];
    stale_message.extend_from_slice(&[0; 128]);
    let mut garbage =
        veil_net::frame::encode_frame(veil_net::frame::FrameKind::SecAgg, &stale_message).unwrap();
    garbage.extend(
        veil_net::frame::encode_frame(veil_net::frame::FrameKind::SecAgg, &[0xEE; 40]).unwrap(),
    );
    let dep = Arc::new(dep);
    let (a, b) = rt.block_on(async {
        tokio::join!(
            misbehave(&dep, "client-5", oversized),
            misbehave(&dep, "client-6", garbage)
        )
    });
    assert!(
        a.contains("code 1") || a.contains("closed"),
        "oversized: {a}"
    );
    assert!(
        b.contains("code 1") || b.contains("closed"),
        "malformed: {b}"
    );
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "{out}\n{}", dep.log("server.log"));
    let rounds = dep.rounds();
    let rel = released(&rounds);
    assert_eq!(rel.len(), 1, "{rounds:?}");
    assert_eq!(ids(rel[0], "participants").len(), 6);
    assert_eq!(ids(rel[0], "included"), vec![0, 1, 2, 3]);
    dep.check_sum(rel[0], 300);
    let log = dep.log("server.log");
    assert!(log.contains("frame longer than its cap"), "{log}");
    assert!(log.contains("stale message ignored participant=5"), "{log}");
    dep.wait_clients_ok(&mut clients);
}

#[test]
fn a_flood_of_half_open_connections_is_bounded_and_timed_out() {
    let dep = Deployment::new(3);
    dep.write_server_config(&ServerSettings {
        rounds: 1,
        max_connections: 8,
        ..ServerSettings::default()
    });
    let mut server = dep.spawn_server();
    let rt = tokio::runtime::Runtime::new().unwrap();
    // 30 connections with a roster certificate that never send their Hello.
    let held = rt.block_on(async {
        let (endpoint, addr) = rogue_endpoint(&dep, "client-1");
        let first = connect_when_up(&endpoint, addr).await;
        let attempts: Vec<_> = (0..29)
            .map(|_| endpoint.connect(addr, "localhost").unwrap())
            .collect();
        let mut held = vec![first];
        for a in attempts {
            if let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(5), a).await {
                held.push(c);
            }
        }
        (endpoint, held)
    });
    let log = || dep.log("server.log");
    dep.wait_for("connections over the limit to be refused", || {
        log().contains("connection refused: at the limit")
    });
    dep.wait_for("the silent connections to time out", || {
        log().contains("handshake timed out")
    });
    // The deployment's own clients still get in and finish the round.
    let mut clients: Vec<Child> = dep.clients.iter().map(|c| dep.spawn_client(c)).collect();
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "{out}\n{}", log());
    let rel = released(&dep.rounds()).len();
    assert_eq!(rel, 1);
    dep.wait_clients_ok(&mut clients);
    drop(held);
}

#[test]
fn a_second_connection_of_a_client_replaces_the_first() {
    let dep = Deployment::new(3);
    // First, a roster too small for min_clients is refused at start, rather
    // than waiting forever for a cohort.
    dep.write_server_config(&ServerSettings {
        rounds: 1,
        min_clients: 4,
        ..ServerSettings::default()
    });
    let mut refused = dep.spawn_server();
    let (ok, _) = dep.wait_exit(&mut refused, "server");
    assert!(!ok);
    assert!(
        dep.log("server.log").contains("fewer than min_clients = 4"),
        "{}",
        dep.log("server.log")
    );
    dep.write_server_config(&ServerSettings {
        rounds: 1,
        min_clients: 3,
        ..ServerSettings::default()
    });
    let mut server = dep.spawn_server();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_endpoint, first, _send, _recv) = rt.block_on(rogue_connect(&dep, "client-1"));
    dep.wait_for("the first connection to be admitted", || {
        dep.log("server.log")
            .contains("client connected participant=0")
    });
    // The real client-1 connects too: the server keeps the newer connection.
    let mut clients = vec![dep.spawn_client("client-1")];
    let reason = rt
        .block_on(async { tokio::time::timeout(LIVENESS, first.closed()).await })
        .unwrap()
        .to_string();
    assert!(reason.contains("code 2"), "closed as replaced: {reason}");
    clients.push(dep.spawn_client("client-2"));
    clients.push(dep.spawn_client("client-3"));
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "{out}");
    let rounds = dep.rounds();
    let rel = released(&rounds);
    assert_eq!(rel.len(), 1, "{rounds:?}");
    assert_eq!(ids(rel[0], "included"), vec![0, 1, 2]);
    dep.wait_clients_ok(&mut clients);
}

/// The breast-cancer rows: the header, the training rows and the test rows
/// (its fixed split), as lines of the shipped CSV.
fn breast_cancer() -> (String, Vec<String>, Vec<String>) {
    shipped("breast_cancer")
}

/// Each column's statistics bound as an operator would know it: the power
/// of ten above its largest magnitude in `values`.
fn power_of_ten_bounds(values: &[Vec<f64>], columns: usize) -> Vec<String> {
    (0..columns)
        .map(|j| {
            let most = values.iter().map(|r| r[j].abs()).fold(0.0, f64::max);
            format!("{}", 10_f64.powf(most.log10().ceil()))
        })
        .collect()
}

/// Deals `train` to the first three sites (site `i` gets rows `i`, `i+3`,
/// …) as `<site>.csv` under `header`.
fn write_three_site_files(dep: &Deployment, header: &str, train: &[String]) {
    for (i, site) in dep.clients.iter().take(3).enumerate() {
        let rows: Vec<&str> = train
            .iter()
            .skip(i)
            .step_by(3)
            .map(String::as_str)
            .collect();
        std::fs::write(
            dep.path().join(format!("{site}.csv")),
            format!("{header}\n{}\n", rows.join("\n")),
        )
        .unwrap();
    }
}

/// Starts every client with `--data <name>.csv`.
fn spawn_csv_clients(dep: &Deployment) -> Vec<Child> {
    dep.clients
        .iter()
        .map(|c| {
            dep.write_client_config(c, "certs");
            dep.spawn(
                &[
                    "client",
                    "--config",
                    &format!("{c}.toml"),
                    "--data",
                    &format!("{c}.csv"),
                ],
                &format!("{c}.log"),
            )
        })
        .collect()
}

/// The rows the three sites of [`write_three_site_files`] hold out at
/// holdout 0.25 (every fourth of each site's rows), written as
/// `held_out.csv`.
fn write_held_out_rows(dep: &Deployment, header: &str, train: &[String]) -> usize {
    let mut held_out = Vec::new();
    for i in 0..3 {
        let site: Vec<&String> = train.iter().skip(i).step_by(3).collect();
        held_out.extend(site.into_iter().skip(3).step_by(4).cloned());
    }
    write_rows(dep, "held_out.csv", header, &held_out);
    held_out.len()
}

/// A shipped data set's header, training rows and test rows.
fn shipped(name: &str) -> (String, Vec<String>, Vec<String>) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data");
    let csv = std::fs::read_to_string(data.join(format!("{name}.csv"))).unwrap();
    let mut lines = csv.lines().map(str::to_owned);
    let header = lines.next().unwrap();
    let rows: Vec<String> = lines.collect();
    let test: std::collections::BTreeSet<usize> =
        std::fs::read_to_string(data.join(format!("{name}.test_idx.txt")))
            .unwrap()
            .split_whitespace()
            .map(|i| i.parse().unwrap())
            .collect();
    let (test_rows, train_rows): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .enumerate()
        .partition(|(i, _)| test.contains(i));
    let strip = |v: Vec<(usize, String)>| v.into_iter().map(|(_, r)| r).collect();
    (header, strip(train_rows), strip(test_rows))
}

#[test]
fn three_sites_train_a_model_on_their_own_csv_evaluate_it_securely_and_a_wrong_schema_is_refused() {
    let dep = Deployment::new(4);
    dep.write_server_config(&ServerSettings {
        rounds: 8,
        min_clients: 3,
        ..ServerSettings::default()
    });
    let (header, train, test) = breast_cancer();
    let features: Vec<&str> = header.split(',').filter(|c| *c != "label").collect();
    // The pooled training rows' statistics, which no site and not the
    // server ever sees: the statistics round must find them from the sums.
    let values: Vec<Vec<f64>> = train
        .iter()
        .map(|r| r.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let n = values.len() as f64;
    let mean: Vec<f64> = (0..features.len())
        .map(|j| values.iter().map(|r| r[j]).sum::<f64>() / n)
        .collect();
    let std: Vec<f64> = (0..features.len())
        .map(|j| (values.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt())
        .collect();
    let list = |v: &[String]| format!("[{}]", v.join(", "));
    let quoted: Vec<String> = features.iter().map(|f| format!("{f:?}")).collect();
    // The operator knows each feature's range (here: the power of ten
    // above its largest value), not its statistics. Holdout 0.25 with
    // evaluation every 4 rounds.
    let bounds = power_of_ten_bounds(&values, features.len());
    let task = format!(
        "[task]\nmodel = \"logistic\"\nfeatures = {}\nclasses = [\"0\", \"1\"]\nepochs = 5\nbatch_size = 16\nlearning_rate = 0.1\nholdout = 0.25\n\n[statistics]\nbounds = {}\nrow_cap = 200\n\n[evaluation]\nevery = 4\nrow_cap = 200\n",
        list(&quoted),
        list(&bounds),
    );
    let config = std::fs::read_to_string(dep.path().join("server.toml"))
        .unwrap()
        .replace("dimension = 300\n", "")
        + &task;
    std::fs::write(dep.path().join("server.toml"), config).unwrap();
    // Three sites, each with a third of the training rows; a fourth whose
    // file lacks a column.
    write_three_site_files(&dep, &header, &train);
    let short: Vec<String> = std::iter::once(header.clone())
        .chain(train.iter().take(20).cloned())
        .map(|r| r.split(',').skip(1).collect::<Vec<_>>().join(","))
        .collect();
    std::fs::write(dep.path().join("client-4.csv"), short.join("\n") + "\n").unwrap();
    let mut server = dep.spawn_server();
    let mut clients = spawn_csv_clients(&dep);
    let bad = clients.pop().unwrap();
    let output = bad.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", dep.log("client-4.log"));
    let log = dep.log("client-4.log");
    assert!(
        log.contains("client-4.csv: line 1") && log.contains(features[0]),
        "{log}"
    );
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "{out}\n{}", dep.log("server.log"));
    dep.wait_clients_ok(&mut clients);
    let rounds = dep.rounds();
    let rel = released(&rounds);
    assert_eq!(rel.len(), 8, "{rounds:?}");
    for r in &rel {
        assert_eq!(ids(r, "included").len(), 3, "{r}");
    }
    // The statistics round came first, and found the pooled statistics of
    // the sites' training rows (each site's rows less its held-out ones).
    assert_eq!(rounds[0]["kind"], "statistics", "{rounds:?}");
    let st = &rounds[0]["statistics"];
    let mut training_rows = Vec::new();
    for i in 0..3 {
        let site: Vec<&Vec<f64>> = values.iter().skip(i).step_by(3).collect();
        training_rows.extend(
            site.into_iter()
                .enumerate()
                .filter(|(j, _)| j % 4 != 3)
                .map(|(_, r)| r.clone()),
        );
    }
    let m = training_rows.len() as f64;
    assert!((st["rows"].as_f64().unwrap() - m).abs() < 1e-3, "{st}");
    for j in 0..features.len() {
        let mu = training_rows.iter().map(|r| r[j]).sum::<f64>() / m;
        let sd = (training_rows
            .iter()
            .map(|r| (r[j] - mu).powi(2))
            .sum::<f64>()
            / m)
            .sqrt();
        let (got_mu, got_sd) = (
            st["mean"][j].as_f64().unwrap(),
            st["std"][j].as_f64().unwrap(),
        );
        assert!(
            (got_mu - mu).abs() <= 1e-3 * sd,
            "{}: mean {got_mu} vs {mu}",
            features[j]
        );
        assert!(
            (got_sd - sd).abs() <= 1e-3 * sd,
            "{}: std {got_sd} vs {sd}",
            features[j]
        );
        // Close to all rows' too (the held-out quarter aside).
        assert!((got_mu - mean[j]).abs() <= 0.2 * std[j], "{}", features[j]);
    }
    // The deliverable: a checkpoint with its card (the released
    // standardisation in it), scored on the raw test rows by
    // `veil predict`.
    write_rows(&dep, "test.csv", &header, &test);
    let v = predict_json(&dep, "test.csv");
    let accuracy = v["accuracy"].as_f64().unwrap();
    eprintln!("three sites, 8 rounds, no DP: test accuracy {accuracy:.4}");
    assert!(accuracy >= 0.93, "{v}");
    assert_eq!(v["rows"].as_u64(), Some(test.len() as u64));
    // Secure evaluation after rounds 4 and 8, on the rows each site held
    // out (every fourth: holdout 0.25). The last one's sums are what the
    // sites' held-out rows give under the final model, which the server
    // never saw a row of: score those rows in one place and compare.
    let evaluations: Vec<&Value> = rounds
        .iter()
        .filter(|r| r["kind"] == "evaluate" && r["outcome"] == "released")
        .collect();
    let evaluated: Vec<u64> = evaluations
        .iter()
        .map(|r| r["training_round"].as_u64().unwrap())
        .collect();
    assert_eq!(evaluated, [4, 8], "{rounds:?}");
    let held_out = write_held_out_rows(&dep, &header, &train);
    let central = predict_json(&dep, "held_out.csv");
    let secure = &evaluations[1]["evaluation"];
    eprintln!("secure evaluation {secure}; the same rows scored in one place {central}");
    let examples = secure["examples"].as_f64().unwrap();
    assert!((examples - held_out as f64).abs() < 1e-3, "{secure}");
    let (a, b) = (
        secure["accuracy"].as_f64().unwrap(),
        central["accuracy"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-6, "accuracy {a} vs {b}");
    // AUC from 20-bin histograms, against the exact one.
    let (a, b) = (
        secure["auc"].as_f64().unwrap(),
        central["auc"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 0.02, "AUC {a} vs {b}");
    let (a, b) = (
        secure["loss"].as_f64().unwrap(),
        central["loss"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 0.005, "loss {a} vs {b}");
    // The server logged each released evaluation once.
    let log = dep.log("server.log");
    assert_eq!(log.matches("evaluation released").count(), 2, "{log}");
}

#[test]
fn three_sites_train_a_regression_whose_statistics_and_secure_evaluation_are_the_sites_rows() {
    let dep = Deployment::new(3);
    dep.write_server_config(&ServerSettings {
        rounds: 8,
        min_clients: 3,
        ..ServerSettings::default()
    });
    let (header, train, test) = shipped("diabetes");
    let columns = header.split(',').count();
    let features: Vec<&str> = header.split(',').filter(|c| *c != "label").collect();
    let values: Vec<Vec<f64>> = train
        .iter()
        .map(|r| r.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    let list = |v: &[String]| format!("[{}]", v.join(", "));
    let quoted: Vec<String> = features.iter().map(|f| format!("{f:?}")).collect();
    // A bound for each feature and, last, the label.
    let bounds = power_of_ten_bounds(&values, columns);
    let task = format!(
        "[task]\nkind = \"regression\"\nmodel = \"linear\"\nfeatures = {}\nepochs = 5\nbatch_size = 16\nlearning_rate = 0.05\nholdout = 0.25\n\n[statistics]\nbounds = {}\nrow_cap = 200\n\n[evaluation]\nevery = 4\nrow_cap = 200\n",
        list(&quoted),
        list(&bounds),
    );
    let config = std::fs::read_to_string(dep.path().join("server.toml"))
        .unwrap()
        .replace("dimension = 300\n", "")
        + &task;
    std::fs::write(dep.path().join("server.toml"), config).unwrap();
    write_three_site_files(&dep, &header, &train);
    let mut server = dep.spawn_server();
    let mut clients = spawn_csv_clients(&dep);
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "{out}\n{}", dep.log("server.log"));
    // Each site counts its training rounds apart from the statistics round
    // and the two evaluations.
    for (name, child) in dep.clients.iter().zip(&mut clients) {
        let (ok, out) = dep.wait_exit(child, name);
        assert!(ok, "{name}: {}", dep.log(&format!("{name}.log")));
        assert!(
            out.contains(
                "8 training rounds completed (and 3 statistics or evaluation rounds), 0 failed"
            ),
            "{name}: {out}"
        );
    }
    let rounds = dep.rounds();
    assert_eq!(released(&rounds).len(), 8, "{rounds:?}");
    // The statistics round found the label's pooled mean and deviation
    // over the sites' training rows, as the eleventh column.
    assert_eq!(rounds[0]["kind"], "statistics", "{rounds:?}");
    let st = &rounds[0]["statistics"];
    let mut training_rows = Vec::new();
    for i in 0..3 {
        let site: Vec<&Vec<f64>> = values.iter().skip(i).step_by(3).collect();
        training_rows.extend(
            site.into_iter()
                .enumerate()
                .filter(|(j, _)| j % 4 != 3)
                .map(|(_, r)| r[columns - 1]),
        );
    }
    let m = training_rows.len() as f64;
    let mu = training_rows.iter().sum::<f64>() / m;
    let sd = (training_rows.iter().map(|y| (y - mu).powi(2)).sum::<f64>() / m).sqrt();
    let (got_mu, got_sd) = (
        st["mean"][columns - 1].as_f64().unwrap(),
        st["std"][columns - 1].as_f64().unwrap(),
    );
    assert!(
        (got_mu - mu).abs() <= 1e-3 * sd,
        "label mean {got_mu} vs {mu}"
    );
    assert!(
        (got_sd - sd).abs() <= 1e-3 * sd,
        "label std {got_sd} vs {sd}"
    );
    // The checkpoint on the raw test rows (centralised least squares:
    // R² 0.332).
    write_rows(&dep, "test.csv", &header, &test);
    let v = predict_json(&dep, "test.csv");
    eprintln!("three sites, diabetes, 8 rounds, no DP: {v}");
    assert!(v["r2"].as_f64().unwrap() > 0.25, "{v}");
    // The last secure evaluation is what the sites' held-out rows give.
    let secure = &rounds
        .iter()
        .rfind(|r| r["kind"] == "evaluate" && r["outcome"] == "released")
        .unwrap()["evaluation"];
    let held_out = write_held_out_rows(&dep, &header, &train);
    let central = predict_json(&dep, "held_out.csv");
    eprintln!("secure evaluation {secure}; the same rows scored in one place {central}");
    assert!((secure["examples"].as_f64().unwrap() - held_out as f64).abs() < 1e-3);
    let (a, b) = (
        secure["r2"].as_f64().unwrap(),
        central["r2"].as_f64().unwrap(),
    );
    // Each site's three sums are rounded (stochastically) to 1/256 of a
    // row: at most 16/256 of squared error and of Σy² per site, so with
    // three sites and a total sum of squares near 87 (87 rows, in label
    // deviations) R² is exact to about 3e-3 and the MSE to about 0.5 %.
    assert!((a - b).abs() < 5e-3, "R² {a} vs {b}");
    let (a, b) = (
        secure["mse"].as_f64().unwrap(),
        central["mse"].as_f64().unwrap(),
    );
    assert!((a - b).abs() < 1e-2 * b, "MSE {a} vs {b}");
}

#[test]
fn a_discarded_sum_is_announced_and_its_clients_count_the_round_as_failed() {
    // With privacy, a sum of fewer than min_clients = 5 contributions is
    // discarded. Five clients start; one goes silent after its shares, so
    // the round completes with 4 (the quorum and t = 3 allow it) and the
    // server must not release it. It tells the 4: their round did not
    // count. Client-5 then comes back and the next round is released.
    let dep = Deployment::new(5);
    dep.write_server_config(&ServerSettings {
        rounds: 1,
        threshold: 3,
        min_clients: 5,
        privacy: true,
        ..ServerSettings::default()
    });
    let mut server = dep.spawn_server();
    let mut clients: Vec<Child> = dep.clients[..4]
        .iter()
        .map(|c| dep.spawn_client(c))
        .collect();
    kill_at(&dep, "client-5", "share-keys");
    dep.wait_for("the first round to end", || !dep.rounds().is_empty());
    let rounds = dep.rounds();
    assert_eq!(rounds[0]["outcome"], "discarded", "{rounds:?}");
    assert_eq!(ids(&rounds[0], "included"), vec![0, 1, 2, 3]);
    clients.push(dep.spawn_client("client-5"));
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "{out}\n{}", dep.log("server.log"));
    assert_eq!(released(&dep.rounds()).len(), 1);
    // One ledger line: the discarded round spent nothing.
    let ledger = std::fs::read_to_string(dep.path().join("state/ledger.jsonl")).unwrap();
    assert_eq!(ledger.lines().count(), 1, "{ledger}");
    for (i, child) in clients.iter_mut().enumerate() {
        let (ok, out) = dep.wait_exit(child, "client");
        assert!(ok, "{out}");
        let name = &dep.clients[i];
        let log = dep.log(&format!("{name}.log"));
        if i < 4 {
            assert!(log.contains("discarded the round's sum"), "{name}: {log}");
            assert!(
                out.contains("1 training rounds completed, 1 failed"),
                "{name}: {out}"
            );
        } else {
            assert!(
                out.contains("1 training rounds completed, 0 failed"),
                "{name}: {out}"
            );
        }
    }
}

#[test]
fn a_site_keeps_its_own_ledger_and_declines_a_round_past_its_own_budget() {
    // Four sites, three needed. Client-1's own budget admits no round of
    // this deployment's noise; client-2's admits many. The server's ledger
    // is not theirs: each site accounts what it joins.
    let dep = Deployment::new(4);
    dep.write_server_config(&ServerSettings {
        rounds: 2,
        privacy: true,
        ..ServerSettings::default()
    });
    for (name, budget) in [("client-1", "0.01"), ("client-2", "1000.0")] {
        dep.write_client_config(name, "certs");
        let path = dep.path().join(format!("{name}.toml"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}[privacy]\nbudget = {budget}\n")).unwrap();
    }
    let mut server = dep.spawn_server();
    let mut clients: Vec<Child> = dep.clients.iter().map(|c| dep.spawn_client(c)).collect();
    let (ok, out) = dep.wait_exit(&mut server, "server");
    assert!(ok, "{out}\n{}", dep.log("server.log"));
    dep.wait_clients_ok(&mut clients);
    let rounds = dep.rounds();
    let rel = released(&rounds);
    assert_eq!(rel.len(), 2, "{rounds:?}");
    for r in &rel {
        assert_eq!(ids(r, "included"), vec![1, 2, 3], "{r}");
    }
    // Client-1 declined each round, saying why, and spent nothing.
    let log = dep.log("client-1.log");
    assert!(
        log.contains("past its budget 0.01"),
        "{log}\n{}",
        dep.log("server.log")
    );
    assert!(dep.log("server.log").contains("privacy budget"));
    assert!(!dep.path().join("client-1.state/ledger.jsonl").exists());
    // Client-2's own ledger holds both rounds, readable by `veil privacy
    // ledger`, its epsilon by its own accounting.
    let v: Value = serde_json::from_str(&veil(
        dep.path(),
        &["privacy", "ledger", "client-2.state/ledger.jsonl", "--json"],
    ))
    .unwrap();
    assert_eq!(v["rounds"].as_u64(), Some(2), "{v}");
    assert_eq!(v["budget"].as_f64(), Some(1000.0));
    assert!(v["epsilon"].as_f64().unwrap() > 0.0);
}
