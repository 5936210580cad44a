//! An active server with colluding clients whose secrets it knows, against
//! real `ClientSession`s (SPEC.md §9.3, §11.4; SECURITY.md). Each attack an
//! independent audit found is played by hand; each test shows the attack
//! working where the defence is absent (a round that understates its
//! colluders, a client without a site floor) and failing where it holds.

#[path = "malicious_server/harness.rs"]
mod harness;

use std::collections::BTreeMap;

use harness::Server;
use proptest::prelude::*;
use veil_crypto::prg::RingBits;
use veil_secagg::messages::{DeclineReason, ShareKind};
use veil_secagg::{Error, Phase, RoundConfig, SiteFloor, Violation, recommend_parameters};

fn config_with_seed(n: u32, k: u32, t: u32, c: u32, seed: [u8; 32]) -> Result<RoundConfig, Error> {
    RoundConfig::new(
        77,
        (0..n).collect(),
        6,
        RingBits::new(16).unwrap(),
        t,
        k,
        c,
        1000,
        seed,
    )
}

fn config(n: u32, k: u32, t: u32, c: u32) -> RoundConfig {
    config_with_seed(n, k, t, c, [9; 32]).unwrap()
}

fn sorted(mut v: Vec<u32>) -> Vec<u32> {
    v.sort_unstable();
    v
}

/// Whether `u` refused for want of the quorum: before signing (its set is
/// smaller than the quorum) or before revealing (fewer signed it).
fn refused_for_quorum(s: &Server, u: u32) -> bool {
    matches!(
        s.refused.get(&u),
        Some(&Error::TooFewSurvivors { phase: Phase::ConsistencyCheck | Phase::Unmask, needed, .. })
            if needed == s.config.quorum()
    )
}

/// The audit's classic-SecAgg attack: n = 5, k = 4, t = 3, colluder 4,
/// target 0. Clients 0 and 1 are told 0 survived, clients 2 and 3 that it
/// dropped; the colluder signs both sets and holds both shares of 0.
fn classic_split(s: &mut Server) {
    s.run_to_masked_inputs();
    s.show_survivor_sets(|u| Some(if u <= 1 { vec![0, 1, 4] } else { vec![2, 3, 4] }));
    s.forward_signatures();
}

#[test]
fn attack_1_split_views_with_one_colluder_in_classic_secagg() {
    // As audited: the config claims no colluder, so the quorum is 3 and each
    // half of the split reaches it with the colluder's signature.
    let understated = config(5, 4, 3, 0);
    let mut s = Server::new(understated.clone(), &[4], &SiteFloor::none(), 1).unwrap();
    classic_split(&mut s);
    assert!(
        s.breaks(0),
        "the attack works where the round understates its colluders"
    );

    // A site's floor refuses that round before sending anything.
    let refused = Server::new(understated, &[4], &SiteFloor::default(), 1).err();
    assert!(
        matches!(&refused, Some(Error::BelowFloor(r)) if r.reason == DeclineReason::Colluders),
        "{refused:?}"
    );

    // The round that states its colluder: quorum floor((5 + 1) / 2) + 1 = 4,
    // which neither half reaches. Nobody reveals anything.
    let mut s = Server::new(config(5, 4, 3, 1), &[4], &SiteFloor::default(), 1).unwrap();
    assert_eq!(s.config.quorum(), 4);
    classic_split(&mut s);
    assert!(!s.breaks(0));
    assert!(s.revealed.is_empty(), "no honest client revealed a share");
    for u in 0..4 {
        assert!(
            refused_for_quorum(&s, u),
            "client {u}: {:?}",
            s.refused.get(&u)
        );
    }
}

