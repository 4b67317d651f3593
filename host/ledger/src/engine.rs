//! The writer: one thread owns the registry and the store. It applies each queued chain of
//! entries in order (stopping a chain at its first refusal), writes everything it applied in one
//! transaction with one fsync (group commit), and only then answers and publishes the new head.
//!
//! Signature and evidence checks ran before a chain reached the queue ([`keyward_ledger::Genesis::verify`]
//! on the RPC threads), so the writer only checks positions and state rules.

use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use tokio::sync::{oneshot, watch};

pub use keyward_host::Failure;
use keyward_ledger::{Entry, EntryHash, Registry, Rejected, VerifiedEntry};

use crate::store::Store;

/// The last entry on the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: EntryHash,
}

/// One entry of a chain that is on the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: EntryHash,
    /// It was already on the ledger: a byte-identical retry.
    pub duplicate: bool,
}

/// Why an append did not (fully) succeed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppendError {
    /// Entry `index` was refused; the entries before it are on the ledger.
    #[error("entry {index} refused: {reason}")]
    Refused {
        /// The refused entry's index in the chain.
        index: usize,
        /// Why.
        reason: Rejected,
        /// The entries before it, now durable.
        accepted: Vec<Accepted>,
        /// The head after the commit that made them durable (it may include other callers'
        /// entries of the same batch).
        head: Head,
    },
    /// The store could not commit. The batch was not acknowledged, but whether it reached the
    /// disk is unknown (it may reappear after a restart): clients must re-read the ledger. The
    /// server appends nothing more until restarted.
    #[error("the store could not commit: {0}")]
    Storage(String),
    /// Too many appends are waiting.
    #[error("the ledger is busy: {0} appends are waiting")]
    Busy(usize),
    /// The writer has stopped.
    #[error("the ledger is shutting down")]
    Stopped,
}

/// A chain checked on an RPC thread: its verified prefix, and the refusal that ended it, if any.
pub struct Chain {
    /// Entries that passed the stateless checks, in order.
    pub verified: Vec<VerifiedEntry>,
    /// The stateless refusal of the entry after them.
    pub refused: Option<Rejected>,
}

struct Job {
    chain: Chain,
    reply: oneshot::Sender<Result<(Vec<Accepted>, Head), AppendError>>,
}

/// The handle RPC threads append through. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    queue: SyncSender<Job>,
    depth: usize,
    failure: Failure,
    head: watch::Receiver<Head>,
}

impl Engine {
    /// Starts the writer over `registry` (already caught up with `store`).
    pub fn start(
        registry: Registry,
        hashes: Vec<EntryHash>,
        store: Store,
        max_batch: usize,
        queue_depth: usize,
    ) -> (Self, std::thread::JoinHandle<()>) {
        let (queue, rx) = sync_channel(queue_depth);
        let head = Head {
            height: registry.next_height() - 1,
            hash: registry.head(),
        };
        let (head_tx, head_rx) = watch::channel(head);
        let failure = Failure::default();
        let writer = Writer {
            registry,
            hashes,
            store,
            max_batch: max_batch.max(1),
            head: head_tx,
            failure: failure.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || {
                // Set on any exit, a panic included, so health checks see a dead writer.
                let _guard = writer.failure.stopped_guard();
                writer.run(rx);
            })
            .expect("spawning the writer thread");
        (
            Self {
                queue,
                depth: queue_depth,
                failure,
                head: head_rx,
            },
            thread,
        )
    }

    /// Appends a checked chain; answers once its accepted entries are durable.
    ///
    /// # Errors
    /// [`AppendError`].
    pub async fn append(&self, chain: Chain) -> Result<(Vec<Accepted>, Head), AppendError> {
        let (reply, rx) = oneshot::channel();
        match self.queue.try_send(Job { chain, reply }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(AppendError::Busy(self.depth)),
            Err(TrySendError::Disconnected(_)) => return Err(AppendError::Stopped),
        }
        rx.await.unwrap_or(Err(AppendError::Stopped))
    }

