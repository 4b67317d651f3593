//! Starting and running a node: follow the ledger, restore or create the core, register, then
//! drive the core's steps until stopped.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rand_core::OsRng;
use thiserror::Error;
use tokio::sync::watch;

use keyward_crypto::IdentityPublicKey;
use keyward_enclave::Attester;
use keyward_hierarchy::ClusterKeyRequest;
use keyward_host::Running;
use keyward_ledger::{Body, Entry, EntryHash, Position, Registry, Rejected};
use keyward_ledger_service::client::LedgerClient;
use keyward_ledger_service::follow::{EntrySigner, FollowError, Follower};
use keyward_node::StateError;
use keyward_tpm::source::SealingSource;

use crate::client::{Clients, ask_holders};
use crate::dev;
use crate::dir::{DirError, NodeDir, Replies};
use crate::runner::{InProcess, Isolated, NodeRunner, NodeStep, Options, Requests, RunnerError};

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

    /// What a dev build of this role reports as its measurement.
    pub fn measurement(self) -> [u8; 32] {
        match self {
            Self::Gatekeeper => dev::GATEKEEPER_MEASUREMENT,
            Self::Worker => dev::WORKER_MEASUREMENT,
        }
    }
}

/// Where a node's core runs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RunnerKind {
    /// In the node's own process (the default).
    #[default]
    InProcess,
    /// In a `keyward enclave --role …` process reached at this Unix socket, which holds the sealing
    /// source and the platform's attester: the node's own sealing and platform key settings are
    /// not used.
    Isolated {
        /// The enclave's socket.
        socket: PathBuf,
    },
}

