//! Gatekeepers and workers as services on loopback JSON-RPC around a real ledger server: epoch
//! 0, provisioning over RPC, a contract command and its reply, and a restart from sealed state.
#![allow(clippy::unwrap_used)] // tests

use keyward_host::to_base64;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keyward_contracts::kv;
use keyward_crypto::{ChannelKeypair, Envelope, IdentityKeypair};
use keyward_hierarchy::{ClusterId, ContractId};
use keyward_ledger::{Body, ClusterCreate, CodeId, ContractDeploy, EntryHash, Subject};
use keyward_ledger_service::client::LedgerClient;
use keyward_ledger_service::follow::Follower;
use keyward_ledger_service::service::{LedgerConfig, Service};
use keyward_node::User;
use keyward_node_service::client::NodeClient;
use keyward_node_service::{Node, NodeConfig, NodeError, NodeRole, dev};

struct Net {
    dir: PathBuf,
    ledger: Service,
    url: String,
    genesis: EntryHash,
    council: IdentityKeypair,
    follower: Follower,
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyward-node-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn net(name: &str) -> Net {
    let dir = temp(name);
    let platform = dev::create_platform_key(&dir.join("platform.key")).unwrap();
    let council = IdentityKeypair::generate(&mut rand::thread_rng());
    let genesis = dev::genesis("node-net", std::slice::from_ref(&council), &platform);
    let mut config = LedgerConfig::new(dir.join("ledger"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.genesis = Some(genesis.as_bytes().to_vec());
    let ledger = Service::start(&config).await.unwrap();
    let url = format!("http://{}", ledger.running.addr);
    let (follower, _) = Follower::start(LedgerClient::new(&url).unwrap(), genesis.hash())
        .await
        .unwrap();
    Net {
        dir,
        ledger,
        url,
        genesis: genesis.hash(),
        council,
        follower,
    }
}

impl Net {
    fn config(&self, role: NodeRole, name: &str) -> NodeConfig {
        let mut config = NodeConfig::new(role, self.url.clone(), self.genesis, self.dir.join(name));
        config.platform_key = self.dir.join("platform.key");
        config.poll_ms = 100;
        config
    }

    async fn node(&self, role: NodeRole, name: &str) -> Node {
        Node::start(self.config(role, name)).await.unwrap()
    }

    async fn submit(&mut self, author: &IdentityKeypair, body: &Body) -> EntryHash {
        self.follower
            .submit(author, body, &mut rand::thread_rng())
            .await
            .unwrap()
            .hash
    }

    /// Waits until `done` holds of the verified registry (10 s at most).
    async fn until(&mut self, what: &str, done: impl Fn(&keyward_ledger::Registry) -> bool) {
        let start = Instant::now();
        while !done(&self.follower.registry()) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "timed out: {what}"
            );
            self.follower.wait(200).await.unwrap();
        }
    }
}

fn remove(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_provision_over_rpc_run_a_command_and_survive_a_restart() {
    let mut net = net("e2e").await;
    let g1 = net.node(NodeRole::Gatekeeper, "g1").await;
    let g2 = net.node(NodeRole::Gatekeeper, "g2").await;
    let mut workers = Vec::new();
    for i in 0..3 {
        workers.push(net.node(NodeRole::Worker, &format!("w{i}")).await);
    }
    let ids: Vec<_> = workers.iter().map(|w| w.id).collect();
    net.until("everyone registered", |r| {
        ids.iter().all(|id| r.node(id).is_some())
    })
    .await;
    let council = IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new(
        *net.council.seed().expose(),
    ));
    net.submit(
        &council,
        &Body::ClusterCreate(ClusterCreate {
            cluster: ClusterId::new("c1").unwrap(),
            members: ids.iter().copied().collect(),
        }),
    )
    .await;
    let (g1_id, g2_id) = (g1.id, g2.id);
    net.until("epoch 0 held by both gatekeepers", |r| {
        r.epoch(keyward_hierarchy::Epoch(0))
            .is_some_and(|e| e.holders().contains(&g1_id) && e.holders().contains(&g2_id))
    })
    .await;

    let user = User::new(
        IdentityKeypair::generate(&mut rand::thread_rng()),
        ChannelKeypair::generate(&mut rand::thread_rng()),
    );
    let contract = ContractId::new("notes").unwrap();
    net.submit(
        user.signer(),
        &Body::ContractDeploy(ContractDeploy {
            contract: contract.clone(),
            cluster: ClusterId::new("c1").unwrap(),
            code: CodeId::new("kv-store").unwrap(),
            init: Vec::new(),
        }),
    )
    .await;
    net.until("contract keys confirmed by all three workers", |r| {
        r.contract(&contract).is_some_and(|c| {
            c.confirmers(r.key_context(c.cluster()).unwrap())
                .is_some_and(|s| s.len() == 3)
        })
    })
    .await;

    let put = user
        .command(
            &net.follower.registry(),
            &contract,
            &kv::put(b"k", b"v1"),
            &mut rand::thread_rng(),
        )
        .unwrap();
    let put = net
        .submit(user.signer(), &Body::ContractCommand(Box::new(put)))
        .await;
    net.until("three digests", |r| {
        r.digests(&Subject::Command(put)).count() == 3
    })
    .await;
    for w in &workers {
        let reply = NodeClient::new(&format!("http://{}", w.addr))
            .unwrap()
            .reply(&put)
            .await
            .unwrap()
            .expect("every worker stored the reply");
        let reply = Envelope::from_bytes(&reply).unwrap();
        assert_eq!(
            user.open_reply(&net.follower.registry(), &put, &reply)
                .unwrap()
                .status,
            0
        );
    }

    // Restart a worker and a gatekeeper from their sealed state: same identities, no new entry
    // beyond what the next command causes.
    let w0 = workers.remove(0);
    let w0_id = w0.id;
    w0.stop().await;
    g1.stop().await;
    let g1 = net.node(NodeRole::Gatekeeper, "g1").await;
    let w0 = net.node(NodeRole::Worker, "w0").await;
    assert_eq!((g1.id, w0.id), (g1_id, w0_id));
    let health = NodeClient::new(&format!("http://{}", w0.addr))
        .unwrap()
        .health()
        .await
        .unwrap();
    assert_eq!((health.status.as_str(), health.keys), ("active", 1));

    let get = user
        .command(
            &net.follower.registry(),
            &contract,
            &kv::get(b"k"),
            &mut rand::thread_rng(),
        )
        .unwrap();
    let get = net
        .submit(user.signer(), &Body::ContractCommand(Box::new(get)))
        .await;
    net.until("three agreeing digests", |r| {
        let d: Vec<_> = r.digests(&Subject::Command(get)).map(|(_, d)| *d).collect();
        d.len() == 3 && d.iter().all(|x| *x == d[0])
    })
    .await;
    let reply = NodeClient::new(&format!("http://{}", w0.addr))
        .unwrap()
        .reply(&get)
        .await
        .unwrap()
        .unwrap();
    let reply = user
        .open_reply(
            &net.follower.registry(),
            &get,
            &Envelope::from_bytes(&reply).unwrap(),
        )
        .unwrap();
    assert!(reply.body.ends_with(b"v1"));

    for node in [g1, g2, w0] {
        node.stop().await;
    }
    for w in workers {
        w.stop().await;
    }
    net.ledger.stop().await;
    remove(&net.dir);
}

#[tokio::test]
async fn a_gatekeeper_refuses_a_public_listen_address() {
    let mut config = NodeConfig::new(
        NodeRole::Gatekeeper,
        "http://127.0.0.1:1".into(),
        EntryHash([0; 32]),
        temp("public"),
    );
    config.listen = "8.8.8.8:9000".parse().unwrap();
    assert!(matches!(
        Node::start(config).await,
        Err(NodeError::PublicListen(_))
    ));
}

/// A JSON-RPC call with raw params: `{"ok": result}`, `{"code", "reason"}` for a JSON-RPC
/// error, or `{"transport": message}` when the server refused the HTTP request itself.
async fn raw_call(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    use jsonrpsee::core::client::ClientT;
    let http = jsonrpsee_http_client::HttpClientBuilder::default()
        .build(url)
        .unwrap();
    let mut object = jsonrpsee::core::params::ObjectParams::new();
    for (k, v) in params.as_object().unwrap() {
        object.insert(k, v.clone()).unwrap();
    }
    match http.request::<serde_json::Value, _>(method, object).await {
        Ok(v) => serde_json::json!({ "ok": v }),
        Err(jsonrpsee::core::client::Error::Call(e)) => serde_json::json!({
            "code": e.code(),
            "reason": e
                .data()
                .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok())
                .and_then(|d| d.get("reason").cloned()),
        }),
        Err(e) => serde_json::json!({ "transport": e.to_string() }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_their_codes_and_change_nothing() {
    use keyward_hierarchy::{ClusterKeyRequest, Epoch, Generation};
    use keyward_node::ProvisionRequest;
    use serde_json::json;

    let mut net = net("bad").await;
    let g = net.node(NodeRole::Gatekeeper, "g").await;
    let w = net.node(NodeRole::Worker, "w").await;
    let (gid, wid) = (g.id, w.id);
    net.until("both registered, epoch 0 active", |r| {
        r.node(&gid).is_some() && r.node(&wid).is_some() && r.current_epoch().is_some()
    })
    .await;
    let (gurl, wurl) = (format!("http://{}", g.addr), format!("http://{}", w.addr));
    let ledger = LedgerClient::new(&net.url).unwrap();
    let head = ledger.head().await.unwrap().hash;
    // The gatekeeper has followed the ledger as far (it knows the worker).
    let height = net.follower.registry().next_height() - 1;
    let gatekeeper = NodeClient::new(&gurl).unwrap();
    while gatekeeper.health().await.unwrap().height < height {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let keys = gatekeeper.health().await.unwrap().keys;

    let rng = &mut rand::thread_rng();
    let stranger = IdentityKeypair::generate(rng);
    let request = |signer: &IdentityKeypair, to| {
        let asked = ClusterKeyRequest {
            epoch: Epoch(0),
            cluster: ClusterId::new("c1").unwrap(),
            generation: Generation(0),
        };
        ProvisionRequest::sign(signer, &net.genesis, to, asked, &mut rand::thread_rng()).to_bytes()
    };
    // A stranger's request claiming to be the registered worker's (its signature is the
    // stranger's).
    let as_worker = |mut request: Vec<u8>| {
        request[..32].copy_from_slice(&wid.to_bytes());
        to_base64(&request)
    };
    let not_a_worker = to_base64(&request(&stranger, gid));
    let to_another = as_worker(request(&stranger, wid));
    let forged = as_worker(request(&stranger, gid));
    let zero = format!("0x{}", "00".repeat(32));
    let cases = [
        (
            &gurl,
            "provisionClusterKey",
            json!({"request": "not base64!"}),
            2701,
            "bad_params",
        ),
        (
            &gurl,
            "provisionClusterKey",
            json!({"request": ""}),
            2702,
            "malformed",
        ),
        (
            &gurl,
            "provisionClusterKey",
            json!({"request": to_base64(&[7; 150])}),
            2702,
            "malformed",
        ),
        (
            &gurl,
            "provisionClusterKey",
            json!({"request": to_another}),
            2702,
            "wrong_gatekeeper",
        ),
        (
            &gurl,
            "provisionClusterKey",
            json!({"request": forged}),
            2702,
            "bad_signature",
        ),
        (
            &gurl,
            "provisionClusterKey",
            json!({"request": not_a_worker}),
            2702,
            "not_a_worker",
        ),
        (
            &wurl,
            "provisionClusterKey",
            json!({"request": "AA=="}),
            2704,
            "wrong_role",
        ),
        (
            &wurl,
            "getReply",
            json!({"command": "0xzz"}),
            2701,
            "bad_params",
        ),
        (
            &wurl,
            "getReply",
            json!({"command": zero}),
            2703,
            "not_found",
        ),
        (
            &gurl,
            "getReply",
            json!({"command": zero}),
            2704,
            "wrong_role",
        ),
    ];
    for (url, method, params, code, reason) in cases {
        let got = raw_call(url, method, params.clone()).await;
        assert_eq!(
            (got["code"].as_i64(), got["reason"].as_str()),
            (Some(code), Some(reason)),
            "{method} {params}: {got}"
        );
    }
    // Unknown or missing fields are invalid params; an oversized body is refused unread.
    for params in [json!({"request": "AA==", "extra": 1}), json!({})] {
        let got = raw_call(&gurl, "provisionClusterKey", params).await;
        assert_eq!(got["code"].as_i64(), Some(-32602), "{got}");
    }
    let huge = json!({"request": "A".repeat(100 << 10)});
    let got = raw_call(&gurl, "provisionClusterKey", huge).await;
    assert!(
        got.get("ok").is_none() && got["code"].as_i64() != Some(2702),
        "{got}"
    );

    // Nothing changed: no entry appended, no key gained or lost, both nodes still answer.
    assert_eq!(ledger.head().await.unwrap().hash, head);
    assert_eq!(
        NodeClient::new(&gurl).unwrap().health().await.unwrap().keys,
        keys
    );
    assert_eq!(
        NodeClient::new(&wurl)
            .unwrap()
            .health()
            .await
            .unwrap()
            .status,
        "active"
    );

    g.stop().await;
    w.stop().await;
    net.ledger.stop().await;
    remove(&net.dir);
}

/// With a TPM sealing source a node registers with `tpm-quote` evidence, which the ledger takes
/// only from attestation keys its genesis pins for the node's role: the same TPM registers as a
/// worker and is refused as a gatekeeper, whose stricter policy does not pin it; the refusal
/// shows in the gatekeeper's `getHealth`.
#[cfg(feature = "tpm")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tpm_nodes_register_with_quotes_only_where_the_genesis_pins_their_key() {
    use keyward_enclave::EvidencePolicy;
    use keyward_tpm::source::{SealingSource, TpmSource};
    use keyward_tpm::swtpm::Swtpm;

    let state = temp("tpm-swtpm");
    let Some(swtpm) = Swtpm::start_for_tests(&state) else {
        return;
    };
    let fingerprint = swtpm
        .connect()
        .and_then(|mut tpm| tpm.attestation_key())
        .unwrap()
        .fingerprint();
    let dir = temp("tpm-net");
    let council = IdentityKeypair::generate(&mut rand::thread_rng());
    let worker_policy = EvidencePolicy {
        trusted_tpm_keys: vec![fingerprint],
        ..EvidencePolicy::default()
    };
    // Pins no attestation key, so it is stricter than the worker policy and accepts nothing.
    let gatekeeper_policy = EvidencePolicy::default();
    let genesis = dev::genesis_with_policies(
        "node-tpm",
        std::slice::from_ref(&council),
        keyward_ledger::Params::default(),
        gatekeeper_policy,
        worker_policy,
    );
    let mut config = LedgerConfig::new(dir.join("ledger"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.genesis = Some(genesis.as_bytes().to_vec());
    let ledger = Service::start(&config).await.unwrap();
    let url = format!("http://{}", ledger.running.addr);
    let (mut follower, _) = Follower::start(LedgerClient::new(&url).unwrap(), genesis.hash())
        .await
        .unwrap();
    let node_config = |role, name: &str, nv_index| {
        let mut c = NodeConfig::new(role, url.clone(), genesis.hash(), dir.join(name));
        // No dev platform key: a TPM node attests with the TPM.
        c.platform_key = dir.join("no-such-platform.key");
        c.sealing = SealingSource::Tpm(TpmSource {
            tcti: swtpm.tcti(),
            pcrs: vec![16],
            nv_index,
        });
        c.poll_ms = 100;
        c
    };

    // swtpm serves one client at a time: the gatekeeper first, then the worker.
    let gatekeeper = Node::start(node_config(NodeRole::Gatekeeper, "g", 0x0150_0030))
        .await
        .unwrap();
    let client = NodeClient::new(&format!("http://{}", gatekeeper.addr)).unwrap();
    let start = Instant::now();
    let refused = loop {
        let health = client.health().await.unwrap();
        assert_eq!(health.status, "unregistered");
        if let Some(reason) = health.refused {
            break reason;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no refusal");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(refused.contains("evidence refused"), "{refused}");
    assert!(follower.registry().node(&gatekeeper.id).is_none());
    gatekeeper.stop().await;

    let worker = Node::start(node_config(NodeRole::Worker, "w", 0x0150_0031))
        .await
        .unwrap();
    let start = Instant::now();
    while follower.registry().node(&worker.id).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the worker never registered"
        );
        follower.wait(200).await.unwrap();
    }
    let registered = follower.registry().node(&worker.id).unwrap().measurement;
    // The quote's measurement, derived from the PCRs, not the dev constant.
    assert_ne!(registered, dev::WORKER_MEASUREMENT);
    let client = NodeClient::new(&format!("http://{}", worker.addr)).unwrap();
    let start = Instant::now();
    loop {
        let health = client.health().await.unwrap();
        assert_eq!(health.refused, None);
        if health.status == "active" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{health:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.stop().await;
    ledger.stop().await;
    drop(swtpm);
    remove(&dir);
    remove(&state);
}
