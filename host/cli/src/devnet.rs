//! `keyward devnet`: the whole key hierarchy as separate processes on loopback, walked through
//! the seed's story with every claim checked.
//!
//! It writes a dev genesis (a council, majority threshold), starts `keyward ledger`, the
//! gatekeepers and the workers (one of them deliberately faulty) as child processes, then plays
//! the council and the users: form the clusters, deploy both built-in contracts, run encrypted
//! commands and read the replies, see the faulty worker reported and slashed, SIGKILL and restart
//! the ledger, a gatekeeper and a worker, have an unapproved rotation refused, remove a worker
//! (its cluster is re-keyed), rotate the MasterKey to a new gatekeeper set, and read the data of
//! the old epoch. The council and the users follow the ledger with their own core, like every
//! node. Every check is printed as it passes, summarized at the end, and written with
//! `--report`.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use rand_core::OsRng;
use serde::Serialize;

use keyward_contracts::{auction, kv};
use keyward_crypto::{ChannelKeypair, Envelope, IdentityKeypair, IdentityPublicKey, Writer};
use keyward_hierarchy::{ClusterId, ContractId, Epoch};
use keyward_ledger::{
    Action, Approval, Body, ClusterCreate, CodeId, ContractDeploy, EntryHash, EpochStatus,
    Proposal, Registry, Role, Statement, Subject,
};
use keyward_ledger_service::client::ClientError;
use keyward_ledger_service::client::LedgerClient;
use keyward_ledger_service::follow::{FollowError, Follower};
use keyward_node::User;
use keyward_node_service::client::NodeClient;
use keyward_node_service::dev;

use crate::error::{CliError, Result};
use crate::signer::runtime;

/// How long any one stage may take.
const STAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// `keyward devnet`: run a local network and walk through its story.
#[derive(Debug, Args)]
pub struct DevnetArgs {
    /// Directory for the network's data and logs (default: a new temporary directory, removed
    /// afterwards unless --serve or a check failed).
    #[arg(long = "data-dir", alias = "dir", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the network running after the story, until Ctrl-C or SIGTERM.
    #[arg(long, alias = "keep")]
    serve: bool,
    /// Write every check (stage, name, pass/fail, detail) to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Gatekeepers at the start (the rotation replaces them with as many new ones).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    gatekeepers: u16,
    /// Clusters of workers (the key-value store runs on the first, the auction on the last).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=8))]
    clusters: u16,
    /// Workers per cluster (at least 3: one faulty worker is outvoted, one is removed).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(3..=16))]
    workers_per_cluster: u16,
    /// Council members (the threshold is a majority).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=16))]
    council: u16,
    /// Gatekeepers needed to use a MasterKey: 1 is classic mode (each holds the whole key);
    /// T ≥ 2 makes each epoch by a DKG among the gatekeepers, each holding a share, and moves
    /// shares by resharing (at most --gatekeepers).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    threshold: u16,
}

/// The network's sizes.
#[derive(Debug, Clone, Copy)]
struct Sizes {
    gatekeepers: usize,
    clusters: usize,
    workers_per_cluster: usize,
    council: usize,
    /// The MasterKey threshold (1: classic mode).
    threshold: u16,
}

/// One check of the story, as printed and reported.
#[derive(Debug, Serialize)]
struct Check {
    stage: String,
    name: String,
    passed: bool,
    detail: String,
}

/// A child process and how to start it again.
struct Proc {
    name: String,
    /// The JSON-RPC port it listens on.
    port: u16,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    fn spawn(exe: &Path, dir: &Path, name: &str, port: u16, args: Vec<String>) -> Result<Self> {
        let mut proc = Self {
            name: name.to_owned(),
            port,
            args,
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        proc.start(exe)?;
        Ok(proc)
    }

    fn start(&mut self, exe: &Path) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| CliError::refused(format!("{}: {e}", self.log.display())))?;
        let err = log
            .try_clone()
            .map_err(|e| CliError::refused(format!("{}: {e}", self.log.display())))?;
        let child = Command::new(exe)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| CliError::refused(format!("cannot start {}: {e}", self.name)))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL: no chance to flush or clean up.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then SIGKILL after 5 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "{} exited ({status}); see {}",
                self.name,
                self.log.display()
            )),
            _ => None,
        }
    }
}

/// Stops every process however the story ends.
struct Procs(Vec<Proc>);

impl Drop for Procs {
    fn drop(&mut self) {
        for p in self.0.iter_mut().rev() {
            p.stop();
        }
    }
}

fn free_port() -> Result<u16> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::refused(format!("no free port: {e}")))
}

/// Signs `body` as `author` on the follower's head and appends it; returns its hash.
async fn submit(
    follower: &mut Follower,
    author: &IdentityKeypair,
    body: &Body,
) -> Result<EntryHash> {
    follower
        .submit(author, body, &mut OsRng)
        .await
        .map(|a| a.hash)
        .map_err(|e| CliError::refused(format!("{}: {e}", body.kind().name())))
}

struct Story {
    exe: PathBuf,
    dir: PathBuf,
    ledger_url: String,
    genesis: EntryHash,
    council: Vec<IdentityKeypair>,
    follower: Follower,
    procs: Procs,
    /// The current stage's title, and how many stages have begun.
    stage: String,
    stages: usize,
    checks: Vec<Check>,
    /// The worker started with `--dev-wrong-digests`.
    faulty: Option<IdentityPublicKey>,
}

