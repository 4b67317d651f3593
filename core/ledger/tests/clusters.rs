//! Kinds 8–13 (PROTOCOL §16.7): clusters, provisioning decisions, contracts, their keys and
//! commands, end to end with real keys, and every refusal, each shown to change nothing.
#![allow(clippy::unwrap_used)] // tests

mod support;

use keyward_crypto::{
    Envelope, EnvelopePurpose, IdentityKeypair, IdentityPublicKey, SigningPurpose,
};
use keyward_hierarchy::{
    ClusterId, ClusterKey, ClusterKeyRequest, ContractId, ContractKey, ContractPublicKeys, Epoch,
    Generation, MasterKey,
};
use keyward_ledger::*;
use keyward_threshold::ShareIndex;
use support::*;

fn copy(key: &IdentityKeypair) -> IdentityKeypair {
    IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new(*key.seed().expose()))
}

fn cluster_id(name: &str) -> ClusterId {
    ClusterId::new(name).unwrap()
}

fn contract_id(name: &str) -> ContractId {
    ContractId::new(name).unwrap()
}

fn create_cluster(name: &str, members: &[&Member]) -> Body {
    Body::ClusterCreate(ClusterCreate {
        cluster: cluster_id(name),
        members: members.iter().map(|m| m.id.public()).collect(),
    })
}

fn deploy(contract: &str, cluster: &str, code: &str) -> Body {
    Body::ContractDeploy(ContractDeploy {
        contract: contract_id(contract),
        cluster: cluster_id(cluster),
        code: CodeId::new(code).unwrap(),
        init: b"{}".to_vec(),
    })
}

/// A network with one gatekeeper holding epoch 0 and three workers, the first two in cluster
/// `c1` (owned by council member 0).
struct World {
    net: Net,
    gk: Member,
    master: MasterKey,
    workers: [Member; 3],
}

impl World {
    fn new(seed: u64) -> Self {
        Self::with(seed, |_| {})
    }

    fn with(seed: u64, edit: impl FnOnce(&mut GenesisConfig)) -> Self {
        let mut net = Net::with(seed, edit);
        let gk = net.gatekeeper();
        let master = MasterKey::generate(&mut net.rng);
        let body = create(&mut net, &gk, 0, &master, &[]);
        net.submit(&gk.id, &body).unwrap();
        let workers = [net.worker(), net.worker(), net.worker()];
        net.as_council(0, &create_cluster("c1", &[&workers[0], &workers[1]]))
            .unwrap();
        Self {
            net,
            gk,
            master,
            workers,
        }
    }

    fn context(&self, cluster: &str) -> KeyContext {
        self.net.registry.key_context(&cluster_id(cluster)).unwrap()
    }

    /// What the gatekeeper publishes: the cluster's key, derived from the MasterKey.
    fn cluster_key_body(&self, cluster: &str, context: KeyContext) -> Body {
        let key = ClusterKey::derive(
            &self.master,
            context.epoch,
            cluster_id(cluster),
            context.generation,
        );
        Body::ClusterKeyPublish(ClusterKeyPublish {
            cluster: cluster_id(cluster),
            epoch: context.epoch,
            generation: context.generation,
            key: key.identity().public(),
        })
    }

    fn publish_cluster_key(&mut self, cluster: &str) {
        let body = self.cluster_key_body(cluster, self.context(cluster));
        self.net.submit(&self.gk.id, &body).unwrap();
    }

    /// Provisioning as the nodes do it: the gatekeeper asks the registry, evaluates with its
    /// share; the worker verifies the proof against the epoch record and derives the key.
    fn provision(
        &mut self,
        worker: &IdentityPublicKey,
        cluster: &str,
        context: KeyContext,
    ) -> Result<ClusterKey, ProvisionError> {
        let request = ClusterKeyRequest {
            epoch: context.epoch,
            cluster: cluster_id(cluster),
            generation: context.generation,
        };
        let record = self.net.registry.may_provision(worker, &request)?.clone();
        let share = self.master.classic_share(ShareIndex::new(1).unwrap());
        let partial = request.evaluate(&share, &mut self.net.rng);
        let (key, invalid) = request.finish(&record, &[partial]).unwrap();
        assert!(invalid.is_empty());
        Ok(key)
    }

