//! The built-in contracts and the interface they share.

use keyward_crypto::IdentityPublicKey;
use thiserror::Error;

use crate::state::State;
use crate::{auction, kv};

/// Why a call was refused. A refused call changes no state; its error is the reply.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContractError {
    /// The call or deployment argument is not well formed.
    #[error("malformed: {0}")]
    Malformed(&'static str),
    /// The sender may not make this call.
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// The call does not fit the contract's current state.
    #[error("refused: {0}")]
    Refused(&'static str),
}

impl ContractError {
    /// The status byte of a reply carrying this error.
    pub fn status(self) -> u8 {
        match self {
            Self::Malformed(_) => 1,
            Self::NotAllowed(_) => 2,
            Self::Refused(_) => 3,
        }
    }
}

/// A built-in contract, named by its code id on the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `kv-store`: a confidential key-value store; each sender sees only its own keys.
    KvStore,
    /// `sealed-auction`: sealed bids; the owner closes it and only the winning bid is revealed.
    SealedAuction,
}

impl Builtin {
    /// Every built-in.
    pub const ALL: [Self; 2] = [Self::KvStore, Self::SealedAuction];

    /// The code id.
    pub fn code(self) -> &'static str {
        match self {
            Self::KvStore => "kv-store",
            Self::SealedAuction => "sealed-auction",
        }
    }

    /// The built-in with code id `code`.
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.code() == code)
    }

    /// The state after deployment with argument `init`.
    ///
    /// # Errors
    /// [`ContractError::Malformed`] for an argument the contract does not accept.
    pub fn init(self, init: &[u8]) -> Result<State, ContractError> {
        match self {
            Self::KvStore => kv::init(init),
            Self::SealedAuction => auction::init(init),
        }
    }

    /// Runs `call` by `sender` and returns the reply body. Deterministic; on error the state is
    /// unchanged: each contract decodes and checks the whole call before its one write.
    ///
    /// # Errors
    /// A [`ContractError`], which becomes the reply.
    pub fn call(
        self,
        state: &mut State,
        sender: &IdentityPublicKey,
        call: &[u8],
    ) -> Result<Vec<u8>, ContractError> {
        match self {
            Self::KvStore => kv::call(state, sender, call),
            Self::SealedAuction => auction::call(state, sender, call),
        }
    }
}
