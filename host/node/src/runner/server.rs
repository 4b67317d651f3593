//! The isolated runner's enclave side: `keyward enclave --role` hardens and confines itself, then
//! serves one host connection at a time over its Unix socket ([`super::protocol`]), with the
//! node's core ([`InProcess`] over a registry of its own) behind it.
//!
//! The core is opened on the first `Hello`, which brings the genesis entry: it must hash to the
//! genesis the enclave was started with, and its chain binds the sealed state. Later hosts (the
//! node restarted) find the same core, and its registry as far as it was followed.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use keyward_crypto::DecodeError;
use keyward_enclave::Attester;
use keyward_isolation::{Confinement, Frame, Hardening, read_frame, write_frame};
use keyward_ledger::{Entry, EntryHash, Registry};
use keyward_tpm::source::{Sealing, SealingSource};

use super::protocol::{self, tag};
use super::{InProcess, NodeRunner, Options, RunnerError};
use crate::dir::NodeDir;
use crate::service::{NodeError, NodeRole};

/// How `keyward enclave --role` is started.
#[derive(Debug, Clone)]
pub struct EnclaveConfig {
    /// The node's role.
    pub role: NodeRole,
    /// The genesis hash the core pins.
    pub genesis: EntryHash,
    /// The enclave's own directory: sealing key and counter, sealed state, checkpoints.
    pub state_dir: PathBuf,
    /// The socket the node connects to.
    pub socket: PathBuf,
    /// Where the sealing key and counter come from.
    pub sealing: SealingSource,
    /// The dev platform key file (soft sealing source only; a TPM attests itself).
    pub platform_key: Option<PathBuf>,
    /// Report, instead of refusing, hardening this machine cannot give (locked memory,
    /// Landlock).
    pub allow_weaker_isolation: bool,
}

/// Why the enclave did not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EnclaveError {
    /// Hardening or confinement failed.
    #[error(transparent)]
    Harden(#[from] keyward_isolation::HardenError),
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The sealing source or the data directory failed.
    #[error(transparent)]
    Node(#[from] NodeError),
    /// The platform key is missing, or given with a TPM.
    #[error("{0}")]
    Platform(String),
    /// The core could not be opened for the host's genesis.
    #[error("cannot open the core: {0}")]
    Open(String),
}

/// The enclave process, ready to serve.
pub struct EnclaveProcess {
    enclave: NodeEnclave,
    listener: UnixListener,
    /// Where the socket is.
    pub socket: PathBuf,
    /// What hardening is in force.
    pub hardening: Hardening,
    /// Held for the process's life: one enclave per state directory.
    _lock: std::fs::File,
}

impl std::fmt::Debug for EnclaveProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnclaveProcess")
            .field("socket", &self.socket)
            .field("hardening", &self.hardening)
            .finish_non_exhaustive()
    }
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> EnclaveError {
    let path = path.to_owned();
    move |source| EnclaveError::Io {
        action,
        path,
        source,
    }
}

impl EnclaveProcess {
    /// Hardens the process, locks and opens the state directory's sealing source (made, with a
    /// new key and counter, only if it holds no sealed state), reads the platform key, binds the
    /// socket (0660) and confines the process to the state directory.
    ///
    /// # Errors
    /// [`EnclaveError`].
    pub fn start(config: &EnclaveConfig) -> Result<Self, EnclaveError> {
        let weaker = config.allow_weaker_isolation;
        let hardening = keyward_isolation::harden(weaker)?;
        let dir = &config.state_dir;
        NodeDir::create(dir).map_err(NodeError::from)?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_error("restrict", dir))?;
        let lock_path = dir.join("enclave.lock");
        let lock = std::fs::File::create(&lock_path).map_err(io_error("create", &lock_path))?;
        lock.try_lock().map_err(|e| EnclaveError::Io {
            action: "lock (is another keyward enclave using it?)",
            path: lock_path,
            source: e.into(),
        })?;
        let sealing = config
            .sealing
            .open(dir, NodeDir::fresh(dir))
            .map_err(|e| NodeError::from(crate::dir::DirError::from(e)))?;
        let platform: Option<Box<dyn Attester>> = match (&config.sealing, &config.platform_key) {
            (SealingSource::Soft, Some(path)) => Some(Box::new(
                crate::dev::read_platform_key(path).map_err(|source| NodeError::PlatformKey {
                    path: path.clone(),
                    source,
                })?,
            )),
            (SealingSource::Soft, None) => {
                return Err(EnclaveError::Platform(
                    "--platform-key is required with the soft sealing source".into(),
                ));
            }
            (SealingSource::Tpm(_), Some(_)) => {
                return Err(EnclaveError::Platform(
                    "--platform-key is for the soft sealing source; with --sealing tpm the TPM attests".into(),
                ));
            }
            (SealingSource::Tpm(_), None) => None,
        };
        let socket = config.socket.clone();
        let listener = keyward_isolation::socket::bind(&socket)
            .map_err(|(action, e)| io_error(action, &socket)(e))?;
        let hardening = Confinement {
            dirs: vec![dir.clone()],
            sockets: config.sealing.reached_over_tcp(),
            allow_weaker: weaker,
        }
        .apply(hardening)?;
        Ok(Self {
            enclave: NodeEnclave {
                role: config.role,
                pinned: config.genesis,
                dir: dir.clone(),
                waiting: Some((sealing, platform)),
                core: None,
            },
            listener,
            socket,
            hardening,
            _lock: lock,
        })
    }

    /// Serves hosts, one connection after another, until accepting fails or the core cannot be
    /// opened.
    ///
    /// # Errors
    /// [`EnclaveError`].
    pub fn serve(mut self) -> Result<(), EnclaveError> {
        loop {
            let stream = keyward_isolation::socket::accept(&self.listener)
                .map_err(io_error("accept on", &self.socket))?;
            tracing::info!("a host connected");
            match session(stream, &mut self.enclave) {
                Ok(()) => tracing::info!("the host disconnected"),
                Err(SessionError::Io(e)) => tracing::warn!(error = %e, "the host connection ended"),
                Err(SessionError::Refused(e)) => tracing::warn!(error = %e, "the session ended"),
                Err(SessionError::Fatal(e)) => return Err(e),
            }
        }
    }
}