    /// The durable head, updated after each commit.
    pub fn head(&self) -> watch::Receiver<Head> {
        self.head.clone()
    }

    /// Set once the writer can append no more.
    pub fn failure(&self) -> &Failure {
        &self.failure
    }
}

struct Writer {
    registry: Registry,
    hashes: Vec<EntryHash>,
    store: Store,
    max_batch: usize,
    head: watch::Sender<Head>,
    failure: Failure,
}

type Outcome = (
    oneshot::Sender<Result<(Vec<Accepted>, Head), AppendError>>,
    Vec<Accepted>,
    Option<(usize, Rejected)>,
);

impl Writer {
    fn run(mut self, rx: Receiver<Job>) {
        while let Ok(job) = rx.recv() {
            if let Some(e) = self.failure.get() {
                let _ = job.reply.send(Err(AppendError::Storage(e.to_owned())));
                continue;
            }
            let mut pending: Vec<Entry> = Vec::new();
            let mut outcomes: Vec<Outcome> = vec![self.apply(job, &mut pending)];
            // Chains that arrived meanwhile join this commit.
            while outcomes.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(job) => outcomes.push(self.apply(job, &mut pending)),
                    Err(_) => break,
                }
            }
            let committed = if pending.is_empty() {
                Ok(())
            } else {
                self.store.append(&pending).map_err(|e| e.to_string())
            };
            let head = Head {
                height: self.registry.next_height() - 1,
                hash: self.registry.head(),
            };
            match committed {
                Ok(()) => {
                    for entry in &pending {
                        tracing::info!(
                            target: "keyward::audit", event = "appended",
                            height = entry.position().height, kind = entry.kind().name(),
                            author = %entry.author(), hash = %entry.hash()
                        );
                    }
                    self.head.send_replace(head);
                    for (reply, accepted, refused) in outcomes {
                        let _ = reply.send(match refused {
                            None => Ok((accepted, head)),
                            Some((index, reason)) => Err(AppendError::Refused {
                                index,
                                reason,
                                accepted,
                                head,
                            }),
                        });
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "commit failed: the ledger appends nothing more until restarted");
                    self.failure.set(e.clone());
                    for (reply, ..) in outcomes {
                        let _ = reply.send(Err(AppendError::Storage(e.clone())));
                    }
                }
            }
        }
    }

    /// Applies a chain in order, stopping at its first refusal; what it applied joins `pending`.
    fn apply(&mut self, job: Job, pending: &mut Vec<Entry>) -> Outcome {
        let mut accepted = Vec::new();
        let mut refused = None;
        let before = pending.len();
        for (index, verified) in job.chain.verified.into_iter().enumerate() {
            let entry = verified.entry();
            let height = entry.position().height;
            // A byte-identical retry of entries on the ledger (a prefix of the chain): answer as
            // before. After a new entry, an old one is out of place and the registry refuses it.
            let fresh = pending.len() > before;
            if !fresh
                && usize::try_from(height).is_ok_and(|h| self.hashes.get(h) == Some(&entry.hash()))
            {
                accepted.push(Accepted {
                    height,
                    hash: entry.hash(),
                    duplicate: true,
                });
                continue;
            }
            let entry = entry.clone();
            match self.registry.apply(verified) {
                Ok(applied) => {
                    self.hashes.push(applied.hash);
                    accepted.push(Accepted {
                        height: applied.height,
                        hash: applied.hash,
                        duplicate: false,
                    });
                    pending.push(entry);
                }
                Err(reason) => {
                    refused = Some((index, reason));
                    break;
                }
            }
        }
        if refused.is_none() {
            refused = job.chain.refused.map(|r| (accepted.len(), r));
        }
        if let Some((index, reason)) = &refused {
            tracing::info!(
                target: "keyward::audit", event = "refused", index, reason = reason.name(),
                code = reason.code(), detail = %reason
            );
        }
        (job.reply, accepted, refused)
    }
}
