//! The writer's fail-closed rule, against a store whose commits fail on demand: after a failed
//! commit nothing is answered from memory (not a retry, not a query) until a restart reloads
//! the durable state, and what was never acknowledged may be signed again after it.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use keyward_crypto::{ChainId, SecretBytes, SolanaKeypair, SolanaPubkey};
use keyward_enclave::SealingKey;
use keyward_host::counter::{CounterError, MonotonicCounter};
use keyward_signer::engine::{Durable, Engine, Query, QueryAnswer, ServiceError, open_session};
use keyward_signer::metrics::Metrics;
use keyward_signer::runner::{Changes, Enclave, Policy, Stored};
use keyward_signer::votes::tower_sync_message;
use keyward_tpm::source::Sealing;
use keyward_vote::signer::evidence_digest;
use keyward_vote::{
    Answer, CommitManifest, LockoutPolicy, Payload, ServiceId, SignedRequest, Tower,
};
use rand::{SeedableRng, rngs::StdRng};

const SERVICE: ServiceId = ServiceId([5; 32]);

/// A gate a commit stops at: it says it has arrived, then waits to be let through.
type Gate = (
    tokio::sync::oneshot::Sender<()>,
    std::sync::mpsc::Receiver<()>,
);

/// A store that keeps what it commits (records, evidence, the manifest and the counter), and fails every
/// commit once `allowed` have succeeded. With a gate set, the next commit first stops at it.
#[derive(Clone, Default)]
struct FlakyStore {
    durable: Arc<Mutex<BTreeMap<SolanaPubkey, Vec<u8>>>>,
    evidence: Arc<Mutex<Vec<Vec<u8>>>>,
    manifest: Arc<Mutex<Option<CommitManifest>>>,
    platform: Arc<Mutex<Option<Vec<u8>>>>,
    counter: MemoryCounter,
    allowed: Arc<AtomicUsize>,
    gate: Arc<Mutex<Option<Gate>>>,
}

/// The enclave's monotonic counter, kept across restarts like a file or a TPM's.
#[derive(Debug, Clone, Default)]
struct MemoryCounter(Arc<AtomicU64>);

impl MonotonicCounter for MemoryCounter {
    fn value(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    fn advance(&mut self, to: u64) -> Result<(), CounterError> {
        self.0.fetch_max(to, Ordering::SeqCst);
        Ok(())
    }
}

impl Durable for FlakyStore {
    fn service(&self) -> ServiceId {
        SERVICE
    }

    fn stored(&self) -> Result<Stored, String> {
        Ok(Stored {
            platform: self.platform.lock().unwrap().clone(),
            records: self
                .durable
                .lock()
                .unwrap()
                .iter()
                .map(|(id, r)| (*id, r.clone()))
                .collect(),
            evidence: self.evidence.lock().unwrap().clone(),
            manifest: self
                .manifest
                .lock()
                .unwrap()
                .as_ref()
                .map(|m| m.blob.clone()),
        })
    }

    fn make_durable(
        &mut self,
        changes: &Changes,
        manifest: &CommitManifest,
        platform: Option<&[u8]>,
    ) -> Result<(), String> {
        let gate = self.gate.lock().unwrap().take();
        if let Some((arrived, open)) = gate {
            let _ = arrived.send(());
            let _ = open.recv();
        }
        if self
            .allowed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_err()
        {
            return Err("injected: disk full".into());
        }
        let mut durable = self.durable.lock().unwrap();
        for (identity, record) in &changes.records {
            durable.insert(*identity, record.clone());
        }
        let mut evidence = self.evidence.lock().unwrap();
        evidence.extend(changes.evidence.iter().cloned());
        evidence.retain(|blob| !changes.retired.contains(&evidence_digest(blob)));
        *self.manifest.lock().unwrap() = Some(manifest.clone());
        if let Some(platform) = platform {
            *self.platform.lock().unwrap() = Some(platform.to_vec());
        }
        Ok(())
    }
}

/// A signer restored from what `store` holds, behind a writer committing to `store`. Its
/// startup commit is always let through: the tests count the commits of requests.
fn start(store: &FlakyStore, sealing_key: &SealingKey) -> Engine {
    let _ = store
        .allowed
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            Some(n.saturating_add(1))
        });
    let sealing = Sealing {
        key: SealingKey::from_bytes(SecretBytes::new(*sealing_key.expose())),
        counter: Box::new(store.counter.clone()),
        attester: None,
    };
    let policy = Policy {
        lockout: LockoutPolicy::SOLANA,
        ancestry: None,
        evidence: None,
    };
    let mut enclave = Enclave::new(sealing, ChainId::new("test").unwrap(), policy);
    let mut store = store.clone();
    open_session(&mut enclave, &mut store).unwrap();
    Engine::start(enclave, store, Arc::new(Metrics::new()), 16, 64).0
}

