//! The writer: one thread owns the enclave runner and the store, applies requests in arrival
//! order, commits the records of everything it applied with one fsync (group commit), and only
//! then has the enclave release the answers.
//!
//! The enclave checks each batch's signatures together ([`keyward_vote::SignerConfig::prepare_all`]:
//! about half the CPU of checking them one by one), then applies the tower rules and signs; the
//! RPC threads only parse. A request with a bad signature is refused like any other, with its
//! batch's answers.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use keyward_crypto::SolanaPubkey;
pub use keyward_host::Failure;
use keyward_vote::{Answer, CommitManifest, Method, Rejection, ServiceId, SignedRequest};

use crate::metrics::Metrics;
use crate::runner::{Changes, Runner, RunnerError, Stored};
pub use crate::runner::{Query, QueryAnswer};
use crate::store::Store;

/// Why a request got no answer from the core.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// The core refused it.
    #[error(transparent)]
    Refused(#[from] Rejection),
    /// The store could not commit; nothing was released.
    #[error("the store could not commit: {0}")]
    Storage(String),
    /// The enclave could not be reached or lost its session; nothing was released, and a retry
    /// may succeed once it is back.
    #[error("{0}")]
    Unavailable(RunnerError),
    /// Too many requests are waiting.
    #[error("the signer is busy: {0} requests are waiting")]
    Busy(usize),
    /// The writer has stopped.
    #[error("the signer is shutting down")]
    Stopped,
}

/// Where the writer makes records durable: [`Store`] in service, a stand-in in tests.
pub trait Durable: Send + 'static {
    /// The signer service's id.
    fn service(&self) -> ServiceId;

    /// What the enclave opens.
    ///
    /// # Errors
    /// What went wrong.
    fn stored(&self) -> Result<Stored, String>;

    /// Writes the changes (records and evidence), the commit's manifest and, if given, a new
    /// sealed platform key in one transaction, and returns once it is durable; on an error,
    /// none of it may be assumed durable.
    ///
    /// # Errors
    /// What went wrong, for the log and the refusal.
    fn make_durable(
        &mut self,
        changes: &Changes,
        manifest: &CommitManifest,
        platform: Option<&[u8]>,
    ) -> Result<(), String>;
}

impl Durable for Store {
    fn service(&self) -> ServiceId {
        Store::service(self)
    }

    fn stored(&self) -> Result<Stored, String> {
        Store::stored(self).map_err(|e| e.to_string())
    }

    fn make_durable(
        &mut self,
        changes: &Changes,
        manifest: &CommitManifest,
        platform: Option<&[u8]>,
    ) -> Result<(), String> {
        self.commit(changes, manifest, platform)
            .map_err(|e| e.to_string())
    }
}

/// Why a session could not be opened.
#[derive(Debug, Clone, thiserror::Error)]
pub enum OpenFailure {
    /// The enclave refused the store, or could not be reached.
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// The store could not be read or could not commit.
    #[error("the store: {0}")]
    Store(String),
}

/// Opens a session over what `store` holds: the enclave opens it, the startup commit (and a new
/// platform key) is made durable, and the enclave advances its counter to it. Done at start-up,
/// and again by the writer after an isolated enclave was lost.
///
/// # Errors
/// [`OpenFailure`]; then no request may be applied.
pub fn open_session(runner: &mut impl Runner, store: &mut impl Durable) -> Result<(), OpenFailure> {
    let stored = store.stored().map_err(OpenFailure::Store)?;
    let opening = runner.open(store.service(), &stored)?;
    if let Err(e) = store.make_durable(
        &Changes::default(),
        &opening.startup,
        opening.platform.as_deref(),
    ) {
        runner.close();
        return Err(OpenFailure::Store(e));
    }
    runner.release()?;
    Ok(())
}

enum Job {
    Apply {
        request: Box<SignedRequest>,
        reply: oneshot::Sender<Result<Answer, ServiceError>>,
    },
    Query {
        query: Query,
        reply: oneshot::Sender<Result<QueryAnswer, ServiceError>>,
    },
}

