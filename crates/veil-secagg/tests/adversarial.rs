//! Negative tests: each privacy rule and each kind of hostile input.
//!
//! A malicious server is played by a hook that rewrites or injects messages
//! between the honest server and the clients. A misbehaving client is played
//! by a hook that rewrites what it sends. Every client-side refusal is a
//! sticky abort of that client; every server-side refusal drops only the
//! sender, and the round goes on with a correct sum or aborts releasing
//! nothing.

use std::cell::RefCell;
use std::rc::Rc;

use veil_secagg::messages::{ClientMessage, ServerMessage, ShareKind, SurvivorSet};
use veil_secagg::sim::{Delivery, Outcome, SimParams, Simulation};
use veil_secagg::{Error, Phase, RoundConfig, Violation};

fn params(n: usize, k: u32, t: u32) -> SimParams {
    SimParams {
        n,
        k,
        t,
        d: 12,
        bits: 16,
        seed: 11,
        sparse_ids: false,
        max_corrupt: 0,
    }
}

/// Runs `sim`, and checks that any released sum is exact.
fn run_checked(sim: Simulation) -> Outcome {
    let inputs = sim.inputs.clone();
    let config = sim.config.clone();
    let outcome = sim.run();
    if let Some(result) = &outcome.result {
        let mut sum = vec![0_u64; config.d()];
        for id in &result.included {
            for (s, v) in sum.iter_mut().zip(&inputs[id]) {
                *s = config.ring.add(*s, *v);
            }
        }
        assert_eq!(result.sum, sum, "a released sum must be exact");
    }
    outcome
}

fn server_msg(bytes: &[u8], config: &RoundConfig) -> ServerMessage {
    ServerMessage::decode(bytes, Some(config)).unwrap().1
}

fn client_msg(bytes: &[u8], config: &RoundConfig) -> ClientMessage {
    ClientMessage::decode(bytes, config).unwrap().1
}

fn violation_of(e: &Error) -> Option<&Violation> {
    match e {
        Error::Forbidden { violation, .. } => Some(violation),
        _ => None,
    }
}

fn dropped_for(outcome: &Outcome, id: u32) -> Error {
    outcome
        .dropped()
        .get(&id)
        .cloned()
        .flatten()
        .unwrap_or_else(|| {
            panic!(
                "client {id} was not dropped for a reason: {:?}",
                outcome.dropped()
            )
        })
}

#[test]
fn a_second_unmask_request_is_refused() {
    // After client 0 revealed its shares, the "server" sends it a survivor
    // set without client 1, asking for client 1's mask-key share as well.
    let mut sim = Simulation::new(params(5, 4, 3));
    let config = sim.config.clone();
    let replay = Rc::new(RefCell::new(None::<Vec<u8>>));
    let seen = replay;
    let after_done = Rc::new(RefCell::new(0_usize));
    let after = after_done;
    sim.set_hook(move |d, _| {
        if !d.to_server
            && d.client == 0
            && let ServerMessage::SurvivorSet(s) = server_msg(&d.bytes, &config)
        {
            let mut fewer = s.survivors;
            fewer.retain(|id| *id != 1);
            let forged = ServerMessage::SurvivorSet(SurvivorSet { survivors: fewer });
            *seen.borrow_mut() = Some(forged.encode(config.round));
        }
        if d.to_server && d.client == 0 {
            if *after.borrow() > 0 {
                panic!("client 0 sent a message after completing");
            }
            if matches!(
                client_msg(&d.bytes, &config),
                ClientMessage::UnmaskShares(_)
            ) {
                *after.borrow_mut() += 1;
                let again = seen.borrow().clone().unwrap();
                return vec![d, Delivery::new(false, 0, again)];
            }
        }
        vec![d]
    });
    let outcome = run_checked(sim);
    assert!(outcome.result.is_some());
    assert!(outcome.completed.contains(&0));
    let refusal = outcome
        .client_rejections
        .iter()
        .find(|(id, _)| *id == 0)
        .map(|(_, e)| e.clone())
        .expect("client 0 refused the second request");
    assert_eq!(
        violation_of(&refusal),
        Some(&Violation::SecondUnmaskRequest)
    );
}

