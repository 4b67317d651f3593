//! Kinds 16–17 (PROTOCOL §16.9): proposals, approvals, expiry, failure, the four actions, and the
//! seed's worst case: a rotation that replaces the MasterKey and the whole gatekeeper set.
#![allow(clippy::unwrap_used)] // tests

mod support;

use keyward_hierarchy::{ClusterId, ClusterKeyRequest, Epoch, Generation, MasterKey};
use keyward_ledger::*;
use support::*;

fn propose(ttl: u64, action: Action) -> Body {
    Body::CouncilPropose(Box::new(Proposal { ttl, action }))
}

fn approve(proposal: EntryHash) -> Body {
    Body::CouncilApprove(Approval { proposal })
}

fn council_refused(net: &mut Net, i: usize, body: &Body, name: &str) {
    let before = net.registry.clone();
    let err = net.as_council(i, body).unwrap_err();
    assert_eq!(err.name(), name, "{err}");
    assert_eq!(net.registry, before);
}

/// Three admitted gatekeepers a, b, c; a founds epoch 0 and hands it to b; two workers in c1.
struct Setup {
    net: Net,
    gks: [Member; 3],
    master: MasterKey,
    workers: [Member; 2],
}

fn setup(seed: u64) -> Setup {
    setup_with(seed, |_| {})
}

fn setup_with(seed: u64, edit: impl FnOnce(&mut GenesisConfig)) -> Setup {
    let mut net = Net::with(seed, edit);
    let gks = [net.gatekeeper(), net.gatekeeper(), net.gatekeeper()];
    let master = MasterKey::generate(&mut net.rng);
    let body = create(&mut net, &gks[0], 0, &master, &[]);
    net.submit(&gks[0].id, &body).unwrap();
    let body = handoff(&mut net, &gks[0], &gks[1], &[(Epoch(0), &master)]);
    net.submit(&gks[0].id, &body).unwrap();
    net.submit(&gks[1].id, &accept(&[0])).unwrap();
    let workers = [net.worker(), net.worker()];
    let cluster = Body::ClusterCreate(ClusterCreate {
        cluster: ClusterId::new("c1").unwrap(),
        members: workers.iter().map(|w| w.id.public()).collect(),
    });
    net.as_council(0, &cluster).unwrap();
    Setup {
        net,
        gks,
        master,
        workers,
    }
}

#[test]
fn an_action_runs_at_the_threshold_and_not_before() {
    let mut s = setup(1);
    let worker = s.workers[0].id.public();
    let body = propose(10, Action::RemoveWorker { worker });
    let applied = s.net.as_council(0, &body).unwrap();
    let id = applied.hash;
    // 1 of the 2 approvals the default majority of 3 needs: nothing happened.
    assert_eq!(
        s.net.registry.proposal(&id).unwrap().status,
        ProposalStatus::Open
    );
    assert!(s.net.registry.node(&worker).unwrap().is_active());
    council_refused(&mut s.net, 0, &approve(id), "already_approved");
    let applied = s.net.as_council(1, &approve(id)).unwrap();
    assert!(
        applied
            .events
            .contains(&Event::ProposalExecuted { proposal: id })
    );
    let c1 = ClusterId::new("c1").unwrap();
    assert!(applied.events.contains(&Event::ClusterChanged {
        cluster: c1.clone(),
        generation: Generation(1)
    }));
    let node = s.net.registry.node(&worker).unwrap();
    assert!(matches!(node.status, Status::Removed { .. }));
    assert!(
        !s.net
            .registry
            .cluster(&c1)
            .unwrap()
            .members()
            .contains(&worker)
    );
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: c1.clone(),
        generation: Generation(0),
    };
    assert_eq!(
        s.net.registry.may_provision(&worker, &request).err(),
        Some(ProvisionError::NotAWorker)
    );
    council_refused(&mut s.net, 2, &approve(id), "proposal_closed");
    // Re-keying a cluster bumps its generation; the remaining worker gets the new key.
    let body = propose(
        10,
        Action::RekeyCluster {
            cluster: c1.clone(),
        },
    );
    let id = s.net.as_council(2, &body).unwrap().hash;
    s.net.as_council(0, &approve(id)).unwrap();
    assert_eq!(
        s.net.registry.cluster(&c1).unwrap().generation(),
        Generation(2)
    );
    let stay = s.workers[1].id.public();
    let request = ClusterKeyRequest {
        generation: Generation(2),
        ..request
    };
    assert!(s.net.registry.may_provision(&stay, &request).is_ok());
}

