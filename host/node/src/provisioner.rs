//! A gatekeeper's provisioning queue.
//!
//! RPC handlers queue each `provisionClusterKey` request; one thread takes whatever is queued, up
//! to [`MAX_BATCH`] requests, and answers them together with the core's
//! [`Gatekeeper::answer_all`](keyward_node::Gatekeeper::answer_all). Requests that arrive
//! together share one batch signature check, and the core's public-key work stays off the async
//! runtime's threads. A lone request is answered at once, as a batch of one.

use std::sync::Arc;

use rand_core::OsRng;
use tokio::sync::{mpsc, oneshot};

use keyward_crypto::Envelope;
use keyward_node::ProvisionError;

use crate::service::{Core, Shared};

/// The most requests answered together: past 64 the batch check saves little more per
/// signature, and a batch holds the registry's read lock while it is answered.
pub const MAX_BATCH: usize = 64;

/// Requests waiting beyond this many make their handlers wait before queueing.
const QUEUE: usize = 1024;

/// What a queued request gets back: the answer, or why not.
type Answer = Result<Envelope, ProvisionError>;

struct Job {
    request: Vec<u8>,
    reply: oneshot::Sender<Answer>,
}

/// The sending side of the queue; the answering thread ends when it is dropped.
pub(crate) struct Provisioner {
    jobs: mpsc::Sender<Job>,
}

impl Provisioner {
    /// Starts the answering thread for the gatekeeper in `shared`.
    pub(crate) fn start(shared: Arc<Shared>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("provisioner".into())
            .spawn(move || answer_queue(&shared, queue))
            .expect("spawning a thread");
        Self { jobs }
    }

    /// Queues `request` and waits for its answer. `None` if the answering thread is gone (the
    /// node is stopping).
    pub(crate) async fn answer(&self, request: Vec<u8>) -> Option<Answer> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job { request, reply }).await.ok()?;
        answer.await.ok()
    }
}

fn answer_queue(shared: &Shared, mut queue: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = queue.blocking_recv() {
        jobs.push(first);
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        let requests: Vec<&[u8]> = jobs.iter().map(|j| j.request.as_slice()).collect();
        let answers = {
            let registry = shared.registry.read().expect("registry lock");
            let core = shared.core.read().expect("core lock");
            let Core::Gatekeeper(gatekeeper) = &*core else {
                unreachable!("only a gatekeeper starts a provisioner")
            };
            gatekeeper.answer_all(&registry, &requests, &mut OsRng)
        };
        for (job, answer) in jobs.drain(..).zip(answers) {
            // A handler that gave up (its client went away) no longer listens.
            let _ = job.reply.send(answer);
        }
    }
}
