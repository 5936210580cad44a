//! The wire codec (SPEC.md §10): an annotated hex fixture for every message,
//! checked in both directions; every sample round-trips, and every
//! truncation or extension of it fails to decode; a proptest strategy covers
//! the same properties for arbitrary messages.

use proptest::prelude::*;
use veil_crypto::agreement::AgreementPublicKey;
use veil_crypto::prg::RingBits;
use veil_crypto::shamir::{Share, ShareCommitment};
use veil_crypto::sign::Signature;
use veil_secagg::messages::{
    Abort, AdvertiseKeys, ClientMessage, ConsistencySignature, ConsistencySignatures, Decline,
    DeclineReason, MaskedInput, NeighbourKeys, SEALED_SHARES_LEN, ServerMessage, ShareKeys,
    ShareKind, SharesForYou, SurvivorSet, UnmaskShare, UnmaskShares,
};
use veil_secagg::{DecodeErrorKind, Error, RoundConfig};

const ROUND: u64 = 0x0102_0304_0506_0708;

/// Concatenates annotated hex fields; the annotations document the layout.
fn fixture(fields: &[(&str, &str)]) -> Vec<u8> {
    fields
        .iter()
        .flat_map(|(hex, _comment)| hex::decode(hex).unwrap())
        .collect()
}

fn rep(byte: &str, n: usize) -> String {
    byte.repeat(n)
}

/// n = 5, d = 3, b = 12, t = 3, k = 2 (SecAgg+), timeout 1000 ms.
fn config() -> RoundConfig {
    RoundConfig::new(
        ROUND,
        vec![1, 2, 3, 4, 5],
        3,
        RingBits::new(12).unwrap(),
        3,
        2,
        1,
        1000,
        [0x5e; 32],
    )
    .unwrap()
    .with_task_digest([0xd1; 32])
}

fn share(x: u8, fill: u8) -> Share {
    let mut b = vec![0, 0, 0, x];
    b.extend(std::iter::repeat_n(fill, 31));
    b.push(0);
    Share::from_bytes(&b).unwrap()
}

fn share_hex(x: u8, fill: &str) -> String {
    format!("000000{x:02x}{}00", rep(fill, 31))
}

fn client_samples() -> Vec<(ClientMessage, Vec<u8>)> {
    let c = config();
    let advertise = AdvertiseKeys {
        encryption_key: AgreementPublicKey::from_bytes([0xaa; 32]),
        mask_key: AgreementPublicKey::from_bytes([0xbb; 32]),
        signature: Signature::from_bytes([0xcc; 64]),
    };
    vec![
        (
            ClientMessage::AdvertiseKeys(advertise),
            fixture(&[
                ("01", "version 1"),
                ("02", "type: AdvertiseKeys"),
                ("0102030405060708", "round"),
                (&rep("aa", 32), "encryption_key"),
                (&rep("bb", 32), "mask_key"),
                (&rep("cc", 64), "signature"),
            ]),
        ),
        (
            ClientMessage::ShareKeys(ShareKeys {
                commitments: vec![
                    (2, ShareCommitment([0x21; 32]), ShareCommitment([0x22; 32])),
                    (3, ShareCommitment([0x31; 32]), ShareCommitment([0x32; 32])),
                ],
                entries: vec![(3, vec![0xee; SEALED_SHARES_LEN])],
            }),
            fixture(&[
                ("01", "version 1"),
                ("04", "type: ShareKeys"),
                ("0102030405060708", "round"),
                ("00000002", "2 commitments (cap k+1 = 3)"),
                ("00000002", "holder 2 (the dealer itself)"),
                (&rep("21", 32), "commitment to holder 2's share of b"),
                (&rep("22", 32), "commitment to holder 2's share of c"),
                ("00000003", "holder 3"),
                (&rep("31", 32), "commitment to holder 3's share of b"),
                (&rep("32", 32), "commitment to holder 3's share of c"),
                ("00000001", "1 envelope (cap k = 2)"),
                ("00000003", "receiver 3"),
                (
                    &rep("ee", SEALED_SHARES_LEN),
                    "sealed: 80-byte plaintext + 16-byte tag",
                ),
            ]),
        ),
        (
            ClientMessage::MaskedInput(MaskedInput {
                excluded: vec![4],
                packed: vec![0x21, 0x43, 0x65, 0x87, 0x09],
            }),
            fixture(&[
                ("01", "version 1"),
                ("06", "type: MaskedInput"),
                ("0102030405060708", "round"),
                ("00000001", "1 excluded peer"),
                ("00000004", "peer 4"),
                (
                    "2143658709",
                    "d = 3 elements of 12 bits, LSB first: 0x321, 0x654, 0x987",
                ),
            ]),
        ),
        (
            ClientMessage::ConsistencySignature(ConsistencySignature {
                signature: Signature::from_bytes([0x5a; 64]),
            }),
            fixture(&[
                ("01", "version 1"),
                ("08", "type: ConsistencySignature"),
                ("0102030405060708", "round"),
                (&rep("5a", 64), "signature over the survivor set"),
            ]),
        ),
        (
            ClientMessage::UnmaskShares(UnmaskShares {
                entries: vec![
                    UnmaskShare {
                        about: 2,
                        kind: ShareKind::SelfMask,
                        share: share(3, 0x11),
                    },
                    UnmaskShare {
                        about: 4,
                        kind: ShareKind::MaskKey,
                        share: share(3, 0x22),
                    },
                ],
            }),
            fixture(&[
                ("01", "version 1"),
                ("0a", "type: UnmaskShares"),
                ("0102030405060708", "round"),
                ("00000002", "2 shares (cap k+1 = 3)"),
                ("00000002", "about 2"),
                ("00", "kind: self mask (2 survived)"),
                (&share_hex(3, "11"), "share: x = 3, y little-endian"),
                ("00000004", "about 4"),
                ("01", "kind: mask key (4 dropped)"),
                (&share_hex(3, "22"), "share: x = 3, y little-endian"),
            ]),
        ),
        (
            ClientMessage::Decline(Decline {
                reason: DeclineReason::Colluders,
            }),
            fixture(&[
                ("01", "version 1"),
                ("0c", "type: Decline"),
                ("0102030405060708", "round"),
                ("04", "reason 4: withstands too few colluders"),
            ]),
        ),
    ]
    .into_iter()
    .inspect(|(_, bytes)| assert!(ClientMessage::decode(bytes, &c).is_ok()))
    .collect()
}

