//! Threshold mode on loopback (issue 5): the DKG that makes epoch 0, one worker's ClusterKey from
//! t-of-n gatekeepers, and provisioning a large network, each against a real `keyward ledger` and
//! real `keyward gatekeeper` processes.
//!
//! Run: `cargo bench -p keyward --bench threshold -- [--mode dkg|clusterkey|provision|all]
//! [--sizes 3,5,10,20] [--configs 2-of-3,3-of-5] [--requests 1000] [--workers 10000]
//! [--concurrency 8]` (defaults shown; all three modes), e.g.
//! `cargo bench -p keyward --bench threshold -- --mode dkg`.
//! Figures and the machine: docs/BENCHMARKS.md.
//!
//! - **dkg**: for each n of `--sizes`, t = n/2 + 1: a genesis with n bootstrap gatekeepers and key
//!   threshold t, a ledger and n gatekeeper processes. Timed: from when the bench's follower sees
//!   the last gatekeeper's registration (which starts epoch 0's DKG) until it sees epoch 0 active
//!   (every member committed, dealt, opened its parts, sealed its share to disk and accepted: 3n
//!   entries when nobody complains; the count is printed). Both moments are seen through the same
//!   long-poll, so each is late by about one ledger round trip. Also printed: each gatekeeper's
//!   CPU over that window (utime + stime from `/proc/<pid>/stat`, in clock ticks, usually 10 ms).
//! - **clusterkey**: for each t-of-n of `--configs`, `--requests` workers, each getting its key
//!   once, **one at a time**. Timed per worker, exactly as a worker node does it (host/node,
//!   `runner::signed_requests` and `client::ask_holders`): its core asks for the key
//!   (`Worker::step`); the host signs a request to **every holder** of the epoch and asks them
//!   **all at once**, over a new worker's fresh connections (kept ones with
//!   `--kept-connections`); the core checks each answer as it arrives (opens it, checks the
//!   gatekeeper's signed partial and its DLEQ proof against the epoch's committee,
//!   `Worker::check_answer`) until t are valid, and combines them (`Worker::provisioned_from`).
//!   Not timed: the sealed-state write the node does afterwards, and checking the answers that
//!   arrive after the key (the node does that in the background; here the next worker waits
//!   for it, but its CPU is counted).
//!   Reported as p50/p99.
//! - **provision**: the same path for `--workers` workers with 3-of-5 gatekeepers, `--concurrency`
//!   workers at a time: the wall time until every worker holds its key, with the gatekeepers' CPU
//!   and the bench's own (mostly the worker cores' opening, checking and combining, which in a
//!   network runs on each worker's machine; here it shares the 2 cores with the gatekeepers).
//!
//! Not timed: generating, attesting and registering the workers and forming clusters of 64 (built
//! in memory and appended before the gatekeepers start), and the DKG. A gatekeeper answers from a
//! partial evaluation it caches per cluster key context (evaluated in its step, at most 64 per
//! step); the bench waits an estimate of the time that takes (it cannot see the caches), so
//! **it measures the cached path** (one batch signature check and one sealed envelope per
//! answer), not a new cluster's first answers. No
//! cluster key is published here (in a network a member worker publishes the first key it
//! combines), so the workers have none to compare theirs with; instead every member of a cluster
//! is checked to hold the same key afterwards.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout
)]

mod support;
use support::{Chain, Proc, clock_ticks, process_cpu, spawn};

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyward_crypto::{IdentityKeypair, IdentityPublicKey};
use keyward_enclave::DevPlatformKey;
use keyward_hierarchy::{ClusterId, Epoch};
use keyward_ledger::{Body, ClusterCreate, Entry, EpochStatus, Params, Registry};
use keyward_ledger_service::follow::Follower;
use keyward_node::{Worker, WorkerStep};
use keyward_node_service::client::{Clients, ask_holders};
use keyward_node_service::dev;
use keyward_node_service::runner::signed_requests;
use rand::{SeedableRng, rngs::StdRng};
use rand_core::OsRng;

