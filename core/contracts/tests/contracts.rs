//! The built-in contracts and their execution: behaviour of each call, refusals that change
//! nothing, and the determinism the ledger's majority check rests on.
#![allow(clippy::unwrap_used)] // tests

use keyward_contracts::*;
use keyward_crypto::{
    ChannelKeypair, Envelope, EnvelopePurpose, IdentityKeypair, IdentityPublicKey,
};
use keyward_hierarchy::{
    ClusterId, ClusterKey, ContractId, ContractKey, ContractPublicKeys, Epoch, Generation,
    MasterKey,
};
use rand::{SeedableRng, rngs::StdRng};

fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

fn user(rng: &mut StdRng) -> (IdentityKeypair, ChannelKeypair) {
    (
        IdentityKeypair::generate(rng),
        ChannelKeypair::generate(rng),
    )
}

mod kv_store {
    use super::*;

    #[test]
    fn each_sender_sees_only_its_own_keys() {
        let mut rng = rng(1);
        let (alice, bob) = (
            IdentityKeypair::generate(&mut rng).public(),
            IdentityKeypair::generate(&mut rng).public(),
        );
        let code = Builtin::KvStore;
        let mut state = code.init(b"{}").unwrap();
        assert_eq!(
            code.call(&mut state, &alice, &kv::put(b"k", b"alice"))
                .unwrap(),
            Vec::<u8>::new()
        );
        assert_eq!(
            code.call(&mut state, &alice, &kv::get(b"k")).unwrap(),
            [&[1, 0, 0, 0, 5][..], b"alice"].concat()
        );
        assert_eq!(
            code.call(&mut state, &bob, &kv::get(b"k")).unwrap(),
            vec![0, 0, 0, 0, 0]
        );
        code.call(&mut state, &bob, &kv::put(b"k", b"bob")).unwrap();
        assert_eq!(
            code.call(&mut state, &alice, &kv::delete(b"k")).unwrap(),
            vec![1]
        );
        assert_eq!(
            code.call(&mut state, &alice, &kv::delete(b"k")).unwrap(),
            vec![0]
        );
        assert_eq!(
            code.call(&mut state, &bob, &kv::get(b"k")).unwrap(),
            [&[1, 0, 0, 0, 3][..], b"bob"].concat()
        );
    }

    #[test]
    fn malformed_calls_are_refused_and_change_nothing() {
        let mut rng = rng(2);
        let alice = IdentityKeypair::generate(&mut rng).public();
        let code = Builtin::KvStore;
        let mut state = code.init(b"").unwrap();
        code.call(&mut state, &alice, &kv::put(b"k", b"v")).unwrap();
        let before = state.clone();
        let mut trailing = kv::get(b"k");
        trailing.push(0);
        for call in [
            vec![],
            vec![9, 0, 0],
            trailing,
            kv::put(b"k", b"v")[..5].to_vec(),
        ] {
            let err = code.call(&mut state, &alice, &call).unwrap_err();
            assert!(matches!(err, ContractError::Malformed(_)), "{err}");
            assert_eq!(state, before);
        }
        assert!(code.init(b"x").is_err());
    }
}

mod sealed_auction {
    use super::*;

    fn setup(seed: u64) -> (Builtin, State, IdentityPublicKey, Vec<IdentityPublicKey>) {
        let mut rng = rng(seed);
        let owner = IdentityKeypair::generate(&mut rng).public();
        let mut bidders: Vec<_> = (0..3)
            .map(|_| IdentityKeypair::generate(&mut rng).public())
            .collect();
        bidders.sort();
        let code = Builtin::SealedAuction;
        let state = code.init(&owner.to_bytes()).unwrap();
        (code, state, owner, bidders)
    }

    fn result(winner: &IdentityPublicKey, amount: u64) -> Vec<u8> {
        [&[1][..], &winner.to_bytes(), &amount.to_be_bytes()].concat()
    }

