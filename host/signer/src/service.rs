//! Starting the signer: configuration → store → core → writer → JSON-RPC server.

use std::sync::Arc;

use thiserror::Error;

use keyward_vote::signer::RestoreError;
use keyward_vote::{Signer, SignerConfig};

use crate::config::{Config, ConfigError};
use crate::engine::Engine;
use crate::metrics::Metrics;
use crate::rpc::{self, Running};
use crate::store::{Store, StoreError};

/// The measurement dev evidence reports until the enclave runners exist: all zeros.
pub const DEV_MEASUREMENT: [u8; 32] = [0; 32];

/// Why the signer did not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store did not open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored record did not load.
    #[error("cannot load the stored validators: {0}")]
    Restore(#[from] RestoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

/// A running signer.
pub struct Service {
    /// The server.
    pub running: Running,
    /// The service id.
    pub service: keyward_vote::ServiceId,
    writer: std::thread::JoinHandle<()>,
}

/// Opens the store in `config.data_dir`, loads the core over it, and makes the startup commit.
///
/// # Errors
/// [`StartError`].
pub fn load(config: &Config) -> Result<(Signer, Store), StartError> {
    config.check()?;
    let (mut store, loaded) = Store::open(&config.data_dir, &config.chain()?, &config.sealing)?;
    let signer_config = SignerConfig {
        service: loaded.service,
        lockout: config.lockout_policy()?,
        ancestry: config.ancestry_policy()?,
        measurement: DEV_MEASUREMENT,
        identity_keys: Default::default(),
    };
    let mut signer = Signer::restore(
        signer_config,
        loaded.sealer,
        loaded.attester,
        loaded.records.iter().map(|(id, r)| (*id, r.as_slice())),
        loaded.manifest.as_deref(),
        loaded.counter,
    )?;
    // The startup commit (no record, the same bytes whichever process makes it; keyward_vote's
    // signer docs): after it, no commit this process makes can reuse a counter value.
    let startup = signer.seal_commit();
    store.commit(std::iter::empty(), &startup)?;
    Ok((signer, store))
}

impl Service {
    /// Starts the signer described by `config`.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn start(config: &Config) -> Result<Self, StartError> {
        let (signer, store) = load(config)?;
        let signer_config = Arc::new(signer.config().clone());
        let service = signer_config.service;
        let metrics = Arc::new(Metrics::new());
        let (engine, writer) = Engine::start(
            signer,
            store,
            metrics.clone(),
            config.max_batch,
            config.queue_depth,
        );
        let running = rpc::serve(
            config.listen,
            config.max_body_bytes,
            engine,
            signer_config,
            metrics,
        )
        .await
        .map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        Ok(Self {
            running,
            service,
            writer,
        })
    }

    /// Stops accepting requests, lets in-flight ones finish, and stops the writer.
    pub async fn stop(self) {
        let _ = self.running.handle.stop();
        self.running.handle.stopped().await;
        // The RPC module (and with it the last queue sender) is gone: the writer drains and ends.
        let _ = tokio::task::spawn_blocking(move || self.writer.join()).await;
    }
}
