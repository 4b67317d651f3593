//! An in-memory network of gatekeeper and worker cores around one registry: every step a core
//! returns is signed, verified and applied at once, and provisioning calls go straight from the
//! worker's core to the gatekeepers' cores.
#![allow(clippy::unwrap_used, dead_code)] // test helpers; not every test file uses every one

use std::collections::{BTreeMap, BTreeSet};

use keyward_crypto::{ChainId, ChannelKeypair, Envelope, IdentityKeypair};
use keyward_enclave::{BoundKey, DevPlatformKey, EvidencePolicy, Sealer, SealingKey};
use keyward_hierarchy::{ClusterId, ContractId};
use keyward_ledger::*;
use keyward_node::{Gatekeeper, GatekeeperStep, ProvisionRequest, User, Worker, WorkerStep};
use rand::{SeedableRng, rngs::StdRng};

pub const MEASUREMENT: [u8; 32] = [0x4d; 32];

pub struct Sim {
    pub rng: StdRng,
    pub council: Vec<IdentityKeypair>,
    pub platform: DevPlatformKey,
    pub registry: Registry,
    pub sealer: Sealer,
    pub gatekeepers: Vec<Gatekeeper>,
    pub workers: Vec<Worker>,
    /// Replies the workers produced, by command.
    pub replies: BTreeMap<EntryHash, Vec<Envelope>>,
    /// Digest bodies to replace before submission, by worker index (a faulty worker).
    pub faulty: BTreeSet<usize>,
    /// Gatekeepers that do not answer provisioning requests (down).
    pub down: BTreeSet<usize>,
    /// Gatekeepers whose steps `settle` skips (a test drives them by hand).
    pub paused: BTreeSet<usize>,
}

fn policy(platform: &DevPlatformKey) -> EvidencePolicy {
    EvidencePolicy {
        accept_insecure_dev: true,
        allowed_measurements: vec![MEASUREMENT],
        trusted_dev_platforms: vec![platform.public()],
        trusted_tpm_keys: Vec::new(),
        vendor: None,
    }
}

impl Sim {
    pub fn new(seed: u64) -> Self {
        Self::with_params(seed, |_| {})
    }

    /// A network whose genesis parameters `edit` adjusted.
    pub fn with_params(seed: u64, edit: impl FnOnce(&mut Params)) -> Self {
        let mut params = Params::default();
        edit(&mut params);
        let mut rng = StdRng::seed_from_u64(seed);
        let council: Vec<_> = (0..3)
            .map(|_| IdentityKeypair::generate(&mut rng))
            .collect();
        let platform = DevPlatformKey::generate(&mut rng);
        let config = GenesisConfig {
            chain: ChainId::new("node-test").unwrap(),
            council: council.iter().map(IdentityKeypair::public).collect(),
            threshold: GenesisConfig::majority(council.len()),
            params,
            contract_codes: BTreeSet::from([CodeId::new("kv-store").unwrap()]),
            gatekeeper_policy: policy(&platform),
            worker_policy: policy(&platform),
        };
        let position = Position {
            height: 0,
            parent: EntryHash::ZERO,
            seq: 0,
        };
        let genesis = Entry::sign(
            &council[0],
            position,
            &Body::Genesis(Box::new(config)),
            &mut rng,
        );
        let registry = Registry::from_genesis(&genesis, &genesis.hash()).unwrap();
        let sealer = Sealer::new(
            &SealingKey::generate(&mut rng),
            ChainId::new("node-test").unwrap(),
            [0x4d; 32],
        );
        Self {
            rng,
            council,
            platform,
            registry,
            sealer,
            gatekeepers: Vec::new(),
            workers: Vec::new(),
            replies: BTreeMap::new(),
            faulty: BTreeSet::new(),
            down: BTreeSet::new(),
            paused: BTreeSet::new(),
        }
    }

    pub fn genesis(&self) -> EntryHash {
        self.registry.genesis().hash()
    }

    pub fn submit(&mut self, author: &IdentityKeypair, body: &Body) -> Result<Applied, Rejected> {
        let position = Position {
            height: self.registry.next_height(),
            parent: self.registry.head(),
            seq: self.registry.next_seq(&author.public()),
        };
        let entry = Entry::sign(author, position, body, &mut self.rng);
        let verified = self.registry.genesis().verify(entry)?;
        self.registry.apply(verified)
    }

