//! The core's side of a node, as host code runs it: the in-process runner, and what
//! `keyward enclave --role` serves over its socket.
//!
//! It holds everything secret (the core, the sealing key, the platform's attester) and the
//! registry the core reads. In the node's own process that registry is the host's, which the
//! follower already verified; in the enclave process it is the enclave's own, rebuilt from the
//! entries the host hands over and verified again here.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rand_core::OsRng;

use keyward_crypto::{Envelope, IdentityKeypair, IdentityPublicKey};
use keyward_enclave::Attester;
use keyward_hierarchy::{ClusterKeyRequest, ContractId, ContractKey};
use keyward_ledger::{
    Body, Entry, KeyContext, Position, Registration, Registry, ResultDigest, Role, Subject,
    registration_nonce,
};
use keyward_node::{Answers, Gatekeeper, GatekeeperStep, ProvisionRequest, Worker, WorkerStep};

use super::{NodeRunner, NodeStep, Refused, Requests, RunnerError, Ticket};
use crate::dev;
use crate::dir::NodeDir;
use crate::service::{NodeError, NodeRole};

/// How many produced bodies the core remembers as signable: far more than one round submits.
const PRODUCED: usize = 1024;
/// How many provisioning rounds stay open; the oldest is dropped beyond it.
const ROUNDS: usize = 64;

/// The node's core.
enum Core {
    Gatekeeper(Gatekeeper),
    Worker(Worker),
}

impl Core {
    fn signer(&self) -> &IdentityKeypair {
        match self {
            Self::Gatekeeper(g) => g.signer(),
            Self::Worker(w) => w.signer(),
        }
    }

    fn seal(&self, dir: &NodeDir, counter: u64) -> keyward_enclave::SealedBlob {
        match self {
            Self::Gatekeeper(g) => g.seal(&dir.sealer, counter, &mut OsRng),
            Self::Worker(w) => w.seal(&dir.sealer, counter, &mut OsRng),
        }
    }

    fn worker(&self) -> Option<&Worker> {
        match self {
            Self::Worker(w) => Some(w),
            Self::Gatekeeper(_) => None,
        }
    }

    fn worker_mut(&mut self) -> Option<&mut Worker> {
        match self {
            Self::Worker(w) => Some(w),
            Self::Gatekeeper(_) => None,
        }
    }
}

/// Fault injection for dev networks ([`crate::NodeConfig::dev_wrong_digests`],
/// [`crate::NodeConfig::dev_wrong_partials`]); the in-process runner only.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Publish a wrong digest of every command's result.
    pub dev_wrong_digests: bool,
    /// Answer every provisioning request with a wrong partial evaluation.
    pub dev_wrong_partials: bool,
}

/// Provisioning rounds in progress, by ticket.
#[derive(Default)]
struct Rounds {
    next: Ticket,
    open: BTreeMap<Ticket, Answers>,
}

/// A node's core with its sealed state, attester and registry.
pub struct InProcess {
    role: NodeRole,
    id: IdentityPublicKey,
    registry: Arc<RwLock<Registry>>,
    /// The registry is the host's own, verified by its follower: [`NodeRunner::follow`] has
    /// nothing to apply.
    shares_registry: bool,
    /// Lock order: rounds, registry, core.
    core: RwLock<Core>,
    dir: NodeDir,
    platform: Mutex<Box<dyn Attester>>,
    /// Bodies this core produced, as (kind code, encoding): the only ones it signs.
    produced: Mutex<VecDeque<(u8, Vec<u8>)>>,
    rounds: Mutex<Rounds>,
    /// A save failed: the core holds a key the disk may not. The core asks to seal only once per
    /// change, so every later step retries the save first.
    unsaved: AtomicBool,
    /// The contract checkpoints are restored at the first step, once the registry has caught up.
    checkpoints_restored: AtomicBool,
    options: Options,
}

