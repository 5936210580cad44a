//! Prints what crediting Poisson sampling is worth, and what the general
//! bound (Zhu–Wang 2019, Theorem 6) costs against the exact analysis:
//! for each noise multiplier `z`, sampling rate `q` and number of rounds,
//! `ε` at `δ = 1e-5` of
//!
//! - the Poisson-subsampled Gaussian, exact ([`veil_dp::rdp`]);
//! - the same Gaussian under the general bound ([`veil_dp::subsample`]);
//! - the distributed discrete Gaussian (20 shares, `d = 1000`, scale
//!   1024 × clip 1) under the general bound, and without sampling.
//!
//! `cargo run --release -p veil-dp --example subsampling_table`

use veil_dp::distributed::{Deployment, epsilon, epsilon_sampled};
use veil_dp::rdp::{Conversion, RdpAccountant};

fn main() -> Result<(), veil_dp::Error> {
    let delta = 1e-5;
    let deployment = Deployment {
        clients: 20,
        dimension: 1000,
        scaled_clip: 1024.0,
    };
    println!(
        "{:>4} {:>5} {:>6} | {:>10} {:>10} {:>6} | {:>12} {:>12}",
        "z", "q", "rounds", "exact", "general", "ratio", "distributed", "dist. q=1"
    );
    for z in [0.8, 1.0, 2.0] {
        for q in [0.01, 0.1] {
            for rounds in [100_u64, 1000] {
                let mut exact = RdpAccountant::new();
                exact.compose_subsampled_gaussian(z, q, rounds)?;
                let exact = exact.epsilon(delta, Conversion::Improved)?.0;
                let mut general = RdpAccountant::new();
                general.compose_poisson_subsampled(q, rounds, |a| a / (2.0 * z * z))?;
                let general = general.epsilon(delta, Conversion::Improved)?.0;
                let distributed = epsilon_sampled(z, q, rounds, delta, &deployment)?;
                let unsampled = epsilon(z, rounds, delta, &deployment)?;
                println!(
                    "{z:>4} {q:>5} {rounds:>6} | {exact:>10.4} {general:>10.4} {:>6.3} | {distributed:>12.4} {unsampled:>12.2}",
                    general / exact
                );
            }
        }
    }
    Ok(())
}
