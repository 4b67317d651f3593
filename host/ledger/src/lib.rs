//! The ledger's untrusted host side: the server that stores and serves entries, and the client
//! and follower with which every node reads the ledger and verifies it with its own core.
//!
//! The server verifies what it appends with the same core as the nodes (so it refuses bad
//! entries with the core's reasons), but no node trusts it: a [`follow::Follower`] re-verifies
//! every entry from the pinned genesis and reports a server that lies.

pub mod client;
pub mod engine;
pub mod follow;
pub mod rpc;
pub mod service;
pub mod store;
pub mod wire;
