//! Provisioning ClusterKeys at scale (issue 4): one gatekeeper answers every worker of a large
//! network, first in one process (the gatekeeper's core alone, no network), then over JSON-RPC
//! (a real `keyward ledger` and `keyward gatekeeper` process, fed by a load generator).
//!
//! Run: `cargo bench -p keyward --bench provision -- [--workers N] [--mode core|rpc|both]
//! [--concurrency C] [--batch B]` (defaults: 10000 workers, both modes, 8 requests in flight
//! over RPC; in core mode requests are answered in batches of B, default 64, as the service
//! answers a full queue, and `--batch 1` answers them one by one).
//! Figures and the machine: docs/BENCHMARKS.md.
//!
//! The set-up (generating, attesting and registering the workers, forming clusters of 64) is not
//! timed. Timed: the gatekeeper answering one signed request per worker (checking the request
//! and the registry, sealing its partial evaluation to the worker's channel key), and in core
//! mode also its own steps before that (epoch 0, cluster keys, one evaluation per cluster).
//! A sample of answers is opened and verified by real worker cores afterwards.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

mod support;
use support::{Chain, process_cpu, spawn};

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keyward_crypto::{Envelope, IdentityKeypair, IdentityPublicKey, SecretBytes};
use keyward_enclave::DevPlatformKey;
use keyward_hierarchy::{ClusterId, ClusterKeyRequest};
use keyward_ledger::{
    Body, ClusterCreate, EntryHash, Registration, Registry, Role, registration_nonce,
};
use keyward_ledger_service::client::LedgerClient;
use keyward_ledger_service::follow::Follower;
use keyward_node::{Gatekeeper, GatekeeperStep, ProvisionRequest, Worker};
use keyward_node_service::client::NodeClient;
use keyward_node_service::dev;
use keyward_node_service::provisioner::MAX_BATCH;
use rand::{SeedableRng, rngs::StdRng};
use rand_core::OsRng;

/// Workers whose answers are opened and verified after the timed run.
const SAMPLE: usize = 16;

struct Options {
    workers: usize,
    core: bool,
    rpc: bool,
    concurrency: usize,
    batch: usize,
}

fn options() -> Options {
    let mut o = Options {
        workers: 10_000,
        core: true,
        rpc: true,
        concurrency: 8,
        batch: MAX_BATCH,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--workers" => o.workers = args.next().unwrap().parse().unwrap(),
            "--concurrency" => o.concurrency = args.next().unwrap().parse().unwrap(),
            "--batch" => o.batch = args.next().unwrap().parse().unwrap(),
            "--mode" => match args.next().unwrap().as_str() {
                "core" => (o.core, o.rpc) = (true, false),
                "rpc" => (o.core, o.rpc) = (false, true),
                _ => (o.core, o.rpc) = (true, true),
            },
            _ => {} // cargo passes --bench
        }
    }
    o
}

/// A ledger of `n` registered workers in clusters of the maximum size, built in memory.
struct Net {
    chain: Chain,
    council: Vec<IdentityKeypair>,
    platform: DevPlatformKey,
    /// The first [`SAMPLE`] workers, as cores (their answers are verified).
    sample: Vec<Worker>,
    /// Every worker's identity key and cluster, in registration order.
    workers: Vec<(IdentityKeypair, ClusterId)>,
}

impl Net {
    fn new(n: usize, platform: DevPlatformKey) -> Self {
        let mut rng = StdRng::seed_from_u64(4);
        let council: Vec<_> = (0..3)
            .map(|_| IdentityKeypair::generate(&mut rng))
            .collect();
        let genesis = dev::genesis("bench", &council, &platform);
        let mut net = Self {
            chain: Chain::new(genesis, rng),
            council,
            platform,
            sample: Vec::new(),
            workers: Vec::new(),
        };
        let size = usize::from(
            net.chain
                .registry
                .genesis()
                .config()
                .params
                .max_cluster_size,
        );
        let mut members = Vec::new();
        for i in 0..n {
            let core = Worker::generate(net.chain.genesis.hash(), &mut net.chain.rng);
            let identity =
                IdentityKeypair::from_seed(SecretBytes::new(*core.signer().seed().expose()));
            let body = Body::WorkerRegister(net.chain.worker_registration(&core, &net.platform));
            net.chain.append(&identity, &body);
            members.push(identity.public());
            let cluster = ClusterId::new(&format!("c{}", i / size)).unwrap();
            net.workers.push((identity, cluster.clone()));
            if net.sample.len() < SAMPLE {
                net.sample.push(core);
            }
            if members.len() == size || i + 1 == n {
                let body = Body::ClusterCreate(ClusterCreate {
                    cluster,
                    members: std::mem::take(&mut members).into_iter().collect(),
                });
                let council =
                    IdentityKeypair::from_seed(SecretBytes::new(*net.council[0].seed().expose()));
                net.chain.append(&council, &body);
            }
        }
        net
    }

