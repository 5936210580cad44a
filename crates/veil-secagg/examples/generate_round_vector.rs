//! Writes `protocol/test-vectors/round.json`: one whole round.
//!
//! ```text
//! cargo run -p veil-secagg --features test-util --example generate_round_vector
//! ```

use std::path::Path;

fn main() -> std::io::Result<()> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protocol/test-vectors/round.json");
    std::fs::write(&path, veil_secagg::test_vectors::round_vector_json())?;
    println!("wrote protocol/test-vectors/round.json");
    Ok(())
}
