//! What the loopback benchmarks share: child `keyward` processes, free ports, CPU time read
//! from `/proc`, and a ledger built in memory.
#![allow(dead_code, clippy::unwrap_used)] // each bench uses part of it

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A child `keyward` process, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `keyward args…` with stderr logged to `dir/name.log`, and stdout there too unless
/// `piped` (the caller then reads it).
pub fn spawn(dir: &Path, name: &str, args: &[&str], piped: bool) -> Proc {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let stdout = if piped {
        Stdio::piped()
    } else {
        Stdio::from(log.try_clone().unwrap())
    };
    let child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

/// The runtime the benches drive their clients with.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A running `keyward ledger` on a free loopback port, its data in `dir/ledger`.
pub struct Ledger {
    /// The process.
    pub proc: Proc,
    /// Its URL.
    pub url: String,
    /// A client of it.
    pub client: keyward_ledger_service::client::LedgerClient,
}

/// Starts `keyward ledger` from `genesis`, waits until it answers, and appends `entries`.
pub fn start_ledger(
    runtime: &tokio::runtime::Runtime,
    dir: &Path,
    genesis: &keyward_ledger::Entry,
    entries: &[keyward_ledger::Entry],
) -> Ledger {
    let genesis_file = dir.join("genesis");
    std::fs::write(&genesis_file, genesis.as_bytes()).unwrap();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let proc = spawn(
        dir,
        "ledger",
        &[
            "ledger",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            dir.join("ledger").to_str().unwrap(),
            "--genesis",
            genesis_file.to_str().unwrap(),
        ],
        false,
    );
    let client = runtime.block_on(async {
        let client = keyward_ledger_service::client::LedgerClient::new(&url).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while client.head().await.is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "the ledger did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for chunk in entries.chunks(keyward_ledger_service::wire::MAX_APPEND) {
            client.append(chunk).await.unwrap();
        }
        client
    });
    Ledger { proc, url, client }
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process's user + system CPU time so far (`/proc/<pid>/stat`, in clock ticks).
pub fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks())
}

/// The processor's model name from `/proc/cpuinfo`: this shared host's machines are not all of
/// one kind, and figures are only comparable on one.
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    info.lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or_else(|| "unknown".into(), |(_, model)| model.trim().into())
}

/// `getconf CLK_TCK`: the unit of /proc/<pid>/stat times (asked once).
pub fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    })
}

/// A ledger built in memory for a bench: each entry signed on the head, verified and applied in
/// order, and kept to be appended to a real ledger later.
pub struct Chain {
    pub rng: rand::rngs::StdRng,
    pub genesis: keyward_ledger::Entry,
    pub registry: keyward_ledger::Registry,
    /// Every entry after the genesis, in order.
    pub entries: Vec<keyward_ledger::Entry>,
}

impl Chain {
    /// A chain holding only `genesis`.
    pub fn new(genesis: keyward_ledger::Entry, rng: rand::rngs::StdRng) -> Self {
        let registry = keyward_ledger::Registry::from_genesis(&genesis, &genesis.hash()).unwrap();
        Self {
            rng,
            genesis,
            registry,
            entries: Vec::new(),
        }
    }

    /// Signs `body` on the head, verifies and applies it, and keeps the entry.
    pub fn append(
        &mut self,
        author: &keyward_crypto::IdentityKeypair,
        body: &keyward_ledger::Body,
    ) {
        let position = keyward_ledger::Position {
            height: self.registry.next_height(),
            parent: self.registry.head(),
            seq: self.registry.next_seq(&author.public()),
        };
        let entry = keyward_ledger::Entry::sign(author, position, body, &mut self.rng);
        let verified = self.registry.genesis().verify(entry.clone()).unwrap();
        self.registry.apply(verified).unwrap();
        self.entries.push(entry);
    }

    /// `core`'s worker registration, with dev evidence from `platform`.
    pub fn worker_registration(
        &mut self,
        core: &keyward_node::Worker,
        platform: &keyward_enclave::DevPlatformKey,
    ) -> keyward_ledger::Registration {
        let nonce =
            keyward_ledger::registration_nonce(&self.genesis.hash(), keyward_ledger::Role::Worker);
        let evidence = platform
            .attest(
                keyward_node_service::dev::WORKER_MEASUREMENT,
                &core.bound_keys(),
                &nonce,
                &mut self.rng,
            )
            .unwrap();
        keyward_ledger::Registration {
            channel: core.channel(),
            endpoint: "127.0.0.1:1".parse().unwrap(),
            stake: self.registry.genesis().config().params.min_worker_stake,
            evidence,
        }
    }
}