    #[test]
    fn the_owner_closes_and_only_the_winning_bid_is_revealed() {
        let (code, mut state, owner, b) = setup(3);
        code.call(&mut state, &b[0], &auction::bid(50)).unwrap();
        code.call(&mut state, &b[1], &auction::bid(70)).unwrap();
        code.call(&mut state, &b[2], &auction::bid(60)).unwrap();
        code.call(&mut state, &b[2], &auction::bid(80)).unwrap(); // replaces its bid
        assert_eq!(
            code.call(&mut state, &b[0], &auction::result())
                .unwrap_err(),
            ContractError::Refused("the auction is still open")
        );
        assert!(matches!(
            code.call(&mut state, &b[0], &auction::close()).unwrap_err(),
            ContractError::NotAllowed(_)
        ));
        assert_eq!(
            code.call(&mut state, &owner, &auction::close()).unwrap(),
            result(&b[2], 80)
        );
        let before = state.clone();
        assert!(code.call(&mut state, &b[1], &auction::bid(99)).is_err());
        assert!(code.call(&mut state, &owner, &auction::close()).is_err());
        assert_eq!(state, before);
        assert_eq!(
            code.call(&mut state, &b[1], &auction::result()).unwrap(),
            result(&b[2], 80)
        );
    }

    #[test]
    fn a_tie_goes_to_the_smaller_identity_and_no_bids_means_no_winner() {
        let (code, mut state, owner, b) = setup(4);
        code.call(&mut state, &b[2], &auction::bid(10)).unwrap();
        code.call(&mut state, &b[1], &auction::bid(10)).unwrap();
        assert_eq!(
            code.call(&mut state, &owner, &auction::close()).unwrap(),
            result(&b[1], 10)
        );
        let (code, mut state, owner, _) = setup(5);
        assert_eq!(
            code.call(&mut state, &owner, &auction::close()).unwrap(),
            vec![0; 41]
        );
        assert!(code.init(&[1; 31]).is_err());
    }
}

mod execution {
    use super::*;

    /// The ContractKey every worker of the cluster derives, and the certificate users see.
    fn keys(
        master: &MasterKey,
        generation: u64,
        rng: &mut StdRng,
    ) -> (ContractKey, ContractPublicKeys) {
        let cluster = ClusterKey::derive(
            master,
            Epoch(0),
            ClusterId::new("c1").unwrap(),
            Generation(generation),
        );
        let key = ContractKey::derive(&cluster, ContractId::new("kv").unwrap());
        let cert = ContractPublicKeys::certify(&cluster, &key, rng);
        (key, cert)
    }

    fn command(
        cert: &ContractPublicKeys,
        user: &(IdentityKeypair, ChannelKeypair),
        call: Vec<u8>,
        rng: &mut StdRng,
    ) -> Envelope {
        let plaintext = Call {
            reply_to: user.1.public(),
            call: call.into(),
        }
        .to_bytes();
        cert.encrypt_input(&cert.cluster_key, &user.0, &plaintext, rng)
            .unwrap()
    }

    #[test]
    fn every_worker_computes_the_same_digest_and_the_user_reads_the_reply() {
        let mut rng = rng(10);
        let master = MasterKey::generate(&mut rng);
        let (_, cert) = keys(&master, 0, &mut rng);
        let mut workers: Vec<_> = (0..3)
            .map(|_| Instance::deploy(Builtin::KvStore, keys(&master, 0, &mut rng).0, b"").unwrap())
            .collect();
        let alice = user(&mut rng);
        let inputs = [kv::put(b"k", b"secret"), kv::get(b"k"), vec![7]];
        for (n, call) in inputs.into_iter().enumerate() {
            let id = [n as u8; 32];
            let input = command(&cert, &alice, call, &mut rng);
            let runs: Vec<_> = workers
                .iter_mut()
                .map(|w| w.execute(&id, &input, &mut rng))
                .collect();
            assert!(runs.iter().all(|r| r.digest == runs[0].digest));
            let reply = open_reply(&alice.1, &cert, &id, runs[0].reply.as_ref().unwrap()).unwrap();
            match n {
                0 => assert_eq!((reply.status, reply.body.len()), (0, 0)),
                1 => assert_eq!(
                    reply.body.as_slice(),
                    [&[1, 0, 0, 0, 6][..], b"secret"].concat()
                ),
                _ => {
                    assert_eq!(
                        runs[0].outcome,
                        Outcome::Refused(ContractError::Malformed("kv-store call"))
                    );
                    assert_eq!(reply.status, 1);
                }
            }
            // The reply opens only for its command, from the contract's key, with the user's key.
            assert_eq!(
                open_reply(
                    &alice.1,
                    &cert,
                    &[0xee; 32],
                    runs[0].reply.as_ref().unwrap()
                )
                .unwrap_err(),
                ReplyError::WrongContext
            );
            let eve = ChannelKeypair::generate(&mut rng);
            assert!(open_reply(&eve, &cert, &id, runs[0].reply.as_ref().unwrap()).is_err());
        }
        assert!(
            workers
                .iter()
                .all(|w| w.sealed_state() == workers[0].sealed_state())
        );
        // A worker that diverged (ran one more command) publishes another digest.
        let input = command(&cert, &alice, kv::put(b"x", b"y"), &mut rng);
        workers[2].execute(&[9; 32], &input, &mut rng);
        let input = command(&cert, &alice, kv::get(b"k"), &mut rng);
        let honest = workers[0].execute(&[10; 32], &input, &mut rng);
        let faulty = workers[2].execute(&[10; 32], &input, &mut rng);
        assert_ne!(honest.digest, faulty.digest);
    }

