//! `keyward ledger`: run the ledger server.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use keyward_ledger::EntryHash;
use keyward_ledger_service::service::{LedgerConfig, Service};

use crate::error::{CliError, Result};
use crate::keyfile::read_limited;
use crate::signer::{init_logs, runtime, shutdown_signal};

/// Largest genesis file read.
const MAX_GENESIS_FILE: u64 = 1 << 20;

/// `keyward ledger`: serve the ledger over JSON-RPC.
#[derive(Debug, Args)]
pub struct LedgerArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8990")]
    listen: SocketAddr,
    /// Directory of the store (default ~/.keyward/ledger).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// The genesis entry (raw bytes), to start a new ledger; an existing ledger must have it.
    #[arg(long, value_name = "FILE")]
    genesis: Option<PathBuf>,
    /// Refuse to serve unless the genesis hashes to this (0x-hex).
    #[arg(long, value_name = "HASH")]
    genesis_hash: Option<String>,
}

/// Runs the ledger server until Ctrl-C or SIGTERM.
pub fn run(args: LedgerArgs) -> Result<()> {
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => std::env::var_os("HOME")
            .map(|home| PathBuf::from(home).join(".keyward").join("ledger"))
            .ok_or_else(|| CliError::refused("HOME is not set: pass --data-dir"))?,
    };
    let mut config = LedgerConfig::new(data_dir);
    config.listen = args.listen;
    if let Some(path) = &args.genesis {
        config.genesis = Some(read_limited(path, MAX_GENESIS_FILE)?.to_vec());
    }
    if let Some(text) = &args.genesis_hash {
        let hash = keyward_crypto::hex::from_hex::<32>("genesis hash", text)
            .map_err(|e| CliError::refused(format!("--genesis-hash: {e}")))?;
        config.pinned = Some(EntryHash(hash));
    }
    init_logs();
    runtime()?.block_on(async {
        let service = Service::start(&config).await.map_err(CliError::refused)?;
        tracing::info!(
            listen = %service.running.addr, data_dir = %config.data_dir.display(),
            genesis = %service.genesis, "keyward ledger started"
        );
        shutdown_signal().await?;
        tracing::info!("keyward ledger stopping");
        service.stop().await;
        Ok(())
    })
}
