//! The sessions' own contract, outside a whole round: failure is terminal
//! and sticky, deadlines and operator aborts end a session, bad local input
//! is refused before anything is sent.

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::ChaCha20Rng;
use veil_crypto::prg::RingBits;
use veil_crypto::sign::IdentitySigningKey;
use veil_secagg::messages::{Abort, ServerMessage};
use veil_secagg::{
    ClientEvent, ClientSession, Error, Phase, Roster, RoundConfig, ServerEvent, ServerSession,
    SiteFloor, Violation,
};
use zeroize::Zeroizing;

fn setup() -> (RoundConfig, Roster, Vec<IdentitySigningKey>, ChaCha20Rng) {
    let mut rng = ChaCha20Rng::from_seed([3; 32]);
    let config = RoundConfig::new(
        9,
        vec![0, 1, 2],
        4,
        RingBits::new(8).unwrap(),
        2,
        2,
        0,
        500,
        [1; 32],
    )
    .unwrap();
    let keys: Vec<IdentitySigningKey> = (0..3)
        .map(|_| IdentitySigningKey::generate(&mut rng))
        .collect();
    let mut roster = Roster::new();
    for (id, k) in keys.iter().enumerate() {
        roster.insert(id as u32, k.verifying_key());
    }
    (config, roster, keys, rng)
}

#[test]
fn a_client_times_out_and_stays_failed() {
    let (config, roster, keys, mut rng) = setup();
    let now = Instant::now();
    let mut c = ClientSession::new(
        config,
        0,
        keys[0].clone(),
        &roster,
        &SiteFloor::none(),
        Zeroizing::new(vec![1; 4]),
        now,
        &mut rng,
    )
    .unwrap();
    assert!(c.poll_transmit().is_some(), "phase 1 is queued at once");
    let deadline = c.poll_timeout().unwrap();
    c.handle_timeout(deadline - Duration::from_millis(1));
    assert_eq!(c.phase(), Phase::AdvertiseKeys, "not yet");
    c.handle_timeout(deadline);
    assert_eq!(c.phase(), Phase::Failed);
    let events: Vec<ClientEvent> = std::iter::from_fn(|| c.poll_event()).collect();
    let expected = Error::Timeout {
        round: 9,
        phase: Phase::AdvertiseKeys,
    };
    assert!(events.contains(&ClientEvent::Aborted(expected.clone())));
    // Sticky: every later call returns the same error and sends nothing.
    let abort = ServerMessage::Abort(Abort { code: 4 }).encode(9);
    for _ in 0..3 {
        assert_eq!(
            c.handle_message(&abort, deadline, &mut rng),
            Err(expected.clone())
        );
        assert!(c.poll_transmit().is_none());
        assert_eq!(c.poll_timeout(), None);
    }
}

#[test]
fn a_client_told_to_abort_stops() {
    let (config, roster, keys, mut rng) = setup();
    let now = Instant::now();
    let mut c = ClientSession::new(
        config,
        1,
        keys[1].clone(),
        &roster,
        &SiteFloor::none(),
        Zeroizing::new(vec![1; 4]),
        now,
        &mut rng,
    )
    .unwrap();
    let abort = ServerMessage::Abort(Abort { code: 4 }).encode(9);
    let err = c.handle_message(&abort, now, &mut rng).unwrap_err();
    assert!(matches!(
        err,
        Error::Forbidden {
            violation: Violation::ServerAborted(4),
            ..
        }
    ));
    // The operator can abort too; on a failed session it changes nothing.
    c.abort();
    assert_eq!(c.handle_message(&abort, now, &mut rng), Err(err));
}

#[test]
fn garbage_from_the_server_fails_the_client() {
    let (config, roster, keys, mut rng) = setup();
    let now = Instant::now();
    let mut c = ClientSession::new(
        config,
        2,
        keys[2].clone(),
        &roster,
        &SiteFloor::none(),
        Zeroizing::new(vec![1; 4]),
        now,
        &mut rng,
    )
    .unwrap();
    assert!(matches!(
        c.handle_message(&[1, 3, 0], now, &mut rng),
        Err(Error::Decode { .. })
    ));
    assert_eq!(c.phase(), Phase::Failed);
}

