//! The gatekeeper and worker cores run a whole network in memory: epoch 0 and its handoff,
//! cluster keys published and provisioned, contract keys, commands, digests, replies, slashing,
//! and restarts from sealed state.
#![allow(clippy::unwrap_used)]

mod support;

use keyward_contracts::kv;
use keyward_hierarchy::{ClusterId, ClusterKeyRequest, ContractId, Epoch, Generation};
use keyward_ledger::{Body, ClusterKeyPublish, EpochStatus, KeyContext, Subject};
use keyward_node::{Gatekeeper, ProvisionError, ProvisionRequest, StateError, Worker};
use support::{Sim, clone_key};

const CTX0: KeyContext = KeyContext {
    epoch: Epoch(0),
    generation: Generation(0),
};

/// Two gatekeepers, three workers in cluster `c1`, settled.
fn network(seed: u64) -> Sim {
    let mut sim = Sim::new(seed);
    sim.add_gatekeeper();
    sim.add_gatekeeper();
    for _ in 0..3 {
        sim.add_worker();
    }
    sim.cluster("c1", &[0, 1, 2]);
    sim.settle();
    sim
}

fn c1() -> ClusterId {
    ClusterId::new("c1").unwrap()
}

#[test]
fn epoch_zero_is_created_handed_over_and_every_worker_gets_the_published_cluster_key() {
    let sim = network(1);
    let epoch = sim.registry.epoch(Epoch(0)).unwrap();
    assert_eq!(epoch.status(), EpochStatus::Active);
    assert_eq!(
        epoch.holders().len(),
        2,
        "the second gatekeeper accepted the handoff"
    );
    assert_eq!(sim.gatekeepers[0].held(), 1);
    assert_eq!(sim.gatekeepers[1].held(), 1);
    let published = *sim.registry.cluster(&c1()).unwrap().key(CTX0).unwrap();
    for w in &sim.workers {
        assert_eq!(
            w.cluster_key(&c1(), CTX0).unwrap().identity().public(),
            published
        );
    }
}

#[test]
fn a_command_runs_on_every_worker_with_one_digest_and_a_reply_only_its_sender_opens() {
    let mut sim = network(2);
    let alice = sim.user();
    sim.deploy(&alice, "notes", "c1");
    sim.settle();
    let contract = sim
        .registry
        .contract(&ContractId::new("notes").unwrap())
        .unwrap();
    assert_eq!(contract.confirmers(CTX0).unwrap().len(), 3);

    let put = sim.send(&alice, "notes", &kv::put(b"k", b"secret"));
    sim.settle();
    let get = sim.send(&alice, "notes", &kv::get(b"k"));
    sim.settle();
    for command in [put, get] {
        let digests: Vec<_> = sim.registry.digests(&Subject::Command(command)).collect();
        assert_eq!(digests.len(), 3);
        assert!(digests.iter().all(|(_, d)| *d == digests[0].1));
        assert_eq!(sim.replies[&command].len(), 3);
    }
    for reply in &sim.replies[&get] {
        let opened = alice.open_reply(&sim.registry, &get, reply).unwrap();
        assert_eq!(opened.status, 0);
        assert!(opened.body.ends_with(b"secret"));
    }
    let eve = sim.user();
    assert!(
        eve.open_reply(&sim.registry, &get, &sim.replies[&get][0])
            .is_err()
    );
}

#[test]
fn a_worker_whose_digest_disagrees_is_reported_and_slashed() {
    let mut sim = network(3);
    sim.faulty.insert(2);
    let alice = sim.user();
    sim.deploy(&alice, "notes", "c1");
    sim.settle();
    sim.send(&alice, "notes", &kv::put(b"k", b"v"));
    sim.settle();
    let faulty = sim.registry.node(&sim.workers[2].id()).unwrap();
    assert!(faulty.slashed);
    assert!(faulty.stake < keyward_ledger::Params::default().min_worker_stake);
    for honest in &sim.workers[..2] {
        assert!(!sim.registry.node(&honest.id()).unwrap().slashed);
    }
    // The slashed worker gets no more keys.
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: c1(),
        generation: Generation(0),
    };
    assert!(sim.ask(2, &request).is_empty());
}

