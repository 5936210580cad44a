//! The PLD accountant against the committed reference table
//! (`tests/reference/rdp_reference.csv`, column `eps_pld_dpacc`: Google's
//! dp-accounting 0.6.0 `PLDAccountant` with its defaults, grid 1e-4,
//! connect-the-dots, add-or-remove adjacency).
//!
//! The bar: within 1 % of dp-accounting (or 1e-3 absolute). Measured, ours
//! agrees to about 1e-6 relative on every row but a few at epsilon in the
//! hundreds or more, where dp-accounting is about +1 above. The unsampled
//! rows (q = 1) show that this is dp-accounting's error: there the
//! mechanism is a plain Gaussian whose epsilon has a closed form, which
//! is what veil computes, and dp-accounting is above it by the same
//! amount.

use veil_dp::pld::PldAccountant;

#[path = "reference/table.rs"]
mod table;

use table::rows;

#[test]
fn pld_epsilon_meets_the_reference_bar() {
    let rows = rows();
    assert_eq!(rows.len(), 200);
    let mut dpacc_above = Vec::new();
    // Rows come in pairs of deltas for the same mechanism: compose once.
    for pair in rows.chunks(2) {
        let mut acc = PldAccountant::new();
        acc.compose_subsampled_gaussian(pair[0].sigma, pair[0].q, pair[0].steps)
            .unwrap();
        let composed = acc.composition();
        for r in pair {
            assert_eq!(
                (r.sigma, r.q, r.steps),
                (pair[0].sigma, pair[0].q, pair[0].steps)
            );
            let ours = composed.epsilon(r.delta).unwrap();
            let where_ = format!(
                "sigma {} q {} T {} delta {}",
                r.sigma, r.q, r.steps, r.delta
            );
            let diff = ours - r.pld_dpacc;
            assert!(
                diff.abs() <= (0.01 * r.pld_dpacc).max(1e-3),
                "{where_}: ours {ours} vs dp-accounting {}",
                r.pld_dpacc
            );
            // PLD accounting is tighter than RDP accounting of the same
            // mechanism (both are upper bounds; PLD is near exact).
            assert!(
                ours <= r.rdp_exact,
                "{where_}: {ours} > RDP {}",
                r.rdp_exact
            );
            if diff.abs() > 1e-4 * r.pld_dpacc {
                assert!(
                    diff < 0.0,
                    "{where_}: ours {ours} above dp-accounting {}",
                    r.pld_dpacc
                );
                dpacc_above.push((r.sigma, r.q, r.steps, r.delta, -diff));
            }
        }
    }
    // Where dp-accounting is above by more than 1e-4 relative: by 0.96 to
    // 0.98 at epsilon from 1400 to 5500 (q = 1, closed form on our side),
    // and by the same 0.96 at sigma 0.5, q 0.1, T 10^4 (epsilon ~ 800).
    // (At sigma 0.5, q = 1, T = 10^4 it is above by 1.0 too, but that is
    // under 1e-4 of epsilon ~ 20 850.)
    let expected = [
        (0.5, 0.1, 10_000),
        (0.5, 1.0, 1000),
        (1.0, 1.0, 10_000),
        (2.0, 1.0, 10_000),
    ];
    for &(sigma, q, steps, _, gap) in &dpacc_above {
        assert!(
            expected.contains(&(sigma, q, steps)),
            "unexpected gap {gap} at sigma {sigma} q {q} T {steps}"
        );
        assert!((0.9..1.0).contains(&gap), "{gap}");
    }
    assert_eq!(dpacc_above.len(), 2 * expected.len());
}
