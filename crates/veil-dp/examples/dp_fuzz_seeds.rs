//! Writes the seed corpus of veil-dp's fuzz targets under `fuzz/seeds/`: a
//! real three-round ledger, a ledger mixing central and distributed rounds,
//! and a few privacy-parameter sets.
//!
//! ```text
//! cargo run -p veil-dp --example dp_fuzz_seeds
//! ```

use std::path::Path;

use veil_dp::ledger::{DistributedNoise, Ledger, RoundSpend};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    let dir = root.join("ledger_replay");
    std::fs::create_dir_all(&dir)?;
    let mut ledger = Ledger::open(&[], 8.0, 1e-5)?;
    let mut file = Vec::new();
    for round in [1, 2, 5] {
        let recorded = ledger.record_round(&RoundSpend::new(round, 1.2, 0.05, 1.0, 40))?;
        file.extend_from_slice(&recorded.line);
    }
    std::fs::write(dir.join("three-rounds"), &file)?;
    let mut ledger = Ledger::open(&[], 50.0, 1e-5)?;
    let mut file = ledger
        .record_round(&RoundSpend::new(1, 1.2, 0.05, 1.0, 40))?
        .line;
    let noise = DistributedNoise::new(4000.0, 4096.0, 1000, 16);
    file.extend_from_slice(
        &ledger
            .record_round(&RoundSpend::distributed(2, noise, 1.0, 1.0, 20))?
            .line,
    );
    std::fs::write(dir.join("mixed-rounds"), &file)?;
    let dir = root.join("dp_parameters");
    std::fs::create_dir_all(&dir)?;
    for (i, (sigma, q, delta, steps)) in [
        (1.0_f64, 0.01_f64, 1e-5_f64, 100_u16),
        (0.5, 1.0, 1e-6, 1),
        (10.0, 0.001, 1e-5, 10_000),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = Vec::new();
        b.extend_from_slice(&sigma.to_le_bytes());
        b.extend_from_slice(&q.to_le_bytes());
        b.extend_from_slice(&delta.to_le_bytes());
        b.extend_from_slice(&steps.to_le_bytes());
        std::fs::write(dir.join(format!("params-{i}")), &b)?;
        // The same, for the distributed accounting: 16 shares of 10^4
        // coordinates at 4096 quanta per clip.
        b.extend_from_slice(&16_u32.to_le_bytes());
        b.extend_from_slice(&10_000_u32.to_le_bytes());
        b.extend_from_slice(&4096_f64.to_le_bytes());
        std::fs::write(dir.join(format!("distributed-{i}")), b)?;
    }
    println!("wrote fuzz/seeds/ledger_replay and fuzz/seeds/dp_parameters");
    Ok(())
}
