//! Threshold mode (genesis `key_threshold = 2`, three gatekeepers): epoch 0 by DKG through the
//! gatekeepers' own steps, ClusterKeys combined from two of three partials, a gatekeeper down,
//! a wrong partial named, and a restart from sealed shares.
#![allow(clippy::unwrap_used)] // tests

mod support;

use keyward_contracts::kv;
use keyward_hierarchy::{ClusterId, ClusterKeyRequest, Epoch, Generation};
use keyward_ledger::{Certified, EpochStatus, KeyContext, Params, Statement};
use keyward_node::{Gatekeeper, GatekeeperStep, ProvisionError};
use support::Sim;

const CTX0: KeyContext = KeyContext {
    epoch: Epoch(0),
    generation: Generation(0),
};

fn id(name: &str) -> ClusterId {
    ClusterId::new(name).unwrap()
}

/// Three gatekeepers with a 2-of-3 MasterKey, three workers in cluster `c1`, settled.
fn network(seed: u64) -> Sim {
    network_with(seed, |_| {})
}

/// As [`network`], with `edit` applied to the genesis parameters after the 2-of-3 threshold.
fn network_with(seed: u64, edit: impl FnOnce(&mut Params)) -> Sim {
    let mut sim = Sim::with_params(seed, |p| {
        p.key_threshold = 2;
        edit(p);
    });
    for _ in 0..3 {
        sim.add_gatekeeper();
    }
    for _ in 0..3 {
        sim.add_worker();
    }
    sim.cluster("c1", &[0, 1, 2]);
    sim.settle();
    sim
}

#[test]
fn the_gatekeepers_run_the_dkg_and_workers_combine_their_cluster_key() {
    let mut sim = network(1);
    let epoch = sim.registry.epoch(Epoch(0)).unwrap();
    assert_eq!(epoch.status(), EpochStatus::Active);
    assert_eq!(epoch.record().committee().threshold(), 2);
    assert_eq!(epoch.holders().len(), 3);
    assert!(sim.registry.dkg().is_none());
    for gk in &sim.gatekeepers {
        assert_eq!(gk.held(), 1, "one share each, no MasterKey");
    }
    // A worker published the key it combined; every worker holds the same one.
    let published = *sim.registry.cluster(&id("c1")).unwrap().key(CTX0).unwrap();
    for w in &sim.workers {
        assert_eq!(
            w.cluster_key(&id("c1"), CTX0).unwrap().identity().public(),
            published
        );
    }
    // The committee certified epoch 0's checksum and the cluster key under the master public
    // key; every signing run is over.
    assert_certified(&sim, &Statement::EpochChecksum(Epoch(0)));
    assert_certified(&sim, &Statement::ClusterKey(id("c1"), CTX0));
    assert!(sim.registry.signing().is_empty());
    // Contracts run under it as in classic mode; users check the certificate themselves.
    let alice = sim.user();
    sim.deploy(&alice, "notes", "c1");
    sim.settle();
    let (_, trusted) =
        keyward_node::User::trusted_keys(&sim.registry, &"notes".parse().unwrap()).unwrap();
    assert_eq!(*trusted, published);
    let put = sim.send(&alice, "notes", &kv::put(b"k", b"v"));
    sim.settle();
    let digests = sim
        .registry
        .digests(&keyward_ledger::Subject::Command(put))
        .count();
    assert_eq!(digests, 3, "every worker ran the command");
}