impl Job {
    fn fail(self, error: ServiceError) {
        match self {
            Self::Apply { reply, .. } => drop(reply.send(Err(error))),
            Self::Query { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

/// How often the writer tries to reopen a lost enclave session while no request comes.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// Why there is no enclave session, while there is none: the writer sets it when the session is
/// lost or does not reopen and clears it when a session is open again; `GET /health` reports it.
/// Cheap to clone.
#[derive(Clone, Default)]
pub struct Reachability(Arc<Mutex<Option<String>>>);

impl Reachability {
    /// Why there is no enclave session, or `None` while one is open.
    pub fn lost(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, lost: Option<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = lost;
    }
}

/// The handle the RPC layer sends requests through. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    queue: SyncSender<Job>,
    depth: usize,
    failure: Failure,
    reachability: Reachability,
}

impl Engine {
    /// Starts the writer thread over `runner`, whose session is open over `store`
    /// ([`open_session`]).
    pub fn start(
        runner: impl Runner,
        store: impl Durable,
        metrics: Arc<Metrics>,
        max_batch: usize,
        queue_depth: usize,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let (queue, rx) = sync_channel(queue_depth);
        let failure = Failure::default();
        let reachability = Reachability::default();
        let writer = Writer {
            runner,
            store,
            open: true,
            metrics,
            failure: failure.clone(),
            reachability: reachability.clone(),
            unreachable: false,
        };
        let thread = std::thread::Builder::new()
            .name("keyward-signer-writer".into())
            .spawn(move || {
                // However the writer ends (shutdown or a panic), health reports it.
                let _stopped = writer.failure.stopped_guard();
                writer.run(rx, max_batch);
            })
            .expect("the OS can start a thread");
        (
            Self {
                queue,
                depth: queue_depth,
                failure,
                reachability,
            },
            thread,
        )
    }

    /// Whether a commit has failed (then every request is refused until a restart).
    pub fn failure(&self) -> &Failure {
        &self.failure
    }

    /// Whether the enclave session is lost (an isolated enclave that is down or restarting).
    pub fn reachability(&self) -> &Reachability {
        &self.reachability
    }

    /// Has the enclave check and apply `request`, and returns its answer once its record is
    /// durable.
    ///
    /// # Errors
    /// [`ServiceError`].
    pub async fn apply(&self, request: SignedRequest) -> Result<Answer, ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Apply {
            request: Box::new(request),
            reply,
        })?;
        answer.await.map_err(|_| ServiceError::Stopped)?
    }

    /// Answers `query` from durable state: after the commit of the batch it joins.
    ///
    /// # Errors
    /// [`ServiceError::Busy`], [`ServiceError::Stopped`], [`ServiceError::Unavailable`], or
    /// [`ServiceError::Storage`] once a commit has failed.
    pub async fn query(&self, query: Query) -> Result<QueryAnswer, ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Query { query, reply })?;
        answer.await.map_err(|_| ServiceError::Stopped)?
    }

    fn send(&self, job: Job) -> Result<(), ServiceError> {
        self.queue.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => ServiceError::Busy(self.depth),
            TrySendError::Disconnected(_) => ServiceError::Stopped,
        })
    }
}

struct Pending {
    reply: oneshot::Sender<Result<Answer, ServiceError>>,
    method: Method,
    identity: SolanaPubkey,
}

struct Writer<R, D> {
    runner: R,
    store: D,
    /// Whether the runner holds a session over the store (an isolated enclave may lose it).
    open: bool,
    metrics: Arc<Metrics>,
    failure: Failure,
    reachability: Reachability,
    /// Whether the session was lost because the enclave could not be reached: then the writer
    /// retries without waiting for a request.
    unreachable: bool,
}

