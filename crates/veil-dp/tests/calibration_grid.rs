//! For every mechanism veil accounts, calibration and accounting agree:
//! `epsilon(calibrate(ε)) <= ε`, and within 0.5 % of it, over a grid of
//! targets, sampling rates, rounds and (distributed) deployments. Each
//! cell is printed, for the closing table.

#![allow(clippy::unwrap_used, clippy::print_stderr)]

use veil_dp::calibrate::{Accountant, epsilon_by, noise_multiplier_by};
use veil_dp::distributed::{Deployment, epsilon, noise_multiplier};
use veil_dp::rdp::Conversion;

const DELTA: f64 = 1e-5;

fn agree(what: &str, target: f64, achieved: f64) {
    eprintln!("{what}: target {target}, achieved {achieved:.5}");
    assert!(achieved <= target, "{what}: {achieved} > {target}");
    assert!(achieved >= target * 0.995, "{what}: {achieved} is loose");
}

#[test]
fn the_central_gaussian_by_rdp_calibrates_to_what_it_accounts() {
    let acc = Accountant::Rdp(Conversion::Improved);
    for target in [1.0, 3.0, 8.0] {
        for q in [0.01, 0.1, 1.0] {
            for rounds in [10, 100, 1000] {
                let z = noise_multiplier_by(acc, target, DELTA, q, rounds).unwrap();
                let eps = epsilon_by(acc, z, q, rounds, DELTA).unwrap();
                agree(&format!("rdp q {q} T {rounds} z {z:.4}"), target, eps);
            }
        }
    }
}

#[test]
fn the_central_gaussian_by_pld_calibrates_to_what_it_accounts() {
    for target in [1.0, 8.0] {
        for (q, rounds) in [(0.01, 100), (0.1, 10), (1.0, 10)] {
            let z = noise_multiplier_by(Accountant::Pld, target, DELTA, q, rounds).unwrap();
            let eps = epsilon_by(Accountant::Pld, z, q, rounds, DELTA).unwrap();
            agree(&format!("pld q {q} T {rounds} z {z:.4}"), target, eps);
        }
    }
}

#[test]
fn the_distributed_discrete_gaussian_calibrates_to_what_the_ledger_accounts() {
    let mut refused = 0;
    for target in [1.0, 3.0, 8.0] {
        for rounds in [10, 100, 1000] {
            for (clients, dimension, scaled_clip) in [
                (3, 31, 218_453.0 * 0.3),
                (20, 1000, 1024.0),
                (100, 100_000, 65_536.0),
            ] {
                let dep = Deployment {
                    clients,
                    dimension,
                    scaled_clip,
                };
                let z = match noise_multiplier(target, DELTA, rounds, &dep) {
                    Ok(z) => z,
                    // Noise past the exact sampler's range (σ <= 10^6
                    // quanta per client) is refused, not approximated.
                    Err(veil_dp::Error::InvalidParameter {
                        name: "client-sigma",
                        ..
                    }) => {
                        eprintln!(
                            "distributed n {clients} T {rounds} ε {target}: refused, σ > 10^6"
                        );
                        refused += 1;
                        continue;
                    }
                    Err(e) => panic!("{e}"),
                };
                let eps = epsilon(z, rounds, DELTA, &dep).unwrap();
                agree(
                    &format!("distributed n {clients} d {dimension} T {rounds} z {z:.4}"),
                    target,
                    eps,
                );
            }
        }
    }
    // Only three sites at the three-sites demo's scale, at ε <= 3 or 1000 rounds.
    assert!(refused <= 4, "{refused} of 27 cells refused");
}
