//! Medians, spreads and the Markdown table.

use crate::flower;
use crate::veil_round::{Measured, QuicMeasured, Stage};

/// A veil round as the child process printed it.
pub(crate) type VeilRun = Measured;

/// The repetitions of one grid cell.
pub(crate) struct Cell {
    n: usize,
    d: u32,
    k: u32,
    t: u32,
    drop: usize,
    stage: Stage,
    /// veil in memory.
    pub(crate) veil: Vec<VeilRun>,
    /// Flower.
    pub(crate) flower: Vec<flower::Measured>,
    /// veil over QUIC.
    pub(crate) quic: Vec<QuicMeasured>,
}

impl Cell {
    /// An empty cell.
    pub(crate) fn new(n: usize, d: u32, k: u32, t: u32, drop: usize, stage: Stage) -> Self {
        Self {
            n,
            d,
            k,
            t,
            drop,
            stage,
            veil: Vec::new(),
            flower: Vec::new(),
            quic: Vec::new(),
        }
    }
}

/// The median and the range of `v`.
fn stats(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some((v[v.len() / 2], v[0], v[v.len() - 1]))
}

fn spread(v: Vec<f64>) -> String {
    match stats(v) {
        Some((m, lo, hi)) => format!("{m:.3} ({lo:.3}–{hi:.3})"),
        None => "—".to_owned(),
    }
}

fn median(v: Vec<f64>) -> Option<f64> {
    stats(v).map(|s| s.0)
}

/// The machine, for the table's caption.
#[must_use]
pub(crate) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = veil_net::server::all_cores();
    format!("{cores} cores, {cpu}")
}

/// The table being built.
pub(crate) struct Table {
    machine: String,
    rows: Vec<String>,
    b20: Vec<String>,
}

const HEADER: &str = "| n | d | k | t | dropout | veil round s (CPU) | veil ÷ floor | veil ÷ (floor + public key) | veil latency s | Flower round s (CPU) | Flower ÷ veil | Flower latency s | Flower ÷ veil, latency | veil over QUIC, wall s (b; bytes ÷ 4d) | bytes ÷ 4d veil / Flower | peak MB veil / Flower | exact |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

impl Table {
    /// An empty table.
    #[must_use]
    pub(crate) fn new(machine: &str) -> Self {
        Self {
            machine: machine.to_owned(),
            rows: Vec::new(),
            b20: Vec::new(),
        }
    }

    /// Adds a cell; returns its row.
    pub(crate) fn push(&mut self, c: Cell) -> String {
        let four_d = 4.0 * f64::from(c.d);
        let veil = median(c.veil.iter().map(|m| m.round_s).collect());
        let floor = median(
            c.veil
                .iter()
                .map(|m| (c.n as f64 * m.client_floor_ms + m.server_floor_ms) / 1e3)
                .collect(),
        );
        let with_public_key = median(
            c.veil
                .iter()
                .map(|m| {
                    let client = m.client_floor_ms + m.client_public_key_ms;
                    (c.n as f64 * client + m.server_floor_ms + m.server_public_key_ms) / 1e3
                })
                .collect(),
        );
        let flower = median(c.flower.iter().map(|m| m.round_s).collect());
        let veil_latency = median(c.veil.iter().map(|m| m.latency_s).collect());
        let flower_latency = median(c.flower.iter().filter_map(|m| m.latency_s).collect());
        let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.1}×", a / b),
            _ => "—".to_owned(),
        };
        let dropout = if c.drop == 0 {
            "0 %".to_owned()
        } else {
            let when = match c.stage {
                Stage::Before => "before",
                Stage::After => "after",
            };
            format!("{} {when} masked input", c.drop)
        };
        let bytes = format!(
            "{:.3} / {}",
            median(c.veil.iter().map(|m| m.bytes_per_client).collect()).unwrap_or(0.0) / four_d,
            median(c.flower.iter().map(|m| m.bytes_per_client).collect())
                .map_or("—".to_owned(), |b| format!("{:.3}", b / four_d)),
        );
        let mb = |b: u64| b as f64 / (1 << 20) as f64;
        let peak = format!(
            "{:.0} / {}",
            median(c.veil.iter().map(|m| mb(m.peak_rss_bytes)).collect()).unwrap_or(0.0),
            median(c.flower.iter().map(|m| mb(m.peak_rss_bytes)).collect())
                .map_or("—".to_owned(), |v| format!("{v:.0}")),
        );
        let exact = c.veil.iter().all(|m| m.correct)
            && c.flower.iter().all(|m| m.correct)
            && c.quic.iter().all(|m| m.correct);
        let quic = if c.quic.is_empty() {
            "—".to_owned()
        } else {
            let bits = c.quic[0].bits;
            format!(
                "{} ({bits}; {:.3})",
                spread(c.quic.iter().map(|q| q.round_s).collect()),
                median(c.quic.iter().map(|q| q.bytes_per_client).collect()).unwrap_or(0.0) / four_d,
            )
        };
        let row = format!(
            "| {} | {} | {} | {} | {dropout} | {} | {} | {} | {} | {} | {} | {} | {} | {quic} | {bytes} | {peak} | {} |",
            c.n,
            c.d,
            c.k,
            c.t,
            spread(c.veil.iter().map(|m| m.round_s).collect()),
            ratio(veil, floor),
            ratio(veil, with_public_key),
            spread(c.veil.iter().map(|m| m.latency_s).collect()),
            spread(c.flower.iter().map(|m| m.round_s).collect()),
            ratio(flower, veil),
            spread(c.flower.iter().filter_map(|m| m.latency_s).collect()),
            ratio(flower_latency, veil_latency),
            if exact { "yes" } else { "**NO**" },
        );
        self.rows.push(row.clone());
        row
    }

    /// Records veil's bytes per client at b = 20.
    pub(crate) fn note_b20(&mut self, n: usize, d: u32, bytes: f64) {
        self.b20.push(format!(
            "| {n} | {d} | {:.3} |",
            bytes / (4.0 * f64::from(d))
        ));
    }

    /// The whole table, with its caption and the b = 20 bytes.
    #[must_use]
    pub(crate) fn render(&self) -> String {
        let mut s = format!(
            "Machine: {}. Round seconds: median (min–max) over the repetitions. \
             \"CPU\" is all of the round's work, the CPU time of every thread of \
             its process (clients one after another, as in Flower's in-process \
             round; veil's server unmasks on every core, and all of that counts); \
             \"latency\" is the wall-clock server time plus each phase's slowest \
             client (clients on their own machines, free network), the same for \
             Flower's stages.\n\n{HEADER}\n",
            self.machine
        );
        for r in &self.rows {
            s.push_str(r);
            s.push('\n');
        }
        if !self.b20.is_empty() {
            s.push_str(
                "\nveil at b = 20 bits, no dropout:\n\n| n | d | bytes ÷ 4d |\n|---|---|---|\n",
            );
            for r in &self.b20 {
                s.push_str(r);
                s.push('\n');
            }
        }
        s
    }
}