/// The audit's SecAgg+ attack, on the ring: n = 60, k = 10, t = 6, the
/// target at ring position 0, three colluders placed among its neighbours
/// (positions 1, 58, 59: the server draws the graph seed, so placement is its
/// choice). The arc 31..=57 with the target is shown "target survived", the
/// arc 2..=30 "target dropped"; every honest client's own checks pass.
fn arc_split(understated: bool) -> (Server, u32) {
    let c = if understated { 0 } else { 3 };
    let cfg = config(60, 10, 6, c);
    let ring = cfg.graph().ring_order().to_vec();
    let target = ring[0];
    let colluders = [ring[1], ring[58], ring[59]];
    let floor = if understated {
        SiteFloor::none()
    } else {
        SiteFloor::default()
    };
    let mut s = Server::new(cfg, &colluders, &floor, 2).unwrap();
    let world_1 = sorted(
        ring[31..=57]
            .iter()
            .chain([&target])
            .chain(&colluders)
            .copied()
            .collect(),
    );
    let world_2 = sorted(ring[2..=30].iter().chain(&colluders).copied().collect());
    s.run_to_masked_inputs();
    s.show_survivor_sets(|u| {
        Some(if world_1.binary_search(&u).is_ok() {
            world_1.clone()
        } else {
            world_2.clone()
        })
    });
    s.forward_signatures();
    (s, target)
}

#[test]
fn attack_1_split_views_with_colluders_in_secagg_plus() {
    // Claiming no colluders, the quorum is 31: world 1 has 31 members and
    // world 2 has 32, so both halves reveal, and the target's self mask and
    // mask-agreement secret are both rebuilt.
    let (mut s, target) = arc_split(true);
    assert!(
        s.refused.is_empty(),
        "no honest client noticed: {:?}",
        s.refused
    );
    assert!(s.breaks(target));

    // Stating its three colluders, the quorum is 32: world 2 still reveals
    // (the target looks dropped there, which a real dropout also gives),
    // but world 1 cannot gather 32 signatures, so the target's self-mask
    // secret stays hidden and so does its input.
    let (mut s, target) = arc_split(false);
    assert_eq!(s.config.quorum(), 32);
    assert!(refused_for_quorum(&s, target));
    assert!(s.secret_of(target, ShareKind::MaskKey).is_some());
    assert!(s.secret_of(target, ShareKind::SelfMask).is_none());
    assert!(!s.breaks(target));
}

#[test]
fn attack_2_a_split_without_colluders_never_goes_unnoticed() {
    // Two halves of the ring, 31 and 29, shown different sets: the old
    // neighbourhood check passed everywhere. Now the smaller half cannot
    // reach the quorum of 31 and says so; every client that reveals was
    // shown the same set.
    let mut floor = SiteFloor::default();
    floor.corrupt_fraction = 0.0;
    let cfg = config(60, 10, 6, 0);
    let ring = cfg.graph().ring_order().to_vec();
    let big = sorted(ring[..31].to_vec());
    let small = sorted(ring[31..].to_vec());
    let mut s = Server::new(cfg, &[], &floor, 3).unwrap();
    s.run_to_masked_inputs();
    s.show_survivor_sets(|u| {
        Some(if big.binary_search(&u).is_ok() {
            big.clone()
        } else {
            small.clone()
        })
    });
    s.forward_signatures();
    for &u in &small {
        assert!(
            refused_for_quorum(&s, u),
            "client {u}: {:?}",
            s.refused.get(&u)
        );
    }
    for u in s.revealed.keys() {
        assert!(
            big.binary_search(u).is_ok(),
            "client {u} revealed on a split"
        );
    }
    assert_eq!(s.revealed.len(), big.len());
}

/// Every client in `ids` refused the round for `violation`.
fn refused_for(s: &Server, ids: &[u32], violation: Violation) {
    for u in ids {
        assert!(
            matches!(
                s.refused.get(u),
                Some(Error::Forbidden { violation: v, .. }) if *v == violation
            ),
            "client {u}: {:?}",
            s.refused.get(u)
        );
    }
}