#[test]
fn a_threshold_of_one_executes_on_proposal() {
    let mut s = setup_with(2, |g| g.threshold = 1);
    let c1 = ClusterId::new("c1").unwrap();
    let body = propose(
        1,
        Action::RekeyCluster {
            cluster: c1.clone(),
        },
    );
    let applied = s.net.as_council(2, &body).unwrap();
    assert!(applied.events.contains(&Event::ProposalExecuted {
        proposal: applied.hash
    }));
    assert_eq!(
        s.net.registry.cluster(&c1).unwrap().generation(),
        Generation(1)
    );
}

#[test]
fn proposals_expire_fail_and_refuse_what_cannot_run() {
    let mut s = setup(3);
    let c1 = ClusterId::new("c1").unwrap();
    let rekey = Action::RekeyCluster {
        cluster: c1.clone(),
    };
    let stranger = s.net.key();
    refused(
        &mut s.net,
        &stranger,
        &propose(1, rekey.clone()),
        "wrong_author",
    );
    refused(
        &mut s.net,
        &s.workers[0].id,
        &propose(1, rekey.clone()),
        "wrong_author",
    );
    council_refused(&mut s.net, 0, &propose(0, rekey.clone()), "bad_ttl");
    let max = Params::default().max_proposal_ttl;
    council_refused(&mut s.net, 0, &propose(max + 1, rekey.clone()), "bad_ttl");
    let bad = [
        Action::RekeyCluster {
            cluster: ClusterId::new("zz").unwrap(),
        },
        Action::RemoveWorker {
            worker: s.gks[0].id.public(),
        },
        Action::RotateMasterKey {
            committee: vec![s.workers[0].id.public()],
        },
        Action::ReplaceGatekeepers {
            set: [s.gks[2].id.public()].into(), // holds no epoch
        },
    ];
    for action in bad {
        council_refused(&mut s.net, 0, &propose(5, action), "invalid_action");
    }
    council_refused(
        &mut s.net,
        0,
        &approve(EntryHash([9; 32])),
        "unknown_proposal",
    );
    refused(
        &mut s.net,
        &stranger,
        &approve(EntryHash([9; 32])),
        "wrong_author",
    );

    // ttl 1: approvals count at the next height only.
    let id = s.net.as_council(0, &propose(1, rekey)).unwrap().hash;
    s.net.worker(); // one more entry
    let err = s.net.as_council(1, &approve(id)).unwrap_err();
    assert_eq!(err.name(), "proposal_expired");

    // An action that stopped being valid fails at the threshold, changing nothing else.
    let worker = s.workers[0].id.public();
    let id = s
        .net
        .as_council(0, &propose(10, Action::RemoveWorker { worker }))
        .unwrap()
        .hash;
    s.net
        .submit(&s.workers[0].id, &Body::WorkerDeregister)
        .unwrap();
    let applied = s.net.as_council(1, &approve(id)).unwrap();
    assert_eq!(applied.events, vec![Event::ProposalFailed { proposal: id }]);
    assert!(matches!(
        s.net.registry.proposal(&id).unwrap().status,
        ProposalStatus::Failed(ref r) if r.name() == "invalid_action"
    ));
}

#[test]
fn replacing_the_gatekeepers_keeps_the_key_and_removes_the_others() {
    let mut s = setup(4);
    let keep = s.gks[1].id.public();
    let body = propose(5, Action::ReplaceGatekeepers { set: [keep].into() });
    let id = s.net.as_council(0, &body).unwrap().hash;
    s.net.as_council(1, &approve(id)).unwrap();
    for (i, gk) in s.gks.iter().enumerate() {
        assert_eq!(
            s.net.registry.node(&gk.id.public()).unwrap().is_active(),
            i == 1
        );
    }
    let state = s.net.registry.epoch(Epoch(0)).unwrap();
    assert_eq!(state.holders().iter().collect::<Vec<_>>(), vec![&keep]);
    assert_eq!(
        state.record().committee().public_key(),
        s.master.public_key()
    );
}