async fn apply(engine: &Engine, request: SignedRequest) -> Result<Answer, ServiceError> {
    engine.apply(request).await
}

#[tokio::test]
async fn after_a_failed_commit_nothing_is_answered_until_a_restart() {
    let mut rng = StdRng::seed_from_u64(1);
    let sealing_key = SealingKey::generate(&mut rng);
    let identity = SolanaKeypair::generate(&mut rng);
    let vote_account = SolanaKeypair::generate(&mut rng).pubkey();
    let store = FlakyStore::default();
    store.allowed.store(1, Ordering::SeqCst);
    let engine = start(&store, &sealing_key);

    let register = SignedRequest::sign(
        Payload::RegisterNode { vote_account },
        SERVICE,
        &identity,
        1,
    );
    let Answer::VoteKey(info) = apply(&engine, register).await.unwrap() else {
        panic!("registered")
    };
    assert!(engine.failure().get().is_none());

    let tower = Tower::new()
        .apply_slots(&[1], &LockoutPolicy::SOLANA)
        .unwrap();
    let message = tower_sync_message(
        &identity.pubkey(),
        &vote_account,
        &info.vote_pubkey,
        &tower,
        [1; 32],
        [2; 32],
    );
    let vote = SignedRequest::sign(
        Payload::SignVote {
            message: message.clone(),
            evidence: Vec::new(),
        },
        SERVICE,
        &identity,
        2,
    );
    // The commit fails: no signature leaves.
    assert!(matches!(
        apply(&engine, vote.clone()).await,
        Err(ServiceError::Storage(e)) if e.contains("disk full")
    ));
    assert!(engine.failure().get().unwrap().contains("disk full"));

    // The core applied the vote in memory, so a byte-identical retry would be answered from
    // its cache without a commit: it must be refused instead, as must queries and new votes.
    assert!(matches!(
        apply(&engine, vote.clone()).await,
        Err(ServiceError::Storage(_))
    ));
    assert!(matches!(
        engine.query(Query::VoteKey(identity.pubkey())).await,
        Err(ServiceError::Storage(_))
    ));
    assert!(matches!(
        engine.query(Query::Registered).await,
        Err(ServiceError::Storage(_))
    ));
    store.allowed.store(usize::MAX, Ordering::SeqCst);
    let next = SignedRequest::sign(
        Payload::SignVote {
            message: message.clone(),
            evidence: Vec::new(),
        },
        SERVICE,
        &identity,
        3,
    );
    assert!(
        matches!(apply(&engine, next).await, Err(ServiceError::Storage(_))),
        "a healed disk does not lift the refusal: only a restart does"
    );
    drop(engine);

    // A restart reloads what is durable: the registration, not the unacknowledged vote.
    let engine = start(&store, &sealing_key);
    assert!(engine.failure().get().is_none());
    let Ok(QueryAnswer::VoteKey(Some(restored))) =
        engine.query(Query::VoteKey(identity.pubkey())).await
    else {
        panic!("the vote key survived")
    };
    assert_eq!(restored.vote_pubkey, info.vote_pubkey);
    let retry = SignedRequest::sign(
        Payload::SignVote {
            message,
            evidence: Vec::new(),
        },
        SERVICE,
        &identity,
        4,
    );
    assert!(matches!(
        apply(&engine, retry).await,
        Ok(Answer::Signature(_))
    ));
}

