//! `keyward devnet`: the whole key hierarchy as separate processes on loopback, walked through
//! the seed's story with every claim checked.
//!
//! It writes a dev genesis (a council of three, majority threshold), starts `keyward ledger`,
//! two gatekeepers and three workers as child processes, then plays the council and a user:
//! form a cluster, deploy a contract, run commands and read the replies, SIGKILL and restart a
//! gatekeeper and a worker, remove a worker (the cluster is re-keyed), and rotate the MasterKey
//! to two new gatekeepers. The council and the user follow the ledger with their own core, like
//! every node.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Args;
use rand_core::OsRng;

use keyward_contracts::kv;
use keyward_crypto::{ChannelKeypair, Envelope, IdentityKeypair, IdentityPublicKey};
use keyward_hierarchy::{ClusterId, ContractId, Epoch};
use keyward_ledger::{
    Action, Approval, Body, ClusterCreate, CodeId, ContractDeploy, EntryHash, EpochStatus,
    Proposal, Registry, Role, Subject,
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
    /// afterwards unless --keep).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Keep the network running after the story, until Ctrl-C.
    #[arg(long)]
    keep: bool,
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
    checks: usize,
}

fn check(story: &mut Story, what: &str) {
    story.checks += 1;
    println!("  ok  {what}");
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

    fn spawn_node(&mut self, role: &str, name: &str) -> Result<()> {
        let port = free_port()?;
        let args = self.node_args(role, name, port);
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

    /// The council proposes `action` and a second member approves it.
    async fn council_decides(&mut self, action: Action) -> Result<EntryHash> {
        let propose = Body::CouncilPropose(Box::new(Proposal { ttl: 100, action }));
        let proposal = submit(&mut self.follower, &self.council[0], &propose).await?;
        let approve = Body::CouncilApprove(Approval { proposal });
        submit(&mut self.follower, &self.council[1], &approve).await?;
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

    /// `user` sends `call` to `contract` and waits for every elector's agreeing digest.
    async fn command(
        &mut self,
        user: &User,
        contract: &ContractId,
        call: &[u8],
    ) -> Result<EntryHash> {
        if self.follower.registry().contract_keys(contract).is_err() {
            let k = contract.clone();
            self.wait_for("the contract's keys for the new key context", move |r| {
                r.contract_keys(&k).is_ok()
            })
            .await?;
        }
        let body = user
            .command(&self.follower.registry(), contract, call, &mut OsRng)
            .map_err(CliError::refused)?;
        let id = self
            .submit(user.signer(), &Body::ContractCommand(Box::new(body)))
            .await?;
        let electorate = self
            .follower
            .registry()
            .command(&id)
            .map_or(0, |c| c.electorate.len());
        self.until(
            &format!("all {electorate} workers ran the command and published one digest"),
            |r| {
                let d: Vec<_> = r.digests(&Subject::Command(id)).map(|(_, d)| *d).collect();
                d.len() == electorate && d.iter().all(|x| *x == d[0])
            },
        )
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
            "{} already holds a devnet; pass an empty --dir",
            dir.display()
        )));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::refused(format!("{}: {e}", dir.display())))?;
    let outcome = runtime()?.block_on(story(&dir, args.keep));
    if temporary && !args.keep && outcome.is_ok() {
        let _ = std::fs::remove_dir_all(&dir);
    } else {
        println!("data and logs: {}", dir.display());
    }
    outcome
}

