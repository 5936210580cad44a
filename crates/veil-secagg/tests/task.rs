//! The task message (SPEC.md §10.13): an annotated hex fixture checked in
//! both directions; every cut or extension fails; a model longer than the
//! client accepts is refused from its count, before allocation; every
//! number out of its range is refused naming its field.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use veil_secagg::messages::{
    HEADER_LEN, LocalOptimizer, MAX_PURPOSE_LEN, MAX_TRAINING_SPEC_LEN, Purpose, TASK_FIXED_LEN,
    Task, TrainingSpec, evaluation_len, held_out, max_task_len, statistics_len,
};
use veil_secagg::{DecodeErrorKind, Error};

const ROUND: u64 = 9;

fn task() -> Task {
    Task {
        training_round: 7,
        purpose: Purpose::Train,
        clip_norm: 1.5,
        scale: 1024.0,
        noise_variance: 3.25,
        training: None,
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
    let fields: [(&str, &str); 12] = [
        ("01", "version"),
        ("0d", "type 13: Task"),
        ("0000000000000009", "round"),
        ("0000000000000007", "training_round"),
        ("00", "purpose: train"),
        ("3ff8000000000000", "clip_norm 1.5"),
        ("4090000000000000", "scale 1024"),
        ("400a000000000000", "noise_variance 3.25"),
        ("00", "no training spec"),
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
    assert_eq!(
        max_task_len(4),
        HEADER_LEN + TASK_FIXED_LEN + MAX_PURPOSE_LEN + MAX_TRAINING_SPEC_LEN + 16
    );
    // A training purpose is its tag alone.
    assert_eq!(expected.len(), HEADER_LEN + TASK_FIXED_LEN + 1 + 16);
    assert_eq!(MAX_TRAINING_SPEC_LEN, 1_343_595, "SPEC.md §10.13");
    assert_eq!(MAX_PURPOSE_LEN, 16_397, "SPEC.md §10.13");
    assert_eq!(TASK_FIXED_LEN, 37, "SPEC.md §10.13");
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
    let count = HEADER_LEN + TASK_FIXED_LEN + 1 - 4;
    assert_eq!(bytes[count - 1], 0, "no training spec before the count");
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

fn spec() -> TrainingSpec {
    TrainingSpec {
        architecture: "mlp:8".into(),
        features: vec!["a".into(), "é".into()],
        classes: vec!["no".into(), "yes".into()],
        optimizer: LocalOptimizer::Adam,
        epochs: 2,
        batch_size: 32,
        learning_rate: 0.5,
        holdout: 0.25,
        standardization: Some((vec![1.0, -2.0], vec![0.5, 4.0])),
    }
}

#[test]
fn a_training_spec_has_one_encoding_and_its_rules_are_the_decoder_s() {
    let t = Task {
        training: Some(spec()),
        ..task()
    };
    let bytes = t.encode(ROUND);
    let spec_fields: [(&str, &str); 17] = [
        ("01", "training spec follows"),
        ("05", "architecture length"),
        ("6d6c703a38", "\"mlp:8\""),
        ("00000002", "2 features"),
        ("0161", "\"a\""),
        ("02c3a9", "\"é\" (UTF-8)"),
        ("00000002", "2 classes"),
        ("026e6f", "\"no\""),
        ("03796573", "\"yes\""),
        ("01", "optimizer: Adam"),
        ("00000002", "epochs 2"),
        ("00000020", "batch size 32"),
        ("3fe0000000000000", "learning rate 0.5"),
        ("3fd0000000000000", "holdout 0.25"),
        ("01", "standardization follows"),
        ("3f800000c0000000", "means 1, -2"),
        ("3f00000040800000", "deviations 0.5, 4"),
    ];
    let spec_hex: String = spec_fields.iter().map(|(h, _)| *h).collect();
    let at = HEADER_LEN + 8 + 1 + 24;
    assert_eq!(hex::encode(&bytes[at..bytes.len() - 4 - 16]), spec_hex);
    assert_eq!(Task::decode(&bytes, 4).unwrap(), (ROUND, t));
    spec().validate().unwrap();
    for cut in 0..bytes.len() {
        assert!(Task::decode(&bytes[..cut], 4).is_err(), "cut at {cut}");
    }
    // Each rule: what validate refuses, the decoder refuses too.
    type Spoil = fn(&mut TrainingSpec);
    let spoilt: [(Spoil, &str); 11] = [
        (|s| s.architecture = "mlp 8".into(), "architecture"),
        (|s| s.features = vec!["a".into(), "a".into()], "features"),
        (|s| s.features = vec![], "features"),
        (|s| s.classes = vec!["only".into()], "classes"),
        (|s| s.epochs = 0, "epochs"),
        (|s| s.batch_size = 100_000, "batch_size"),
        (|s| s.learning_rate = f64::NAN, "learning_rate"),
        (|s| s.holdout = 0.75, "holdout"),
        (|s| s.holdout = f64::NAN, "holdout"),
        (
            |s| s.standardization = Some((vec![0.0, 0.0], vec![1.0, 0.0])),
            "std",
        ),
        (
            |s| s.standardization = Some((vec![f32::INFINITY, 0.0], vec![1.0, 1.0])),
            "mean",
        ),
    ];
    for (spoil, field) in spoilt {
        let mut s = spec();
        spoil(&mut s);
        assert!(s.validate().is_err(), "{field}");
        let bytes = Task {
            training: Some(s),
            ..task()
        }
        .encode(ROUND);
        match Task::decode(&bytes, 4) {
            Err(Error::Decode { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    // A training flag other than 0 or 1, and an unknown optimizer.
    let mut bad = task().encode(ROUND);
    bad[HEADER_LEN + 33] = 2;
    assert_eq!(
        field_err(Task::decode(&bad, 4)),
        ("training", DecodeErrorKind::OutOfRange)
    );
    let mut bad = bytes;
    let optimizer = at + 1 + 1 + 5 + 4 + 2 + 3 + 4 + 3 + 4;
    bad[optimizer] = 7;
    assert_eq!(
        field_err(Task::decode(&bad, 4)),
        ("optimizer", DecodeErrorKind::OutOfRange)
    );
}

#[test]
fn an_evaluation_task_carries_its_row_cap_and_sums_a_short_input() {
    let t = Task {
        purpose: Purpose::Evaluate { row_cap: 300 },
        training: Some(spec()),
        ..task()
    };
    let bytes = t.encode(ROUND);
    // The purpose and the row cap follow the training round.
    assert_eq!(
        hex::encode(&bytes[HEADER_LEN + 8..HEADER_LEN + 13]),
        "010000012c",
        "purpose 1: evaluate, row_cap 300"
    );
    assert_eq!(Task::decode(&bytes, 4).unwrap(), (ROUND, t.clone()));
    // Two classes: examples, correct, loss and two 20-bin histograms.
    assert_eq!(t.input_len(), evaluation_len(2));
    assert_eq!(evaluation_len(2), 43);
    assert_eq!(task().input_len(), 4, "a training input is the model");
    // A row cap of 0, an evaluation without a training spec, an unknown
    // purpose: refused.
    let mut zero = bytes;
    zero[HEADER_LEN + 9..HEADER_LEN + 13].copy_from_slice(&[0; 4]);
    assert_eq!(
        field_err(Task::decode(&zero, 4)),
        ("row_cap", DecodeErrorKind::OutOfRange)
    );
    let blind = Task {
        training: None,
        ..t
    };
    assert_eq!(
        field_err(Task::decode(&blind.encode(ROUND), 4)),
        ("purpose", DecodeErrorKind::OutOfRange)
    );
    let mut unknown = task().encode(ROUND);
    unknown[HEADER_LEN + 8] = 3;
    assert_eq!(
        field_err(Task::decode(&unknown, 4)),
        ("purpose", DecodeErrorKind::OutOfRange)
    );
}

#[test]
fn a_statistics_task_carries_one_bound_per_feature() {
    let t = Task {
        purpose: Purpose::Statistics {
            row_cap: 300,
            bounds: vec![2.0, 0.5],
        },
        training: Some(spec()),
        ..task()
    };
    let bytes = t.encode(ROUND);
    assert_eq!(
        hex::encode(&bytes[HEADER_LEN + 8..HEADER_LEN + 25]),
        "020000012c00000002400000003f000000",
        "purpose 2: statistics, row_cap 300, 2 bounds: 2.0, 0.5"
    );
    assert_eq!(Task::decode(&bytes, 4).unwrap(), (ROUND, t.clone()));
    assert_eq!(t.input_len(), statistics_len(2));
    assert_eq!(statistics_len(2), 5);
    for cut in 0..bytes.len() {
        assert!(Task::decode(&bytes[..cut], 4).is_err(), "cut at {cut}");
    }
    // A bound of 0 or NaN, or one bound for two features: refused.
    for (bounds, field) in [
        (vec![0.0, 1.0], "bounds"),
        (vec![f32::NAN, 1.0], "bounds"),
        (vec![1.0], "bounds"),
    ] {
        let bad = Task {
            purpose: Purpose::Statistics {
                row_cap: 300,
                bounds,
            },
            ..t.clone()
        };
        assert_eq!(
            field_err(Task::decode(&bad.encode(ROUND), 4)),
            (field, DecodeErrorKind::OutOfRange)
        );
    }
    // A bounds count past the protocol's features is refused from the
    // count.
    let mut long = bytes;
    long[HEADER_LEN + 13..HEADER_LEN + 17].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        field_err(Task::decode(&long, 4)),
        ("bounds", DecodeErrorKind::TooLong { .. })
    ));
    let blind = Task {
        training: None,
        ..t
    };
    assert_eq!(
        field_err(Task::decode(&blind.encode(ROUND), 4)),
        ("purpose", DecodeErrorKind::OutOfRange)
    );
}

#[test]
fn the_held_out_rows_are_evenly_spaced_and_the_same_every_time() {
    let rows: Vec<usize> = (0..20).filter(|i| held_out(*i, 0.25)).collect();
    assert_eq!(rows, [3, 7, 11, 15, 19]);
    assert_eq!((0..1000).filter(|i| held_out(*i, 0.2)).count(), 200);
    assert!(!(0..1000).any(|i| held_out(i, 0.0)));
}

#[test]
fn a_regression_has_no_classes_and_standardises_its_label_too() {
    let regression = TrainingSpec {
        architecture: "linear".into(),
        classes: Vec::new(),
        // Two features, then the label.
        standardization: Some((vec![1.0, -2.0, 150.0], vec![0.5, 4.0, 77.0])),
        ..spec()
    };
    assert!(regression.is_regression() && regression.columns() == 3);
    assert_eq!(regression.validate(), Ok(()));
    for purpose in [
        Purpose::Train,
        Purpose::Evaluate { row_cap: 50 },
        Purpose::Statistics {
            row_cap: 50,
            bounds: vec![2.0, 8.0, 400.0],
        },
    ] {
        let t = Task {
            purpose: purpose.clone(),
            training: Some(regression.clone()),
            ..task()
        };
        let bytes = t.encode(ROUND);
        assert_eq!(Task::decode(&bytes, 4).unwrap(), (ROUND, t.clone()));
        if matches!(purpose, Purpose::Evaluate { .. }) {
            assert_eq!(t.input_len(), evaluation_len(0));
            assert_eq!(evaluation_len(0), 4);
        }
    }
    // One class is neither a classification nor a regression.
    let one = TrainingSpec {
        classes: vec!["only".into()],
        standardization: None,
        ..regression.clone()
    };
    assert!(one.validate().is_err());
    let t = Task {
        training: Some(one),
        ..task()
    };
    assert_eq!(
        field_err(Task::decode(&t.encode(ROUND), 4)),
        ("classes", DecodeErrorKind::OutOfRange)
    );
    // A standardisation of the features only, or bounds for the features
    // only, misses the label.
    let short = TrainingSpec {
        standardization: Some((vec![1.0, -2.0], vec![0.5, 4.0])),
        ..regression.clone()
    };
    assert!(short.validate().is_err());
    let t = Task {
        training: Some(short),
        ..task()
    };
    assert!(Task::decode(&t.encode(ROUND), 4).is_err());
    let t = Task {
        purpose: Purpose::Statistics {
            row_cap: 50,
            bounds: vec![2.0, 8.0],
        },
        training: Some(regression),
        ..task()
    };
    assert_eq!(
        field_err(Task::decode(&t.encode(ROUND), 4)),
        ("bounds", DecodeErrorKind::OutOfRange)
    );
}