#[tokio::test]
async fn a_query_batched_with_a_failed_commit_reveals_nothing_that_is_not_durable() {
    let mut rng = StdRng::seed_from_u64(2);
    let sealing_key = SealingKey::generate(&mut rng);
    let (a, b) = (
        SolanaKeypair::generate(&mut rng),
        SolanaKeypair::generate(&mut rng),
    );
    let vote_account = SolanaKeypair::generate(&mut rng).pubkey();
    let store = FlakyStore::default();
    store.allowed.store(2, Ordering::SeqCst);
    let engine = start(&store, &sealing_key);
    let register = |who: &SolanaKeypair| {
        SignedRequest::sign(Payload::RegisterNode { vote_account }, SERVICE, who, 1)
    };
    let Answer::VoteKey(old) = apply(&engine, register(&a)).await.unwrap() else {
        panic!("registered")
    };

    // Hold the writer inside B's commit while A's rotation and a query for A's key queue up
    // behind it, so the two land in one batch, whose commit then fails.
    let (open, gate) = std::sync::mpsc::channel();
    let (arrived, writer_held) = tokio::sync::oneshot::channel();
    *store.gate.lock().unwrap() = Some((arrived, gate));
    let held = tokio::spawn({
        let engine = engine.clone();
        let request = register(&b);
        async move { apply(&engine, request).await }
    });
    writer_held.await.unwrap();
    let rotated = tokio::spawn({
        let engine = engine.clone();
        let request = SignedRequest::sign(Payload::RotateVoteKey, SERVICE, &a, 2);
        async move { apply(&engine, request).await }
    });
    let queried = tokio::spawn({
        let engine = engine.clone();
        let identity = a.pubkey();
        async move { engine.query(Query::VoteKey(identity)).await }
    });
    // Let both tasks reach the queue (each sends on its first poll).
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    open.send(()).unwrap();

    assert!(held.await.unwrap().is_ok(), "B's commit succeeded");
    assert!(matches!(
        rotated.await.unwrap(),
        Err(ServiceError::Storage(_))
    ));
    // Answered from memory before the commit, the query would have shown the rotated key.
    assert!(matches!(
        queried.await.unwrap(),
        Err(ServiceError::Storage(_))
    ));
    drop(engine);
    let engine = start(&store, &sealing_key);
    let Ok(QueryAnswer::VoteKey(Some(key))) = engine.query(Query::VoteKey(a.pubkey())).await else {
        panic!("A is registered")
    };
    assert_eq!(
        key.vote_pubkey, old.vote_pubkey,
        "the rotation never happened"
    );
}

#[tokio::test]
async fn health_reports_a_failed_commit_over_json_rpc_and_http() {
    use std::io::{Read, Write};
    let mut rng = StdRng::seed_from_u64(3);
    let sealing_key = SealingKey::generate(&mut rng);
    let store = FlakyStore::default();
    let engine = start(&store, &sealing_key);
    let running = keyward_signer::rpc::serve(
        "127.0.0.1:0".parse().unwrap(),
        1 << 16,
        engine.clone(),
        SERVICE,
        Arc::new(Metrics::new()),
    )
    .await
    .unwrap();
    let http = keyward_signer::client::http(&format!("http://{}", running.addr)).unwrap();
    let addr = running.addr;
    // A blocking client, off the runtime that serves it.
    let get_health = move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    assert!(keyward_signer::client::health(&http).await.is_ok());
    let response = tokio::task::spawn_blocking(get_health).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // No commit is allowed: the first registration fails it.
    let identity = SolanaKeypair::generate(&mut rng);
    let vote_account = SolanaKeypair::generate(&mut rng).pubkey();
    let register = SignedRequest::sign(
        Payload::RegisterNode { vote_account },
        SERVICE,
        &identity,
        1,
    );
    assert!(matches!(
        apply(&engine, register).await,
        Err(ServiceError::Storage(_))
    ));
    assert!(matches!(
        keyward_signer::client::health(&http).await,
        Err(keyward_signer::client::ClientError::Refused { code: 1501, .. })
    ));
    let response = tokio::task::spawn_blocking(get_health).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 503"), "{response}");
    assert!(response.contains("disk full"), "{response}");
    let _ = running.handle.stop();
}

#[tokio::test]
async fn a_bad_signature_in_a_batch_refuses_only_its_own_request() {
    let mut rng = StdRng::seed_from_u64(4);
    let sealing_key = SealingKey::generate(&mut rng);
    let store = FlakyStore::default();
    store.allowed.store(usize::MAX, Ordering::SeqCst);
    let engine = start(&store, &sealing_key);
    let identities: Vec<SolanaKeypair> =
        (0..8).map(|_| SolanaKeypair::generate(&mut rng)).collect();
    // Registrations sent together share the writer's batches; every third is forged.
    let requests: Vec<SignedRequest> = identities
        .iter()
        .enumerate()
        .map(|(i, identity)| {
            let mut request = SignedRequest::sign(
                Payload::RegisterNode {
                    vote_account: SolanaKeypair::generate(&mut rng).pubkey(),
                },
                SERVICE,
                identity,
                1,
            );
            if i % 3 == 1 {
                request.signature.0[40] ^= 1;
            }
            request
        })
        .collect();
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|r| {
            let engine = engine.clone();
            tokio::spawn(async move { engine.apply(r).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(Answer::VoteKey(_)) => assert_ne!(i % 3, 1, "request {i}"),
            Err(ServiceError::Refused(r)) => {
                assert_eq!(
                    (i % 3, r.name.as_str()),
                    (1, "bad_signature"),
                    "request {i}"
                );
            }
            other => panic!("request {i}: {other:?}"),
        }
    }
    assert!(matches!(
        engine.query(Query::Registered).await,
        Ok(QueryAnswer::Registered(5))
    ));
}
