//! The coordinator driven by hand, with no transport: clients are
//! veil-secagg sessions in this test, time is a number the test moves.
//! What each test pins is a rule of SPEC.md §12.4–§12.5 that every driver
//! inherits: the order of persistence and release, stale and foreign
//! messages, reconnects, the budget and round limits.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use veil_crypto::ParticipantId;
use veil_crypto::sign::IdentitySigningKey;
use veil_dp::ledger::Ledger;
use veil_round::record::Outcome;
use veil_round::{
    Action, Coordinator, Counters, EvaluationPlan, KeepModel, PrivacyPlan, Release, Resume,
    RoundKind, RoundPlan, RoundRecord, SecAggPlan, StatisticsPlan, StopReason,
};
use veil_secagg::messages::{
    EVALUATION_CLIP_NORM, FeatureSums, LocalOptimizer, MessageType, Purpose, ServerMessage, Task,
    TrainingSpec, evaluation_len, statistics_len,
};
use veil_secagg::{ClientSession, Roster, SiteFloor};

const D: u32 = 8;

fn plan(n: usize) -> RoundPlan {
    RoundPlan {
        dimension: D,
        rounds: 2,
        sampling_rate: 1.0,
        min_clients: n,
        max_clients: n,
        start_delay: Duration::from_secs(1),
        phase_timeout: Duration::from_secs(5),
        secagg: SecAggPlan {
            expected_dropout: 0.1,
            corrupt_fraction: 0.05,
            complete_graph_threshold: Some(2),
        },
        clip_norm: 1.0,
        scale: 1024.0,
        privacy: None,
        keep_sums: true,
        training: None,
        evaluation: None,
        statistics: None,
    }
}

struct Clients {
    keys: Vec<IdentitySigningKey>,
    roster: Roster,
    sessions: BTreeMap<ParticipantId, ClientSession>,
    tasks: BTreeMap<ParticipantId, Task>,
    rng: ChaCha20Rng,
    /// Round ids whose statistics inputs count no rows.
    no_rows: Vec<u64>,
}

impl Clients {
    fn new(n: u32) -> Self {
        let mut rng = ChaCha20Rng::from_seed([5; 32]);
        let keys: Vec<_> = (0..n)
            .map(|_| IdentitySigningKey::generate(&mut rng))
            .collect();
        let mut roster = Roster::new();
        for (i, k) in keys.iter().enumerate() {
            roster.insert(u32::try_from(i).unwrap(), k.verifying_key());
        }
        Self {
            keys,
            roster,
            sessions: BTreeMap::new(),
            tasks: BTreeMap::new(),
            rng,
            no_rows: Vec::new(),
        }
    }

    fn coordinator(&self, plan: RoundPlan, ledger: Option<Ledger>) -> Coordinator {
        Coordinator::new(
            plan,
            self.roster.clone(),
            self.keys.len(),
            Resume {
                counters: Counters::new(D),
                model: vec![0.0; D as usize],
                ledger,
                standardization: None,
            },
            Box::new(KeepModel),
            [9; 32],
        )
        .unwrap()
    }

    /// Client `id`'s input: every coordinate `id + 1` quanta.
    fn deliver(&mut self, id: ParticipantId, message: &[u8], now: Instant) {
        if MessageType::peek(message) == Some(MessageType::Task) {
            let (_, task) = Task::decode(message, 1 << 20).unwrap();
            self.tasks.insert(id, task);
            return;
        }
        if let Some(s) = self.sessions.get_mut(&id) {
            let _ = s.handle_message(message, now, &mut self.rng);
            return;
        }
        let Ok((_, ServerMessage::RoundConfig(config))) = ServerMessage::decode(message, None)
        else {
            return;
        };
        assert!(self.tasks.contains_key(&id), "the task comes first");
        let task = &self.tasks[&id];
        let input = match &task.purpose {
            // A statistics round: each client holds one row, (id, id, …).
            Purpose::Statistics { row_cap, bounds } => {
                let mut sums = FeatureSums::new(bounds.len());
                if !self.no_rows.contains(&config.round) {
                    sums.add(&vec![id as f32; bounds.len()], bounds);
                }
                let mut values = sums.to_input(*row_cap, bounds);
                veil_dp::contribution::contribute(
                    &mut values,
                    task.clip_norm,
                    task.scale,
                    config.ring.bits(),
                    0.0,
                    &mut self.rng,
                )
                .unwrap()
                .input
            }
            _ => zeroize::Zeroizing::new(vec![u64::from(id) + 1; config.dimension as usize]),
        };
        let session = ClientSession::new(
            config,
            id,
            self.keys[id as usize].clone(),
            &self.roster,
            &SiteFloor::none(),
            input,
            now,
            &mut self.rng,
        )
        .unwrap();
        self.sessions.insert(id, session);
    }
}