async fn story(dir: &Path, keep: bool) -> Result<()> {
    let exe = std::env::current_exe().map_err(|e| CliError::refused(format!("own path: {e}")))?;
    let platform = dev::create_platform_key(&dir.join("platform.key"))
        .map_err(|e| CliError::refused(format!("platform key: {e}")))?;
    let council: Vec<_> = (0..3)
        .map(|_| IdentityKeypair::generate(&mut OsRng))
        .collect();
    let genesis = dev::genesis("devnet", &council, &platform);
    let genesis_file = dir.join("genesis.bin");
    crate::keyfile::write_file(&genesis_file, genesis.as_bytes(), false, 0o644)?;
    println!("keyward devnet in {}", dir.display());
    println!("genesis {}", genesis.hash());

    let ledger_port = free_port()?;
    let ledger_url = format!("http://127.0.0.1:{ledger_port}");
    let ledger = Proc::spawn(
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
    let mut procs = Procs(vec![ledger]);
    let client = LedgerClient::new(&ledger_url).map_err(CliError::refused)?;
    let start = Instant::now();
    while client.health().await.is_err() {
        if let Some(exit) = procs.0[0].exited() {
            return Err(CliError::refused(exit));
        }
        if start.elapsed() > STAGE_TIMEOUT {
            return Err(CliError::refused("the ledger did not start"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (follower, _) = Follower::start(client, genesis.hash())
        .await
        .map_err(CliError::refused)?;
    let mut s = Story {
        exe,
        dir: dir.to_owned(),
        ledger_url,
        genesis: genesis.hash(),
        council,
        follower,
        procs: std::mem::replace(&mut procs, Procs(Vec::new())),
        checks: 0,
    };
    let is_gatekeeper = |r: &Role| matches!(r, Role::Gatekeeper { .. });
    let is_worker = |r: &Role| *r == Role::Worker;

    println!(
        "\n1. Gatekeepers and workers register with evidence; epoch 0 is created and handed over"
    );
    for name in ["g1", "g2"] {
        s.spawn_node("gatekeeper", name)?;
    }
    for name in ["w1", "w2", "w3"] {
        s.spawn_node("worker", name)?;
    }
    s.until(
        "2 gatekeepers and 3 workers registered with attested keys",
        |r| r.nodes().filter(|(_, n)| n.is_active()).count() == 5,
    )
    .await?;
    let workers = s.nodes(is_worker);
    let gatekeepers = s.nodes(is_gatekeeper);
    s.until(
        "epoch 0 is active and both gatekeepers hold its MasterKey",
        |r| {
            r.epoch(Epoch(0)).is_some_and(|e| {
                e.status() == EpochStatus::Active
                    && gatekeepers.iter().all(|g| e.holders().contains(g))
            })
        },
    )
    .await?;

    println!(
        "\n2. The council forms a cluster; each worker gets its ClusterKey from the gatekeepers"
    );
    let cluster = ClusterId::new("c1").expect("valid");
    let create = Body::ClusterCreate(ClusterCreate {
        cluster: cluster.clone(),
        members: workers.iter().copied().collect(),
    });
    submit(&mut s.follower, &s.council[0], &create).await?;
    let c = cluster.clone();
    s.until("a gatekeeper published cluster c1's key", move |r| {
        r.key_context(&c)
            .ok()
            .and_then(|k| r.cluster(&c)?.key(k))
            .is_some()
    })
    .await?;

    println!("\n3. A user deploys a confidential key-value store; every worker certifies its keys");
    let user = User::new(
        IdentityKeypair::generate(&mut OsRng),
        ChannelKeypair::generate(&mut OsRng),
    );
    let contract = ContractId::new("notes").expect("valid");
    s.submit(
        user.signer(),
        &Body::ContractDeploy(ContractDeploy {
            contract: contract.clone(),
            cluster: cluster.clone(),
            code: CodeId::new("kv-store").expect("valid"),
            init: Vec::new(),
        }),
    )
    .await?;
    let k = contract.clone();
    s.until(
        "3 workers derived the same ContractKey (the cluster key certifies it)",
        move |r| {
            r.contract(&k).is_some_and(|c| {
                r.key_context(c.cluster())
                    .ok()
                    .and_then(|ctx| c.confirmers(ctx))
                    .is_some_and(|s| s.len() == 3)
            })
        },
    )
    .await?;

    println!(
        "\n4. The user's encrypted commands run on every worker; replies open only for the user"
    );
    s.command(
        &user,
        &contract,
        &kv::put(b"greeting", b"hello from keyward"),
    )
    .await?;
    let get = s.command(&user, &contract, &kv::get(b"greeting")).await?;
    for w in &workers {
        let body = s.reply(&user, w, &get).await?;
        if !body.ends_with(b"hello from keyward") {
            return Err(CliError::refused("a reply holds the wrong value"));
        }
    }
    check(
        &mut s,
        "each worker's reply opens under the user's key and holds the value",
    );

    println!("\n5. SIGKILL the ledger, a gatekeeper and a worker; they restart from their stores");
    let head = s.follower.registry().next_height();
    s.proc("ledger").kill();
    s.proc("g1").kill();
    s.proc("w1").kill();
    let exe = s.exe.clone();
    s.proc("ledger").start(&exe)?;
    let client = LedgerClient::new(&s.ledger_url).map_err(CliError::refused)?;
    let start = Instant::now();
    let height = loop {
        match client.head().await {
            Ok(head) => break head.height,
            Err(_) if start.elapsed() < STAGE_TIMEOUT => {
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
        &mut s,
        &format!("the ledger restarted with every entry it had acknowledged (height {height})"),
    );
    s.proc("g1").start(&exe)?;
    s.proc("w1").start(&exe)?;
    let get = s.command(&user, &contract, &kv::get(b"greeting")).await?;
    let w1 = s.id_of("w1")?;
    if !s
        .reply(&user, &w1, &get)
        .await?
        .ends_with(b"hello from keyward")
    {
        return Err(CliError::refused("the restarted worker lost the state"));
    }
    check(
        &mut s,
        "the restarted worker answers with the state from before the kill",
    );
    let active = s.nodes(|_| true).len();
    if active != 5 {
        return Err(CliError::refused("a restart registered a second identity"));
    }
    check(
        &mut s,
        &format!("both kept their identities (height {head} before the kill; still 5 nodes)"),
    );

    println!("\n6. The council removes a worker: the cluster is re-keyed without it");
    let removed = workers[2];
    s.council_decides(Action::RemoveWorker { worker: removed })
        .await?;
    let c = cluster.clone();
    s.until(
        "cluster c1 moved to generation 1 and its new key is published",
        move |r| {
            r.cluster(&c).is_some_and(|cl| {
                cl.generation().0 == 1 && r.key_context(&c).ok().and_then(|k| cl.key(k)).is_some()
            })
        },
    )
    .await?;
    let get = s.command(&user, &contract, &kv::get(b"greeting")).await?;
    let electorate = s
        .follower
        .registry()
        .command(&get)
        .map(|c| c.electorate.clone())
        .unwrap_or_default();
    if electorate.contains(&removed) || electorate.len() != 2 {
        return Err(CliError::refused("the removed worker still runs commands"));
    }
    check(
        &mut s,
        "the 2 remaining workers run the contract under the generation-1 keys",
    );
    let status = s.follower.registry().node(&removed).map(|n| n.status);
    if !matches!(status, Some(keyward_ledger::Status::Removed { .. })) {
        return Err(CliError::refused("the removed worker is still active"));
    }
    check(
        &mut s,
        "the removed worker is refused every later key (gatekeepers provision active members only)",
    );

    println!("\n7. Rotation: two new gatekeepers; the council approves; the old set is retired");
    let old = s.nodes(is_gatekeeper);
    s.spawn_node("gatekeeper", "g3")?;
    s.spawn_node("gatekeeper", "g4")?;
    s.until("2 new gatekeepers registered", |r| {
        r.nodes()
            .filter(|(_, n)| n.is_active() && matches!(n.role, Role::Gatekeeper { .. }))
            .count()
            == 4
    })
    .await?;
    let new: Vec<_> = s
        .nodes(is_gatekeeper)
        .into_iter()
        .filter(|g| !old.contains(g))
        .collect();
    s.council_decides(Action::RotateMasterKey {
        committee: new.clone(),
    })
    .await?;
    let (n, o) = (new.clone(), old.clone());
    s.until(
        "epoch 1 is active, held by the new set only; epoch 0 is retained",
        move |r| {
            r.epoch(Epoch(1)).is_some_and(|e| {
                e.status() == EpochStatus::Active
                    && e.holders().iter().copied().collect::<BTreeSet<_>>()
                        == n.iter().copied().collect()
            }) && r
                .epoch(Epoch(0))
                .is_some_and(|e| e.status() == EpochStatus::Retained)
                && o.iter().all(|g| r.node(g).is_some_and(|n| !n.is_active()))
        },
    )
    .await?;
    let c = cluster.clone();
    s.until("cluster c1's epoch-1 key is published", move |r| {
        r.key_context(&c)
            .ok()
            .filter(|k| k.epoch == Epoch(1))
            .and_then(|k| r.cluster(&c)?.key(k))
            .is_some()
    })
    .await?;
    let get = s.command(&user, &contract, &kv::get(b"greeting")).await?;
    let remaining: Vec<_> = workers[..2].to_vec();
    for w in &remaining {
        if !s
            .reply(&user, w, &get)
            .await?
            .ends_with(b"hello from keyward")
        {
            return Err(CliError::refused("the state did not survive the rotation"));
        }
    }
    check(
        &mut s,
        "the contract's state moved to the epoch-1 keys and still reads back",
    );
    let migration = Subject::Migration {
        contract: contract.clone(),
        epoch: Epoch(1),
        generation: keyward_hierarchy::Generation(1),
    };
    let digests: Vec<_> = s
        .follower
        .registry()
        .digests(&migration)
        .map(|(_, d)| *d)
        .collect();
    if digests.len() != 2 || digests.iter().any(|d| *d != digests[0]) {
        return Err(CliError::refused(
            "the workers disagree on the migrated state",
        ));
    }
    check(
        &mut s,
        "both workers published the same digest of the re-encrypted state",
    );
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
        &mut s,
        "the retained epoch 0 verifies against the epoch checksum chain",
    );

    println!("\n8. Every node verified the same ledger");
    let height = s.follower.registry().next_height() - 1;
    let head = s.follower.registry().head();
    let endpoints: Vec<_> = s
        .follower
        .registry()
        .nodes()
        .filter(|(_, n)| n.is_active())
        .map(|(_, n)| n.endpoint)
        .collect();
    for endpoint in &endpoints {
        let client = NodeClient::new(&format!("http://{endpoint}")).map_err(CliError::refused)?;
        let start = Instant::now();
        loop {
            let health = client.health().await.map_err(CliError::refused)?;
            if health.height >= height {
                let theirs = keyward_ledger_service::wire::parse_hash(&health.head);
                if health.height == height && theirs != Some(head) {
                    return Err(CliError::refused(format!(
                        "{endpoint} verified another ledger"
                    )));
                }
                break;
            }
            if start.elapsed() > STAGE_TIMEOUT {
                return Err(CliError::refused(format!("{endpoint} does not catch up")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    check(
        &mut s,
        &format!(
            "{} active nodes report head {head} at height {height}",
            endpoints.len()
        ),
    );

    println!("\nkeyward devnet: all {} checks passed", s.checks);
    if keep {
        println!("running; Ctrl-C to stop (ledger at {})", s.ledger_url);
        crate::signer::shutdown_signal().await?;
    }
    Ok(())
}
