//! The task message (SPEC.md §10.13): an annotated hex fixture checked in
//! both directions; every cut or extension fails; a model longer than the
//! client accepts is refused from its count, before allocation; every
//! number out of its range is refused naming its field.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use veil_secagg::messages::{HEADER_LEN, TASK_FIXED_LEN, Task, max_task_len};
use veil_secagg::{DecodeErrorKind, Error};

const ROUND: u64 = 9;

fn task() -> Task {
    Task {
        training_round: 7,
        clip_norm: 1.5,
        scale: 1024.0,
        noise_variance: 3.25,
        model: vec![0.5, -1.0, 0.0, 1e-3],
    }
}

fn field_err(r: veil_secagg::Result<(u64, Task)>) -> (&'static str, DecodeErrorKind) {
    match r {
        Err(Error::Decode { field, kind, .. }) => (field, kind),
        other => panic!("expected a decode error, got {other:?}"),
    }
}

#[test]
fn the_encoding_is_the_annotated_layout() {
    let fields: [(&str, &str); 10] = [
        ("01", "version"),
        ("0d", "type 13: Task"),
        ("0000000000000009", "round"),
        ("0000000000000007", "training_round"),
        ("3ff8000000000000", "clip_norm 1.5"),
        ("4090000000000000", "scale 1024"),
        ("400a000000000000", "noise_variance 3.25"),
        ("00000004", "model count"),
        ("3f000000bf800000", "model 0.5, -1.0"),
        ("000000003a83126f", "model 0.0, 0.001"),
    ];
    let expected: Vec<u8> = fields
        .iter()
        .flat_map(|(h, _)| hex::decode(h).unwrap())
        .collect();
    assert_eq!(task().encode(ROUND), expected);
    assert_eq!(Task::decode(&expected, 4).unwrap(), (ROUND, task()));
    assert_eq!(expected.len(), max_task_len(4));
    assert_eq!(max_task_len(4), HEADER_LEN + TASK_FIXED_LEN + 16);
}

#[test]
fn every_cut_or_extension_fails() {
    let bytes = task().encode(ROUND);
    for cut in 0..bytes.len() {
        assert!(Task::decode(&bytes[..cut], 4).is_err(), "cut at {cut}");
    }
    let mut longer = bytes;
    longer.push(0);
    assert_eq!(
        field_err(Task::decode(&longer, 4)),
        ("end", DecodeErrorKind::TrailingBytes)
    );
}

#[test]
fn a_model_longer_than_the_client_accepts_is_refused_by_its_count() {
    let mut bytes = task().encode(ROUND);
    // Claim 2^32 - 1 elements: refused from the count, before any buffer.
    let count = HEADER_LEN + TASK_FIXED_LEN - 4;
    bytes[count..count + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        field_err(Task::decode(&bytes, usize::MAX)),
        ("model", DecodeErrorKind::TooLong { max, .. }) if max == 1 << 26
    ));
    assert!(matches!(
        field_err(Task::decode(&task().encode(ROUND), 3)),
        ("model", DecodeErrorKind::TooLong { len: 4, max: 3 })
    ));
}

#[test]
fn out_of_range_numbers_and_other_types_are_refused() {
    type Spoil = fn(&mut Task);
    let cases: [(Spoil, &str); 6] = [
        (|t| t.clip_norm = 0.0, "clip_norm"),
        (|t| t.scale = f64::NAN, "scale"),
        (|t| t.scale = -2.0, "scale"),
        (|t| t.noise_variance = -1.0, "noise_variance"),
        (|t| t.noise_variance = f64::INFINITY, "noise_variance"),
        (|t| t.model[1] = f32::NAN, "model"),
    ];
    for (spoil, field) in cases {
        let mut t = task();
        spoil(&mut t);
        assert_eq!(
            field_err(Task::decode(&t.encode(ROUND), 4)),
            (field, DecodeErrorKind::OutOfRange)
        );
    }
    let mut other = task().encode(ROUND);
    other[1] = 1;
    assert_eq!(
        field_err(Task::decode(&other, 4)),
        ("type", DecodeErrorKind::UnknownTag(1))
    );
}