/// Counts a passed check and prints it.
fn check(story: &mut Story, what: &str) {
    println!("  ok  {what}");
    story.checks.push(Check {
        stage: story.stage.clone(),
        name: what.to_owned(),
        passed: true,
        detail: String::new(),
    });
}

impl Story {
    fn node_args(&self, role: &str, name: &str, port: u16) -> Vec<String> {
        vec![
            role.to_owned(),
            "--ledger".into(),
            self.ledger_url.clone(),
            "--genesis-hash".into(),
            keyward_crypto::hex::to_0x(&self.genesis.0),
            "--data-dir".into(),
            self.dir.join(name).display().to_string(),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--platform-key".into(),
            self.dir.join("platform.key").display().to_string(),
        ]
    }

    /// Starts the next stage: prints its title; its checks are reported under it.
    fn stage(&mut self, title: &str) {
        self.stages += 1;
        self.stage = format!("{}. {title}", self.stages);
        println!("\n{}", self.stage);
    }

    fn spawn_node(&mut self, role: &str, name: &str) -> Result<()> {
        self.spawn_node_with(role, name, &[])
    }

    fn spawn_node_with(&mut self, role: &str, name: &str, extra: &[&str]) -> Result<()> {
        let port = free_port()?;
        let mut args = self.node_args(role, name, port);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        let proc = Proc::spawn(&self.exe, &self.dir, name, port, args)?;
        self.procs.0.push(proc);
        Ok(())
    }

    fn proc(&mut self, name: &str) -> &mut Proc {
        self.procs
            .0
            .iter_mut()
            .find(|p| p.name == name)
            .expect("a started process")
    }

    /// The identity of the node started as `name`: the one registered at its port.
    fn id_of(&self, name: &str) -> Result<IdentityPublicKey> {
        let port = self.procs.0.iter().find(|p| p.name == name).map(|p| p.port);
        self.follower
            .registry()
            .nodes()
            .find(|(_, n)| Some(n.endpoint.port()) == port)
            .map(|(id, _)| *id)
            .ok_or_else(|| CliError::refused(format!("{name} is not registered")))
    }

    /// Follows the ledger until `done` holds, then counts it as a check.
    async fn until(&mut self, what: &str, done: impl Fn(&Registry) -> bool) -> Result<()> {
        self.wait_for(what, done).await?;
        check(self, what);
        Ok(())
    }

    /// Follows the ledger until `done` holds, failing after [`STAGE_TIMEOUT`] or if a process
    /// died.
    async fn wait_for(&mut self, what: &str, done: impl Fn(&Registry) -> bool) -> Result<()> {
        let start = Instant::now();
        loop {
            if done(&self.follower.registry()) {
                return Ok(());
            }
            if let Some(exit) = self.procs.0.iter_mut().find_map(Proc::exited) {
                return Err(CliError::refused(format!(
                    "while waiting for {what}: {exit}"
                )));
            }
            if start.elapsed() > STAGE_TIMEOUT {
                return Err(CliError::refused(format!(
                    "timed out waiting for {what}; logs in {}",
                    self.dir.display()
                )));
            }
            match self.follower.wait(250).await {
                // The ledger may be restarting: retry until the stage times out.
                Err(FollowError::Client(ClientError::Transport(_))) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => return Err(CliError::refused(format!("following the ledger: {e}"))),
                Ok(_) => {}
            }
        }
    }

    async fn submit(&mut self, author: &IdentityKeypair, body: &Body) -> Result<EntryHash> {
        submit(&mut self.follower, author, body).await
    }

    /// The council proposes `action` and enough members approve it (the genesis threshold).
    async fn council_decides(&mut self, action: Action) -> Result<EntryHash> {
        let propose = Body::CouncilPropose(Box::new(Proposal { ttl: 100, action }));
        let proposal = submit(&mut self.follower, &self.council[0], &propose).await?;
        let threshold = usize::from(self.follower.registry().genesis().config().threshold);
        for member in 1..threshold {
            let approve = Body::CouncilApprove(Approval { proposal });
            submit(&mut self.follower, &self.council[member], &approve).await?;
        }
        Ok(proposal)
    }

    fn nodes(&self, role: fn(&Role) -> bool) -> Vec<IdentityPublicKey> {
        self.follower
            .registry()
            .nodes()
            .filter(|(_, n)| n.is_active() && role(&n.role))
            .map(|(id, _)| *id)
            .collect()
    }

    /// The reply to `command` from the worker `worker`, opened and checked by `user`.
    async fn reply(
        &self,
        user: &User,
        worker: &IdentityPublicKey,
        command: &EntryHash,
    ) -> Result<Vec<u8>> {
        let endpoint = self
            .follower
            .registry()
            .node(worker)
            .map(|n| n.endpoint)
            .ok_or_else(|| CliError::refused("unknown worker"))?;
        let client = NodeClient::new(&format!("http://{endpoint}")).map_err(CliError::refused)?;
        let start = Instant::now();
        let bytes = loop {
            match client.reply(command).await {
                Ok(Some(bytes)) => break bytes,
                Ok(None) | Err(_) if start.elapsed() < STAGE_TIMEOUT => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => {
                    return Err(CliError::refused(format!(
                        "no reply from {worker}: {other:?}"
                    )));
                }
            }
        };
        let envelope = Envelope::from_bytes(&bytes).map_err(CliError::refused)?;
        let reply = user
            .open_reply(&self.follower.registry(), command, &envelope)
            .map_err(CliError::refused)?;
        Ok(reply.body.to_vec())
    }

