//! The writer: one thread owns the core [`Signer`] and the store, applies requests in arrival
//! order, commits the records of everything it applied with one fsync (group commit), and only
//! then releases the answers.
//!
//! Signature checks happen before a request reaches this queue ([`keyward_vote::SignerConfig::prepare`]
//! on the RPC worker threads), so the thread spends its time on the tower rules, one Ed25519
//! signature per vote and the commit.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Instant;

use rand_core::OsRng;
use tokio::sync::oneshot;

use keyward_crypto::SolanaPubkey;
pub use keyward_host::Failure;
use keyward_vote::{Answer, CommitManifest, Method, Prepared, Refusal, Signer};

use crate::metrics::Metrics;
use crate::store::Store;

/// Why a request got no answer from the core.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// The core refused it.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The store could not commit; nothing was released.
    #[error("the store could not commit: {0}")]
    Storage(String),
    /// Too many requests are waiting.
    #[error("the signer is busy: {0} requests are waiting")]
    Busy(usize),
    /// The writer has stopped.
    #[error("the signer is shutting down")]
    Stopped,
}

/// Where the writer makes records durable: [`Store`] in service, a stand-in in tests.
pub trait Durable: Send + 'static {
    /// Writes every record and the commit's manifest in one transaction, then advances the
    /// monotonic counter to the manifest's value, and returns once both are durable; on an
    /// error, none of them may be assumed durable.
    ///
    /// # Errors
    /// What went wrong, for the log and the refusal.
    fn make_durable(
        &mut self,
        records: &[(SolanaPubkey, Vec<u8>)],
        manifest: &CommitManifest,
    ) -> Result<(), String>;
}

impl Durable for Store {
    fn make_durable(
        &mut self,
        records: &[(SolanaPubkey, Vec<u8>)],
        manifest: &CommitManifest,
    ) -> Result<(), String> {
        self.commit(records.iter().map(|(id, r)| (id, r.as_slice())), manifest)
            .map_err(|e| e.to_string())
    }
}

/// A query: answered from state that is durable (after the commit of its batch).
pub enum Query {
    /// The current vote key of an identity.
    VoteKey(SolanaPubkey),
    /// How many validators are registered.
    Registered,
}

/// A query's answer.
pub enum QueryAnswer {
    /// The vote key, if any.
    VoteKey(Option<keyward_vote::VoteKeyInfo>),
    /// Registered validators.
    Registered(usize),
}

enum Job {
    Apply {
        prepared: Box<Prepared>,
        reply: oneshot::Sender<Result<Answer, ServiceError>>,
    },
    Query {
        query: Query,
        reply: oneshot::Sender<Result<QueryAnswer, ServiceError>>,
    },
}

/// The handle the RPC layer sends requests through. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    queue: SyncSender<Job>,
    depth: usize,
    failure: Failure,
}

impl Engine {
    /// Starts the writer thread over `signer` and `store`.
    pub fn start(
        signer: Signer,
        store: impl Durable,
        metrics: Arc<Metrics>,
        max_batch: usize,
        queue_depth: usize,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let (queue, rx) = sync_channel(queue_depth);
        let failure = Failure::default();
        let writer = Writer {
            signer,
            store,
            metrics,
            failure: failure.clone(),
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
            },
            thread,
        )
    }

    /// Whether a commit has failed (then every request is refused until a restart).
    pub fn failure(&self) -> &Failure {
        &self.failure
    }

    /// Applies `prepared` and returns its answer once its record is durable.
    ///
    /// # Errors
    /// [`ServiceError`].
    pub async fn apply(&self, prepared: Prepared) -> Result<Answer, ServiceError> {
        let (reply, answer) = oneshot::channel();
        self.send(Job::Apply {
            prepared: Box::new(prepared),
            reply,
        })?;
        answer.await.map_err(|_| ServiceError::Stopped)?
    }

    /// Answers `query` from durable state: after the commit of the batch it joins.
    ///
    /// # Errors
    /// [`ServiceError::Busy`], [`ServiceError::Stopped`], or [`ServiceError::Storage`] once a
    /// commit has failed.
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
    result: Result<Answer, Refusal>,
    method: Method,
    identity: SolanaPubkey,
}

struct Writer<D> {
    signer: Signer,
    store: D,
    metrics: Arc<Metrics>,
    failure: Failure,
}

