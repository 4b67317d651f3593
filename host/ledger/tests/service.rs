//! The ledger server over real loopback JSON-RPC: appends, reads, long-polls, refusals with the
//! core's reasons, bad parameters, restarts, and followers that catch a lying server.
#![allow(clippy::unwrap_used)] // tests

use keyward_host::{from_base64, to_base64};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use keyward_crypto::{ChainId, ChannelKeypair, IdentityKeypair};
use keyward_enclave::{BoundKey, DevPlatformKey, EvidencePolicy};
use keyward_ledger::*;
use keyward_ledger_service::client::{ClientError, LedgerClient};
use keyward_ledger_service::follow::{FollowError, Follower};
use keyward_ledger_service::service::{LedgerConfig, Service, StartError};
use rand::{SeedableRng, rngs::StdRng};

struct Cast {
    rng: StdRng,
    platform: DevPlatformKey,
    genesis: Entry,
}

impl Cast {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let council = IdentityKeypair::generate(&mut rng);
        let platform = DevPlatformKey::generate(&mut rng);
        let policy = EvidencePolicy {
            accept_insecure_dev: true,
            allowed_measurements: vec![],
            trusted_dev_platforms: vec![platform.public()],
            trusted_tpm_keys: Vec::new(),
            vendor: None,
        };
        let config = GenesisConfig {
            chain: ChainId::new("svc-test").unwrap(),
            council: BTreeSet::from([council.public()]),
            threshold: 1,
            params: Params::default(),
            contract_codes: BTreeSet::from([CodeId::new("kv-store").unwrap()]),
            gatekeeper_policy: policy.clone(),
            worker_policy: policy,
        };
        let genesis = Entry::sign(
            &council,
            Position {
                height: 0,
                parent: EntryHash::ZERO,
                seq: 0,
            },
            &Body::Genesis(Box::new(config)),
            &mut rng,
        );
        Self {
            rng,
            platform,
            genesis,
        }
    }

    fn worker(&mut self, node: &IdentityKeypair) -> Body {
        let channel = ChannelKeypair::generate(&mut self.rng).public();
        let evidence = self
            .platform
            .attest(
                [1; 32],
                &[
                    BoundKey::Identity(node.public()),
                    BoundKey::Channel(channel),
                ],
                &registration_nonce(&self.genesis.hash(), Role::Worker),
                &mut self.rng,
            )
            .unwrap();
        Body::WorkerRegister(Registration {
            channel,
            endpoint: "127.0.0.1:9300".parse().unwrap(),
            stake: Params::default().min_worker_stake,
            evidence,
        })
    }

    /// A new worker and its registration at height 1.
    fn first_registration(&mut self) -> (IdentityKeypair, Entry) {
        let node = IdentityKeypair::generate(&mut self.rng);
        let body = self.worker(&node);
        let position = Position {
            height: 1,
            parent: self.genesis.hash(),
            seq: 0,
        };
        let entry = Entry::sign(&node, position, &body, &mut self.rng);
        (node, entry)
    }

    fn config(&self, dir: &std::path::Path) -> LedgerConfig {
        let mut config = LedgerConfig::new(dir.to_owned());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.genesis = Some(self.genesis.as_bytes().to_vec());
        config
    }
}

/// A new ledger in a fresh directory named for the test, and a client for it.
async fn serve(name: &str, seed: u64) -> (Cast, Service, LedgerClient) {
    let cast = Cast::new(seed);
    let service = Service::start(&cast.config(&temp_dir(name))).await.unwrap();
    let client = LedgerClient::new(&url(&service)).unwrap();
    (cast, service, client)
}

