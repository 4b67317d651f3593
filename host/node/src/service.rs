//! Starting and running a node: follow the ledger, restore or create the core, register, then
//! drive the core's steps until stopped.

use keyward_tpm::source::SealingSource;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand_core::OsRng;
use thiserror::Error;
use tokio::sync::watch;

use keyward_crypto::{Envelope, IdentityKeypair, IdentityPublicKey, SecretBytes};
use keyward_enclave::Attester;
use keyward_hierarchy::{ClusterKeyRequest, ContractKey};
use keyward_host::Running;
use keyward_ledger::{
    Body, EntryHash, KeyContext, Registration, Registry, Rejected, ResultDigest, Role, Subject,
    registration_nonce,
};
use keyward_ledger_service::client::LedgerClient;
use keyward_ledger_service::follow::{FollowError, Follower};
use keyward_node::{Gatekeeper, GatekeeperStep, ProvisionRequest, StateError, Worker, WorkerStep};

use crate::client::{Clients, ask_holders};
use crate::dev;
use crate::dir::{DirError, NodeDir};

/// Which node this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeRole {
    /// Holds epoch secrets and provisions workers.
    Gatekeeper,
    /// Runs contracts.
    Worker,
}

impl NodeRole {
    /// `gatekeeper` or `worker`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gatekeeper => "gatekeeper",
            Self::Worker => "worker",
        }
    }
}

/// A node's settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Gatekeeper or worker.
    pub role: NodeRole,
    /// The ledger server's URL.
    pub ledger: String,
    /// The genesis hash this node pins.
    pub genesis: EntryHash,
    /// Where its sealed state lives.
    pub data_dir: PathBuf,
    /// Where its JSON-RPC listens; a gatekeeper refuses any address but loopback, RFC 1918 and
    /// IPv6 unique-local (the ledger registers no other).
    pub listen: SocketAddr,
    /// The dev platform key file that signs its evidence with the soft sealing source (a TPM
    /// source attests with the TPM, and this is not read).
    pub platform_key: PathBuf,
    /// Stake to declare (default: the genesis minimum for the role).
    pub stake: Option<u64>,
    /// Where the sealing key and the monotonic counter come from (default: soft, insecure).
    pub sealing: SealingSource,
    /// How long one long-poll of the ledger waits, in milliseconds (also the retry pace).
    pub poll_ms: u64,
    /// Fault injection for `keyward devnet`: a worker that publishes a wrong digest of every
    /// command's result (validly signed with its contract key), as a compromised worker would,
    /// so that the network reports and slashes it. Never set outside a dev network.
    pub dev_wrong_digests: bool,
    /// Fault injection for `keyward devnet`: a gatekeeper that answers every provisioning
    /// request with a wrong partial evaluation under its own signature, as a compromised
    /// gatekeeper would, so that workers name it and report it. Never set outside a dev network.
    pub dev_wrong_partials: bool,
}

impl NodeConfig {
    /// Defaults: listen on `127.0.0.1:0` (any free port), the minimum stake, 1 s polls.
    pub fn new(role: NodeRole, ledger: String, genesis: EntryHash, data_dir: PathBuf) -> Self {
        Self {
            role,
            ledger,
            genesis,
            data_dir,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            platform_key: PathBuf::from("platform.key"),
            stake: None,
            sealing: SealingSource::Soft,
            poll_ms: 1000,
            dev_wrong_digests: false,
            dev_wrong_partials: false,
        }
    }
}