impl std::fmt::Debug for InProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcess")
            .field("role", &self.role)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl InProcess {
    /// Restores the core sealed in `dir` (checked against its counter), or makes a new one and
    /// seals it. `registry` is the one the core reads; `shares_registry` says it is the host's
    /// verified registry (in-process) rather than the core's own (enclave process).
    ///
    /// # Errors
    /// [`NodeError::Dir`] or [`NodeError::State`].
    pub fn open(
        role: NodeRole,
        registry: Arc<RwLock<Registry>>,
        shares_registry: bool,
        dir: NodeDir,
        platform: Box<dyn Attester>,
        options: Options,
    ) -> Result<Self, NodeError> {
        let genesis = registry.read().expect("registry lock").genesis().hash();
        let core = match dir.load_state()? {
            Some(blob) => {
                let minimum = dir.counter();
                let restored = match role {
                    NodeRole::Gatekeeper => {
                        Gatekeeper::restore(&dir.sealer, &genesis, &blob, minimum)
                            .map(Core::Gatekeeper)
                    }
                    NodeRole::Worker => {
                        Worker::restore(&dir.sealer, &genesis, &blob, minimum).map(Core::Worker)
                    }
                };
                let core = restored.map_err(|source| NodeError::State {
                    path: dir.state_file(),
                    source,
                })?;
                dir.restored(&blob)?;
                core
            }
            None => {
                let core = match role {
                    NodeRole::Gatekeeper => {
                        Core::Gatekeeper(Gatekeeper::generate(genesis, &mut OsRng))
                    }
                    NodeRole::Worker => Core::Worker(Worker::generate(genesis, &mut OsRng)),
                };
                dir.save_state(|counter| core.seal(&dir, counter))?;
                core
            }
        };
        Ok(Self {
            role,
            id: core.signer().public(),
            registry,
            shares_registry,
            core: RwLock::new(core),
            dir,
            platform: Mutex::new(platform),
            produced: Mutex::new(VecDeque::new()),
            rounds: Mutex::new(Rounds::default()),
            unsaved: AtomicBool::new(false),
            checkpoints_restored: AtomicBool::new(false),
            options,
        })
    }

    /// Remembers `body` as signable.
    fn produced(&self, body: &Body) {
        let mut produced = self.produced.lock().expect("produced lock");
        if produced.len() == PRODUCED {
            produced.pop_front();
        }
        produced.push_back((body.kind().code(), body.encode()));
    }

    /// Stores the state; until that succeeds, every step retries it first.
    fn save(&self) -> Result<(), RunnerError> {
        self.unsaved.store(true, Ordering::SeqCst);
        // The core lock is held only while sealing, not while the blob is written.
        self.dir
            .save_state(|counter| {
                let core = self.core.read().expect("core lock");
                core.seal(&self.dir, counter)
            })
            .map_err(|e| {
                tracing::error!(error = %e, "cannot store the sealed state; not acting on it");
                RunnerError::Storage(e.to_string())
            })?;
        self.unsaved.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// Restores the stored contract checkpoints, once.
    fn restore_checkpoints(&self) {
        if self.checkpoints_restored.swap(true, Ordering::SeqCst) {
            return;
        }
        let registry = self.registry.read().expect("registry lock");
        let mut core = self.core.write().expect("core lock");
        let Some(worker) = core.worker_mut() else {
            return;
        };
        for (contract, checkpoint) in self.dir.checkpoints() {
            if let Err(e) = worker.restore_checkpoint(&registry, &contract, &checkpoint) {
                tracing::warn!(%contract, error = %e, "checkpoint not restored; rebuilding from the ledger");
            }
        }
    }

    /// A command's digest replaced by a wrong one, signed with the worker's own contract key
    /// ([`Options::dev_wrong_digests`]).
    fn wrong_digest(&self, body: Body) -> Body {
        let Body::ResultDigest(result) = body else {
            return body;
        };
        let registry = self.registry.read().expect("registry lock");
        let core = self.core.read().expect("core lock");
        let key = match (&result.subject, core.worker()) {
            (Subject::Command(id), Some(worker)) => registry.command(id).and_then(|c| {
                let context = KeyContext {
                    epoch: c.context.epoch,
                    generation: c.context.generation,
                };
                let cluster_key = worker.cluster_key(&c.context.cluster, context)?;
                Some(ContractKey::derive(cluster_key, c.context.contract.clone()))
            }),
            _ => None,
        };
        let Some(key) = key else {
            return Body::ResultDigest(result);
        };
        tracing::warn!("dev fault injection: publishing a wrong digest");
        let mut wrong = result.digest;
        wrong[0] ^= 0xff;
        Body::ResultDigest(Box::new(ResultDigest::sign(
            &key,
            &registry.genesis().hash(),
            result.subject.clone(),
            wrong,
            &mut OsRng,
        )))
    }

    fn core_step(&self) -> Option<Step> {
        let registry = self.registry.read().expect("registry lock");
        let mut core = self.core.write().expect("core lock");
        match &mut *core {
            Core::Gatekeeper(g) => {
                let step = g.step(&registry, &mut OsRng).map(Step::Gatekeeper);
                for bad in g.take_bad_secrets() {
                    tracing::error!(epoch = bad.epoch.0, sender = %bad.sender, reason = %bad.reason, "ALARM: an epoch secret sealed to this gatekeeper is refused");
                }
                for bad in g.take_bad_parts() {
                    tracing::error!(epoch = bad.run.epoch.0, attempt = bad.run.attempt, dealer = %bad.dealer, reason = %bad.reason, "ALARM: a DKG or resharing part sealed to this gatekeeper is unusable; a DKG attempt needs the council to abandon it, a resharing stalls (PROTOCOL §16.11)");
                }
                step
            }
            Core::Worker(w) => {
                let step = w.step(&registry, &mut OsRng).map(Step::Worker);
                for alarm in w.take_alarms() {
                    tracing::error!(?alarm, "ALARM");
                }
                step
            }
        }
    }
}

/// A worker's signed provisioning requests for `request`, one to each holder of its epoch
/// (`ProvisionRequest` bytes); none if the epoch is unknown.
pub fn signed_requests(
    registry: &Registry,
    signer: &IdentityKeypair,
    request: &ClusterKeyRequest,
) -> Vec<(IdentityPublicKey, Vec<u8>)> {
    let genesis = registry.genesis().hash();
    registry
        .epoch(request.epoch)
        .map(|state| {
            state
                .holders()
                .iter()
                .map(|id| {
                    let signed =
                        ProvisionRequest::sign(signer, &genesis, *id, request.clone(), &mut OsRng);
                    (*id, signed.to_bytes())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[allow(clippy::large_enum_variant)] // one at a time, on the stack
enum Step {
    Gatekeeper(GatekeeperStep),
    Worker(WorkerStep),
}

impl NodeRunner for InProcess {
    fn id(&self) -> IdentityPublicKey {
        self.id
    }

    fn next_height(&self) -> Result<u64, RunnerError> {
        Ok(self.registry.read().expect("registry lock").next_height())
    }

    fn follow(&self, entries: Vec<Entry>) -> Result<u64, RunnerError> {
        if self.shares_registry {
            return self.next_height();
        }
        let genesis = self
            .registry
            .read()
            .expect("registry lock")
            .genesis()
            .clone();
        for entry in entries {
            let height = entry.position().height;
            let refused =
                |reason| RunnerError::Protocol(format!("the entry at height {height}: {reason}"));
            let verified = genesis.verify(entry).map_err(refused)?;
            self.registry
                .write()
                .expect("registry lock")
                .apply(verified)
                .map_err(refused)?;
        }
        self.next_height()
    }

    fn registration(&self, endpoint: SocketAddr, stake: Option<u64>) -> Result<Body, RunnerError> {
        let registry = self.registry.read().expect("registry lock");
        let params = &registry.genesis().config().params;
        let (role, measurement, minimum) = match self.role {
            NodeRole::Gatekeeper => (
                Role::Gatekeeper { admitted: false },
                dev::GATEKEEPER_MEASUREMENT,
                params.min_gatekeeper_stake,
            ),
            NodeRole::Worker => (
                Role::Worker,
                dev::WORKER_MEASUREMENT,
                params.min_worker_stake,
            ),
        };
        let (keys, channel) = match &*self.core.read().expect("core lock") {
            Core::Gatekeeper(g) => (g.bound_keys(), g.channel()),
            Core::Worker(w) => (w.bound_keys(), w.channel()),
        };
        let nonce = registration_nonce(&registry.genesis().hash(), role);
        // A TPM quote is slow I/O: not under the locks.
        drop(registry);
        let evidence = self
            .platform
            .lock()
            .expect("platform lock")
            .attest(measurement, &keys, &nonce, &mut OsRng)
            .map_err(|e| RunnerError::Attest(e.to_string()))?;
        let registration = Registration {
            channel,
            endpoint,
            stake: stake.unwrap_or(minimum),
            evidence,
        };
        let body = match self.role {
            NodeRole::Gatekeeper => Body::GatekeeperRegister(registration),
            NodeRole::Worker => Body::WorkerRegister(registration),
        };
        self.produced(&body);
        Ok(body)
    }

    fn sign(&self, position: Position, body: &Body) -> Result<Entry, RunnerError> {
        let encoded = (body.kind().code(), body.encode());
        if !self
            .produced
            .lock()
            .expect("produced lock")
            .contains(&encoded)
        {
            return Err(RunnerError::NotProduced(body.kind().name()));
        }
        let core = self.core.read().expect("core lock");
        Ok(Entry::sign(core.signer(), position, body, &mut OsRng))
    }

    fn step(&self) -> Result<Option<NodeStep>, RunnerError> {
        self.restore_checkpoints();
        // A failed save is retried before anything else: every entry may depend on the state it
        // would store (a ClusterKey, dropped shares), and the core will not produce it again.
        if self.unsaved.load(Ordering::SeqCst) {
            self.save()?;
        }
        let step = match self.core_step() {
            None => return Ok(None),
            Some(step) => step,
        };
        let step = match step {
            Step::Gatekeeper(GatekeeperStep::Submit(body))
            | Step::Worker(WorkerStep::Submit(body)) => NodeStep::Submit(body),
            Step::Gatekeeper(GatekeeperStep::Seal) => {
                self.save()?;
                NodeStep::Sealed
            }
            Step::Gatekeeper(GatekeeperStep::SealThenSubmit(body)) => {
                self.save()?;
                NodeStep::Submit(body)
            }
            Step::Worker(WorkerStep::Provision(request)) => NodeStep::Provision(request),
            Step::Worker(WorkerStep::Executed {
                contract,
                command,
                reply,
                digest,
            }) => NodeStep::Executed {
                contract,
                command,
                reply,
                digest: match digest {
                    Some(body) if self.options.dev_wrong_digests => Some(self.wrong_digest(body)),
                    digest => digest,
                },
            },
        };
        match &step {
            NodeStep::Submit(body)
            | NodeStep::Executed {
                digest: Some(body), ..
            } => self.produced(body),
            _ => {}
        }
        Ok(Some(step))
    }

    fn requests(
        &self,
        request: &ClusterKeyRequest,
    ) -> Result<Result<Requests, Refused>, RunnerError> {
        let mut rounds = self.rounds.lock().expect("rounds lock");
        let registry = self.registry.read().expect("registry lock");
        let core = self.core.read().expect("core lock");
        let Some(worker) = core.worker() else {
            return Err(RunnerError::Protocol(
                "a gatekeeper provisions no keys".into(),
            ));
        };
        // Nothing is signed for a request the core cannot collect answers for yet.
        let answers = match worker.collect(&registry, request) {
            Ok(answers) => answers,
            Err(e) => return Ok(Err(e.into())),
        };
        let signed = signed_requests(&registry, worker.signer(), request);
        let ticket = rounds.next;
        rounds.next += 1;
        rounds.open.insert(ticket, answers);
        while rounds.open.len() > ROUNDS {
            rounds.open.pop_first();
        }
        Ok(Ok(Requests { ticket, signed }))
    }

    fn check_answer(&self, ticket: Ticket, answer: &Envelope) -> Result<bool, RunnerError> {
        let mut rounds = self.rounds.lock().expect("rounds lock");
        let answers = rounds
            .open
            .get_mut(&ticket)
            .ok_or(RunnerError::UnknownTicket(ticket))?;
        let core = self.core.read().expect("core lock");
        Ok(core
            .worker()
            .is_some_and(|worker| worker.check_answer(answers, answer)))
    }

    fn provisioned(&self, ticket: Ticket) -> Result<Result<(), Refused>, RunnerError> {
        let outcome = {
            let rounds = self.rounds.lock().expect("rounds lock");
            let answers = rounds
                .open
                .get(&ticket)
                .ok_or(RunnerError::UnknownTicket(ticket))?;
            let registry = self.registry.read().expect("registry lock");
            let mut core = self.core.write().expect("core lock");
            let Some(worker) = core.worker_mut() else {
                return Err(RunnerError::Protocol(
                    "a gatekeeper provisions no keys".into(),
                ));
            };
            worker.provisioned_from(&registry, answers)
        };
        match outcome {
            // The core will not provision this key again: only a save gets it to disk.
            Ok(()) => self.save().map(Ok),
            Err(e) => Ok(Err(e.into())),
        }
    }

    fn audit(&self, ticket: Ticket) -> Result<Vec<Refused>, RunnerError> {
        let answers = self
            .rounds
            .lock()
            .expect("rounds lock")
            .open
            .remove(&ticket)
            .ok_or(RunnerError::UnknownTicket(ticket))?;
        let mut core = self.core.write().expect("core lock");
        Ok(core
            .worker_mut()
            .map(|worker| worker.audited(answers))
            .unwrap_or_default()
            .into_iter()
            .map(Refused::from)
            .collect())
    }

    fn answer_all(
        &self,
        requests: &[&[u8]],
    ) -> Result<Vec<Result<Envelope, Refused>>, RunnerError> {
        let registry = self.registry.read().expect("registry lock");
        let core = self.core.read().expect("core lock");
        let Core::Gatekeeper(gatekeeper) = &*core else {
            return Err(RunnerError::Protocol(
                "a worker answers no provisioning requests".into(),
            ));
        };
        let mut answers = gatekeeper.answer_all(&registry, requests, &mut OsRng);
        if self.options.dev_wrong_partials {
            for (answer, request) in answers.iter_mut().zip(requests) {
                if answer.is_ok() {
                    *answer = dev::wrong_answer(gatekeeper, &registry, request);
                }
            }
        }
        Ok(answers
            .into_iter()
            .map(|a| a.map_err(Refused::from))
            .collect())
    }

    fn save_checkpoint(&self, contract: &ContractId) -> Result<(), RunnerError> {
        let checkpoint = self
            .core
            .read()
            .expect("core lock")
            .worker()
            .and_then(|w| w.checkpoint(contract));
        match checkpoint.map(|c| self.dir.save_checkpoint(contract, &c)) {
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot store a checkpoint");
                Err(RunnerError::Storage(e.to_string()))
            }
            _ => Ok(()),
        }
    }

    fn held(&self) -> Result<u64, RunnerError> {
        let core = self.core.read().expect("core lock");
        Ok(match &*core {
            Core::Gatekeeper(g) => g.held(),
            Core::Worker(w) => w.held(),
        } as u64)
    }
}
