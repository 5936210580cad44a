//! The committed inputs of a fuzz target, `fuzz/seeds/<target>/` and
//! `fuzz/regressions/<target>/`. Each crate's `tests/fuzz_corpus.rs`
//! includes this file (`#[path]`) and replays them through the entry points
//! the targets call, so an input that once crashed a target is checked on
//! every test run, without a fuzzer.

use std::path::PathBuf;

/// Every committed input of `target`; fails if there is none.
#[allow(
    clippy::unwrap_used,
    reason = "a test helper: a broken checkout should fail loudly"
)]
pub(crate) fn inputs(target: &str) -> Vec<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut out = Vec::new();
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n != ".keep") {
                out.push(std::fs::read(&path).unwrap());
            }
        }
    }
    assert!(
        !out.is_empty(),
        "no committed inputs for fuzz target {target}"
    );
    out
}
