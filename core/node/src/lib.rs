//! The enclave applications of the key hierarchy: what a gatekeeper's and a worker's core do.
//!
//! Each core holds its node's secrets (identity and channel keys; a gatekeeper's MasterKeys, a
//! worker's ClusterKeys and contract instances) and reads only the [`Registry`] its host rebuilt
//! from verified ledger entries. Its decisions are *level-triggered*: [`Gatekeeper::step`] and
//! [`Worker::step`] look at the registry as it is now and return the next entry to submit, so a
//! node that restarts from its sealed state and the ledger simply carries on, and a step that
//! lost a race (another gatekeeper published first) is recomputed rather than repeated.
//!
//! Provisioning goes off the ledger ([`provision`]): a worker signs a request, a gatekeeper checks
//! it against the registry and answers with its partial evaluation sealed to the worker's
//! registered channel key, and the worker checks the DLEQ proof against the epoch's master public
//! key and the result against the cluster key a gatekeeper published on the ledger.
//!
//! [`Registry`]: keyward_ledger::Registry

#![forbid(unsafe_code)]

pub mod alarms;
mod gatekeeper;
pub mod provision;
mod sealed;
mod signing;
pub mod user;
pub mod worker;

pub use gatekeeper::{BadSecret, Gatekeeper, GatekeeperStep};
pub use provision::{ProvisionError, ProvisionRequest, answer_aad};
pub use sealed::StateError;
pub use user::{User, UserError};
pub use worker::{Answers, Checkpoint, CheckpointError, Worker, WorkerAlarm, WorkerStep};
