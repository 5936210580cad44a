//! The generator of `protocol/test-vectors/*.json` (feature `test-util`).
//!
//! Every vector is computed by this crate from fixed seeds. The example
//! `generate_test_vectors` writes the files; the tests regenerate them and
//! require the committed files to be identical, and separately check every
//! case through the public API in both directions. An independent
//! implementation can replay the files byte for byte with SPEC.md alone.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::cast_possible_truncation,
    missing_docs,
    reason = "test-vector generation from fixed, valid inputs; not reachable from remote input"
)]

use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::agreement::{AgreementPublicKey, AgreementSecret};
use crate::envelope::EnvelopeContext;
use crate::kdf::{HKDF_SALT, KdfInfo};
use crate::prg::{self, MaskSeed, RingBits};
use crate::shamir::{self, SecretScalar, Share, ShareIndex};
use crate::sign::{IdentitySigningKey, SignatureDomain};

/// A short, stable name for an error, as the vectors record it.
#[must_use]
pub fn error_name(e: &Error) -> &'static str {
    match e {
        Error::NonContributory => "NonContributory",
        Error::RingBitsOutOfRange { .. } => "RingBitsOutOfRange",
        Error::RingBitsTooWide { .. } => "RingBitsTooWide",
        Error::MaskTooLong { .. } => "MaskTooLong",
        Error::LengthMismatch { .. } => "LengthMismatch",
        Error::InvalidThreshold { .. } => "InvalidThreshold",
        Error::TooManyShares { .. } => "TooManyShares",
        Error::ZeroShareIndex => "ZeroShareIndex",
        Error::ParticipantIdOutOfRange { .. } => "ParticipantIdOutOfRange",
        Error::DuplicateShareIndex { .. } => "DuplicateShareIndex",
        Error::TooFewShares { .. } => "TooFewShares",
        Error::InconsistentShares { .. } => "InconsistentShares",
        Error::ShareIndexMismatch { .. } => "ShareIndexMismatch",
        Error::InvalidLength { .. } => "InvalidLength",
        Error::NonCanonicalScalar { .. } => "NonCanonicalScalar",
        Error::InvalidVerifyingKey => "InvalidVerifyingKey",
        Error::BadSignature => "BadSignature",
        Error::OpenFailed => "OpenFailed",
        Error::EnvelopeTooLarge { .. } => "EnvelopeTooLarge",
    }
}

fn rng(file: &str) -> ChaCha20Rng {
    // A distinct, documented seed per file: SHA-256 is not needed, the
    // file name padded with zeros is enough to make the streams differ.
    let mut seed = [0_u8; 32];
    for (s, b) in seed.iter_mut().zip(file.as_bytes()) {
        *s = *b;
    }
    ChaCha20Rng::from_seed(seed)
}

fn scalar_hex(s: &SecretScalar) -> String {
    hex::encode(*s.export_bytes())
}

fn random_bytes<const N: usize>(rng: &mut ChaCha20Rng) -> [u8; N] {
    let mut b = [0_u8; N];
    rand_core::Rng::fill_bytes(rng, &mut b);
    b
}

// ---------------------------------------------------------------- kdf ----

