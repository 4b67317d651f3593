//! Properties of the registry over random scripts of valid and invalid entries from a fixed cast
//! (nodes, epochs, clusters and their keys, contract deployments, council proposals and
//! approvals; member 0 of the cast is a council member): a refused entry changes nothing; the same entries always give the same registry, however they
//! are split; height and sequence numbers never go back.
#![allow(clippy::unwrap_used)] // tests

mod support;

use keyward_crypto::{ChannelKeypair, IdentityKeypair};
use keyward_hierarchy::{ClusterId, ClusterKey, ContractId, Epoch, Generation, MasterKey};
use keyward_ledger::*;
use proptest::prelude::*;
use support::*;

const CAST: usize = 5;

#[derive(Debug, Clone, Copy)]
enum Action {
    RegisterGatekeeper,
    RegisterWorker,
    DeregisterGatekeeper,
    DeregisterWorker,
    /// Create epoch 0 with this cast member as the second founder (alone if it is the author).
    CreateEpoch(usize),
    /// Hand epoch 0's secret to this cast member.
    Handoff(usize),
    AcceptEpoch,
    /// Form cluster `c{n}` with this cast member.
    CreateCluster(usize, usize),
    /// Add this cast member to cluster `c{n}`.
    AddMember(usize, usize),
    /// Publish cluster `c{n}`'s key for epoch 0, generation 0 (a wrong key if the flag is set).
    PublishClusterKey(usize, bool),
    /// Deploy contract `k{n}` to cluster `c{m}`.
    Deploy(usize, usize),
    /// Propose removing this cast member as a worker.
    ProposeRemoval(usize),
    /// Approve the last accepted proposal (or a made-up one if there is none).
    Approve,
}

fn cluster(n: usize) -> ClusterId {
    ClusterId::new(&format!("c{n}")).unwrap()
}

#[derive(Debug, Clone, Copy)]
enum Tamper {
    None,
    Height,
    Parent,
    OldSeq,
    SkipSeq,
}