#[test]
fn a_survivor_set_that_differs_between_clients_is_caught() {
    // The "server" shows client 0 a survivor set without client 4, then
    // hands client 0's signature over it to client 1 as if it were over the
    // set client 1 saw.
    let mut sim = Simulation::new(params(5, 4, 3));
    let config = sim.config.clone();
    let sig_of_0 = Rc::new(RefCell::new(None));
    let stash = sig_of_0;
    sim.set_hook(move |d, _| {
        match (d.to_server, d.client) {
            (false, 0) => {
                if let ServerMessage::SurvivorSet(s) = server_msg(&d.bytes, &config) {
                    let mut other = s.survivors;
                    other.retain(|id| *id != 4);
                    let forged = ServerMessage::SurvivorSet(SurvivorSet { survivors: other });
                    return vec![Delivery {
                        bytes: forged.encode(config.round),
                        ..d
                    }];
                }
            }
            (true, 0) => {
                if let ClientMessage::ConsistencySignature(sig) = client_msg(&d.bytes, &config) {
                    *stash.borrow_mut() = Some(sig.signature);
                }
            }
            (false, 1) => {
                if let ServerMessage::ConsistencySignatures(mut sigs) =
                    server_msg(&d.bytes, &config)
                {
                    let forged = stash.borrow().unwrap();
                    sigs.entries.retain(|(id, _)| *id != 0);
                    sigs.entries.insert(0, (0, forged));
                    return vec![Delivery {
                        bytes: ServerMessage::ConsistencySignatures(sigs).encode(config.round),
                        ..d
                    }];
                }
            }
            _ => {}
        }
        vec![d]
    });
    let outcome = run_checked(sim);
    let err = outcome.client_errors.get(&1).expect("client 1 aborted");
    assert_eq!(
        violation_of(err),
        Some(&Violation::BadConsistencySignature(0))
    );
    assert!(!outcome.completed.contains(&1), "client 1 revealed nothing");
    // The honest server also refused client 0's signature over the wrong set.
    assert_eq!(
        violation_of(&dropped_for(&outcome, 0)),
        Some(&Violation::BadConsistencySignature(0))
    );
}

#[test]
fn forged_neighbour_keys_are_refused_by_the_client() {
    let mut sim = Simulation::new(params(5, 4, 3));
    let config = sim.config.clone();
    sim.set_hook(move |d, _| {
        if !d.to_server
            && d.client == 2
            && let ServerMessage::NeighbourKeys(mut keys) = server_msg(&d.bytes, &config)
        {
            // Swap two neighbours' keys: the signatures no longer match.
            let a = keys.entries[0].1;
            keys.entries[0].1 = keys.entries[1].1;
            keys.entries[1].1 = a;
            return vec![Delivery {
                bytes: ServerMessage::NeighbourKeys(keys).encode(config.round),
                ..d
            }];
        }
        vec![d]
    });
    let outcome = run_checked(sim);
    assert!(matches!(
        outcome.client_errors.get(&2).and_then(violation_of),
        Some(Violation::BadKeySignature(_))
    ));
    let result = outcome.result.expect("the round goes on without client 2");
    assert!(!result.included.contains(&2));
}

#[test]
fn a_survivor_set_naming_an_excluded_peer_is_refused() {
    // Client 3's envelope to client 0 is corrupted: client 0 excludes 3 and
    // the server drops 3. A forged survivor set that still names 3 is
    // refused by client 0.
    let mut sim = Simulation::new(params(5, 4, 3));
    let config = sim.config.clone();
    sim.set_hook(move |d, _| {
        if !d.to_server && d.client == 0 {
            match server_msg(&d.bytes, &config) {
                ServerMessage::SharesForYou(mut s) => {
                    for (from, sealed) in &mut s.entries {
                        if *from == 3 {
                            sealed[5] ^= 1;
                        }
                    }
                    return vec![Delivery {
                        bytes: ServerMessage::SharesForYou(s).encode(config.round),
                        ..d
                    }];
                }
                ServerMessage::SurvivorSet(mut s) => {
                    s.survivors.push(3);
                    s.survivors.sort_unstable();
                    s.survivors.dedup();
                    return vec![Delivery {
                        bytes: ServerMessage::SurvivorSet(s).encode(config.round),
                        ..d
                    }];
                }
                _ => {}
            }
        }
        vec![d]
    });
    let outcome = run_checked(sim);
    assert_eq!(
        outcome.client_errors.get(&0).and_then(violation_of),
        Some(&Violation::SurvivorNotInView(3))
    );
}