#[derive(Debug, Serialize, Deserialize)]
pub struct KdfFile {
    pub description: String,
    pub salt: String,
    pub cases: Vec<KdfCase>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct KdfCase {
    pub label: String,
    pub round: u64,
    /// The ids as the variant orders them (low, high / owner / sender, receiver).
    pub ids: Vec<u32>,
    pub phase: Option<u8>,
    pub ikm: String,
    pub info: String,
    pub okm: String,
}

pub fn kdf_info_of(case: &KdfCase) -> Option<KdfInfo> {
    match (case.label.as_str(), case.ids.as_slice(), case.phase) {
        (crate::kdf::LABEL_PAIRWISE_MASK, [low, high], None) => Some(KdfInfo::PairwiseMask {
            round: case.round,
            low: *low,
            high: *high,
        }),
        (crate::kdf::LABEL_SELF_MASK, [owner], None) => Some(KdfInfo::SelfMask {
            round: case.round,
            owner: *owner,
        }),
        (crate::kdf::LABEL_ENVELOPE_KEY, [sender, receiver], Some(phase)) => {
            Some(KdfInfo::EnvelopeKey {
                round: case.round,
                phase,
                sender: *sender,
                receiver: *receiver,
            })
        }
        _ => None,
    }
}

/// The HKDF output for `ikm` and `info`, for checking vectors.
#[must_use]
pub fn derive(ikm: &[u8], info: &KdfInfo) -> [u8; 32] {
    *crate::kdf::derive_32(ikm, info)
}

fn kdf_file() -> KdfFile {
    let mut rng = rng("kdf");
    let infos = [
        KdfInfo::pairwise_mask(0, 0, 1),
        KdfInfo::pairwise_mask(7, 12, 3),
        KdfInfo::pairwise_mask(u64::MAX, u32::MAX - 1, u32::MAX),
        KdfInfo::SelfMask { round: 0, owner: 0 },
        KdfInfo::SelfMask {
            round: 42,
            owner: 9999,
        },
        KdfInfo::EnvelopeKey {
            round: 1,
            phase: 2,
            sender: 3,
            receiver: 4,
        },
        KdfInfo::EnvelopeKey {
            round: 1,
            phase: 2,
            sender: 4,
            receiver: 3,
        },
    ];
    let cases = infos
        .iter()
        .map(|info| {
            let ikm: [u8; 32] = random_bytes(&mut rng);
            let (round, ids, phase) = match *info {
                KdfInfo::PairwiseMask { round, low, high } => (round, vec![low, high], None),
                KdfInfo::SelfMask { round, owner } => (round, vec![owner], None),
                KdfInfo::EnvelopeKey {
                    round,
                    phase,
                    sender,
                    receiver,
                } => (round, vec![sender, receiver], Some(phase)),
            };
            KdfCase {
                label: info.label().to_owned(),
                round,
                ids,
                phase,
                ikm: hex::encode(ikm),
                info: hex::encode(info.encode()),
                okm: hex::encode(derive(&ikm, info)),
            }
        })
        .collect();
    KdfFile {
        description: "HKDF-SHA256(salt, ikm, info, 32) for each derivation of SPEC.md §3".into(),
        salt: hex::encode(HKDF_SALT),
        cases,
    }
}

// ---------------------------------------------------------- agreement ----

#[derive(Debug, Serialize, Deserialize)]
pub struct AgreementFile {
    pub description: String,
    pub cases: Vec<AgreementCase>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AgreementCase {
    pub round: u64,
    pub id: u32,
    pub peer_id: u32,
    /// `LE32` of the secret scalar; the X25519 private key.
    pub secret_scalar: String,
    pub public_key: String,
    pub peer_public_key: String,
    /// Present when the agreement succeeds.
    pub shared_secret: Option<String>,
    pub pairwise_mask_seed: Option<String>,
    /// Present when it must fail.
    pub error: Option<String>,
}

fn agreement_file() -> AgreementFile {
    let mut rng = rng("agreement");
    let mut cases = Vec::new();
    for (id, peer_id) in [(1_u32, 2_u32), (5, 3), (0, 1000)] {
        let a = SecretScalar::random(&mut rng);
        let b = SecretScalar::random(&mut rng);
        let (ka, kb) = (
            AgreementSecret::from_scalar(&a),
            AgreementSecret::from_scalar(&b),
        );
        let shared = ka.agree(&kb.public_key()).unwrap();
        cases.push(AgreementCase {
            round: 3,
            id,
            peer_id,
            secret_scalar: scalar_hex(&a),
            public_key: hex::encode(ka.public_key().to_bytes()),
            peer_public_key: hex::encode(kb.public_key().to_bytes()),
            shared_secret: Some(hex::encode(shared.expose_for_test())),
            pairwise_mask_seed: Some(hex::encode(
                shared.pairwise_mask_seed(3, id, peer_id).expose_for_test(),
            )),
            error: None,
        });
    }
    // Peer keys of small order (RFC 7748 §6.1; Wycheproof lists these u values).
    let small_order: [[u8; 32]; 3] = [
        [0; 32],
        {
            let mut one = [0_u8; 32];
            one[0] = 1;
            one
        },
        hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
            .unwrap()
            .try_into()
            .unwrap(),
    ];
    for peer in small_order {
        let a = SecretScalar::random(&mut rng);
        let ka = AgreementSecret::from_scalar(&a);
        let err = ka.agree(&AgreementPublicKey::from_bytes(peer)).unwrap_err();
        cases.push(AgreementCase {
            round: 3,
            id: 1,
            peer_id: 2,
            secret_scalar: scalar_hex(&a),
            public_key: hex::encode(ka.public_key().to_bytes()),
            peer_public_key: hex::encode(peer),
            shared_secret: None,
            pairwise_mask_seed: None,
            error: Some(error_name(&err).into()),
        });
    }
    AgreementFile {
        description: "X25519 with LE32(scalar) as private key, and the pairwise mask seed \
                      (SPEC.md §2, §3.2); small-order peer keys must be refused"
            .into(),
        cases,
    }
}

// ---------------------------------------------------------------- prg ----

#[derive(Debug, Serialize, Deserialize)]
pub struct PrgFile {
    pub description: String,
    pub cases: Vec<PrgCase>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PrgCase {
    pub seed: String,
    pub bits: u32,
    /// The first elements of the expansion (values may exceed 2^53).
    pub elements: Vec<u64>,
    /// Wrapping sum of the first `sum_len` elements modulo 2^bits: checks a
    /// long expansion without listing it.
    pub sum_len: u64,
    pub sum: u64,
}

/// The first `list` elements and the sum mod `2^b` of the first `sum_len`.
#[must_use]
pub fn prg_case_outputs(
    seed: &MaskSeed,
    ring: RingBits,
    list: usize,
    sum_len: usize,
) -> (Vec<u64>, u64) {
    let mut out = vec![0_u64; sum_len.max(list)];
    prg::expand_into(seed, ring, &mut out).unwrap();
    let sum = out[..sum_len]
        .iter()
        .fold(0_u64, |acc, v| ring.add(acc, *v));
    (out[..list].to_vec(), sum)
}

fn prg_file() -> PrgFile {
    let mut rng = rng("prg");
    let cases = [1_u32, 2, 8, 16, 20, 31, 32, 33, 48, 63, 64]
        .iter()
        .map(|&bits| {
            let seed_bytes: [u8; 32] = random_bytes(&mut rng);
            let ring = RingBits::new(bits).unwrap();
            let (elements, sum) =
                prg_case_outputs(&MaskSeed::from_bytes(seed_bytes), ring, 20, 100_000);
            PrgCase {
                seed: hex::encode(seed_bytes),
                bits,
                elements,
                sum_len: 100_000,
                sum,
            }
        })
        .collect();
    PrgFile {
        description: "ChaCha20(key = seed, nonce = 0^12, counter from 0) as LE words of 32 bits \
                      (b <= 32) or 64 bits (b > 32), each reduced mod 2^b (SPEC.md §4)"
            .into(),
        cases,
    }
}

// ------------------------------------------------------------- shamir ----

#[derive(Debug, Serialize, Deserialize)]
pub struct ShamirFile {
    pub description: String,
    pub cases: Vec<ShamirCase>,
    pub invalid: Vec<ShamirInvalid>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ShamirCase {
    pub secret: String,
    pub threshold: usize,
    /// `a_1 .. a_{t-1}`, each `LE32`.
    pub coefficients: Vec<String>,
    /// The encoded shares (SPEC.md §5.2), one per index.
    pub shares: Vec<String>,
    /// The self-mask seed of participant 0 in round 1 if this secret were `b_0`.
    pub self_mask_seed: String,
    /// The commitment to each share as dealt by participant 0 in round 1,
    /// kind 0 (SPEC.md §5.4).
    pub commitments: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ShamirInvalid {
    pub comment: String,
    pub threshold: usize,
    pub shares: Vec<String>,
    pub error: String,
}

fn shamir_file() -> ShamirFile {
    let mut rng = rng("shamir");
    let mut cases = Vec::new();
    for (t, xs) in [
        (1_usize, vec![1_u32, 2, 3]),
        (2, vec![1, 2, 3]),
        (3, vec![1, 2, 3, 4, 5]),
        (4, vec![7, 100, 3, 65_536, 4_000_000_000, 12]),
    ] {
        let secret = SecretScalar::random(&mut rng);
        let coefficients: Vec<SecretScalar> =
            (1..t).map(|_| SecretScalar::random(&mut rng)).collect();
        let indices: Vec<ShareIndex> = xs.iter().map(|x| ShareIndex::new(*x).unwrap()).collect();
        let shares = shamir::split_with_coefficients(&secret, &coefficients, &indices).unwrap();
        cases.push(ShamirCase {
            secret: scalar_hex(&secret),
            threshold: t,
            coefficients: coefficients.iter().map(scalar_hex).collect(),
            shares: shares.iter().map(|s| hex::encode(*s.to_bytes())).collect(),
            self_mask_seed: hex::encode(secret.self_mask_seed(1, 0).expose_for_test()),
            commitments: shares
                .iter()
                .map(|s| hex::encode(shamir::ShareCommitment::compute(1, 0, 0, s).0))
                .collect(),
        });
    }

    let base = &cases[2];
    let share = |i: usize| base.shares[i].clone();
    let altered = {
        let mut b = hex::decode(&base.shares[4]).unwrap();
        b[4] ^= 1;
        hex::encode(b)
    };
    let zero_index = format!("00000000{}", &base.shares[0][8..]);
    let non_canonical = format!("{}{}", &base.shares[0][..8], "ff".repeat(32));
    let short = base.shares[0][..70].to_string();
    let mut invalid = vec![
        ShamirInvalid {
            comment: "one of five shares altered".into(),
            threshold: 3,
            shares: vec![share(0), share(1), share(2), share(3), altered],
            error: String::new(),
        },
        ShamirInvalid {
            comment: "fewer shares than the threshold".into(),
            threshold: 3,
            shares: vec![share(0), share(1)],
            error: String::new(),
        },
        ShamirInvalid {
            comment: "the same share twice".into(),
            threshold: 3,
            shares: vec![share(0), share(1), share(0)],
            error: String::new(),
        },
        ShamirInvalid {
            comment: "four shares of a threshold-3 sharing claimed as threshold 2".into(),
            threshold: 2,
            shares: vec![share(0), share(1), share(2), share(3)],
            error: String::new(),
        },
        ShamirInvalid {
            comment: "threshold zero".into(),
            threshold: 0,
            shares: vec![share(0)],
            error: String::new(),
        },
        ShamirInvalid {
            comment: "share with x = 0".into(),
            threshold: 1,
            shares: vec![zero_index],
            error: String::new(),
        },
        ShamirInvalid {
            comment: "share value not below the group order".into(),
            threshold: 1,
            shares: vec![non_canonical],
            error: String::new(),
        },
        ShamirInvalid {
            comment: "share of 35 bytes".into(),
            threshold: 1,
            shares: vec![short],
            error: String::new(),
        },
    ];
    for case in &mut invalid {
        case.error = error_name(&reconstruct_hex(&case.shares, case.threshold).unwrap_err()).into();
    }
    ShamirFile {
        description: "Shamir sharing over the scalar field of curve25519 (SPEC.md §5): shares \
                      are f(x) for f = secret + sum a_i X^i; any `threshold` shares reconstruct; \
                      the invalid cases must be refused with the error named"
            .into(),
        cases,
        invalid,
    }
}

/// Decodes hex shares and reconstructs, as a verifier of the vectors would.
///
/// # Errors
/// Any decoding or reconstruction error.
pub fn reconstruct_hex(shares: &[String], threshold: usize) -> crate::Result<SecretScalar> {
    let decoded = shares
        .iter()
        .map(|s| Share::from_bytes(&hex::decode(s).unwrap()))
        .collect::<crate::Result<Vec<Share>>>()?;
    shamir::reconstruct(&decoded, threshold, &mut ChaCha20Rng::from_seed([9; 32]))
}

// ----------------------------------------------------------- envelope ----

#[derive(Debug, Serialize, Deserialize)]
pub struct EnvelopeFile {
    pub description: String,
    pub cases: Vec<EnvelopeCase>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct EnvelopeCase {
    pub round: u64,
    pub phase: u8,
    pub sender: u32,
    pub receiver: u32,
    pub sender_secret_scalar: String,
    pub receiver_secret_scalar: String,
    pub key: String,
    pub extra_ad: String,
    pub associated_data: String,
    pub plaintext: String,
    pub sealed: String,
    /// Sealed bytes that must fail to open with `OpenFailed` in this context.
    pub tampered: Vec<String>,
}

fn envelope_file() -> EnvelopeFile {
    let mut rng = rng("envelope");
    let mut cases = Vec::new();
    for (len, extra) in [(0_usize, &b""[..]), (72, b"share-keys"), (200, b"")] {
        let ctx = EnvelopeContext {
            round: 11,
            phase: 2,
            sender: 4,
            receiver: 9,
        };
        let s = SecretScalar::random(&mut rng);
        let r = SecretScalar::random(&mut rng);
        let plaintext: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let shared = AgreementSecret::from_scalar(&s)
            .agree(&AgreementSecret::from_scalar(&r).public_key())
            .unwrap();
        let key = shared.sealing_key(ctx);
        let key_hex = hex::encode(key.expose_for_test());
        let sealed = key.seal(extra, &plaintext).unwrap();
        let mut flip_tag = sealed.clone();
        *flip_tag.last_mut().unwrap() ^= 0x80;
        let mut tampered = vec![
            hex::encode(&flip_tag),
            hex::encode(&sealed[..sealed.len() - 1]),
        ];
        if !plaintext.is_empty() {
            let mut flip_ct = sealed.clone();
            flip_ct[0] ^= 1;
            tampered.push(hex::encode(flip_ct));
        }
        cases.push(EnvelopeCase {
            round: ctx.round,
            phase: ctx.phase,
            sender: ctx.sender,
            receiver: ctx.receiver,
            sender_secret_scalar: scalar_hex(&s),
            receiver_secret_scalar: scalar_hex(&r),
            key: key_hex,
            extra_ad: hex::encode(extra),
            associated_data: hex::encode(ctx.associated_data(extra)),
            plaintext: hex::encode(&plaintext),
            sealed: hex::encode(&sealed),
            tampered,
        });
    }
    EnvelopeFile {
        description: "ChaCha20-Poly1305 envelopes: key from X25519 + HKDF (EnvelopeKey), nonce \
                      0^12, associated data as SPEC.md §6; sealed = ciphertext || tag"
            .into(),
        cases,
    }
}

// ---------------------------------------------------------- signature ----

#[derive(Debug, Serialize, Deserialize)]
pub struct SignatureFile {
    pub description: String,
    pub cases: Vec<SignatureCase>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SignatureCase {
    pub seed: String,
    pub public_key: String,
    pub domain: String,
    pub message: String,
    pub signed_bytes: String,
    pub signature: String,
    /// Domains under which the same signature must not verify.
    pub wrong_domains: Vec<String>,
}

/// The signature domain with this label.
#[must_use]
pub fn domain_of(label: &str) -> Option<SignatureDomain> {
    [
        SignatureDomain::ADVERTISE_KEYS,
        SignatureDomain::CONSISTENCY_CHECK,
    ]
    .into_iter()
    .find(|d| d.label() == label)
}

fn signature_file() -> SignatureFile {
    let mut rng = rng("signature");
    let mut cases = Vec::new();
    for (domain, other, message) in [
        (
            SignatureDomain::ADVERTISE_KEYS,
            SignatureDomain::CONSISTENCY_CHECK,
            &b"two x25519 public keys"[..],
        ),
        (
            SignatureDomain::CONSISTENCY_CHECK,
            SignatureDomain::ADVERTISE_KEYS,
            b"",
        ),
    ] {
        let seed: [u8; 32] = random_bytes(&mut rng);
        let key = IdentitySigningKey::from_seed(&seed);
        cases.push(SignatureCase {
            seed: hex::encode(seed),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            domain: domain.label().into(),
            message: hex::encode(message),
            signed_bytes: hex::encode(domain.signed_bytes(message)),
            signature: hex::encode(key.sign(domain, message).to_bytes()),
            wrong_domains: vec![other.label().into()],
        });
    }
    SignatureFile {
        description: "Ed25519 (RFC 8032) over u8 len || domain || message (SPEC.md §7), \
                      verified strictly"
            .into(),
        cases,
    }
}

// -------------------------------------------------------------- all ----

/// Every vector file: its name under `protocol/test-vectors/` and its JSON.
#[must_use]
pub fn generate_all() -> Vec<(&'static str, String)> {
    fn json<T: Serialize>(v: &T) -> String {
        let mut s = serde_json::to_string_pretty(v).unwrap();
        s.push('\n');
        s
    }
    vec![
        ("kdf.json", json(&kdf_file())),
        ("agreement.json", json(&agreement_file())),
        ("prg.json", json(&prg_file())),
        ("shamir.json", json(&shamir_file())),
        ("envelope.json", json(&envelope_file())),
        ("signature.json", json(&signature_file())),
    ]
}
