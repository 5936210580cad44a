//! `veil privacy`: plan, calibrate and audit privacy budgets.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use veil_dp::Error;
use veil_dp::calibrate;
use veil_dp::ledger;
use veil_dp::pld::PldAccountant;
use veil_dp::rdp::{Conversion, RdpAccountant};

/// Privacy planning and auditing.
#[derive(Debug, Subcommand)]
pub(crate) enum PrivacyCommand {
    /// Epsilon spent after some rounds of the Poisson-subsampled Gaussian.
    Epsilon(EpsilonArgs),
    /// The smallest noise multiplier that meets a target (epsilon, delta).
    Calibrate(CalibrateArgs),
    /// Epsilon after 10, 100 and 1000 rounds for a few noise multipliers.
    Plan(PlanArgs),
    /// Replay a privacy ledger: rounds, cumulative epsilon, budget left.
    Ledger(LedgerArgs),
}

/// Why a privacy command refused: the library's error, or arguments that
/// do not go together. One line.
#[derive(Debug)]
pub(crate) struct Refusal(String);

impl Refusal {
    /// Distributed mode without one of its three arguments.
    fn missing(arg: &str) -> Self {
        Self(format!(
            "--{arg} is missing: distributed mode needs --min-survivors, --dimension and --scale"
        ))
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Self(e.to_string())
    }
}

impl core::fmt::Display for Refusal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The accountant to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Accountant {
    /// Rényi DP with exact fractional orders.
    Rdp,
    /// Privacy loss distributions (tighter).
    Pld,
}

impl Accountant {
    fn name(self) -> &'static str {
        match self {
            Self::Rdp => "RDP",
            Self::Pld => "PLD",
        }
    }

    /// The library's accountant (RDP with the improved conversion).
    fn dp(self) -> calibrate::Accountant {
        match self {
            Self::Rdp => calibrate::Accountant::Rdp(Conversion::Improved),
            Self::Pld => calibrate::Accountant::Pld,
        }
    }
}

/// The RDP-to-(epsilon, delta) conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ConversionArg {
    /// The bound dp-accounting uses.
    Improved,
    /// Mironov 2017, Proposition 3.
    Classic,
}