/// The enclave's core, once a host said `Hello`.
struct NodeEnclave {
    role: NodeRole,
    pinned: EntryHash,
    dir: PathBuf,
    /// The sealing source and the dev platform key, until the core is opened with them.
    waiting: Option<(Sealing, Option<Box<dyn Attester>>)>,
    core: Option<InProcess>,
}

impl NodeEnclave {
    /// The core for `role` on the ledger of `genesis`, opened on the first call.
    fn open(&mut self, role: NodeRole, genesis: Entry) -> Result<&InProcess, SessionError> {
        if role != self.role {
            return Err(SessionError::Refused(RunnerError::Mismatch(format!(
                "this enclave holds a {} core, not a {}",
                self.role.name(),
                role.name()
            ))));
        }
        if genesis.hash() != self.pinned {
            return Err(SessionError::Refused(RunnerError::Mismatch(format!(
                "this enclave pins genesis {}, the host's is {}",
                self.pinned,
                genesis.hash()
            ))));
        }
        if self.core.is_none() {
            let registry = Registry::from_genesis(&genesis, &self.pinned)
                .map_err(|e| SessionError::Refused(RunnerError::Mismatch(e.to_string())))?;
            let (sealing, platform) = self.waiting.take().expect("the core opens once");
            let chain = registry.genesis().config().chain.clone();
            let mut dir = NodeDir::with_sealing(&self.dir, chain, role.measurement(), sealing);
            let platform =
                dir.take_attester()
                    .or(platform)
                    .ok_or(SessionError::Fatal(EnclaveError::Node(
                        NodeError::NoAttester,
                    )))?;
            let core = InProcess::open(
                role,
                Arc::new(RwLock::new(registry)),
                false,
                dir,
                platform,
                Options::default(),
            )
            .map_err(|e| SessionError::Fatal(EnclaveError::Open(e.to_string())))?;
            tracing::info!(id = %core.id(), role = role.name(), "core opened");
            self.core = Some(core);
        }
        Ok(self.core.as_ref().expect("opened above"))
    }
}

/// Why a session ended, or a message was refused.
enum SessionError {
    Io(io::Error),
    /// Answered with `Failed`; the session goes on unless it is a protocol error.
    Refused(RunnerError),
    /// The enclave cannot go on (its sealed state does not open): it answers, then exits.
    Fatal(EnclaveError),
}

impl From<io::Error> for SessionError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<RunnerError> for SessionError {
    fn from(e: RunnerError) -> Self {
        Self::Refused(e)
    }
}

fn malformed(e: DecodeError) -> SessionError {
    SessionError::Refused(RunnerError::Protocol(e.to_string()))
}