/// Everything the coordinator asked for, in order, with the client
/// messages exchanged until the coordinator goes quiet; clients in
/// `silent` never answer.
fn run_until_quiet(
    c: &mut Coordinator,
    clients: &mut Clients,
    now: Instant,
    silent: &[ParticipantId],
) -> Vec<Action> {
    let mut log = Vec::new();
    loop {
        let mut moved = false;
        while let Some(action) = c.poll_action() {
            moved = true;
            if let Action::Send { to, message } = &action {
                clients.deliver(*to, message, now);
            }
            if let Action::RoundStarted { .. } = &action {
                clients.sessions.clear();
                clients.tasks.clear();
            }
            log.push(action);
        }
        let ids: Vec<_> = clients.sessions.keys().copied().collect();
        for id in ids {
            if silent.contains(&id) {
                continue;
            }
            while let Some(bytes) = clients.sessions.get_mut(&id).unwrap().poll_transmit() {
                moved = true;
                c.handle_message(id, &bytes, now).unwrap();
            }
        }
        if !moved {
            return log;
        }
    }
}

/// The first release in `log`.
fn released<'a>(log: &'a [Action], what: &str) -> &'a Release {
    log.iter()
        .find_map(|a| match a {
            Action::Release(r) => Some(&**r),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{what}: {log:?}"))
}

/// Every release in `log`, in order.
fn all_released(log: &[Action]) -> Vec<&Release> {
    log.iter()
        .filter_map(|a| match a {
            Action::Release(r) => Some(&**r),
            _ => None,
        })
        .collect()
}

/// Every task sent in `log`, decoded, in order.
fn tasks_sent(log: &[Action]) -> Vec<Task> {
    log.iter()
        .filter_map(|a| match a {
            Action::Send { message, .. }
                if MessageType::peek(message) == Some(MessageType::Task) =>
            {
                Some(Task::decode(message, 1 << 20).unwrap().1)
            }
            _ => None,
        })
        .collect()
}

/// Four clients connected to a round that needs three of them.
fn four_connected_three_needed() -> (Clients, Coordinator, Instant) {
    let clients = Clients::new(4);
    let mut p = plan(3);
    p.max_clients = 4;
    let mut c = clients.coordinator(p, None);
    let now = Instant::now();
    connect_all(&mut c, 4, now);
    (clients, c, now)
}

fn connect_all(c: &mut Coordinator, n: u32, now: Instant) {
    for id in 0..n {
        c.connected(id, now).unwrap();
    }
}

#[test]
fn a_round_persists_its_id_before_sending_and_releases_in_order() {
    let mut clients = Clients::new(4);
    let mut c = clients.coordinator(plan(4), None);
    let now = Instant::now();
    connect_all(&mut c, 4, now);
    let log = run_until_quiet(&mut c, &mut clients, now, &[]);
    // The round id is persisted before anything of the round is sent.
    let save = log
        .iter()
        .position(|a| matches!(a, Action::SaveCounters(k) if k.next_round_id == 2))
        .unwrap();
    let first_send = log
        .iter()
        .position(|a| matches!(a, Action::Send { .. }))
        .unwrap();
    assert!(save < first_send, "{log:?}");
    // The task is one shared message per round, sent to each participant
    // before its RoundConfig.
    let first_release = log
        .iter()
        .position(|a| matches!(a, Action::Release(_)))
        .unwrap();
    let tasks: Vec<&Arc<Vec<u8>>> = log[..first_release]
        .iter()
        .filter_map(|a| match a {
            Action::Send { message, .. }
                if MessageType::peek(message) == Some(MessageType::Task) =>
            {
                Some(message)
            }
            _ => None,
        })
        .collect();
    assert_eq!(tasks.len(), 4);
    assert!(tasks.windows(2).all(|w| Arc::ptr_eq(w[0], w[1])));
    // One release, with the exact sum (1 + 2 + 3 + 4 quanta) and the
    // counters advanced, and then the next round starts (2 rounds planned).
    let release = released(&log, "released");
    assert_eq!(release.sum.as_deref(), Some(&[10_u64; D as usize][..]));
    assert_eq!(release.counters.released_rounds, 1);
    assert_eq!(release.record.outcome, Outcome::Released);
    assert_eq!(release.record.included, vec![0, 1, 2, 3]);
    assert!(release.ledger_line.is_none());
    // The second round runs to its release, then the run stops.
    assert!(
        matches!(log.last(), Some(Action::Stop(StopReason::RoundsDone))),
        "{:?}",
        log.last()
    );
    assert_eq!(c.counters().released_rounds, 2);
    assert_eq!(c.counters().next_round_id, 3);
}

#[test]
fn stale_and_foreign_messages_cost_only_their_sender() {
    let mut clients = Clients::new(5);
    let mut c = clients.coordinator(plan(4), None);
    let now = Instant::now();
    // Four connect: the round waits start_delay for the fifth.
    connect_all(&mut c, 4, now);
    assert!(c.round().is_none());
    assert_eq!(c.poll_timeout(), Some(now + Duration::from_secs(1)));
    c.handle_timeout(now + Duration::from_secs(1)).unwrap();
    assert_eq!(c.round(), Some(1));
    // The fifth connects now: in the pool, not in the round.
    c.connected(4, now).unwrap();
    // A message of round 0 is stale: ignored, nobody disconnected.
    let stale = [1_u8, 2, 0, 0, 0, 0, 0, 0, 0, 0];
    c.handle_message(0, &stale, now).unwrap();
    // A message from outside the cohort is a violation of its sender only.
    let foreign = [1_u8, 2, 0, 0, 0, 0, 0, 0, 0, 1];
    c.handle_message(4, &foreign, now).unwrap();
    let log = run_until_quiet(&mut c, &mut clients, now, &[]);
    let disconnects: Vec<_> = log
        .iter()
        .filter_map(|a| match a {
            Action::Disconnect { participant, .. } => Some(*participant),
            _ => None,
        })
        .collect();
    assert_eq!(disconnects, vec![4]);
    let release = released(&log, "the round is released");
    assert_eq!(release.record.included, vec![0, 1, 2, 3]);
}

#[test]
fn a_participant_that_reconnects_mid_round_is_dropped_from_it() {
    let (mut clients, mut c, now) = four_connected_three_needed();
    // Every client has its task and config; client 2 reconnects before it
    // says anything: it lost its round state.
    while let Some(action) = c.poll_action() {
        if let Action::Send { to, message } = &action {
            clients.deliver(*to, message, now);
        }
    }
    c.connected(2, now).unwrap();
    let log = run_until_quiet(&mut c, &mut clients, now, &[2]);
    let release = released(&log, "released without it");
    assert_eq!(release.record.included, vec![0, 1, 3]);
    assert_eq!(release.sum.as_deref(), Some(&[1 + 2 + 4; D as usize][..]));
}

#[test]
fn a_silent_participant_is_dropped_at_the_deadline_and_the_round_goes_on() {
    let (mut clients, mut c, now) = four_connected_three_needed();
    run_until_quiet(&mut c, &mut clients, now, &[1]);
    let deadline = c.poll_timeout().expect("a phase deadline");
    c.handle_timeout(deadline).unwrap();
    let log = run_until_quiet(&mut c, &mut clients, deadline, &[1]);
    let release = released(&log, "released without it");
    assert_eq!(release.record.included, vec![0, 2, 3]);
    assert_eq!(release.sum.as_deref(), Some(&[1 + 3 + 4; D as usize][..]));
}

#[test]
fn a_run_whose_next_round_would_pass_the_budget_stops_before_it_starts() {
    let clients = Clients::new(4);
    let mut p = plan(4);
    p.privacy = Some(PrivacyPlan {
        noise_multiplier: 0.5,
        delta: 1e-5,
        budget: 0.01,
    });
    let mut c = clients.coordinator(p, Some(Ledger::open(&[], 0.01, 1e-5).unwrap()));
    let now = Instant::now();
    connect_all(&mut c, 4, now);
    let actions: Vec<_> = std::iter::from_fn(|| c.poll_action()).collect();
    assert_eq!(actions, vec![Action::Stop(StopReason::BudgetExhausted)]);
    assert!(c.round().is_none());
}

#[test]
fn a_plan_with_privacy_needs_its_ledger_and_a_roster_big_enough() {
    let clients = Clients::new(3);
    let mut p = plan(3);
    p.privacy = Some(PrivacyPlan {
        noise_multiplier: 1.0,
        delta: 1e-5,
        budget: 10.0,
    });
    let resume = || Resume {
        counters: Counters::new(D),
        model: vec![0.0; D as usize],
        ledger: None,
        standardization: None,
    };
    let err = Coordinator::new(
        p,
        clients.roster.clone(),
        3,
        resume(),
        Box::new(KeepModel),
        [0; 32],
    )
    .unwrap_err();
    assert!(err.to_string().contains("privacy"), "{err}");
    let err = Coordinator::new(
        plan(4),
        clients.roster,
        3,
        resume(),
        Box::new(KeepModel),
        [0; 32],
    )
    .unwrap_err();
    assert!(err.to_string().contains("min_clients"), "{err}");
}

#[test]
fn evaluation_rounds_follow_every_nth_and_the_last_training_round_and_each_is_accounted() {
    let mut clients = Clients::new(4);
    let mut p = plan(4);
    p.rounds = 3;
    p.training = Some(TrainingSpec {
        architecture: "logistic".into(),
        features: (0..7).map(|i| format!("x{i}")).collect(),
        classes: vec!["no".into(), "yes".into()],
        optimizer: LocalOptimizer::Sgd,
        epochs: 1,
        batch_size: 8,
        learning_rate: 0.1,
        holdout: 0.25,
        standardization: None,
    });
    p.evaluation = Some(EvaluationPlan {
        every: 2,
        row_cap: 100,
    });
    p.privacy = Some(PrivacyPlan {
        noise_multiplier: 1.0,
        delta: 1e-5,
        budget: 1e6,
    });
    let mut c = clients.coordinator(p.clone(), Some(Ledger::open(&[], 1e6, 1e-5).unwrap()));
    let now = Instant::now();
    connect_all(&mut c, 4, now);
    let log = run_until_quiet(&mut c, &mut clients, now, &[]);
    let releases = all_released(&log);
    // Train 1, train 2, evaluate 2, train 3, evaluate 3 (the last), stop.
    let kinds: Vec<(RoundKind, u64)> = releases
        .iter()
        .map(|r| (r.record.kind, r.record.training_round))
        .collect();
    assert_eq!(
        kinds,
        [
            (RoundKind::Train, 1),
            (RoundKind::Train, 2),
            (RoundKind::Evaluate, 2),
            (RoundKind::Train, 3),
            (RoundKind::Evaluate, 3),
        ]
    );
    assert!(matches!(
        log.last(),
        Some(Action::Stop(StopReason::RoundsDone))
    ));
    for r in &releases {
        // Each release is accounted, an evaluation's too.
        assert!(r.ledger_line.is_some(), "{:?}", r.record);
        let evaluation = r.record.kind == RoundKind::Evaluate;
        // An evaluation changes no model and keeps no sum; it records what
        // it found.
        assert_eq!(r.model.is_none(), evaluation);
        assert_eq!(r.record.evaluation.is_some(), evaluation);
    }
    // An evaluation round sums the short input of SPEC.md §10.14, in its
    // own ring, under the task that says so.
    let eval_task = tasks_sent(&log)
        .into_iter()
        .find(|t| t.purpose != Purpose::Train)
        .unwrap();
    assert_eq!(eval_task.purpose, Purpose::Evaluate { row_cap: 100 });
    assert_eq!(eval_task.input_len(), evaluation_len(2));
    assert_eq!(eval_task.clip_norm, EVALUATION_CLIP_NORM);
    assert!(eval_task.noise_variance > 0.0);
    assert_eq!(
        releases[2].record.ring_bits,
        p.ring_bits_for(&eval_task.purpose).unwrap()
    );
}

fn statistics_plan(features: usize) -> RoundPlan {
    let mut p = plan(4);
    p.rounds = 1;
    p.training = Some(TrainingSpec {
        architecture: "logistic".into(),
        features: (0..features).map(|i| format!("x{i}")).collect(),
        classes: vec!["no".into(), "yes".into()],
        optimizer: LocalOptimizer::Sgd,
        epochs: 1,
        batch_size: 8,
        learning_rate: 0.1,
        holdout: 0.0,
        standardization: None,
    });
    p.statistics = Some(StatisticsPlan {
        row_cap: 100,
        bounds: vec![10.0; features],
    });
    p
}

#[test]
fn the_statistics_round_comes_first_and_its_result_is_every_later_task_s_standardisation() {
    // Three features: a statistics input of 1 + 2·3 = 7 values, one fewer
    // than D, so a training input is told apart by its length.
    let mut clients = Clients::new(4);
    let mut c = clients.coordinator(statistics_plan(3), None);
    let now = Instant::now();
    connect_all(&mut c, 4, now);
    let log = run_until_quiet(&mut c, &mut clients, now, &[]);
    let releases = all_released(&log);
    let kinds: Vec<RoundKind> = releases.iter().map(|r| r.record.kind).collect();
    assert_eq!(kinds, [RoundKind::Statistics, RoundKind::Train]);
    // Four rows (0, 0, 0), (1, 1, 1), …: mean 1.5, deviation √1.25.
    let released = releases[0].standardization.clone().expect("released");
    for (m, sd) in released.0.iter().zip(&released.1) {
        assert!((m - 1.5).abs() < 1e-4 && (sd - 1.25_f32.sqrt()).abs() < 1e-4);
    }
    assert!(releases[0].model.is_none());
    assert_eq!(
        releases[0].record.statistics.as_ref().map(|s| &s.mean),
        Some(&released.0)
    );
    let tasks = tasks_sent(&log);
    let first = &tasks[0];
    assert!(matches!(first.purpose, Purpose::Statistics { .. }));
    assert_eq!(first.input_len(), statistics_len(3));
    assert!(first.training.as_ref().unwrap().standardization.is_none());
    let train = tasks.last().unwrap();
    assert_eq!(train.purpose, Purpose::Train);
    assert_eq!(
        train.training.as_ref().unwrap().standardization,
        Some(released)
    );
}

#[test]
fn a_restarted_server_with_released_statistics_trains_at_once_and_a_plan_without_them_refuses_them()
{
    let mut clients = Clients::new(4);
    let restored = (vec![1.0, 2.0, 3.0], vec![0.5, 0.5, 0.5]);
    let resume = |standardization| Resume {
        counters: Counters::new(D),
        model: vec![0.0; D as usize],
        ledger: None,
        standardization,
    };
    let mut c = Coordinator::new(
        statistics_plan(3),
        clients.roster.clone(),
        4,
        resume(Some(restored.clone())),
        Box::new(KeepModel),
        [9; 32],
    )
    .unwrap();
    let now = Instant::now();
    connect_all(&mut c, 4, now);
    let log = run_until_quiet(&mut c, &mut clients, now, &[]);
    let kinds: Vec<RoundKind> = log
        .iter()
        .filter_map(|a| match a {
            Action::Release(r) => Some(r.record.kind),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, [RoundKind::Train]);
    let task = clients.tasks.values().next().unwrap();
    assert_eq!(
        task.training.as_ref().unwrap().standardization,
        Some(restored.clone())
    );
    // Released statistics in the state, and a plan with no statistics
    // round: refused, naming it.
    let mut p = statistics_plan(3);
    p.statistics = None;
    let err = Coordinator::new(
        p,
        clients.roster.clone(),
        4,
        resume(Some(restored)),
        Box::new(KeepModel),
        [9; 32],
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            veil_round::Error::Plan {
                field: "statistics",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_statistics_sum_of_no_rows_is_discarded_before_the_ledger_and_tried_again() {
    let mut clients = Clients::new(4);
    clients.no_rows.push(1);
    let mut p = statistics_plan(3);
    p.privacy = Some(PrivacyPlan {
        noise_multiplier: 1.0,
        delta: 1e-5,
        budget: 1e6,
    });
    let ledger = Ledger::open(&[], 1e6, 1e-5).unwrap();
    let mut c = clients.coordinator(p, Some(ledger));
    let now = Instant::now();
    connect_all(&mut c, 4, now);
    let log = run_until_quiet(&mut c, &mut clients, now, &[]);
    // Round 1 counted no rows: discarded, its participants told, nothing
    // in the ledger; round 2 gives the statistics, round 3 trains.
    let ended: Vec<&RoundRecord> = log
        .iter()
        .filter_map(|a| match a {
            Action::Ended(r) => Some(&**r),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(
        (ended[0].round_id, ended[0].outcome),
        (1, Outcome::Discarded)
    );
    let releases = all_released(&log);
    let kinds: Vec<(u64, RoundKind)> = releases
        .iter()
        .map(|r| (r.record.round_id, r.record.kind))
        .collect();
    assert_eq!(kinds, [(2, RoundKind::Statistics), (3, RoundKind::Train)]);
    // Every ledger line is in a release, and the counters count exactly
    // those: the in-memory ledger never runs ahead of its file.
    assert!(releases.iter().all(|r| r.ledger_line.is_some()));
    assert_eq!(c.counters().ledger_lines, Some(2));
    assert_eq!(releases[1].counters.ledger_lines, Some(2));
    assert_eq!(releases[0].counters.ledger_lines, Some(1));
}