/// A node's long poll of the ledger (`NodeConfig::new`): an idle gatekeeper steps this often.
const POLL: Duration = Duration::from_secs(1);
/// Partial evaluations a gatekeeper caches per step (`MAX_EVALUATIONS_PER_STEP` in
/// core/node/src/gatekeeper.rs, not public).
const EVALUATIONS_PER_STEP: usize = 64;
/// The provision mode's committee: 3-of-5.
const PROVISION_CONFIG: (u16, u16) = (3, 5);

struct Options {
    dkg: bool,
    clusterkey: bool,
    provision: bool,
    sizes: Vec<u16>,
    configs: Vec<(u16, u16)>,
    requests: usize,
    workers: usize,
    concurrency: usize,
    /// Each load task keeps its connections across the workers it drives, as one worker node
    /// does across its asks; by default every worker opens new ones (its first key).
    kept: bool,
}

fn options() -> Options {
    let mut o = Options {
        dkg: true,
        clusterkey: true,
        provision: true,
        sizes: vec![3, 5, 10, 20],
        configs: vec![(2, 3), (3, 5)],
        requests: 1000,
        workers: 10_000,
        concurrency: 8,
        kept: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--sizes" => {
                let text = args.next().unwrap();
                o.sizes = text.split(',').map(|n| n.parse().unwrap()).collect();
            }
            "--configs" => o.configs = args.next().unwrap().split(',').map(config).collect(),
            "--requests" => o.requests = args.next().unwrap().parse().unwrap(),
            "--workers" => o.workers = args.next().unwrap().parse().unwrap(),
            "--concurrency" => o.concurrency = args.next().unwrap().parse().unwrap(),
            "--kept-connections" => o.kept = true,
            "--mode" => {
                (o.dkg, o.clusterkey, o.provision) = match args.next().unwrap().as_str() {
                    "dkg" => (true, false, false),
                    "clusterkey" => (false, true, false),
                    "provision" => (false, false, true),
                    _ => (true, true, true),
                }
            }
            _ => {} // cargo passes --bench
        }
    }
    o
}

/// `t-of-n`.
fn config(text: &str) -> (u16, u16) {
    let (t, n) = text
        .split_once("-of-")
        .expect("a config is t-of-n, e.g. 3-of-5");
    (t.parse().unwrap(), n.parse().unwrap())
}

/// Threshold mode, `t`-of-`n`: every one of the `n` gatekeepers is a bootstrap gatekeeper and a
/// member of epoch 0's DKG (as `keyward devnet` sets it).
fn params(t: u16, n: u16) -> Params {
    Params {
        bootstrap_gatekeepers: n,
        key_threshold: t,
        ..Params::default()
    }
}

/// A ledger of `n` registered workers in clusters of the maximum size, built in memory.
struct Net {
    chain: Chain,
    /// Every worker's core, in registration order.
    workers: Vec<Worker>,
}

impl Net {
    fn new(n: usize, platform: &DevPlatformKey, params: Params) -> Self {
        let mut rng = StdRng::seed_from_u64(5);
        let council = [IdentityKeypair::generate(&mut rng)];
        let genesis = dev::genesis_with("bench", &council, platform, params);
        let mut chain = Chain::new(genesis, rng);
        let mut workers = Vec::new();
        let size = usize::from(params.max_cluster_size);
        let mut members = BTreeSet::new();
        for i in 0..n {
            let core = Worker::generate(chain.genesis.hash(), &mut chain.rng);
            let body = Body::WorkerRegister(chain.worker_registration(&core, platform));
            chain.append(core.signer(), &body);
            members.insert(core.id());
            workers.push(core);
            if members.len() == size || i + 1 == n {
                let body = Body::ClusterCreate(ClusterCreate {
                    cluster: ClusterId::new(&format!("c{}", i / size)).unwrap(),
                    members: std::mem::take(&mut members),
                });
                chain.append(&council[0], &body);
            }
        }
        Self { chain, workers }
    }
}