fn server_samples() -> Vec<(ServerMessage, Vec<u8>)> {
    let advertise = AdvertiseKeys {
        encryption_key: AgreementPublicKey::from_bytes([0xaa; 32]),
        mask_key: AgreementPublicKey::from_bytes([0xbb; 32]),
        signature: Signature::from_bytes([0xcc; 64]),
    };
    vec![
        (
            ServerMessage::RoundConfig(config()),
            fixture(&[
                ("01", "version 1"),
                ("01", "type: RoundConfig"),
                ("0102030405060708", "round"),
                ("00000003", "dimension d = 3"),
                ("0c", "ring bits b = 12"),
                ("00000003", "threshold t = 3"),
                ("00000002", "degree k = 2"),
                ("00000001", "colluders withstood c = 1"),
                ("000003e8", "phase timeout 1000 ms"),
                (&rep("5e", 32), "graph seed"),
                (&rep("d1", 32), "task digest"),
                ("00000005", "5 participants"),
                (
                    "0000000100000002000000030000000400000005",
                    "ids 1..5, increasing",
                ),
            ]),
        ),
        (
            ServerMessage::NeighbourKeys(NeighbourKeys {
                entries: vec![(2, advertise)],
            }),
            fixture(&[
                ("01", "version 1"),
                ("03", "type: NeighbourKeys"),
                ("0102030405060708", "round"),
                ("00000001", "1 neighbour (cap k = 2)"),
                ("00000002", "neighbour 2"),
                (&rep("aa", 32), "its encryption_key"),
                (&rep("bb", 32), "its mask_key"),
                (&rep("cc", 64), "its signature"),
            ]),
        ),
        (
            ServerMessage::SharesForYou(SharesForYou {
                entries: vec![
                    (1, vec![0x01; SEALED_SHARES_LEN]),
                    (5, vec![0x05; SEALED_SHARES_LEN]),
                ],
            }),
            fixture(&[
                ("01", "version 1"),
                ("05", "type: SharesForYou"),
                ("0102030405060708", "round"),
                ("00000002", "2 envelopes (cap k = 2)"),
                ("00000001", "from 1"),
                (&rep("01", SEALED_SHARES_LEN), "sealed"),
                ("00000005", "from 5"),
                (&rep("05", SEALED_SHARES_LEN), "sealed"),
            ]),
        ),
        (
            ServerMessage::SurvivorSet(SurvivorSet {
                survivors: vec![1, 2, 5],
            }),
            fixture(&[
                ("01", "version 1"),
                ("07", "type: SurvivorSet"),
                ("0102030405060708", "round"),
                ("00000003", "3 survivors (cap n = 5)"),
                ("000000010000000200000005", "ids, increasing"),
            ]),
        ),
        (
            ServerMessage::ConsistencySignatures(ConsistencySignatures {
                entries: vec![(4, Signature::from_bytes([0x44; 64]))],
            }),
            fixture(&[
                ("01", "version 1"),
                ("09", "type: ConsistencySignatures"),
                ("0102030405060708", "round"),
                ("00000001", "1 signature (cap n = 5: every survivor's)"),
                ("00000004", "signer 4"),
                (&rep("44", 64), "signature"),
            ]),
        ),
        (
            ServerMessage::Abort(Abort { code: 4 }),
            fixture(&[
                ("01", "version 1"),
                ("0b", "type: Abort"),
                ("0102030405060708", "round"),
                ("04", "code 4: too few survivors"),
            ]),
        ),
    ]
}

