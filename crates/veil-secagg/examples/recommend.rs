//! Prints the recommended SecAgg parameters (SPEC.md §9.3) for a few cohort
//! sizes, dropout and corrupt rates:
//!
//! ```text
//! cargo run -p veil-secagg --example recommend [N DROPOUT CORRUPT]...
//! ```

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases: Vec<(usize, f64, f64)> = if args.is_empty() {
        vec![
            (100, 0.1, 0.05),
            (1000, 0.1, 0.05),
            (10_000, 0.1, 0.05),
            (1000, 0.33, 0.05),
            (1000, 0.1, 0.0),
        ]
    } else {
        args.chunks(3)
            .filter_map(|c| match c {
                [n, d, p] => Some((n.parse().ok()?, d.parse().ok()?, p.parse().ok()?)),
                _ => None,
            })
            .collect()
    };
    println!("| n | dropout | corrupt | k | t | c | quorum | complete | failure bound |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for (n, dropout, corrupt) in cases {
        match veil_secagg::recommend_parameters(n, dropout, corrupt) {
            Ok(r) => println!(
                "| {n} | {dropout} | {corrupt} | {} | {} | {} | {} | {} | {:.2e} |",
                r.degree, r.threshold, r.max_corrupt, r.quorum, r.complete, r.failure_probability
            ),
            Err(e) => println!("| {n} | {dropout} | {corrupt} | {e} |"),
        }
    }
}