#[test]
fn with_one_gatekeeper_down_workers_still_get_their_keys_and_with_two_they_do_not() {
    let mut sim = network(2);
    for _ in 0..3 {
        sim.add_worker();
    }
    sim.down.insert(0);
    sim.cluster("c2", &[3, 4, 5]);
    sim.settle();
    assert!(sim.workers[3].cluster_key(&id("c2"), CTX0).is_some());
    let published = *sim.registry.cluster(&id("c2")).unwrap().key(CTX0).unwrap();
    // The same key whichever two answer.
    sim.down = [2].into();
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: id("c2"),
        generation: Generation(0),
    };
    let answers = sim.ask(4, &request);
    assert_eq!(answers.len(), 2);
    let registry = sim.registry.clone();
    sim.workers[4]
        .provisioned(&registry, &request, &answers)
        .unwrap();
    assert_eq!(
        sim.workers[4]
            .cluster_key(&id("c2"), CTX0)
            .unwrap()
            .identity()
            .public(),
        published
    );
    // One partial is not enough.
    sim.down = [0, 1].into();
    let answers = sim.ask(5, &request);
    assert_eq!(answers.len(), 1);
    let err = sim.workers[5]
        .provisioned(&registry, &request, &answers)
        .unwrap_err();
    assert!(matches!(err, ProvisionError::Combine(_)), "{err:?}");
}

#[test]
fn a_wrong_partial_from_a_gatekeeper_is_named_and_the_others_suffice() {
    let mut sim = network(3);
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: id("c1"),
        generation: Generation(0),
    };
    let mut answers = sim.ask(0, &request);
    let (partial, signed) = wrong_partial(&mut sim, &request);
    // An unsigned partial is refused, but proves nothing.
    answers[0] = from_gatekeeper_0(&mut sim, &request, &partial.to_bytes());
    let registry = sim.registry.clone();
    let refused = sim.workers[0]
        .provisioned(&registry, &request, &answers)
        .unwrap();
    assert_eq!(refused[0].name(), "bad_answer");
    assert!(sim.workers[0].step(&registry, &mut sim.rng).is_none());
    // A signed wrong partial is refused, named, and reported on the ledger.
    answers[0] = from_gatekeeper_0(&mut sim, &request, signed.expose());
    let refused = sim.workers[0]
        .provisioned(&registry, &request, &answers)
        .unwrap();
    assert_eq!(
        refused,
        vec![ProvisionError::BadAnswer {
            from: sim.gatekeepers[0].id().into(),
            reason: "partial evaluation with an invalid proof",
        }]
    );
    let published = *sim.registry.cluster(&id("c1")).unwrap().key(CTX0).unwrap();
    assert_eq!(
        sim.workers[0]
            .cluster_key(&id("c1"), CTX0)
            .unwrap()
            .identity()
            .public(),
        published
    );
    let Some(keyward_node::WorkerStep::Submit(report)) =
        sim.workers[0].step(&registry, &mut sim.rng)
    else {
        panic!("the worker reports the wrong partial")
    };
    let keyward_ledger::Body::PartialReport(ref reported) = report else {
        panic!("a partial report")
    };
    // Tampered with, it no longer carries the gatekeeper's signature: refused.
    let mut tampered = (**reported).clone();
    tampered.partial[40] ^= 1;
    let signer = support::clone_key(sim.workers[0].signer());
    let err = sim
        .submit(
            &signer,
            &keyward_ledger::Body::PartialReport(Box::new(tampered)),
        )
        .unwrap_err();
    assert_eq!(err.name(), "bad_partial_report");
    let stake = sim.registry.node(&sim.gatekeepers[0].id()).unwrap().stake;
    let applied = sim.submit(&signer, &report).unwrap();
    assert!(matches!(
        &applied.events[..],
        [keyward_ledger::Event::GatekeeperSlashed { gatekeeper, amount, .. }]
            if *gatekeeper == sim.gatekeepers[0].id() && *amount == stake / 10
    ));
    assert!(sim.registry.node(&sim.gatekeepers[0].id()).unwrap().slashed);
    let again = sim.submit(&signer, &report).unwrap_err();
    assert_eq!(again.name(), "already_reported");
}

/// `plaintext` as gatekeeper 0's answer envelope to worker 0 for `request`.
fn from_gatekeeper_0(
    sim: &mut Sim,
    request: &ClusterKeyRequest,
    plaintext: &[u8],
) -> keyward_crypto::Envelope {
    let aad = keyward_node::answer_aad(&sim.genesis(), &sim.workers[0].id(), request);
    keyward_crypto::Envelope::seal(
        sim.gatekeepers[0].signer(),
        &sim.workers[0].channel(),
        keyward_crypto::EnvelopePurpose::ClusterKey,
        &aad,
        plaintext,
        &mut sim.rng,
    )
    .unwrap()
}

