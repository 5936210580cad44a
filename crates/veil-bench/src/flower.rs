//! The Flower side: a virtual environment with the pinned Flower, set up by
//! the harness itself, and one process per measured round running
//! `bench/flower/secaggplus_round.py`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::veil_round::Stage;

/// What one Flower round measured (the script's JSON line).
#[derive(Debug, Deserialize)]
pub(crate) struct Measured {
    /// Flower's fit workflow, wall time, serialisation excluded.
    pub(crate) round_s: f64,
    /// The server's share plus each stage's slowest client.
    #[serde(default)]
    pub(crate) latency_s: Option<f64>,
    /// Bytes a client sent (protobuf size of its replies), averaged.
    pub(crate) bytes_per_client: f64,
    /// Peak resident memory of the Flower process.
    pub(crate) peak_rss_bytes: u64,
    /// The released mean equals the exact mean within Flower's quantisation
    /// step, over the expected clients.
    pub(crate) correct: bool,
}

/// The Flower environment: `python` of a virtual environment holding the
/// versions `bench/flower/requirements.txt` pins.
pub(crate) struct Flower {
    python: PathBuf,
    script: PathBuf,
}

impl Flower {
    /// Creates (once) the virtual environment under `venv` and installs the
    /// pinned requirements into it.
    ///
    /// # Errors
    /// If Python, venv or pip fail.
    pub(crate) fn setup(bench_dir: &Path, venv: &Path) -> anyhow::Result<Self> {
        let python = venv.join("bin/python");
        let requirements = bench_dir.join("flower/requirements.txt");
        let stamp = venv.join("veil-requirements.txt");
        let wanted = std::fs::read_to_string(&requirements)
            .with_context(|| format!("reading {}", requirements.display()))?;
        if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
            eprintln!("setting up Flower in {} (once)", venv.display());
            run(Command::new("python3").arg("-m").arg("venv").arg(venv))?;
            run(Command::new(&python)
                .args(["-m", "pip", "install", "--quiet", "--no-deps", "-r"])
                .arg(&requirements))?;
            std::fs::write(&stamp, wanted)?;
        }
        Ok(Self {
            python,
            script: bench_dir.join("flower/secaggplus_round.py"),
        })
    }

    /// One SecAgg+ round in a fresh Python process.
    ///
    /// # Errors
    /// If the script fails or prints no result.
    pub(crate) fn round(
        &self,
        n: usize,
        d: u32,
        shares: u32,
        threshold: u32,
        drop: usize,
        stage: Stage,
    ) -> anyhow::Result<Measured> {
        let out = Command::new(&self.python)
            .arg(&self.script)
            .args(["--n", &n.to_string(), "--d", &d.to_string()])
            .args(["--shares", &shares.to_string()])
            .args(["--threshold", &threshold.to_string()])
            .args(["--drop", &drop.to_string()])
            .args([
                "--drop-stage",
                match stage {
                    Stage::Before => "before",
                    Stage::After => "after",
                },
            ])
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let line = stdout
            .lines()
            .rev()
            .find(|l| l.starts_with('{'))
            .with_context(|| {
                format!(
                    "Flower printed no result: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        if !out.status.success() {
            bail!("Flower round failed: {line}");
        }
        Ok(serde_json::from_str(line)?)
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let status = cmd.status()?;
    if !status.success() {
        bail!("{cmd:?} failed: {status}");
    }
    Ok(())
}