    pub fn council_submit(&mut self, body: &Body) -> Applied {
        let author = self.council[0].public();
        let position = Position {
            height: self.registry.next_height(),
            parent: self.registry.head(),
            seq: self.registry.next_seq(&author),
        };
        let entry = Entry::sign(&self.council[0], position, body, &mut self.rng);
        let verified = self.registry.genesis().verify(entry).unwrap();
        self.registry.apply(verified).unwrap()
    }

    fn registration(&mut self, keys: [BoundKey; 2], role: Role, stake: u64) -> Registration {
        let channel = match keys[1] {
            BoundKey::Channel(c) => c,
            _ => unreachable!(),
        };
        let evidence = self
            .platform
            .attest(
                MEASUREMENT,
                &keys,
                &registration_nonce(&self.genesis(), role),
                &mut self.rng,
            )
            .unwrap();
        Registration {
            channel,
            endpoint: "127.0.0.1:9100".parse().unwrap(),
            stake,
            evidence,
        }
    }

    /// A new gatekeeper, registered; returns its index.
    pub fn add_gatekeeper(&mut self) -> usize {
        let gk = Gatekeeper::generate(self.genesis(), &mut self.rng);
        let stake = Params::default().min_gatekeeper_stake;
        let reg = self.registration(gk.bound_keys(), Role::Gatekeeper { admitted: false }, stake);
        let signer = clone_key(gk.signer());
        self.submit(&signer, &Body::GatekeeperRegister(reg))
            .unwrap();
        self.gatekeepers.push(gk);
        self.gatekeepers.len() - 1
    }

    /// A new worker, registered; returns its index.
    pub fn add_worker(&mut self) -> usize {
        let w = Worker::generate(self.genesis(), &mut self.rng);
        let stake = Params::default().min_worker_stake;
        let reg = self.registration(w.bound_keys(), Role::Worker, stake);
        let signer = clone_key(w.signer());
        self.submit(&signer, &Body::WorkerRegister(reg)).unwrap();
        self.workers.push(w);
        self.workers.len() - 1
    }

    /// The council forms `cluster` from the workers `members`.
    pub fn cluster(&mut self, cluster: &str, members: &[usize]) {
        let body = Body::ClusterCreate(ClusterCreate {
            cluster: ClusterId::new(cluster).unwrap(),
            members: members.iter().map(|&i| self.workers[i].id()).collect(),
        });
        self.council_submit(&body);
    }

    /// Asks every gatekeeper for `request` on behalf of worker `i`; returns the answers.
    pub fn ask(
        &mut self,
        i: usize,
        request: &keyward_hierarchy::ClusterKeyRequest,
    ) -> Vec<Envelope> {
        let mut answers = Vec::new();
        for (g, gk) in self.gatekeepers.iter().enumerate() {
            if self.down.contains(&g) {
                continue;
            }
            let signed = ProvisionRequest::sign(
                self.workers[i].signer(),
                &self.registry.genesis().hash(),
                gk.id(),
                request.clone(),
                &mut self.rng,
            );
            if let Ok(answer) = gk.answer(&self.registry, &signed.to_bytes(), &mut self.rng) {
                answers.push(answer);
            }
        }
        answers
    }