/// Why a node did not start.
#[derive(Debug, Error)]
pub enum NodeError {
    /// A gatekeeper must not listen on a public address.
    #[error("a gatekeeper binds its RPC to a loopback or private address only, not {0}")]
    PublicListen(SocketAddr),
    /// The platform key could not be read.
    #[error("cannot read the platform key {path}: {source}")]
    PlatformKey {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TPM sealing source gave no attester to make registration evidence with.
    #[error("the TPM sealing source gave no attester")]
    NoAttester,
    /// The ledger could not be followed.
    #[error("ledger: {0}")]
    Follow(#[from] FollowError),
    /// The data directory could not be used.
    #[error(transparent)]
    Dir(#[from] DirError),
    /// The sealed state did not restore.
    #[error("{path}: {source}")]
    State {
        /// The state file.
        path: PathBuf,
        /// Why.
        source: StateError,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// The node's core.
pub(crate) enum Core {
    Gatekeeper(Gatekeeper),
    Worker(Worker),
}

impl Core {
    fn id(&self) -> IdentityPublicKey {
        match self {
            Self::Gatekeeper(g) => g.id(),
            Self::Worker(w) => w.id(),
        }
    }

    fn signer(&self) -> IdentityKeypair {
        let key = match self {
            Self::Gatekeeper(g) => g.signer(),
            Self::Worker(w) => w.signer(),
        };
        IdentityKeypair::from_seed(SecretBytes::new(*key.seed().expose()))
    }

    fn seal(&self, dir: &NodeDir, counter: u64) -> keyward_enclave::SealedBlob {
        match self {
            Self::Gatekeeper(g) => g.seal(&dir.sealer, counter, &mut OsRng),
            Self::Worker(w) => w.seal(&dir.sealer, counter, &mut OsRng),
        }
    }

    /// Epochs held (gatekeeper) or ClusterKeys held (worker).
    pub(crate) fn keys(&self) -> usize {
        match self {
            Self::Gatekeeper(g) => g.held(),
            Self::Worker(w) => w.held(),
        }
    }
}

/// What the RPC handlers and the run loop share.
pub(crate) struct Shared {
    pub(crate) role: NodeRole,
    pub(crate) id: IdentityPublicKey,
    /// The verified registry, shared with the follower, which applies each entry to it as it
    /// arrives. Lock order: registry, core.
    pub(crate) registry: Arc<RwLock<Registry>>,
    pub(crate) core: RwLock<Core>,
    pub(crate) dir: NodeDir,
    /// [`NodeConfig::dev_wrong_partials`].
    pub(crate) dev_wrong_partials: bool,
    /// Why the node's last registration attempt failed (the ledger's refusal, or the platform
    /// could not attest); `None` once one is accepted.
    pub(crate) refused: Mutex<Option<String>>,
}

impl Shared {
    /// Hands one provisioning answer to the worker's core ([`Worker::check_answer`]); whether
    /// `t` valid ones are in.
    fn check_answer(&self, answers: &mut keyward_node::Answers, answer: &Envelope) -> bool {
        match &*self.core.read().expect("core lock") {
            Core::Worker(worker) => worker.check_answer(answers, answer),
            Core::Gatekeeper(_) => true,
        }
    }
}

/// A running node.
pub struct Node {
    /// Its identity.
    pub id: IdentityPublicKey,
    /// Its JSON-RPC address.
    pub addr: SocketAddr,
    running: Running,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Node {
    /// Starts a node: follows the ledger from the pinned genesis, restores its sealed core (or
    /// makes and seals a new one), serves its JSON-RPC and runs its loop.
    ///
    /// # Errors
    /// [`NodeError`].
    pub async fn start(config: NodeConfig) -> Result<Self, NodeError> {
        if config.role == NodeRole::Gatekeeper && !keyward_ledger::is_private(&config.listen) {
            return Err(NodeError::PublicListen(config.listen));
        }
        // The soft source's node attests with the dev platform key: read it before anything else,
        // so a wrong path fails before the data directory is made.
        let dev_platform = match config.sealing {
            SealingSource::Soft => Some(dev::read_platform_key(&config.platform_key).map_err(
                |source| NodeError::PlatformKey {
                    path: config.platform_key.clone(),
                    source,
                },
            )?),
            SealingSource::Tpm(_) => None,
        };
        let client = LedgerClient::new(&config.ledger).map_err(FollowError::Client)?;
        let (follower, _) = Follower::start(client, config.genesis).await?;
        let chain = follower.registry().genesis().config().chain.clone();
        let measurement = match config.role {
            NodeRole::Gatekeeper => dev::GATEKEEPER_MEASUREMENT,
            NodeRole::Worker => dev::WORKER_MEASUREMENT,
        };
        let mut dir = NodeDir::open(&config.data_dir, chain, measurement, &config.sealing)?;
        // A TPM sealing source attests with quotes of its PCRs; the soft one with the dev key.
        let platform: Box<dyn Attester> = match (dir.take_attester(), dev_platform) {
            (Some(tpm), _) => tpm,
            (None, Some(key)) => Box::new(key),
            (None, None) => {
                return Err(NodeError::NoAttester);
            }
        };
        let mut core = match dir.load_state()? {
            Some(blob) => {
                let minimum = dir.counter();
                let restored = match config.role {
                    NodeRole::Gatekeeper => {
                        Gatekeeper::restore(&dir.sealer, &config.genesis, &blob, minimum)
                            .map(Core::Gatekeeper)
                    }
                    NodeRole::Worker => {
                        Worker::restore(&dir.sealer, &config.genesis, &blob, minimum)
                            .map(Core::Worker)
                    }
                };
                let core = restored.map_err(|source| NodeError::State {
                    path: config.data_dir.join("node.sealed"),
                    source,
                })?;
                dir.restored(&blob)?;
                core
            }
            None => {
                let core = match config.role {
                    NodeRole::Gatekeeper => {
                        Core::Gatekeeper(Gatekeeper::generate(config.genesis, &mut OsRng))
                    }
                    NodeRole::Worker => Core::Worker(Worker::generate(config.genesis, &mut OsRng)),
                };
                dir.save_state(|counter| core.seal(&dir, counter))?;
                core
            }
        };
        if let Core::Worker(worker) = &mut core {
            let registry = follower.registry();
            for (contract, checkpoint) in dir.checkpoints() {
                if let Err(e) = worker.restore_checkpoint(&registry, &contract, &checkpoint) {
                    tracing::warn!(%contract, error = %e, "checkpoint not restored; rebuilding from the ledger");
                }
            }
        }
        let id = core.id();
        let signer = core.signer();
        let shared = Arc::new(Shared {
            role: config.role,
            id,
            registry: follower.shared(),
            core: RwLock::new(core),
            dir,
            dev_wrong_partials: config.dev_wrong_partials,
            refused: Mutex::new(None),
        });
        let running = crate::rpc::serve(config.listen, shared.clone())
            .await
            .map_err(|source| NodeError::Bind {
                addr: config.listen,
                source,
            })?;
        let (stop, stopped) = watch::channel(false);
        let runner = Runner {
            shared,
            follower,
            signer,
            platform,
            endpoint: running.addr,
            stake: config.stake,
            poll_ms: config.poll_ms,
            dev_wrong_digests: config.dev_wrong_digests,
            pending: Vec::new(),
            unsaved: false,
            clients: Clients::default(),
        };
        let task = tokio::spawn(runner.run(stopped));
        tracing::info!(role = config.role.name(), %id, addr = %running.addr, sealing = config.sealing.name(), "node started");
        Ok(Self {
            id,
            addr: running.addr,
            running,
            stop,
            task,
        })
    }

    /// Stops the loop and the server.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let _ = self.running.handle.stop();
        self.running.handle.stopped().await;
    }
}

/// The most steps one round takes before it reads the ledger again.
const MAX_STEPS_PER_ROUND: usize = 256;

struct Runner {
    shared: Arc<Shared>,
    follower: Follower,
    signer: IdentityKeypair,
    /// Makes the registration's evidence: the TPM's attester or the dev platform key.
    platform: Box<dyn Attester>,
    endpoint: SocketAddr,
    stake: Option<u64>,
    poll_ms: u64,
    dev_wrong_digests: bool,
    /// Digests whose submission failed for a reason other than a refusal: retried first.
    pending: Vec<Body>,
    /// A sealed-state save failed: the core holds a key the disk may not. The core asks to seal
    /// only once per change, so every later step waits for a save that succeeds.
    unsaved: bool,
    /// A worker's kept-alive clients to the gatekeepers.
    clients: Clients,
}

/// A worker's signed requests for `request`, one to each holder of its epoch (gatekeeper,
/// endpoint, request bytes).
pub fn provision_requests(
    registry: &Registry,
    signer: &IdentityKeypair,
    request: &ClusterKeyRequest,
) -> Vec<(IdentityPublicKey, SocketAddr, Vec<u8>)> {
    let Some(state) = registry.epoch(request.epoch) else {
        return Vec::new();
    };
    let genesis = registry.genesis().hash();
    state
        .holders()
        .iter()
        .filter_map(|id| {
            let endpoint = registry.node(id)?.endpoint;
            let signed = ProvisionRequest::sign(signer, &genesis, *id, request.clone(), &mut OsRng);
            Some((*id, endpoint, signed.to_bytes()))
        })
        .collect()
}

/// Why a step was not completed; the round ends and resumes after the next poll.
struct Pause;

impl Runner {
    async fn run(mut self, mut stop: watch::Receiver<bool>) {
        loop {
            self.round().await;
            tokio::select! {
                biased;
                _ = stop.changed() => return,
                polled = self.follower.wait(self.poll_ms) => match polled {
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot follow the ledger");
                        tokio::select! {
                            _ = stop.changed() => return,
                            () = tokio::time::sleep(Duration::from_millis(self.poll_ms)) => {}
                        }
                    }
                },
            }
        }
    }

    async fn submit(&mut self, body: &Body) -> Result<(), Pause> {
        match self.follower.submit(&self.signer, body, &mut OsRng).await {
            Ok(applied) => {
                tracing::info!(
                    kind = applied.kind.name(),
                    height = applied.height,
                    "submitted"
                );
                Ok(())
            }
            Err(FollowError::Refused(reason)) => {
                tracing::info!(kind = body.kind().name(), %reason, "step refused; recomputing");
                Err(Pause)
            }
            Err(e) => {
                tracing::warn!(kind = body.kind().name(), error = %e, "cannot submit");
                Err(Pause)
            }
        }
    }

    /// Submits the node's registration. A refusal (evidence the genesis policy does not accept,
    /// too little stake) is shown by `getHealth` until the node is registered.
    async fn register(&mut self, body: &Body) -> Result<(), Pause> {
        match self.follower.submit(&self.signer, body, &mut OsRng).await {
            Ok(applied) => {
                tracing::info!(
                    kind = applied.kind.name(),
                    height = applied.height,
                    "registered"
                );
                Ok(())
            }
            // An earlier attempt went through; the next round sees it on the ledger.
            Err(FollowError::Refused(Rejected::AlreadyRegistered { .. })) => Ok(()),
            Err(FollowError::Refused(reason)) => {
                self.refused(format!(
                    "the ledger refuses this node's registration: {reason}"
                ));
                Err(Pause)
            }
            Err(e) => {
                tracing::warn!(kind = body.kind().name(), error = %e, "cannot submit");
                Err(Pause)
            }
        }
    }

    /// Records why registering failed, for `getHealth`; logged as an error when the reason is
    /// new (the node retries every round), at debug level when it repeats.
    fn refused(&self, reason: String) {
        let mut refused = self.shared.refused.lock().expect("refused lock");
        if refused.as_deref() == Some(reason.as_str()) {
            tracing::debug!(%reason, "registration still refused");
        } else {
            tracing::error!(%reason, "registration failed; retrying");
            *refused = Some(reason);
        }
    }

    async fn round(&mut self) {
        while let Some(body) = self.pending.pop() {
            match self.follower.submit(&self.signer, &body, &mut OsRng).await {
                Err(FollowError::Refused(_)) | Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "cannot submit a digest; will retry");
                    self.pending.push(body);
                    return;
                }
            }
        }
        for _ in 0..MAX_STEPS_PER_ROUND {
            let done = match self.step().await {
                Ok(done) => done,
                Err(Pause) => return,
            };
            if done {
                return;
            }
        }
    }

    /// The node's registration, while it has none on the ledger.
    fn registration(&mut self) -> Result<Option<Body>, Pause> {
        let registry = self.shared.registry.read().expect("registry lock");
        if registry.node(&self.shared.id).is_some() {
            *self.shared.refused.lock().expect("refused lock") = None;
            return Ok(None);
        }
        let params = &registry.genesis().config().params;
        let (role, measurement, stake) = match self.shared.role {
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
        let (keys, channel) = match &*self.shared.core.read().expect("core lock") {
            Core::Gatekeeper(g) => (g.bound_keys(), g.channel()),
            Core::Worker(w) => (w.bound_keys(), w.channel()),
        };
        let nonce = registration_nonce(&registry.genesis().hash(), role);
        // A TPM quote is slow I/O: not under the locks.
        drop(registry);
        let evidence = match self.platform.attest(measurement, &keys, &nonce, &mut OsRng) {
            Ok(evidence) => evidence,
            Err(e) => {
                self.refused(format!("cannot attest this node's keys: {e}"));
                return Err(Pause);
            }
        };
        let body = Registration {
            channel,
            endpoint: self.endpoint,
            stake: self.stake.unwrap_or(stake),
            evidence,
        };
        Ok(Some(match self.shared.role {
            NodeRole::Gatekeeper => Body::GatekeeperRegister(body),
            NodeRole::Worker => Body::WorkerRegister(body),
        }))
    }

    /// One step; `Ok(true)` when there is nothing left to do.
    async fn step(&mut self) -> Result<bool, Pause> {
        if let Some(body) = self.registration()? {
            self.register(&body).await?;
            return Ok(false);
        }
        // A failed save is retried before anything else, for both roles: every entry may depend
        // on the state it would store (a ClusterKey, dropped shares), and the core will not
        // produce that state again.
        if self.unsaved {
            self.save_unsaved()?;
        }
        let step = {
            let registry = self.shared.registry.read().expect("registry lock");
            let mut core = self.shared.core.write().expect("core lock");
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
        };
        match step {
            None => Ok(true),
            Some(Step::Gatekeeper(GatekeeperStep::Submit(body))) => {
                self.submit(&body).await.map(|()| false)
            }
            Some(Step::Gatekeeper(GatekeeperStep::Seal)) => self.save_unsaved().map(|()| false),
            Some(Step::Gatekeeper(GatekeeperStep::SealThenSubmit(body))) => {
                self.save_unsaved()?;
                self.submit(&body).await.map(|()| false)
            }
            Some(Step::Worker(step)) => self.worker_step(step).await.map(|()| false),
        }
    }

    /// Stores the state; until that succeeds, `unsaved` holds back every entry that depends on it.
    fn save_unsaved(&mut self) -> Result<(), Pause> {
        self.unsaved = true;
        self.save_state()?;
        self.unsaved = false;
        Ok(())
    }

    fn save_state(&self) -> Result<(), Pause> {
        let dir = &self.shared.dir;
        // The core lock is held only while sealing, not while the blob is written.
        dir.save_state(|counter| {
            let core = self.shared.core.read().expect("core lock");
            core.seal(dir, counter)
        })
        .map_err(|e| {
            tracing::error!(error = %e, "cannot store the sealed state; not acting on it");
            Pause
        })
    }

    async fn worker_step(&mut self, step: WorkerStep) -> Result<(), Pause> {
        match step {
            WorkerStep::Provision(request) => self.provision(&request).await,
            WorkerStep::Submit(body) => self.submit(&body).await,
            WorkerStep::Executed {
                contract,
                command,
                reply,
                digest,
            } => {
                if let Some(Err(e)) = reply.map(|r| self.shared.dir.save_reply(&command, &r)) {
                    tracing::warn!(error = %e, "cannot store a reply");
                }
                let digest = match digest {
                    Some(body) if self.dev_wrong_digests => Some(self.wrong_digest(body)),
                    digest => digest,
                };
                if let Some(body) = digest
                    && let Err(Pause) = self.submit(&body).await
                {
                    self.pending.push(body);
                }
                let checkpoint = match &*self.shared.core.read().expect("core lock") {
                    Core::Worker(w) => w.checkpoint(&contract),
                    Core::Gatekeeper(_) => None,
                };
                if let Some(Err(e)) =
                    checkpoint.map(|c| self.shared.dir.save_checkpoint(&contract, &c))
                {
                    tracing::warn!(error = %e, "cannot store a checkpoint");
                }
                Ok(())
            }
        }
    }

    /// A command's digest replaced by a wrong one, signed with the worker's own contract key
    /// ([`NodeConfig::dev_wrong_digests`]).
    fn wrong_digest(&self, body: Body) -> Body {
        let Body::ResultDigest(result) = body else {
            return body;
        };
        let registry = self.shared.registry.read().expect("registry lock");
        let core = self.shared.core.read().expect("core lock");
        let key = match (&result.subject, &*core) {
            (Subject::Command(id), Core::Worker(worker)) => registry.command(id).and_then(|c| {
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

    /// Asks every holder of the request's epoch and hands the answers to the core.
    async fn provision(&mut self, request: &ClusterKeyRequest) -> Result<(), Pause> {
        let (signed, mut answers) = {
            let registry = self.shared.registry.read().expect("registry lock");
            let core = self.shared.core.read().expect("core lock");
            let Core::Worker(worker) = &*core else {
                return Err(Pause);
            };
            // Nothing is signed for a request the core cannot collect answers for yet.
            let answers = worker.collect(&registry, request).map_err(|e| {
                tracing::info!(reason = e.name(), error = %e, "ClusterKey not provisioned yet");
                Pause
            })?;
            (
                provision_requests(&registry, &self.signer, request),
                answers,
            )
        };
        // Each answer is checked as it arrives, while the others are on their way; the key is
        // combined as soon as t are valid.
        let mut asks = ask_holders(&mut self.clients, signed);
        while let Some(answer) = asks.next().await {
            if self.shared.check_answer(&mut answers, &answer) {
                break;
            }
        }
        let outcome = {
            let registry = self.shared.registry.read().expect("registry lock");
            let mut core = self.shared.core.write().expect("core lock");
            let Core::Worker(worker) = &mut *core else {
                return Err(Pause);
            };
            worker.provisioned_from(&registry, &answers)
        };
        // The answers still on their way are checked in the background, so that a wrong partial
        // is named and reported even when the key did not need it.
        let shared = self.shared.clone();
        tokio::spawn(async move {
            while let Some(answer) = asks.next().await {
                shared.check_answer(&mut answers, &answer);
            }
            let refused = match &mut *shared.core.write().expect("core lock") {
                Core::Worker(worker) => worker.audited(answers),
                Core::Gatekeeper(_) => Vec::new(),
            };
            for r in refused {
                tracing::warn!(reason = r.name(), error = %r, "a provisioning answer was refused");
            }
        });
        match outcome {
            Ok(()) => {
                tracing::info!(
                    epoch = request.epoch.0, cluster = %request.cluster,
                    generation = request.generation.0, "ClusterKey provisioned and verified"
                );
                // Retried on the next step if it fails: the core will not provision this key
                // again, so only `unsaved` gets it to disk.
                self.save_unsaved()
            }
            Err(e @ keyward_node::ProvisionError::PublishedKeyMismatch) => {
                tracing::error!(error = %e, "ALARM: ClusterKey refused");
                Err(Pause)
            }
            Err(e) => {
                tracing::info!(reason = e.name(), error = %e, "ClusterKey not provisioned yet");
                Err(Pause)
            }
        }
    }
}

#[allow(clippy::large_enum_variant)] // one at a time, on the stack
enum Step {
    Gatekeeper(GatekeeperStep),
    Worker(WorkerStep),
}