impl RunnerKind {
    /// `in-process` or `isolated`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::InProcess => "in-process",
            Self::Isolated { .. } => "isolated",
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
    /// Where its sealed state (in-process) and its replies to users live.
    pub data_dir: PathBuf,
    /// Where its core runs (default: in-process).
    pub runner: RunnerKind,
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
            runner: RunnerKind::InProcess,
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
    /// Dev fault injection needs the core in-process.
    #[error("dev fault injection is not available with the isolated runner")]
    DevFaultsIsolated,
    /// The isolated enclave could not be reached or serves another node.
    #[error(transparent)]
    Runner(#[from] RunnerError),
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

/// What the RPC handlers and the run loop share.
pub(crate) struct Shared {
    pub(crate) role: NodeRole,
    pub(crate) id: IdentityPublicKey,
    /// The host's verified registry, shared with the follower, which applies each entry to it
    /// as it arrives.
    pub(crate) registry: Arc<RwLock<Registry>>,
    /// The node's core, wherever it runs.
    pub(crate) runner: Arc<dyn NodeRunner>,
    pub(crate) replies: Replies,
    /// Epochs or ClusterKeys the core held after its last step, for `getHealth`.
    pub(crate) keys: AtomicU64,
    /// Why the node's last registration attempt failed (the ledger's refusal, or the platform
    /// could not attest); `None` once one is accepted.
    pub(crate) refused: Mutex<Option<String>>,
}

/// Signs the node's entries with its core ([`NodeRunner::sign`]).
struct CoreSigner(Arc<dyn NodeRunner>);

impl EntrySigner for CoreSigner {
    fn author(&self) -> IdentityPublicKey {
        self.0.id()
    }

    fn sign_entry(
        &self,
        position: Position,
        body: &Body,
        _: &mut impl keyward_crypto::Rng,
    ) -> Result<Entry, String> {
        self.0.sign(position, body).map_err(|e| e.to_string())
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
        let client = LedgerClient::new(&config.ledger).map_err(FollowError::Client)?;
        match &config.runner {
            RunnerKind::InProcess => {
                // Read the platform key before contacting the ledger: a wrong path fails first.
                let platform = platform_key(&config)?;
                let (follower, _) = Follower::start(client, config.genesis).await?;
                let runner = in_process(&config, &follower, platform)?;
                Self::run(config, follower, Arc::new(runner)).await
            }
            RunnerKind::Isolated { socket } => {
                if config.dev_wrong_digests || config.dev_wrong_partials {
                    return Err(NodeError::DevFaultsIsolated);
                }
                let (follower, _) = Follower::start(client, config.genesis).await?;
                let genesis = follower.genesis_entry().clone();
                let runner = Isolated::connect(socket.clone(), config.role, genesis)?;
                Self::run(config, follower, Arc::new(runner)).await
            }
        }
    }

    /// Serves the node's JSON-RPC and starts its loop, with its core in `runner`.
    async fn run(
        config: NodeConfig,
        follower: Follower,
        runner: Arc<dyn NodeRunner>,
    ) -> Result<Self, NodeError> {
        let id = runner.id();
        let shared = Arc::new(Shared {
            role: config.role,
            id,
            registry: follower.shared(),
            keys: AtomicU64::new(runner.held().unwrap_or(0)),
            runner,
            replies: Replies::open(&config.data_dir)?,
            refused: Mutex::new(None),
        });
        let running = crate::rpc::serve(config.listen, shared.clone())
            .await
            .map_err(|source| NodeError::Bind {
                addr: config.listen,
                source,
            })?;
        let (stop, stopped) = watch::channel(false);
        let signer = CoreSigner(shared.runner.clone());
        let runner = Runner {
            shared,
            follower,
            signer,
            endpoint: running.addr,
            stake: config.stake,
            poll_ms: config.poll_ms,
            pending: Vec::new(),
            clients: Clients::default(),
        };
        let task = tokio::spawn(runner.run(stopped));
        tracing::info!(role = config.role.name(), %id, addr = %running.addr, runner = config.runner.name(), "node started");
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
    signer: CoreSigner,
    endpoint: SocketAddr,
    stake: Option<u64>,
    poll_ms: u64,
    /// Digests whose submission failed for a reason other than a refusal: retried first.
    pending: Vec<Body>,
    /// A worker's kept-alive clients to the gatekeepers.
    clients: Clients,
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
        if self
            .shared
            .registry
            .read()
            .expect("registry lock")
            .node(&self.shared.id)
            .is_some()
        {
            *self.shared.refused.lock().expect("refused lock") = None;
            return Ok(None);
        }
        match self.shared.runner.registration(self.endpoint, self.stake) {
            Ok(body) => Ok(Some(body)),
            Err(e @ RunnerError::Attest(_)) => {
                self.refused(e.to_string());
                Err(Pause)
            }
            Err(e) => Err(runner_failed(&e)),
        }
    }

    /// Hands the core the entries its registry lacks (an isolated enclave keeps its own), so
    /// its next step sees what this node's last submission changed.
    async fn sync_core(&mut self) -> Result<(), Pause> {
        loop {
            let from = self
                .shared
                .runner
                .next_height()
                .map_err(|e| runner_failed(&e))?;
            let entries = self.follower.entries_from(from).await.map_err(|e| {
                tracing::warn!(error = %e, "cannot read the ledger for the core");
                Pause
            })?;
            if entries.is_empty() {
                return Ok(());
            }
            self.shared
                .runner
                .follow(entries)
                .map_err(|e| runner_failed(&e))?;
        }
    }

    /// One step; `Ok(true)` when there is nothing left to do.
    async fn step(&mut self) -> Result<bool, Pause> {
        self.sync_core().await?;
        if let Some(body) = self.registration()? {
            self.register(&body).await?;
            return Ok(false);
        }
        let step = self.shared.runner.step();
        if let Ok(held) = self.shared.runner.held() {
            self.shared.keys.store(held, Ordering::Relaxed);
        }
        match step.map_err(|e| runner_failed(&e))? {
            None => Ok(true),
            Some(NodeStep::Sealed) => Ok(false),
            Some(NodeStep::Submit(body)) => self.submit(&body).await.map(|()| false),
            Some(NodeStep::Provision(request)) => self.provision(&request).await.map(|()| false),
            Some(NodeStep::Executed {
                contract,
                command,
                reply,
                digest,
            }) => {
                if let Some(Err(e)) = reply.map(|r| self.shared.replies.save_reply(&command, &r)) {
                    tracing::warn!(error = %e, "cannot store a reply");
                }
                if let Some(body) = digest
                    && let Err(Pause) = self.submit(&body).await
                {
                    self.pending.push(body);
                }
                // A failure is logged by the core's side; the contract is rebuilt from the
                // ledger on a restart without it.
                let _ = self.shared.runner.save_checkpoint(&contract);
                Ok(false)
            }
        }
    }

    /// Asks every holder of the request's epoch and hands the answers to the core.
    async fn provision(&mut self, request: &ClusterKeyRequest) -> Result<(), Pause> {
        let runner = self.shared.runner.clone();
        let Requests { ticket, signed } = match runner.requests(request) {
            Ok(Ok(requests)) => requests,
            Ok(Err(refused)) => {
                tracing::info!(reason = refused.reason, error = %refused, "ClusterKey not provisioned yet");
                return Err(Pause);
            }
            Err(e) => return Err(runner_failed(&e)),
        };
        let signed = {
            let registry = self.shared.registry.read().expect("registry lock");
            signed
                .into_iter()
                .filter_map(|(id, bytes)| Some((id, registry.node(&id)?.endpoint, bytes)))
                .collect()
        };
        // Each answer is checked as it arrives, while the others are on their way; the key is
        // combined as soon as t are valid.
        let mut asks = ask_holders(&mut self.clients, signed);
        while let Some(answer) = asks.next().await {
            match runner.check_answer(ticket, &answer) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return Err(runner_failed(&e)),
            }
        }
        let outcome = runner.provisioned(ticket);
        // The answers still on their way are checked in the background, so that a wrong partial
        // is named and reported even when the key did not need it.
        tokio::spawn(async move {
            while let Some(answer) = asks.next().await {
                if runner.check_answer(ticket, &answer).is_err() {
                    return;
                }
            }
            for r in runner.audit(ticket).unwrap_or_default() {
                tracing::warn!(reason = r.reason, error = %r, "a provisioning answer was refused");
            }
        });
        match outcome {
            Ok(Ok(())) => {
                tracing::info!(
                    epoch = request.epoch.0, cluster = %request.cluster,
                    generation = request.generation.0, "ClusterKey provisioned and verified"
                );
                Ok(())
            }
            Ok(Err(refused)) if refused.reason == "published_key_mismatch" => {
                tracing::error!(error = %refused, "ALARM: ClusterKey refused");
                Err(Pause)
            }
            Ok(Err(refused)) => {
                tracing::info!(reason = refused.reason, error = %refused, "ClusterKey not provisioned yet");
                Err(Pause)
            }
            Err(e) => Err(runner_failed(&e)),
        }
    }
}

/// Logs a failed runner call; the round ends and the node retries after the next poll.
fn runner_failed(e: &RunnerError) -> Pause {
    match e {
        RunnerError::Storage(_) => {
            tracing::error!(error = %e, "the core cannot store its state; not acting on it");
        }
        _ => tracing::warn!(error = %e, "the core did not answer"),
    }
    Pause
}

/// The in-process core for `config`, over the follower's registry.
fn in_process(
    config: &NodeConfig,
    follower: &Follower,
    platform: Option<Box<dyn Attester>>,
) -> Result<InProcess, NodeError> {
    let chain = follower.registry().genesis().config().chain.clone();
    let mut dir = NodeDir::open(
        &config.data_dir,
        chain,
        config.role.measurement(),
        &config.sealing,
    )?;
    // A TPM sealing source attests with quotes of its PCRs; the soft one with the dev key.
    let platform = dir
        .take_attester()
        .or(platform)
        .ok_or(NodeError::NoAttester)?;
    InProcess::open(
        config.role,
        follower.shared(),
        true,
        dir,
        platform,
        Options {
            dev_wrong_digests: config.dev_wrong_digests,
            dev_wrong_partials: config.dev_wrong_partials,
        },
    )
}

/// The soft sealing source's dev platform key (a TPM source attests with the TPM instead).
fn platform_key(config: &NodeConfig) -> Result<Option<Box<dyn Attester>>, NodeError> {
    match config.sealing {
        SealingSource::Soft => {
            let key = dev::read_platform_key(&config.platform_key).map_err(|source| {
                NodeError::PlatformKey {
                    path: config.platform_key.clone(),
                    source,
                }
            })?;
            Ok(Some(Box::new(key)))
        }
        SealingSource::Tpm(_) => Ok(None),
    }
}
