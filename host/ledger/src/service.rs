//! Starting the ledger server: store → replay through the core → writer → JSON-RPC server.

use std::net::SocketAddr;
use std::path::PathBuf;

use thiserror::Error;

use keyward_ledger::{Entry, EntryHash, Registry, Rejected};

use crate::engine::Engine;
use crate::rpc::{self, Running};
use crate::store::{Store, StoreError};

/// The server's settings.
#[derive(Debug, Clone)]
pub struct LedgerConfig {
    /// Where to listen; loopback by default.
    pub listen: SocketAddr,
    /// Where `ledger.redb` lives.
    pub data_dir: PathBuf,
    /// The genesis entry, for a new ledger; for an existing one it must equal the stored one.
    pub genesis: Option<Vec<u8>>,
    /// If set, the stored genesis must hash to this.
    pub pinned: Option<EntryHash>,
    /// Most chains that share one commit.
    pub max_batch: usize,
    /// Most appends in flight (being verified or waiting for the writer); more get `busy`.
    pub queue_depth: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: u32,
}

impl LedgerConfig {
    /// The defaults: `127.0.0.1:8990`, batches of 256, 4096 waiting, 8 MiB bodies.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8990)),
            data_dir,
            genesis: None,
            pinned: None,
            max_batch: 256,
            queue_depth: 4096,
            max_body_bytes: 8 << 20,
        }
    }
}

/// Why the server did not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// The store did not open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A new ledger needs a genesis.
    #[error("the ledger in {0} is empty: pass the genesis entry (--genesis FILE)")]
    NoGenesis(PathBuf),
    /// The given genesis is not the stored one.
    #[error("the ledger in {0} has another genesis than the one given")]
    OtherGenesis(PathBuf),
    /// The genesis, or a stored entry, does not verify.
    #[error("entry at height {height} does not verify: {reason}")]
    Invalid {
        /// The height.
        height: u64,
        /// Why.
        reason: Rejected,
    },
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running ledger server.
pub struct Service {
    /// The server.
    pub running: Running,
    /// The genesis hash.
    pub genesis: EntryHash,
    writer: std::thread::JoinHandle<()>,
    store: Store,
}

/// Opens the store and replays every stored entry through the core (the server trusts its own
/// disk no more than nodes trust the server), writing the genesis first for a new ledger.
///
/// # Errors
/// [`StartError`].
pub fn load(config: &LedgerConfig) -> Result<(Registry, Vec<EntryHash>, Store), StartError> {
    let (store, entries) = Store::open(&config.data_dir)?;
    let invalid = |height, reason| StartError::Invalid { height, reason };
    let given = match &config.genesis {
        Some(bytes) => Some(Entry::from_bytes(bytes.clone()).map_err(|r| invalid(0, r))?),
        None => None,
    };
    let mut entries = entries.into_iter();
    let (genesis, is_new) = match (entries.next(), given) {
        (Some(stored), Some(given)) if stored != given => {
            return Err(StartError::OtherGenesis(config.data_dir.clone()));
        }
        (Some(stored), _) => (stored, false),
        (None, Some(given)) => (given, true),
        (None, None) => return Err(StartError::NoGenesis(config.data_dir.clone())),
    };
    let pinned = config.pinned.unwrap_or(genesis.hash());
    let mut registry = Registry::from_genesis(&genesis, &pinned).map_err(|r| invalid(0, r))?;
    // A new ledger's genesis is written only once it verified.
    if is_new {
        store.append([&genesis])?;
    }
    let mut hashes = vec![genesis.hash()];
    for entry in entries {
        let height = entry.position().height;
        let verified = registry
            .genesis()
            .verify(entry)
            .map_err(|r| invalid(height, r))?;
        let applied = registry.apply(verified).map_err(|r| invalid(height, r))?;
        hashes.push(applied.hash);
    }
    Ok((registry, hashes, store))
}

impl Service {
    /// Starts the server described by `config`.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn start(config: &LedgerConfig) -> Result<Self, StartError> {
        let (registry, hashes, store) = load(config)?;
        let genesis = registry.genesis().clone();
        let (engine, writer) = Engine::start(
            registry,
            hashes,
            store.clone(),
            config.max_batch,
            config.queue_depth,
        );
        let running = rpc::serve(
            config.listen,
            config.max_body_bytes,
            config.queue_depth,
            engine,
            genesis.clone(),
            store.clone(),
        )
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        tracing::info!(addr = %running.addr, genesis = %genesis.hash(), "ledger serving");
        Ok(Self {
            running,
            genesis: genesis.hash(),
            writer,
            store,
        })
    }

    /// Stops accepting requests, lets in-flight ones finish, stops the writer, and returns once
    /// the database is closed (so the same directory can be opened again at once), or after 10 s
    /// if a connection task still holds it.
    pub async fn stop(self) {
        let _ = self.running.handle.stop();
        self.running.handle.stopped().await;
        let _ = tokio::task::spawn_blocking(move || self.writer.join()).await;
        // jsonrpsee may drop an idle keep-alive connection's handler, and its store handle,
        // shortly after `stopped()`.
        for _ in 0..1000 {
            if self.store.is_last_handle() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        tracing::warn!("the ledger store is still open 10 s after stop");
    }
}