#[test]
fn a_bad_envelope_costs_only_its_sender() {
    // Client 3's envelope to client 0 does not open: client 0 excludes 3,
    // the server treats 3 as dropped, and the round completes without it.
    let mut sim = Simulation::new(params(6, 5, 4));
    let config = sim.config.clone();
    sim.set_hook(move |d, _| {
        if d.to_server
            && d.client == 3
            && let ClientMessage::ShareKeys(mut s) = client_msg(&d.bytes, &config)
        {
            for (to, sealed) in &mut s.entries {
                if *to == 0 {
                    sealed[0] ^= 0x55;
                }
            }
            return vec![Delivery {
                bytes: ClientMessage::ShareKeys(s).encode(config.round),
                ..d
            }];
        }
        vec![d]
    });
    let outcome = run_checked(sim);
    let result = outcome.result.expect("round completes");
    assert_eq!(result.included, vec![0, 1, 2, 4, 5]);
    // Only client 3 is out, and the server told it so.
    assert_eq!(
        outcome.client_errors.len(),
        1,
        "{:?}",
        outcome.client_errors
    );
    assert!(matches!(
        outcome.client_errors.get(&3).and_then(violation_of),
        Some(Violation::ServerAborted(_))
    ));
    assert_eq!(outcome.completed.len(), 5);
}

/// Rewrites the first message of `phase_tag` that `victim` sends.
fn tamper(
    sim: &mut Simulation,
    victim: u32,
    tag: u8,
    mut f: impl FnMut(&mut Vec<u8>) -> Vec<Vec<u8>> + 'static,
) {
    let mut done = false;
    sim.set_hook(move |d, _| {
        if d.to_server && d.client == victim && !done && d.bytes[1] == tag {
            done = true;
            let mut bytes = d.bytes;
            return f(&mut bytes)
                .into_iter()
                .map(|b| Delivery::new(true, victim, b))
                .collect();
        }
        vec![d]
    });
}

/// The round completes without `victim`, which was dropped for `check`.
fn costs_only_the_sender(sim: Simulation, victim: u32, check: impl Fn(&Error) -> bool) {
    let outcome = run_checked(sim);
    let reason = dropped_for(&outcome, victim);
    assert!(check(&reason), "dropped for {reason:?}");
    let result = outcome
        .result
        .unwrap_or_else(|| panic!("round failed: {:?}", outcome.server_error));
    assert!(!result.included.contains(&victim));
    assert_eq!(result.included.len(), 5);
}

#[test]
fn wrong_round_id_costs_only_the_sender() {
    let mut sim = Simulation::new(params(6, 5, 4));
    tamper(&mut sim, 2, 2, |b| {
        b[9] ^= 1;
        vec![b.clone()]
    });
    costs_only_the_sender(sim, 2, |e| {
        matches!(violation_of(e), Some(Violation::WrongRound { .. }))
    });
}

#[test]
fn duplicate_sender_costs_only_the_sender() {
    let mut sim = Simulation::new(params(6, 5, 4));
    tamper(&mut sim, 2, 2, |b| vec![b.clone(), b.clone()]);
    costs_only_the_sender(sim, 2, |e| {
        violation_of(e) == Some(&Violation::NotExpected(2))
    });
}

#[test]
fn unknown_sender_changes_nothing() {
    let mut sim = Simulation::new(params(6, 5, 4));
    let mut injected = false;
    sim.set_hook(move |d, _| {
        if d.to_server && !injected {
            injected = true;
            let stranger = Delivery {
                client: 999,
                ..d.clone()
            };
            return vec![stranger, d];
        }
        vec![d]
    });
    let outcome = run_checked(sim);
    assert_eq!(outcome.result.unwrap().included.len(), 6);
    assert!(outcome.server_rejections.iter().any(|(id, e)| {
        *id == 999 && violation_of(e) == Some(&Violation::UnknownParticipant(999))
    }));
}

#[test]
fn wrong_phase_costs_only_the_sender() {
    // Client 2 sends its advertisement again in phase 2 instead of shares.
    let mut sim = Simulation::new(params(6, 5, 4));
    let first = Rc::new(RefCell::new(None::<Vec<u8>>));
    let keep = first;
    sim.set_hook(move |d, _| {
        if d.to_server && d.client == 2 {
            match d.bytes[1] {
                2 => *keep.borrow_mut() = Some(d.bytes.clone()),
                4 => {
                    return vec![Delivery {
                        bytes: keep.borrow().clone().unwrap(),
                        ..d
                    }];
                }
                _ => {}
            }
        }
        vec![d]
    });
    costs_only_the_sender(sim, 2, |e| {
        matches!(
            e,
            Error::UnexpectedMessage {
                expected: veil_secagg::messages::MessageType::ShareKeys,
                received: veil_secagg::messages::MessageType::AdvertiseKeys,
                ..
            }
        )
    });
}