    fn contract_key(
        &mut self,
        worker: usize,
        cluster: &str,
        contract: &str,
    ) -> (ClusterKey, ContractKey) {
        let context = self.context(cluster);
        let id = self.workers[worker].id.public();
        let cluster_key = self.provision(&id, cluster, context).unwrap();
        let key = ContractKey::derive(&cluster_key, contract_id(contract));
        (cluster_key, key)
    }

    fn keys_body(&mut self, worker: usize, cluster: &str, contract: &str) -> Body {
        let (cluster_key, key) = self.contract_key(worker, cluster, contract);
        let cert = ContractPublicKeys::certify(&cluster_key, &key, &mut self.net.rng);
        Body::ContractKeysPublish(Box::new(cert))
    }

    fn user_command(&mut self, user: &IdentityKeypair, contract: &str, plaintext: &[u8]) -> Body {
        let keys = self
            .net
            .registry
            .contract_keys(&contract_id(contract))
            .unwrap()
            .clone();
        let ctx = KeyContext {
            epoch: keys.context.epoch,
            generation: keys.context.generation,
        };
        let trusted = *self
            .net
            .registry
            .cluster(&keys.context.cluster)
            .unwrap()
            .key(ctx)
            .unwrap();
        let input = keys
            .encrypt_input(&trusted, user, plaintext, &mut self.net.rng)
            .unwrap();
        Body::ContractCommand(Box::new(ContractCommand {
            contract: contract_id(contract),
            input,
        }))
    }
}