/// Gatekeeper 0's answer to `request` evaluated under a share it does not hold (with its own
/// identity and index): the bare partial, and the signed answer plaintext.
fn wrong_partial(
    sim: &mut Sim,
    request: &ClusterKeyRequest,
) -> (
    keyward_threshold::PartialEvaluation,
    keyward_crypto::SecretBytes<{ keyward_node::provision::ANSWER_LEN }>,
) {
    // Gatekeeper 0 answers with an evaluation under a share it does not hold, under its own
    // identity and its own index.
    let index = sim
        .registry
        .epoch(Epoch(0))
        .unwrap()
        .record()
        .gatekeepers()
        .iter()
        .find(|(_, g)| **g == sim.gatekeepers[0].id())
        .map(|(i, _)| *i)
        .unwrap();
    let wrong = keyward_threshold::KeyShare::new(
        index,
        &keyward_threshold::SecretKey::random(&mut sim.rng),
    );
    let partial = request.evaluate(&wrong, &mut sim.rng);
    let committee = sim
        .registry
        .epoch(Epoch(0))
        .unwrap()
        .current()
        .committee()
        .clone();
    let signed = keyward_node::provision::answer_plaintext(
        sim.gatekeepers[0].signer(),
        &sim.genesis(),
        request,
        &committee.verification_share(index).unwrap(),
        &partial,
        &mut sim.rng,
    );
    (partial, signed)
}

#[test]
fn answers_are_checked_as_they_arrive_and_the_key_needs_only_t() {
    let mut sim = network(3);
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: id("c1"),
        generation: Generation(0),
    };
    let answers = sim.ask(0, &request);
    assert_eq!(answers.len(), 3);
    let (_, signed) = wrong_partial(&mut sim, &request);
    let wrong = from_gatekeeper_0(&mut sim, &request, signed.expose());
    let replayed = sim.ask(1, &request)[1].clone();
    assert_eq!(replayed.sender(), answers[1].sender());
    let registry = sim.registry.clone();
    let published = *registry.cluster(&id("c1")).unwrap().key(CTX0).unwrap();
    let worker = &mut sim.workers[0];
    let mut collected = worker.collect(&registry, &request).unwrap();
    // Gatekeeper 1's answer to another worker, replayed to this one, does not open: it is
    // refused and does not use up gatekeeper 1's turn.
    assert!(!worker.check_answer(&mut collected, &replayed));
    // A sender's second answer is not counted.
    assert!(!worker.check_answer(&mut collected, &answers[1]));
    assert!(!worker.check_answer(&mut collected, &answers[1]));
    assert!(!collected.enough());
    // Not enough yet: combining fails and keeps nothing.
    let mut fresh = worker.collect(&registry, &request).unwrap();
    worker.check_answer(&mut fresh, &answers[1]);
    assert!(worker.provisioned_from(&registry, &fresh).is_err());
    // t valid: the key combines at once.
    assert!(worker.check_answer(&mut collected, &answers[2]));
    worker.provisioned_from(&registry, &collected).unwrap();
    assert_eq!(
        worker
            .cluster_key(&id("c1"), CTX0)
            .unwrap()
            .identity()
            .public(),
        published
    );
    // A wrong answer arriving after the key is still checked, named and reported.
    assert!(worker.check_answer(&mut collected, &wrong));
    let refused = worker.audited(collected);
    assert_eq!(
        refused,
        vec![
            ProvisionError::BadAnswer {
                from: sim.gatekeepers[1].id().into(),
                reason: "does not open under this worker's channel key",
            },
            ProvisionError::BadAnswer {
                from: sim.gatekeepers[0].id().into(),
                reason: "partial evaluation with an invalid proof",
            }
        ]
    );
    let step = sim.workers[0].step(&registry, &mut sim.rng);
    assert!(
        matches!(
            step,
            Some(keyward_node::WorkerStep::Submit(
                keyward_ledger::Body::PartialReport(_)
            ))
        ),
        "{step:?}"
    );
}