fn url(service: &Service) -> String {
    format!("http://{}", service.running.addr)
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("keyward-ledger-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn raw_call(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    use jsonrpsee::core::client::ClientT;
    let http = jsonrpsee_http_client::HttpClientBuilder::default()
        .build(url)
        .unwrap();
    let mut object = jsonrpsee::core::params::ObjectParams::new();
    for (k, v) in params.as_object().unwrap() {
        object.insert(k, v.clone()).unwrap();
    }
    let params = object;
    match http.request::<serde_json::Value, _>(method, params).await {
        Ok(v) => serde_json::json!({ "ok": v }),
        Err(jsonrpsee::core::client::Error::Call(e)) => serde_json::json!({
            "code": e.code(),
            "data": e.data().map(|d| serde_json::from_str::<serde_json::Value>(d.get()).unwrap()),
        }),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_append_once_and_every_follower_verifies_them() {
    let (mut cast, service, client) = serve("append", 1).await;
    let (mut follower, applied) = Follower::start(client.clone(), cast.genesis.hash())
        .await
        .unwrap();
    assert!(applied.is_empty());

    let worker = IdentityKeypair::generate(&mut cast.rng);
    let body = cast.worker(&worker);
    let mut rng = StdRng::seed_from_u64(9);
    let applied = follower.submit(&worker, &body, &mut rng).await.unwrap();
    assert_eq!(applied.height, 1);
    assert!(follower.registry().node(&worker.public()).is_some());

    // A byte-identical retry is answered as a duplicate and changes nothing.
    let entry = Entry::from_bytes(
        from_base64(&client.entries(1, Some(1)).await.unwrap().entries[0].entry).unwrap(),
    )
    .unwrap();
    let again = client.append(std::slice::from_ref(&entry)).await.unwrap();
    assert!(again.accepted[0].duplicate);
    assert_eq!(again.head.height, 1);

    // A second follower from scratch reaches the same registry.
    let (other, _) = Follower::start(client.clone(), cast.genesis.hash())
        .await
        .unwrap();
    assert_eq!(*other.registry(), *follower.registry());
    let head = client.head().await.unwrap();
    assert_eq!(
        (head.height, head.genesis_hash),
        (1, keyward_crypto::hex::to_0x(&cast.genesis.hash().0))
    );
    assert_eq!(client.health().await.unwrap().status, "ok");

    // Submitting again with the same key: the core's refusal, typed.
    let err = follower.submit(&worker, &body, &mut rng).await.unwrap_err();
    assert!(
        matches!(
            err,
            FollowError::Refused(Rejected::AlreadyRegistered { .. })
        ),
        "{err}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_entry_keeps_the_prefix_and_reports_where_it_stopped() {
    let (mut cast, service, client) = serve("prefix", 2).await;
    let (a, first) = cast.first_registration();
    // The second skips a sequence number.
    let second = Entry::sign(
        &a,
        Position {
            height: 2,
            parent: first.hash(),
            seq: 2,
        },
        &Body::WorkerDeregister,
        &mut cast.rng,
    );
    let err = client.append(&[first.clone(), second]).await.unwrap_err();
    let ClientError::Refused {
        code, reason, data, ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!((code, reason.as_str()), (2007, "sequence_gap"));
    assert_eq!(data["index"], 1);
    assert_eq!(data["accepted"].as_array().unwrap().len(), 1);
    assert_eq!(data["head"]["height"], 1);
    // A bad signature (a signed byte changed: the parent) is refused with the core's code.
    let mut bytes = Entry::sign(
        &a,
        Position {
            height: 2,
            parent: first.hash(),
            seq: 1,
        },
        &Body::WorkerDeregister,
        &mut cast.rng,
    )
    .into_bytes();
    bytes[5 + 8] ^= 1;
    let reply = raw_call(
        &url(&service),
        "appendEntries",
        serde_json::json!({ "entries": [to_base64(&bytes)] }),
    )
    .await;
    assert_eq!(reply["code"], 2003, "{reply}");
    // An entry already on the ledger, after a new one in the same chain, is out of place: the
    // new one lands, the old one is refused (not answered as a duplicate).
    let new = Entry::sign(
        &a,
        Position {
            height: 2,
            parent: first.hash(),
            seq: 1,
        },
        &Body::WorkerDeregister,
        &mut cast.rng,
    );
    let err = client.append(&[new, first]).await.unwrap_err();
    let ClientError::Refused { reason, data, .. } = err else {
        panic!("{err}")
    };
    assert_eq!(
        (reason.as_str(), data["index"].as_u64()),
        ("wrong_height", Some(1))
    );
    assert_eq!(client.head().await.unwrap().height, 2);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_refused_with_their_codes() {
    let (_, service, _) = serve("params", 3).await;
    let u = url(&service);
    let cases = [
        ("appendEntries", serde_json::json!({ "entries": [] }), 2604),
        (
            "appendEntries",
            serde_json::json!({ "entries": ["not base64!"] }),
            2604,
        ),
        (
            "appendEntries",
            serde_json::json!({ "entries": vec!["AA=="; 257] }),
            2604,
        ),
        (
            "appendEntries",
            serde_json::json!({ "entries": ["AAAA"] }),
            2001,
        ),
        (
            "appendEntries",
            serde_json::json!({ "entries": "x" }),
            -32602,
        ),
        (
            "appendEntries",
            serde_json::json!({ "entries": ["AA=="], "extra": 1 }),
            -32602,
        ),
        (
            "getEntries",
            serde_json::json!({ "from": 0, "limit": 0 }),
            2604,
        ),
        (
            "getEntries",
            serde_json::json!({ "from": 0, "limit": 1001 }),
            2604,
        ),
        (
            "getEntries",
            serde_json::json!({ "from": 0, "waitMs": 5 }),
            2604,
        ),
        ("getEntries", serde_json::json!({ "from": -1 }), -32602),
        ("getEntries", serde_json::json!({}), -32602),
        (
            "waitForEntries",
            serde_json::json!({ "from": "one" }),
            -32602,
        ),
    ];
    for (method, params, code) in cases {
        let reply = raw_call(&u, method, params.clone()).await;
        assert_eq!(reply["code"], code, "{method} {params}: {reply}");
    }
    // Reading beyond the head is empty, not an error.
    let client = LedgerClient::new(&u).unwrap();
    assert!(client.entries(99, None).await.unwrap().entries.is_empty());
    assert_eq!(client.head().await.unwrap().height, 0);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_wakes_on_append_and_times_out_empty() {
    let (mut cast, service, client) = serve("poll", 4).await;
    let started = Instant::now();
    let empty = client.wait(1, None, 200).await.unwrap();
    assert!(empty.entries.is_empty());
    assert!(started.elapsed() >= Duration::from_millis(150));

    let waiter = {
        let client = client.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let got = client.wait(1, None, 20_000).await.unwrap();
            (got, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, entry) = cast.first_registration();
    client.append(&[entry]).await.unwrap();
    let (got, waited) = waiter.await.unwrap();
    assert_eq!(got.entries.len(), 1);
    assert!(waited < Duration::from_secs(10), "woke after {waited:?}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submitters_all_land_in_some_order() {
    let (mut cast, service, _) = serve("race", 5).await;
    let u = url(&service);
    let mut tasks = Vec::new();
    for i in 0..6u64 {
        let node = IdentityKeypair::generate(&mut cast.rng);
        let body = cast.worker(&node);
        let client = LedgerClient::new(&u).unwrap();
        let pinned = cast.genesis.hash();
        tasks.push(tokio::spawn(async move {
            let (mut follower, _) = Follower::start(client, pinned).await.unwrap();
            let mut rng = StdRng::seed_from_u64(100 + i);
            follower
                .submit(&node, &body, &mut rng)
                .await
                .unwrap()
                .height
        }));
    }
    let mut heights = BTreeSet::new();
    for t in tasks {
        heights.insert(t.await.unwrap());
    }
    assert_eq!(heights, (1..=6).collect());
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_keeps_every_entry_and_refuses_another_genesis() {
    let dir = temp_dir("restart");
    let mut cast = Cast::new(6);
    let service = Service::start(&cast.config(&dir)).await.unwrap();
    let client = LedgerClient::new(&url(&service)).unwrap();
    let (mut follower, _) = Follower::start(client, cast.genesis.hash()).await.unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    for _ in 0..3 {
        let node = IdentityKeypair::generate(&mut cast.rng);
        let body = cast.worker(&node);
        follower.submit(&node, &body, &mut rng).await.unwrap();
    }
    // Submitted entries' outcomes stay queued for the next sync, like everyone else's.
    assert_eq!(follower.sync().await.unwrap().len(), 3);
    service.stop().await;

    // No genesis needed to reopen; the stored entries are replayed through the core.
    let mut config = cast.config(&dir);
    config.genesis = None;
    let service = Service::start(&config).await.unwrap();
    let client = LedgerClient::new(&url(&service)).unwrap();
    assert_eq!(client.head().await.unwrap().height, 3);
    follower.switch_to(client);
    assert!(follower.sync().await.unwrap().is_empty());
    service.stop().await;

    let other = Cast::new(7);
    let mut config = other.config(&dir);
    assert!(matches!(
        Service::start(&config).await,
        Err(StartError::OtherGenesis(_))
    ));
    config.genesis = None;
    config.pinned = Some(other.genesis.hash());
    let err = Service::start(&config).await.err().unwrap();
    assert!(
        matches!(
            err,
            StartError::Invalid {
                height: 0,
                reason: Rejected::GenesisMismatch { .. }
            }
        ),
        "{err}"
    );
    let empty = temp_dir("restart-empty");
    let mut config = cast.config(&empty);
    config.genesis = None;
    assert!(matches!(
        Service::start(&config).await,
        Err(StartError::NoGenesis(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_catches_another_genesis_and_a_fork() {
    let mut cast = Cast::new(8);
    let a = Service::start(&cast.config(&temp_dir("fork-a")))
        .await
        .unwrap();
    let b = Service::start(&cast.config(&temp_dir("fork-b")))
        .await
        .unwrap();
    let client_a = LedgerClient::new(&url(&a)).unwrap();
    let client_b = LedgerClient::new(&url(&b)).unwrap();

    // Pinned to another genesis: refused at the start.
    let err = Follower::start(client_a.clone(), Cast::new(9).genesis.hash())
        .await
        .unwrap_err();
    assert!(
        matches!(err, FollowError::Genesis(Rejected::GenesisMismatch { .. })),
        "{err}"
    );

    // Same genesis, different histories: a follower of A that switches to B sees the fork.
    let mut rng = StdRng::seed_from_u64(2);
    let (mut on_a, _) = Follower::start(client_a, cast.genesis.hash())
        .await
        .unwrap();
    let (mut on_b, _) = Follower::start(client_b.clone(), cast.genesis.hash())
        .await
        .unwrap();
    let x = IdentityKeypair::generate(&mut cast.rng);
    let y = IdentityKeypair::generate(&mut cast.rng);
    let bx = cast.worker(&x);
    let by = cast.worker(&y);
    on_a.submit(&x, &bx, &mut rng).await.unwrap();
    on_b.submit(&y, &by, &mut rng).await.unwrap();
    on_b.submit(&x, &bx, &mut rng).await.unwrap();
    on_a.switch_to(client_b.clone());
    let err = on_a.sync().await.unwrap_err();
    assert!(matches!(err, FollowError::Fork { height: 2, .. }), "{err}");

    // Same height, different heads: also a fork, not "up to date".
    let c = Service::start(&cast.config(&temp_dir("fork-c")))
        .await
        .unwrap();
    let (mut on_c, _) = Follower::start(LedgerClient::new(&url(&c)).unwrap(), cast.genesis.hash())
        .await
        .unwrap();
    let z = IdentityKeypair::generate(&mut cast.rng);
    let bz = cast.worker(&z);
    on_c.submit(&z, &bz, &mut rng).await.unwrap();
    let (mut at_one, _) =
        Follower::start(LedgerClient::new(&url(&a)).unwrap(), cast.genesis.hash())
            .await
            .unwrap();
    at_one.switch_to(LedgerClient::new(&url(&c)).unwrap());
    let err = at_one.sync().await.unwrap_err();
    assert!(matches!(err, FollowError::Fork { height: 1, .. }), "{err}");
    c.stop().await;
    a.stop().await;
    b.stop().await;
}