fn session(mut stream: UnixStream, enclave: &mut NodeEnclave) -> Result<(), SessionError> {
    while let Some(Frame { tag, body }) = read_frame(&mut stream)? {
        match handle(tag, &body, enclave) {
            Ok((tag, body)) => write_frame(&mut stream, tag, &body)?,
            Err(SessionError::Refused(e)) => {
                write_frame(
                    &mut stream,
                    tag::FAILED,
                    &protocol::encode(|w| protocol::put_failed(w, &e)),
                )?;
                if let RunnerError::Protocol(_) = e {
                    tracing::warn!(error = %e, "closing the connection");
                    return Ok(());
                }
            }
            Err(SessionError::Fatal(e)) => {
                let failed = RunnerError::Storage(e.to_string());
                let _ = write_frame(
                    &mut stream,
                    tag::FAILED,
                    &protocol::encode(|w| protocol::put_failed(w, &failed)),
                );
                return Err(SessionError::Fatal(e));
            }
            Err(e @ SessionError::Io(_)) => return Err(e),
        }
    }
    Ok(())
}

/// One message's answer.
fn handle(tag: u8, body: &[u8], enclave: &mut NodeEnclave) -> Result<(u8, Vec<u8>), SessionError> {
    if tag == tag::HELLO {
        let (role, genesis) = protocol::decode(body, protocol::hello).map_err(malformed)?;
        let core = enclave.open(role, genesis)?;
        let (id, height) = (core.id(), core.next_height()?);
        return Ok((
            tag::WELCOME,
            protocol::encode(|w| protocol::put_welcome(w, &id, height)),
        ));
    }
    let core = enclave
        .core
        .as_ref()
        .ok_or_else(|| RunnerError::Protocol("Hello first".into()))?;
    let answer = match tag {
        tag::NEXT_HEIGHT => {
            let height = core.next_height()?;
            (
                tag::HEIGHT,
                protocol::encode(|w| {
                    w.u64(height);
                }),
            )
        }
        tag::FOLLOW => {
            let entries = protocol::decode(body, protocol::entries).map_err(malformed)?;
            let height = core.follow(entries)?;
            (
                tag::HEIGHT,
                protocol::encode(|w| {
                    w.u64(height);
                }),
            )
        }
        tag::REGISTER => {
            let (endpoint, stake) =
                protocol::decode(body, protocol::register).map_err(malformed)?;
            let produced = core.registration(endpoint, stake)?;
            (
                tag::PRODUCED,
                protocol::encode(|w| protocol::put_body(w, &produced)),
            )
        }
        tag::SIGN => {
            let (position, body) = protocol::decode(body, protocol::sign).map_err(malformed)?;
            let entry = core.sign(position, &body)?;
            (
                tag::SIGNED,
                protocol::encode(|w| protocol::put_entry(w, &entry)),
            )
        }
        tag::STEP => {
            protocol::decode(body, |_| Ok(())).map_err(malformed)?;
            let step = core.step()?;
            (
                tag::STEPPED,
                protocol::encode(|w| protocol::put_step(w, step.as_ref())),
            )
        }
        tag::REQUESTS => {
            let request = protocol::decode(body, protocol::request).map_err(malformed)?;
            let round = core.requests(&request)?;
            (
                tag::ROUND,
                protocol::encode(|w| protocol::put_round(w, &round)),
            )
        }
        tag::CHECK => {
            let (ticket, answer) = protocol::decode(body, protocol::check).map_err(malformed)?;
            let enough = core.check_answer(ticket, &answer)?;
            (
                tag::CHECKED,
                protocol::encode(|w| {
                    w.u8(u8::from(enough));
                }),
            )
        }
        tag::PROVISIONED => {
            let ticket = protocol::decode(body, |r| r.u64("ticket")).map_err(malformed)?;
            let outcome = core.provisioned(ticket)?;
            (
                tag::OUTCOME,
                protocol::encode(|w| protocol::put_outcome(w, &outcome)),
            )
        }
        tag::AUDIT => {
            let ticket = protocol::decode(body, |r| r.u64("ticket")).map_err(malformed)?;
            let refusals = core.audit(ticket)?;
            (
                tag::AUDITED,
                protocol::encode(|w| protocol::put_refusals(w, &refusals)),
            )
        }
        tag::ANSWER => {
            let requests = protocol::decode(body, protocol::answer).map_err(malformed)?;
            let requests: Vec<&[u8]> = requests.iter().map(Vec::as_slice).collect();
            let answers = core.answer_all(&requests)?;
            (
                tag::ANSWERS,
                protocol::encode(|w| protocol::put_answers(w, &answers)),
            )
        }
        tag::CHECKPOINT => {
            let contract = protocol::decode(body, protocol::checkpoint).map_err(malformed)?;
            core.save_checkpoint(&contract)?;
            (tag::SAVED, Vec::new())
        }
        tag::HELD => {
            let held = core.held()?;
            (
                tag::COUNT,
                protocol::encode(|w| {
                    w.u64(held);
                }),
            )
        }
        other => {
            return Err(RunnerError::Protocol(format!("unknown message {other:#04x}")).into());
        }
    };
    Ok(answer)
}
