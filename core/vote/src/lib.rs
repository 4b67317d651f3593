//! # keyward-vote: the enclave vote signer's trusted core
//!
//! Part of keyward's **trusted core**: deterministic, sans-IO, no `unsafe`. It implements the
//! signing service of Solana's RFC "Signing using Secure Enclave" for real vote transactions:
//!
//! - [`request`]: requests signed by the validator's identity over (method, service id,
//!   identity, nonce, payload), so none can be replayed as another.
//! - [`message`]: a Solana transaction message, decoded with Solana's own crates, accepted only
//!   when it is one vote for the registered vote account by the current vote key.
//! - [`tower`]: the vote program's lockout rules, simulated on the tower of votes signed.
//! - [`ancestry`]: the RFC's ancestor verification, initial-vote freeze and `N_vote`/`N_depth`
//!   rule, on evidence the request carries.
//! - [`signer`]: the state machine that ties them together, and the durable record the host
//!   must commit before any answer leaves.
//! - [`refusal`]: every refusal reason with its stable name and error code.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ancestry;
pub mod message;
pub mod refusal;
pub mod request;
pub mod signer;
pub mod tower;
pub mod wire;

pub use refusal::Refusal;
pub use request::{Method, Payload, ServiceId, SignedRequest};
pub use signer::{
    Answer, Applied, CommitManifest, Prepared, Signer, SignerConfig, TowerExport, VoteKeyInfo,
};
pub use tower::{Lockout, LockoutPolicy, Slot, Tower, TowerError};
pub use wire::Rejection;
