//! `keyward user`: a user's client of the key hierarchy. It follows the ledger with its own core
//! from the pinned genesis and trusts nothing else: it encrypts only to contract keys certified
//! by the cluster key a gatekeeper published, and accepts a reply only when the contract's key
//! sealed it for this user's command. The user's one secret is an sr25519 identity key file
//! (`keyward keys new`); its reply channel key is derived from it (PROTOCOL §18.4).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use rand_core::OsRng;
use serde_json::json;

use keyward_contracts::state::MAX_VALUE_LEN;
use keyward_contracts::{Builtin, Reply, auction, kv};
use keyward_hierarchy::{ClusterId, ContractId, InputError};
use keyward_ledger::{Body, CodeId, ContractDeploy, EntryHash, KeyContext, Registry, Statement};
use keyward_ledger_service::client::LedgerClient;
use keyward_ledger_service::follow::Follower;
use keyward_node::User;
use keyward_node_service::client::NodeClient;

use crate::error::{CliError, Result};
use crate::keyfile::KeyFile;
use crate::signer::runtime;

/// `keyward user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Deploy a built-in contract to a cluster; prints the deployment's entry hash.
    Deploy {
        #[command(flatten)]
        net: NetArgs,
        /// The user's sr25519 identity key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The new contract's id.
        #[arg(long, value_name = "ID")]
        contract: String,
        /// The cluster that runs it.
        #[arg(long, value_name = "ID")]
        cluster: String,
        /// The built-in code: `kv-store` or `sealed-auction`.
        #[arg(long, value_name = "CODE")]
        code: String,
    },
    /// Encrypt a call to a contract's current keys and submit it; prints the command's hash,
    /// then waits for the reply and prints it decoded.
    Send {
        #[command(flatten)]
        net: NetArgs,
        /// The user's sr25519 identity key file (it signs the command and opens the reply).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The contract.
        #[arg(long, value_name = "ID")]
        contract: String,
        /// How long to wait for the contract's keys, and then for the reply (seconds).
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        timeout: u64,
        /// Print the command's hash and return without waiting for the reply (fetch it later
        /// with `keyward user reply`).
        #[arg(long)]
        no_wait: bool,
        /// The call: `put KEY VALUE`, `get KEY` or `delete KEY` (kv-store); `bid AMOUNT`,
        /// `close` or `result` (sealed-auction).
        #[arg(required = true, num_args = 1.., value_name = "CALL")]
        call: Vec<String>,
    },
    /// Fetch the reply to a command from the workers that ran it, check it, and print it as
    /// JSON (`status` 0 is success; `body` is the contract's answer in 0x-hex).
    Reply {
        #[command(flatten)]
        net: NetArgs,
        /// The user's sr25519 identity key file (the one that sent the command).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// The command's entry hash (0x-hex), as `send` printed it.
        #[arg(long, value_name = "HASH")]
        command: String,
        /// How long to wait for a reply (seconds).
        #[arg(long, value_name = "SECS", default_value_t = 30)]
        timeout: u64,
    },
    /// Print a contract's public keys with the chain that certifies them, checked from the ledger.
    Contract {
        #[command(flatten)]
        net: NetArgs,
        /// The contract.
        #[arg(long, value_name = "ID")]
        contract: String,
    },
}

/// Which ledger, and which genesis to pin.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// The ledger server's URL.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8990")]
    ledger: String,
    /// The genesis hash to pin (0x-hex): nothing from another ledger is accepted.
    #[arg(long, value_name = "HASH")]
    genesis_hash: String,
}

impl NetArgs {
    /// Follows the ledger from the pinned genesis up to its head.
    async fn follow(&self) -> Result<Follower> {
        let genesis = parse_hash("--genesis-hash", &self.genesis_hash)?;
        let client = LedgerClient::new(&self.ledger).map_err(CliError::refused)?;
        let (follower, _) = Follower::start(client, genesis)
            .await
            .map_err(|e| CliError::refused(format!("ledger {}: {e}", self.ledger)))?;
        Ok(follower)
    }
}

fn parse_hash(flag: &'static str, text: &str) -> Result<EntryHash> {
    keyward_crypto::hex::from_hex::<32>(flag, text)
        .map(EntryHash)
        .map_err(|e| CliError::refused(format!("{flag}: {e}")))
}