#[test]
fn restarted_nodes_resume_from_sealed_state_without_a_new_entry_or_a_new_key() {
    let mut sim = network(4);
    let alice = sim.user();
    sim.deploy(&alice, "notes", "c1");
    sim.settle();
    sim.send(&alice, "notes", &kv::put(b"k", b"v"));
    sim.settle();
    let contract = ContractId::new("notes").unwrap();
    let checkpoint = sim.workers[0].checkpoint(&contract).unwrap();
    let head = sim.registry.head();
    let genesis = sim.genesis();

    // "Kill" every node and restore it from its sealed state; worker 0 also from its checkpoint.
    let gatekeepers: Vec<_> = sim
        .gatekeepers
        .iter()
        .map(|g| g.seal(&sim.sealer, 0, &mut rand::thread_rng()))
        .collect();
    let workers: Vec<_> = sim
        .workers
        .iter()
        .map(|w| w.seal(&sim.sealer, 0, &mut rand::thread_rng()))
        .collect();
    let keys: Vec<_> = sim
        .workers
        .iter()
        .map(|w| w.cluster_key(&c1(), CTX0).unwrap().identity().public())
        .collect();
    sim.gatekeepers = gatekeepers
        .iter()
        .map(|b| Gatekeeper::restore(&sim.sealer, &genesis, b, 0).unwrap())
        .collect();
    sim.workers = workers
        .iter()
        .map(|b| Worker::restore(&sim.sealer, &genesis, b, 0).unwrap())
        .collect();
    let registry = sim.registry.clone();
    sim.workers[0]
        .restore_checkpoint(&registry, &contract, &checkpoint)
        .unwrap();
    for (w, key) in sim.workers.iter().zip(&keys) {
        assert_eq!(
            w.cluster_key(&c1(), CTX0).unwrap().identity().public(),
            *key
        );
    }
    assert_eq!(sim.settle(), 0, "a restart submits nothing new");
    assert_eq!(sim.registry.head(), head);

    // And they carry on: the re-executed state (workers 1, 2) equals the checkpointed one (0).
    let get = sim.send(&alice, "notes", &kv::get(b"k"));
    sim.settle();
    let digests: Vec<_> = sim.registry.digests(&Subject::Command(get)).collect();
    assert_eq!(digests.len(), 3);
    assert!(digests.iter().all(|(_, d)| *d == digests[0].1));
}

/// A network of one cluster (`c1`, generation 0) plus a registered worker outside it, settled,
/// and the request for c1's first key.
fn with_outsider(seed: u64) -> (Sim, usize, ClusterKeyRequest) {
    let mut sim = network(seed);
    let outsider = sim.add_worker();
    sim.settle();
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: c1(),
        generation: Generation(0),
    };
    (sim, outsider, request)
}

#[test]
fn provisioning_refuses_strangers_forgeries_and_other_gatekeepers_requests() {
    let (sim, outsider, request) = with_outsider(5);
    let genesis = sim.genesis();
    let gk = &sim.gatekeepers[0];
    let mut rng = rand::thread_rng();
    let ask = |worker: &Worker, to, request: &ClusterKeyRequest, rng: &mut _| {
        ProvisionRequest::sign(worker.signer(), &genesis, to, request.clone(), rng).to_bytes()
    };
    // Not a member.
    let bytes = ask(&sim.workers[outsider], gk.id(), &request, &mut rng);
    assert!(matches!(
        gk.answer(&sim.registry, &bytes, &mut rng),
        Err(ProvisionError::Refused(_))
    ));
    // Addressed to the other gatekeeper.
    let bytes = ask(&sim.workers[0], sim.gatekeepers[1].id(), &request, &mut rng);
    assert_eq!(
        gk.answer(&sim.registry, &bytes, &mut rng).unwrap_err(),
        ProvisionError::WrongGatekeeper
    );
    // A flipped bit anywhere: malformed or a bad signature, never an answer.
    let good = ask(&sim.workers[0], gk.id(), &request, &mut rng);
    assert!(gk.answer(&sim.registry, &good, &mut rng).is_ok());
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 1;
        assert!(gk.answer(&sim.registry, &bad, &mut rng).is_err(), "bit {i}");
    }
    // A generation that does not exist yet.
    let future = ClusterKeyRequest {
        generation: Generation(1),
        ..request.clone()
    };
    let bytes = ask(&sim.workers[0], gk.id(), &future, &mut rng);
    assert!(gk.answer(&sim.registry, &bytes, &mut rng).is_err());

    // An answer for worker 0 is useless to worker 1: it does not open.
    let answer = gk.answer(&sim.registry, &good, &mut rng).unwrap();
    let registry = sim.registry.clone();
    let mut fresh = Worker::restore(
        &sim.sealer,
        &genesis,
        &sim.workers[1].seal(&sim.sealer, 0, &mut rng),
        0,
    )
    .unwrap();
    let err = fresh
        .provisioned(&registry, &request, &[answer])
        .unwrap_err();
    assert!(matches!(err, ProvisionError::Combine(_)), "{err}");
}