fn step() -> impl Strategy<Value = (usize, Action, Tamper)> {
    (
        0..CAST,
        prop_oneof![
            3 => Just(Action::RegisterGatekeeper),
            1 => Just(Action::RegisterWorker),
            1 => Just(Action::DeregisterGatekeeper),
            1 => Just(Action::DeregisterWorker),
            2 => (0..CAST).prop_map(Action::CreateEpoch),
            3 => (0..CAST).prop_map(Action::Handoff),
            3 => Just(Action::AcceptEpoch),
            2 => (0..2usize, 0..CAST).prop_map(|(n, w)| Action::CreateCluster(n, w)),
            1 => (0..2usize, 0..CAST).prop_map(|(n, w)| Action::AddMember(n, w)),
            2 => (0..2usize, any::<bool>()).prop_map(|(n, bad)| Action::PublishClusterKey(n, bad)),
            1 => (0..2usize, 0..2usize).prop_map(|(k, c)| Action::Deploy(k, c)),
            1 => (0..CAST).prop_map(Action::ProposeRemoval),
            1 => Just(Action::Approve),
        ],
        prop_oneof![
            4 => Just(Tamper::None),
            1 => Just(Tamper::Height),
            1 => Just(Tamper::Parent),
            1 => Just(Tamper::OldSeq),
            1 => Just(Tamper::SkipSeq),
        ],
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_registry_is_a_deterministic_function_of_the_accepted_entries(
        script in proptest::collection::vec(step(), 1..40),
        split in 0usize..40,
    ) {
        let mut net = Net::new(7);
        // Member 0 of the cast is a council member, to exercise role conflicts.
        let mut cast: Vec<IdentityKeypair> = vec![IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new(*net.council[0].seed().expose()))];
        cast.extend((1..CAST).map(|_| net.key()));
        let channels: Vec<_> = (0..CAST).map(|_| ChannelKeypair::generate(&mut net.rng)).collect();
        let master = MasterKey::generate(&mut net.rng);
        let genesis = net.registry.genesis().hash();
        let mut accepted = Vec::new();
        let mut last_proposal = EntryHash([0x5a; 32]);
        // Two admitted gatekeepers to start with, so that epoch entries often apply,
        // and a worker.
        let prologue = [
            (1, Action::RegisterGatekeeper, Tamper::None),
            (2, Action::RegisterGatekeeper, Tamper::None),
            (3, Action::RegisterWorker, Tamper::None),
        ];
        for (who, action, tamper) in prologue.into_iter().chain(script) {
            // Council and user actions come from the council member most of the time.
            let by_council = matches!(
                action,
                Action::CreateCluster(..) | Action::AddMember(..) | Action::Deploy(..)
                    | Action::ProposeRemoval(_) | Action::Approve
            );
            let who = if by_council && who < 3 { 0 } else { who };
            let author = &cast[who];
            let member = |i: usize| (cast[i].public(), channels[i].public());
            let stake = Params::default().min_gatekeeper_stake;
            let body = match action {
                Action::RegisterGatekeeper => Body::GatekeeperRegister(net.registration_for(
                    author,
                    channels[who].public(),
                    Role::Gatekeeper { admitted: false },
                    "10.0.0.1:9100",
                    stake,
                )),
                Action::RegisterWorker => net.worker_body(author),
                Action::DeregisterGatekeeper => Body::GatekeeperDeregister,
                Action::DeregisterWorker => Body::WorkerDeregister,
                Action::CreateEpoch(with) => {
                    let others: Vec<_> = (with != who).then(|| member(with)).into_iter().collect();
                    Body::EpochCreate(Box::new(
                        EpochCreate::new(author, &genesis, Epoch(0), &master, &others, None, &mut net.rng)
                            .unwrap(),
                    ))
                }
                Action::Handoff(to) => Body::EpochHandoff(
                    EpochHandoff::new(author, &genesis, member(to), &[(Epoch(0), &master)], &mut net.rng)
                        .unwrap(),
                ),
                Action::AcceptEpoch => Body::EpochAccept(EpochAccept {
                    epochs: [Epoch(0)].into(),
                }),
                Action::CreateCluster(n, w) => Body::ClusterCreate(ClusterCreate {
                    cluster: cluster(n),
                    members: [cast[w].public()].into(),
                }),
                Action::AddMember(n, w) => Body::ClusterAddMember(ClusterAddMember {
                    cluster: cluster(n),
                    worker: cast[w].public(),
                }),
                Action::PublishClusterKey(n, bad) => {
                    let key = ClusterKey::derive(&master, Epoch(0), cluster(n), Generation(0));
                    let key = if bad { cast[n].public() } else { key.identity().public() };
                    Body::ClusterKeyPublish(ClusterKeyPublish {
                        cluster: cluster(n),
                        epoch: Epoch(0),
                        generation: Generation(0),
                        key,
                    })
                }
                Action::Deploy(k, c) => Body::ContractDeploy(ContractDeploy {
                    contract: ContractId::new(&format!("k{k}")).unwrap(),
                    cluster: cluster(c),
                    code: CodeId::new("kv-store").unwrap(),
                    init: Vec::new(),
                }),
                Action::ProposeRemoval(w) => Body::CouncilPropose(Box::new(Proposal {
                    ttl: 20,
                    action: keyward_ledger::Action::RemoveWorker { worker: cast[w].public() },
                })),
                Action::Approve => Body::CouncilApprove(Approval { proposal: last_proposal }),
            };
            let mut p = net.position(author);
            match tamper {
                Tamper::None => {}
                Tamper::Height => p.height += 1,
                Tamper::Parent => p.parent = EntryHash([0xee; 32]),
                Tamper::OldSeq => p.seq = p.seq.wrapping_sub(1),
                Tamper::SkipSeq => p.seq += 1,
            }
            let entry = net.sign_at(author, p, &body);
            let before = net.registry.clone();
            let seqs: Vec<u64> = cast.iter().map(|k| before.next_seq(&k.public())).collect();
            match net.submit_entry(entry.clone()) {
                Ok(applied) => {
                    prop_assert!(matches!(tamper, Tamper::None));
                    if matches!(action, Action::ProposeRemoval(_)) {
                        last_proposal = applied.hash;
                    }
                    prop_assert_eq!(applied.height, before.next_height());
                    prop_assert_eq!(net.registry.next_height(), before.next_height() + 1);
                    accepted.push(entry);
                }
                Err(_) => prop_assert_eq!(&net.registry, &before),
            }
            for (k, old) in cast.iter().zip(seqs) {
                prop_assert!(net.registry.next_seq(&k.public()) >= old);
            }
        }
        // Replaying the accepted entries from genesis, in two runs split anywhere, gives the
        // same registry.
        let mut replay = Registry::from_genesis(&net.genesis, &net.genesis.hash()).unwrap();
        let split = split.min(accepted.len());
        for part in [&accepted[..split], &accepted[split..]] {
            for entry in part {
                let bytes = entry.as_bytes().to_vec();
                let verified = replay.genesis().verify(Entry::from_bytes(bytes).unwrap()).unwrap();
                replay.apply(verified).unwrap();
            }
        }
        prop_assert_eq!(&replay, &net.registry);
    }
}