fn parse_id<T>(flag: &str, text: &str, parse: fn(&str) -> Option<T>) -> Result<T> {
    parse(text).ok_or_else(|| {
        CliError::refused(format!(
            "{flag}: {text:?} is not a valid id (1 to 64 of a-z, 0-9, '-', '_', '.')"
        ))
    })
}

fn user(key: &std::path::Path) -> Result<User> {
    Ok(User::from_identity(KeyFile::read(key)?.into_identity(key)?))
}

/// Runs a `keyward user` command.
pub fn run(cmd: UserCommand) -> Result<()> {
    runtime()?.block_on(async {
        match cmd {
            UserCommand::Deploy {
                net,
                key,
                contract,
                cluster,
                code,
            } => deploy(&net, &user(&key)?, &contract, &cluster, &code).await,
            UserCommand::Send {
                net,
                key,
                contract,
                timeout,
                no_wait,
                call,
            } => {
                let wait = (!no_wait).then_some(Duration::from_secs(timeout));
                send(&net, &user(&key)?, &contract, &call, timeout, wait).await
            }
            UserCommand::Reply {
                net,
                key,
                command,
                timeout,
            } => reply(&net, &user(&key)?, &command, timeout).await,
            UserCommand::Contract { net, contract } => show_contract(&net, &contract).await,
        }
    })
}

/// Deploys `code`; a sealed auction is owned by the deploying user.
async fn deploy(
    net: &NetArgs,
    user: &User,
    contract: &str,
    cluster: &str,
    code: &str,
) -> Result<()> {
    let builtin = Builtin::from_code(code).ok_or_else(|| {
        CliError::refused(format!(
            "--code: {code:?} is not a built-in contract (kv-store, sealed-auction)"
        ))
    })?;
    let init = match builtin {
        Builtin::KvStore => Vec::new(),
        Builtin::SealedAuction => user.id().to_bytes().to_vec(),
    };
    let body = Body::ContractDeploy(ContractDeploy {
        contract: parse_id("--contract", contract, |s| ContractId::new(s).ok())?,
        cluster: parse_id("--cluster", cluster, |s| ClusterId::new(s).ok())?,
        code: parse_id("--code", code, |s| CodeId::new(s).ok())?,
        init,
    });
    let mut follower = net.follow().await?;
    let applied = follower
        .submit(user.signer(), &body, &mut OsRng)
        .await
        .map_err(|e| CliError::refused(format!("deployment: {e}")))?;
    println!("{}", applied.hash);
    Ok(())
}

/// The bytes of `call` for a contract of `code`.
fn encode_call(code: Builtin, call: &[String]) -> Result<Vec<u8>> {
    let words: Vec<&str> = call.iter().map(String::as_str).collect();
    if code == Builtin::KvStore {
        if let Some(key) = words.get(1).filter(|k| k.len() > kv::MAX_USER_KEY_LEN) {
            return Err(CliError::refused(format!(
                "a kv-store key holds at most {} bytes, not {}",
                kv::MAX_USER_KEY_LEN,
                key.len()
            )));
        }
        if let Some(value) = words.get(2).filter(|v| v.len() > MAX_VALUE_LEN) {
            return Err(CliError::refused(format!(
                "a kv-store value holds at most {MAX_VALUE_LEN} bytes, not {}",
                value.len()
            )));
        }
    }
    let bytes = match (code, words.as_slice()) {
        (Builtin::KvStore, ["put", key, value]) => kv::put(key.as_bytes(), value.as_bytes()),
        (Builtin::KvStore, ["get", key]) => kv::get(key.as_bytes()),
        (Builtin::KvStore, ["delete", key]) => kv::delete(key.as_bytes()),
        (Builtin::SealedAuction, ["bid", amount]) => auction::bid(
            amount
                .parse()
                .map_err(|_| CliError::refused(format!("bid: {amount:?} is not an amount")))?,
        ),
        (Builtin::SealedAuction, ["close"]) => auction::close(),
        (Builtin::SealedAuction, ["result"]) => auction::result(),
        (code, _) => {
            let usage = match code {
                Builtin::KvStore => "put KEY VALUE | get KEY | delete KEY",
                Builtin::SealedAuction => "bid AMOUNT | close | result",
            };
            return Err(CliError::refused(format!(
                "a {} call is one of: {usage}",
                code.code()
            )));
        }
    };
    Ok(bytes)
}

