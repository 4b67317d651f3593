//! The gatekeeper and worker processes: host code around the node cores of `keyward-node`.
//!
//! A node follows the ledger with its own core ([`keyward_ledger_service::follow::Follower`]),
//! keeps its sealed key state in its data directory, and drives its core's level-triggered steps:
//! each step's entry is submitted, provisioning requests go to the gatekeepers' JSON-RPC, and
//! replies and contract checkpoints are stored for users and restarts. The core runs behind a
//! [`runner::NodeRunner`]: in-process, or isolated in `keyward enclave --role`, in which case this
//! process holds no secret key.

pub mod client;
pub mod dev;
pub mod dir;
pub mod provisioner;
mod rpc;
pub mod runner;
pub mod service;
pub mod wire;
pub use service::{Node, NodeConfig, NodeError, NodeRole, RunnerKind};