#[test]
fn a_restarted_gatekeeper_answers_from_its_sealed_share() {
    let mut sim = network(4);
    let blob = sim.gatekeepers[1].seal(&sim.sealer, 0, &mut sim.rng);
    sim.gatekeepers[1] = Gatekeeper::restore(&sim.sealer, &sim.genesis(), &blob, 0).unwrap();
    assert_eq!(sim.gatekeepers[1].held(), 1);
    // It proposes nothing new after the restart.
    let registry = sim.registry.clone();
    assert!(sim.gatekeepers[1].step(&registry, &mut sim.rng).is_none());
    // And with gatekeeper 0 down, its share still makes the key with gatekeeper 2's.
    for _ in 0..3 {
        sim.add_worker();
    }
    sim.down.insert(0);
    sim.cluster("c2", &[3, 4, 5]);
    sim.settle();
    assert!(sim.workers[5].cluster_key(&id("c2"), CTX0).is_some());
}

#[test]
fn a_wrong_key_published_by_a_member_worker_is_an_alarm_not_a_loop() {
    let mut sim = network(5);
    for _ in 0..3 {
        sim.add_worker();
    }
    sim.cluster("c2", &[3, 4, 5]);
    // Member worker 3 publishes a key nobody derived, before anyone is provisioned.
    let bogus = keyward_crypto::IdentityKeypair::generate(&mut sim.rng).public();
    let signer = support::clone_key(sim.workers[3].signer());
    let body = keyward_ledger::Body::ClusterKeyPublish(keyward_ledger::ClusterKeyPublish {
        cluster: id("c2"),
        epoch: Epoch(0),
        generation: Generation(0),
        key: bogus,
    });
    sim.submit(&signer, &body).unwrap();
    // The network settles: the honest workers keep the key their partials proved, and stop.
    sim.settle();
    let held = sim.workers[4]
        .cluster_key(&id("c2"), CTX0)
        .unwrap()
        .identity()
        .public();
    assert_ne!(held, bogus);
    assert_eq!(
        sim.workers[4].take_alarms(),
        vec![keyward_node::WorkerAlarm::PublishedKeyMismatch(
            id("c2"),
            CTX0
        )]
    );
    sim.settle();
    assert!(sim.workers[4].take_alarms().is_empty(), "raised once");
}

/// `statement`'s certificate is on the ledger and verifies under its epoch's master public key,
/// and for no other content.
fn assert_certified(sim: &Sim, statement: &Statement) {
    let registry = &sim.registry;
    let master = registry
        .epoch(statement.epoch())
        .unwrap()
        .record()
        .committee()
        .public_key();
    let signature = registry.certificate(statement).unwrap();
    let certified = registry.certified(statement).unwrap();
    let genesis = sim.genesis();
    assert!(certified.verify(&genesis, &master, signature));
    let forged = match certified {
        Certified::EpochChecksum { epoch, .. } => Certified::EpochChecksum {
            epoch,
            checksum: keyward_hierarchy::EpochChecksum([9; 32]),
        },
        Certified::ClusterKey {
            cluster, context, ..
        } => Certified::ClusterKey {
            cluster,
            context,
            key: sim.gatekeepers[0].id(),
        },
    };
    assert!(!forged.verify(&genesis, &master, signature));
}

