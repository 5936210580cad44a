//! Writes `protocol/test-vectors/*.json` from veil-crypto itself.
//!
//! Run from the repository root after any change to a label, the PRG, the
//! share encoding or the envelope construction, and commit the result with
//! the matching change to `protocol/SPEC.md`:
//!
//! ```text
//! cargo run -p veil-crypto --features test-util --example generate_test_vectors
//! ```

use std::path::Path;

fn main() -> std::io::Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../protocol/test-vectors");
    std::fs::create_dir_all(&dir)?;
    for (name, json) in veil_crypto::test_vectors::generate_all() {
        let path = dir.join(name);
        std::fs::write(&path, json)?;
        println!("wrote protocol/test-vectors/{name}");
    }
    Ok(())
}