#[test]
fn bad_local_input_is_refused_before_anything_is_sent() {
    let (config, roster, keys, mut rng) = setup();
    let now = Instant::now();
    let new = |me: u32, key: &IdentitySigningKey, input: Vec<u64>, rng: &mut ChaCha20Rng| {
        ClientSession::new(
            config.clone(),
            me,
            key.clone(),
            &roster,
            &SiteFloor::none(),
            Zeroizing::new(input),
            now,
            rng,
        )
    };
    assert!(matches!(
        new(0, &keys[0], vec![1; 3], &mut rng),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        new(0, &keys[0], vec![256; 4], &mut rng),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        new(7, &keys[0], vec![1; 4], &mut rng),
        Err(Error::InvalidConfig(_))
    ));
    assert!(
        matches!(
            new(0, &keys[1], vec![1; 4], &mut rng),
            Err(Error::InvalidConfig(_))
        ),
        "another participant's identity key"
    );
    let mut partial = Roster::new();
    partial.insert(0, keys[0].verifying_key());
    assert!(matches!(
        ServerSession::new(config.clone(), &partial, now),
        Err(Error::InvalidConfig(_))
    ));
}

#[test]
fn an_operator_abort_ends_the_server_round_and_tells_everyone() {
    let (config, roster, _, mut rng) = setup();
    let now = Instant::now();
    let mut s = ServerSession::new(config, &roster, now).unwrap();
    while s.poll_transmit().is_some() {}
    s.abort();
    assert_eq!(s.phase(), Phase::Failed);
    let told: Vec<u32> = std::iter::from_fn(|| s.poll_transmit())
        .map(|(to, _)| to)
        .collect();
    assert_eq!(told, vec![0, 1, 2]);
    let events: Vec<ServerEvent> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(events.contains(&ServerEvent::Aborted(Error::OperatorAbort { round: 9 })));
    assert_eq!(
        s.handle_message(0, &[1, 2], now, &mut rng),
        Err(Error::OperatorAbort { round: 9 })
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_silent_round_times_out_on_the_server() {
    let (config, roster, _, mut rng) = setup();
    let now = Instant::now();
    let mut s = ServerSession::new(config, &roster, now).unwrap();
    let deadline = s.poll_timeout().unwrap();
    assert_eq!(deadline, now + Duration::from_millis(500));
    s.handle_timeout(deadline, &mut rng);
    let events: Vec<ServerEvent> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ServerEvent::PeerDropped { .. }))
            .count(),
        3
    );
    assert!(matches!(
        events.last(),
        Some(ServerEvent::Aborted(Error::TooFewSurvivors {
            phase: Phase::AdvertiseKeys,
            survivors: 0,
            needed: 2,
            ..
        }))
    ));
}

/// Keys for `id`, validly signed: `(encryption, mask)` given as raw bytes.
fn advertise(
    config: &RoundConfig,
    key: &IdentitySigningKey,
    id: u32,
    encryption: [u8; 32],
    mask: [u8; 32],
) -> veil_secagg::messages::AdvertiseKeys {
    use veil_crypto::agreement::AgreementPublicKey;
    use veil_crypto::sign::SignatureDomain;
    let (e, m) = (
        AgreementPublicKey::from_bytes(encryption),
        AgreementPublicKey::from_bytes(mask),
    );
    veil_secagg::messages::AdvertiseKeys {
        encryption_key: e,
        mask_key: m,
        signature: key.sign(
            SignatureDomain::ADVERTISE_KEYS,
            &veil_secagg::messages::AdvertiseKeys::signed_message(
                &veil_secagg::messages::session_id(config),
                id,
                &e,
                &m,
            ),
        ),
    }
}

fn encode(m: veil_secagg::messages::ClientMessage) -> Vec<u8> {
    m.encode(9)
}

