//! The node's enclave runners: where a gatekeeper's or a worker's core runs, and the one
//! interface ([`NodeRunner`]) the node's host code drives it through.
//!
//! - [`InProcess`] (the default): the core in the node's own process.
//! - [`Isolated`]: the core in a separate, hardened `keyward enclave --role …` process, reached over
//!   a Unix socket ([`protocol`]); the host process never holds a secret key.
//!
//! The interface gives the host nothing secret. The core signs the node's ledger entries itself,
//! and only entries whose body it produced ([`NodeRunner::sign`]); it signs the worker's
//! provisioning requests, opens the answers, seals its state and its contracts' checkpoints,
//! and makes its registration's evidence with the platform's attester. The host keeps the
//! network: it follows the ledger, submits what the core signed, carries requests and answers to
//! and from the gatekeepers, and stores replies for users.

use std::net::SocketAddr;

use thiserror::Error;

use keyward_crypto::{Envelope, IdentityPublicKey};
use keyward_hierarchy::{ClusterKeyRequest, ContractId};
use keyward_ledger::{Body, Entry, EntryHash, Position};
use keyward_node::ProvisionError;

mod in_process;
pub mod isolated;
pub mod protocol;
pub mod server;

pub use in_process::{InProcess, Options, signed_requests};
pub use isolated::Isolated;

/// Why a runner call failed.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RunnerError {
    /// The isolated enclave cannot be reached (not started, crashed, restarting); the next call
    /// connects again.
    #[error("the enclave is unavailable: {0}")]
    Unavailable(String),
    /// The other side broke the protocol.
    #[error("enclave protocol error: {0}")]
    Protocol(String),
    /// The platform could not attest the node's keys.
    #[error("cannot attest this node's keys: {0}")]
    Attest(String),
    /// The sealed state or a checkpoint could not be stored; the core acts on nothing that
    /// depends on it until a save succeeds.
    #[error("cannot store the sealed state: {0}")]
    Storage(String),
    /// The core refuses to sign an entry whose body it did not produce.
    #[error("the core did not produce this {0} entry and will not sign it")]
    NotProduced(&'static str),
    /// A provisioning ticket the core does not know (it expired, or the enclave restarted).
    #[error("unknown provisioning ticket {0}")]
    UnknownTicket(u64),
    /// The enclave was started for another node than this host runs.
    #[error("the enclave serves another node: {0}")]
    Mismatch(String),
}

/// A provisioning refusal as the host sees it: its stable name ([`ProvisionError::name`]) and
/// its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The stable name, as in JSON-RPC errors.
    pub reason: String,
    /// The human-readable message.
    pub message: String,
}

impl From<ProvisionError> for Refused {
    fn from(e: ProvisionError) -> Self {
        Self {
            reason: e.name().into(),
            message: e.to_string(),
        }
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A worker's open provisioning round inside the core ([`NodeRunner::requests`]).
pub type Ticket = u64;

/// What the host does next, as the core decided.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)] // one at a time, never stored in bulk
pub enum NodeStep {
    /// The core sealed and stored its state (nothing to send).
    Sealed,
    /// Submit this entry ([`NodeRunner::sign`] signs it).
    Submit(Body),
    /// Ask the gatekeepers for this ClusterKey ([`NodeRunner::requests`]).
    Provision(ClusterKeyRequest),
    /// A command ran: store the reply for its sender, submit the digest if any, then
    /// [`NodeRunner::save_checkpoint`].
    Executed {
        /// The contract.
        contract: ContractId,
        /// The command.
        command: EntryHash,
        /// The reply, sealed to the command's sender.
        reply: Option<Envelope>,
        /// The result digest the worker owes.
        digest: Option<Body>,
    },
}

/// The signed provisioning requests of one round: its ticket, and each holder's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requests {
    /// Names the round in [`NodeRunner::check_answer`], [`NodeRunner::provisioned`] and
    /// [`NodeRunner::audit`].
    pub ticket: Ticket,
    /// One signed request (`ProvisionRequest` bytes) per holder of the epoch.
    pub signed: Vec<(IdentityPublicKey, Vec<u8>)>,
}

/// A node's core, wherever it runs. Every method may be called from any thread; calls are
/// answered one at a time.
pub trait NodeRunner: Send + Sync {
    /// The node's identity.
    fn id(&self) -> IdentityPublicKey;