    /// Every worker's request to `gatekeeper`, signed, for the cluster's current key context.
    fn requests(&mut self, registry: &Registry, gatekeeper: IdentityPublicKey) -> Vec<Vec<u8>> {
        let genesis = self.chain.genesis.hash();
        let rng = &mut self.chain.rng;
        self.workers
            .iter()
            .map(|(identity, cluster)| {
                let request = request_of(registry, cluster);
                ProvisionRequest::sign(identity, &genesis, gatekeeper, request, rng).to_bytes()
            })
            .collect()
    }

    /// Opens and verifies the sample's answers with the workers' cores.
    fn verify_sample(&mut self, registry: &Registry, answers: &[Envelope]) {
        for (worker, answer) in self.sample.iter_mut().zip(answers) {
            let cluster = &self.workers[0].1;
            let cluster = self
                .workers
                .iter()
                .find(|(id, _)| id.public() == worker.id())
                .map_or(cluster, |(_, c)| c);
            let request = request_of(registry, cluster);
            let refused = worker
                .provisioned(registry, &request, std::slice::from_ref(answer))
                .unwrap();
            assert!(refused.is_empty(), "{refused:?}");
        }
    }
}

fn request_of(registry: &Registry, cluster: &ClusterId) -> ClusterKeyRequest {
    let context = registry.key_context(cluster).unwrap();
    ClusterKeyRequest {
        epoch: context.epoch,
        cluster: cluster.clone(),
        generation: context.generation,
    }
}

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    Duration::from_nanos(text.split_whitespace().next().unwrap().parse().unwrap())
}

/// A `/proc/<pid>/status` memory figure (`VmHWM` peak, `VmRSS` now), in MiB.
fn memory(pid: &str, field: &str) -> f64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = text.lines().find(|l| l.starts_with(field)).unwrap();
    let kib: f64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024.0
}

fn core_mode(n: usize, batch: usize) {
    let platform = DevPlatformKey::generate(&mut StdRng::seed_from_u64(5));
    let start = Instant::now();
    let mut net = Net::new(n, platform);
    // The gatekeeper registers, founds epoch 0 and publishes every cluster's key.
    let mut gatekeeper = Gatekeeper::generate(net.chain.genesis.hash(), &mut net.chain.rng);
    let nonce = registration_nonce(
        &net.chain.genesis.hash(),
        Role::Gatekeeper { admitted: false },
    );
    let evidence = net
        .platform
        .attest(
            dev::GATEKEEPER_MEASUREMENT,
            &gatekeeper.bound_keys(),
            &nonce,
            &mut net.chain.rng,
        )
        .unwrap();
    let body = Body::GatekeeperRegister(Registration {
        channel: gatekeeper.channel(),
        endpoint: "127.0.0.1:2".parse().unwrap(),
        stake: net
            .chain
            .registry
            .genesis()
            .config()
            .params
            .min_gatekeeper_stake,
        evidence,
    });
    let signer = IdentityKeypair::from_seed(SecretBytes::new(*gatekeeper.signer().seed().expose()));
    net.chain.append(&signer, &body);
    // The gatekeeper's own steps (epoch 0, every cluster key, every cluster's partial
    // evaluation) are its CPU too: timed apart from the ledger's verification of their entries.
    let mut steps = Duration::ZERO;
    loop {
        let cpu = thread_cpu();
        let step = gatekeeper.step(&net.chain.registry, &mut OsRng);
        steps += thread_cpu() - cpu;
        let Some(GatekeeperStep::Submit(body) | GatekeeperStep::SealThenSubmit(body)) = step else {
            break;
        };
        net.chain.append(&signer, &body);
    }
    let registry = net.chain.registry.clone();
    let requests = net.requests(&registry, gatekeeper.id());
    println!(
        "core: {n} workers in {} clusters set up in {:.1} s; RSS {:.0} MiB",
        registry.clusters().count(),
        start.elapsed().as_secs_f64(),
        memory("self", "VmRSS:")
    );

    let (cpu, wall) = (thread_cpu(), Instant::now());
    let mut sample = Vec::with_capacity(SAMPLE);
    for batch in requests.chunks(batch) {
        // As the service answers a full queue; the OS generator, as the service uses.
        let batch: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        for answer in gatekeeper.answer_all(&registry, &batch, &mut OsRng) {
            let answer = answer.unwrap();
            if sample.len() < SAMPLE {
                sample.push(answer);
            }
        }
    }
    let (cpu, wall) = (thread_cpu() - cpu, wall.elapsed());
    net.verify_sample(&registry, &sample);
    println!(
        "core: {n} answers in batches of {batch} in {:.2} s CPU ({:.1} µs each, {:.0} keys/s); \
         wall {:.2} s; peak RSS {:.0} MiB",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / n as f64,
        n as f64 / cpu.as_secs_f64(),
        wall.as_secs_f64(),
        memory("self", "VmHWM:")
    );
    println!(
        "core: gatekeeper steps (epoch 0, cluster keys, partial evaluations) {:.2} s CPU; \
         total gatekeeper CPU {:.2} s",
        steps.as_secs_f64(),
        (steps + cpu).as_secs_f64()
    );
}