#[test]
fn attack_3_signatures_do_not_replay_into_a_reused_round_id() {
    // Run 1 of round 77: everyone signs the full survivor set.
    let first = config_with_seed(5, 4, 3, 1, [1; 32]).unwrap();
    let all = first.participants.clone();
    let mut s = Server::new(first, &[], &SiteFloor::default(), 4).unwrap();
    s.run_to_masked_inputs();
    s.show_survivor_sets(|_| Some(all.clone()));
    let (set, signature_of_3) = s.signature_of(3).cloned().unwrap();
    assert_eq!(set, all);
    let advert_of_3 = s.advert_of(3).unwrap();

    // Run 2 reuses the id with another graph seed. Client 3 is never shown
    // the set; the server forwards its run-1 signature to make the quorum
    // of 4 with clients 0, 1 and 2.
    let second = config_with_seed(5, 4, 3, 1, [2; 32]).unwrap();
    assert_eq!(second.round, 77);
    assert_ne!(
        veil_secagg::messages::session_id(&second),
        veil_secagg::messages::session_id(&s.config)
    );
    let mut s = Server::new(second, &[], &SiteFloor::default(), 5).unwrap();
    s.run_to_masked_inputs();
    s.show_survivor_sets(|u| (u != 3 && u != 4).then(|| all.clone()));
    s.forward_signatures_with(&BTreeMap::from([(3, signature_of_3)]));
    assert!(s.revealed.is_empty());
    refused_for(&s, &[0, 1, 2], Violation::BadConsistencySignature(3));

    // Client 3's run-1 advertisement is refused in run 2 as well.
    let second = config_with_seed(5, 4, 3, 1, [2; 32]).unwrap();
    let mut s = Server::new(second, &[], &SiteFloor::default(), 6).unwrap();
    s.forged_adverts.insert(3, advert_of_3);
    s.run_to_masked_inputs();
    refused_for(&s, &[0, 1, 2, 4], Violation::BadKeySignature(3));
}

#[test]
fn attack_3b_two_tasks_are_two_rounds() {
    // The server shows client 3 one task (say, a model that leaks through
    // its update) and everyone else another. The config carries the task's
    // digest, so the two views have two session ids: client 3's signed keys
    // from its view are refused by every client of the other.
    let shown_to_3 = config_with_seed(5, 4, 3, 1, [1; 32])
        .unwrap()
        .with_task_digest(veil_crypto::kdf::task_digest(b"task shown to client 3"));
    let mut s = Server::new(shown_to_3, &[], &SiteFloor::default(), 8).unwrap();
    s.run_to_masked_inputs();
    let advert_of_3 = s.advert_of(3).unwrap();
    let shown_to_others = config_with_seed(5, 4, 3, 1, [1; 32])
        .unwrap()
        .with_task_digest(veil_crypto::kdf::task_digest(b"task shown to the others"));
    let mut s = Server::new(shown_to_others, &[], &SiteFloor::default(), 9).unwrap();
    s.forged_adverts.insert(3, advert_of_3);
    s.run_to_masked_inputs();
    assert!(s.revealed.is_empty());
    refused_for(&s, &[0, 1, 2, 4], Violation::BadKeySignature(3));
}

#[test]
fn attack_3c_an_evaluation_shown_to_one_site_and_training_to_the_others_are_two_rounds() {
    // The purpose is inside the Task: a server that shows client 3 an
    // evaluation of the model (or a statistics round) while the others
    // train, to read client 3's counts against the others' updates, shows
    // two digests, so two session ids, and nothing is revealed.
    let train = veil_secagg::test_vectors::vector_task();
    let evaluate = veil_secagg::messages::Task {
        purpose: veil_secagg::messages::Purpose::Evaluate { row_cap: 10 },
        ..train.clone()
    };
    let digest = |t: &veil_secagg::messages::Task| veil_crypto::kdf::task_digest(&t.encode(77));
    assert_ne!(digest(&train), digest(&evaluate));
    let shown_to_3 = config_with_seed(5, 4, 3, 1, [1; 32])
        .unwrap()
        .with_task_digest(digest(&evaluate));
    let mut s = Server::new(shown_to_3, &[], &SiteFloor::default(), 8).unwrap();
    s.run_to_masked_inputs();
    let advert_of_3 = s.advert_of(3).unwrap();
    let shown_to_others = config_with_seed(5, 4, 3, 1, [1; 32])
        .unwrap()
        .with_task_digest(digest(&train));
    let mut s = Server::new(shown_to_others, &[], &SiteFloor::default(), 9).unwrap();
    s.forged_adverts.insert(3, advert_of_3);
    s.run_to_masked_inputs();
    assert!(s.revealed.is_empty());
    refused_for(&s, &[0, 1, 2, 4], Violation::BadKeySignature(3));
}