impl<R: Runner, D: Durable> Writer<R, D> {
    fn run(mut self, rx: Receiver<Job>, max_batch: usize) {
        self.count_validators();
        loop {
            // While the enclave cannot be reached, try to reopen the session now and then even
            // without requests, so that health recovers as soon as the enclave is back. Other
            // losses (the counter, a store that does not open) wait for a request, as each
            // attempt reads the whole store.
            let first = if self.open || !self.unreachable || self.failure.get().is_some() {
                rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
            } else {
                rx.recv_timeout(REOPEN_EVERY)
            };
            let first = match first {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = self.reopen() {
                        tracing::debug!(error = %e, "the enclave session is still closed");
                    }
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // After a failed commit the store may be behind what was applied, and a retry
            // could be answered from memory without ever being durable: fail closed until a
            // restart reloads the state from the store.
            if let Some(e) = self.failure.get() {
                first.fail(ServiceError::Storage(e.to_owned()));
                continue;
            }
            if let Err(error) = self.reopen() {
                // Everything already waiting gets the same answer: one reopen attempt per
                // burst, not one (a full read of the store) per request.
                first.fail(error.clone());
                while let Ok(job) = rx.try_recv() {
                    job.fail(error.clone());
                }
                continue;
            }
            self.batch(first, &rx, max_batch);
        }
    }

    /// Opens a new session if the last one was lost.
    fn reopen(&mut self) -> Result<(), ServiceError> {
        if self.open {
            return Ok(());
        }
        match open_session(&mut self.runner, &mut self.store) {
            Ok(()) => {
                tracing::info!("the enclave session is open again");
                self.open = true;
                self.reachability.set(None);
                self.count_validators();
                Ok(())
            }
            Err(OpenFailure::Runner(e)) => {
                self.closed(&e);
                Err(ServiceError::Unavailable(e))
            }
            Err(OpenFailure::Store(e)) => {
                self.unreachable = false;
                self.reachability
                    .set(Some(format!("the store cannot be read: {e}")));
                Err(ServiceError::Storage(e))
            }
        }
    }

    /// Records why the session is closed, for health and for the unattended retries.
    fn closed(&mut self, error: &RunnerError) {
        self.unreachable = matches!(error, RunnerError::Unavailable(_));
        self.reachability.set(Some(error.to_string()));
    }

    fn count_validators(&mut self) {
        match self.runner.query(&Query::Registered) {
            Ok(QueryAnswer::Registered(n)) => {
                self.metrics.validators.set(n as i64);
            }
            Ok(_) => {}
            Err(e) => self.lost(&e),
        }
    }

    /// The session is gone: everything in flight is answered `Unavailable`, and the next batch
    /// opens a new one.
    fn lost(&mut self, error: &RunnerError) {
        tracing::error!(error = %error, "the enclave session is lost; nothing held was released");
        self.runner.close();
        self.open = false;
        self.closed(error);
    }

    /// Applies `first` and whatever else is queued, in order, up to `max_batch` jobs; commits
    /// their records with one fsync; then releases the answers. The enclave takes what is
    /// queued as one call (its signatures checked together); what arrives while it works is
    /// applied next and joins the commit, so the commit grows with the load.
    fn batch(&mut self, first: Job, rx: &Receiver<Job>, max_batch: usize) {
        let mut pending = Vec::new();
        let mut queries = Vec::new();
        let mut changes = Changes::default();
        let mut taken = 0;
        let mut next = Some(first);
        let mut failed: Option<RunnerError> = None;
        while next.is_some() && failed.is_none() {
            let mut requests = Vec::new();
            while let Some(job) = next.take() {
                taken += 1;
                match job {
                    Job::Apply { request, reply } => {
                        pending.push(Pending {
                            reply,
                            method: request.payload.method(),
                            identity: request.identity,
                        });
                        requests.push(*request);
                    }
                    // Answered after the commit: a query must not see a key or count that is
                    // not durable yet.
                    Job::Query { query, reply } => queries.push((query, reply)),
                }
                if taken < max_batch {
                    next = rx.try_recv().ok();
                }
            }
            if !requests.is_empty() {
                match self.runner.apply(requests) {
                    Ok(changed) => changes.extend(changed),
                    Err(e) => failed = Some(e),
                }
            }
            // Only after applying: what arrived meanwhile shares this commit.
            if taken < max_batch && failed.is_none() {
                next = rx.try_recv().ok();
            }
        }
        let released = match failed {
            Some(e) => Err(ServiceError::Unavailable(e)),
            None => self.commit(&changes, pending.len()),
        };
        let outcomes = match released {
            Ok(outcomes) if outcomes.len() == pending.len() => outcomes,
            Ok(outcomes) => {
                let e = RunnerError::Protocol(format!(
                    "{} outcomes released for {} requests",
                    outcomes.len(),
                    pending.len()
                ));
                self.lost(&e);
                return fail_all(pending, queries, &ServiceError::Unavailable(e));
            }
            Err(e) => {
                if let ServiceError::Unavailable(lost) = &e {
                    self.lost(lost);
                }
                return fail_all(pending, queries, &e);
            }
        };
        // Counting validators walks them all: only when a registration may have changed.
        if pending
            .iter()
            .any(|p| matches!(p.method, Method::RegisterNode | Method::DeregisterNode))
        {
            self.count_validators();
        }
        for (p, outcome) in pending.into_iter().zip(outcomes) {
            let outcome = match outcome {
                Ok(answer) => {
                    audit_answer(p.method, &p.identity, &answer);
                    Ok(answer)
                }
                Err(rejection) => {
                    self.metrics.refused(p.method, &rejection);
                    audit_refusal(p.method, &p.identity, &rejection);
                    Err(ServiceError::Refused(rejection))
                }
            };
            let _ = p.reply.send(outcome);
        }
        for (query, reply) in queries {
            let answer = self.runner.query(&query);
            if let Err(e) = &answer {
                // The session is gone with it (an isolated enclave dropped the connection).
                self.lost(e);
            }
            let _ = reply.send(answer.map_err(ServiceError::Unavailable));
        }
    }

    /// Makes `changes` durable under a sealed manifest (if any), then has the enclave release
    /// the outcomes of the batch.
    fn commit(
        &mut self,
        changes: &Changes,
        requests: usize,
    ) -> Result<Vec<crate::runner::Outcome>, ServiceError> {
        if changes.is_empty() {
            return self.runner.release().map_err(ServiceError::Unavailable);
        }
        // A commit's time: sealing, the store's fsync and the counter's advance (release).
        let started = Instant::now();
        let manifest = self.runner.seal().map_err(ServiceError::Unavailable)?;
        let result = self.store.make_durable(changes, &manifest, None);
        self.metrics.batch_size.observe(requests as f64);
        let released = match result {
            Ok(()) => self.runner.release().map_err(ServiceError::Unavailable),
            Err(e) => {
                tracing::error!(
                    target: "keyward::audit", event = "commit_failed", error = %e,
                    requests, "refusing every request until restarted"
                );
                self.failure.set(e.clone());
                self.runner.close();
                Err(ServiceError::Storage(e))
            }
        };
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        released
    }
}

fn fail_all(
    pending: Vec<Pending>,
    queries: Vec<(Query, oneshot::Sender<Result<QueryAnswer, ServiceError>>)>,
    error: &ServiceError,
) {
    for p in pending {
        let _ = p.reply.send(Err(error.clone()));
    }
    for (_, reply) in queries {
        let _ = reply.send(Err(error.clone()));
    }
}

fn audit_answer(method: Method, identity: &SolanaPubkey, answer: &Answer) {
    match answer {
        Answer::Signature(signature) => tracing::info!(
            target: "keyward::audit", event = "signed", method = method.name(),
            identity = %identity, signature = %signature
        ),
        Answer::VoteKey(info) => tracing::info!(
            target: "keyward::audit", event = "vote_key", method = method.name(),
            identity = %identity, vote_pubkey = %info.vote_pubkey
        ),
        Answer::FinalTower(export) => tracing::info!(
            target: "keyward::audit", event = "deregistered", method = method.name(),
            identity = %identity, tower = %export.tower
        ),
    }
}

fn audit_refusal(method: Method, identity: &SolanaPubkey, refusal: &Rejection) {
    if refusal.alarm {
        tracing::warn!(
            target: "keyward::audit", event = "alarm", method = method.name(),
            identity = %identity, reason = %refusal.name, detail = %refusal
        );
    } else {
        tracing::info!(
            target: "keyward::audit", event = "refused", method = method.name(),
            identity = %identity, reason = %refusal.name, detail = %refusal
        );
    }
}