#[test]
fn wrong_dimension_costs_only_the_sender() {
    let mut sim = Simulation::new(params(6, 5, 4));
    tamper(&mut sim, 2, 6, |b| {
        b.extend_from_slice(&[0, 0]);
        vec![b.clone()]
    });
    costs_only_the_sender(sim, 2, |e| {
        matches!(
            e,
            Error::Decode {
                field: "packed",
                kind: veil_secagg::DecodeErrorKind::WrongLength { .. },
                ..
            }
        )
    });
}

#[test]
fn non_canonical_encoding_costs_only_the_sender() {
    // ShareKeys with its first two commitments swapped: not in increasing
    // order of holder.
    let mut sim = Simulation::new(params(6, 5, 4));
    tamper(&mut sim, 2, 4, |b| {
        let entry = 4 + 32 + 32;
        let start = 10 + 4;
        let (first, rest) = b[start..].split_at_mut(entry);
        first.swap_with_slice(&mut rest[..entry]);
        vec![b.clone()]
    });
    costs_only_the_sender(sim, 2, |e| {
        matches!(
            e,
            Error::Decode {
                kind: veil_secagg::DecodeErrorKind::NotCanonical,
                ..
            }
        )
    });
}

#[test]
fn trailing_bytes_cost_only_the_sender() {
    let mut sim = Simulation::new(params(6, 5, 4));
    tamper(&mut sim, 2, 2, |b| {
        b.push(0);
        vec![b.clone()]
    });
    costs_only_the_sender(sim, 2, |e| {
        matches!(
            e,
            Error::Decode {
                kind: veil_secagg::DecodeErrorKind::TrailingBytes,
                ..
            }
        )
    });
}

#[test]
fn a_share_of_the_wrong_kind_costs_only_the_sender() {
    // Client 2 reveals mask-key shares of survivors (what a server that
    // wanted both secrets would need): the server refuses and drops it.
    let mut sim = Simulation::new(params(6, 5, 4));
    let config = sim.config.clone();
    sim.set_hook(move |d, _| {
        if d.to_server
            && d.client == 2
            && let ClientMessage::UnmaskShares(mut s) = client_msg(&d.bytes, &config)
        {
            s.entries[0].kind = ShareKind::MaskKey;
            return vec![Delivery {
                bytes: ClientMessage::UnmaskShares(s).encode(config.round),
                ..d
            }];
        }
        vec![d]
    });
    let outcome = run_checked(sim);
    assert!(matches!(
        violation_of(&dropped_for(&outcome, 2)),
        Some(Violation::WrongShareKind(_))
    ));
    // Client 2 sent its masked input, so it is in the sum; its secrets are
    // recovered from the other holders.
    assert_eq!(outcome.result.unwrap().included.len(), 6);
}

#[test]
fn an_altered_unmask_share_costs_only_its_holder() {
    // Each revealed share is checked against its dealer's commitment, so a
    // holder that alters one is identified and dropped, even when no spare
    // share would reveal the inconsistency.
    let mut sim = Simulation::new(params(6, 5, 4));
    let config = sim.config.clone();
    sim.set_hook(move |d, _| {
        if d.to_server
            && d.client == 1
            && let ClientMessage::UnmaskShares(_) = client_msg(&d.bytes, &config)
        {
            let mut b = d.bytes.clone();
            // The low byte of the first share's value (still canonical).
            b[10 + 4 + 4 + 1 + 4] ^= 1;
            return vec![Delivery { bytes: b, ..d }];
        }
        vec![d]
    });
    let outcome = run_checked(sim);
    assert!(matches!(
        violation_of(&dropped_for(&outcome, 1)),
        Some(Violation::ShareCommitmentMismatch(_))
    ));
    assert_eq!(outcome.result.expect("round completes").included.len(), 6);
}