#[test]
fn a_contract_runs_end_to_end_and_a_departed_worker_is_re_keyed_out() {
    let mut w = World::new(1);
    let c1 = cluster_id("c1");
    // The owner adds the third worker: same generation.
    let add = Body::ClusterAddMember(ClusterAddMember {
        cluster: c1.clone(),
        worker: w.workers[2].id.public(),
    });
    w.net.as_council(0, &add).unwrap();
    assert_eq!(
        w.net.registry.cluster(&c1).unwrap().generation(),
        Generation(0)
    );
    assert_eq!(w.net.registry.cluster(&c1).unwrap().members().len(), 3);
    assert_eq!(
        w.net.registry.cluster_of(&w.workers[2].id.public()),
        Some(&c1)
    );

    w.publish_cluster_key("c1");
    let user = w.net.key();
    w.net
        .submit(&user, &deploy("kv", "c1", "kv-store"))
        .unwrap();

    // Every worker obtains the same ClusterKey (equal to the gatekeeper's derivation) and
    // publishes the same contract keys; the first establishes them.
    let context = w.context("c1");
    let direct = ClusterKey::derive(&w.master, context.epoch, c1.clone(), context.generation);
    for i in 0..3 {
        let (cluster_key, _) = w.contract_key(i, "c1", "kv");
        assert_eq!(cluster_key.seed(), direct.seed());
        let body = w.keys_body(i, "c1", "kv");
        let applied = w.net.submit(&w.workers[i].id, &body).unwrap();
        assert_eq!(
            applied.events.contains(&Event::ContractKeysEstablished {
                contract: contract_id("kv"),
                context
            }),
            i == 0
        );
    }
    let kv = w.net.registry.contract(&contract_id("kv")).unwrap();
    assert_eq!(kv.confirmers(context).unwrap().len(), 3);
    let body = w.keys_body(1, "c1", "kv");
    refused(&mut w.net, &w.workers[1].id, &body, "already_published");

    // A user encrypts a command to the contract from ledger data alone; every worker opens it.
    let body = w.user_command(&user, "kv", b"put a 1");
    let applied = w.net.submit(&user, &body).unwrap();
    let command = w.net.registry.command(&applied.hash).unwrap().clone();
    assert_eq!(
        command.electorate,
        w.net.registry.cluster(&c1).unwrap().members().clone()
    );
    let Body::ContractCommand(cmd) = body else {
        unreachable!()
    };
    for i in 0..3 {
        let (_, key) = w.contract_key(i, "c1", "kv");
        let opened = key.open_input(&cmd.input).unwrap();
        assert_eq!(opened.plaintext.as_slice(), b"put a 1");
        assert_eq!(opened.sender, user.public());
    }

    // Worker 2 leaves: generation 1 without it; the key context moves on.
    let gone = w.workers[2].id.public();
    let applied = w
        .net
        .submit(&w.workers[2].id, &Body::WorkerDeregister)
        .unwrap();
    assert!(applied.events.contains(&Event::ClusterChanged {
        cluster: c1.clone(),
        generation: Generation(1)
    }));
    let new = w.context("c1");
    assert_eq!(new.generation, Generation(1));
    assert!(
        !w.net
            .registry
            .cluster(&c1)
            .unwrap()
            .members()
            .contains(&gone)
    );
    // It gets no key of any generation now; the others get both generations.
    assert_eq!(
        w.provision(&gone, "c1", context).err(),
        Some(ProvisionError::NotAWorker)
    );
    let stay = w.workers[0].id.public();
    let old = w.provision(&stay, "c1", context).unwrap();
    let next = w.provision(&stay, "c1", new).unwrap();
    assert_ne!(old.seed(), next.seed());
    // Until the new context's keys are published, the contract takes no commands.
    assert_eq!(
        w.net
            .registry
            .contract_keys(&contract_id("kv"))
            .unwrap_err()
            .name(),
        "contract_keys_missing"
    );
    let body = w.keys_body(0, "c1", "kv");
    refused(&mut w.net, &w.workers[0].id, &body, "cluster_key_missing");
    w.publish_cluster_key("c1");
    let body = w.keys_body(0, "c1", "kv");
    w.net.submit(&w.workers[0].id, &body).unwrap();
    // A command for the new generation does not open with the departed worker's old key.
    let body = w.user_command(&user, "kv", b"put b 2");
    w.net.submit(&user, &body).unwrap();
    let Body::ContractCommand(cmd) = body else {
        unreachable!()
    };
    let old_key = ContractKey::derive(&old, contract_id("kv"));
    assert!(old_key.open_input(&cmd.input).is_err());
}

mod refusals {
    use super::*;

    #[test]
    fn clusters_are_formed_by_the_council_from_free_active_workers() {
        let mut w = World::with(2, |g| g.params.max_cluster_size = 2);
        let stranger = w.net.key();
        let body = create_cluster("c2", &[&w.workers[2]]);
        refused(&mut w.net, &stranger, &body, "wrong_author");
        let worker = copy(&w.workers[2].id);
        refused(&mut w.net, &worker, &body, "wrong_author");
        let before = w.net.registry.clone();
        let again = create_cluster("c1", &[&w.workers[2]]);
        assert_eq!(
            w.net.as_council(1, &again).unwrap_err().name(),
            "cluster_exists"
        );
        let gk = Member {
            id: copy(&w.gk.id),
            channel: keyward_crypto::ChannelKeypair::generate(&mut w.net.rng),
        };
        let err = w
            .net
            .as_council(1, &create_cluster("c2", &[&gk]))
            .unwrap_err();
        assert_eq!(
            err,
            Rejected::NotAWorker {
                id: gk.id.public().into()
            }
        );
        let taken = create_cluster("c2", &[&w.workers[0]]);
        assert_eq!(
            w.net.as_council(1, &taken).unwrap_err().name(),
            "already_in_cluster"
        );
        assert_eq!(w.net.registry, before);
        let extra = w.net.worker();
        let before_extra = w.net.registry.clone();
        let add = |worker: &Member| {
            Body::ClusterAddMember(ClusterAddMember {
                cluster: cluster_id("c1"),
                worker: worker.id.public(),
            })
        };
        assert_eq!(
            w.net.as_council(0, &add(&extra)).unwrap_err(),
            Rejected::ClusterFull { max: 2 }
        );
        assert_eq!(
            w.net.as_council(1, &add(&extra)).unwrap_err().name(),
            "wrong_author"
        );
        let unknown = Body::ClusterAddMember(ClusterAddMember {
            cluster: cluster_id("nope"),
            worker: extra.id.public(),
        });
        assert_eq!(
            w.net.as_council(0, &unknown).unwrap_err().name(),
            "unknown_cluster"
        );
        assert_eq!(w.net.registry, before_extra);
        // A set that is not strictly ascending, or empty, does not decode.
        let mut bytes = create_cluster("c2", &[&w.workers[2], &extra]).encode();
        let n = bytes.len();
        let (a, b) = bytes[n - 64..].split_at_mut(32);
        a.swap_with_slice(b);
        assert!(Body::decode(Kind::ClusterCreate, &bytes).is_err());
        assert!(Body::decode(Kind::ClusterCreate, &[1, b'x', 0, 0]).is_err());
    }

