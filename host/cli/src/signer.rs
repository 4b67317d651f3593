//! `keyward signer`, `keyward signer-client` and `keyward signer-tower`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use keyward_crypto::{SolanaKeypair, SolanaPubkey};
use keyward_signer::client::{Client, ClientError};
use keyward_signer::config::Config;
use keyward_signer::engine::Durable;
use keyward_signer::interchange;
use keyward_signer::runner::{Changes, Runner};
use keyward_signer::service::{self, Service};

use crate::error::{CliError, Result};
use crate::keyfile::{KeyFile, read_limited, write_file};

/// `keyward signer`: run the vote signer.
#[derive(Debug, Args)]
pub struct SignerArgs {
    /// Address to listen on (default 127.0.0.1:8989).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Directory of the store and sealing key (default ~/.keyward/signer).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (every field optional).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// `keyward signer-client`: the reference client.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The signer's URL.
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8989")]
    url: String,
    #[command(subcommand)]
    command: ClientCommand,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    /// Register a validator; prints its vote public key.
    Register {
        /// The validator's identity keypair file (Solana format).
        #[arg(long, value_name = "KEYPAIR_FILE")]
        identity: PathBuf,
        /// The validator's vote account, base58.
        #[arg(long, value_name = "PUBKEY")]
        vote_account: String,
    },
    /// Ask for the vote key's signature on a vote transaction message; prints it in base58.
    SignVote {
        /// The validator's identity keypair file.
        #[arg(long, value_name = "KEYPAIR_FILE")]
        identity: PathBuf,
        /// The serialized transaction message, base64.
        #[arg(long, value_name = "B64")]
        message_base64: String,
        /// Evidence for ancestor verification: signed vote transactions, base64 (repeatable).
        #[arg(long, value_name = "B64")]
        evidence_base64: Vec<String>,
    },
    /// Stop signing for the validator; prints its final tower (interchange JSON).
    Deregister {
        /// The validator's identity keypair file.
        #[arg(long, value_name = "KEYPAIR_FILE")]
        identity: PathBuf,
    },
    /// Replace the vote key; prints the new vote public key.
    Rotate {
        /// The validator's identity keypair file.
        #[arg(long, value_name = "KEYPAIR_FILE")]
        identity: PathBuf,
    },
    /// Print the signer's health and service id.
    Health,
}

/// `keyward signer-tower`: export and import towers while the signer is stopped.
#[derive(Debug, Subcommand)]
pub enum TowerCommand {
    /// Print every validator's tower as interchange JSON.
    Export {
        /// The signer's data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// TOML configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Write to this file (mode 0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Import towers from interchange JSON; never moves a tower backwards.
    Import {
        /// The signer's data directory.
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// TOML configuration file.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// The interchange file.
        file: PathBuf,
    },
}

pub(crate) fn config(path: Option<&Path>, data_dir: Option<PathBuf>) -> Result<Config> {
    let mut config = Config::load(path).map_err(CliError::refused)?;
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    Ok(config)
}

/// A multi-threaded runtime for a server or client command: one worker thread per core.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    build_runtime(&mut tokio::runtime::Builder::new_multi_thread())
}

/// A runtime with one worker thread, for a gatekeeper, whose answering threads take every other
/// core (`keyward_node_service::provisioner`). With a worker per core, the RPC side's threads
/// contend with the answering thread: 12 µs more CPU a key on average, more in 5 of 6 pairs of
/// runs on 2 cores (docs/BENCHMARKS.md).
pub(crate) fn one_worker_runtime() -> Result<tokio::runtime::Runtime> {
    build_runtime(tokio::runtime::Builder::new_multi_thread().worker_threads(1))
}

fn build_runtime(builder: &mut tokio::runtime::Builder) -> Result<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .map_err(|e| CliError::refused(format!("cannot start the async runtime: {e}")))
}

/// Runs the signer until Ctrl-C or SIGTERM.
pub fn run_signer(args: SignerArgs) -> Result<()> {
    let mut config = config(args.config.as_deref(), args.data_dir)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    init_logs();
    runtime()?.block_on(async {
        let service = Service::start(&config).await.map_err(CliError::refused)?;
        tracing::info!(
            listen = %service.running.addr, data_dir = %config.data_dir.display(),
            service_id = %service.service, runner = ?config.runner.kind,
            sealing = config.sealing.name(), "keyward signer started"
        );
        shutdown_signal().await?;
        tracing::info!("keyward signer stopping");
        service.stop().await;
        Ok(())
    })
}

