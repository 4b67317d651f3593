//! keyward's contracts, as a worker's enclave runs them: a small deterministic interface, two
//! built-in contracts, and their execution under a ContractKey.
//!
//! A user encrypts a [`Call`] to a contract's current keys; every worker of the cluster opens it
//! with the same ContractKey, runs the same code on the same state, seals the new state and the
//! reply deterministically (SIV), and so publishes the same [`Executed::digest`]. A worker whose
//! digest differs from the majority's is reported on the ledger. The reply itself goes to the
//! user as an envelope from the contract's sr25519 key ([`open_reply`]).
//!
//! Contracts have no clock, no randomness and no I/O: a call's outcome depends only on the state,
//! the verified sender and the call bytes.

#![forbid(unsafe_code)]

pub mod auction;
pub mod call;
pub mod code;
pub mod instance;
pub mod kv;
pub mod state;

pub use call::{Call, Reply, ReplyError, open_reply};
pub use code::{Builtin, ContractError};
pub use instance::{Executed, Instance, Outcome, RestoreError};
pub use state::State;
