//! The isolated runner for gatekeepers and workers, as processes: each node's core runs in its
//! own hardened `keyward enclave --role`, the nodes register and provision through them, either
//! enclave can be SIGKILLed and restarted under a running node, a node can be restarted over its
//! enclave, and neither node's identity key, sealing key or (the worker's) ClusterKeys ever
//! appear in a host process's memory or in any log. The enclave signs only entries its core
//! produced.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keyward_crypto::{ChainId, IdentityKeypair, SecretBytes};
use keyward_enclave::{SealedBlob, Sealer, SealingKey};
use keyward_hierarchy::ClusterId;
use keyward_isolation::{read_frame, write_frame};
use keyward_ledger::{Body, ClusterCreate, EntryHash, Position};
use keyward_ledger_service::client::LedgerClient;
use keyward_ledger_service::follow::Follower;
use keyward_ledger_service::service::{LedgerConfig, Service};
use keyward_node::{Gatekeeper, Worker};
use keyward_node_service::NodeRole;
use keyward_node_service::client::NodeClient;
use keyward_node_service::dev;
use keyward_node_service::runner::protocol::{self, tag};

mod common;
use common::{Proc, assert_hardened, contains, memory, printed};

const CHAIN: &str = "enclave-net";

/// A node: its enclave's state directory and socket, and its host's data directory.
struct Paths {
    role: NodeRole,
    state: PathBuf,
    socket: PathBuf,
    data: PathBuf,
}

impl Paths {
    fn new(dir: &Path, role: NodeRole) -> Self {
        let name = role.name();
        Self {
            role,
            state: dir.join(format!("{name}-enclave")),
            socket: dir.join(format!("{name}.sock")),
            data: dir.join(name),
        }
    }

    fn enclave(&self, genesis: &str, platform: &Path) -> Proc {
        Proc::start(
            &[
                "enclave",
                "--role",
                self.role.name(),
                "--genesis-hash",
                genesis,
                "--state-dir",
                self.state.to_str().unwrap(),
                "--socket",
                self.socket.to_str().unwrap(),
                "--platform-key",
                platform.to_str().unwrap(),
            ],
            "keyward enclave started",
        )
        .0
    }

    fn node(&self, ledger: &str, genesis: &str) -> Proc {
        Proc::start(
            &[
                self.role.name(),
                "--ledger",
                ledger,
                "--genesis-hash",
                genesis,
                "--data-dir",
                self.data.to_str().unwrap(),
                "--enclave-socket",
                self.socket.to_str().unwrap(),
            ],
            "node started",
        )
        .0
    }

    /// What its enclave's directory seals, opened with the soft source's key file.
    fn sealed(&self) -> (Sealer, SealedBlob) {
        let key = fs::read(self.state.join("sealing.key")).unwrap();
        let key = SealingKey::from_bytes(SecretBytes::from_slice(&key).unwrap());
        let sealer = Sealer::new(&key, ChainId::new(CHAIN).unwrap(), self.role.measurement());
        let blob = SealedBlob::from_bytes(fs::read(self.state.join("node.sealed")).unwrap());
        (sealer, blob)
    }

    /// The worker's ClusterKey seeds for `clusters` (epoch 0, generation 0), from the sealed
    /// state in its enclave's directory.
    fn cluster_keys(&self, genesis: &EntryHash, clusters: &[&str]) -> Vec<[u8; 32]> {
        let (sealer, blob) = self.sealed();
        let worker = Worker::restore(&sealer, genesis, &blob, 0).unwrap();
        let context = keyward_ledger::KeyContext {
            epoch: keyward_hierarchy::Epoch(0),
            generation: keyward_hierarchy::Generation(0),
        };
        clusters
            .iter()
            .map(|c| {
                let key = worker.cluster_key(&ClusterId::new(c).unwrap(), context);
                *key.unwrap().seed().expose()
            })
            .collect()
    }

    /// The node's identity keypair, from the sealed state in its enclave's directory.
    fn identity(&self, genesis: &EntryHash) -> IdentityKeypair {
        let (sealer, blob) = self.sealed();
        let seed = match self.role {
            NodeRole::Gatekeeper => *Gatekeeper::restore(&sealer, genesis, &blob, 0)
                .unwrap()
                .signer()
                .seed()
                .expose(),
            NodeRole::Worker => *Worker::restore(&sealer, genesis, &blob, 0)
                .unwrap()
                .signer()
                .seed()
                .expose(),
        };
        IdentityKeypair::from_seed(SecretBytes::new(seed))
    }
}

async fn until(
    follower: &mut Follower,
    what: &str,
    done: impl Fn(&keyward_ledger::Registry) -> bool,
) {
    let start = Instant::now();
    while !done(&follower.registry()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out: {what}"
        );
        follower.wait(200).await.unwrap();
    }
}

