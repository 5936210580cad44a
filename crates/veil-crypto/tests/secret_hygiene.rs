//! Secrets never print: `Debug` of every secret type shows its name and
//! none of its bytes, in hex or as a byte list.

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use veil_crypto::agreement::AgreementSecret;
use veil_crypto::envelope::EnvelopeContext;
use veil_crypto::prg::MaskSeed;
use veil_crypto::shamir::{self, Reconstructor, SecretScalar, ShareIndex};
use veil_crypto::sign::IdentitySigningKey;

/// `debug` names the type and contains no rendering of `secret`.
fn assert_hidden(debug: &str, type_name: &str, secret: &[u8]) {
    assert!(secret.len() >= 8, "test a secret of some length");
    assert!(
        debug.contains(type_name),
        "{debug:?} does not name {type_name}"
    );
    let lower = hex::encode(secret);
    let upper = lower.to_uppercase();
    let list = format!("{secret:?}"); // "[1, 2, 3, ...]"
    let inner = &list[1..list.len() - 1];
    // Any 4 consecutive secret bytes would be a leak.
    for window in 0..secret.len().saturating_sub(4) {
        let h = &lower[2 * window..2 * window + 8];
        assert!(!debug.contains(h), "{type_name} Debug leaks hex bytes");
        assert!(!debug.contains(&upper[2 * window..2 * window + 8]));
    }
    assert!(
        !debug.contains(inner),
        "{type_name} Debug leaks the byte list"
    );
    assert!(
        debug.len() < 40,
        "{type_name} Debug prints more than its name: {debug}"
    );
}

#[test]
fn every_secret_type_hides_its_bytes() {
    let mut rng = ChaCha20Rng::from_seed([8; 32]);
    let scalar = SecretScalar::random(&mut rng);
    let bytes = scalar.export_bytes();
    assert_hidden(&format!("{scalar:?}"), "SecretScalar", bytes.as_ref());
    assert_hidden(&format!("{scalar:#?}"), "SecretScalar", bytes.as_ref());

    let seed = MaskSeed::from_bytes([0xab; 32]);
    assert_hidden(&format!("{seed:?}"), "MaskSeed", &[0xab; 32]);

    let a = AgreementSecret::from_scalar(&scalar);
    assert_hidden(&format!("{a:?}"), "AgreementSecret", bytes.as_ref());

    let b = AgreementSecret::from_scalar(&SecretScalar::random(&mut rng));
    let shared = a.agree(&b.public_key()).unwrap();
    assert_hidden(
        &format!("{shared:?}"),
        "SharedSecret",
        &shared.expose_for_test(),
    );

    let ctx = EnvelopeContext {
        round: 1,
        phase: 2,
        sender: 3,
        receiver: 4,
    };
    let sealing = shared.sealing_key(ctx);
    let key = sealing.expose_for_test();
    assert_hidden(&format!("{sealing:?}"), "SealingKey", &key);
    // The opening key is the same key, derived on the other side.
    let opening = shared.opening_key(ctx);
    let sealed = sealing.seal(b"", b"confidential share bytes").unwrap();
    assert_hidden(&format!("{opening:?}"), "OpeningKey", &key);
    let plain = opening.open(b"", &sealed).unwrap();
    assert_hidden(
        &format!("{plain:?}"),
        "Plaintext",
        b"confidential share bytes",
    );

    let xs: Vec<ShareIndex> = (1..=3).map(|i| ShareIndex::new(i).unwrap()).collect();
    let shares = shamir::split(&scalar, 2, &xs, &mut rng).unwrap();
    for share in &shares {
        assert_hidden(&format!("{share:?}"), "Share", &share.to_bytes()[4..]);
    }
    let rec = Reconstructor::new(&xs, 2, &mut rng).unwrap();
    assert!(format!("{rec:?}").starts_with("Reconstructor"));

    let id = IdentitySigningKey::generate(&mut rng);
    assert_hidden(
        &format!("{id:?}"),
        "IdentitySigningKey",
        id.export_seed().as_ref(),
    );
}
