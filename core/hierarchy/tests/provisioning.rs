//! ClusterKey provisioning in classic and threshold mode gives the same keys, and the epoch
//! checksum chain commits to every epoch.
#![allow(clippy::unwrap_used)] // test helpers

use std::collections::BTreeMap;

use keyward_crypto::{ChainId, IdentityKeypair, SecretBytes};
use keyward_hierarchy::*;
use keyward_threshold::{PartialFault, ShareIndex};
use rand::{SeedableRng, rngs::StdRng};

fn idx(i: u16) -> ShareIndex {
    ShareIndex::new(i).unwrap()
}

/// An epoch record whose gatekeepers are throwaway identities.
fn record(epoch: u64, committee: keyward_threshold::Committee, rng: &mut StdRng) -> EpochRecord {
    let gatekeepers = committee
        .members()
        .map(|i| (i, IdentityKeypair::generate(rng).public()))
        .collect();
    EpochRecord::new(Epoch(epoch), committee, gatekeepers).unwrap()
}

#[test]
fn classic_and_threshold_provisioning_give_the_directly_derived_key() {
    let mut rng = StdRng::seed_from_u64(10);
    let master = MasterKey::generate(&mut rng);
    let cluster = ClusterId::new("c1").unwrap();
    let direct = ClusterKey::derive(&master, Epoch(3), cluster.clone(), Generation(2));
    let request = ClusterKeyRequest {
        epoch: Epoch(3),
        cluster: cluster.clone(),
        generation: Generation(2),
    };

    // Classic: any one of three gatekeepers, each holding the whole key.
    let classic = record(
        3,
        master.classic_committee([idx(1), idx(2), idx(3)]).unwrap(),
        &mut rng,
    );
    for g in 1..=3 {
        let partial = request.evaluate(&master.classic_share(idx(g)), &mut rng);
        let (key, refused) = request.finish(&classic, &[partial]).unwrap();
        assert!(refused.is_empty());
        assert_eq!(key.seed(), direct.seed());
        assert_eq!(key.identity().public(), direct.identity().public());
        assert_eq!(key.channel().public(), direct.channel().public());
    }

    // Threshold 2-of-3, one gatekeeper down and one answering with a wrong partial.
    let (committee, shares) = master.deal(2, 3, &mut rng).unwrap();
    let threshold = record(3, committee, &mut rng);
    let mut wrong = request.evaluate(&shares[0], &mut rng);
    wrong.evaluated = request.evaluate(&shares[2], &mut rng).evaluated;
    let good = request.evaluate(&shares[2], &mut rng);
    assert!(
        request.finish(&threshold, &[wrong, good]).is_err(),
        "one valid partial is not enough"
    );
    let partials = [wrong, request.evaluate(&shares[1], &mut rng), good];
    let (key, refused) = request.finish(&threshold, &partials).unwrap();
    assert_eq!(key.seed(), direct.seed());
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].index, refused[0].fault),
        (idx(1), PartialFault::BadProof)
    );
}

#[test]
fn gatekeepers_evaluate_exactly_what_the_request_names() {
    // The request is public: a gatekeeper's answer to cluster c1 is useless for cluster c2, so a
    // worker cannot obtain another cluster's (or generation's) key by asking for its own.
    let mut rng = StdRng::seed_from_u64(13);
    let master = MasterKey::generate(&mut rng);
    let classic = record(0, master.classic_committee([idx(1)]).unwrap(), &mut rng);
    let mine = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: ClusterId::new("c1").unwrap(),
        generation: Generation(0),
    };
    let answer = mine.evaluate(&master.classic_share(idx(1)), &mut rng);
    for other in [
        ClusterKeyRequest {
            cluster: ClusterId::new("c2").unwrap(),
            ..mine.clone()
        },
        ClusterKeyRequest {
            generation: Generation(1),
            ..mine.clone()
        },
    ] {
        assert!(other.finish(&classic, &[answer]).is_err());
    }
    // And the answer is checked against the committee of the request's own epoch.
    let next = record(1, master.classic_committee([idx(1)]).unwrap(), &mut rng);
    assert_eq!(
        mine.finish(&next, &[answer]).unwrap_err(),
        ClusterKeyError::WrongEpoch {
            request: Epoch(0),
            record: Epoch(1)
        }
    );
}