    #[test]
    fn cluster_keys_come_from_a_holder_for_the_current_context_once() {
        let mut w = World::new(3);
        let context = w.context("c1");
        let body = w.cluster_key_body("c1", context);
        refused(&mut w.net, &w.workers[0].id, &body, "wrong_author");
        let stale = w.cluster_key_body(
            "c1",
            KeyContext {
                generation: Generation(1),
                ..context
            },
        );
        let err = refused(&mut w.net, &w.gk.id, &stale, "stale_key_context");
        assert_eq!(err.code(), 2307);
        let unknown = w.cluster_key_body("zz", context);
        refused(&mut w.net, &w.gk.id, &unknown, "unknown_cluster");
        w.net.submit(&w.gk.id, &body).unwrap();
        refused(&mut w.net, &w.gk.id, &body, "already_published");
    }

    #[test]
    fn without_an_active_epoch_there_is_no_key_context() {
        let mut net = Net::new(4);
        let worker = net.worker();
        net.as_council(0, &create_cluster("c1", &[&worker]))
            .unwrap();
        assert_eq!(
            net.registry.key_context(&cluster_id("c1")),
            Err(Rejected::NoActiveEpoch)
        );
    }

    #[test]
    fn deployments_need_a_non_node_a_new_id_a_known_code_and_a_cluster_with_workers() {
        let mut w = World::new(5);
        let user = w.net.key();
        let body = deploy("kv", "c1", "kv-store");
        refused(&mut w.net, &w.workers[0].id, &body, "node_cannot_deploy");
        refused(&mut w.net, &w.gk.id, &body, "node_cannot_deploy");
        refused(
            &mut w.net,
            &user,
            &deploy("kv", "c1", "other-code"),
            "unknown_code",
        );
        refused(
            &mut w.net,
            &user,
            &deploy("kv", "zz", "kv-store"),
            "unknown_cluster",
        );
        w.net.submit(&user, &body).unwrap();
        refused(&mut w.net, &user, &body, "contract_exists");
        // A cluster whose only worker left has no workers.
        w.net
            .as_council(0, &create_cluster("c2", &[&w.workers[2]]))
            .unwrap();
        w.net
            .submit(&w.workers[2].id, &Body::WorkerDeregister)
            .unwrap();
        refused(
            &mut w.net,
            &user,
            &deploy("kv2", "c2", "kv-store"),
            "empty_cluster",
        );
    }