#[derive(Debug, Args)]
pub(crate) struct EpsilonArgs {
    /// Noise standard deviation divided by the clipping norm.
    #[arg(long, allow_negative_numbers = true)]
    noise_multiplier: f64,
    /// Probability that a client takes part in a round (Poisson sampling).
    #[arg(long, allow_negative_numbers = true)]
    sampling_rate: f64,
    /// Number of rounds (or DP-SGD steps).
    #[arg(long, allow_negative_numbers = true)]
    rounds: i64,
    /// Target delta.
    #[arg(long, allow_negative_numbers = true)]
    delta: f64,
    /// Clipping norm (distributed mode: sets the sensitivity in quanta).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    clip_norm: f64,
    /// The accountant.
    #[arg(long, value_enum, default_value_t = Accountant::Rdp)]
    accountant: Accountant,
    /// The RDP conversion (RDP accountant only).
    #[arg(long, value_enum, default_value_t = ConversionArg::Improved)]
    conversion: ConversionArg,
    #[command(flatten)]
    distributed: DistributedArgs,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// Distributed mode: the sum of the clients' discrete-Gaussian shares,
/// accounted by Kairouz, Liu, Steinke 2021 (rounding included), with its
/// own accountant: given all of `--min-survivors`, `--dimension` and
/// `--scale`, and not `--accountant`. Its epsilon is the one `veil server`
/// enforces, against the coordinator, which sees the cohort it samples: no
/// amplification by sampling. With `--sampling-rate` below 1 the commands
/// also report the epsilon against those who see only the released models,
/// with Poisson sampling credited by the general bound of Zhu and Wang 2019
/// (Theorem 6).
#[derive(Debug, Args)]
pub(crate) struct DistributedArgs {
    /// Distributed mode: the fewest clients whose noise shares add up in a
    /// released sum (the secure-aggregation threshold t).
    #[arg(long, allow_negative_numbers = true)]
    min_survivors: Option<i64>,
    /// Distributed mode: the model dimension d (with --scale and
    /// --min-survivors; the mode has its own accountant).
    #[arg(long, allow_negative_numbers = true, conflicts_with = "accountant")]
    dimension: Option<i64>,
    /// Distributed mode: the quantisation scale (quanta per update unit).
    #[arg(long, allow_negative_numbers = true, conflicts_with = "accountant")]
    scale: Option<f64>,
}

/// The distributed deployment the arguments describe, if any.
fn deployment(
    d: &DistributedArgs,
    clip_norm: f64,
) -> Result<Option<veil_dp::distributed::Deployment>, Refusal> {
    let whole = |name, v: i64| {
        u64::try_from(v)
            .ok()
            .filter(|v| *v >= 1)
            .ok_or(Error::InvalidParameter {
                name,
                value: v as f64,
                expected: "a whole number >= 1",
            })
    };
    let clip_norm = check_clip(clip_norm)?;
    let (dimension, scale, t) = match (d.dimension, d.scale, d.min_survivors) {
        (None, None, None) => return Ok(None),
        (Some(dimension), Some(scale), Some(t)) => (dimension, scale, t),
        (_, _, None) => return Err(Refusal::missing("min-survivors")),
        (None, _, Some(_)) => return Err(Refusal::missing("dimension")),
        (_, None, _) => return Err(Refusal::missing("scale")),
    };
    if !(scale.is_finite() && scale > 0.0) {
        return Err(Error::InvalidParameter {
            name: "scale",
            value: scale,
            expected: "a finite number > 0",
        }
        .into());
    }
    Ok(Some(veil_dp::distributed::Deployment {
        clients: whole("min-survivors", t)?,
        dimension: whole("dimension", dimension)?,
        scaled_clip: clip_norm * scale,
    }))
}

/// A sampling rate in (0, 1].
fn check_rate(q: f64) -> Result<f64, Error> {
    if q.is_finite() && q > 0.0 && q <= 1.0 {
        Ok(q)
    } else {
        Err(Error::InvalidParameter {
            name: "sampling-rate",
            value: q,
            expected: "a number in (0, 1]",
        })
    }
}

fn check_clip(clip_norm: f64) -> Result<f64, Error> {
    if clip_norm.is_finite() && clip_norm > 0.0 {
        Ok(clip_norm)
    } else {
        Err(Error::InvalidParameter {
            name: "clip-norm",
            value: clip_norm,
            expected: "a finite number > 0",
        })
    }
}

#[derive(Debug, Args)]
pub(crate) struct CalibrateArgs {
    /// Target epsilon.
    #[arg(long, allow_negative_numbers = true)]
    epsilon: f64,
    /// Target delta.
    #[arg(long, allow_negative_numbers = true)]
    delta: f64,
    /// Probability that a client takes part in a round.
    #[arg(long, allow_negative_numbers = true)]
    sampling_rate: f64,
    /// Number of rounds.
    #[arg(long, allow_negative_numbers = true)]
    rounds: i64,
    /// Clipping norm, to report the noise standard deviation in update units.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    clip_norm: f64,
    /// Distributed mode (all of `--min-survivors`, `--dimension`,
    /// `--scale`): calibrated for the distributed discrete Gaussian, the
    /// mechanism `veil server` and `simulate` run, and split into each
    /// client's share.
    #[command(flatten)]
    distributed: DistributedArgs,
    /// The accountant.
    #[arg(long, value_enum, default_value_t = Accountant::Rdp)]
    accountant: Accountant,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Probability that a client takes part in a round.
    #[arg(long, allow_negative_numbers = true)]
    sampling_rate: f64,
    /// Target delta.
    #[arg(long, allow_negative_numbers = true)]
    delta: f64,
    /// Noise multipliers to compare.
    #[arg(long, value_delimiter = ',', default_values_t = [0.5, 0.8, 1.0, 1.5, 2.0, 4.0], allow_negative_numbers = true)]
    noise_multipliers: Vec<f64>,
    /// Clipping norm (distributed mode: sets the sensitivity in quanta).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    clip_norm: f64,
    /// Distributed mode, as for `epsilon` and `calibrate`.
    #[command(flatten)]
    distributed: DistributedArgs,
    /// The accountant.
    #[arg(long, value_enum, default_value_t = Accountant::Rdp)]
    accountant: Accountant,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LedgerArgs {
    /// The ledger file (JSON lines), or a server's state directory: then
    /// its `ledger.jsonl` is also checked against `state.json`, which
    /// records the ledger's length and the hash of its last line (a
    /// truncated or replaced tail is refused).
    path: PathBuf,
    /// Also report the cumulative epsilon by the PLD accountant (the
    /// ledger records and enforces RDP).
    #[arg(long, value_enum, default_value_t = Accountant::Rdp)]
    accountant: Accountant,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

fn rounds_arg(rounds: i64) -> Result<u64, Error> {
    u64::try_from(rounds)
        .ok()
        .filter(|r| *r >= 1)
        .ok_or(Error::InvalidParameter {
            name: "rounds",
            value: rounds as f64,
            expected: "a whole number >= 1",
        })
}

fn conversion(c: ConversionArg) -> Conversion {
    match c {
        ConversionArg::Improved => Conversion::Improved,
        ConversionArg::Classic => Conversion::Classic,
    }
}

/// Runs a privacy command; returns what to print.
pub(crate) fn run(command: &PrivacyCommand) -> Result<String, Refusal> {
    match command {
        PrivacyCommand::Epsilon(a) => epsilon(a),
        PrivacyCommand::Calibrate(a) => calibrate_cmd(a),
        PrivacyCommand::Plan(a) => plan(a),
        PrivacyCommand::Ledger(a) => ledger_cmd(a),
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

#[derive(Serialize)]
struct EpsilonOut {
    accountant: &'static str,
    conversion: Option<&'static str>,
    noise_multiplier: f64,
    sampling_rate: f64,
    rounds: u64,
    delta: f64,
    epsilon: f64,
    optimal_order: Option<f64>,
}

fn epsilon(a: &EpsilonArgs) -> Result<String, Refusal> {
    let rounds = rounds_arg(a.rounds)?;
    if let Some(dep) = deployment(&a.distributed, a.clip_norm)? {
        return distributed_epsilon(a, rounds, &dep);
    }
    let (eps, order, conversion_name) = match a.accountant {
        Accountant::Rdp => {
            let mut acc = RdpAccountant::new();
            acc.compose_subsampled_gaussian(a.noise_multiplier, a.sampling_rate, rounds)?;
            let (eps, order) = acc.epsilon(a.delta, conversion(a.conversion))?;
            let name = match a.conversion {
                ConversionArg::Improved => "improved",
                ConversionArg::Classic => "classic",
            };
            (eps, Some(order), Some(name))
        }
        Accountant::Pld => {
            let mut acc = PldAccountant::new();
            acc.compose_subsampled_gaussian(a.noise_multiplier, a.sampling_rate, rounds)?;
            (acc.epsilon(a.delta)?, None, None)
        }
    };
    let out = EpsilonOut {
        accountant: match a.accountant {
            Accountant::Rdp => "rdp",
            Accountant::Pld => "pld",
        },
        conversion: conversion_name,
        noise_multiplier: a.noise_multiplier,
        sampling_rate: a.sampling_rate,
        rounds,
        delta: a.delta,
        epsilon: eps,
        optimal_order: order,
    };
    if a.json {
        return Ok(json(&out));
    }
    let (how, at) = match (conversion_name, order) {
        (Some(c), Some(o)) => (
            format!("RDP ({c} conversion)"),
            format!("   (at Rényi order {o})"),
        ),
        _ => (
            "PLD (privacy loss distribution, add-or-remove)".to_owned(),
            String::new(),
        ),
    };
    Ok(format!(
        "accountant        {how}\n\
         noise multiplier  {}\n\
         sampling rate     {}\n\
         rounds            {}\n\
         delta             {:e}\n\
         epsilon           {:.4}{at}",
        out.noise_multiplier, out.sampling_rate, rounds, out.delta, eps
    ))
}

#[derive(Serialize)]
struct DistributedEpsilonOut {
    accountant: &'static str,
    noise_multiplier: f64,
    sampling_rate: f64,
    rounds: u64,
    delta: f64,
    min_survivors: u64,
    dimension: u64,
    scaled_clip: f64,
    client_sigma_quanta: f64,
    l2_sensitivity_quanta: f64,
    tau: f64,
    epsilon: f64,
    /// With a sampling rate below 1: epsilon against those who see only
    /// the released models (Zhu–Wang 2019), not the coordinator.
    epsilon_sampling_credited: Option<f64>,
}

/// Epsilon with Poisson sampling at `q` credited (Zhu–Wang 2019), for
/// `q < 1`: against those who see only the released models.
fn sampled_epsilon(
    z: f64,
    q: f64,
    rounds: u64,
    delta: f64,
    dep: &veil_dp::distributed::Deployment,
) -> Result<Option<f64>, Error> {
    if q >= 1.0 {
        return Ok(None);
    }
    veil_dp::distributed::epsilon_sampled(z, q, rounds, delta, dep).map(Some)
}

/// The text line for [`sampled_epsilon`].
fn sampled_line(q: f64, eps: Option<f64>) -> String {
    eps.map_or_else(String::new, |e| {
        format!(
            "\nepsilon, sampled  {e:.4}   (rate {q} credited, Zhu-Wang 2019 Thm 6: against those who see only the released models)\n\
             {:18}the coordinator sees the cohort it samples: veil server enforces the epsilon without sampling",
            ""
        )
    })
}

fn distributed_epsilon(
    a: &EpsilonArgs,
    rounds: u64,
    dep: &veil_dp::distributed::Deployment,
) -> Result<String, Refusal> {
    check_rate(a.sampling_rate)?;
    let mech = veil_dp::distributed::DistributedDiscreteGaussian::from_noise_multiplier(
        a.noise_multiplier,
        dep.clients,
        dep.dimension,
        dep.scaled_clip,
    )?;
    let eps = veil_dp::distributed::epsilon(a.noise_multiplier, rounds, a.delta, dep)?;
    let credited = sampled_epsilon(a.noise_multiplier, a.sampling_rate, rounds, a.delta, dep)?;
    let out = DistributedEpsilonOut {
        accountant: "rdp-distributed-discrete-gaussian",
        noise_multiplier: a.noise_multiplier,
        sampling_rate: a.sampling_rate,
        rounds,
        delta: a.delta,
        min_survivors: dep.clients,
        dimension: dep.dimension,
        scaled_clip: dep.scaled_clip,
        client_sigma_quanta: mech.client_sigma(),
        l2_sensitivity_quanta: mech.l2_sensitivity(),
        tau: mech.tau(),
        epsilon: eps,
        epsilon_sampling_credited: credited,
    };
    if a.json {
        return Ok(json(&out));
    }
    let text = format!(
        "accountant        RDP, distributed discrete Gaussian (Kairouz-Liu-Steinke 2021)\n\
         noise multiplier  {}   (of a sum of {} shares)\n\
         per-client share  sigma {:.2} quanta   (scale {} x clip {})\n\
         sensitivity       {:.2} quanta after rounding (clip {:.2} quanta, d = {}), tau {:.3e}\n\
         sampling rate     {}\n\
         rounds            {}\n\
         delta             {:e}\n\
         epsilon           {:.4}   (against the coordinator: no sampling credited)",
        a.noise_multiplier,
        dep.clients,
        out.client_sigma_quanta,
        dep.scaled_clip / a.clip_norm,
        a.clip_norm,
        out.l2_sensitivity_quanta,
        dep.scaled_clip,
        dep.dimension,
        out.tau,
        a.sampling_rate,
        rounds,
        a.delta,
        eps
    );
    Ok(text + &sampled_line(a.sampling_rate, credited))
}

#[derive(Serialize)]
struct CalibrateOut {
    accountant: &'static str,
    epsilon_target: f64,
    delta: f64,
    sampling_rate: f64,
    rounds: u64,
    noise_multiplier: f64,
    epsilon_achieved: f64,
    clip_norm: f64,
    noise_std: f64,
    min_survivors: Option<u64>,
    per_client_noise_std: Option<f64>,
    /// Distributed mode: each client's discrete-Gaussian sigma in quanta.
    per_client_sigma_quanta: Option<f64>,
    /// Distributed mode with a sampling rate below 1: the epsilon this
    /// noise gives against those who see only the released models.
    epsilon_sampling_credited: Option<f64>,
}

fn calibrate_cmd(a: &CalibrateArgs) -> Result<String, Refusal> {
    let rounds = rounds_arg(a.rounds)?;
    check_clip(a.clip_norm)?;
    let dep = deployment(&a.distributed, a.clip_norm)?;
    let min_survivors = dep.as_ref().map(|d| d.clients);
    let acc = a.accountant.dp();
    let (z, achieved, credited) = match &dep {
        Some(dep) => {
            check_rate(a.sampling_rate)?;
            let z = veil_dp::distributed::noise_multiplier(a.epsilon, a.delta, rounds, dep)?;
            (
                z,
                veil_dp::distributed::epsilon(z, rounds, a.delta, dep)?,
                sampled_epsilon(z, a.sampling_rate, rounds, a.delta, dep)?,
            )
        }
        None => {
            let z =
                calibrate::noise_multiplier_by(acc, a.epsilon, a.delta, a.sampling_rate, rounds)?;
            (
                z,
                calibrate::epsilon_by(acc, z, a.sampling_rate, rounds, a.delta)?,
                None,
            )
        }
    };
    let noise_std = z * a.clip_norm;
    let per_client = min_survivors.map(|t| veil_dp::plan::client_sigma(z, a.clip_norm, t));
    let sigma_quanta = dep
        .as_ref()
        .map(|d| veil_dp::plan::client_sigma(z, d.scaled_clip, d.clients));
    let out = CalibrateOut {
        accountant: if dep.is_some() {
            "RDP, distributed discrete Gaussian"
        } else {
            a.accountant.name()
        },
        epsilon_target: a.epsilon,
        delta: a.delta,
        sampling_rate: a.sampling_rate,
        rounds,
        noise_multiplier: z,
        epsilon_achieved: achieved,
        clip_norm: a.clip_norm,
        noise_std,
        min_survivors,
        per_client_noise_std: per_client,
        per_client_sigma_quanta: sigma_quanta,
        epsilon_sampling_credited: credited,
    };
    if a.json {
        return Ok(json(&out));
    }
    let mut text = format!(
        "target            epsilon {} at delta {:e}, {} rounds, sampling rate {}\n\
         noise multiplier  {:.4}   (gives epsilon {:.4}, {} accountant)\n\
         noise std         {:.4}   (clip norm {})",
        a.epsilon,
        a.delta,
        rounds,
        a.sampling_rate,
        z,
        achieved,
        out.accountant,
        noise_std,
        a.clip_norm
    );
    if let (Some(t), Some(pc)) = (min_survivors, per_client) {
        text.push_str(&format!(
            "\nper-client share  std {pc:.4} each, so any {t} surviving clients add up to std {noise_std:.4}"
        ));
    }
    if let Some(sq) = sigma_quanta {
        text.push_str(&format!(
            "\nin quanta         discrete Gaussian sigma {sq:.2} per client (rounding and tau accounted; calibrated against the coordinator, no sampling credited)"
        ));
    }
    text.push_str(&sampled_line(a.sampling_rate, credited));
    Ok(text)
}

#[derive(Serialize)]
struct PlanRow {
    noise_multiplier: f64,
    epsilon_10: f64,
    epsilon_100: f64,
    epsilon_1000: f64,
    /// Distributed mode with a sampling rate below 1: the same with
    /// sampling credited (against those who see only the released models).
    #[serde(skip_serializing_if = "Option::is_none")]
    sampling_credited: Option<[f64; 3]>,
}

fn plan(a: &PlanArgs) -> Result<String, Refusal> {
    let dep = deployment(&a.distributed, a.clip_norm)?;
    if dep.is_some() {
        check_rate(a.sampling_rate)?;
    }
    let mut rows = Vec::new();
    for &z in &a.noise_multipliers {
        let eps = |t| match &dep {
            Some(d) => veil_dp::distributed::epsilon(z, t, a.delta, d),
            None => calibrate::epsilon_by(a.accountant.dp(), z, a.sampling_rate, t, a.delta),
        };
        let credited = |t| match &dep {
            Some(d) => sampled_epsilon(z, a.sampling_rate, t, a.delta, d),
            None => Ok(None),
        };
        let sampling_credited = match (credited(10)?, credited(100)?, credited(1000)?) {
            (Some(a), Some(b), Some(c)) => Some([a, b, c]),
            _ => None,
        };
        rows.push(PlanRow {
            noise_multiplier: z,
            epsilon_10: eps(10)?,
            epsilon_100: eps(100)?,
            epsilon_1000: eps(1000)?,
            sampling_credited,
        });
    }
    if a.json {
        return Ok(json(&rows));
    }
    let accountant = match &dep {
        Some(d) => format!(
            "RDP, distributed discrete Gaussian of {} shares, d = {}, clip {} quanta; against the coordinator, no sampling credited",
            d.clients, d.dimension, d.scaled_clip
        ),
        None => format!("{} accountant", a.accountant.name()),
    };
    let mut text = format!(
        "epsilon at delta {:e}, sampling rate {} ({accountant})\n\n\
         noise multiplier | 10 rounds | 100 rounds | 1000 rounds\n\
         -----------------+-----------+------------+------------",
        a.delta, a.sampling_rate
    );
    for r in &rows {
        text.push_str(&format!(
            "\n{:>16} | {:>9.3} | {:>10.3} | {:>11.3}",
            r.noise_multiplier, r.epsilon_10, r.epsilon_100, r.epsilon_1000
        ));
    }
    if rows.iter().any(|r| r.sampling_credited.is_some()) {
        text.push_str(&format!(
            "\n\nwith sampling rate {} credited (Zhu-Wang 2019 Thm 6): against those who see only the released models and not the cohort\n\n\
             noise multiplier | 10 rounds | 100 rounds | 1000 rounds\n\
             -----------------+-----------+------------+------------",
            a.sampling_rate
        ));
        for r in &rows {
            if let Some([e10, e100, e1000]) = r.sampling_credited {
                text.push_str(&format!(
                    "\n{:>16} | {e10:>9.3} | {e100:>10.3} | {e1000:>11.3}",
                    r.noise_multiplier
                ));
            }
        }
    }
    Ok(text)
}

#[derive(Serialize)]
struct LedgerOut {
    rounds: u64,
    last_round: Option<u64>,
    epsilon: f64,
    delta: f64,
    budget: f64,
    remaining: f64,
    pld_epsilon: Option<f64>,
    history: Vec<(u64, f64)>,
    /// With a state directory: how the ledger stands against its state.
    state: Option<String>,
}

/// A state directory's ledger, checked against its state: the replayed
/// ledger and a line saying how they stand.
fn state_dir_ledger(dir: &std::path::Path) -> Result<(ledger::LedgerSummary, String), Refusal> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| Refusal(format!("cannot read {}: {e}", path.display())))
    };
    let bytes = read("ledger.jsonl")?;
    let s = ledger::replay(&bytes)?;
    let state = read("state.json")?;
    let counters: veil_round::Counters = serde_json::from_slice(&state)
        .map_err(|e| Refusal(format!("{}: {e}", dir.join("state.json").display())))?;
    let Some(lines) = counters.ledger_lines else {
        return Ok((
            s,
            "state             records no ledger tail (written by an older server): not checked"
                .to_owned(),
        ));
    };
    let how = match ledger::check_tail(&s, lines, counters.ledger_tail.as_ref())
        .map_err(|e| Refusal(format!("{}: {e}", dir.join("ledger.jsonl").display())))?
    {
        ledger::TailCheck::OneAhead => format!(
            "state             records {lines} lines; the ledger has one more, from a release interrupted before its state was written (counted)"
        ),
        _ => {
            format!("state             records {lines} lines ending in this ledger's last: in step")
        }
    };
    Ok((s, how))
}

/// A budget at least this large is no budget (`veil simulate` without a
/// target ε records one near `f64::MAX`).
const UNLIMITED: f64 = 1e300;

fn budget_text(budget: f64) -> String {
    if budget >= UNLIMITED {
        "none".to_owned()
    } else {
        budget.to_string()
    }
}

fn ledger_cmd(a: &LedgerArgs) -> Result<String, Refusal> {
    let (s, state_line) = if a.path.is_dir() {
        let (s, line) = state_dir_ledger(&a.path)?;
        (s, Some(line))
    } else {
        let bytes = std::fs::read(&a.path)
            .map_err(|e| Refusal(format!("cannot read {}: {e}", a.path.display())))?;
        (ledger::replay(&bytes)?, None)
    };
    let pld = match a.accountant {
        Accountant::Rdp => None,
        Accountant::Pld if s.distributed_rounds > 0 => {
            return Err(Refusal(format!(
                "--accountant pld: this ledger has {} distributed discrete-Gaussian rounds, which veil's PLD accountant does not account (it is the central Gaussian's); the ledger's RDP figure is the one that holds",
                s.distributed_rounds
            )));
        }
        Accountant::Pld => Some(s.pld_epsilon()?),
    };
    let out = LedgerOut {
        rounds: s.rounds,
        last_round: s.last_round,
        epsilon: s.epsilon,
        delta: s.delta,
        budget: s.budget,
        remaining: s.remaining(),
        pld_epsilon: pld,
        history: s.history.clone(),
        state: state_line
            .as_ref()
            .map(|l| l.trim_start_matches("state").trim().to_owned()),
    };
    if a.json {
        return Ok(json(&out));
    }
    let pld_line = pld.map_or_else(String::new, |e| {
        format!("\nby PLD            {e:.4}   (tighter; the ledger enforces RDP)")
    });
    let mut text = format!(
        "rounds            {}\n\
         epsilon spent     {:.4}   (delta {:e}, RDP accountant){pld_line}\n\
         budget            {}\n\
         remaining         {}\n\n\
         round | cumulative epsilon\n\
         ------+-------------------",
        s.rounds,
        s.epsilon,
        s.delta,
        budget_text(s.budget),
        if s.budget >= UNLIMITED {
            "none".to_owned()
        } else {
            format!("{:.4}", s.remaining())
        }
    );
    for (round, eps) in &s.history {
        text.push_str(&format!("\n{round:>5} | {eps:.4}"));
    }
    if let Some(line) = state_line {
        text = format!("{line}\n{text}");
    }
    Ok(text)
}
