//! The seed's leak table, tested as behaviour: a leaked key opens exactly what the seed says
//! it opens, and nothing above or beside it.
//!
//! | leaked      | opens                                  | must not open                                  |
//! |-------------|----------------------------------------|------------------------------------------------|
//! | ContractKey | its contract's state and inputs        | sibling contracts; its cluster's key           |
//! | ClusterKey  | every contract of its cluster          | other clusters; the MasterKey; next generation |
//! | (any)       | data of its own epoch and generation   | data of the next epoch or generation           |
#![allow(clippy::unwrap_used)] // test helpers

use keyward_crypto::{EnvelopePurpose, IdentityKeypair};
use keyward_hierarchy::*;
use keyward_threshold::{Committee, KeyShare, PartialFault, SecretKey, ShareIndex};
use rand::{SeedableRng, rngs::StdRng};

fn cid(s: &str) -> ClusterId {
    ClusterId::new(s).unwrap()
}
fn kid(s: &str) -> ContractId {
    ContractId::new(s).unwrap()
}

struct World {
    rng: StdRng,
    master: MasterKey,
    user: IdentityKeypair,
}

impl World {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let master = MasterKey::generate(&mut rng);
        let user = IdentityKeypair::generate(&mut rng);
        Self { rng, master, user }
    }
    fn cluster(&self, epoch: u64, cluster: &str, generation: u64) -> ClusterKey {
        ClusterKey::derive(
            &self.master,
            Epoch(epoch),
            cid(cluster),
            Generation(generation),
        )
    }
    /// A user's input and a state record written by `contract` of `cluster`.
    fn data(
        &mut self,
        cluster: &ClusterKey,
        contract: &str,
    ) -> (keyward_crypto::Envelope, Vec<u8>) {
        let key = ContractKey::derive(cluster, kid(contract));
        let public = ContractPublicKeys::certify(cluster, &key, &mut self.rng);
        let input = public
            .encrypt_input(
                &cluster.identity().public(),
                &self.user,
                b"secret bid: 42",
                &mut self.rng,
            )
            .unwrap();
        let state = key.state().encrypt(b"bids", 1, b"alice=42").unwrap();
        (input, state)
    }
}

/// Everything an attacker holding `key` can try on a contract's data: its own state cipher and
/// its own X25519 key (ignoring the context check, as an attacker would).
fn opens(key: &ContractKey, (input, state): &(keyward_crypto::Envelope, Vec<u8>)) -> bool {
    let state_opens = key.state().decrypt(b"bids", 1, state).is_ok();
    let input_opens = key
        .channel()
        .open(input, EnvelopePurpose::ContractInput)
        .is_ok();
    assert_eq!(
        state_opens, input_opens,
        "state and inputs open together or not at all"
    );
    state_opens
}

#[test]
fn a_leaked_contract_key_opens_only_its_contract() {
    let mut w = World::new(1);
    let cluster = w.cluster(0, "c1", 0);
    let auction = w.data(&cluster, "auction");
    let kv = w.data(&cluster, "kv");
    let leaked = ContractKey::derive(&cluster, kid("auction"));
    assert!(opens(&leaked, &auction));
    assert!(!opens(&leaked, &kv));
    // Nor does it open what is sent to the cluster itself (e.g. a provisioning envelope).
    let to_cluster = keyward_crypto::Envelope::seal(
        &w.user,
        &cluster.channel().public(),
        EnvelopePurpose::ClusterKey,
        b"",
        b"k",
        &mut w.rng,
    )
    .unwrap();
    assert!(
        leaked
            .channel()
            .open(&to_cluster, EnvelopePurpose::ClusterKey)
            .is_err()
    );
    assert!(
        cluster
            .channel()
            .open(&to_cluster, EnvelopePurpose::ClusterKey)
            .is_ok()
    );
}

#[test]
fn a_leaked_cluster_key_opens_its_cluster_and_no_other() {
    let mut w = World::new(2);
    let c1 = w.cluster(0, "c1", 0);
    let c2 = w.cluster(0, "c2", 0);
    let c1_data = [w.data(&c1, "auction"), w.data(&c1, "kv")];
    let c2_data = w.data(&c2, "auction");
    for (name, data) in ["auction", "kv"].iter().zip(&c1_data) {
        assert!(
            opens(&ContractKey::derive(&c1, kid(name)), data),
            "{name} of its own cluster"
        );
    }
    // Same contract id in another cluster: different keys, nothing opens.
    assert!(!opens(&ContractKey::derive(&c1, kid("auction")), &c2_data));
    assert_ne!(c1.identity().public(), c2.identity().public());
    assert_ne!(c1.channel().public(), c2.channel().public());
}