#[test]
fn sealed_seed_rebuilds_the_same_cluster_and_contract_keys() {
    let mut rng = StdRng::seed_from_u64(11);
    let master = MasterKey::generate(&mut rng);
    let key = ClusterKey::derive(
        &master,
        Epoch(0),
        ClusterId::new("c").unwrap(),
        Generation(0),
    );
    let again = ClusterKey::from_seed(
        Epoch(0),
        ClusterId::new("c").unwrap(),
        Generation(0),
        SecretBytes::new(*key.seed().expose()),
    );
    let a = ContractKey::derive(&key, ContractId::new("kv").unwrap());
    let b = ContractKey::derive(&again, ContractId::new("kv").unwrap());
    assert_eq!(a.public_keys(), b.public_keys());
    assert!(!format!("{key:?}{a:?}").contains(&hex::encode(&key.seed().expose()[..8])));
}

#[test]
fn checksum_chain_commits_to_every_epoch() {
    let mut rng = StdRng::seed_from_u64(12);
    let chain = ChainId::new("keyward-devnet").unwrap();
    let gatekeepers: Vec<_> = (0..3)
        .map(|_| IdentityKeypair::generate(&mut rng).public())
        .collect();
    let members = |n: u16| -> BTreeMap<ShareIndex, _> {
        (1..=n)
            .map(|i| (idx(i), gatekeepers[usize::from(i) - 1]))
            .collect()
    };
    let m0 = MasterKey::generate(&mut rng);
    let m1 = MasterKey::generate(&mut rng);
    let r0 = EpochRecord::new(
        Epoch(0),
        m0.classic_committee([idx(1), idx(2)]).unwrap(),
        members(2),
    )
    .unwrap();
    let (committee1, _) = m1.deal(2, 3, &mut rng).unwrap();
    let r1 = EpochRecord::new(Epoch(1), committee1, members(3)).unwrap();
    let records = [r0.clone(), r1.clone()];
    let published = EpochChecksum::genesis(&chain).next(&r0).next(&r1);
    let checksums = verify_chain(&chain, &records, &published).unwrap();
    assert_eq!(checksums.len(), 2);

    // A substituted epoch 0 (another master key), another chain id, a reordering, or a
    // gatekeeper list that does not match the committee are all refused.
    let forged = EpochRecord::new(
        Epoch(0),
        MasterKey::generate(&mut rng)
            .classic_committee([idx(1), idx(2)])
            .unwrap(),
        members(2),
    )
    .unwrap();
    assert_eq!(
        verify_chain(&chain, &[forged, r1.clone()], &published),
        Err(ChainError::Mismatch { last: Epoch(1) })
    );
    assert!(verify_chain(&ChainId::new("other").unwrap(), &records, &published).is_err());
    assert_eq!(
        verify_chain(&chain, &[r1.clone(), r0.clone()], &published),
        Err(ChainError::NotConsecutive {
            expected: Epoch(0),
            found: Epoch(1)
        })
    );
    assert_eq!(
        verify_chain(&chain, &[], &published),
        Err(ChainError::Empty)
    );
    assert!(
        EpochRecord::new(
            Epoch(0),
            m0.classic_committee([idx(1)]).unwrap(),
            members(2)
        )
        .is_err()
    );
}

proptest::proptest! {
    #[test]
    fn contract_context_round_trips_and_decoder_never_panics(
        epoch in proptest::prelude::any::<u64>(), generation in proptest::prelude::any::<u64>(),
        cluster in "[a-zA-Z0-9._-]{1,64}", contract in "[a-zA-Z0-9._-]{1,64}",
        garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
    ) {
        let ctx = ContractContext {
            epoch: Epoch(epoch),
            cluster: ClusterId::new(&cluster).unwrap(),
            generation: Generation(generation),
            contract: ContractId::new(&contract).unwrap(),
        };
        proptest::prop_assert_eq!(ContractContext::from_bytes(&ctx.to_bytes()).unwrap(), ctx);
        let _ = ContractContext::from_bytes(&garbage);
    }
}

#[test]
fn contract_context_decoder_is_strict() {
    let ctx = ContractContext {
        epoch: Epoch(1),
        cluster: ClusterId::new("c").unwrap(),
        generation: Generation(2),
        contract: ContractId::new("kv").unwrap(),
    };
    let bytes = ctx.to_bytes();
    assert_eq!(ContractContext::from_bytes(&bytes).unwrap(), ctx);
    for cut in 0..bytes.len() {
        assert!(ContractContext::from_bytes(&bytes[..cut]).is_err());
    }
    let mut extra = bytes.clone();
    extra.push(0);
    assert!(ContractContext::from_bytes(&extra).is_err());
}