    #[test]
    fn contract_keys_must_be_certified_by_the_published_cluster_key_and_agree() {
        let mut w = World::new(6);
        let user = w.net.key();
        w.net
            .submit(&user, &deploy("kv", "c1", "kv-store"))
            .unwrap();
        let body = w.keys_body(0, "c1", "kv");
        refused(&mut w.net, &w.workers[0].id, &body, "cluster_key_missing");
        w.publish_cluster_key("c1");
        // Worker 2 is not in c1.
        refused(&mut w.net, &w.workers[2].id, &body, "not_cluster_member");
        let Body::ContractKeysPublish(good) = body.clone() else {
            unreachable!()
        };
        let (cluster_key, _) = w.contract_key(0, "c1", "kv");
        let resign =
            |cert: &mut ContractPublicKeys, key: &ClusterKey, rng: &mut rand::rngs::StdRng| {
                cert.signature =
                    key.identity()
                        .sign(SigningPurpose::ContractKeys, &cert.signed_bytes(), rng);
            };
        // Certified by a key of its own making.
        let other_master = MasterKey::generate(&mut w.net.rng);
        let context = w.context("c1");
        let rogue = ClusterKey::derive(
            &other_master,
            context.epoch,
            cluster_id("c1"),
            context.generation,
        );
        let mut untrusted = (*good).clone();
        untrusted.cluster_key = rogue.identity().public();
        resign(&mut untrusted, &rogue, &mut w.net.rng);
        refused(
            &mut w.net,
            &w.workers[0].id,
            &Body::ContractKeysPublish(Box::new(untrusted)),
            "untrusted_cluster_key",
        );
        // A signature that does not verify.
        let mut forged = (*good).clone();
        forged.sr25519 = w.workers[1].id.public();
        refused(
            &mut w.net,
            &w.workers[0].id,
            &Body::ContractKeysPublish(Box::new(forged.clone())),
            "bad_certificate",
        );
        // For another generation.
        let mut stale = (*good).clone();
        stale.context.generation = Generation(4);
        resign(&mut stale, &cluster_key, &mut w.net.rng);
        refused(
            &mut w.net,
            &w.workers[0].id,
            &Body::ContractKeysPublish(Box::new(stale)),
            "stale_key_context",
        );
        // For a contract that does not exist.
        let mut unknown = (*good).clone();
        unknown.context.contract = contract_id("zz");
        resign(&mut unknown, &cluster_key, &mut w.net.rng);
        refused(
            &mut w.net,
            &w.workers[0].id,
            &Body::ContractKeysPublish(Box::new(unknown)),
            "unknown_contract",
        );
        w.net.submit(&w.workers[0].id, &body).unwrap();
        // Worker 1 holds the cluster key but publishes other contract keys: refused.
        resign(&mut forged, &cluster_key, &mut w.net.rng);
        refused(
            &mut w.net,
            &w.workers[1].id,
            &Body::ContractKeysPublish(Box::new(forged)),
            "contract_keys_mismatch",
        );
    }

    #[test]
    fn commands_go_to_the_current_keys_from_their_signed_sender() {
        let mut w = World::new(7);
        let user = w.net.key();
        w.net
            .submit(&user, &deploy("kv", "c1", "kv-store"))
            .unwrap();
        w.publish_cluster_key("c1");
        let other = Body::ContractCommand(Box::new(ContractCommand {
            contract: contract_id("kv"),
            input: Envelope::seal(
                &user,
                &w.workers[0].channel.public(),
                EnvelopePurpose::ContractInput,
                b"",
                b"x",
                &mut w.net.rng,
            )
            .unwrap(),
        }));
        refused(&mut w.net, &user, &other, "contract_keys_missing");
        let keys = w.keys_body(0, "c1", "kv");
        w.net.submit(&w.workers[0].id, &keys).unwrap();
        refused(&mut w.net, &user, &other, "wrong_contract_key");
        let body = w.user_command(&user, "kv", b"get a");
        // Only its sender may put it on the ledger, and gatekeepers may not at all.
        let mallory = w.net.key();
        refused(&mut w.net, &mallory, &body, "bad_input_envelope");
        let gk = copy(&w.gk.id);
        let gk_body = w.user_command(&gk, "kv", b"x");
        refused(&mut w.net, &w.gk.id, &gk_body, "wrong_author");
        let Body::ContractCommand(mut cmd) = body.clone() else {
            unreachable!()
        };
        cmd.contract = contract_id("zz");
        refused(
            &mut w.net,
            &user,
            &Body::ContractCommand(cmd),
            "unknown_contract",
        );
        let wrong_purpose = Body::ContractCommand(Box::new(ContractCommand {
            contract: contract_id("kv"),
            input: Envelope::seal(
                &user,
                &w.workers[0].channel.public(),
                EnvelopePurpose::ContractReply,
                b"",
                b"x",
                &mut w.net.rng,
            )
            .unwrap(),
        }));
        refused(&mut w.net, &user, &wrong_purpose, "bad_input_envelope");
        w.net.submit(&user, &body).unwrap();
    }
}

