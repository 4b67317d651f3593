//! A gatekeeper's provisioning queue.
//!
//! RPC handlers queue each `provisionClusterKey` request; a pool of answering threads (one per
//! core but one) each take whatever is queued, up to [`MAX_BATCH`] requests, and answer them together
//! with the core ([`NodeRunner::answer_all`]). Requests
//! that arrive together share one batch signature check, and the core's public-key work stays off
//! the async runtime's threads. A lone request is answered at once, as a batch of one.
//!
//! A batch that panics (a bug) or that the core does not answer (an isolated enclave that is
//! restarting) is logged and its requests get no answer (`unavailable`); the thread carries on
//! with the next batch.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use keyward_crypto::Envelope;

use crate::runner::Refused;
use crate::service::Shared;

/// The most requests answered together: past 64 the batch check saves little more per
/// signature, and a batch holds the registry's read lock while it is answered.
pub const MAX_BATCH: usize = 64;

/// Requests waiting beyond this many make their handlers wait (not fail) before queueing.
const QUEUE: usize = 1024;

/// What a queued request gets back: the answer, or why not.
type Answer = Result<Envelope, Refused>;

struct Job {
    request: Vec<u8>,
    reply: oneshot::Sender<Answer>,
}

/// The sending side of the queue; the answering threads end when it is dropped.
pub(crate) struct Provisioner {
    jobs: mpsc::Sender<Job>,
}

impl Provisioner {
    /// Starts the answering threads for the gatekeeper in `shared`.
    pub(crate) fn start(shared: &Arc<Shared>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        let queue = Arc::new(Mutex::new(queue));
        // One core is left to the RPC runtime (HTTP, JSON): on 2 cores a second answering thread
        // made each key cost 25 % more CPU (docs/BENCHMARKS.md).
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().max(2) - 1);
        for i in 0..threads {
            let (shared, queue) = (shared.clone(), queue.clone());
            std::thread::Builder::new()
                .name(format!("provisioner-{i}"))
                .spawn(move || answer_queue(&shared, &queue))
                .expect("spawning a thread");
        }
        Self { jobs }
    }

    /// Queues `request` and waits for its answer. `None` if there is none: the node is stopping,
    /// or answering failed (logged).
    pub(crate) async fn answer(&self, request: Vec<u8>) -> Option<Answer> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { request, reply }).await.ok()?;
        answer.await.ok()
    }
}

/// One answering thread: takes up to [`MAX_BATCH`] queued jobs at a time (the queue's lock is
/// held only while taking them) until the queue closes.
fn answer_queue(shared: &Shared, queue: &Mutex<mpsc::Receiver<Job>>) {
    loop {
        let mut jobs = Vec::with_capacity(MAX_BATCH);
        {
            let Ok(mut queue) = queue.lock() else {
                return;
            };
            let Some(first) = queue.blocking_recv() else {
                return;
            };
            jobs.push(first);
            while jobs.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let requests: Vec<&[u8]> = jobs.iter().map(|j| j.request.as_slice()).collect();
        let answers = catch_unwind(AssertUnwindSafe(|| shared.runner.answer_all(&requests)));
        let answers = match answers {
            Ok(Ok(answers)) if answers.len() == jobs.len() => answers,
            Ok(Err(e)) => {
                tracing::error!(requests = jobs.len(), error = %e, "the core did not answer a batch of provisioning requests; they get no answer");
                continue;
            }
            _ => {
                tracing::error!(
                    requests = jobs.len(),
                    "answering a batch of provisioning requests failed; they get no answer"
                );
                continue;
            }
        };
        for (job, answer) in jobs.into_iter().zip(answers) {
            // A handler that gave up (its client went away) no longer listens.
            let _ = job.reply.send(answer);
        }
    }
}
