//! `veil simulate`: a whole federated training run on this machine. A
//! server and every client run in this process and talk real QUIC (mutual
//! TLS) on 127.0.0.1 through veil-net; each client trains with veil-learn
//! on its own rows, and its update is clipped, quantised, noised (veil-dp)
//! and masked (veil-secagg) before it leaves.
//!
//! - `settings`: flags, config file and defaults, and the data set;
//! - this module: calibration, the SecAgg and round plan, the run;
//! - `report`: the metrics of each round and the summary's figures;
//! - `plots`: the accuracy, loss and ε plots.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use veil_learn::checkpoint::ModelCard;
use veil_learn::dp_sgd::{DpSgd, schedule};
use veil_learn::model::Architecture;
use veil_learn::partition::partition;
use veil_net::client::run_client;
use veil_net::local::LocalDeployment;
use veil_net::server::{EvaluationPlan, StatisticsPlan};
use veil_net::server::{
    PrivacyPlan, RoundPlan, RoundReport, SecAggPlan, bind, run_in_memory, run_server,
};
use veil_secagg::messages::{LocalOptimizer, TrainingSpec};

use crate::failure::Failure;
use crate::learning::{Learner, Rows, Site, SiteDpSgd};

mod plots;
mod report;
mod settings;

use report::{Recorder, median, write_metrics};
pub(crate) use settings::SimulateArgs;
use settings::{DpMode, Standardize, Transport, settings};

/// 2^16 quanta per clipping norm: rounding moves the mean by less than
/// 2^-16·C per coordinate, and adds a negligible `d/4` to the squared
/// sensitivity the privacy accounting charges.
const SCALED_CLIP: f64 = 65_536.0;

/// The held-out rows a simulated site counts at full weight in a secure
/// evaluation: the most any site holds out (an operator's estimate in a
/// deployment). With DP each count's noise scales with it.
fn evaluation_row_cap(parts: &[Vec<usize>], holdout: f64) -> u32 {
    let most = parts
        .iter()
        .map(|rows| {
            (0..rows.len())
                .filter(|i| veil_secagg::messages::held_out(*i, holdout))
                .count()
        })
        .max()
        .unwrap_or(1);
    u32::try_from(most.max(1)).unwrap_or(u32::MAX)
}

/// Each column's bound for the statistics round (a regression's label is
/// the last column): the largest magnitude in the training rows, or 1 for
/// a column of zeros (in a deployment, the operator's known range).
fn feature_bounds(train: &veil_learn::dataset::Dataset) -> Vec<f32> {
    let d = train.dim().max(1);
    let mut bounds = vec![0.0_f32; train.dim()];
    for (i, x) in train.features.iter().enumerate() {
        if let Some(b) = bounds.get_mut(i % d)
            && x.is_finite()
        {
            *b = b.max(x.abs());
        }
    }
    if let Some(targets) = &train.targets {
        bounds.push(
            targets
                .iter()
                .filter(|t| t.is_finite())
                .fold(0.0_f32, |m, t| m.max(t.abs())),
        );
    }
    for b in &mut bounds {
        if *b <= f32::EPSILON {
            *b = 1.0;
        }
    }
    bounds
}