mod results {
    use super::*;

    /// c1 with all three workers, contract kv with established keys, and one queued command.
    fn commanded(seed: u64) -> (World, Subject) {
        let mut w = World::new(seed);
        let add = Body::ClusterAddMember(ClusterAddMember {
            cluster: cluster_id("c1"),
            worker: w.workers[2].id.public(),
        });
        w.net.as_council(0, &add).unwrap();
        w.publish_cluster_key("c1");
        let user = w.net.key();
        w.net
            .submit(&user, &deploy("kv", "c1", "kv-store"))
            .unwrap();
        let keys = w.keys_body(0, "c1", "kv");
        w.net.submit(&w.workers[0].id, &keys).unwrap();
        let body = w.user_command(&user, "kv", b"put a 1");
        let applied = w.net.submit(&user, &body).unwrap();
        (w, Subject::Command(applied.hash))
    }

    fn digest(w: &mut World, worker: usize, subject: &Subject, value: u8) -> Body {
        let (_, key) = w.contract_key(worker, "c1", "kv");
        let genesis = w.net.registry.genesis().hash();
        Body::ResultDigest(Box::new(ResultDigest::sign(
            &key,
            &genesis,
            subject.clone(),
            [value; 32],
            &mut w.net.rng,
        )))
    }

    fn report(accused: &Member, subject: &Subject) -> Body {
        Body::MisbehaviourReport(Box::new(MisbehaviourReport {
            accused: accused.id.public(),
            offence: Offence::DigestMismatch,
            subject: subject.clone(),
        }))
    }

    #[test]
    fn a_worker_that_disagrees_with_the_majority_is_reported_and_slashed() {
        let (mut w, subject) = commanded(20);
        for (i, value) in [(0, 1), (1, 1), (2, 9)] {
            let body = digest(&mut w, i, &subject, value);
            w.net.submit(&w.workers[i].id, &body).unwrap();
        }
        let stake = w
            .net
            .registry
            .node(&w.workers[2].id.public())
            .unwrap()
            .stake;
        let reporter = copy(&w.workers[0].id);
        let applied = w
            .net
            .submit(&reporter, &report(&w.workers[2], &subject))
            .unwrap();
        let slash = stake * u64::from(Params::default().slash_bps) / 10_000;
        assert_eq!(
            applied.events,
            vec![Event::Slashed {
                worker: w.workers[2].id.public(),
                amount: slash,
                subject: subject.clone()
            }]
        );
        let node = w.net.registry.node(&w.workers[2].id.public()).unwrap();
        assert_eq!((node.stake, node.slashed), (stake - slash, true));
        refused(
            &mut w.net,
            &reporter,
            &report(&w.workers[2], &subject),
            "already_reported",
        );
        // Slashed: no more keys, digests or key publications.
        let context = w.context("c1");
        let gone = w.workers[2].id.public();
        assert_eq!(
            w.provision(&gone, "c1", context).err(),
            Some(ProvisionError::NotAWorker)
        );
        let user = w.net.key();
        let body = w.user_command(&user, "kv", b"x");
        let applied = w.net.submit(&user, &body).unwrap();
        let next = Subject::Command(applied.hash);
        let share = w.master.classic_share(ShareIndex::new(1).unwrap());
        let cluster_key = {
            let request = ClusterKeyRequest {
                epoch: context.epoch,
                cluster: cluster_id("c1"),
                generation: context.generation,
            };
            let record = w
                .net
                .registry
                .epoch(context.epoch)
                .unwrap()
                .record()
                .clone();
            let partial = request.evaluate(&share, &mut w.net.rng);
            request.finish(&record, &[partial]).unwrap().0
        };
        let key = ContractKey::derive(&cluster_key, contract_id("kv"));
        let genesis = w.net.registry.genesis().hash();
        let late = Body::ResultDigest(Box::new(ResultDigest::sign(
            &key,
            &genesis,
            next,
            [1; 32],
            &mut w.net.rng,
        )));
        refused(&mut w.net, &w.workers[2].id, &late, "worker_slashed");
        let cert = Body::ContractKeysPublish(Box::new(ContractPublicKeys::certify(
            &cluster_key,
            &key,
            &mut w.net.rng,
        )));
        refused(&mut w.net, &w.workers[2].id, &cert, "worker_slashed");
    }

