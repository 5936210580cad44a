//! The TOML configuration of `veil server` and `veil client`. Every field
//! is documented in `examples/server.toml` and `examples/client.toml`.
//! Relative paths are relative to the config file's directory. An error
//! names the file and the field.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The largest config file read.
const MAX_CONFIG_FILE: u64 = 1 << 20;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Reads and parses a TOML file.
pub(crate) fn load<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let text =
        veil_net::files::read_capped_string(path, MAX_CONFIG_FILE).map_err(|e| e.to_string())?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Resolves `p` against the directory of the config file.
pub(crate) fn resolve(config: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        config.parent().unwrap_or(Path::new(".")).join(p)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Tls {
    pub(crate) ca: PathBuf,
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    pub(crate) roster: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerFile {
    pub(crate) listen: SocketAddr,
    pub(crate) state_dir: PathBuf,
    pub(crate) tls: Tls,
    pub(crate) rounds: Rounds,
    #[serde(default)]
    pub(crate) secagg: SecAgg,
    pub(crate) privacy: Option<Privacy>,
    #[serde(default)]
    pub(crate) limits: ServerLimits,
    /// What the sites train; without it, clients send their source's own
    /// updates of `rounds.dimension` values.
    pub(crate) task: Option<TaskFile>,
    /// Secure evaluation rounds (needs `task.holdout > 0`).
    pub(crate) evaluation: Option<EvaluationFile>,
    /// A statistics round before training (the task's standardisation).
    pub(crate) statistics: Option<StatisticsFile>,
}

/// The `[task]` table of the server's config: the model every site trains,
/// on which columns, and how (SPEC.md §10.13).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TaskFile {
    /// `classification` (the default) or `regression` (the label is a
    /// number: no classes, a squared loss, MSE and R² reported).
    #[serde(default = "default_kind")]
    pub(crate) kind: String,
    /// `logistic` (classification), `linear` (regression), `mlp:W1,W2,…`
    /// or `cnn:C`.
    pub(crate) model: String,
    /// The feature columns every site's CSV has, in order.
    pub(crate) features: Vec<String>,
    /// The label's classes, as they appear in the `label` column (none for
    /// a regression).
    #[serde(default)]
    pub(crate) classes: Vec<String>,
    #[serde(default = "default_local_optimizer")]
    pub(crate) local_optimizer: String,
    #[serde(default = "default_epochs")]
    pub(crate) epochs: u32,
    #[serde(default = "default_batch")]
    pub(crate) batch_size: u32,
    #[serde(default = "default_learning_rate")]
    pub(crate) learning_rate: f64,
    /// `fedavg`, `fedadam` or `fedyogi`.
    #[serde(default = "default_server_optimizer")]
    pub(crate) server_optimizer: String,
    /// The server learning rate (default 1 for FedAvg, 0.05 otherwise).
    pub(crate) server_lr: Option<f32>,
    /// Per-feature means and standard deviations every site standardises
    /// its rows with (both or neither; a regression's have one more, the
    /// label's, last).
    pub(crate) mean: Option<Vec<f32>>,
    pub(crate) std: Option<Vec<f32>>,
    /// The fraction of each site's rows held out of training for the
    /// evaluation rounds (0 to 0.5; default 0).
    #[serde(default)]
    pub(crate) holdout: f64,
    /// A checkpoint of the task's model (named tensors, as
    /// `checkpoint.safetensors` or `veil simulate` write) to start from,
    /// instead of a fresh initialisation.
    pub(crate) initial_model: Option<PathBuf>,
}

/// The `[evaluation]` table of the server's config: secure evaluation of
/// the global model on the sites' held-out rows (SPEC.md §10.14).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EvaluationFile {
    /// Evaluate after every `every`-th training round, and after the last.
    #[serde(default = "one_u64")]
    pub(crate) every: u64,
    /// The held-out rows a site counts at full weight.
    #[serde(default = "default_row_cap")]
    pub(crate) row_cap: u32,
}

/// The `[statistics]` table of the server's config: the secure statistics
/// round that gives every site the task's standardisation (SPEC.md §10.15).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatisticsFile {
    /// The rows a site counts at full weight.
    #[serde(default = "default_row_cap")]
    pub(crate) row_cap: u32,
    /// One bound for every feature's values (`bound`), or one per feature
    /// (`bounds`): values are clipped to `[-bound, bound]`.
    pub(crate) bound: Option<f32>,
    pub(crate) bounds: Option<Vec<f32>>,
}

fn default_kind() -> String {
    "classification".into()
}

fn one_u64() -> u64 {
    1
}
fn default_row_cap() -> u32 {
    1000
}