#[test]
fn a_rotation_replaces_the_master_key_and_the_gatekeeper_set() {
    let mut s = setup(5);
    // Two new gatekeepers: beyond the three bootstrap ones, so not admitted.
    let [n1, n2] = [s.net.gatekeeper(), s.net.gatekeeper()];
    let fresh = MasterKey::generate(&mut s.net.rng);

    // An unapproved attempt is refused, whatever proposal it names.
    let attempt = create_for(&mut s.net, &n1, 1, &fresh, &[&n2], Some(EntryHash([1; 32])));
    refused(&mut s.net, &n1.id, &attempt, "wrong_author"); // n1 is not admitted yet
    let attempt = create_for(
        &mut s.net,
        &s.gks[0],
        1,
        &fresh,
        &[],
        Some(EntryHash([1; 32])),
    );
    refused(&mut s.net, &s.gks[0].id, &attempt, "proposal_not_approved");

    let committee = vec![n1.id.public(), n2.id.public()];
    let rotate = propose(
        20,
        Action::RotateMasterKey {
            committee: committee.clone(),
        },
    );
    let id = s.net.as_council(0, &rotate).unwrap().hash;
    let attempt = create_for(&mut s.net, &s.gks[0], 1, &fresh, &[], Some(id));
    refused(&mut s.net, &s.gks[0].id, &attempt, "proposal_not_approved");
    let applied = s.net.as_council(2, &approve(id)).unwrap();
    assert!(
        applied
            .events
            .contains(&Event::RotationApproved { proposal: id })
    );
    assert_eq!(s.net.registry.rotation(), Some(id));

    // While it runs: no second rotation, no gatekeeper leaves.
    let again = propose(
        20,
        Action::RotateMasterKey {
            committee: vec![n2.id.public()],
        },
    );
    council_refused(&mut s.net, 1, &again, "rotation_in_progress");
    refused(
        &mut s.net,
        &s.gks[2].id,
        &Body::GatekeeperDeregister,
        "rotation_in_progress",
    );
    // Only the approved committee, in order, founds the epoch.
    let wrong = create_for(&mut s.net, &n1, 1, &fresh, &[], Some(id));
    refused(&mut s.net, &n1.id, &wrong, "committee_mismatch");
    let body = create_for(&mut s.net, &n1, 1, &fresh, &[&n2], Some(id));
    s.net.submit(&n1.id, &body).unwrap();
    // The new secret is sealed to n2 alone: no old gatekeeper's channel key opens it.
    let envelope = s
        .net
        .registry
        .epoch(Epoch(1))
        .unwrap()
        .pending_for(&n2.id.public())
        .next()
        .unwrap()
        .clone();
    let genesis = s.net.registry.genesis().hash();
    for old in &s.gks {
        assert!(
            open_epoch_secret(
                &old.channel,
                &n2.id.public(),
                &genesis,
                Epoch(1),
                &fresh.public_key(),
                &envelope
            )
            .is_err()
        );
    }
    // The old holders hand the retained epoch 0 to the new committee.
    for to in [&n1, &n2] {
        let body = handoff(&mut s.net, &s.gks[0], to, &[(Epoch(0), &s.master)]);
        s.net.submit(&s.gks[0].id, &body).unwrap();
    }
    s.net.submit(&n1.id, &accept(&[0])).unwrap();
    assert_eq!(s.net.registry.current_epoch(), Some(Epoch(0)));
    let applied = s.net.submit(&n2.id, &accept(&[0, 1])).unwrap();
    assert!(
        applied
            .events
            .contains(&Event::EpochActivated { epoch: Epoch(1) })
    );
    assert!(
        applied
            .events
            .contains(&Event::ProposalExecuted { proposal: id })
    );

    // Epoch 1 is current, epoch 0 retained and held by the new set only; the old set is gone.
    assert_eq!(s.net.registry.current_epoch(), Some(Epoch(1)));
    assert_eq!(
        s.net.registry.epoch(Epoch(0)).unwrap().status(),
        EpochStatus::Retained
    );
    assert_eq!(s.net.registry.rotation(), None);
    for old in &s.gks {
        assert!(matches!(
            s.net.registry.node(&old.id.public()).unwrap().status,
            Status::Removed { .. }
        ));
    }
    for e in [0, 1] {
        let holders = s.net.registry.epoch(Epoch(e)).unwrap().holders().clone();
        assert_eq!(holders, committee.iter().copied().collect());
    }
    chain_verifies(&s.net);
    // Clusters move to the new epoch's keys; old data stays readable through epoch 0.
    let c1 = ClusterId::new("c1").unwrap();
    let context = s.net.registry.key_context(&c1).unwrap();
    assert_eq!(context.epoch, Epoch(1));
    let worker = s.workers[0].id.public();
    for epoch in [0, 1] {
        let request = ClusterKeyRequest {
            epoch: Epoch(epoch),
            cluster: c1.clone(),
            generation: Generation(0),
        };
        assert!(s.net.registry.may_provision(&worker, &request).is_ok());
    }
}