    /// `user` sends `call` to `contract` and waits until every elector still in good standing
    /// published its digest and a strict majority of them agrees; unless the faulty worker is among
    /// them and not slashed yet, every digest must agree.
    async fn command(
        &mut self,
        user: &User,
        contract: &ContractId,
        call: &[u8],
    ) -> Result<EntryHash> {
        if User::trusted_keys(&self.follower.registry(), contract).is_err() {
            let k = contract.clone();
            self.wait_for(
                "the contract's keys (and the committee's certificate) for the new key context",
                move |r| User::trusted_keys(r, &k).is_ok(),
            )
            .await?;
        }
        let body = user
            .command(&self.follower.registry(), contract, call, &mut OsRng)
            .map_err(CliError::refused)?;
        let id = self
            .submit(user.signer(), &Body::ContractCommand(Box::new(body)))
            .await?;
        let (electorate, all_agree) = {
            let registry = self.follower.registry();
            let command = registry.command(&id);
            // Until the faulty worker is slashed, its digest disagrees.
            let suspect = self.faulty.filter(|f| {
                command.is_some_and(|c| c.electorate.contains(f))
                    && registry.node(f).is_some_and(|n| !n.slashed)
            });
            (command.map_or(0, |c| c.electorate.len()), suspect.is_none())
        };
        let what = if all_agree {
            format!("all {electorate} workers ran the command and published one digest")
        } else {
            format!("the {electorate} workers ran the command; a strict majority agrees")
        };
        self.until(&what, |r| {
            let Some(command) = r.command(&id) else {
                return false;
            };
            let digests: Vec<_> = r.digests(&Subject::Command(id)).map(|(_, d)| *d).collect();
            let standing = command
                .electorate
                .iter()
                .filter(|w| r.node(w).is_some_and(|n| !n.slashed))
                .count();
            // A slashed elector can publish nothing: the majority is of those who can.
            let majority = digests
                .iter()
                .any(|d| 2 * digests.iter().filter(|x| *x == d).count() > standing);
            digests.len() >= standing
                && majority
                && (!all_agree || digests.iter().all(|d| *d == digests[0]))
        })
        .await?;
        Ok(id)
    }
}

/// Runs the devnet story.
pub fn run(args: DevnetArgs) -> Result<()> {
    crate::signer::init_logs();
    let temporary = args.dir.is_none();
    let dir = args.dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("keyward-devnet-{}", std::process::id()))
    });
    if dir.join("genesis.bin").exists() {
        return Err(CliError::refused(format!(
            "{} already holds a devnet; pass an empty --data-dir",
            dir.display()
        )));
    }
    if args.threshold > args.gatekeepers {
        return Err(CliError::refused(format!(
            "--threshold {} needs at least as many gatekeepers (--gatekeepers {})",
            args.threshold, args.gatekeepers
        )));
    }
    if temporary {
        // A fresh directory only this user can enter: never one someone else created first.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| CliError::refused(format!("{}: {e}", dir.display())))?;
    } else {
        std::fs::create_dir_all(&dir)
            .map_err(|e| CliError::refused(format!("{}: {e}", dir.display())))?;
    }
    let sizes = Sizes {
        gatekeepers: usize::from(args.gatekeepers),
        clusters: usize::from(args.clusters),
        workers_per_cluster: usize::from(args.workers_per_cluster),
        council: usize::from(args.council),
        threshold: args.threshold,
    };
    let outcome = runtime()?.block_on(async {
        let (checks, outcome, network) = story(&dir, sizes).await;
        summarize(&checks);
        if let Some(path) = &args.report {
            write_report(path, sizes, &checks, outcome.is_ok())?;
        }
        match network {
            Some(s) if args.serve && outcome.is_ok() => {
                println!("\ngenesis {}", s.genesis);
                println!("running; Ctrl-C to stop (ledger at {})", s.ledger_url);
                crate::signer::shutdown_signal().await
            }
            _ => outcome,
        }
    });
    if temporary && !args.serve && outcome.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("data and logs: {}", dir.display());
    }
    outcome
}

/// Prints how many checks of each stage passed, then the verdict.
fn summarize(checks: &[Check]) {
    println!("\nSummary");
    let mut stages: Vec<(&str, usize, usize)> = Vec::new();
    for c in checks {
        match stages.last_mut() {
            Some((stage, passed, all)) if *stage == c.stage => {
                *passed += usize::from(c.passed);
                *all += 1;
            }
            _ => stages.push((&c.stage, usize::from(c.passed), 1)),
        }
    }
    for (stage, passed, all) in &stages {
        let mark = if passed == all { "ok  " } else { "FAIL" };
        println!("  {mark} {stage}: {passed} of {all}");
    }
    let failed: Vec<_> = checks.iter().filter(|c| !c.passed).collect();
    if failed.is_empty() {
        println!("\nkeyward devnet: all {} checks passed", checks.len());
    } else {
        for c in &failed {
            println!("  FAILED {}: {}", c.name, c.detail);
        }
        println!(
            "\nkeyward devnet: {} of {} checks failed",
            failed.len(),
            checks.len()
        );
    }
}

/// Writes every check as JSON.
fn write_report(path: &Path, sizes: Sizes, checks: &[Check], completed: bool) -> Result<()> {
    let report = serde_json::json!({
        "passed": completed && checks.iter().all(|c| c.passed),
        "sizes": {
            "gatekeepers": sizes.gatekeepers,
            "clusters": sizes.clusters,
            "workersPerCluster": sizes.workers_per_cluster,
            "council": sizes.council,
            "threshold": sizes.threshold,
        },
        "checks": checks,
    });
    let text = serde_json::to_string_pretty(&report).expect("a JSON value") + "\n";
    crate::keyfile::write_file(path, text.as_bytes(), true, 0o644)?;
    println!("report: {}", path.display());
    Ok(())
}

