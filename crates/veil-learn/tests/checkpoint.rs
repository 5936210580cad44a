//! A checkpoint with its model card: round trips through bytes, stays a
//! plain safetensors file for candle, and a card that is missing, damaged
//! or does not fit the tensors is refused with a reason.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use safetensors::tensor::TensorView;
use veil_learn::checkpoint::{ModelCard, decode_card, encode, encode_card};
use veil_learn::dataset::Standardizer;
use veil_learn::model::Architecture;

fn card() -> ModelCard {
    ModelCard {
        architecture: "mlp:8".parse().unwrap(),
        features: vec!["age".into(), "dose mg".into(), "weight".into()],
        classes: vec!["benign".into(), "malignant".into(), "unknown".into()],
        standardization: Some(
            Standardizer::from_parts(vec![40.0, 2.5, 70.0], vec![12.0, 1.0, 9.5]).unwrap(),
        ),
        training_round: 17,
        privacy: Some((2.75, 1e-5)),
    }
}

#[test]
fn a_card_round_trips_and_the_file_stays_plain_safetensors() {
    let card = card();
    let params = card.spec().init(3);
    let bytes = encode_card(&card, &params).unwrap();
    let (back, weights) = decode_card(&bytes).unwrap();
    assert_eq!(back, card);
    assert_eq!(weights, params);
    assert_eq!(
        back.spec().architecture,
        Architecture::Mlp { hidden: vec![8] }
    );
    // candle reads the tensors as they are.
    let tensors = candle_core::safetensors::load_buffer(&bytes, &candle_core::Device::Cpu).unwrap();
    assert_eq!(tensors["layer0.weight"].dims(), [8, 3]);
    assert_eq!(tensors["layer1.bias"].dims(), [3]);
    // Without standardisation or privacy, still a card.
    let plain = ModelCard {
        standardization: None,
        privacy: None,
        ..card
    };
    let bytes = encode_card(&plain, &params).unwrap();
    assert_eq!(decode_card(&bytes).unwrap().0, plain);
}

/// The card's bytes with one metadata entry changed (`None` removes it).
fn with_metadata(key: &str, value: Option<&str>) -> Vec<u8> {
    let card = card();
    let params = card.spec().init(3);
    let bytes = encode_card(&card, &params).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut m: HashMap<String, String> = meta.metadata().clone().unwrap();
    match value {
        Some(v) => m.insert(key.to_owned(), v.to_owned()),
        None => m.remove(key),
    };
    let views: Vec<(String, TensorView<'_>)> = tensors.tensors();
    safetensors::serialize(views, Some(m)).unwrap()
}

#[test]
fn a_missing_or_damaged_card_is_refused_with_its_reason() {
    let cases: [(&str, Option<&str>, &str); 9] = [
        // Two classes make one output: the tensors no longer fit.
        ("veil.classes", Some("[\"a\",\"b\"]"), "shape"),
        ("veil.format", Some("2"), "unknown metadata format"),
        ("veil.features", None, "no veil.features"),
        ("veil.features", Some("[\"age\"]"), "veil.mean"),
        ("veil.classes", Some("not json"), "veil.classes"),
        ("veil.mean", Some("[1.0]"), "veil.mean and veil.std"),
        ("veil.std", None, "veil.mean and veil.std"),
        ("veil.epsilon", Some("-1"), "veil.epsilon"),
        (
            "veil.architecture",
            Some("transformer"),
            "model \"transformer\"",
        ),
    ];
    for (key, value, needle) in cases {
        let err = decode_card(&with_metadata(key, value))
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{key}: {needle}: {err}");
    }
    // A checkpoint written without a card says so.
    let card = card();
    let bare = encode(&card.spec(), &card.spec().init(3)).unwrap();
    let err = decode_card(&bare).unwrap_err().to_string();
    assert!(err.contains("no veil metadata"), "{err}");
    assert!(decode_card(b"not a checkpoint").is_err());
}
