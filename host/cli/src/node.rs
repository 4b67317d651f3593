//! `keyward gatekeeper` and `keyward worker`: run a node of the key hierarchy.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use keyward_ledger::EntryHash;
use keyward_node_service::{Node, NodeConfig, NodeRole, RunnerKind};
use keyward_tpm::source::SealingSource;

use crate::error::{CliError, Result};
use crate::sealing::SealingArgs;
use crate::signer::{init_logs, one_worker_runtime, runtime, shutdown_signal};

/// Options shared by `keyward gatekeeper` and `keyward worker`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The ledger server's URL.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8990")]
    ledger: String,
    /// The genesis hash to pin (0x-hex): the node follows no other ledger.
    #[arg(long, value_name = "HASH")]
    genesis_hash: String,
    /// Directory of the node's sealed state (default ~/.keyward/<role>).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address of the node's JSON-RPC (a gatekeeper's must be loopback or private); port 0 picks
    /// a free port. The ledger records it at registration.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// The dev platform key file that signs this node's attestation evidence: required with the
    /// soft sealing source, refused with `--sealing tpm` (the TPM attests).
    #[arg(long, value_name = "FILE")]
    platform_key: Option<PathBuf>,
    /// Stake to declare (default: the genesis minimum for the role).
    #[arg(long, value_name = "AMOUNT")]
    stake: Option<u64>,
    #[command(flatten)]
    sealing: SealingArgs,
    /// Run the node's core in the isolated enclave runner: a `keyward enclave --role …` process
    /// listening on this Unix socket, which holds the sealing source and attests (so
    /// `--platform-key` and `--sealing` belong to it, not here). The data directory then holds
    /// only the replies to users.
    #[arg(long, value_name = "SOCKET")]
    enclave_socket: Option<PathBuf>,
    /// Dev fault injection (workers, dev networks only): publish a wrong digest of every
    /// command's result, so the network reports and slashes this worker.
    #[arg(long, hide = true)]
    dev_wrong_digests: bool,
    /// Dev fault injection (gatekeepers, dev networks only): answer every provisioning request
    /// with a wrong partial evaluation, so workers name and report this gatekeeper.
    #[arg(long, hide = true)]
    dev_wrong_partials: bool,
}

pub(crate) fn genesis_hash(text: &str) -> Result<EntryHash> {
    keyward_crypto::hex::from_hex::<32>("genesis hash", text)
        .map(EntryHash)
        .map_err(|e| CliError::refused(format!("--genesis-hash: {e}")))
}

/// Runs a node until Ctrl-C or SIGTERM.
pub fn run(role: NodeRole, args: NodeArgs) -> Result<()> {
    let genesis = genesis_hash(&args.genesis_hash)?;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".keyward").join(role.name()))
            .ok_or_else(|| CliError::refused("HOME is not set: pass --data-dir"))?,
    };
    let mut config = NodeConfig::new(role, args.ledger, genesis, data_dir);
    config.listen = args.listen;
    config.stake = args.stake;
    config.sealing = args.sealing.source()?;
    if let Some(socket) = args.enclave_socket {
        if args.platform_key.is_some() || config.sealing != SealingSource::Soft {
            return Err(CliError::refused(
                "--platform-key and --sealing belong to the keyward enclave process with --enclave-socket",
            ));
        }
        config.runner = RunnerKind::Isolated { socket };
    }
    config.platform_key = match (&config.sealing, args.platform_key) {
        _ if config.runner != RunnerKind::InProcess => config.platform_key,
        (SealingSource::Soft, Some(path)) => path,
        (SealingSource::Soft, None) => {
            return Err(CliError::refused(
                "--platform-key is required with the soft sealing source",
            ));
        }
        (SealingSource::Tpm(_), Some(_)) => {
            return Err(CliError::refused(
                "--platform-key is for the soft sealing source; with --sealing tpm the TPM attests",
            ));
        }
        (SealingSource::Tpm(_), None) => config.platform_key,
    };
    config.dev_wrong_digests = args.dev_wrong_digests && role == NodeRole::Worker;
    config.dev_wrong_partials = args.dev_wrong_partials && role == NodeRole::Gatekeeper;
    init_logs();
    // A gatekeeper answers on threads of its own (one per core but one); a worker answers on
    // the runtime's.
    let runtime = match role {
        NodeRole::Gatekeeper => one_worker_runtime()?,
        NodeRole::Worker => runtime()?,
    };
    runtime.block_on(async {
        let node = Node::start(config).await.map_err(CliError::refused)?;
        // One machine-readable line for scripts (and `keyward devnet`) to find the node.
        println!("{} {} listening on {}", role.name(), node.id, node.addr);
        shutdown_signal().await?;
        tracing::info!("stopping");
        node.stop().await;
        Ok(())
    })
}