async fn send(
    net: &NetArgs,
    user: &User,
    contract: &str,
    call: &[String],
    timeout: u64,
    wait: Option<Duration>,
) -> Result<()> {
    let contract = parse_id("--contract", contract, |s| ContractId::new(s).ok())?;
    let mut follower = net.follow().await?;
    let code = {
        let registry = follower.registry();
        let known = registry
            .contract(&contract)
            .ok_or_else(|| CliError::refused(format!("the ledger has no contract {contract}")))?;
        Builtin::from_code(known.code().as_str())
            .ok_or_else(|| CliError::refused(format!("unknown contract code {}", known.code())))?
    };
    let words = call;
    let call = encode_call(code, words)?;
    let deadline = Instant::now() + Duration::from_secs(timeout);
    let body = loop {
        let attempt = user.command(&follower.registry(), &contract, &call, &mut OsRng);
        match attempt {
            Ok(body) => break body,
            Err(keyward_node::UserError::Uncertified(InputError::Uncertified)) => {
                return Err(CliError::refused(
                    "the contract's keys are not certified by the published cluster key",
                ));
            }
            Err(keyward_node::UserError::Uncertified(e)) => {
                return Err(CliError::refused(format!(
                    "cannot encrypt to {contract}: {e}"
                )));
            }
            Err(e) if Instant::now() >= deadline => {
                return Err(CliError::refused(format!(
                    "cannot encrypt to {contract}: {e}"
                )));
            }
            Err(_) => {
                // Keys not published yet (a new deployment, a re-key or a rotation).
                follower.wait(1000).await.map_err(CliError::refused)?;
            }
        }
    };
    let applied = follower
        .submit(
            user.signer(),
            &Body::ContractCommand(Box::new(body)),
            &mut OsRng,
        )
        .await
        .map_err(|e| CliError::refused(format!("command: {e}")))?;
    println!("{}", applied.hash);
    let Some(wait) = wait else {
        return Ok(());
    };
    let reply = fetch_reply(&mut follower, user, &applied.hash, wait).await?;
    println!("{}", describe(code, words, &reply)?);
    Ok(())
}

/// What a reply says, for the call `words` to a contract of `code`.
fn describe(code: Builtin, words: &[String], reply: &Reply) -> Result<String> {
    let reason = match reply.status {
        0 => None,
        1 => Some("malformed call"),
        2 => Some("not allowed"),
        3 => Some("refused in the contract's current state"),
        _ => Some("unknown status"),
    };
    if let Some(reason) = reason {
        return Err(CliError::refused(format!(
            "the contract refused the call (status {}: {reason})",
            reply.status
        )));
    }
    let body = &reply.body[..];
    let mut r = keyward_crypto::Reader::new(body);
    let malformed = || CliError::refused(format!("malformed reply: {}", render(body)));
    let text = match (code, words.first().map(String::as_str)) {
        (Builtin::KvStore, Some("put")) => "stored".to_owned(),
        (Builtin::KvStore, Some("get")) => {
            let found = r.u8("found").map_err(|_| malformed())?;
            let value = r.var32("value", MAX_VALUE_LEN).map_err(|_| malformed())?;
            r.finish().map_err(|_| malformed())?;
            match found {
                1 => render(value),
                0 => "(no value)".to_owned(),
                _ => return Err(malformed()),
            }
        }
        (Builtin::KvStore, Some("delete")) => match body {
            [1] => "deleted".to_owned(),
            _ => "(no value)".to_owned(),
        },
        (Builtin::SealedAuction, Some("bid")) => "bid sealed".to_owned(),
        (Builtin::SealedAuction, _) => {
            match (r.u8("had bids"), r.array::<32>("winner"), r.u64("amount")) {
                (Ok(1), Ok(winner), Ok(amount)) => {
                    let winner = keyward_crypto::IdentityPublicKey::from_bytes(&winner)
                        .map_or_else(|_| keyward_crypto::hex::to_0x(&winner), |w| w.to_string());
                    format!("winner {winner} with {amount}")
                }
                (Ok(0), _, _) => "closed with no bids".to_owned(),
                _ => render(body),
            }
        }
        _ => render(body),
    };
    Ok(text)
}

/// Prints a reply body as text when it is printable UTF-8, else as 0x-hex.
fn render(body: &[u8]) -> String {
    match std::str::from_utf8(body) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_owned(),
        _ => keyward_crypto::hex::to_0x(body),
    }
}