/// Starts the network and plays the story; returns every check made (the failed one last if the
/// story stopped) and the network, still running unless it failed to start.
async fn story(dir: &Path, sizes: Sizes) -> (Vec<Check>, Result<()>, Option<Story>) {
    let mut s = match start(dir, sizes).await {
        Ok(s) => s,
        Err(e) => {
            let failed = Check {
                stage: "0. Start the ledger".into(),
                name: "the ledger starts".into(),
                passed: false,
                detail: e.to_string(),
            };
            return (vec![failed], Err(e), None);
        }
    };
    let outcome = play(&mut s, sizes).await;
    if let Err(e) = &outcome {
        s.checks.push(Check {
            stage: s.stage.clone(),
            name: "the stage completes".into(),
            passed: false,
            detail: e.to_string(),
        });
    }
    (std::mem::take(&mut s.checks), outcome, Some(s))
}

/// Writes the genesis and the platform key, starts the ledger and follows it.
async fn start(dir: &Path, sizes: Sizes) -> Result<Story> {
    let exe = std::env::current_exe().map_err(|e| CliError::refused(format!("own path: {e}")))?;
    let platform = dev::create_platform_key(&dir.join("platform.key"))
        .map_err(|e| CliError::refused(format!("platform key: {e}")))?;
    let council: Vec<_> = (0..sizes.council)
        .map(|_| IdentityKeypair::generate(&mut OsRng))
        .collect();
    // Every starting gatekeeper is a bootstrap gatekeeper (admitted, and in threshold mode a
    // member of epoch 0's DKG); the rotation's new ones need the council.
    let params = keyward_ledger::Params {
        bootstrap_gatekeepers: u16::try_from(sizes.gatekeepers).expect("at most 16"),
        key_threshold: sizes.threshold,
        ..keyward_ledger::Params::default()
    };
    let genesis = dev::genesis_with("devnet", &council, &platform, params);
    let genesis_file = dir.join("genesis.bin");
    crate::keyfile::write_file(&genesis_file, genesis.as_bytes(), false, 0o644)?;
    println!("keyward devnet in {}", dir.display());
    let mode = if sizes.threshold > 1 {
        format!(
            "threshold mode, {}-of-{}",
            sizes.threshold, sizes.gatekeepers
        )
    } else {
        "classic mode".to_owned()
    };
    println!(
        "{} gatekeepers ({mode}), {} clusters of {} workers, a council of {}",
        sizes.gatekeepers, sizes.clusters, sizes.workers_per_cluster, sizes.council
    );
    println!("genesis {}", genesis.hash());

    let ledger_port = free_port()?;
    let ledger_url = format!("http://127.0.0.1:{ledger_port}");
    let mut ledger = Proc::spawn(
        &exe,
        dir,
        "ledger",
        ledger_port,
        vec![
            "ledger".into(),
            "--listen".into(),
            format!("127.0.0.1:{ledger_port}"),
            "--data-dir".into(),
            dir.join("ledger").display().to_string(),
            "--genesis".into(),
            genesis_file.display().to_string(),
        ],
    )?;
    let client = LedgerClient::new(&ledger_url).map_err(CliError::refused)?;
    let begin = Instant::now();
    while client.health().await.is_err() {
        if let Some(exit) = ledger.exited() {
            return Err(CliError::refused(exit));
        }
        if begin.elapsed() > STAGE_TIMEOUT {
            return Err(CliError::refused("the ledger did not start"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (follower, _) = Follower::start(client, genesis.hash())
        .await
        .map_err(CliError::refused)?;
    Ok(Story {
        exe,
        dir: dir.to_owned(),
        ledger_url,
        genesis: genesis.hash(),
        council,
        follower,
        procs: Procs(vec![ledger]),
        stage: String::new(),
        stages: 0,
        checks: Vec::new(),
        faulty: None,
    })
}

fn is_gatekeeper(r: &Role) -> bool {
    matches!(r, Role::Gatekeeper { .. })
}

fn user() -> User {
    User::new(
        IdentityKeypair::generate(&mut OsRng),
        ChannelKeypair::generate(&mut OsRng),
    )
}

/// Threshold mode: gatekeeper `g{g-1}` restarts answering every request with a wrong partial
/// under its own signature; the council re-keys `cluster`, whose workers combine the other
/// gatekeepers' partials, name it and report it on the ledger, which slashes it. It then restarts
/// honest.
async fn wrong_partials(s: &mut Story, cluster: &ClusterId, g: usize) -> Result<()> {
    s.stage("A gatekeeper answers with wrong partials: workers detect it, name it and report it");
    let name = format!("g{}", g - 1);
    let liar = s.id_of(&name)?;
    let stake = s
        .follower
        .registry()
        .node(&liar)
        .map_or(0, |node| node.stake);
    let exe = s.exe.clone();
    let proc = s.proc(&name);
    proc.kill();
    proc.args.push("--dev-wrong-partials".into());
    proc.start(&exe)?;
    // It must be answering before the workers ask, or they would just find it down.
    let client =
        NodeClient::new(&format!("http://127.0.0.1:{}", proc.port)).map_err(CliError::refused)?;
    let begin = Instant::now();
    while client.health().await.is_err() {
        if begin.elapsed() > STAGE_TIMEOUT {
            return Err(CliError::refused(format!("{name} did not restart")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    s.council_decides(Action::RekeyCluster {
        cluster: cluster.clone(),
    })
    .await?;
    let c = cluster.clone();
    s.until(
        &format!(
            "{cluster}'s workers combined its generation-1 key from the honest gatekeepers' partials"
        ),
        move |r| {
            r.cluster(&c).is_some_and(|cl| {
                cl.generation().0 == 1
                    && r.key_context(&c).ok().and_then(|ctx| cl.key(ctx)).is_some()
            })
        },
    )
    .await?;
    s.until(
        &format!(
            "a worker reported {name}'s signed wrong partial on the ledger; every node checked it and {name} was slashed"
        ),
        move |r| r.node(&liar).is_some_and(|node| node.slashed && node.stake < stake),
    )
    .await?;
    let proc = s.proc(&name);
    proc.kill();
    proc.args.retain(|a| a != "--dev-wrong-partials");
    proc.start(&exe)?;
    Ok(())
}

/// Threshold mode: waits until the committee's certificates of `epoch`'s checksum and of every
/// cluster's key for that epoch are on the ledger, and checks each itself under the epoch's master
/// public key.
async fn certified(
    s: &mut Story,
    epoch: Epoch,
    clusters: &[(ClusterId, Vec<IdentityPublicKey>)],
) -> Result<()> {
    let ids: Vec<_> = clusters.iter().map(|(c, _)| c.clone()).collect();
    s.until(
        &format!(
            "the committee signed epoch {epoch}'s checksum and every cluster key of epoch {epoch} \
             (FROST under the master public key; checked here)"
        ),
        move |r| {
            r.is_certified(&Statement::EpochChecksum(epoch))
                && ids.iter().all(|c| {
                    r.key_context(c).ok().is_some_and(|ctx| {
                        ctx.epoch == epoch && r.is_certified(&Statement::ClusterKey(c.clone(), ctx))
                    })
                })
        },
    )
    .await
}

/// The story, stage by stage.
#[allow(clippy::too_many_lines)] // one stage after another, each short
async fn play(s: &mut Story, sizes: Sizes) -> Result<()> {
    let (g, k, w) = (sizes.gatekeepers, sizes.clusters, sizes.workers_per_cluster);
    let n = k * w;

    let threshold_mode = sizes.threshold > 1;
    s.stage(if threshold_mode {
        "Gatekeepers and workers register with evidence; the gatekeepers make epoch 0 by DKG"
    } else {
        "Gatekeepers and workers register with evidence; epoch 0 is created and handed over"
    });
    for i in 1..=g {
        s.spawn_node("gatekeeper", &format!("g{i}"))?;
    }
    for i in 1..=n {
        if i == n {
            s.spawn_node_with("worker", &format!("w{i}"), &["--dev-wrong-digests"])?;
        } else {
            s.spawn_node("worker", &format!("w{i}"))?;
        }
    }
    s.until(
        &format!("{g} gatekeepers and {n} workers registered with attested keys"),
        |r| r.nodes().filter(|(_, node)| node.is_active()).count() == g + n,
    )
    .await?;
    let gatekeepers = s.nodes(is_gatekeeper);
    let held = if threshold_mode {
        format!(
            "epoch 0 is active and each of the {g} gatekeepers holds a share ({}-of-{g}; no one holds the MasterKey)",
            sizes.threshold
        )
    } else {
        format!("epoch 0 is active and all {g} gatekeepers hold its MasterKey")
    };
    s.until(&held, |r| {
        r.epoch(Epoch(0)).is_some_and(|e| {
            e.status() == EpochStatus::Active
                && gatekeepers.iter().all(|id| e.holders().contains(id))
        })
    })
    .await?;
    let mut clusters: Vec<(ClusterId, Vec<IdentityPublicKey>)> = Vec::new();
    for c in 0..k {
        let members = (c * w + 1..=c * w + w)
            .map(|i| s.id_of(&format!("w{i}")))
            .collect::<Result<Vec<_>>>()?;
        let id = ClusterId::new(&format!("c{}", c + 1)).expect("valid");
        clusters.push((id, members));
    }
    s.faulty = Some(s.id_of(&format!("w{n}"))?);

    s.stage("The council forms the clusters; each worker gets its ClusterKey from the gatekeepers");
    // Threshold mode: one gatekeeper is down while the workers are provisioned, if the rest
    // still make the threshold.
    let down = (threshold_mode && g > usize::from(sizes.threshold)).then(|| format!("g{g}"));
    if let Some(name) = &down {
        s.proc(name).kill();
    }
    for (cluster, members) in &clusters {
        let create = Body::ClusterCreate(ClusterCreate {
            cluster: cluster.clone(),
            members: members.iter().copied().collect(),
        });
        submit(&mut s.follower, &s.council[0], &create).await?;
    }
    let ids: Vec<_> = clusters.iter().map(|(c, _)| c.clone()).collect();
    s.until(
        &format!(
            "{} published the key of each of the {k} clusters",
            if threshold_mode {
                "a member worker, combining partials,"
            } else {
                "a gatekeeper"
            }
        ),
        move |r| {
            ids.iter().all(|c| {
                r.key_context(c)
                    .ok()
                    .and_then(|ctx| r.cluster(c)?.key(ctx))
                    .is_some()
            })
        },
    )
    .await?;
    if threshold_mode {
        certified(s, Epoch(0), &clusters).await?;
    }
    if let Some(name) = down {
        check(
            s,
            &format!(
                "{name} was down (SIGKILL) throughout: {} of the other {} gatekeepers' partials sufficed",
                sizes.threshold,
                g - 1
            ),
        );
        let exe = s.exe.clone();
        s.proc(&name).start(&exe)?;
        wrong_partials(s, &clusters[k - 1].0, g).await?;
    }

    s.stage("A user deploys both contracts; every worker of their clusters certifies the keys");
    let alice = user();
    let notes = ContractId::new("notes").expect("valid");
    let sale = ContractId::new("auction").expect("valid");
    let (first, last) = (clusters[0].0.clone(), clusters[k - 1].0.clone());
    let deployments = [
        (notes.clone(), first.clone(), "kv-store", Vec::new()),
        (
            sale.clone(),
            last.clone(),
            "sealed-auction",
            alice.id().to_bytes().to_vec(),
        ),
    ];
    for (contract, cluster, code, init) in deployments {
        s.submit(
            alice.signer(),
            &Body::ContractDeploy(ContractDeploy {
                contract,
                cluster,
                code: CodeId::new(code).expect("valid"),
                init,
            }),
        )
        .await?;
    }
    for contract in [&notes, &sale] {
        let c = contract.clone();
        s.until(
            &format!("all {w} workers of {contract}'s cluster derived the same ContractKey (certified by the cluster key)"),
            move |r| {
                r.contract(&c).is_some_and(|c| {
                    r.key_context(c.cluster())
                        .ok()
                        .and_then(|ctx| c.confirmers(ctx))
                        .is_some_and(|s| s.len() == w)
                })
            },
        )
        .await?;
    }

    s.stage("Users' encrypted commands run on every worker; replies open only for their sender");
    s.command(&alice, &notes, &kv::put(b"greeting", b"hello from keyward"))
        .await?;
    let get = s.command(&alice, &notes, &kv::get(b"greeting")).await?;
    let honest: Vec<_> = clusters[0]
        .1
        .iter()
        .filter(|id| Some(**id) != s.faulty)
        .collect();
    for id in honest {
        let body = s.reply(&alice, id, &get).await?;
        if !body.ends_with(b"hello from keyward") {
            return Err(CliError::refused("a reply holds the wrong value"));
        }
    }
    check(
        s,
        "each honest worker's reply opens under the user's key and holds the value",
    );
    let (bob, carol) = (user(), user());
    s.command(&bob, &sale, &auction::bid(70)).await?;
    s.command(&carol, &sale, &auction::bid(90)).await?;
    let close = s.command(&alice, &sale, &auction::close()).await?;
    let mut winner = Writer::new();
    winner.u8(1).raw(&carol.id().to_bytes()).u64(90);
    let winner = winner.finish();
    let body = s.reply(&alice, &clusters[k - 1].1[0], &close).await?;
    if !body.ends_with(&winner) {
        return Err(CliError::refused("the auction named the wrong winner"));
    }
    check(
        s,
        "the sealed-bid auction, closed by its owner, names the highest bidder (90) and nothing else",
    );

    s.stage("A faulty worker's digest disagrees with the majority: it is reported and slashed");
    let faulty = s.faulty.expect("set above");
    // Devnet workers declare the minimum stake.
    let stake = s
        .follower
        .registry()
        .genesis()
        .config()
        .params
        .min_worker_stake;
    s.until(
        &format!("w{n}, which published wrong digests, was reported and slashed"),
        move |r| r.node(&faulty).is_some_and(|node| node.slashed),
    )
    .await?;
    let after = s
        .follower
        .registry()
        .node(&faulty)
        .map_or(0, |node| node.stake);
    let honest_slashed = clusters
        .iter()
        .flat_map(|(_, m)| m)
        .filter(|id| **id != faulty)
        .any(|id| {
            s.follower
                .registry()
                .node(id)
                .is_some_and(|node| node.slashed)
        });
    if honest_slashed {
        return Err(CliError::refused("an honest worker was slashed"));
    }
    if after >= stake {
        return Err(CliError::refused(format!(
            "the slashed worker's stake did not fall ({stake} → {after})"
        )));
    }
    check(
        s,
        &format!("its stake fell from {stake} to {after}; no honest worker was slashed"),
    );

    s.stage("SIGKILL the ledger, a gatekeeper and a worker; they restart from their stores");
    let head = s.follower.registry().next_height();
    s.proc("ledger").kill();
    s.proc("g1").kill();
    s.proc("w1").kill();
    let exe = s.exe.clone();
    s.proc("ledger").start(&exe)?;
    let client = LedgerClient::new(&s.ledger_url).map_err(CliError::refused)?;
    let begin = Instant::now();
    let height = loop {
        match client.head().await {
            Ok(head) => break head.height,
            Err(_) if begin.elapsed() < STAGE_TIMEOUT => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                return Err(CliError::refused(format!(
                    "the ledger did not restart: {e}"
                )));
            }
        }
    };
    if height + 1 < head {
        return Err(CliError::refused(format!(
            "the restarted ledger is at height {height}, it had acknowledged {}",
            head - 1
        )));
    }
    check(
        s,
        &format!("the ledger restarted with every entry it had acknowledged (height {height})"),
    );
    s.proc("g1").start(&exe)?;
    s.proc("w1").start(&exe)?;
    let get = s.command(&alice, &notes, &kv::get(b"greeting")).await?;
    let w1 = s.id_of("w1")?;
    if !s
        .reply(&alice, &w1, &get)
        .await?
        .ends_with(b"hello from keyward")
    {
        return Err(CliError::refused("the restarted worker lost the state"));
    }
    check(
        s,
        "the restarted worker answers with the state from before the kill",
    );
    if s.follower.registry().nodes().count() != g + n {
        return Err(CliError::refused("a restart registered a second identity"));
    }
    check(
        s,
        &format!(
            "both kept their identities (height {} before the kill; still {} nodes)",
            head - 1,
            g + n
        ),
    );

    s.stage("Rotations without the council's approval are refused");
    let mallory = IdentityKeypair::generate(&mut OsRng);
    let what = "rotation";
    let unapproved = || {
        Body::CouncilPropose(Box::new(Proposal {
            ttl: 1,
            action: Action::RotateMasterKey {
                committee: gatekeepers.clone(),
            },
        }))
    };
    match submit(&mut s.follower, &mallory, &unapproved()).await {
        Err(e) => check(
            s,
            &format!("a {what} proposed by a non-member is refused by every node ({e})"),
        ),
        Ok(_) => return Err(CliError::refused("a non-member's proposal was accepted")),
    }
    let threshold = usize::from(s.follower.registry().genesis().config().threshold);
    if threshold > 1 {
        let lone = submit(&mut s.follower, &s.council[0], &unapproved()).await?;
        // Let the proposal expire: its one-entry window passes with the next commands.
        s.command(&alice, &notes, &kv::get(b"greeting")).await?;
        let approve = Body::CouncilApprove(Approval { proposal: lone });
        let late = submit(&mut s.follower, &s.council[1], &approve).await;
        let registry = s.follower.registry();
        let recorded = registry.proposal(&lone).is_some();
        let unexecuted = registry.epochs().len() == 1
            && registry.rotation().is_none()
            && registry
                .cluster(&first)
                .is_some_and(|c| c.generation() == keyward_hierarchy::Generation(0));
        drop(registry);
        match late {
            Err(e) if recorded && unexecuted => check(
                s,
                &format!(
                    "a lone member's proposal is recorded on the ledger, expires with 1 of {threshold} approvals and never runs; a late approval is refused ({e})"
                ),
            ),
            _ => {
                return Err(CliError::refused(format!(
                    "an unapproved {what} went ahead"
                )));
            }
        }
    }

    s.stage("The council removes a worker: its cluster is re-keyed without it");
    let removed = clusters[0].1[1];
    s.council_decides(Action::RemoveWorker { worker: removed })
        .await?;
    let c = first.clone();
    s.until(
        &format!("cluster {first} moved to generation 1 and its new key is published"),
        move |r| {
            r.cluster(&c).is_some_and(|cl| {
                cl.generation().0 == 1
                    && r.key_context(&c).ok().and_then(|ctx| cl.key(ctx)).is_some()
            })
        },
    )
    .await?;
    let get = s.command(&alice, &notes, &kv::get(b"greeting")).await?;
    let electorate = s
        .follower
        .registry()
        .command(&get)
        .map(|c| c.electorate.clone())
        .unwrap_or_default();
    if electorate.contains(&removed) || electorate.len() != w - 1 {
        return Err(CliError::refused("the removed worker still runs commands"));
    }
    check(
        s,
        &format!(
            "the {} remaining workers run the contract under the generation-1 keys",
            w - 1
        ),
    );
    let status = s.follower.registry().node(&removed).map(|node| node.status);
    if !matches!(status, Some(keyward_ledger::Status::Removed { .. })) {
        return Err(CliError::refused("the removed worker is still active"));
    }
    check(
        s,
        "the removed worker is marked removed on the ledger, so gatekeepers provision it no later key",
    );

    s.stage(if threshold_mode {
        "Rotation: new gatekeepers make epoch 1 by DKG; epoch 0 is reshared to them; the old set is retired"
    } else {
        "Rotation: new gatekeepers; the council approves; the old set is retired"
    });
    let old = s.nodes(is_gatekeeper);
    for i in g + 1..=2 * g {
        s.spawn_node("gatekeeper", &format!("g{i}"))?;
    }
    s.until(&format!("{g} new gatekeepers registered"), |r| {
        r.nodes()
            .filter(|(_, node)| node.is_active() && is_gatekeeper(&node.role))
            .count()
            == 2 * g
    })
    .await?;
    let new: Vec<_> = s
        .nodes(is_gatekeeper)
        .into_iter()
        .filter(|id| !old.contains(id))
        .collect();
    s.council_decides(Action::RotateMasterKey {
        committee: new.clone(),
    })
    .await?;
    let (fresh, retired) = (new.clone(), old.clone());
    s.until(
        "epoch 1 is active, held by the new set only; epoch 0 is retained; the old set is removed",
        move |r| {
            r.epoch(Epoch(1)).is_some_and(|e| {
                e.status() == EpochStatus::Active
                    && e.holders().iter().copied().collect::<BTreeSet<_>>()
                        == fresh.iter().copied().collect()
            }) && r
                .epoch(Epoch(0))
                .is_some_and(|e| e.status() == EpochStatus::Retained)
                && retired
                    .iter()
                    .all(|id| r.node(id).is_some_and(|node| !node.is_active()))
        },
    )
    .await?;
    if threshold_mode {
        let fresh: BTreeSet<_> = new.iter().copied().collect();
        s.until(
            "epoch 0 was reshared to the new set: same master public key, a new committee of verification shares",
            move |r| {
                r.epoch(Epoch(0)).is_some_and(|e| {
                    e.holders() == &fresh
                        && e.current() != e.record()
                        && e.current().committee().public_key()
                            == e.record().committee().public_key()
                })
            },
        )
        .await?;
    }
    let ids: Vec<_> = clusters.iter().map(|(c, _)| c.clone()).collect();
    s.until("every cluster's epoch-1 key is published", move |r| {
        ids.iter().all(|c| {
            r.key_context(c)
                .ok()
                .filter(|ctx| ctx.epoch == Epoch(1))
                .and_then(|ctx| r.cluster(c)?.key(ctx))
                .is_some()
        })
    })
    .await?;

    if threshold_mode {
        certified(s, Epoch(1), &clusters).await?;
    }

    s.stage("Data of the old epoch stays readable");
    let get = s.command(&alice, &notes, &kv::get(b"greeting")).await?;
    let remaining: Vec<_> = clusters[0]
        .1
        .iter()
        .copied()
        .filter(|id| *id != removed && *id != faulty)
        .collect();
    for id in &remaining {
        if !s
            .reply(&alice, id, &get)
            .await?
            .ends_with(b"hello from keyward")
        {
            return Err(CliError::refused("the state did not survive the rotation"));
        }
    }
    check(
        s,
        "the value written in epoch 0 reads back under the epoch-1 keys",
    );
    let result = s.command(&alice, &sale, &auction::result()).await?;
    let body = s.reply(&alice, &clusters[k - 1].1[0], &result).await?;
    if !body.ends_with(&winner) {
        return Err(CliError::refused(
            "the auction's result did not survive the rotation",
        ));
    }
    check(
        s,
        "the auction decided in epoch 0 still names its winner in epoch 1",
    );
    for contract in [&notes, &sale] {
        let registry = s.follower.registry();
        let Some(context) = registry
            .contract(contract)
            .and_then(|c| registry.key_context(c.cluster()).ok())
        else {
            return Err(CliError::refused(format!("{contract} has no key context")));
        };
        let migration = Subject::Migration {
            contract: contract.clone(),
            epoch: context.epoch,
            generation: context.generation,
        };
        let digests: Vec<_> = registry.digests(&migration).map(|(_, d)| *d).collect();
        drop(registry);
        if digests.is_empty() || digests.iter().any(|d| *d != digests[0]) {
            return Err(CliError::refused(format!(
                "the workers disagree on {contract}'s migrated state"
            )));
        }
        check(
            s,
            &format!(
                "{} workers published the same digest of {contract}'s re-encrypted state",
                digests.len()
            ),
        );
    }
    {
        let registry = s.follower.registry();
        let records: Vec<_> = registry
            .epochs()
            .iter()
            .map(|e| e.record().clone())
            .collect();
        keyward_hierarchy::verify_chain(
            &registry.genesis().config().chain,
            &records,
            &registry.checksum(),
        )
        .map_err(CliError::refused)?;
    }
    check(
        s,
        "the retained epoch 0 verifies against the epoch checksum chain",
    );

    if threshold_mode {
        s.stage("The council refreshes the shares: the same keys under new shares");
        let before: Vec<_> = s
            .follower
            .registry()
            .epochs()
            .iter()
            .map(|e| e.current().committee().clone())
            .collect();
        s.council_decides(Action::RefreshShares).await?;
        s.until(
            &format!(
                "all {} epochs were reshared to the same gatekeepers: same master public keys, new verification shares",
                before.len()
            ),
            move |r| {
                r.resharing().is_none()
                    && r.epochs().iter().zip(&before).all(|(e, old)| {
                        e.current().committee() != old
                            && e.current().committee().public_key() == old.public_key()
                    })
            },
        )
        .await?;
        let get = s.command(&alice, &notes, &kv::get(b"greeting")).await?;
        let worker = clusters[0]
            .1
            .iter()
            .copied()
            .find(|id| *id != removed && *id != faulty)
            .expect("a cluster keeps an honest worker");
        if !s
            .reply(&alice, &worker, &get)
            .await?
            .ends_with(b"hello from keyward")
        {
            return Err(CliError::refused("the state did not survive the refresh"));
        }
        check(
            s,
            "the contract runs on after the refresh: nothing users or workers see changed",
        );
    }

    s.stage("Every node verified the same ledger");
    // Compare every node's head with ours at the same height; a node ahead of us means our
    // view is stale, so catch up and compare again.
    let begin = Instant::now();
    let (height, head, endpoints) = loop {
        s.follower.sync().await.map_err(CliError::refused)?;
        let (height, head, endpoints) = {
            let r = s.follower.registry();
            let endpoints: Vec<_> = r
                .nodes()
                .filter(|(_, node)| node.is_active())
                .map(|(_, node)| node.endpoint)
                .collect();
            (r.next_height() - 1, r.head(), endpoints)
        };
        let mut ahead = false;
        for endpoint in &endpoints {
            let client =
                NodeClient::new(&format!("http://{endpoint}")).map_err(CliError::refused)?;
            loop {
                let health = client.health().await.map_err(CliError::refused)?;
                if health.height > height {
                    ahead = true;
                    break;
                }
                if health.height == height {
                    let theirs = keyward_ledger_service::wire::parse_hash(&health.head);
                    if theirs != Some(head) {
                        return Err(CliError::refused(format!(
                            "{endpoint} verified another ledger"
                        )));
                    }
                    break;
                }
                if begin.elapsed() > STAGE_TIMEOUT {
                    return Err(CliError::refused(format!("{endpoint} does not catch up")));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        if !ahead {
            break (height, head, endpoints);
        }
        if begin.elapsed() > STAGE_TIMEOUT {
            return Err(CliError::refused("the ledger keeps growing"));
        }
    };
    check(
        s,
        &format!(
            "{} active nodes report head {head} at height {height}",
            endpoints.len()
        ),
    );
    Ok(())
}
