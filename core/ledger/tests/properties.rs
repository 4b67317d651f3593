//! Properties of the registry over random scripts of valid and invalid entries from a fixed cast:
//! a refused entry changes nothing; the same entries always give the same registry, however they
//! are split; height and sequence numbers never go back.
#![allow(clippy::unwrap_used)] // tests

mod support;

use keyward_crypto::IdentityKeypair;
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
            Just(Action::RegisterGatekeeper),
            Just(Action::RegisterWorker),
            Just(Action::DeregisterGatekeeper),
            Just(Action::DeregisterWorker),
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
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_registry_is_a_deterministic_function_of_the_accepted_entries(
        script in proptest::collection::vec(step(), 1..24),
        split in 0usize..24,
    ) {
        let mut net = Net::new(7);
        // Member 0 of the cast is a council member, to exercise role conflicts.
        let mut cast: Vec<IdentityKeypair> = vec![IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new(*net.council[0].seed().expose()))];
        cast.extend((1..CAST).map(|_| net.key()));
        let mut accepted = Vec::new();
        for (who, action, tamper) in script {
            let author = &cast[who];
            let body = match action {
                Action::RegisterGatekeeper => net.gatekeeper_body(author),
                Action::RegisterWorker => net.worker_body(author),
                Action::DeregisterGatekeeper => Body::GatekeeperDeregister,
                Action::DeregisterWorker => Body::WorkerDeregister,
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