fn rpc_mode(n: usize, concurrency: usize) {
    let dir = std::env::temp_dir().join(format!("keyward-bench-provision-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let result = std::panic::catch_unwind(|| rpc_run(&dir, n, concurrency));
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn rpc_run(dir: &Path, n: usize, concurrency: usize) {
    let runtime = support::runtime();
    let platform_key = dir.join("platform.key");
    let platform = dev::create_platform_key(&platform_key).unwrap();
    let start = Instant::now();
    let mut net = Net::new(n, platform);
    let ledger = support::start_ledger(&runtime, dir, &net.chain.genesis, &net.chain.entries);
    let (ledger_url, client, _ledger) = (ledger.url, ledger.client, ledger.proc);
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    let genesis = net.chain.genesis.hash();
    let mut gatekeeper = spawn(
        dir,
        "gatekeeper",
        &[
            "gatekeeper",
            "--ledger",
            &ledger_url,
            "--genesis-hash",
            &format!("{genesis}"),
            "--data-dir",
            &path(&dir.join("gatekeeper")),
            "--platform-key",
            &path(&platform_key),
        ],
        true,
    );
    let pid = gatekeeper.0.id();
    // "gatekeeper <id> listening on <addr>"
    let mut line = String::new();
    std::io::BufReader::new(gatekeeper.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line.split_whitespace().last().unwrap().to_owned();
    let follower = runtime.block_on(wait_for_keys(client, genesis));
    let registry = follower.registry().clone();
    let id = *registry
        .nodes()
        .find(|(_, node)| matches!(node.role, Role::Gatekeeper { .. }))
        .unwrap()
        .0;
    let requests = Arc::new(net.requests(&registry, id));
    println!(
        "rpc: {n} workers in {} clusters set up in {:.1} s; gatekeeper {pid} at {addr}, \
         RSS {:.0} MiB",
        registry.clusters().count(),
        start.elapsed().as_secs_f64(),
        memory(&pid.to_string(), "VmRSS:")
    );

    let node = NodeClient::new(&format!("http://{addr}")).unwrap();
    let (cpu, wall) = (process_cpu(pid), Instant::now());
    let (mut latencies, sample) = runtime.block_on(load(node, requests, concurrency));
    let (cpu, wall) = (process_cpu(pid) - cpu, wall.elapsed());
    net.verify_sample(&registry, &sample);
    latencies.sort_unstable();
    let pct = |p: usize| latencies[(latencies.len() - 1) * p / 100].as_secs_f64() * 1e3;
    println!(
        "rpc: {n} answers in {:.2} s wall ({:.0} keys/s, {concurrency} in flight; latency p50 \
         {:.2} ms, p99 {:.2} ms); gatekeeper CPU {:.2} s ({:.0} µs each); gatekeeper peak RSS \
         {:.0} MiB",
        wall.as_secs_f64(),
        n as f64 / wall.as_secs_f64(),
        pct(50),
        pct(99),
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / n as f64,
        memory(&pid.to_string(), "VmHWM:")
    );
}

/// Follows the ledger until every cluster's current key is published.
async fn wait_for_keys(client: LedgerClient, genesis: EntryHash) -> Follower {
    let (mut follower, _) = Follower::start(client, genesis).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let done = {
            let registry = follower.registry();
            registry.current_epoch().is_some()
                && registry.clusters().all(|(id, cluster)| {
                    let context = registry.key_context(id).unwrap();
                    cluster.key(context).is_some()
                })
        };
        if done {
            return follower;
        }
        assert!(Instant::now() < deadline, "cluster keys not published");
        follower.wait(1000).await.unwrap();
    }
}

/// Sends every request, `concurrency` at a time; returns each latency and the first answers.
async fn load(
    node: NodeClient,
    requests: Arc<Vec<Vec<u8>>>,
    concurrency: usize,
) -> (Vec<Duration>, Vec<Envelope>) {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (node, requests, next) = (node.clone(), requests.clone(), next.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(request) = requests.get(i) else {
                        return out;
                    };
                    let t = Instant::now();
                    let answer = node.provision(request).await.unwrap();
                    out.push((i, t.elapsed(), (i < SAMPLE).then_some(answer)));
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests.len());
    let mut sample = vec![None; SAMPLE.min(requests.len())];
    for task in tasks {
        for (i, latency, answer) in task.await.unwrap() {
            latencies.push(latency);
            if let Some(answer) = answer {
                sample[i] = Some(Envelope::from_bytes(&answer).unwrap());
            }
        }
    }
    (latencies, sample.into_iter().map(Option::unwrap).collect())
}

fn main() {
    let o = options();
    println!("cpu: {}", support::cpu_model());
    if o.core {
        core_mode(o.workers, o.batch);
    }
    if o.rpc {
        rpc_mode(o.workers, o.concurrency);
    }
}