/// Runs `veil simulate` and returns its summary.
pub(crate) fn run(args: &SimulateArgs) -> Result<String, Failure> {
    let s = settings(args)?;
    let started = Instant::now();
    let parts =
        partition(&s.strata(), s.clients, s.partition, s.seed).map_err(|e| e.to_string())?;
    let d = s.spec.num_params();
    let dimension = u32::try_from(d).map_err(|_| "model too large".to_owned())?;
    // Example-level DP-SGD: each client calibrates its own noise for its
    // sampling rate and steps; ε is per client, at the example level.
    let mut dp_sgd_plans = Vec::new();
    let mut example_epsilon = Vec::new();
    if s.dp == DpMode::DpSgd {
        for rows in &parts {
            let (q, steps) = schedule(rows.len(), &s.local);
            let total = steps.saturating_mul(s.rounds);
            let z = match s.noise_multiplier {
                Some(z) => z,
                None => veil_dp::calibrate::noise_multiplier(
                    s.epsilon.unwrap_or(8.0),
                    s.delta,
                    q,
                    total,
                )
                .map_err(|e| e.to_string())?,
            };
            dp_sgd_plans.push((z, q, steps));
        }
        for r in 1..=s.rounds {
            let mut worst = 0.0_f64;
            for &(z, q, steps) in &dp_sgd_plans {
                let eps = veil_dp::calibrate::epsilon(
                    z,
                    q,
                    steps.saturating_mul(r),
                    s.delta,
                    veil_dp::rdp::Conversion::Improved,
                )
                .map_err(|e| e.to_string())?;
                worst = worst.max(eps);
            }
            example_epsilon.push(worst);
        }
    }
    // The recommended parameters for 5 % colluding clients (SPEC §9.3):
    // SecAgg+ where a sparse graph completes the round, else the complete
    // graph (classic SecAgg) with its smallest valid threshold.
    let expected_dropout = s.dropout.max(0.05);
    let secagg = SecAggPlan {
        expected_dropout,
        corrupt_fraction: 0.05,
        complete_graph_threshold: None,
    };
    let rec = secagg
        .parameters(s.clients)
        .map_err(|e| format!("secure aggregation for {} clients: {e}", s.clients))?;
    let secagg_text = format!(
        "{} with k = {}, t = {} for a full cohort, withstanding {} colluding client{}",
        if rec.complete {
            "classic SecAgg"
        } else {
            "SecAgg+"
        },
        rec.degree,
        rec.threshold,
        rec.max_corrupt,
        if rec.max_corrupt == 1 { "" } else { "s" }
    );
    let plan = RoundPlan {
        dimension,
        rounds: s.rounds,
        sampling_rate: 1.0,
        min_clients: s.min_survivors,
        max_clients: s.clients,
        start_delay: Duration::from_secs(10),
        phase_timeout: s.phase_timeout,
        secagg,
        clip_norm: s.clip_norm,
        scale: SCALED_CLIP / s.clip_norm,
        privacy: None,
        keep_sums: false,
        evaluation: (s.evaluate_every > 0).then_some(EvaluationPlan {
            every: s.evaluate_every,
            row_cap: evaluation_row_cap(&parts, s.holdout),
        }),
        statistics: (s.standardize == Standardize::Secure).then(|| StatisticsPlan {
            row_cap: parts
                .iter()
                .map(Vec::len)
                .max()
                .and_then(|m| u32::try_from(m).ok())
                .unwrap_or(1)
                .max(1),
            bounds: feature_bounds(&s.train),
        }),
        training: Some(TrainingSpec {
            architecture: s.spec.architecture.to_string(),
            features: s.train.feature_names.clone(),
            classes: (0..s.spec.classes).map(|c| c.to_string()).collect(),
            optimizer: match s.local.optimizer {
                veil_learn::train::LocalOptimizer::Adam => LocalOptimizer::Adam,
                _ => LocalOptimizer::Sgd,
            },
            epochs: u32::try_from(s.local.epochs).map_err(|_| "local epochs out of range")?,
            batch_size: u32::try_from(s.local.batch_size).map_err(|_| "batch size out of range")?,
            learning_rate: s.local.learning_rate,
            holdout: s.holdout,
            standardization: match s.standardize {
                Standardize::Pooled => Some((s.scaler.mean().to_vec(), s.scaler.std().to_vec())),
                // The statistics round gives it.
                Standardize::Secure => None,
            },
        }),
    };
    // Distributed DP, calibrated by the plan for the distributed discrete
    // Gaussian the ledger accounts (the fewest shares a released sum
    // holds, the model's dimension, SCALED_CLIP quanta) over every release
    // of the run: training rounds, secure evaluations, a statistics round.
    let privacy = match s.dp {
        DpMode::Off | DpMode::DpSgd => None,
        DpMode::Distributed => Some(PrivacyPlan {
            noise_multiplier: match s.noise_multiplier {
                Some(z) => z,
                None => plan
                    .calibrate(s.epsilon.unwrap_or(8.0), s.delta)
                    .map_err(|e| Failure::Config(e.to_string()))?,
            },
            delta: s.delta,
            // The budget is what the run was calibrated for, plus the
            // calibration's tolerance.
            budget: s.epsilon.unwrap_or(f64::MAX / 4.0) * 1.001 + 1e-9,
        }),
    };
    let mut plan = plan;
    plan.privacy = privacy;
    // Every check before the run directory exists: a refused run leaves
    // nothing behind.
    plan.check().map_err(|e| Failure::Config(e.to_string()))?;
    std::fs::create_dir_all(&s.out)
        .map_err(|e| Failure::Io(format!("{}: {e}", s.out.display())))?;
    let deployment = LocalDeployment::generate(s.clients)?;
    let rows = Arc::new(Mutex::new(Vec::new()));
    let progress = ProgressBar::new(s.rounds);
    progress.set_style(
        ProgressStyle::with_template("round {pos}/{len} [{bar:30}] {elapsed} {msg}")
            .map_err(|e| e.to_string())?
            .progress_chars("=> "),
    );
    let initial = s.spec.init(s.seed);
    let mut recorder = Recorder {
        spec: s.spec.clone(),
        test: s.test.clone(),
        standardized: (s.standardize == Standardize::Pooled).then(|| {
            let mut test = s.test.clone();
            s.scaler.apply(&mut test);
            test
        }),
        label_scaler: (s.standardize == Standardize::Pooled).then(|| s.scaler.clone()),
        rows: Arc::clone(&rows),
        progress: progress.clone(),
        example_epsilon,
    };
    let server_model = Learner::new(
        s.server,
        d,
        Some(Box::new(move |report: &RoundReport, model: &[f32]| {
            recorder.released(report, model);
        })),
    )
    .map_err(|e| e.to_string())?;
    let options = deployment.server_options(
        s.out.join("state"),
        plan,
        Box::new(server_model),
        Some(initial),
    );
    let mut sources = Vec::with_capacity(parts.len());
    for (i, rows) in parts.iter().enumerate() {
        // Each site gets its raw rows and trains exactly as a deployed
        // `veil client --data` does, from the task's training spec.
        let mut site = Site::new(
            Rows::Given(s.train.subset(rows)),
            s.seed.wrapping_add(i as u64 + 1),
        );
        site.dropout = (s.dropout > 0.0).then(|| {
            (
                s.dropout,
                ChaCha20Rng::seed_from_u64(s.seed.wrapping_mul(31).wrapping_add(i as u64)),
            )
        });
        if let Some(&(z, _, _)) = dp_sgd_plans.get(i) {
            // Each site's own ledger of its DP-SGD rounds, enforcing the
            // target it was calibrated for (calibration lands at most on
            // it, rounding the noise up), as a site would.
            let dir = s.out.join(format!("sites/site-{:03}", i + 1));
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            site.dp_sgd = Some(SiteDpSgd::new(
                DpSgd {
                    clip_norm: s.clip_norm,
                    noise_multiplier: z,
                },
                ChaCha20Rng::from_rng(&mut rand::rng()),
                s.epsilon.unwrap_or(f64::MAX / 4.0),
                s.delta,
                Some(dir.join("ledger.jsonl")),
            )?);
        }
        sources.push(site);
    }
    let state_dir = options.state_dir.clone();
    let summary = match s.transport {
        Transport::Quic => run_quic(&deployment, options, sources, dimension)?,
        Transport::Memory => {
            let clients = sources
                .into_iter()
                .enumerate()
                .map(|(i, source)| deployment.memory_client(i, Box::new(source)))
                .collect::<Result<Vec<_>, _>>()?;
            run_in_memory(
                options.plan,
                &deployment.roster,
                &options.state_dir,
                options.model,
                options.initial_model.as_deref(),
                clients,
            )?
        }
    };
    progress.finish();
    let rows = rows.lock().map_err(|_| "metrics lost".to_owned())?.clone();
    // The released model, once, as named tensors with its card (features,
    // classes, standardisation, round, privacy) beside the run's metrics.
    let model = veil_net::state::load_model(&state_dir.join("model.safetensors"), dimension)?;
    let card = ModelCard {
        architecture: s.spec.architecture.clone(),
        features: s.train.feature_names.clone(),
        classes: (0..s.spec.classes).map(|c| c.to_string()).collect(),
        standardization: match veil_net::state::read_standardization(
            &state_dir.join("standardization.json"),
        )? {
            Some((mean, std)) => Some(
                veil_learn::dataset::Standardizer::from_parts(mean, std)
                    .map_err(|e| Failure::Run(e.to_string()))?,
            ),
            None => Some(s.scaler.clone()),
        },
        training_round: summary.released_rounds,
        privacy: rows.last().and_then(|r| r.epsilon).map(|e| (e, s.delta)),
    };
    let checkpoint = veil_learn::checkpoint::encode_card(&card, &model)
        .map_err(|e| Failure::Run(e.to_string()))?;
    veil_net::files::write_atomic(&s.out.join("model.safetensors"), &checkpoint, false)?;
    write_metrics(&s.out, &rows).map_err(Failure::Io)?;
    let plots = plots::draw(
        &s.out,
        &rows.iter().map(plots::Point::from_row).collect::<Vec<_>>(),
    )?;
    let last = rows.last().ok_or("no round was released")?;
    let mut text = format!(
        "veil simulate: {}, {} clients ({}), {}, {} rounds {} in {:.1} s\n",
        s.data_name,
        s.clients,
        s.partition_text,
        match &s.spec.architecture {
            Architecture::Logistic => "logistic regression".to_owned(),
            Architecture::Linear => "linear regression".to_owned(),
            Architecture::Mlp { hidden } => format!("MLP {hidden:?}"),
            Architecture::Cnn { channels } => format!("CNN ({channels} 3x3 kernels)"),
        },
        summary.released_rounds,
        match s.transport {
            Transport::Quic => "over QUIC on 127.0.0.1",
            Transport::Memory => "in memory",
        },
        started.elapsed().as_secs_f64()
    );
    text += &match last.test_r2 {
        Some(r2) => format!(
            "test R² {r2:.4}, mean squared error {:.1} (RMSE {:.2}, in the label's units) (held-out rows: {})\n",
            last.test_loss,
            last.test_loss.sqrt(),
            s.test.rows()
        ),
        None => format!(
            "test accuracy {:.4}{}, loss {:.4} (held-out rows: {})\n",
            last.test_accuracy,
            last.test_auc
                .map(|a| format!(", ROC-AUC {a:.4}"))
                .unwrap_or_default(),
            last.test_loss,
            s.test.rows()
        ),
    };
    if let Some(row) = rows.iter().rev().find(|r| r.secure_r2.is_some()) {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.4}"));
        text += &format!(
            "secure evaluation of round {} on the sites' held-out rows ({} of each site's rows; only the sums left the sites): R² {}, mean squared error {}{}\n",
            row.round,
            s.holdout,
            opt(row.secure_r2),
            opt(row.secure_loss),
            row.secure_count_noise
                .map(|n| format!(" (with DP: noise of std {n:.0} rows on each count)"))
                .unwrap_or_default()
        );
    }
    if let Some(row) = rows.iter().rev().find(|r| r.secure_accuracy.is_some()) {
        let opt = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.4}"));
        text += &format!(
            "secure evaluation of round {} on the sites' held-out rows ({} of each site's rows; only the sums left the sites): accuracy {}, ROC-AUC {}, loss {}{}\n",
            row.round,
            s.holdout,
            opt(row.secure_accuracy),
            opt(row.secure_auc),
            opt(row.secure_loss),
            row.secure_count_noise
                .map(|n| format!(" (with DP: noise of std {n:.0} rows on each count)"))
                .unwrap_or_default()
        );
    }
    text += &match (s.dp, last.epsilon, privacy) {
        (DpMode::Distributed, Some(eps), Some(p)) => format!(
            "privacy: distributed discrete Gaussian, noise multiplier {:.4}, epsilon {eps:.3} at delta {} (ledger: {})\n",
            p.noise_multiplier,
            s.delta,
            s.out.join("state/ledger.jsonl").display()
        ),
        (DpMode::DpSgd, Some(eps), _) => {
            let zs: Vec<f64> = dp_sgd_plans.iter().map(|p| p.0).collect();
            let lo = zs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = zs.iter().copied().fold(0.0, f64::max);
            format!(
                "privacy: example-level DP-SGD in each client (clip {}, noise multipliers {lo:.3}..{hi:.3}), epsilon {eps:.3} at delta {} for the worst client; the sums carry no further noise (site ledgers: {})\n",
                s.clip_norm,
                s.delta,
                s.out.join("sites/site-NNN/ledger.jsonl").display()
            )
        }
        _ => "privacy: off (the released sums carry no noise)\n".to_owned(),
    };
    text += &format!("secure aggregation: {secagg_text}\n");
    let (up, down, unit): (Vec<u64>, Vec<u64>, &str) = match s.transport {
        Transport::Quic => (
            rows.iter().map(|r| r.udp_bytes_up_per_client).collect(),
            rows.iter().map(|r| r.udp_bytes_down_per_client).collect(),
            "UDP",
        ),
        Transport::Memory => (
            rows.iter().map(|r| r.bytes_up_per_client).collect(),
            rows.iter().map(|r| r.bytes_down_per_client).collect(),
            "messages",
        ),
    };
    text += &format!(
        "per round: {} B up and {} B down per client ({unit}, median), {} ms (median)\n",
        median(up),
        median(down),
        median(rows.iter().map(|r| r.ms).collect()),
    );
    text += &format!(
        "run directory: {} (metrics.csv, metrics.json, model.safetensors, {}, state/)",
        s.out.display(),
        plots.join(", ")
    );
    Ok(text)
}

/// Runs the server and the clients over real QUIC on 127.0.0.1.
fn run_quic(
    deployment: &LocalDeployment,
    options: veil_net::server::ServerOptions,
    sources: Vec<Site>,
    dimension: u32,
) -> Result<veil_net::server::ServerSummary, Failure> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Run(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let endpoint = bind(&options)?;
        let addr = endpoint
            .local_addr()
            .map_err(|e| Failure::Network(e.to_string()))?;
        let server = tokio::spawn(run_server(options, endpoint, std::future::pending()));
        let mut clients = Vec::new();
        for (i, mut source) in sources.into_iter().enumerate() {
            let options = deployment.client_options(i, addr, dimension)?;
            clients.push(tokio::spawn(async move {
                run_client(options, &mut source, std::future::pending()).await
            }));
        }
        let joined = |e: tokio::task::JoinError| Failure::Run(e.to_string());
        let summary = server.await.map_err(joined)??;
        for c in clients {
            c.await.map_err(joined)??;
        }
        Ok(summary)
    })
}