/// Waits until the node at `addr` holds `keys` keys.
async fn holds(addr: &str, keys: usize) {
    let client = NodeClient::new(addr).unwrap();
    let start = Instant::now();
    loop {
        if client.health().await.is_ok_and(|h| h.keys >= keys) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{addr} never held {keys} keys"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The node's RPC address, from its log's `node started` line.
fn addr(log: &Proc) -> String {
    let log = log.log.lock().unwrap();
    let line = log.lines().find(|l| l.contains("node started")).unwrap();
    let addr = line
        .split("addr=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolated_nodes_provision_survive_restarts_and_keep_their_keys_out_of_the_host() {
    let dir = std::env::temp_dir().join(format!("keyward-node-enclave-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let platform_path = dir.join("platform.key");
    let platform = dev::create_platform_key(&platform_path).unwrap();
    let council = IdentityKeypair::generate(&mut rand::thread_rng());
    let genesis_entry = dev::genesis(CHAIN, std::slice::from_ref(&council), &platform);
    let genesis = genesis_entry.hash();
    let mut config = LedgerConfig::new(dir.join("ledger"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.genesis = Some(genesis_entry.as_bytes().to_vec());
    let ledger = Service::start(&config).await.unwrap();
    let url = format!("http://{}", ledger.running.addr);
    let (mut follower, _) = Follower::start(LedgerClient::new(&url).unwrap(), genesis)
        .await
        .unwrap();
    let hash = keyward_crypto::hex::to_0x(&genesis.0);

    let g = Paths::new(&dir, NodeRole::Gatekeeper);
    let w = Paths::new(&dir, NodeRole::Worker);
    let g_enclave = g.enclave(&hash, &platform_path);
    let w_enclave = w.enclave(&hash, &platform_path);
    assert_hardened(g_enclave.pid());
    assert_hardened(w_enclave.pid());
    let g_node = g.node(&url, &hash);
    let w_node = w.node(&url, &hash);
    let (g_id, w_id) = (g.identity(&genesis), w.identity(&genesis));
    until(&mut follower, "both registered, epoch 0 founded", |r| {
        r.node(&w_id.public()).is_some()
            && r.epoch(keyward_hierarchy::Epoch(0))
                .is_some_and(|e| e.holders().contains(&g_id.public()))
    })
    .await;

    // Both enclaves die and come back: each registry starts again from the genesis, and the
    // node hands it the ledger before its next step; the gatekeeper's restores its sealed epoch
    // secret, which the worker's provisioning below needs.
    let mut logs = w_enclave.kill();
    logs += &g_enclave.kill();
    let w_enclave = w.enclave(&hash, &platform_path);
    let g_enclave = g.enclave(&hash, &platform_path);
    follower
        .submit(
            &council,
            &Body::ClusterCreate(ClusterCreate {
                cluster: ClusterId::new("c1").unwrap(),
                members: [w_id.public()].into_iter().collect(),
            }),
            &mut rand::thread_rng(),
        )
        .await
        .unwrap();
    let (g_addr, w_addr) = (addr(&g_node), addr(&w_node));
    holds(&w_addr, 1).await;
    holds(&g_addr, 1).await;

    let cluster_keys = w.cluster_keys(&genesis, &["c1"]);
    let sealing_keys = [&g, &w].map(|p| fs::read(p.state.join("sealing.key")).unwrap());

    // Neither host holds its node's identity key, a sealing key or a ClusterKey (its public
    // key, as a control, it does).
    for (node, id) in [(&g_node, &g_id), (&w_node, &w_id)] {
        let memory = memory(node.pid());
        assert!(
            contains(&memory, &id.public().to_bytes()),
            "the scan sees the host's data"
        );
        assert!(
            !contains(&memory, id.seed().expose()),
            "a host holds its identity key"
        );
        for secret in sealing_keys
            .iter()
            .map(Vec::as_slice)
            .chain(cluster_keys.iter().map(<[u8; 32]>::as_slice))
        {
            assert!(
                !contains(&memory, secret),
                "a host holds a sealing or cluster key"
            );
        }
    }

    // The worker's node restarts over the same enclave: the same identity, its key still held.
    logs += &w_node.kill();
    let w_node = w.node(&url, &hash);
    holds(&addr(&w_node), 1).await;
    logs += &w_node.kill();

    // With no node connected, a client of the enclave's socket cannot get an entry signed that
    // the core did not produce.
    let mut stream = UnixStream::connect(&w.socket).unwrap();
    let hello = protocol::encode(|wr| protocol::put_hello(wr, NodeRole::Worker, &genesis_entry));
    write_frame(&mut stream, tag::HELLO, &hello).unwrap();
    assert_eq!(read_frame(&mut stream).unwrap().unwrap().tag, tag::WELCOME);
    let forged = Body::ClusterCreate(ClusterCreate {
        cluster: ClusterId::new("mine").unwrap(),
        members: [w_id.public()].into_iter().collect(),
    });
    let position = Position {
        height: 99,
        parent: EntryHash::ZERO,
        seq: 0,
    };
    let sign = protocol::encode(|wr| protocol::put_sign(wr, position, &forged));
    write_frame(&mut stream, tag::SIGN, &sign).unwrap();
    let answer = read_frame(&mut stream).unwrap().unwrap();
    assert_eq!(answer.tag, tag::FAILED);
    assert!(
        protocol::failed(&answer.body)
            .to_string()
            .contains("did not produce"),
        "{:?}",
        protocol::failed(&answer.body)
    );
    drop(stream);

    logs += &g_node.kill();
    logs += &g_enclave.kill();
    logs += &w_enclave.kill();
    let sealing_keys = sealing_keys.map(|key| <[u8; 32]>::try_from(key.as_slice()).unwrap());
    let secrets = [g_id.seed().expose(), w_id.seed().expose()]
        .into_iter()
        .chain(&sealing_keys)
        .chain(&cluster_keys);
    for secret in secrets {
        for form in printed(secret) {
            assert!(!logs.contains(&form), "a log holds a secret key");
        }
    }
    assert!(logs.contains("core opened"), "{logs}");
    ledger.stop().await;
    let _ = fs::remove_dir_all(&dir);
}
