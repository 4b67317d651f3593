//! keyward's ledger, as its trusted core sees it: signed, hash-linked entries and the registry
//! that is a deterministic function of them (DESIGN §3, PROTOCOL §16).
//!
//! The ledger server and the store are untrusted. Every node replays the entries through this
//! crate and acts only on what it computed itself:
//!
//! 1. [`Entry::from_bytes`] parses the framing;
//! 2. [`Genesis::verify`] checks the author's signature and everything else that needs no state
//!    (body encoding, attestation evidence), and is the only way to get a [`VerifiedEntry`];
//! 3. [`Registry::apply`] checks the entry's position (height, parent hash, the author's sequence
//!    number), the author rule of its kind and the state rules, then applies it. A refused entry
//!    changes nothing.
//!
//! Every refusal is a [`Rejected`] with a stable name and code. The crate does no I/O, has no
//! clock and takes randomness from the caller.

#![forbid(unsafe_code)]

pub mod body;
pub mod cluster;
mod codec;
pub mod committee;
pub mod contract;
pub mod council;
pub mod dkg;
pub mod entry;
pub mod epoch;
pub mod genesis;
pub mod partial;
pub mod registry;
pub mod reject;
pub mod result;

pub use body::{Body, Kind, Registration};
pub use cluster::{ClusterAddMember, ClusterCreate, ClusterKeyPublish, KeyContext};
pub use committee::{Certified, SignCommit, SignShare, Statement};
pub use contract::{ContractCommand, ContractDeploy};
pub use council::{Action, Approval, Proposal};
pub use dkg::{Complaint, DkgCommit, DkgDeal, ReshareDeal, RunId, Sharing};
pub use entry::{Entry, EntryHash, Position, VendorStamp, VerifiedEntry};
pub use epoch::{
    EpochAccept, EpochCreate, EpochHandoff, SecretError, epoch_secret_aad, open_epoch_secret,
};
pub use genesis::{
    CodeId, Genesis, GenesisConfig, GenesisError, MIN_REFRESH_INTERVAL, Params, is_private,
    registration_nonce,
};
pub use partial::{PartialReport, partial_message};
pub use registry::{
    Applied, Change, Cluster, Command, Contract, EpochState, EpochStatus, Event, Node,
    ProposalState, ProposalStatus, ProvisionError, Registry, ReshareRun, Role, SigningRun, Status,
};
pub use reject::{Named, Rejected};
pub use result::{MisbehaviourReport, Offence, ResultDigest, Subject, result_message};