#[test]
fn a_batch_of_requests_gets_the_answers_each_would_get_alone() {
    let (sim, outsider, request) = with_outsider(7);
    let genesis = sim.genesis();
    let gk = &sim.gatekeepers[0];
    let mut rng = rand::thread_rng();
    let ask = |worker: &Worker, to, request: &ClusterKeyRequest, rng: &mut _| {
        ProvisionRequest::sign(worker.signer(), &genesis, to, request.clone(), rng).to_bytes()
    };
    let good: Vec<Vec<u8>> = (0..3)
        .map(|w| ask(&sim.workers[w], gk.id(), &request, &mut rng))
        .collect();
    let mut forged = good[1].clone();
    *forged.last_mut().unwrap() ^= 1;
    let future = ClusterKeyRequest {
        generation: Generation(1),
        ..request.clone()
    };
    // A stranger (no registered node) and a second forgery, further on.
    let stranger = keyward_crypto::IdentityKeypair::generate(&mut rng);
    let strangers =
        ProvisionRequest::sign(&stranger, &genesis, gk.id(), request.clone(), &mut rng).to_bytes();
    let mut forged_again = good[0].clone();
    forged_again[100] ^= 1;
    let mixed: Vec<Vec<u8>> = vec![
        good[0].clone(),
        ask(&sim.workers[outsider], gk.id(), &request, &mut rng),
        ask(&sim.workers[0], sim.gatekeepers[1].id(), &request, &mut rng),
        forged,
        good[1][..40].to_vec(),
        ask(&sim.workers[2], gk.id(), &future, &mut rng),
        strangers,
        forged_again,
        good[2].clone(),
    ];
    let refs: Vec<&[u8]> = mixed.iter().map(Vec::as_slice).collect();
    let together = gk.answer_all(&sim.registry, &refs, &mut rng);
    let verdicts: Vec<&str> = together
        .iter()
        .map(|a| a.as_ref().map_or_else(ProvisionError::name, |_| "answered"))
        .collect();
    assert_eq!(
        verdicts,
        [
            "answered",
            "not_member",
            "wrong_gatekeeper",
            "bad_signature",
            "malformed",
            "not_member",
            "not_a_worker",
            "bad_signature",
            "answered",
        ]
    );
    for (bytes, answer) in mixed.iter().zip(&together) {
        let alone = gk.answer(&sim.registry, bytes, &mut rng);
        assert_eq!(
            answer.as_ref().err(),
            alone.as_ref().err(),
            "same verdict alone and in a batch"
        );
    }
    // The good ones open for their workers: worker 0's and worker 2's answers give their keys.
    let registry = sim.registry.clone();
    for (w, answer) in [(0, &together[0]), (2, &together[8])] {
        let answer = answer.as_ref().unwrap().clone();
        let mut fresh = Worker::restore(
            &sim.sealer,
            &genesis,
            &sim.workers[w].seal(&sim.sealer, 0, &mut rng),
            0,
        )
        .unwrap();
        fresh.provisioned(&registry, &request, &[answer]).unwrap();
    }
    // A batch of only good requests passes as a batch.
    let refs: Vec<&[u8]> = good.iter().map(Vec::as_slice).collect();
    assert!(
        gk.answer_all(&sim.registry, &refs, &mut rng)
            .iter()
            .all(Result::is_ok)
    );
    assert!(gk.answer_all(&sim.registry, &[], &mut rng).is_empty());
}