/// Waits for Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| CliError::refused(format!("cannot watch SIGTERM: {e}")))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`).
pub(crate) fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn identity(path: &Path) -> Result<SolanaKeypair> {
    match KeyFile::read(path)? {
        KeyFile::Ed25519(k) => Ok(k),
        other => Err(CliError::bad_file(
            path,
            format!(
                "expected a Solana keypair file, found an {} key",
                other.kind()
            ),
        )),
    }
}

fn refused(e: ClientError) -> CliError {
    CliError::refused(e)
}

fn b64(field: &str, s: &str) -> Result<Vec<u8>> {
    keyward_host::from_base64(s.trim())
        .ok_or_else(|| CliError::refused(format!("{field} is not base64")))
}

/// Runs one client command.
pub fn run_client(args: ClientArgs) -> Result<()> {
    let url = args.url;
    runtime()?.block_on(async move {
        let connect = |path: PathBuf| {
            let url = url.clone();
            async move {
                let keypair = identity(&path)?;
                Client::connect(&url, keypair).await.map_err(refused)
            }
        };
        match args.command {
            ClientCommand::Register {
                identity,
                vote_account,
            } => {
                let vote_account = SolanaPubkey::parse_address(&vote_account).map_err(|e| {
                    CliError::refused(format!("--vote-account is not an address: {e}"))
                })?;
                let client = connect(identity).await?;
                let result = client.register(vote_account).await.map_err(refused)?;
                println!("{}", result.vote_pubkey);
            }
            ClientCommand::SignVote {
                identity,
                message_base64,
                evidence_base64,
            } => {
                let message = b64("--message-base64", &message_base64)?;
                let evidence = evidence_base64
                    .iter()
                    .map(|e| b64("--evidence-base64", e))
                    .collect::<Result<Vec<_>>>()?;
                let client = connect(identity).await?;
                let signature = client.sign_vote(message, evidence).await.map_err(refused)?;
                println!("{signature}");
            }
            ClientCommand::Deregister { identity } => {
                let client = connect(identity).await?;
                let tower = client.deregister().await.map_err(refused)?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&tower).expect("plain struct")
                );
            }
            ClientCommand::Rotate { identity } => {
                let client = connect(identity).await?;
                println!("{}", client.rotate().await.map_err(refused)?.vote_pubkey);
            }
            ClientCommand::Health => {
                let http = keyward_signer::client::http(&url).map_err(refused)?;
                let health = keyward_signer::client::health(&http)
                    .await
                    .map_err(refused)?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&health).expect("plain struct")
                );
            }
        }
        Ok(())
    })
}

/// Runs `signer-tower export|import` on a stopped signer's store.
pub fn run_tower(cmd: TowerCommand) -> Result<()> {
    match cmd {
        TowerCommand::Export {
            data_dir,
            config: path,
            out,
        } => {
            let config = config(path.as_deref(), data_dir)?;
            let mut enclave = service::inspect(&config).map_err(CliError::refused)?;
            let signer = enclave.signer().expect("inspect opens the store");
            let doc = interchange::document(&signer.export_all());
            let mut text = serde_json::to_string_pretty(&doc).expect("plain struct");
            text.push('\n');
            match out {
                Some(out) => write_file(&out, text.as_bytes(), false, 0o600)?,
                None => print!("{text}"),
            }
        }
        TowerCommand::Import {
            data_dir,
            config: path,
            file,
        } => {
            let config = config(path.as_deref(), data_dir)?;
            let (mut enclave, mut store) = service::load(&config).map_err(CliError::refused)?;
            let signer = enclave.signer().expect("load opens the store");
            let bytes = read_limited(&file, 64 * 1024 * 1024)?;
            let text = std::str::from_utf8(&bytes)
                .map_err(|_| CliError::bad_file(&file, "not UTF-8 text"))?;
            let exports = interchange::parse(text, &signer.config().lockout)
                .map_err(|e| CliError::bad_file(&file, e))?;
            // Check every entry before writing any: one commit, all or nothing.
            let mut changes = Changes::default();
            let mut outcomes = Vec::new();
            for export in exports {
                let identity = export.identity;
                let (outcome, record) = signer
                    .import(export)
                    .map_err(|e| CliError::bad_file(&file, format!("{identity}: {e}")))?;
                outcomes.push((identity, outcome));
                changes.records.push((identity, record));
            }
            let manifest = enclave.seal().map_err(CliError::refused)?;
            store
                .make_durable(&changes, &manifest, None)
                .map_err(CliError::refused)?;
            enclave.release().map_err(CliError::refused)?;
            for (identity, outcome) in outcomes {
                println!("{identity}: {outcome:?}");
            }
        }
    }
    Ok(())
}