#[test]
fn client_fixtures_in_both_directions() {
    let c = config();
    for (message, bytes) in client_samples() {
        assert_eq!(message.encode(ROUND), bytes, "{message:?}");
        assert_eq!(ClientMessage::decode(&bytes, &c).unwrap(), (ROUND, message));
    }
}

#[test]
fn server_fixtures_in_both_directions() {
    let c = config();
    for (message, bytes) in server_samples() {
        assert_eq!(message.encode(ROUND), bytes, "{message:?}");
        assert_eq!(
            ServerMessage::decode(&bytes, Some(&c)).unwrap(),
            (ROUND, message)
        );
    }
}

#[test]
fn every_truncation_and_extension_fails() {
    let c = config();
    for (_, bytes) in client_samples() {
        for len in 0..bytes.len() {
            assert!(
                ClientMessage::decode(&bytes[..len], &c).is_err(),
                "prefix {len} of {bytes:02x?}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ClientMessage::decode(&longer, &c).is_err());
    }
    for (_, bytes) in server_samples() {
        for len in 0..bytes.len() {
            assert!(ServerMessage::decode(&bytes[..len], Some(&c)).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ServerMessage::decode(&longer, Some(&c)).is_err());
    }
}

#[test]
fn caps_come_from_the_round_config() {
    let c = config();
    // Three envelopes where k = 2: refused from the count, before reading them.
    let mut bytes = fixture(&[
        ("01", ""),
        ("05", ""),
        ("0102030405060708", ""),
        ("00000003", "3 > k"),
    ]);
    bytes.extend(vec![0; 3 * (4 + SEALED_SHARES_LEN)]);
    assert!(matches!(
        ServerMessage::decode(&bytes, Some(&c)),
        Err(Error::Decode {
            kind: DecodeErrorKind::TooLong { len: 3, max: 2 },
            ..
        })
    ));
    // Consistency signatures are capped by n (every survivor's may be
    // forwarded), not k: six entries where n = 5 are refused from the count.
    let mut bytes = fixture(&[
        ("01", ""),
        ("09", ""),
        ("0102030405060708", ""),
        ("00000006", "6 > n"),
    ]);
    bytes.extend(vec![0; 6 * (4 + 64)]);
    assert!(matches!(
        ServerMessage::decode(&bytes, Some(&c)),
        Err(Error::Decode {
            kind: DecodeErrorKind::TooLong { len: 6, max: 5 },
            ..
        })
    ));
    // A count of 2^32 - 1 is refused before any allocation.
    let bytes = fixture(&[
        ("01", ""),
        ("07", ""),
        ("0102030405060708", ""),
        ("ffffffff", ""),
    ]);
    assert!(matches!(
        ServerMessage::decode(&bytes, Some(&c)),
        Err(Error::Decode {
            kind: DecodeErrorKind::TooLong { .. },
            ..
        })
    ));
}

#[test]
fn unknown_versions_tags_and_directions_are_refused() {
    let c = config();
    let (_, mut bytes) = client_samples().remove(0);
    bytes[0] = 2;
    assert!(matches!(
        ClientMessage::decode(&bytes, &c),
        Err(Error::Decode {
            kind: DecodeErrorKind::UnknownVersion(2),
            ..
        })
    ));
    for tag in [0_u8, 12, 255] {
        bytes[0] = 1;
        bytes[1] = tag;
        assert!(ClientMessage::decode(&bytes, &c).is_err());
        assert!(ServerMessage::decode(&bytes, Some(&c)).is_err());
    }
    // A server message sent to the server, and the other way round.
    let (_, abort) = server_samples().pop().unwrap();
    assert!(ClientMessage::decode(&abort, &c).is_err());
    let (_, advertise) = client_samples().remove(0);
    assert!(ServerMessage::decode(&advertise, Some(&c)).is_err());
}

#[test]
fn non_canonical_values_are_refused() {
    let c = config();
    // Padding bits of the packed vector must be zero (3 * 12 = 36 bits).
    let mut bytes = client_samples()[2].1.clone();
    *bytes.last_mut().unwrap() |= 0x10;
    assert!(matches!(
        ClientMessage::decode(&bytes, &c),
        Err(Error::Decode {
            kind: DecodeErrorKind::NonZeroPadding,
            ..
        })
    ));
    // A share kind other than 0 or 1.
    let mut bytes = client_samples()[4].1.clone();
    bytes[18] = 2;
    assert!(ClientMessage::decode(&bytes, &c).is_err());
    // A share whose value is not below the group order.
    let mut bytes = client_samples()[4].1.clone();
    bytes[23..55].copy_from_slice(&[0xff; 32]);
    assert!(ClientMessage::decode(&bytes, &c).is_err());
    // Survivors not in increasing order.
    let bytes = fixture(&[
        ("01", ""),
        ("07", ""),
        ("0102030405060708", ""),
        ("00000002", ""),
        ("0000000500000001", "5 then 1"),
    ]);
    assert!(ServerMessage::decode(&bytes, Some(&c)).is_err());
    // A config that breaks a rule (2t <= k + 1) does not decode.
    let mut bytes = server_samples()[0].1.clone();
    bytes[15..19].copy_from_slice(&1_u32.to_be_bytes());
    assert!(matches!(
        ServerMessage::decode(&bytes, None),
        Err(Error::InvalidConfig(_))
    ));
}

fn arb_ids(max: usize) -> impl Strategy<Value = Vec<u32>> {
    proptest::collection::btree_set(any::<u32>(), 0..=max).prop_map(|s| s.into_iter().collect())
}

fn arb_client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            prop::array::uniform32(any::<u8>())
        )
            .prop_map(|(e, m, s)| ClientMessage::AdvertiseKeys(AdvertiseKeys {
                encryption_key: AgreementPublicKey::from_bytes(e),
                mask_key: AgreementPublicKey::from_bytes(m),
                signature: Signature::from_bytes([s, s].concat().try_into().unwrap()),
            })),
        (arb_ids(3), arb_ids(2), any::<u8>()).prop_map(|(holders, to, fill)| {
            ClientMessage::ShareKeys(ShareKeys {
                commitments: holders
                    .into_iter()
                    .map(|h| (h, ShareCommitment([fill; 32]), ShareCommitment([!fill; 32])))
                    .collect(),
                entries: to
                    .into_iter()
                    .map(|t| (t, vec![fill; SEALED_SHARES_LEN]))
                    .collect(),
            })
        }),
        (arb_ids(2), proptest::collection::vec(0_u16..4096, 3)).prop_map(|(excluded, v)| {
            let values: Vec<u64> = v.into_iter().map(u64::from).collect();
            ClientMessage::MaskedInput(MaskedInput {
                excluded,
                packed: veil_secagg::packing::pack(&values, RingBits::new(12).unwrap()),
            })
        }),
        arb_ids(3).prop_map(|about| {
            ClientMessage::UnmaskShares(UnmaskShares {
                entries: about
                    .into_iter()
                    .enumerate()
                    .map(|(i, a)| UnmaskShare {
                        about: a,
                        kind: if i % 2 == 0 {
                            ShareKind::SelfMask
                        } else {
                            ShareKind::MaskKey
                        },
                        share: share(1 + i as u8, 0x42),
                    })
                    .collect(),
            })
        }),
    ]
}

proptest! {
    #[test]
    fn arbitrary_client_messages_round_trip(m in arb_client_message(), round in any::<u64>()) {
        let c = config();
        let bytes = m.encode(round);
        prop_assert_eq!(ClientMessage::decode(&bytes, &c).unwrap(), (round, m));
        for len in 0..bytes.len() {
            prop_assert!(ClientMessage::decode(&bytes[..len], &c).is_err());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let c = config();
        let _ = ClientMessage::decode(&bytes, &c);
        let _ = ServerMessage::decode(&bytes, Some(&c));
        let _ = ServerMessage::decode(&bytes, None);
    }
}