impl<D: Durable> Writer<D> {
    fn run(mut self, rx: Receiver<Job>, max_batch: usize) {
        self.metrics.validators.set(self.signer.registered() as i64);
        while let Ok(first) = rx.recv() {
            // After a failed commit the core's state is ahead of the disk, and a retry could be
            // answered from memory without ever being durable: fail closed until a restart
            // reloads the state from the store.
            if let Some(e) = self.failure.get() {
                let refusal = ServiceError::Storage(e.to_owned());
                match first {
                    Job::Apply { reply, .. } => drop(reply.send(Err(refusal))),
                    Job::Query { reply, .. } => drop(reply.send(Err(refusal))),
                }
                continue;
            }
            self.batch(first, &rx, max_batch);
        }
    }

    /// Applies `first` and whatever else is queued, in order, up to `max_batch` jobs; commits
    /// their records with one fsync; then answers. Jobs that arrive while earlier ones are being
    /// applied join the batch, so the batch grows with the load.
    fn batch(&mut self, first: Job, rx: &Receiver<Job>, max_batch: usize) {
        let mut pending = Vec::new();
        let mut queries = Vec::new();
        let mut records: Vec<(SolanaPubkey, Vec<u8>)> = Vec::new();
        let mut taken = 0;
        let mut next = Some(first);
        while let Some(job) = next.take() {
            taken += 1;
            match job {
                Job::Apply { prepared, reply } => {
                    let request = prepared.request();
                    let (method, identity) = (request.payload.method(), request.identity);
                    let result = self.signer.apply(&prepared, &mut OsRng).map(|applied| {
                        if let Some(record) = applied.record {
                            records.push(record);
                        }
                        applied.answer
                    });
                    pending.push(Pending {
                        reply,
                        result,
                        method,
                        identity,
                    });
                }
                // Answered after the commit: a query must not see a key or count that is not
                // durable yet.
                Job::Query { query, reply } => queries.push((query, reply)),
            }
            // Only after applying: what arrived meanwhile shares this commit.
            if taken < max_batch {
                next = rx.try_recv().ok();
            }
        }
        let committed = if records.is_empty() {
            Ok(())
        } else {
            let started = Instant::now();
            let manifest = self.signer.seal_commit();
            let result = self.store.make_durable(&records, &manifest);
            self.metrics
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
            self.metrics.batch_size.observe(pending.len() as f64);
            result
        };
        if let Err(e) = &committed {
            tracing::error!(
                target: "keyward::audit", event = "commit_failed", error = %e,
                requests = pending.len(), "refusing every request until restarted"
            );
            self.failure.set(e.clone());
        }
        // Counting validators walks them all: only when a registration may have changed.
        if pending
            .iter()
            .any(|p| matches!(p.method, Method::RegisterNode | Method::DeregisterNode))
        {
            self.metrics.validators.set(self.signer.registered() as i64);
        }
        for p in pending {
            let outcome = match (&committed, p.result) {
                (Ok(()), Ok(answer)) => {
                    audit_answer(p.method, &p.identity, &answer);
                    Ok(answer)
                }
                (Err(e), Ok(_)) => Err(ServiceError::Storage(e.clone())),
                (_, Err(refusal)) => {
                    self.metrics.refused(p.method, &refusal);
                    audit_refusal(p.method, &p.identity, &refusal);
                    Err(ServiceError::Refused(refusal))
                }
            };
            let _ = p.reply.send(outcome);
        }
        for (query, reply) in queries {
            let answer = match &committed {
                Ok(()) => Ok(answer_query(&self.signer, query)),
                Err(e) => Err(ServiceError::Storage(e.clone())),
            };
            let _ = reply.send(answer);
        }
    }
}

/// A query sees applied state; it reveals only public keys and counts.
fn answer_query(signer: &Signer, query: Query) -> QueryAnswer {
    match query {
        Query::VoteKey(identity) => QueryAnswer::VoteKey(signer.vote_key(&identity)),
        Query::Registered => QueryAnswer::Registered(signer.registered()),
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

fn audit_refusal(method: Method, identity: &SolanaPubkey, refusal: &Refusal) {
    if refusal.is_alarm() {
        tracing::warn!(
            target: "keyward::audit", event = "alarm", method = method.name(),
            identity = %identity, reason = refusal.name(), detail = %refusal
        );
    } else {
        tracing::info!(
            target: "keyward::audit", event = "refused", method = method.name(),
            identity = %identity, reason = refusal.name(), detail = %refusal
        );
    }
}
