//! # keyward-signer: the vote signer service (host side)
//!
//! Host code around the trusted core in `keyward-vote`: it does the networking, storage and
//! observability, and never sees a vote key in plaintext outside the core's types.
//!
//! - [`config`]: TOML configuration with working defaults.
//! - [`store`]: redb store of sealed validator records; every commit is fsync'd.
//! - [`runner`]: where the trusted core runs: in-process, or isolated in `keyward enclave`.
//! - [`engine`]: the single writer thread, with group commit: answers leave only after their
//!   records are durable.
//! - [`rpc`]: the JSON-RPC server, `/metrics` and `/health`.
//! - [`wire`]: the JSON shapes of the methods.
//! - [`interchange`]: the EIP-3076-style tower export/import format.
//! - [`client`]: the reference client.
//! - [`service`]: starting it all.
//! - [`votes`]: real Solana vote messages, for clients, tests and the load generator.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod config;
pub mod engine;
pub mod interchange;
pub mod metrics;
pub mod rpc;
pub mod runner;
pub mod service;
pub mod store;
pub mod votes;
pub mod wire;
