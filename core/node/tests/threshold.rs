//! Threshold mode (genesis `key_threshold = 2`, three gatekeepers): epoch 0 by DKG through the
//! gatekeepers' own steps, ClusterKeys combined from two of three partials, a gatekeeper down,
//! a wrong partial named, and a restart from sealed shares.
#![allow(clippy::unwrap_used)] // tests

mod support;

use keyward_contracts::kv;
use keyward_hierarchy::{ClusterId, ClusterKeyRequest, Epoch, Generation};
use keyward_ledger::{EpochStatus, KeyContext};
use keyward_node::{Gatekeeper, ProvisionError};
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
    let mut sim = Sim::with_params(seed, |p| p.key_threshold = 2);
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
    // Contracts run under it as in classic mode.
    let alice = sim.user();
    sim.deploy(&alice, "notes", "c1");
    sim.settle();
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
    let aad = keyward_node::answer_aad(&sim.genesis(), &sim.workers[0].id(), &request);
    answers[0] = keyward_crypto::Envelope::seal(
        sim.gatekeepers[0].signer(),
        &sim.workers[0].channel(),
        keyward_crypto::EnvelopePurpose::ClusterKey,
        &aad,
        &partial.to_bytes(),
        &mut sim.rng,
    )
    .unwrap();
    let registry = sim.registry.clone();
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
}

#[test]
fn a_restarted_gatekeeper_answers_from_its_sealed_share() {
    let mut sim = network(4);
    let blob = sim.gatekeepers[1].seal(&sim.sealer, &mut sim.rng);
    sim.gatekeepers[1] = Gatekeeper::restore(&sim.sealer, &sim.genesis(), &blob).unwrap();
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