#[test]
fn a_worker_refuses_a_key_that_is_not_the_published_one() {
    let mut sim = Sim::new(6);
    sim.add_gatekeeper();
    sim.add_worker();
    sim.settle();
    // The gatekeeper publishes a wrong cluster key before it settles the cluster itself.
    sim.cluster("c1", &[0]);
    let wrong = keyward_crypto::IdentityKeypair::generate(&mut sim.rng).public();
    let signer = clone_key(sim.gatekeepers[0].signer());
    sim.submit(
        &signer,
        &Body::ClusterKeyPublish(ClusterKeyPublish {
            cluster: c1(),
            epoch: Epoch(0),
            generation: Generation(0),
            key: wrong,
        }),
    )
    .unwrap();
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: c1(),
        generation: Generation(0),
    };
    let answers = sim.ask(0, &request);
    let registry = sim.registry.clone();
    assert_eq!(
        sim.workers[0]
            .provisioned(&registry, &request, &answers)
            .unwrap_err(),
        ProvisionError::PublishedKeyMismatch
    );
    assert!(sim.workers[0].cluster_key(&c1(), CTX0).is_none());
}

#[test]
fn sealed_state_refuses_tampering_another_role_and_another_ledger() {
    let mut sim = network(7);
    let genesis = sim.genesis();
    let mut rng = rand::thread_rng();
    let blob = sim.gatekeepers[0].seal(&sim.sealer, 0, &mut rng);
    let mut bytes = blob.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = keyward_enclave::SealedBlob::from_bytes(bytes);
    assert!(matches!(
        Gatekeeper::restore(&sim.sealer, &genesis, &tampered, 0),
        Err(StateError::Sealed(_))
    ));
    assert!(matches!(
        Worker::restore(&sim.sealer, &genesis, &blob, 0),
        Err(StateError::WrongRole { .. })
    ));
    let other = keyward_ledger::EntryHash([9; 32]);
    assert!(matches!(
        Gatekeeper::restore(&sim.sealer, &other, &blob, 0),
        Err(StateError::WrongLedger { .. })
    ));
    let _ = &mut sim;
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn request_decoding_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = ProvisionRequest::from_bytes(&bytes);
        }

        #[test]
        fn requests_round_trip(epoch in any::<u64>(), generation in any::<u64>(), seed in any::<u64>()) {
            use rand::SeedableRng;
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let worker = keyward_crypto::IdentityKeypair::generate(&mut rng);
            let gk = keyward_crypto::IdentityKeypair::generate(&mut rng).public();
            let genesis = keyward_ledger::EntryHash([3; 32]);
            let request = ClusterKeyRequest { epoch: Epoch(epoch), cluster: c1(), generation: Generation(generation) };
            let signed = ProvisionRequest::sign(&worker, &genesis, gk, request, &mut rng);
            let decoded = ProvisionRequest::from_bytes(&signed.to_bytes()).unwrap();
            prop_assert!(decoded.verify(&genesis).is_ok());
            prop_assert!(decoded.verify(&keyward_ledger::EntryHash([4; 32])).is_err());
            prop_assert_eq!(decoded, signed);
        }
    }
}