#[test]
fn a_gatekeeper_restarted_between_the_signing_rounds_signs_with_its_sealed_nonces() {
    let mut sim = network(7);
    for _ in 0..3 {
        sim.add_worker();
    }
    // Gatekeepers 0 and 2 take no steps of their own (they still answer workers), so gatekeeper
    // 1 commits alone and gatekeeper 0 must be the second signer.
    sim.paused.extend([0, 2]);
    sim.cluster("c2", &[3, 4, 5]);
    sim.settle();
    let statement = Statement::ClusterKey(id("c2"), CTX0);
    assert_eq!(sim.registry.signing()[&statement].commitments().len(), 1);
    // Each round: gatekeeper 0 seals its state before the entry, is restarted from that state
    // before the entry lands, and proposes exactly the same entry again.
    for round in ["commitment", "signature share"] {
        let registry = sim.registry.clone();
        let Some(GatekeeperStep::SealThenSubmit(body)) =
            sim.gatekeepers[0].step(&registry, &mut sim.rng)
        else {
            panic!("gatekeeper 0 has a {round} to seal and submit");
        };
        let blob = sim.gatekeepers[0].seal(&sim.sealer, 0, &mut sim.rng);
        sim.gatekeepers[0] = Gatekeeper::restore(&sim.sealer, &sim.genesis(), &blob, 0).unwrap();
        let again = sim.gatekeepers[0].step(&registry, &mut sim.rng);
        assert!(
            matches!(&again, Some(GatekeeperStep::Submit(b)) if *b == body),
            "the restarted gatekeeper re-submits its sealed {round}: {again:?}"
        );
        let signer = support::clone_key(sim.gatekeepers[0].signer());
        sim.submit(&signer, &body).unwrap();
        sim.settle();
    }
    assert_certified(&sim, &statement);
    assert!(sim.registry.signing().is_empty());
}

/// The council decides `action` (two of three approve).
fn decide(sim: &mut Sim, action: keyward_ledger::Action) -> keyward_ledger::EntryHash {
    let propose = keyward_ledger::Body::CouncilPropose(Box::new(keyward_ledger::Proposal {
        ttl: 100,
        action,
    }));
    let proposal = sim.council_submit(&propose).hash;
    let approver = support::clone_key(&sim.council[1]);
    sim.submit(
        &approver,
        &keyward_ledger::Body::CouncilApprove(keyward_ledger::Approval { proposal }),
    )
    .unwrap();
    proposal
}

/// Worker `w` asks every gatekeeper for `request` again and returns the key it combines.
fn reprovision(
    sim: &mut Sim,
    w: usize,
    request: &ClusterKeyRequest,
) -> keyward_crypto::IdentityPublicKey {
    let answers = sim.ask(w, request);
    let registry = sim.registry.clone();
    sim.workers[w]
        .provisioned(&registry, request, &answers)
        .unwrap();
    sim.workers[w]
        .cluster_key(
            &request.cluster,
            KeyContext {
                epoch: request.epoch,
                generation: request.generation,
            },
        )
        .unwrap()
        .identity()
        .public()
}