#[test]
fn a_hostile_network_never_yields_a_wrong_sum() {
    use rand::RngExt;
    for seed in 0..40_u64 {
        let mut sim = Simulation::new(SimParams {
            seed,
            ..params(7, 6, 4)
        });
        sim.set_hook(move |mut d, rng| {
            // A masked input's vector carries no integrity of its own: flipping
            // its bits is the same as the client sending another input, which
            // secure aggregation cannot tell apart (TLS protects it in
            // transit). Everything else may be corrupted.
            let payload_start = if d.to_server && d.bytes.get(1) == Some(&6) {
                let excluded = u32::from_be_bytes(d.bytes[10..14].try_into().unwrap()) as usize;
                (14 + 4 * excluded).min(d.bytes.len())
            } else {
                d.bytes.len()
            };
            match rng.random_range(0..40) {
                0 => vec![],             // lost
                1 => vec![d.clone(), d], // duplicated
                2 if payload_start > 0 => {
                    let i = rng.random_range(0..payload_start);
                    d.bytes[i] ^= 1 << rng.random_range(0..8); // corrupted
                    vec![d]
                }
                3 => {
                    d.bytes.truncate(rng.random_range(0..d.bytes.len().max(1)));
                    vec![d] // truncated
                }
                _ => vec![d],
            }
        });
        // run_checked asserts that any released sum is exact.
        let outcome = run_checked(sim);
        assert!(outcome.result.is_some() || outcome.server_error.is_some());
    }
}

#[test]
fn a_late_message_costs_only_its_sender() {
    // Client 2's shares arrive after the phase deadline: it is dropped as
    // silent, its late message is refused, and the round completes.
    let mut sim = Simulation::new(params(6, 5, 4));
    sim.set_hook(|mut d, _| {
        if d.to_server && d.client == 2 && d.bytes[1] == 4 {
            d.delay = std::time::Duration::from_secs(3);
        }
        vec![d]
    });
    let outcome = run_checked(sim);
    assert_eq!(outcome.dropped().get(&2), Some(&None), "dropped as silent");
    assert!(
        outcome
            .server_rejections
            .iter()
            .any(|(id, e)| *id == 2 && violation_of(e) == Some(&Violation::NotExpected(2)))
    );
    assert_eq!(outcome.result.unwrap().included, vec![0, 1, 3, 4, 5]);
}

#[test]
fn operator_abort_and_timeouts_are_terminal() {
    let mut sim = Simulation::new(params(4, 3, 3));
    for id in 0..4 {
        sim.crash(id, Phase::AdvertiseKeys);
    }
    let outcome = sim.run();
    assert!(matches!(
        outcome.server_error,
        Some(Error::TooFewSurvivors {
            phase: Phase::AdvertiseKeys,
            survivors: 0,
            ..
        })
    ));
}

#[test]
fn non_zero_padding_costs_only_the_sender() {
    // d = 12 elements of 13 bits = 156 bits: the last byte has 4 padding bits.
    let mut sim = Simulation::new(SimParams {
        bits: 13,
        ..params(6, 5, 4)
    });
    tamper(&mut sim, 2, 6, |b| {
        *b.last_mut().unwrap() |= 0x80;
        vec![b.clone()]
    });
    costs_only_the_sender(sim, 2, |e| {
        matches!(
            e,
            Error::Decode {
                kind: veil_secagg::DecodeErrorKind::NonZeroPadding,
                ..
            }
        )
    });
}

/// SecAgg+ (k = 4 of n = 8) so that some clients are not neighbours.
fn plus() -> Simulation {
    Simulation::new(params(8, 4, 3))
}

fn non_neighbour_of(sim: &Simulation, id: u32) -> u32 {
    let g = sim.config.graph();
    *sim.config
        .participants
        .iter()
        .find(|v| **v != id && !g.are_neighbours(id, **v))
        .unwrap()
}

/// Rewrites the first client message of `victim` that decodes as `tag`,
/// through `f` on the decoded message.
fn rewrite(
    sim: &mut Simulation,
    victim: u32,
    tag: u8,
    mut f: impl FnMut(&mut ClientMessage) + 'static,
) {
    let config = sim.config.clone();
    let mut done = false;
    sim.set_hook(move |d, _| {
        if d.to_server && d.client == victim && !done && d.bytes[1] == tag {
            done = true;
            let mut m = client_msg(&d.bytes, &config);
            f(&mut m);
            return vec![Delivery::new(true, victim, m.encode(config.round))];
        }
        vec![d]
    });
}

