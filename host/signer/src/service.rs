//! Starting the signer: configuration → store → enclave runner → writer → JSON-RPC server; and
//! starting the isolated runner's `keyward enclave` process.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;

use thiserror::Error;

use keyward_isolation::{Confinement, HardenError, Hardening};
use keyward_tpm::source::SourceError;

use crate::config::{Config, ConfigError, RunnerKind};
use crate::engine::{Engine, OpenFailure, open_session};
use crate::metrics::Metrics;
use crate::rpc::{self, Running};
use crate::runner::{Enclave, Isolated, Runner};
use crate::store::{Store, StoreError};

pub use crate::runner::enclave::DEV_MEASUREMENT;

/// Why the signer (or its enclave) did not start.
#[derive(Debug, Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store did not open.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sealing source could not give the sealing key or the counter.
    #[error(transparent)]
    Sealing(#[from] SourceError),
    /// The enclave did not open the store: it does not load, or it is older than the counter.
    #[error(transparent)]
    Open(#[from] OpenFailure),
    /// The store is gone but commits were made: a new one would accept any older copy.
    #[error(
        "the store is missing, but the monotonic counter is at {0}: commits were made to a store that is gone"
    )]
    StoreMissing(u64),
    /// There is no store to read.
    #[error("there is no signer store at {0}")]
    NoStore(PathBuf),
    /// The enclave process could not harden itself.
    #[error(transparent)]
    Harden(#[from] HardenError),
    /// A file or socket operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
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

/// An enclave over the sealing source in `dir`, which is made (key and counter) only when
/// `create`; refused when there is no store but the counter has moved.
/// With the isolated runner the directory is the enclave's, and is locked while the enclave
/// lives ([`lock_state_dir`]).
fn enclave(config: &Config, dir: &std::path::Path, create: bool) -> Result<Enclave, StartError> {
    std::fs::create_dir_all(dir).map_err(|source| StartError::Io {
        action: "create",
        path: dir.to_owned(),
        source,
    })?;
    let lock = match config.runner.kind {
        RunnerKind::InProcess => None,
        RunnerKind::Isolated => Some(lock_state_dir(dir)?),
    };
    let sealing = config.sealing.open(dir, create)?;
    if create && sealing.counter.value() != 0 {
        return Err(StartError::StoreMissing(sealing.counter.value()));
    }
    let enclave = Enclave::new(sealing, config.chain()?, config.policy()?);
    Ok(match lock {
        Some(lock) => enclave.holding(lock),
        None => enclave,
    })
}

/// The in-process enclave and the store of a stopped signer, nothing opened yet.
fn stopped(config: &Config) -> Result<(Enclave, Store), StartError> {
    config.check()?;
    let create = !Store::path(&config.data_dir).exists();
    // The isolated enclave keeps its sealing files in its own directory.
    let sealing_dir = match config.runner.kind {
        RunnerKind::InProcess => config.data_dir.clone(),
        RunnerKind::Isolated => config.enclave_state_dir(),
    };
    // The sealing source first: a store that is gone beside a moved counter is refused before a
    // new one is made.
    let enclave = enclave(config, &sealing_dir, create)?;
    Ok((enclave, Store::open(&config.data_dir)?))
}

/// Opens the store in `config.data_dir` with the in-process runner and makes the startup
/// commit: what the tower import command uses on a stopped signer (for an isolated
/// configuration, run as the enclave's user: the sealing files are in its state directory).
///
/// # Errors
/// [`StartError`].
pub fn load(config: &Config) -> Result<(Enclave, Store), StartError> {
    let (mut enclave, mut store) = stopped(config)?;
    open_session(&mut enclave, &mut store)?;
    Ok((enclave, store))
}

/// Opens a stopped signer's store for reading (the tower export command): the core loads and
/// checks it against the counter, and no commit is made nor the counter advanced.
///
/// # Errors
/// [`StartError`]; [`StartError::NoStore`] when the data directory holds no store (nothing is
/// made).
pub fn inspect(config: &Config) -> Result<Enclave, StartError> {
    let path = Store::path(&config.data_dir);
    if !path.exists() {
        return Err(StartError::NoStore(path));
    }
    let (mut enclave, store) = stopped(config)?;
    let stored = store.stored()?;
    enclave
        .open(store.service(), &stored)
        .map_err(OpenFailure::from)?;
    Ok(enclave)
}

impl Service {
    /// Starts the signer described by `config`, with the runner it names.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn start(config: &Config) -> Result<Self, StartError> {
        match config.runner.kind {
            RunnerKind::InProcess => {
                let (enclave, store) = load(config)?;
                Self::serve(config, enclave, store).await
            }
            RunnerKind::Isolated => {
                config.check()?;
                let mut store = Store::open(&config.data_dir)?;
                let mut runner = Isolated::new(config.enclave_socket(), config.lockout_policy()?);
                open_session(&mut runner, &mut store)?;
                Self::serve(config, runner, store).await
            }
        }
    }

    async fn serve(config: &Config, runner: impl Runner, store: Store) -> Result<Self, StartError> {
        let service = store.service();
        let metrics = Arc::new(Metrics::new());
        let (engine, writer) = Engine::start(
            runner,
            store,
            metrics.clone(),
            config.max_batch,
            config.queue_depth,
        );
        let running = rpc::serve(
            config.listen,
            config.max_body_bytes,
            engine,
            service,
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

/// The isolated runner's enclave process, ready to serve: hardened, its sealing source open,
/// its socket bound, and confined to its state directory.
pub struct EnclaveProcess {
    /// The core's side.
    pub enclave: Enclave,
    /// The socket hosts connect to.
    pub listener: UnixListener,
    /// Where the socket is.
    pub socket: PathBuf,
    /// What hardening is in force.
    pub hardening: Hardening,
}

/// The lock file in the enclave's state directory.
const LOCK_FILE: &str = "enclave.lock";

/// Locks the isolated enclave's state directory `dir` (which exists): one enclave, or one tower
/// command, at a time; two would each keep their own view of the counter.
fn lock_state_dir(dir: &std::path::Path) -> Result<std::fs::File, StartError> {
    let path = dir.join(LOCK_FILE);
    let lock = std::fs::File::create(&path).map_err(|source| StartError::Io {
        action: "create",
        path: path.clone(),
        source,
    })?;
    lock.try_lock().map_err(|e| StartError::Io {
        action: "lock (is another keyward enclave, or a tower command, using it?)",
        path,
        source: e.into(),
    })?;
    Ok(lock)
}

impl EnclaveProcess {
    /// Prepares `keyward enclave` for `config` (`[runner] kind = "isolated"`): hardens the
    /// process, opens the sealing source in the state directory (made, with a new key and
    /// counter, only if the directory holds no files but its lock), binds the socket (0660), and
    /// confines the process to the state directory.
    ///
    /// # Errors
    /// [`StartError`].
    pub fn start(config: &Config) -> Result<Self, StartError> {
        config.check()?;
        if config.runner.kind != RunnerKind::Isolated {
            return Err(ConfigError::Invalid(
                "keyward enclave serves a signer configured with [runner] kind = \"isolated\""
                    .into(),
            )
            .into());
        }
        let weaker = config.runner.allow_weaker_isolation;
        let hardening = keyward_isolation::harden(weaker)?;
        let dir = config.enclave_state_dir();
        let io = |action, path: &std::path::Path| {
            let path = path.to_owned();
            move |source| StartError::Io {
                action,
                path,
                source,
            }
        };
        std::fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io("restrict", &dir))?;
        let lock = lock_state_dir(&dir)?;
        let mut files = std::fs::read_dir(&dir).map_err(io("read", &dir))?;
        let fresh = !files.any(|f| f.is_ok_and(|f| f.file_name() != LOCK_FILE));
        let sealing = config.sealing.open(&dir, fresh)?;
        let enclave = Enclave::new(sealing, config.chain()?, config.policy()?).holding(lock);
        let socket = config.enclave_socket();
        // Its group may connect: the signer's user, when it runs as another user (SIGNER §10.5).
        let listener = keyward_isolation::socket::bind(&socket)
            .map_err(|(action, e)| io(action, &socket)(e))?;
        let hardening = Confinement {
            dirs: vec![dir],
            sockets: config.sealing.reached_over_tcp(),
            allow_weaker: weaker,
        }
        .apply(hardening)?;
        Ok(Self {
            enclave,
            listener,
            socket,
            hardening,
        })
    }

    /// Serves hosts until accepting fails.
    ///
    /// # Errors
    /// The listener's error.
    pub fn serve(mut self) -> std::io::Result<()> {
        crate::runner::server::serve(&self.listener, &mut self.enclave)
    }
}