fn default_local_optimizer() -> String {
    "sgd".into()
}
fn default_epochs() -> u32 {
    5
}
fn default_batch() -> u32 {
    16
}
fn default_learning_rate() -> f64 {
    0.1
}
fn default_server_optimizer() -> String {
    "fedavg".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Rounds {
    /// The model's size; with a `[task]`, the task's model fixes it.
    pub(crate) dimension: Option<u32>,
    #[serde(default)]
    pub(crate) rounds: u64,
    #[serde(default = "one")]
    pub(crate) sampling_rate: f64,
    pub(crate) min_clients: usize,
    pub(crate) max_clients: usize,
    #[serde(default = "default_start_delay")]
    pub(crate) start_delay_ms: u64,
    #[serde(default = "default_phase_timeout")]
    pub(crate) phase_timeout_ms: u64,
    pub(crate) clip_norm: f64,
    pub(crate) scale: f64,
    #[serde(default = "one_f32")]
    pub(crate) server_lr: f32,
    #[serde(default)]
    pub(crate) keep_sums: bool,
}

fn one() -> f64 {
    1.0
}
fn one_f32() -> f32 {
    1.0
}
fn default_start_delay() -> u64 {
    2_000
}
fn default_phase_timeout() -> u64 {
    30_000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecAgg {
    #[serde(default = "default_dropout")]
    pub(crate) expected_dropout: f64,
    #[serde(default = "default_corrupt")]
    pub(crate) corrupt_fraction: f64,
    pub(crate) complete_graph_threshold: Option<u32>,
}

fn default_dropout() -> f64 {
    0.1
}
fn default_corrupt() -> f64 {
    0.05
}

impl Default for SecAgg {
    fn default() -> Self {
        Self {
            expected_dropout: default_dropout(),
            corrupt_fraction: default_corrupt(),
            complete_graph_threshold: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Privacy {
    /// The noise of each released sum against the clip; or, instead,
    /// `epsilon`.
    pub(crate) noise_multiplier: Option<f64>,
    /// The ε the whole run may spend: the server calibrates its noise for
    /// every release of its rounds (the budget is then this ε).
    pub(crate) epsilon: Option<f64>,
    pub(crate) delta: f64,
    /// The total ε the ledger allows (default: `epsilon`).
    pub(crate) budget: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServerLimits {
    #[serde(default = "default_idle")]
    pub(crate) idle_timeout_ms: u64,
    #[serde(default = "default_max_connections")]
    pub(crate) max_connections: usize,
    #[serde(default = "default_handshake")]
    pub(crate) handshake_timeout_ms: u64,
    /// Threads for a round's final unmasking (default: every core).
    #[serde(default)]
    pub(crate) unmask_threads: Option<usize>,
}

fn default_idle() -> u64 {
    30_000
}
fn default_max_connections() -> usize {
    1_000
}
fn default_handshake() -> u64 {
    10_000
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            idle_timeout_ms: default_idle(),
            max_connections: default_max_connections(),
            handshake_timeout_ms: default_handshake(),
            unmask_threads: None,
        }
    }
}

impl ServerLimits {
    pub(crate) fn limits(&self) -> veil_net::tls::Limits {
        veil_net::tls::Limits {
            idle_timeout: ms(self.idle_timeout_ms),
            max_connections: self.max_connections,
        }
    }

    pub(crate) fn handshake_timeout(&self) -> Duration {
        ms(self.handshake_timeout_ms)
    }

    pub(crate) fn unmask_threads(&self) -> usize {
        self.unmask_threads
            .unwrap_or_else(veil_net::server::all_cores)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientFile {
    pub(crate) server: SocketAddr,
    pub(crate) server_name: String,
    pub(crate) tls: Tls,
    pub(crate) identity: PathBuf,
    #[serde(default = "default_max_dimension")]
    pub(crate) max_dimension: u32,
    pub(crate) max_rounds: Option<u64>,
    #[serde(default)]
    pub(crate) source: Source,
    /// With `source = "csv"`: the site's rows (relative to this file).
    pub(crate) data: Option<PathBuf>,
    /// The CSV's field delimiter (one ASCII character; default `,`).
    pub(crate) delimiter: Option<char>,
    #[serde(default)]
    pub(crate) backoff: BackoffFile,
    #[serde(default = "default_idle")]
    pub(crate) idle_timeout_ms: u64,
    /// Where the client records the round ids it took part in; by default
    /// the config file's name with the extension `.state` (`client-1.toml`:
    /// `client-1.state/`), so that two clients never share one.
    pub(crate) state_dir: Option<PathBuf>,
    /// The weakest round this site joins.
    #[serde(default)]
    pub(crate) floor: FloorFile,
    /// This site's own privacy budget, kept in its own ledger
    /// (`state_dir/ledger.jsonl`): it declines a round that would pass it.
    pub(crate) privacy: Option<SitePrivacy>,
}

/// The `[privacy]` table of a client's config.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SitePrivacy {
    /// The total epsilon this site's data may spend.
    pub(crate) budget: f64,
    /// Delta of the site's accounting.
    #[serde(default = "default_delta")]
    pub(crate) delta: f64,
}

fn default_delta() -> f64 {
    1e-5
}

impl ClientFile {
    /// The state directory, relative to the config file's directory.
    pub(crate) fn state_dir(&self, config: &Path) -> PathBuf {
        self.state_dir.clone().unwrap_or_else(|| {
            PathBuf::from(config.file_name().unwrap_or_default()).with_extension("state")
        })
    }
}

/// The `[floor]` table of a client's config: the weakest round the site
/// takes part in (SPEC.md §9.5). Every field has the default of
/// `veil_secagg::SiteFloor::default()`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FloorFile {
    pub(crate) min_participants: u32,
    pub(crate) min_threshold: u32,
    pub(crate) min_degree: u32,
    pub(crate) corrupt_fraction: f64,
    pub(crate) min_ring_bits: u32,
    pub(crate) max_phase_timeout_ms: u32,
    pub(crate) min_noise_multiplier: f64,
}

impl Default for FloorFile {
    fn default() -> Self {
        let f = veil_secagg::SiteFloor::default();
        Self {
            min_participants: f.min_participants,
            min_threshold: f.min_threshold,
            min_degree: f.min_degree,
            corrupt_fraction: f.corrupt_fraction,
            min_ring_bits: f.min_ring_bits,
            max_phase_timeout_ms: f.max_phase_timeout_ms,
            min_noise_multiplier: 0.0,
        }
    }
}

impl FloorFile {
    /// The checked floor; the error names the file and the field.
    pub(crate) fn floor(&self, file: &Path) -> Result<veil_secagg::SiteFloor, String> {
        let mut floor = veil_secagg::SiteFloor::default();
        floor.min_participants = self.min_participants;
        floor.min_threshold = self.min_threshold;
        floor.min_degree = self.min_degree;
        floor.corrupt_fraction = self.corrupt_fraction;
        floor.min_ring_bits = self.min_ring_bits;
        floor.max_phase_timeout_ms = self.max_phase_timeout_ms;
        floor
            .validate()
            .map_err(|rule| format!("{}: floor: {rule}", file.display()))?;
        check(
            file,
            "floor.min_noise_multiplier",
            self.min_noise_multiplier.is_finite() && self.min_noise_multiplier >= 0.0,
            "must be a finite number >= 0",
        )?;
        Ok(floor)
    }
}

fn default_max_dimension() -> u32 {
    1 << 24
}

/// Where the client's update comes from.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// The deterministic synthetic update (veil_net::synthetic).
    #[default]
    Synthetic,
    /// Local training on the site's own CSV (`data`), as the task says.
    Csv,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackoffFile {
    #[serde(default = "default_initial")]
    pub(crate) initial_ms: u64,
    #[serde(default = "default_max_backoff")]
    pub(crate) max_ms: u64,
    #[serde(default = "default_connect")]
    pub(crate) connect_timeout_ms: u64,
    pub(crate) max_attempts: Option<u32>,
}

fn default_initial() -> u64 {
    200
}
fn default_max_backoff() -> u64 {
    10_000
}
fn default_connect() -> u64 {
    5_000
}

impl Default for BackoffFile {
    fn default() -> Self {
        Self {
            initial_ms: default_initial(),
            max_ms: default_max_backoff(),
            connect_timeout_ms: default_connect(),
            max_attempts: None,
        }
    }
}

impl BackoffFile {
    pub(crate) fn backoff(&self) -> veil_net::client::Backoff {
        veil_net::client::Backoff {
            initial: ms(self.initial_ms.max(1)),
            max: ms(self.max_ms.max(self.initial_ms)),
            connect_timeout: ms(self.connect_timeout_ms.max(1)),
            max_attempts: self.max_attempts,
        }
    }
}

/// Checks a number against a rule; the message names the file and field.
pub(crate) fn check(file: &Path, field: &str, ok: bool, rule: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{}: {field}: {rule}", file.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_out_of_range_is_refused_naming_the_field() {
        let path = Path::new("client.toml");
        for (field, text) in [
            ("corrupt_fraction", "corrupt_fraction = 1.5"),
            ("max_phase_timeout_ms", "max_phase_timeout_ms = 0"),
            ("min_noise_multiplier", "min_noise_multiplier = -1.0"),
        ] {
            let file: FloorFile = toml::from_str(text).unwrap();
            let e = file.floor(path).unwrap_err();
            assert!(e.contains(field) && e.contains("client.toml"), "{e}");
        }
        assert!(
            toml::from_str::<FloorFile>("min_cohort = 3").is_err(),
            "unknown field"
        );
    }

    /// The documented example files parse, so they stay in step with the code.
    #[test]
    fn the_example_configs_parse() {
        let server: ServerFile =
            toml::from_str(include_str!("../../../examples/server.toml")).unwrap();
        assert_eq!(server.rounds.dimension, Some(1000));
        assert!(server.privacy.is_some());
        let client: ClientFile =
            toml::from_str(include_str!("../../../examples/client.toml")).unwrap();
        assert_eq!(client.server_name, "localhost");
        // The example's [floor] is the default floor, field for field.
        let floor = client.floor.floor(Path::new("client.toml")).unwrap();
        assert_eq!(floor, veil_secagg::SiteFloor::default());
        assert_eq!(
            client.state_dir(Path::new("x/client-1.toml")),
            PathBuf::from("client-1.state")
        );
        let simulate: crate::simulate::SimulateArgs =
            toml::from_str(include_str!("../../../examples/simulate.toml")).unwrap();
        assert_eq!(simulate.clients(), Some(20));
    }
}