    #[test]
    fn an_unreadable_command_changes_nothing_and_digests_alike() {
        let mut rng = rng(11);
        let master = MasterKey::generate(&mut rng);
        let (_, cert) = keys(&master, 0, &mut rng);
        let (_, other) = keys(&master, 1, &mut rng); // another generation's keys
        let mut a = Instance::deploy(Builtin::KvStore, keys(&master, 0, &mut rng).0, b"").unwrap();
        let mut b = Instance::deploy(Builtin::KvStore, keys(&master, 0, &mut rng).0, b"").unwrap();
        let alice = user(&mut rng);
        let wrong_key = command(&other, &alice, kv::get(b"k"), &mut rng);
        let no_call = cert
            .encrypt_input(&cert.cluster_key, &alice.0, b"too short", &mut rng)
            .unwrap();
        let not_input = Envelope::seal(
            &alice.0,
            &cert.x25519,
            EnvelopePurpose::ContractReply,
            b"",
            b"",
            &mut rng,
        )
        .unwrap();
        for input in [wrong_key, no_call, not_input] {
            let before = a.sealed_state();
            let (x, y) = (
                a.execute(&[1; 32], &input, &mut rng),
                b.execute(&[1; 32], &input, &mut rng),
            );
            assert_eq!((x.outcome, x.reply.is_none()), (Outcome::Unreadable, true));
            assert_eq!(x.digest, y.digest);
            assert_eq!((a.sealed_state(), a.version()), (before, 0));
        }
    }

    #[test]
    fn sealed_state_restores_only_under_its_key_and_version_and_migrates() {
        let mut rng = rng(12);
        let master = MasterKey::generate(&mut rng);
        let (_, cert) = keys(&master, 0, &mut rng);
        let mut a = Instance::deploy(Builtin::KvStore, keys(&master, 0, &mut rng).0, b"").unwrap();
        let alice = user(&mut rng);
        let input = command(&cert, &alice, kv::put(b"k", b"v"), &mut rng);
        a.execute(&[1; 32], &input, &mut rng);
        let sealed = a.sealed_state();
        let restored =
            Instance::restore(Builtin::KvStore, keys(&master, 0, &mut rng).0, 1, &sealed).unwrap();
        assert_eq!(restored.state_digest(), a.state_digest());
        assert!(
            Instance::restore(Builtin::KvStore, keys(&master, 0, &mut rng).0, 0, &sealed).is_err()
        );
        let mut tampered = sealed.clone();
        tampered[30] ^= 1;
        assert!(
            Instance::restore(Builtin::KvStore, keys(&master, 0, &mut rng).0, 1, &tampered)
                .is_err()
        );
        // Re-keyed to generation 1: the old key opens nothing sealed afterwards.
        let (new_key, new_cert) = keys(&master, 1, &mut rng);
        let mut moved = a.migrate(new_key);
        let resealed = moved.sealed_state();
        assert!(
            Instance::restore(Builtin::KvStore, keys(&master, 0, &mut rng).0, 1, &resealed)
                .is_err()
        );
        let input = command(&new_cert, &alice, kv::get(b"k"), &mut rng);
        let run = moved.execute(&[2; 32], &input, &mut rng);
        let reply = open_reply(&alice.1, &new_cert, &[2; 32], run.reply.as_ref().unwrap()).unwrap();
        assert_eq!(reply.body.as_slice(), [&[1, 0, 0, 0, 1][..], b"v"].concat());
    }
}