#[test]
fn an_envelope_for_a_non_neighbour_costs_only_the_sender() {
    let mut sim = plus();
    let stranger = non_neighbour_of(&sim, 2);
    rewrite(&mut sim, 2, 4, move |m| {
        if let ClientMessage::ShareKeys(s) = m {
            // Readdress one envelope (the count stays within the cap k).
            s.entries[0].0 = stranger;
            s.entries.sort_by_key(|(to, _)| *to);
        }
    });
    let outcome = run_checked(sim);
    assert_eq!(
        violation_of(&dropped_for(&outcome, 2)),
        Some(&Violation::NotANeighbour(stranger))
    );
    assert!(
        !outcome
            .result
            .expect("round completes")
            .included
            .contains(&2)
    );
}

#[test]
fn commitments_not_matching_the_receivers_cost_only_the_sender() {
    let mut sim = plus();
    rewrite(&mut sim, 2, 4, |m| {
        if let ClientMessage::ShareKeys(s) = m {
            s.commitments.pop();
        }
    });
    let outcome = run_checked(sim);
    assert_eq!(
        violation_of(&dropped_for(&outcome, 2)),
        Some(&Violation::BadCommitments(2))
    );
    assert!(outcome.result.is_some());
}

#[test]
fn excluding_a_peer_never_heard_from_costs_only_the_sender() {
    let mut sim = plus();
    let stranger = non_neighbour_of(&sim, 2);
    rewrite(&mut sim, 2, 6, move |m| {
        if let ClientMessage::MaskedInput(mi) = m {
            mi.excluded.push(stranger);
            mi.excluded.sort_unstable();
        }
    });
    let outcome = run_checked(sim);
    assert_eq!(
        violation_of(&dropped_for(&outcome, 2)),
        Some(&Violation::BadExclusion(stranger))
    );
    let result = outcome.result.expect("round completes");
    assert!(!result.included.contains(&2));
}

#[test]
fn a_share_at_another_x_coordinate_costs_only_the_sender() {
    let mut sim = Simulation::new(params(6, 5, 4));
    tamper(&mut sim, 2, 10, |b| {
        // header 10, count 4, about 4, kind 1: the share's x is next (BE).
        b[22] ^= 1;
        vec![b.clone()]
    });
    let outcome = run_checked(sim);
    assert!(matches!(
        violation_of(&dropped_for(&outcome, 2)),
        Some(Violation::WrongShareIndex(_))
    ));
    // Client 2 sent its masked input; its secrets come from the others.
    assert_eq!(outcome.result.expect("round completes").included.len(), 6);
}

#[test]
fn a_badly_signed_advertisement_costs_only_the_sender() {
    let mut sim = Simulation::new(params(6, 5, 4));
    tamper(&mut sim, 2, 2, |b| {
        b[10] ^= 1; // first byte of the encryption key: the signature no longer covers it
        vec![b.clone()]
    });
    costs_only_the_sender(sim, 2, |e| {
        violation_of(e) == Some(&Violation::BadKeySignature(2))
    });
}

#[test]
fn a_decline_costs_only_the_decliner_and_names_its_reason() {
    use veil_secagg::messages::{Decline, DeclineReason};
    let mut sim = Simulation::new(params(6, 5, 4));
    let round = sim.config.round;
    // Client 2 declines instead of advertising its keys.
    tamper(&mut sim, 2, 2, move |_| {
        vec![
            ClientMessage::Decline(Decline {
                reason: DeclineReason::Threshold,
            })
            .encode(round),
        ]
    });
    costs_only_the_sender(sim, 2, |e| {
        matches!(
            e,
            Error::Declined {
                participant: 2,
                reason: DeclineReason::Threshold,
                ..
            }
        )
    });
}

#[test]
fn a_decline_with_an_unknown_reason_costs_only_the_sender() {
    use veil_secagg::messages::{Decline, DeclineReason};
    let mut sim = Simulation::new(params(6, 5, 4));
    let round = sim.config.round;
    tamper(&mut sim, 3, 2, move |_| {
        let mut bytes = ClientMessage::Decline(Decline {
            reason: DeclineReason::Other,
        })
        .encode(round);
        *bytes.last_mut().unwrap() = 0xff;
        vec![bytes]
    });
    costs_only_the_sender(sim, 3, |e| matches!(e, Error::Decode { .. }));
}
