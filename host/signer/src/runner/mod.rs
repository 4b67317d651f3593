//! Enclave runners: where the signer's trusted core runs, behind one interface.
//!
//! - [`Enclave`] is the in-process runner: the core in the signer's own process (the default,
//!   and what tests use).
//! - [`Isolated`] reaches the core in a separate `keyward enclave` process over a Unix socket,
//!   with the narrow framed protocol of [`protocol`]; [`server`] is that process's side. The
//!   enclave process turns off core dumps and ptrace, locks its memory and confines itself
//!   (`keyward_isolation`), so the host process never holds a vote key or the sealing key.
//!
//! A session, whichever the runner: [`Runner::open`] over what the store holds, make its startup
//! commit durable, [`Runner::release`]; then per batch [`Runner::apply`] each request,
//! [`Runner::seal`] a manifest if any record changed, make records and manifest durable, and
//! [`Runner::release`] the answers. The counter advances in `release`, on the enclave's side.

pub mod enclave;
pub mod isolated;
pub mod protocol;
pub mod server;

use thiserror::Error;

use keyward_crypto::SolanaPubkey;
use keyward_vote::{Answer, CommitManifest, Rejection, ServiceId, SignedRequest, VoteKeyInfo};

pub use enclave::{Enclave, OpenError, Policy};
pub use isolated::Isolated;

/// A validator's identity and its sealed record.
pub type Record = (SolanaPubkey, Vec<u8>);

/// A request's outcome: its answer, or why it was refused.
pub type Outcome = Result<Answer, Rejection>;

/// What the store holds for the enclave to open.
#[derive(Debug, Default, Clone)]
pub struct Stored {
    /// The sealed platform key (`dev` evidence), once one was made.
    pub platform: Option<Vec<u8>>,
    /// Every validator record, with the identity it is stored under.
    pub records: Vec<Record>,
    /// Every vote key evidence blob the records name (they name it by SHA-256).
    pub evidence: Vec<Vec<u8>>,
    /// The sealed manifest of the last commit, if any commit was made.
    pub manifest: Option<Vec<u8>>,
}

/// What applying requests changed: made durable together, in the commit of their batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// The changed validators' new records, in the order applied.
    pub records: Vec<Record>,
    /// The evidence of the vote keys the requests made, which the records name: stored under
    /// its [`keyward_vote::signer::evidence_digest`].
    pub evidence: Vec<Vec<u8>>,
    /// Digests of evidence no record names any more: deleted, after `evidence` is stored
    /// ([`keyward_vote::Applied::retired`]).
    pub retired: Vec<[u8; 32]>,
}

impl Changes {
    /// Appends `more`, keeping the order.
    pub fn extend(&mut self, more: Changes) {
        self.records.extend(more.records);
        self.evidence.extend(more.evidence);
        self.retired.extend(more.retired);
    }

    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.evidence.is_empty() && self.retired.is_empty()
    }
}

/// What opening a store gives the host to make durable before any request.
#[derive(Debug)]
pub struct Opening {
    /// A new sealed platform key, when the store had none.
    pub platform: Option<Vec<u8>>,
    /// The startup commit (no record), stored like any commit and then released.
    pub startup: CommitManifest,
}

/// A query: answered from state that is durable (after the commit of its batch).
#[derive(Debug, Clone)]
pub enum Query {
    /// The current vote key of an identity.
    VoteKey(SolanaPubkey),
    /// How many validators are registered.
    Registered,
}

/// A query's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryAnswer {
    /// The vote key, if any.
    VoteKey(Option<VoteKeyInfo>),
    /// Registered validators.
    Registered(usize),
}

/// Why a runner could not do what it was asked.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum RunnerError {
    /// No store is open (never opened, or the session was dropped).
    #[error("the enclave has no open store")]
    NotOpen,
    /// The store did not open: it does not load, or it is older than the counter.
    #[error("{0}")]
    Open(String),
    /// The monotonic counter could not be advanced: nothing was released.
    #[error("the monotonic counter could not be advanced: {0}")]
    Counter(String),
    /// The enclave process cannot be reached (isolated runner): nothing was released.
    #[error("the enclave is unavailable: {0}")]
    Unavailable(String),
    /// The enclave answered something this host does not understand.
    #[error("the enclave broke the protocol: {0}")]
    Protocol(String),
}

/// Where the signer's core runs. Every method acts on the session [`Runner::open`] started.
pub trait Runner: Send + 'static {
    /// Opens the store's contents for `service`, replacing any earlier session (whose held
    /// answers are never released).
    ///
    /// # Errors
    /// [`RunnerError::Open`] when the store does not load or is older than the counter.
    fn open(&mut self, service: ServiceId, stored: &Stored) -> Result<Opening, RunnerError>;

    /// Checks `requests` as the validators signed them ([`keyward_vote::SignerConfig::prepare_all`]:
    /// service id, signatures together, evidence) and applies them in order. Their outcomes
    /// are held until [`Runner::release`]; the changed validators' new records are returned, in
    /// order, with the evidence they name, to be made durable.
    ///
    /// # Errors
    /// [`RunnerError`]; after one the session is gone.
    fn apply(&mut self, requests: Vec<SignedRequest>) -> Result<Changes, RunnerError>;

    /// Seals the manifest of every record returned since the last seal.
    ///
    /// # Errors
    /// [`RunnerError`]; after one the session is gone.
    fn seal(&mut self) -> Result<CommitManifest, RunnerError>;

    /// Called once the last sealed manifest and its records are durable: advances the counter
    /// to the manifest and returns every held outcome, in the order applied.
    ///
    /// # Errors
    /// [`RunnerError`]; nothing is released and the session is gone.
    fn release(&mut self) -> Result<Vec<Outcome>, RunnerError>;

    /// Answers a query about the session's state.
    ///
    /// # Errors
    /// [`RunnerError`].
    fn query(&mut self, query: &Query) -> Result<QueryAnswer, RunnerError>;

    /// Ends the session without releasing what it holds (the store could not commit).
    fn close(&mut self);
}