/// Runs `run` in a fresh directory, removed afterwards; kept, with the processes' logs, if the
/// run panics.
fn in_dir(label: &str, run: impl FnOnce(&Path) + std::panic::UnwindSafe) {
    let dir = std::env::temp_dir().join(format!(
        "keyward-bench-threshold-{}-{label}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    match std::panic::catch_unwind(|| run(&dir)) {
        Ok(()) => {
            let _ = std::fs::remove_dir_all(&dir);
        }
        Err(panic) => {
            println!("logs kept in {}", dir.display());
            std::panic::resume_unwind(panic);
        }
    }
}

/// A ledger and `n` gatekeepers on loopback, and the bench's own follower of the ledger.
struct Network {
    runtime: tokio::runtime::Runtime,
    follower: Follower,
    /// The ledger, then the gatekeepers.
    procs: Vec<Proc>,
}

impl Network {
    /// Starts a ledger from `genesis`, appends `entries`, then starts `n` gatekeepers with the
    /// platform key in `dir`.
    fn start(dir: &Path, genesis: &Entry, entries: &[Entry], n: u16) -> Self {
        let runtime = support::runtime();
        let ledger = support::start_ledger(&runtime, dir, genesis, entries);
        let (url, client) = (ledger.url, ledger.client);
        let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
        let mut procs = vec![ledger.proc];
        // Following before any gatekeeper starts, so that the bench sees their registrations land.
        let (follower, _) = runtime
            .block_on(Follower::start(client, genesis.hash()))
            .unwrap();
        let hash = genesis.hash().to_string();
        for i in 1..=n {
            let name = format!("g{i}");
            let data = path(&dir.join(&name));
            procs.push(spawn(
                dir,
                &name,
                &[
                    "gatekeeper",
                    "--ledger",
                    &url,
                    "--genesis-hash",
                    &hash,
                    "--data-dir",
                    &data,
                    "--platform-key",
                    &path(&dir.join("platform.key")),
                ],
                false,
            ));
        }
        Self {
            runtime,
            follower,
            procs,
        }
    }

    /// The gatekeepers' process ids.
    fn gatekeeper_pids(&self) -> Vec<u32> {
        self.procs[1..].iter().map(|p| p.0.id()).collect()
    }

    /// Follows the ledger until `done` holds; returns when the bench saw it.
    fn until(&mut self, what: &str, done: impl Fn(&Registry) -> bool) -> Instant {
        let deadline = Instant::now() + Duration::from_secs(900);
        let (follower, procs) = (&mut self.follower, &mut self.procs);
        self.runtime.block_on(async {
            loop {
                if done(&follower.registry()) {
                    return Instant::now();
                }
                for p in procs.iter_mut() {
                    if let Ok(Some(status)) = p.0.try_wait() {
                        panic!("a process exited ({status}) while waiting for {what}");
                    }
                }
                assert!(Instant::now() < deadline, "timed out waiting for {what}");
                follower.wait(1000).await.unwrap();
            }
        })
    }
}

fn epoch_0_active(registry: &Registry) -> bool {
    registry
        .epoch(Epoch(0))
        .is_some_and(|e| e.status() == EpochStatus::Active)
}

/// The DKG of epoch 0 among `n` gatekeepers, t = n/2 + 1.
fn dkg(dir: &Path, n: u16) {
    let t = n / 2 + 1;
    let ticks = clock_ticks();
    let platform = dev::create_platform_key(&dir.join("platform.key")).unwrap();
    let council = [IdentityKeypair::generate(&mut OsRng)];
    let genesis = dev::genesis_with("bench", &council, &platform, params(t, n));
    let mut net = Network::start(dir, &genesis, &[], n);
    let registered = net.until("every gatekeeper's registration", |r| {
        r.gatekeepers().count() == usize::from(n)
    });
    let pids = net.gatekeeper_pids();
    let cpu: Vec<Duration> = pids.iter().map(|pid| process_cpu(*pid)).collect();
    let height = net.follower.registry().next_height();
    let active = net.until("epoch 0 to be active", epoch_0_active);
    let wall = active - registered;
    let mut cpu: Vec<Duration> = pids
        .iter()
        .zip(cpu)
        .map(|(pid, before)| process_cpu(*pid) - before)
        .collect();
    let entries = net.follower.registry().next_height() - height;
    let total: Duration = cpu.iter().sum();
    cpu.sort_unstable();
    let each: Vec<String> = cpu
        .iter()
        .map(|c| format!("{:.0}", c.as_secs_f64() * 1e3))
        .collect();
    println!(
        "dkg: {t}-of-{n}: epoch 0 active {:.1} ms after the last registration ({entries} entries); \
         gatekeepers' CPU in that time {:.0} ms in all, each (ms, in {:.0} ms ticks): {}",
        wall.as_secs_f64() * 1e3,
        total.as_secs_f64() * 1e3,
        1e3 / ticks,
        each.join(" ")
    );
}

/// `workers` workers get their ClusterKeys from `t`-of-`n` gatekeepers, `concurrency` at a time.
/// Load shape: how many workers, how many in flight, and whether connections are kept.
#[derive(Clone, Copy)]
struct Load {
    workers: usize,
    concurrency: usize,
    kept: bool,
}

fn provisioning(dir: &Path, mode: &str, (t, n): (u16, u16), load_shape: Load) {
    let Load {
        workers,
        concurrency,
        kept,
    } = load_shape;
    let platform = dev::create_platform_key(&dir.join("platform.key")).unwrap();
    let setup = Instant::now();
    let Net {
        chain,
        workers: cores,
    } = Net::new(workers, &platform, params(t, n));
    let mut net = Network::start(dir, &chain.genesis, &chain.entries, n);
    net.until("epoch 0 to be active", epoch_0_active);
    let (clusters, holders) = {
        let registry = net.follower.registry();
        let holders = registry.epoch(Epoch(0)).unwrap().holders().len();
        (registry.clusters().count(), holders)
    };
    // Until every gatekeeper has cached every cluster's partial evaluation: an idle gatekeeper
    // steps once a poll and caches up to 64 a step.
    let steps = clusters.div_ceil(EVALUATIONS_PER_STEP) + 2;
    std::thread::sleep(POLL * u32::try_from(steps).unwrap());
    let registry = Arc::new(net.follower.registry().clone());
    println!(
        "{mode}: {t}-of-{n}, {workers} workers in {clusters} clusters set up (registrations, \
         DKG, partial caches) in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let pids = net.gatekeeper_pids();
    let gatekeepers_cpu = || pids.iter().map(|pid| process_cpu(*pid)).sum::<Duration>();
    let me = std::process::id();
    let (cpu, own, wall) = (gatekeepers_cpu(), process_cpu(me), Instant::now());
    let (mut latencies, cores) =
        net.runtime
            .block_on(load(cores, registry.clone(), concurrency, kept));
    let wall = wall.elapsed();
    let (cpu, own) = (gatekeepers_cpu() - cpu, process_cpu(me) - own);
    check_keys(&registry, &cores);

    latencies.sort_unstable();
    let pct = |p: usize| latencies[(latencies.len() - 1) * p / 100].as_secs_f64() * 1e3;
    let count = latencies.len() as f64;
    println!(
        "{mode}: {t}-of-{n}, {workers} keys, {concurrency} in flight, each worker asking all \
         {holders} holders at once over {} connections: {:.2} s wall ({:.0} keys/s); latency p50 {:.2} ms, p99 {:.2} \
         ms, max {:.2} ms; CPU per key: gatekeepers {:.0} µs in all, this bench (worker cores, \
         HTTP clients) {:.0} µs",
        if kept { "kept" } else { "new" },
        wall.as_secs_f64(),
        count / wall.as_secs_f64(),
        pct(50),
        pct(99),
        pct(100),
        cpu.as_secs_f64() * 1e6 / count,
        own.as_secs_f64() * 1e6 / count,
    );
}

/// Gets every worker its ClusterKey, `concurrency` workers at a time; returns each one's
/// latency, and the workers.
async fn load(
    workers: Vec<Worker>,
    registry: Arc<Registry>,
    concurrency: usize,
    kept: bool,
) -> (Vec<Duration>, Vec<Worker>) {
    let count = workers.len();
    let queue = Arc::new(Mutex::new(workers));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (queue, registry) = (queue.clone(), registry.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                let mut clients = Clients::default();
                loop {
                    let next = queue.lock().unwrap().pop();
                    let Some(mut worker) = next else {
                        return done;
                    };
                    if !kept {
                        clients = Clients::default();
                    }
                    let latency = provision(&mut worker, &registry, &mut clients).await;
                    done.push((latency, worker));
                }
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(count);
    let mut workers = Vec::with_capacity(count);
    for task in tasks {
        for (latency, worker) in task.await.unwrap() {
            latencies.push(latency);
            workers.push(worker);
        }
    }
    (latencies, workers)
}

/// One worker gets its ClusterKey as a worker node does (host/node/src/service.rs,
/// `Runner::provision`): a signed request to every holder of the epoch, all at once, each
/// answer checked by the worker's core as it arrives until t are valid, then combined. Returns
/// how long that took; the later answers are then checked too, untimed.
async fn provision(worker: &mut Worker, registry: &Registry, clients: &mut Clients) -> Duration {
    let start = Instant::now();
    let Some(WorkerStep::Provision(request)) = worker.step(registry, &mut OsRng) else {
        panic!("the worker's core asks for no ClusterKey");
    };
    // Exactly the worker node's path, with a new worker's fresh connections.
    let signed = signed_requests(registry, worker.signer(), &request)
        .into_iter()
        .filter_map(|(id, bytes)| Some((id, registry.node(&id)?.endpoint, bytes)))
        .collect();
    let mut answers = worker.collect(registry, &request).unwrap();
    let mut asks = ask_holders(clients, signed);
    while let Some(answer) = asks.next().await {
        if worker.check_answer(&mut answers, &answer) {
            break;
        }
    }
    worker.provisioned_from(registry, &answers).unwrap();
    let latency = start.elapsed();
    // As the node does in the background: the answers still on their way are checked too.
    while let Some(answer) = asks.next().await {
        worker.check_answer(&mut answers, &answer);
    }
    let refused = worker.audited(answers);
    assert!(refused.is_empty(), "{refused:?}");
    latency
}

/// Every worker holds its cluster's current key, and every member of a cluster the same one.
fn check_keys(registry: &Registry, workers: &[Worker]) {
    let mut keys: BTreeMap<&ClusterId, IdentityPublicKey> = BTreeMap::new();
    for worker in workers {
        let cluster = registry.cluster_of(&worker.id()).unwrap();
        let context = registry.key_context(cluster).unwrap();
        let key = worker
            .cluster_key(cluster, context)
            .expect("every worker was provisioned")
            .identity()
            .public();
        let first = *keys.entry(cluster).or_insert(key);
        assert!(first == key, "members of {cluster} combined different keys");
    }
}

fn main() {
    let o = options();
    println!("cpu: {}", support::cpu_model());
    if o.dkg {
        for &n in &o.sizes {
            in_dir(&format!("dkg-{n}"), move |dir| dkg(dir, n));
        }
    }
    if o.clusterkey {
        let shape = Load {
            workers: o.requests,
            concurrency: 1,
            kept: o.kept,
        };
        for &(t, n) in &o.configs {
            in_dir(&format!("clusterkey-{t}-of-{n}"), move |dir| {
                provisioning(dir, "clusterkey", (t, n), shape);
            });
        }
    }
    if o.provision {
        let shape = Load {
            workers: o.workers,
            concurrency: o.concurrency,
            kept: o.kept,
        };
        in_dir("provision", move |dir| {
            provisioning(dir, "provision", PROVISION_CONFIG, shape);
        });
    }
}
