//! Every reason the signer refuses a request, each with a stable name and JSON-RPC error code
//! (documented in `docs/SIGNER.md`). A refusal never changes state.

use thiserror::Error;

use keyward_crypto::SolanaPubkey;

use crate::ancestry::AncestryError;
use crate::message::MessageError;
use crate::request::RequestError;
use crate::tower::TowerError;

/// Why a request was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refusal {
    /// The request itself is unacceptable (signature, service, method, encoding).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The nonce was used before by a different request.
    #[error("nonce {nonce} was already used by a different request")]
    ReplayedNonce {
        /// The nonce.
        nonce: u64,
    },
    /// The nonce is not above the last accepted one.
    #[error("nonce {nonce} is stale: the last accepted nonce is {last}")]
    StaleNonce {
        /// The nonce.
        nonce: u64,
        /// The last accepted nonce.
        last: u64,
    },
    /// No validator with this identity has registered.
    #[error("validator {0} is not registered")]
    UnknownValidator(SolanaPubkey),
    /// The validator is deregistered: it has no vote key.
    #[error("validator {0} is deregistered; register it again to sign")]
    NotRegistered(SolanaPubkey),
    /// `registerNode` names another vote account than the one registered.
    #[error("validator is registered for vote account {registered}, not {requested}")]
    VoteAccountMismatch {
        /// The registered vote account.
        registered: SolanaPubkey,
        /// The one requested.
        requested: SolanaPubkey,
    },
    /// The platform could not attest a new vote key (`registerNode`, `rotateVoteKey`): no key is
    /// made, nothing changes, and a retry with a new nonce may succeed.
    #[error(transparent)]
    Attestation(#[from] keyward_enclave::AttestFailed),
    /// The message is not a vote this validator may have signed.
    #[error(transparent)]
    Message(#[from] MessageError),
    /// The vote breaks the lockout rules.
    #[error(transparent)]
    Lockout(#[from] TowerError),
    /// The vote fails ancestor verification or the threshold rule.
    #[error(transparent)]
    Ancestry(#[from] AncestryError),
    /// The request carries evidence but no ancestry policy is configured.
    #[error("the request carries evidence, but this signer has no ancestry policy")]
    UnexpectedEvidence,
}

impl Refusal {
    /// The stable, snake_case name of the reason (metrics label, audit field, error data).
    pub fn name(&self) -> &'static str {
        self.entry().1
    }

    /// The stable JSON-RPC error code of the reason.
    pub fn code(&self) -> i32 {
        self.entry().0
    }

    /// True when the refusal must raise an alarm (metric and audit line).
    pub fn is_alarm(&self) -> bool {
        matches!(self, Self::Ancestry(e) if e.is_alarm())
    }

    fn entry(&self) -> (i32, &'static str) {
        match self {
            Self::Request(e) => match e {
                RequestError::BadSignature(_) => (1001, "bad_signature"),
                RequestError::WrongService { .. } => (1002, "wrong_service"),
                RequestError::Malformed(_) => (1004, "malformed_request"),
            },
            Self::ReplayedNonce { .. } => (1005, "replayed_nonce"),
            Self::StaleNonce { .. } => (1006, "stale_nonce"),
            Self::UnknownValidator(_) => (1101, "unknown_validator"),
            Self::NotRegistered(_) => (1102, "not_registered"),
            Self::VoteAccountMismatch { .. } => (1103, "vote_account_mismatch"),
            Self::Attestation(_) => (1104, "attestation_failed"),
            Self::Message(e) => match e {
                MessageError::TooLong { .. } => (1201, "message_too_long"),
                MessageError::Malformed(_) => (1202, "malformed_message"),
                MessageError::UnsupportedVersion(_) => (1203, "unsupported_message_version"),
                MessageError::AddressTableLookup => (1204, "address_table_lookup"),
                MessageError::DuplicateAccount(_) => (1205, "duplicate_account"),
                MessageError::VoteKeyNotSigner(_) => (1206, "vote_key_not_signer"),
                MessageError::UnexpectedSigner(_) => (1207, "unexpected_signer"),
                MessageError::ForeignInstruction { .. } => (1208, "foreign_instruction"),
                MessageError::NotAVote { .. } => (1209, "not_a_vote"),
                MessageError::NoVote => (1210, "no_vote"),
                MessageError::MultipleVotes => (1211, "multiple_votes"),
                MessageError::BadComputeBudget { .. } => (1212, "bad_compute_budget"),
                MessageError::WrongAccount { .. } => (1213, "wrong_account"),
                MessageError::WrongAccountCount { .. } => (1214, "wrong_account_count"),
            },
            Self::Lockout(e) => match e {
                TowerError::EmptySlots => (1301, "empty_slots"),
                TowerError::VoteTooOld { .. } => (1302, "vote_too_old"),
                TowerError::SlotsNotOrdered => (1303, "slots_not_ordered"),
                TowerError::TooManyVotes { .. } => (1304, "too_many_votes"),
                TowerError::RootRollBack { .. } => (1305, "root_rollback"),
                TowerError::ZeroConfirmations => (1306, "zero_confirmations"),
                TowerError::ConfirmationTooLarge { .. } => (1307, "confirmation_too_large"),
                TowerError::SlotSmallerThanRoot { .. } => (1308, "slot_smaller_than_root"),
                TowerError::ConfirmationsNotOrdered => (1309, "confirmations_not_ordered"),
                TowerError::NewVoteStateLockoutMismatch { .. } => {
                    (1310, "new_vote_state_lockout_mismatch")
                }
                TowerError::LockoutConflict { .. } => (1311, "lockout_conflict"),
                TowerError::ConfirmationRollBack { .. } => (1312, "confirmation_rollback"),
                TowerError::RootConflict { .. } => (1313, "root_conflict"),
            },
            Self::Ancestry(e) => match e {
                AncestryError::Malformed { .. } => (1401, "evidence_malformed"),
                AncestryError::BadSignature { .. } => (1402, "evidence_bad_signature"),
                AncestryError::DuplicateVoter(_) => (1403, "evidence_duplicate_voter"),
                AncestryError::UnknownVoter(_) => (1404, "evidence_unknown_voter"),
                AncestryError::PreviousVoteMissing { .. } => (1405, "previous_vote_missing"),
                AncestryError::InitialVoteFreeze { .. } => (1406, "initial_vote_freeze"),
                AncestryError::AncestorMismatch { .. } => (1407, "ancestor_mismatch"),
                AncestryError::ThresholdNotMet { .. } => (1408, "threshold_not_met"),
            },
            Self::UnexpectedEvidence => (1409, "unexpected_evidence"),
        }
    }
}