#[test]
fn a_cluster_key_cannot_act_as_the_master_key() {
    // The only thing the MasterKey does is evaluate ClusterKey requests under S_e. A holder of
    // cluster c1's key (or of any number of cluster keys) cannot answer c2's request in a way
    // a worker accepts: the DLEQ proof ties every answer to S_e.
    let mut w = World::new(3);
    let c1 = w.cluster(0, "c1", 0);
    let committee = w
        .master
        .classic_committee([ShareIndex::new(1).unwrap()])
        .unwrap();
    let record = EpochRecord::new(
        Epoch(0),
        committee.clone(),
        [(ShareIndex::new(1).unwrap(), w.user.public())].into(),
    )
    .unwrap();
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: cid("c2"),
        generation: Generation(0),
    };
    // The attacker's best guess at a key: anything it can derive from the leaked cluster key.
    let guess = SecretKey::derive(c1.seed(), b"attacker").unwrap();
    let forged = request.evaluate(
        &KeyShare::new(ShareIndex::new(1).unwrap(), &guess),
        &mut w.rng,
    );
    let element = keyward_threshold::Element::from_input(&request.input()).unwrap();
    assert_eq!(
        committee.check_partial(&element, &forged),
        Err(PartialFault::BadProof)
    );
    assert!(request.finish(&record, &[forged]).is_err());
}

#[test]
fn keys_of_one_epoch_or_generation_do_not_open_the_next() {
    let mut w = World::new(4);
    let old = w.cluster(0, "c1", 0);
    let next_generation = w.cluster(0, "c1", 1);
    let rotated_master = MasterKey::generate(&mut w.rng);
    let next_epoch = ClusterKey::derive(&rotated_master, Epoch(1), cid("c1"), Generation(0));
    let same_master_next_epoch = w.cluster(1, "c1", 0);

    let old_key = ContractKey::derive(&old, kid("kv"));
    for newer in [&next_generation, &next_epoch, &same_master_next_epoch] {
        let data = w.data(newer, "kv");
        assert!(opens(&ContractKey::derive(newer, kid("kv")), &data));
        assert!(!opens(&old_key, &data), "old key opened {:?}", newer);
    }
    // And the other way round: the new keys do not open old data either.
    let old_data = w.data(&old, "kv");
    assert!(!opens(
        &ContractKey::derive(&next_generation, kid("kv")),
        &old_data
    ));
}

#[test]
fn an_input_for_one_context_is_refused_by_another() {
    let mut w = World::new(5);
    let c = w.cluster(0, "c1", 0);
    let (input, _) = w.data(&c, "auction");
    let kv = ContractKey::derive(&c, kid("kv"));
    assert!(matches!(
        kv.open_input(&input),
        Err(InputError::WrongContext(_))
    ));
    let auction = ContractKey::derive(&c, kid("auction"));
    let opened = auction.open_input(&input).unwrap();
    assert_eq!(&opened.plaintext[..], b"secret bid: 42");
    assert_eq!(opened.sender, w.user.public());
}

#[test]
fn forged_contract_certificates_are_refused_by_users() {
    let mut w = World::new(6);
    let c = w.cluster(0, "c1", 0);
    let trusted = c.identity().public();
    let key = ContractKey::derive(&c, kid("kv"));
    let mut public = ContractPublicKeys::certify(&c, &key, &mut w.rng);
    assert!(
        public
            .encrypt_input(&trusted, &w.user, b"x", &mut w.rng)
            .is_ok()
    );
    // Keys certified by a cluster key other than the trusted one: refused, even though the
    // certificate itself verifies.
    let impostor = w.cluster(0, "impostor", 0);
    let self_certified = ContractPublicKeys::certify(
        &impostor,
        &ContractKey::derive(&impostor, kid("kv")),
        &mut w.rng,
    );
    assert!(self_certified.verify().is_ok());
    assert_eq!(
        self_certified
            .encrypt_input(&trusted, &w.user, b"x", &mut w.rng)
            .unwrap_err(),
        InputError::Uncertified
    );
    // A swapped X25519 key under the real cluster's certificate: refused.
    public.x25519 = keyward_crypto::ChannelKeypair::generate(&mut w.rng).public();
    assert_eq!(
        public
            .encrypt_input(&trusted, &w.user, b"x", &mut w.rng)
            .unwrap_err(),
        InputError::Uncertified
    );
}

#[test]
fn committee_of_another_master_refuses_classic_answers() {
    let mut w = World::new(7);
    let other = MasterKey::generate(&mut w.rng);
    let committee: Committee = other
        .classic_committee([ShareIndex::new(1).unwrap()])
        .unwrap();
    let record = EpochRecord::new(
        Epoch(0),
        committee,
        [(ShareIndex::new(1).unwrap(), w.user.public())].into(),
    )
    .unwrap();
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: cid("c1"),
        generation: Generation(0),
    };
    let answer = request.evaluate(
        &w.master.classic_share(ShareIndex::new(1).unwrap()),
        &mut w.rng,
    );
    assert!(request.finish(&record, &[answer]).is_err());
}