    /// The next ledger height the core's own registry has not applied.
    ///
    /// # Errors
    /// [`RunnerError`].
    fn next_height(&self) -> Result<u64, RunnerError>;

    /// Hands the core ledger entries from its next height on, which it verifies and applies to
    /// its registry (the in-process core shares the host's already verified registry, and is
    /// never behind). Returns its next height.
    ///
    /// # Errors
    /// [`RunnerError`]; [`RunnerError::Protocol`] if an entry does not verify or extend its
    /// chain.
    fn follow(&self, entries: Vec<Entry>) -> Result<u64, RunnerError>;

    /// The node's registration, with evidence from the platform that binds its keys.
    ///
    /// # Errors
    /// [`RunnerError::Attest`] if the platform cannot attest.
    fn registration(&self, endpoint: SocketAddr, stake: Option<u64>) -> Result<Body, RunnerError>;

    /// Signs `body` at `position` with the node's identity, if the core produced `body`
    /// ([`NodeRunner::registration`], [`NodeRunner::step`]).
    ///
    /// # Errors
    /// [`RunnerError::NotProduced`] for any other body.
    fn sign(&self, position: Position, body: &Body) -> Result<Entry, RunnerError>;

    /// The core's next step on its registry, `None` when it has nothing to do. A state the core
    /// must store first is sealed and stored here.
    ///
    /// # Errors
    /// [`RunnerError::Storage`] if storing failed (the next step retries it first).
    fn step(&self) -> Result<Option<NodeStep>, RunnerError>;

    /// A worker's signed requests for a ClusterKey, one to each holder of its epoch, or why
    /// none can be answered yet.
    ///
    /// # Errors
    /// [`RunnerError`].
    fn requests(
        &self,
        request: &ClusterKeyRequest,
    ) -> Result<Result<Requests, Refused>, RunnerError>;

    /// Checks one answer of a round; whether enough valid ones are in.
    ///
    /// # Errors
    /// [`RunnerError`].
    fn check_answer(&self, ticket: Ticket, answer: &Envelope) -> Result<bool, RunnerError>;

    /// Combines the round's valid answers into the ClusterKey, checks it against the key
    /// published on the ledger, and seals and stores the state with it. The round stays open for
    /// [`NodeRunner::audit`].
    ///
    /// # Errors
    /// [`RunnerError`]; [`RunnerError::Storage`] if the state could not be stored.
    fn provisioned(&self, ticket: Ticket) -> Result<Result<(), Refused>, RunnerError>;

    /// Ends a round after its last answers came in: the wrong answers it saw are reported (on
    /// a later step) and returned.
    ///
    /// # Errors
    /// [`RunnerError`].
    fn audit(&self, ticket: Ticket) -> Result<Vec<Refused>, RunnerError>;

    /// A gatekeeper's answers to provisioning requests (their bytes), in order.
    ///
    /// # Errors
    /// [`RunnerError`].
    fn answer_all(&self, requests: &[&[u8]])
    -> Result<Vec<Result<Envelope, Refused>>, RunnerError>;

    /// Seals and stores a contract's checkpoint (a failure is logged by the core's side).
    ///
    /// # Errors
    /// [`RunnerError`].
    fn save_checkpoint(&self, contract: &ContractId) -> Result<(), RunnerError>;

    /// Epochs held (gatekeeper) or ClusterKeys held (worker).
    ///
    /// # Errors
    /// [`RunnerError`].
    fn held(&self) -> Result<u64, RunnerError>;
}
