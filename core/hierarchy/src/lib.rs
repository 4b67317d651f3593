//! # keyward-hierarchy: the secret key hierarchy of confidential contracts
//!
//! Part of keyward's **trusted core**: deterministic, sans-IO, no `unsafe`; randomness comes
//! from the caller. This crate turns the seed's hierarchy into types:
//!
//! ```text
//! MasterKey s_e (epoch e)        held by gatekeepers (whole in classic mode, as shares otherwise)
//!   │ RFC 9497 VOPRF on (e, cluster id, generation), DLEQ-proved against S_e = s_e·G
//!   ▼
//! ClusterKey                     held by every worker of the cluster
//!   │ HKDF-SHA256 with the contract id
//!   ▼
//! ContractKey                    sr25519 key, X25519 key, state-encryption key
//! ```
//!
//! - [`master`]: the MasterKey of an epoch and its public key.
//! - [`cluster`]: a worker's request for its ClusterKey (public, so each gatekeeper sees what it
//!   evaluates), and the ClusterKey it finishes from the gatekeepers' partial evaluations (one in
//!   classic mode, `t` in threshold mode).
//! - [`contract`]: ContractKeys and their certified public keys.
//! - [`state`]: contract-state encryption with a deterministic, misuse-resistant nonce.
//! - [`input`]: a user encrypting an input to a contract, and the contract opening it.
//! - [`checksum`]: the epoch checksum chain that lets any node verify a retained epoch.
//!
//! One-wayness: each arrow is a one-way function, so a key reveals nothing above it and nothing
//! beside it (tests/leak_table.rs checks the seed's leak table). Labels and byte layouts are in
//! `docs/PROTOCOL.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checksum;
pub mod cluster;
pub mod contract;
pub mod ids;
pub mod input;
pub mod kdf;
pub mod master;
pub mod state;

pub use checksum::{ChainError, EpochChecksum, EpochRecord, verify_chain};
pub use cluster::{ClusterKey, ClusterKeyError, ClusterKeyRequest, cluster_input};
pub use contract::{ContractKey, ContractPublicKeys};
pub use ids::{ClusterId, ContractId, Epoch, Generation, IdError};
pub use input::{ContractContext, InputError};
pub use master::MasterKey;
pub use state::{StateCipher, StateError};
