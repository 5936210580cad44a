//! Hostile input to veil-net's decoders and files: every malformed
//! frame, roster or state file is an error naming what is wrong, never a
//! panic, and every length is checked before allocation.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use veil_net::Error;
use veil_net::deployment::RosterFile;
use veil_net::frame::{FRAME_HEADER_LEN, FrameKind, encode_frame, parse_header, read_frame};
use veil_net::state::StateDir;

fn frame_err(r: veil_net::Result<impl core::fmt::Debug>) -> &'static str {
    match r {
        Err(Error::Frame(m)) => m,
        other => panic!("expected a frame error, got {other:?}"),
    }
}

#[test]
fn frame_headers_are_checked_against_their_caps() {
    let caps = |k| match k {
        FrameKind::SecAgg => Some(100),
        FrameKind::Hello => Some(0),
        _ => None,
    };
    let header = |tag: u8, len: u32| {
        let mut h = [0_u8; FRAME_HEADER_LEN];
        h[0] = tag;
        h[1..].copy_from_slice(&len.to_be_bytes());
        h
    };
    assert_eq!(
        parse_header(header(3, 100), caps).unwrap(),
        (FrameKind::SecAgg, 100)
    );

    assert_eq!(
        frame_err(parse_header(header(3, 101), caps)),
        "frame longer than its cap"
    );
    assert_eq!(
        parse_header(header(1, 0), caps).unwrap(),
        (FrameKind::Hello, 0)
    );
    assert_eq!(
        frame_err(parse_header(header(1, 1), caps)),
        "frame longer than its cap"
    );
    let no_hello = |k| (k == FrameKind::SecAgg).then_some(100);
    assert_eq!(
        frame_err(parse_header(header(1, 0), no_hello)),
        "frame kind not allowed here"
    );
    // Kind 2 (the task before it became a §10 message) is retired.
    for tag in [0, 2, 4, 255] {
        assert_eq!(
            frame_err(parse_header(header(tag, 0), caps)),
            "unknown frame kind"
        );
    }
}

#[tokio::test]
async fn streams_that_end_early_or_claim_too_much_are_errors() {
    let caps = |_| Some(16);
    let frame = encode_frame(FrameKind::SecAgg, b"0123456789").unwrap();
    // A whole frame, then a clean end.
    let mut r: &[u8] = &frame;
    let (kind, payload) = read_frame(&mut r, caps).await.unwrap().unwrap();
    assert_eq!(
        (kind, payload.as_slice()),
        (FrameKind::SecAgg, &b"0123456789"[..])
    );
    assert!(read_frame(&mut r, caps).await.unwrap().is_none());
    // Cut inside the header or the payload.
    for cut in 1..frame.len() {
        let mut r: &[u8] = &frame[..cut];
        assert!(read_frame(&mut r, caps).await.is_err(), "cut at {cut}");
    }
    // A 4 GiB claim is refused from the header alone.
    let mut huge: &[u8] = &[3, 0xFF, 0xFF, 0xFF, 0xFF];
    assert_eq!(
        frame_err(read_frame(&mut huge, caps).await),
        "frame longer than its cap"
    );
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const KEY: &str = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
const FP: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[test]
fn bad_rosters_are_refused_naming_the_file_and_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let entry = |id: u32, name: &str, key: &str, fp: &str| {
        format!(
            "[[client]]\nid = {id}\nname = \"{name}\"\nidentity = \"{key}\"\ncertificate_sha256 = \"{fp}\"\n"
        )
    };
    let good = entry(0, "a", KEY, FP);
    let p = write(dir.path(), "ok.toml", &good);
    let roster = RosterFile::load(&p).unwrap();
    assert_eq!(roster.entries().len(), 1);
    assert_eq!(roster.protocol_roster().len(), 1);
    let fp2 = FP.replace("00", "11");
    for (text, needle) in [
        (good.clone() + &entry(0, "b", KEY, &fp2), "id used twice"),
        (good.clone() + &entry(1, "a", KEY, &fp2), "name used twice"),
        (
            good.clone() + &entry(1, "b", KEY, FP),
            "certificate listed twice",
        ),
        (entry(0, "a", "zz", FP), "identity is not"),
        (entry(0, "a", KEY, "abcd"), "certificate_sha256 is not"),
        (entry(u32::MAX, "a", KEY, FP), "is reserved"),
        (good + "colour = \"blue\"\n", "unknown field"),
        ("[[client]]\nid = \"x\"\n".to_owned(), "invalid type"),
    ] {
        let p = write(dir.path(), "bad.toml", &text);
        let err = RosterFile::load(&p).unwrap_err().to_string();
        assert!(
            err.contains("bad.toml") && err.contains(needle),
            "{needle}: {err}"
        );
    }
}

#[test]
fn a_state_directory_refuses_another_dimension_and_a_corrupt_model() {
    let dir = tempfile::tempdir().unwrap();
    let (state, restored) = StateDir::open(dir.path(), 8, None).unwrap();
    assert!(!restored.resumed);
    state.save_model(&[1.0; 8]).unwrap();
    let (_, again) = StateDir::open(dir.path(), 8, None).unwrap();
    assert!(again.resumed);
    assert_eq!(again.model, vec![1.0; 8]);
    let err = StateDir::open(dir.path(), 9, None).unwrap_err().to_string();
    assert!(
        err.contains("state.json") && err.contains("dimension 8"),
        "{err}"
    );
    std::fs::write(dir.path().join("model.safetensors"), b"not a checkpoint").unwrap();
    let err = StateDir::open(dir.path(), 8, None).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
}
