//! Hostile input to veil-net's decoders and files: every malformed task,
//! frame, roster or state file is an error naming what is wrong, never a
//! panic, and every length is checked before allocation.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use veil_net::Error;
use veil_net::deployment::RosterFile;
use veil_net::frame::{FRAME_HEADER_LEN, FrameKind, encode_frame, parse_header, read_frame};
use veil_net::state::StateDir;
use veil_net::task::{TASK_FIXED_LEN, Task};

fn task() -> Task {
    Task {
        training_round: 7,
        round: 9,
        clip_norm: 1.5,
        scale: 1024.0,
        noise_variance: 3.25,
        model: vec![0.5, -1.0, 0.0, 1e-3],
    }
}

fn frame_err(r: veil_net::Result<impl core::fmt::Debug>) -> &'static str {
    match r {
        Err(Error::Frame(m)) => m,
        other => panic!("expected a frame error, got {other:?}"),
    }
}

#[test]
fn a_task_round_trips_and_every_cut_or_extension_fails() {
    let t = task();
    let bytes = t.encode();
    assert_eq!(bytes.len(), TASK_FIXED_LEN + 16);
    assert_eq!(Task::decode(&bytes, 4).unwrap(), t);
    for cut in 0..bytes.len() {
        assert!(Task::decode(&bytes[..cut], 4).is_err(), "cut at {cut}");
    }
    let mut longer = bytes;
    longer.push(0);
    assert!(Task::decode(&longer, 4).is_err());
}

#[test]
fn a_task_longer_than_the_client_accepts_is_refused_by_its_count() {
    let mut bytes = task().encode();
    // Claim 2^32 - 1 elements: refused from the count, before any buffer.
    bytes[TASK_FIXED_LEN - 4..TASK_FIXED_LEN].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        frame_err(Task::decode(&bytes, 1 << 20)),
        "task: model longer than the client accepts"
    );
    assert_eq!(
        frame_err(Task::decode(&task().encode(), 3)),
        "task: model longer than the client accepts"
    );
}

#[test]
fn out_of_range_task_numbers_are_refused() {
    type Spoil = fn(&mut Task);
    let cases: [(Spoil, &str); 5] = [
        (
            |t| t.clip_norm = 0.0,
            "task: clip_norm must be finite and positive",
        ),
        (
            |t| t.scale = f64::NAN,
            "task: scale must be finite and positive",
        ),
        (
            |t| t.noise_variance = -1.0,
            "task: noise_variance must be finite and non-negative",
        ),
        (
            |t| t.noise_variance = f64::INFINITY,
            "task: noise_variance must be finite and non-negative",
        ),
        (|t| t.model[1] = f32::NAN, "task: model element not finite"),
    ];
    for (spoil, message) in cases {
        let mut t = task();
        spoil(&mut t);
        assert_eq!(frame_err(Task::decode(&t.encode(), 4)), message);
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
        parse_header(header(1, 0), caps).unwrap(),
        (FrameKind::Hello, 0)
    );
    assert_eq!(
        frame_err(parse_header(header(3, 101), caps)),
        "frame longer than its cap"
    );
    assert_eq!(
        frame_err(parse_header(header(1, 1), caps)),
        "frame longer than its cap"
    );
    assert_eq!(
        frame_err(parse_header(header(2, 0), caps)),
        "frame kind not allowed here"
    );
    for tag in [0, 4, 255] {
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
