//! `keyward enclave`: the isolated runner's enclave process, for every node kind. It runs a
//! trusted core in its own hardened, confined process, reached over a Unix socket: a vote
//! signer's (`--config`, the signer's TOML with `[runner] kind = "isolated"`), or a gatekeeper's
//! or worker's (`--role`, and the node's `--enclave-socket`).

use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};

use keyward_isolation::Hardening;
use keyward_node_service::NodeRole;
use keyward_node_service::runner::server::{EnclaveConfig, EnclaveProcess};

use crate::error::{CliError, Result};
use crate::node::genesis_hash;
use crate::sealing::SealingArgs;
use crate::signer::init_logs;

/// Options of `keyward enclave`: `--config` for a signer, `--role` and the rest for a node.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("serves").required(true).args(["config", "role"])))]
#[command(group(
    ArgGroup::new("node").multiple(true).conflicts_with("config").args([
        "role", "genesis_hash", "state_dir", "socket", "platform_key", "allow_weaker_isolation",
        "sealing", "tpm_tcti", "tpm_pcrs", "tpm_nv_index",
    ])
))]
pub struct EnclaveArgs {
    /// A vote signer's: its TOML configuration, with `[runner] kind = "isolated"`, from which
    /// the enclave takes its socket, state directory, sealing source, chain and policies.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// With --config: the signer's data directory, as `keyward signer --data-dir` (the default
    /// socket and state directory are inside it).
    #[arg(long, value_name = "DIR", requires = "config")]
    data_dir: Option<PathBuf>,
    /// A gatekeeper's or worker's: the role of the node it serves.
    #[arg(long, value_enum, requires_all = ["genesis_hash", "state_dir", "socket"])]
    role: Option<Role>,
    /// With --role: the genesis hash to pin (0x-hex); the core opens for no other ledger.
    #[arg(long, value_name = "HASH", requires = "role")]
    genesis_hash: Option<String>,
    /// With --role: the enclave's own directory (sealing key and counter, sealed state, contract
    /// checkpoints); it is confined to it.
    #[arg(long, value_name = "DIR", requires = "role")]
    state_dir: Option<PathBuf>,
    /// With --role: the Unix socket the node connects to (its `--enclave-socket`).
    #[arg(long, value_name = "SOCKET", requires = "role")]
    socket: Option<PathBuf>,
    /// With --role: the dev platform key file that signs the node's attestation evidence:
    /// required with the soft sealing source, refused with `--sealing tpm` (the TPM attests).
    #[arg(long, value_name = "FILE")]
    platform_key: Option<PathBuf>,
    #[command(flatten)]
    sealing: SealingArgs,
    /// With --role: report, instead of refusing, hardening this machine cannot give (memory
    /// that cannot be locked, a kernel without Landlock). A signer's enclave takes it from its
    /// configuration (`[runner] allow_weaker_isolation`).
    #[arg(long)]
    allow_weaker_isolation: bool,
}

/// The node roles an enclave serves.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Role {
    Gatekeeper,
    Worker,
}

/// Runs `keyward enclave` until it is killed.
pub fn run(args: EnclaveArgs) -> Result<()> {
    let (Some(role), Some(genesis), Some(state_dir), Some(socket)) =
        (args.role, args.genesis_hash, args.state_dir, args.socket)
    else {
        let config = args.config.ok_or_else(|| {
            CliError::refused("give --config (a signer's) or --role and its options (a node's)")
        })?;
        return run_for_signer(&config, args.data_dir);
    };
    let config = EnclaveConfig {
        role: match role {
            Role::Gatekeeper => NodeRole::Gatekeeper,
            Role::Worker => NodeRole::Worker,
        },
        genesis: genesis_hash(&genesis)?,
        state_dir,
        socket,
        sealing: args.sealing.source()?,
        platform_key: args.platform_key,
        allow_weaker_isolation: args.allow_weaker_isolation,
    };
    init_logs();
    let process = EnclaveProcess::start(&config).map_err(CliError::refused)?;
    started(
        config.role.name(),
        &process.socket,
        config.sealing.name(),
        &process.hardening,
    );
    process.serve().map_err(CliError::refused)
}

/// A signer's enclave, configured from its TOML (and data directory).
fn run_for_signer(config_file: &Path, data_dir: Option<PathBuf>) -> Result<()> {
    let config = crate::signer::config(Some(config_file), data_dir)?;
    init_logs();
    let process =
        keyward_signer::service::EnclaveProcess::start(&config).map_err(CliError::refused)?;
    started(
        "signer",
        &process.socket,
        config.sealing.name(),
        &process.hardening,
    );
    process
        .serve()
        .map_err(|e| CliError::refused(format!("the enclave socket failed: {e}")))
}

/// The start-up line: whom the enclave serves, where, and the hardening it achieved.
fn started(role: &str, socket: &Path, sealing: &str, h: &Hardening) {
    tracing::info!(
        role, socket = %socket.display(), sealing, undumpable = h.undumpable,
        memory_locked = h.memory_locked, landlock = h.landlock, seccomp = h.seccomp,
        "keyward enclave started"
    );
}