#[test]
fn a_threshold_rotation_moves_old_epochs_to_the_new_gatekeepers_and_old_shares_die() {
    let mut sim = network(6);
    let before = sim.workers[0]
        .cluster_key(&id("c1"), CTX0)
        .unwrap()
        .identity()
        .public();
    for _ in 0..3 {
        sim.add_gatekeeper();
    }
    sim.settle();
    let committee = sim.gatekeepers[3..].iter().map(Gatekeeper::id).collect();
    let proposal = decide(
        &mut sim,
        keyward_ledger::Action::RotateMasterKey { committee },
    );
    sim.settle();
    // Epoch 1 exists by DKG among the new gatekeepers; epoch 0 was reshared to them.
    assert_eq!(sim.registry.current_epoch(), Some(Epoch(1)));
    assert_eq!(
        sim.registry.proposal(&proposal).unwrap().status,
        keyward_ledger::ProposalStatus::Executed
    );
    let epoch0 = sim.registry.epoch(Epoch(0)).unwrap();
    assert_ne!(epoch0.current(), epoch0.record());
    let new: std::collections::BTreeSet<_> =
        sim.gatekeepers[3..].iter().map(Gatekeeper::id).collect();
    assert_eq!(epoch0.holders(), &new);
    for gk in &sim.gatekeepers[..3] {
        assert_eq!(gk.held(), 0, "a removed gatekeeper keeps no share");
    }
    for gk in &sim.gatekeepers[3..] {
        assert_eq!(gk.held(), 2, "a share of each epoch");
    }
    // The workers moved to epoch 1's keys, and epoch 0's key still comes out the same, from the
    // new gatekeepers alone (one of them down).
    let ctx1 = KeyContext {
        epoch: Epoch(1),
        generation: Generation(0),
    };
    for w in &sim.workers {
        assert!(w.cluster_key(&id("c1"), ctx1).is_some());
    }
    // The new committee certified epoch 1 and the cluster's new key; epoch 0's certificate,
    // made by the old committee, still verifies under its unchanged master public key.
    assert_certified(&sim, &Statement::EpochChecksum(Epoch(1)));
    assert_certified(&sim, &Statement::ClusterKey(id("c1"), ctx1));
    assert_certified(&sim, &Statement::EpochChecksum(Epoch(0)));
    sim.down.insert(3);
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: id("c1"),
        generation: Generation(0),
    };
    assert_eq!(reprovision(&mut sim, 0, &request), before);

    // A refresh: same keys, new shares; the stale ones are dropped.
    sim.down.clear();
    let stale = sim.gatekeepers[4].seal(&sim.sealer, 0, &mut sim.rng);
    decide(&mut sim, keyward_ledger::Action::RefreshShares);
    sim.settle();
    assert!(sim.registry.reshares().is_empty());
    sim.down.insert(5);
    assert_eq!(reprovision(&mut sim, 1, &request), before);
    // A gatekeeper restored from a state sealed before the refresh holds only stale shares: it
    // cannot answer, and with another gatekeeper down the worker cannot get the key.
    sim.gatekeepers[4] = Gatekeeper::restore(&sim.sealer, &sim.genesis(), &stale, 0).unwrap();
    let answers = sim.ask(1, &request);
    let registry = sim.registry.clone();
    assert!(
        sim.workers[1]
            .provisioned(&registry, &request, &answers)
            .is_err()
    );
    // Its next step drops the stale shares and asks the host to store the sealed state again,
    // so that no stored copy keeps them.
    let registry = sim.registry.clone();
    let step = sim.gatekeepers[4].step(&registry, &mut sim.rng);
    assert!(matches!(step, Some(keyward_node::GatekeeperStep::Seal)));
    assert_eq!(sim.gatekeepers[4].held(), 0);
}

#[test]
fn the_gatekeepers_refresh_their_shares_on_the_genesis_schedule() {
    let mut sim = network_with(8, |p| {
        p.refresh_interval = keyward_ledger::MIN_REFRESH_INTERVAL
    });
    let before = sim.registry.epoch(Epoch(0)).unwrap().current().clone();
    let key = *sim.registry.cluster(&id("c1")).unwrap().key(CTX0).unwrap();
    // Registrations fill the ledger until the refresh is due; the gatekeepers then run it on
    // their own, with no council decision.
    while sim.registry.epoch(Epoch(0)).unwrap().current() == &before {
        assert!(sim.registry.next_height() < 200, "no refresh ran");
        sim.add_worker();
        sim.settle();
    }
    let after = sim.registry.epoch(Epoch(0)).unwrap().current().clone();
    assert_eq!(
        after.committee().public_key(),
        before.committee().public_key()
    );
    assert_eq!(after.gatekeepers(), before.gatekeepers());
    assert!(sim.registry.resharing().is_none());
    for gk in &sim.gatekeepers {
        assert_eq!(gk.held(), 1, "the old share is dropped");
    }
    // A new cluster's workers combine the refreshed partials into a certified key, and the
    // first cluster's key is unchanged.
    let n = sim.workers.len();
    sim.cluster("c2", &[n - 3, n - 2, n - 1]);
    sim.settle();
    assert!(sim.workers[n - 1].cluster_key(&id("c2"), CTX0).is_some());
    assert_certified(&sim, &Statement::ClusterKey(id("c2"), CTX0));
    assert_eq!(
        *sim.registry.cluster(&id("c1")).unwrap().key(CTX0).unwrap(),
        key
    );
}