async fn reply(net: &NetArgs, user: &User, command: &str, timeout: u64) -> Result<()> {
    let command = parse_hash("--command", command)?;
    let mut follower = net.follow().await?;
    let reply = fetch_reply(&mut follower, user, &command, Duration::from_secs(timeout)).await?;
    let out = json!({
        "command": command.to_string(),
        "status": reply.status,
        "body": keyward_crypto::hex::to_0x(&reply.body),
    });
    println!("{out}");
    Ok(())
}

/// Asks each worker that ran `command` for its reply until one opens and checks out as the
/// contract's answer to this user's command, for up to `wait`.
async fn fetch_reply(
    follower: &mut Follower,
    user: &User,
    command: &EntryHash,
    wait: Duration,
) -> Result<Reply> {
    let deadline = Instant::now() + wait;
    let mut last = String::from("no worker has a reply yet");
    loop {
        let endpoints = electorate(&follower.registry(), command)?;
        for endpoint in endpoints {
            let client =
                NodeClient::new(&format!("http://{endpoint}")).map_err(CliError::refused)?;
            let bytes = match client.reply(command).await {
                Ok(Some(bytes)) => bytes,
                Ok(None) => continue,
                Err(e) => {
                    last = format!("{endpoint}: {e}");
                    continue;
                }
            };
            let opened = keyward_crypto::Envelope::from_bytes(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|envelope| {
                    user.open_reply(&follower.registry(), command, &envelope)
                        .map_err(|e| e.to_string())
                });
            match opened {
                Ok(reply) => return Ok(reply),
                // A reply that does not check out is skipped; another worker may have it.
                Err(e) => last = format!("{endpoint}: reply refused: {e}"),
            }
        }
        if Instant::now() >= deadline {
            return Err(CliError::refused(format!("no reply to {command}: {last}")));
        }
        follower.wait(500).await.map_err(CliError::refused)?;
    }
}

/// The endpoints of the workers that run `command`.
fn electorate(registry: &Registry, command: &EntryHash) -> Result<Vec<std::net::SocketAddr>> {
    let queued = registry
        .command(command)
        .ok_or_else(|| CliError::refused(format!("the ledger has no command {command}")))?;
    Ok(queued
        .electorate
        .iter()
        .filter_map(|id| registry.node(id).map(|n| n.endpoint))
        .collect())
}

async fn show_contract(net: &NetArgs, contract: &str) -> Result<()> {
    let contract = parse_id("--contract", contract, |s| ContractId::new(s).ok())?;
    let follower = net.follow().await?;
    let registry = follower.registry();
    let known = registry
        .contract(&contract)
        .ok_or_else(|| CliError::refused(format!("the ledger has no contract {contract}")))?;
    let (keys, cluster_key) = User::trusted_keys(&registry, &contract)
        .map_err(|e| CliError::refused(format!("{contract}: {e}")))?;
    if keys.cluster_key != *cluster_key || keys.verify().is_err() {
        return Err(CliError::refused(
            "the contract's keys are NOT certified by the published cluster key",
        ));
    }
    let epoch = registry
        .epoch(keys.context.epoch)
        .ok_or_else(|| CliError::refused("the keys name an unknown epoch"))?;
    // Threshold mode: `trusted_keys` checked the committee's certificate of the cluster key.
    let committee_certificate = registry
        .certificate(&Statement::ClusterKey(
            keys.context.cluster.clone(),
            KeyContext::from(&keys.context),
        ))
        .map(|signature| keyward_crypto::hex::to_0x(&signature.to_bytes()));
    let out = json!({
        "contract": contract.as_str(),
        "code": known.code().as_str(),
        "cluster": keys.context.cluster.as_str(),
        "epoch": keys.context.epoch.0,
        "generation": keys.context.generation.0,
        "sr25519": keys.sr25519.to_string(),
        "x25519": keys.x25519.to_string(),
        "certifiedBy": cluster_key.to_string(),
        "committeeCertificate": committee_certificate,
        "masterPublicKey": epoch.record().committee().public_key().to_string(),
        "ledgerHeight": registry.next_height() - 1,
        "verified": "the keys' certificate checks against the cluster key published on the ledger, in an epoch on the checksum chain from the pinned genesis; in threshold mode, the committee's certificate of that cluster key checks under the epoch's master public key",
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).expect("JSON values serialize")
    );
    Ok(())
}