    #[test]
    fn digests_and_reports_are_refused_unless_they_prove_their_claim() {
        let (mut w, subject) = commanded(21);
        let unknown = Subject::Command(EntryHash([3; 32]));
        let body = digest(&mut w, 0, &unknown, 1);
        refused(&mut w.net, &w.workers[0].id, &body, "unknown_subject");
        let body = digest(
            &mut w,
            0,
            &Subject::Migration {
                contract: contract_id("kv"),
                epoch: Epoch(0),
                generation: Generation(5),
            },
            1,
        );
        refused(&mut w.net, &w.workers[0].id, &body, "unknown_subject");
        // Signed by another contract's key.
        let (cluster_key, _) = w.contract_key(0, "c1", "kv");
        let other = ContractKey::derive(&cluster_key, contract_id("other"));
        let genesis = w.net.registry.genesis().hash();
        let forged = Body::ResultDigest(Box::new(ResultDigest::sign(
            &other,
            &genesis,
            subject.clone(),
            [1; 32],
            &mut w.net.rng,
        )));
        refused(
            &mut w.net,
            &w.workers[0].id,
            &forged,
            "bad_result_signature",
        );
        // Only workers of the electorate.
        let outsider = w.net.worker();
        let body = digest(&mut w, 0, &subject, 1);
        refused(&mut w.net, &outsider.id, &body, "not_cluster_member");
        refused(&mut w.net, &w.gk.id, &body, "wrong_author");
        // Nothing to report yet.
        let reporter = copy(&w.workers[0].id);
        refused(
            &mut w.net,
            &reporter,
            &report(&w.workers[1], &subject),
            "no_digest",
        );
        w.net.submit(&w.workers[0].id, &body).unwrap();
        refused(&mut w.net, &w.workers[0].id, &body, "duplicate_digest");
        let body = digest(&mut w, 1, &subject, 2);
        w.net.submit(&w.workers[1].id, &body).unwrap();
        // 1 against 1 of 3: no strict majority.
        refused(
            &mut w.net,
            &reporter,
            &report(&w.workers[1], &subject),
            "no_majority",
        );
        let body = digest(&mut w, 2, &subject, 1);
        w.net.submit(&w.workers[2].id, &body).unwrap();
        refused(
            &mut w.net,
            &reporter,
            &report(&w.workers[2], &subject),
            "digest_agrees",
        );
        let stranger = w.net.key();
        refused(
            &mut w.net,
            &stranger,
            &report(&w.workers[1], &subject),
            "wrong_author",
        );
        // The council may report.
        w.net
            .as_council(2, &report(&w.workers[1], &subject))
            .unwrap();
        assert!(
            w.net
                .registry
                .node(&w.workers[1].id.public())
                .unwrap()
                .slashed
        );
        assert_eq!(w.net.registry.digests(&subject).count(), 3);
    }
}