#[test]
fn attack_4_a_site_refuses_rounds_below_its_floor() {
    let floor = SiteFloor::default();
    let refused = |cfg: RoundConfig| match Server::new(cfg, &[], &floor, 7) {
        Err(Error::BelowFloor(r)) => r.reason,
        other => panic!("not refused: {:?}", other.err()),
    };
    // The configs the audit's clients accepted.
    assert_eq!(refused(config(2, 1, 2, 0)), DeclineReason::Participants);
    assert_eq!(refused(config(100, 2, 2, 0)), DeclineReason::Colluders);
    let one_bit = RoundConfig::new(
        77,
        (0..20).collect(),
        6,
        RingBits::new(1).unwrap(),
        4,
        6,
        1,
        1000,
        [9; 32],
    )
    .unwrap();
    assert_eq!(refused(one_bit), DeclineReason::RingBits);
    let slow = RoundConfig::new(
        77,
        (0..20).collect(),
        6,
        RingBits::new(16).unwrap(),
        4,
        6,
        1,
        3_600_000,
        [9; 32],
    )
    .unwrap();
    assert_eq!(refused(slow), DeclineReason::PhaseTimeout);
    // A phase timeout of u32::MAX is not a valid config at all.
    assert!(
        RoundConfig::new(
            77,
            (0..20).collect(),
            6,
            RingBits::new(16).unwrap(),
            4,
            6,
            1,
            u32::MAX,
            [9; 32]
        )
        .is_err()
    );
    // A site that assumes more colluders asks more of the round.
    let mut careful = SiteFloor::default();
    careful.corrupt_fraction = 0.2;
    assert!(matches!(
        Server::new(config(20, 10, 6, 3), &[], &careful, 7),
        Err(Error::BelowFloor(r)) if r.reason == DeclineReason::Colluders && r.required == 4
    ));
}

/// Isolation: n = 20, k = 6, t = 4, the target at ring position 0. The server
/// shows every client the same set, without the target's honest neighbours,
/// so their mask-agreement secrets are rebuilt like a dropped client's and
/// every pairwise mask on the target's input is known.
fn isolate(colluder_positions: &[usize]) -> (Server, u32) {
    let cfg = config(20, 6, 4, 2);
    let ring = cfg.graph().ring_order().to_vec();
    let target = ring[0];
    let colluders: Vec<u32> = colluder_positions.iter().map(|p| ring[*p]).collect();
    let honest_neighbours: Vec<u32> = cfg
        .graph()
        .neighbours(target)
        .into_iter()
        .filter(|v| !colluders.contains(v))
        .collect();
    let survivors: Vec<u32> = sorted(
        cfg.participants
            .iter()
            .copied()
            .filter(|v| !honest_neighbours.contains(v))
            .collect(),
    );
    let mut s = Server::new(cfg, &colluders, &SiteFloor::default(), 8).unwrap();
    s.run_to_masked_inputs();
    s.show_survivor_sets(|u| (!honest_neighbours.contains(&u)).then(|| survivors.clone()));
    s.forward_signatures();
    (s, target)
}

