//! Replays the committed fuzz inputs (`fuzz/seeds/` and `fuzz/regressions/`)
//! through the same entry points the fuzz targets call, so every input that
//! once crashed a target is checked on every test run.

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut count = 0;
    for dir in ["seeds", "regressions"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".keep") {
                continue;
            }
            run(&std::fs::read(&path).unwrap());
            count += 1;
        }
    }
    assert!(count > 0, "no committed inputs for fuzz target {target}");
}

#[test]
fn share_decode() {
    replay("share_decode", veil_crypto::fuzzing::share_decode);
}

#[test]
fn shamir_reconstruct() {
    replay(
        "shamir_reconstruct",
        veil_crypto::fuzzing::shamir_reconstruct,
    );
}

#[test]
fn envelope_open() {
    replay("envelope_open", veil_crypto::fuzzing::envelope_open);
}

#[test]
fn public_decode() {
    replay("public_decode", veil_crypto::fuzzing::public_decode);
}