    /// Runs every core's steps until none has anything left to do. Panics if a step is refused
    /// (a core proposed an entry its own registry refuses) or if the network never settles.
    pub fn settle(&mut self) -> usize {
        let mut entries = 0;
        for _ in 0..10_000 {
            let mut progress = false;
            for g in 0..self.gatekeepers.len() {
                if self.paused.contains(&g) {
                    continue;
                }
                let step = self.gatekeepers[g].step(&self.registry, &mut self.rng);
                let Some(step) = step else { continue };
                let body = match step {
                    GatekeeperStep::Seal => {
                        let blob = self.gatekeepers[g].seal(&self.sealer, 0, &mut self.rng);
                        Gatekeeper::restore(&self.sealer, &self.genesis(), &blob, 0).unwrap();
                        progress = true;
                        continue;
                    }
                    GatekeeperStep::Submit(b) => b,
                    GatekeeperStep::SealThenSubmit(b) => {
                        // Durability first, as the host does: the sealed state must restore.
                        let blob = self.gatekeepers[g].seal(&self.sealer, 0, &mut self.rng);
                        Gatekeeper::restore(&self.sealer, &self.genesis(), &blob, 0).unwrap();
                        b
                    }
                };
                let signer = clone_key(self.gatekeepers[g].signer());
                self.submit(&signer, &body)
                    .unwrap_or_else(|e| panic!("gatekeeper {g}'s {:?} refused: {e}", body.kind()));
                entries += 1;
                progress = true;
            }
            for w in 0..self.workers.len() {
                let step = self.workers[w].step(&self.registry, &mut self.rng);
                let Some(step) = step else { continue };
                progress = true;
                match step {
                    WorkerStep::Provision(request) => {
                        let answers = self.ask(w, &request);
                        let registry = self.registry.clone();
                        self.workers[w]
                            .provisioned(&registry, &request, &answers)
                            .unwrap();
                    }
                    WorkerStep::Submit(body) => {
                        let signer = clone_key(self.workers[w].signer());
                        self.submit(&signer, &body).unwrap_or_else(|e| {
                            panic!("worker {w}'s {:?} refused: {e}", body.kind())
                        });
                        entries += 1;
                    }
                    WorkerStep::Executed {
                        command,
                        reply,
                        digest,
                        ..
                    } => {
                        if let Some(reply) = reply {
                            self.replies.entry(command).or_default().push(reply);
                        }
                        if let Some(mut body) = digest {
                            if self.faulty.contains(&w) {
                                body = self.wrong_digest(w, body);
                            }
                            let signer = clone_key(self.workers[w].signer());
                            self.submit(&signer, &body).unwrap();
                            entries += 1;
                        }
                    }
                }
            }
            if !progress {
                return entries;
            }
        }
        panic!("the network never settled");
    }

    /// Re-signs a digest body with a wrong digest, under the worker's own contract key.
    fn wrong_digest(&mut self, w: usize, body: Body) -> Body {
        let Body::ResultDigest(result) = body else {
            return body;
        };
        let Subject::Command(id) = &result.subject else {
            return Body::ResultDigest(result);
        };
        let context = self.registry.command(id).unwrap().context.clone();
        let cluster_key = self.workers[w]
            .cluster_key(
                &context.cluster,
                KeyContext {
                    epoch: context.epoch,
                    generation: context.generation,
                },
            )
            .unwrap();
        let key = keyward_hierarchy::ContractKey::derive(cluster_key, context.contract.clone());
        Body::ResultDigest(Box::new(ResultDigest::sign(
            &key,
            &self.genesis(),
            result.subject.clone(),
            [0xee; 32],
            &mut self.rng,
        )))
    }

    pub fn user(&mut self) -> User {
        User::new(
            IdentityKeypair::generate(&mut self.rng),
            ChannelKeypair::generate(&mut self.rng),
        )
    }

    /// `user` deploys a kv-store as `contract` in `cluster`.
    pub fn deploy(&mut self, user: &User, contract: &str, cluster: &str) {
        let body = Body::ContractDeploy(ContractDeploy {
            contract: ContractId::new(contract).unwrap(),
            cluster: ClusterId::new(cluster).unwrap(),
            code: CodeId::new("kv-store").unwrap(),
            init: Vec::new(),
        });
        self.submit(user.signer(), &body).unwrap();
    }

    /// `user` sends `call` to `contract`; returns the command id.
    pub fn send(&mut self, user: &User, contract: &str, call: &[u8]) -> EntryHash {
        let command = user
            .command(
                &self.registry,
                &ContractId::new(contract).unwrap(),
                call,
                &mut self.rng,
            )
            .unwrap();
        self.submit(user.signer(), &Body::ContractCommand(Box::new(command)))
            .unwrap()
            .hash
    }
}

/// A second handle on a node's identity key, for signing entries outside its core.
pub fn clone_key(key: &IdentityKeypair) -> IdentityKeypair {
    IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new(*key.seed().expose()))
}