#[test]
fn a_partial_with_a_bad_proof_is_blamed_on_its_sender_and_the_good_one_still_serves() {
    let mut sim = network(8);
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: c1(),
        generation: Generation(0),
    };
    let mut answers = sim.ask(0, &request);
    // A forger seals a partial under another key, with the right aad, to worker 0.
    let forger = keyward_crypto::IdentityKeypair::generate(&mut sim.rng);
    let other = keyward_hierarchy::MasterKey::generate(&mut sim.rng);
    let share = other.classic_share(keyward_threshold::ShareIndex::new(1).unwrap());
    let partial = request.evaluate(&share, &mut sim.rng);
    // It signs the partial as evaluated under the epoch's real master public key.
    let master = sim
        .registry
        .epoch(Epoch(0))
        .unwrap()
        .record()
        .committee()
        .public_key()
        .element();
    let signed = keyward_node::provision::answer_plaintext(
        &forger,
        &sim.genesis(),
        &request,
        &master,
        &partial,
        &mut sim.rng,
    );
    let aad = keyward_node::answer_aad(&sim.genesis(), &sim.workers[0].id(), &request);
    let forged = keyward_crypto::Envelope::seal(
        &forger,
        &sim.workers[0].channel(),
        keyward_crypto::EnvelopePurpose::ClusterKey,
        &aad,
        signed.expose(),
        &mut sim.rng,
    )
    .unwrap();
    answers.insert(0, forged);
    let registry = sim.registry.clone();
    let refused = sim.workers[0]
        .provisioned(&registry, &request, &answers)
        .unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(
        refused[0],
        ProvisionError::BadAnswer {
            from: forger.public().into(),
            reason: "partial evaluation with an invalid proof",
        }
    );
    // Classic mode reveals no partial on the ledger: a partial is the whole evaluation.
    assert!(!matches!(
        sim.workers[0].step(&registry, &mut sim.rng),
        Some(keyward_node::WorkerStep::Submit(
            keyward_ledger::Body::PartialReport(_)
        ))
    ));
    let published = *sim.registry.cluster(&c1()).unwrap().key(CTX0).unwrap();
    assert_eq!(
        sim.workers[0]
            .cluster_key(&c1(), CTX0)
            .unwrap()
            .identity()
            .public(),
        published
    );
}

/// A gatekeeper killed after sealing a new MasterKey but before its epoch entry landed submits
/// the same key after the restart: the ledger never records a key the gatekeeper lost, and a
/// retry never makes a second one.
#[test]
fn a_crash_between_seal_and_submit_reuses_the_sealed_master_key() {
    use keyward_node::GatekeeperStep;
    let mut sim = Sim::new(11);
    sim.add_gatekeeper();
    let genesis = sim.genesis();
    let master_of = |sim: &Sim, body: &Body| {
        let mut scratch = Sim::new(11);
        scratch.registry = sim.registry.clone();
        let signer = clone_key(sim.gatekeepers[0].signer());
        scratch.submit(&signer, body).unwrap();
        scratch
            .registry
            .epoch(Epoch(0))
            .unwrap()
            .record()
            .committee()
            .public_key()
    };

    let Some(GatekeeperStep::SealThenSubmit(first)) =
        sim.gatekeepers[0].step(&sim.registry, &mut rand::thread_rng())
    else {
        panic!("a new MasterKey must be sealed before its entry is submitted");
    };
    let sealed = sim.gatekeepers[0].seal(&sim.sealer, 0, &mut rand::thread_rng());
    let intended = master_of(&sim, &first);
    // The crash: the entry is never submitted, and the process is gone.
    sim.gatekeepers[0] = Gatekeeper::restore(&sim.sealer, &genesis, &sealed, 0).unwrap();

    let Some(GatekeeperStep::Submit(retry)) =
        sim.gatekeepers[0].step(&sim.registry, &mut rand::thread_rng())
    else {
        panic!("the restored gatekeeper must resubmit its sealed key, not make another");
    };
    assert_eq!(master_of(&sim, &retry), intended);
    let signer = clone_key(sim.gatekeepers[0].signer());
    sim.submit(&signer, &retry).unwrap();
    sim.settle();
    assert_eq!(
        sim.gatekeepers[0].held(),
        1,
        "it holds the epoch the ledger shows"
    );
}

#[test]
fn a_state_sealed_below_the_counter_is_refused_as_rolled_back() {
    let mut sim = network(2);
    let genesis = sim.genesis();
    let mut rng = rand::thread_rng();
    let old = sim.gatekeepers[0].seal(&sim.sealer, 1, &mut rng);
    let new = sim.gatekeepers[0].seal(&sim.sealer, 2, &mut rng);
    assert!(Gatekeeper::restore(&sim.sealer, &genesis, &new, 2).is_ok());
    assert!(matches!(
        Gatekeeper::restore(&sim.sealer, &genesis, &old, 2),
        Err(StateError::Sealed(keyward_enclave::SealError::RolledBack {
            found: 1,
            minimum: 2
        }))
    ));
    let worker = sim.workers[0].seal(&sim.sealer, 1, &mut rng);
    assert!(matches!(
        Worker::restore(&sim.sealer, &genesis, &worker, 2),
        Err(StateError::Sealed(
            keyward_enclave::SealError::RolledBack { .. }
        ))
    ));
    let _ = &mut sim;
}