#[test]
fn attack_5_isolation_takes_t_minus_1_colluders_so_t_must_exceed_c_by_two() {
    // t - 1 = 3 colluders around the target: with its own share they make
    // the t holders it needs, it reveals, and its input is exposed. A round
    // that withstands 3 colluders therefore needs t >= 5: t = 4 with c = 3
    // is not a valid config.
    let (mut s, target) = isolate(&[1, 2, 19]);
    assert!(s.refused.is_empty(), "{:?}", s.refused);
    assert!(s.breaks(target));
    assert!(config_with_seed(20, 6, 4, 3, [9; 32]).is_err());

    // The c = 2 colluders the round states: the target counts only three
    // holders and refuses, so its self-mask secret is never rebuilt.
    let (mut s, target) = isolate(&[1, 2]);
    assert!(matches!(
        s.refused.get(&target),
        Some(Error::TooFewSurvivors {
            phase: Phase::ConsistencyCheck,
            ..
        })
    ));
    assert!(s.secret_of(target, ShareKind::SelfMask).is_none());
    assert!(!s.breaks(target));
}

/// Random recommended rounds, split as the audit split them: the ring is
/// cut in two arcs at a random point, the client at position 0 (the
/// target) and the arc to its left are shown one set, the arc to its right
/// another, and the `c` colluders sit right beside the target, a random
/// number on each side, signing both sets. No honest client's two secrets
/// both reach `t` shares, no honest input comes out, and whoever reveals
/// was shown one set.
fn split_case(
    n: usize,
    dropout: f64,
    corrupt: f64,
    graph_seed: [u8; 32],
    cut: u8,
    left: u8,
    seed: u64,
) -> Result<(), TestCaseError> {
    let Ok(rec) = recommend_parameters(n, dropout, corrupt) else {
        return Ok(());
    };
    let cfg = config_with_seed(
        n as u32,
        rec.degree,
        rec.threshold,
        rec.max_corrupt,
        graph_seed,
    )
    .unwrap();
    let ring = cfg.graph().ring_order().to_vec();
    let c = rec.max_corrupt as usize;
    let c_left = usize::from(left) % (c + 1);
    let c_right = c - c_left;
    let colluders: Vec<u32> = ring[1..=c_right]
        .iter()
        .chain(&ring[n - c_left..])
        .copied()
        .collect();
    // World 2: positions c_right + 1 ..= m; world 1: the rest, target included.
    let first = c_right + 1;
    let last = n - c_left - 1;
    if first > last {
        return Ok(());
    }
    let m = first + usize::from(cut) % (last - first + 1);
    let world_2: Vec<u32> = ring[first..=m].to_vec();
    let mut s = Server::new(cfg.clone(), &colluders, &SiteFloor::none(), seed).unwrap();
    let honest: Vec<u32> = s.honest.keys().copied().collect();
    let in_2 = |u: u32| world_2.contains(&u);
    let set = |two: bool| -> Vec<u32> {
        sorted(
            honest
                .iter()
                .copied()
                .filter(|u| in_2(*u) == two)
                .chain(colluders.iter().copied())
                .collect(),
        )
    };
    let (one, two) = (set(false), set(true));
    s.run_to_masked_inputs();
    s.show_survivor_sets(|u| Some(if in_2(u) { two.clone() } else { one.clone() }));
    s.forward_signatures();
    for &u in &honest {
        let b = s.shares_of(u, ShareKind::SelfMask).len();
        let c = s.shares_of(u, ShareKind::MaskKey).len();
        prop_assert!(
            b < cfg.t() || c < cfg.t(),
            "both secrets of {} reached t = {}: {} and {}",
            u,
            cfg.t(),
            b,
            c
        );
        prop_assert!(!s.breaks(u), "the input of {} came out", u);
    }
    let shown: std::collections::BTreeSet<bool> = s.revealed.keys().map(|u| in_2(*u)).collect();
    prop_assert!(shown.len() <= 1, "clients of both worlds revealed");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn no_split_within_the_recommended_parameters_recovers_both_secrets(
        n in 8_usize..64,
        dropout in prop::sample::select(vec![0.05, 0.1, 0.2, 0.33]),
        corrupt in prop::sample::select(vec![0.02, 0.05, 0.1, 0.2]),
        graph_seed in any::<[u8; 32]>(),
        cut in any::<u8>(),
        left in any::<u8>(),
        seed in any::<u64>(),
    ) {
        split_case(n, dropout, corrupt, graph_seed, cut, left, seed)?;
    }
}