#[test]
fn a_rotation_needs_a_fresh_key_and_keeps_its_epoch_within_the_committee() {
    let mut s = setup(6);
    let [n1, n2] = [s.net.gatekeeper(), s.net.gatekeeper()];
    let committee = vec![n1.id.public(), n2.id.public()];
    let rotate = propose(20, Action::RotateMasterKey { committee });
    let id = s.net.as_council(0, &rotate).unwrap().hash;
    s.net.as_council(1, &approve(id)).unwrap();
    // No gatekeeper registers while it runs: it would only be removed at the end.
    let late = s.net.key();
    let body = s.net.gatekeeper_body(&late);
    refused(&mut s.net, &late, &body, "rotation_in_progress");
    // The old MasterKey again: refused.
    let old = MasterKey::from_bytes(&s.master.to_bytes()).unwrap();
    let body = create_for(&mut s.net, &n1, 1, &old, &[&n2], Some(id));
    let err = refused(&mut s.net, &n1.id, &body, "master_key_reused");
    assert_eq!(err, Rejected::MasterKeyReused { epoch: Epoch(0) });
    let fresh = MasterKey::generate(&mut s.net.rng);
    let body = create_for(&mut s.net, &n1, 1, &fresh, &[&n2], Some(id));
    s.net.submit(&n1.id, &body).unwrap();
    // The pending epoch goes to its founders only, never back to the old set.
    let body = handoff(&mut s.net, &n1, &s.gks[0], &[(Epoch(1), &fresh)]);
    refused(&mut s.net, &n1.id, &body, "not_a_founder");
    // A second epoch under the same rotation (a retried create with another key) would leave
    // the first pending for good: refused while it is pending.
    let again = MasterKey::generate(&mut s.net.rng);
    let body = create_for(&mut s.net, &n1, 2, &again, &[&n2], Some(id));
    let err = refused(&mut s.net, &n1.id, &body, "epoch_pending");
    assert_eq!(err, Rejected::EpochPending { epoch: Epoch(1) });
}

#[test]
fn the_council_abandons_a_stalled_epoch_and_the_network_tries_again() {
    let mut net = Net::new(7);
    let [a, b, c] = [net.gatekeeper(), net.gatekeeper(), net.gatekeeper()];
    let master = MasterKey::generate(&mut net.rng);
    // c never accepts: epoch 0 stays pending, and nobody can leave or rotate.
    let body = create(&mut net, &a, 0, &master, &[&b, &c]);
    net.submit(&a.id, &body).unwrap();
    net.submit(&b.id, &accept(&[0])).unwrap();
    let rotate = propose(
        5,
        Action::RotateMasterKey {
            committee: vec![a.id.public()],
        },
    );
    council_refused(&mut net, 0, &rotate, "invalid_action");
    council_refused(
        &mut net,
        0,
        &propose(5, Action::AbandonEpoch { epoch: Epoch(1) }),
        "invalid_action",
    );
    let id = net
        .as_council(0, &propose(5, Action::AbandonEpoch { epoch: Epoch(0) }))
        .unwrap()
        .hash;
    let applied = net.as_council(1, &approve(id)).unwrap();
    assert!(
        applied
            .events
            .contains(&Event::EpochAbandoned { epoch: Epoch(0) })
    );
    assert!(net.registry.epochs().is_empty());
    assert_eq!(
        net.registry.checksum(),
        keyward_hierarchy::EpochChecksum::genesis(&net.registry.genesis().config().chain)
    );
    // The abandoned key never returns; a fresh epoch 0 with a and b activates.
    let body = create(&mut net, &a, 0, &master, &[&b]);
    refused(&mut net, &a.id, &body, "master_key_reused");
    let fresh = MasterKey::generate(&mut net.rng);
    let body = create(&mut net, &a, 0, &fresh, &[&b]);
    net.submit(&a.id, &body).unwrap();
    net.submit(&b.id, &accept(&[0])).unwrap();
    assert_eq!(net.registry.current_epoch(), Some(Epoch(0)));
}

#[test]
fn an_abandoned_rotation_unlocks_the_gatekeepers() {
    let mut s = setup(8);
    let [n1, n2] = [s.net.gatekeeper(), s.net.gatekeeper()];
    let rotate = propose(
        20,
        Action::RotateMasterKey {
            committee: vec![n1.id.public(), n2.id.public()],
        },
    );
    let id = s.net.as_council(0, &rotate).unwrap().hash;
    // An approval at exactly the expiry height still counts.
    let expires = s.net.registry.proposal(&id).unwrap().expires_at;
    while s.net.registry.next_height() < expires {
        s.net.worker();
    }
    s.net.as_council(1, &approve(id)).unwrap();
    let fresh = MasterKey::generate(&mut s.net.rng);
    let body = create_for(&mut s.net, &n1, 1, &fresh, &[&n2], Some(id));
    s.net.submit(&n1.id, &body).unwrap();
    // n2 never accepts; the council abandons epoch 1.
    let abandon = propose(5, Action::AbandonEpoch { epoch: Epoch(1) });
    let aid = s.net.as_council(2, &abandon).unwrap().hash;
    s.net.as_council(0, &approve(aid)).unwrap();
    assert_eq!(s.net.registry.rotation(), None);
    assert_eq!(
        s.net.registry.proposal(&id).unwrap().status,
        ProposalStatus::Abandoned
    );
    assert_eq!(s.net.registry.current_epoch(), Some(Epoch(0)));
    s.net
        .submit(&s.gks[2].id, &Body::GatekeeperDeregister)
        .unwrap();
}
