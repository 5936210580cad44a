//! `protocol/test-vectors/*.json`: the committed files are exactly what the
//! generator produces, and every case holds when checked through the public
//! API in both directions (inputs to outputs, and outputs back to inputs),
//! with the underlying primitive recomputed independently where it can be.

use std::path::PathBuf;

use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use hkdf::Hkdf;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use veil_crypto::agreement::{AgreementPublicKey, AgreementSecret};
use veil_crypto::envelope::EnvelopeContext;
use veil_crypto::prg::{MaskSeed, RingBits};
use veil_crypto::shamir::{self, SecretScalar, Share, ShareIndex};
use veil_crypto::sign::{IdentitySigningKey, IdentityVerifyingKey, Signature};
use veil_crypto::test_vectors::*;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../protocol/test-vectors")
}

fn load<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let text = std::fs::read_to_string(dir().join(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

fn scalar(s: &str) -> SecretScalar {
    SecretScalar::from_canonical_bytes(&unhex(s)).unwrap()
}

#[test]
fn committed_files_are_what_the_generator_writes() {
    for (name, json) in generate_all() {
        let committed = std::fs::read_to_string(dir().join(name))
            .unwrap_or_else(|e| panic!("protocol/test-vectors/{name}: {e}"));
        assert!(
            committed == json,
            "protocol/test-vectors/{name} is stale: run \
             `cargo run -p veil-crypto --features test-util --example generate_test_vectors` \
             and update SPEC.md with it"
        );
    }
}

#[test]
fn kdf_vectors() {
    let file: KdfFile = load("kdf.json");
    assert_eq!(unhex(&file.salt), b"veil/1");
    assert_eq!(file.cases.len(), 7);
    for case in &file.cases {
        let info = kdf_info_of(case).expect("known label and layout");
        assert_eq!(hex::encode(info.encode()), case.info);
        let ikm = unhex(&case.ikm);
        assert_eq!(hex::encode(derive(&ikm, &info)), case.okm);
        // Independently: plain RFC 5869 HKDF-SHA256 over the listed bytes.
        let mut okm = [0_u8; 32];
        Hkdf::<Sha256>::new(Some(&unhex(&file.salt)), &ikm)
            .expand(&unhex(&case.info), &mut okm)
            .unwrap();
        assert_eq!(hex::encode(okm), case.okm);
    }
}

#[test]
fn agreement_vectors() {
    let file: AgreementFile = load("agreement.json");
    let mut refused = 0;
    for case in &file.cases {
        let secret = AgreementSecret::from_scalar(&scalar(&case.secret_scalar));
        assert_eq!(hex::encode(secret.public_key().to_bytes()), case.public_key);
        let peer = AgreementPublicKey::from_slice(&unhex(&case.peer_public_key)).unwrap();
        let raw = x25519_dalek::x25519(
            unhex(&case.secret_scalar).try_into().unwrap(),
            peer.to_bytes(),
        );
        match (&case.shared_secret, &case.error) {
            (Some(shared), None) => {
                let ss = secret.agree(&peer).unwrap();
                assert_eq!(&hex::encode(ss.expose_for_test()), shared);
                assert_eq!(&hex::encode(raw), shared);
                let seed = ss.pairwise_mask_seed(case.round, case.id, case.peer_id);
                assert_eq!(
                    Some(hex::encode(seed.expose_for_test())),
                    case.pairwise_mask_seed
                );
            }
            (None, Some(error)) => {
                assert_eq!(raw, [0; 32], "a refused agreement is the all-zero result");
                assert_eq!(error_name(&secret.agree(&peer).unwrap_err()), error);
                refused += 1;
            }
            _ => panic!("a case has either a result or an error"),
        }
    }
    assert_eq!(refused, 3);
}

#[test]
fn prg_vectors() {
    let file: PrgFile = load("prg.json");
    assert_eq!(file.cases.len(), 11);
    for case in &file.cases {
        let seed_bytes: [u8; 32] = unhex(&case.seed).try_into().unwrap();
        let ring = RingBits::new(case.bits).unwrap();
        let (elements, sum) = prg_case_outputs(
            &MaskSeed::from_bytes(seed_bytes),
            ring,
            case.elements.len(),
            usize::try_from(case.sum_len).unwrap(),
        );
        assert_eq!(elements, case.elements, "b = {}", case.bits);
        assert_eq!(sum, case.sum, "b = {}", case.bits);
        // Independently from the SPEC's words: ChaCha20, nonce 0, LE words.
        let mut ks = vec![0_u8; case.elements.len() * ring.word_bytes()];
        ChaCha20::new(&seed_bytes.into(), &[0_u8; 12].into()).write_keystream(&mut ks);
        let words: Vec<u64> = ks
            .chunks_exact(ring.word_bytes())
            .map(|w| {
                let mut b = [0_u8; 8];
                b[..w.len()].copy_from_slice(w);
                u64::from_le_bytes(b) & ring.mask()
            })
            .collect();
        assert_eq!(words, case.elements);
    }
}

#[test]
fn shamir_vectors() {
    let file: ShamirFile = load("shamir.json");
    let mut rng = <rand::rngs::ChaCha20Rng as rand::SeedableRng>::from_seed([5; 32]);
    for case in &file.cases {
        let secret = scalar(&case.secret);
        let coefficients: Vec<SecretScalar> = case.coefficients.iter().map(|c| scalar(c)).collect();
        assert_eq!(coefficients.len() + 1, case.threshold);
        let decoded: Vec<Share> = case
            .shares
            .iter()
            .map(|s| Share::from_bytes(&unhex(s)).unwrap())
            .collect();
        // Encode direction: the polynomial gives exactly these shares.
        let indices: Vec<ShareIndex> = decoded.iter().map(Share::index).collect();
        let shares = shamir::split_with_coefficients(&secret, &coefficients, &indices).unwrap();
        for (s, expected) in shares.iter().zip(&case.shares) {
            assert_eq!(&hex::encode(*s.to_bytes()), expected);
        }
        // Decode direction: all shares, the first t and the last t give the secret.
        let t = case.threshold;
        for subset in [&decoded[..], &decoded[..t], &decoded[decoded.len() - t..]] {
            let got = shamir::reconstruct(subset, t, &mut rng).unwrap();
            assert!(bool::from(got.ct_eq(&secret)));
        }
        assert_eq!(
            hex::encode(secret.self_mask_seed(1, 0).expose_for_test()),
            case.self_mask_seed
        );
        assert_eq!(case.commitments.len(), decoded.len());
        for (share, commitment) in decoded.iter().zip(&case.commitments) {
            let c = shamir::ShareCommitment::compute(1, 0, 0, share);
            assert_eq!(&hex::encode(c.0), commitment);
            // Independently: SHA-256 over the bytes SPEC.md §5.4 lists.
            let label = b"veil/1 share-commitment";
            let mut input = vec![label.len() as u8];
            input.extend_from_slice(label);
            input.extend_from_slice(&1_u64.to_be_bytes());
            input.extend_from_slice(&0_u32.to_be_bytes());
            input.push(0);
            input.extend_from_slice(share.to_bytes().as_ref());
            assert_eq!(hex::encode(Sha256::digest(&input)), *commitment);
        }
    }
    assert_eq!(file.invalid.len(), 8);
    for case in &file.invalid {
        let err = reconstruct_hex(&case.shares, case.threshold).unwrap_err();
        assert_eq!(error_name(&err), case.error, "{}", case.comment);
    }
}

#[test]
fn envelope_vectors() {
    let file: EnvelopeFile = load("envelope.json");
    for case in &file.cases {
        let ctx = EnvelopeContext {
            round: case.round,
            phase: case.phase,
            sender: case.sender,
            receiver: case.receiver,
        };
        let s = AgreementSecret::from_scalar(&scalar(&case.sender_secret_scalar));
        let r = AgreementSecret::from_scalar(&scalar(&case.receiver_secret_scalar));
        let extra = unhex(&case.extra_ad);
        assert_eq!(
            hex::encode(ctx.associated_data(&extra)),
            case.associated_data
        );
        let sealing = s.agree(&r.public_key()).unwrap().sealing_key(ctx);
        assert_eq!(hex::encode(sealing.expose_for_test()), case.key);
        let plaintext = unhex(&case.plaintext);
        assert_eq!(
            hex::encode(sealing.seal(&extra, &plaintext).unwrap()),
            case.sealed
        );

        // Independently: RFC 8439 AEAD with the listed key, nonce 0, AD.
        let key: [u8; 32] = unhex(&case.key).try_into().unwrap();
        let sealed = ChaCha20Poly1305::new(&key.into())
            .encrypt(
                &[0_u8; 12].into(),
                Payload {
                    msg: &plaintext,
                    aad: &unhex(&case.associated_data),
                },
            )
            .unwrap();
        assert_eq!(hex::encode(sealed), case.sealed);

        let opening = r.agree(&s.public_key()).unwrap().opening_key(ctx);
        let opened = opening.open(&extra, &unhex(&case.sealed)).unwrap();
        assert_eq!(opened.as_bytes(), plaintext.as_slice());
        assert!(!case.tampered.is_empty());
        for bad in &case.tampered {
            assert_eq!(
                error_name(&opening.open(&extra, &unhex(bad)).unwrap_err()),
                "OpenFailed"
            );
        }
    }
}

#[test]
fn signature_vectors() {
    let file: SignatureFile = load("signature.json");
    for case in &file.cases {
        let key = IdentitySigningKey::from_seed(&unhex(&case.seed).try_into().unwrap());
        let public = IdentityVerifyingKey::from_slice(&unhex(&case.public_key)).unwrap();
        assert_eq!(key.verifying_key(), public);
        let domain = domain_of(&case.domain).unwrap();
        let message = unhex(&case.message);
        assert_eq!(
            hex::encode(domain.signed_bytes(&message)),
            case.signed_bytes
        );
        let sig = Signature::from_slice(&unhex(&case.signature)).unwrap();
        assert_eq!(key.sign(domain, &message), sig);
        public.verify(domain, &message, &sig).unwrap();
        // Independently: plain Ed25519 over the signed bytes.
        let upstream = ed25519_dalek::VerifyingKey::from_bytes(&public.to_bytes()).unwrap();
        upstream
            .verify_strict(
                &unhex(&case.signed_bytes),
                &ed25519_dalek::Signature::from_bytes(&sig.to_bytes()),
            )
            .unwrap();
        for wrong in &case.wrong_domains {
            assert_eq!(
                error_name(
                    &public
                        .verify(domain_of(wrong).unwrap(), &message, &sig)
                        .unwrap_err()
                ),
                "BadSignature"
            );
        }
    }
}