#[test]
fn the_server_refuses_a_key_used_twice() {
    use veil_secagg::messages::ClientMessage;
    let (config, roster, keys, mut rng) = setup();
    let now = Instant::now();
    let mut s = ServerSession::new(config.clone(), &roster, now).unwrap();
    let a = advertise(&config, &keys[0], 0, [5; 32], [6; 32]);
    s.handle_message(0, &encode(ClientMessage::AdvertiseKeys(a)), now, &mut rng)
        .unwrap();
    // Client 1 signs client 0's encryption key as its own.
    let b = advertise(&config, &keys[1], 1, [5; 32], [7; 32]);
    let err = s
        .handle_message(1, &encode(ClientMessage::AdvertiseKeys(b)), now, &mut rng)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Forbidden {
            violation: Violation::ReusedPublicKey(1),
            ..
        }
    ));
    // Client 2 uses one key for both purposes.
    let c = advertise(&config, &keys[2], 2, [8; 32], [8; 32]);
    let err = s
        .handle_message(2, &encode(ClientMessage::AdvertiseKeys(c)), now, &mut rng)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Forbidden {
            violation: Violation::ReusedPublicKey(2),
            ..
        }
    ));
}

#[test]
fn a_client_refuses_reused_keys_and_strangers_among_its_neighbours() {
    use veil_secagg::messages::NeighbourKeys;
    let (config, roster, keys, mut rng) = setup();
    let now = Instant::now();
    let start = |rng: &mut ChaCha20Rng| {
        ClientSession::new(
            config.clone(),
            0,
            keys[0].clone(),
            &roster,
            &SiteFloor::none(),
            Zeroizing::new(vec![1; 4]),
            now,
            rng,
        )
        .unwrap()
    };
    // Neighbours 1 and 2 advertise the same (validly signed) mask key.
    let mut c = start(&mut rng);
    let same = ServerMessage::NeighbourKeys(NeighbourKeys {
        entries: vec![
            (1, advertise(&config, &keys[1], 1, [11; 32], [13; 32])),
            (2, advertise(&config, &keys[2], 2, [12; 32], [13; 32])),
        ],
    });
    let err = c
        .handle_message(&same.encode(9), now, &mut rng)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Forbidden {
            violation: Violation::ReusedPublicKey(2),
            ..
        }
    ));
    // A neighbour that advertises this client's own key (a reflection):
    // each of the two keys it advertised is refused.
    for own in 0..2 {
        let mut c = start(&mut rng);
        let Some(Ok((_, veil_secagg::messages::ClientMessage::AdvertiseKeys(mine)))) = c
            .poll_transmit()
            .map(|bytes| veil_secagg::messages::ClientMessage::decode(&bytes, &config))
        else {
            panic!("a client starts by advertising its keys");
        };
        let reflected = if own == 0 {
            mine.encryption_key
        } else {
            mine.mask_key
        };
        let reflection = ServerMessage::NeighbourKeys(NeighbourKeys {
            entries: vec![(
                1,
                advertise(&config, &keys[1], 1, [11; 32], reflected.to_bytes()),
            )],
        });
        let err = c
            .handle_message(&reflection.encode(9), now, &mut rng)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Forbidden {
                    violation: Violation::ReusedPublicKey(1),
                    ..
                }
            ),
            "{err:?}"
        );
    }
    // A participant that is not a neighbour (here: not in the round at all).
    let mut c = start(&mut rng);
    let stranger = ServerMessage::NeighbourKeys(NeighbourKeys {
        entries: vec![
            (1, advertise(&config, &keys[1], 1, [11; 32], [13; 32])),
            (7, advertise(&config, &keys[2], 7, [12; 32], [14; 32])),
        ],
    });
    let err = c
        .handle_message(&stranger.encode(9), now, &mut rng)
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Forbidden {
            violation: Violation::NotANeighbour(7),
            ..
        }
    ));
    assert_eq!(c.phase(), Phase::Failed);
}
