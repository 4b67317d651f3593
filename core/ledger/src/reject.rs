//! Every reason an entry is refused, each with a stable name and code (PROTOCOL §16.5). A
//! refused entry changes nothing. Codes are grouped: 20xx framing and position, 21xx nodes,
//! 22xx epochs, 23xx clusters and contracts, 24xx results, 25xx council.

use std::net::SocketAddr;

use thiserror::Error;

use keyward_crypto::DecodeError;
use keyward_enclave::{EvidenceError, Platform};

use crate::body::Kind;
use keyward_crypto::IdentityPublicKey;
use keyward_hierarchy::{ClusterId, ContractId, Epoch};

use crate::cluster::KeyContext;

use crate::entry::EntryHash;
use crate::genesis::GenesisError;

/// An identity named in a refusal, by its 32-byte encoding: small, so that refusals stay cheap
/// to return.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Named(pub [u8; 32]);

impl From<IdentityPublicKey> for Named {
    fn from(id: IdentityPublicKey) -> Self {
        Self(id.to_bytes())
    }
}

impl core::fmt::Display for Named {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&keyward_crypto::hex::to_0x(&self.0))
    }
}

impl core::fmt::Debug for Named {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Named({self})")
    }
}

/// Why an entry was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejected {
    /// The entry or its body is not well formed.
    #[error("malformed entry: {0}")]
    MalformedEntry(DecodeError),
    /// The kind code is not one this version knows.
    #[error("unknown entry kind {0}")]
    UnknownKind(u8),
    /// The author's signature does not verify.
    #[error("the author's signature does not verify")]
    BadSignature,
    /// The entry is not for the next height.
    #[error("entry is for height {found}, the next height is {expected}")]
    WrongHeight {
        /// The next height.
        expected: u64,
        /// The entry's height.
        found: u64,
    },
    /// The parent is not the hash of the entry before.
    #[error("entry's parent is {found}, the head is {expected}")]
    WrongParent {
        /// The current head.
        expected: EntryHash,
        /// The entry's parent.
        found: EntryHash,
    },
    /// The author already used this sequence number: the entry, or another one in its place,
    /// is on the ledger.
    #[error("the author already used sequence number {seq}; its next is {next}")]
    Replay {
        /// The entry's sequence number.
        seq: u64,
        /// The author's next sequence number.
        next: u64,
    },
    /// The sequence number skips ahead.
    #[error("the author skipped to sequence number {seq}; its next is {next}")]
    SequenceGap {
        /// The entry's sequence number.
        seq: u64,
        /// The author's next sequence number.
        next: u64,
    },
    /// The author may not write this kind of entry.
    #[error("a {kind} entry must be written by {needs}")]
    WrongAuthor {
        /// The entry's kind.
        kind: Kind,
        /// Who may write it.
        needs: &'static str,
    },
    /// The genesis entry does not hash to the pinned hash.
    #[error("genesis hashes to {found}, not the pinned {pinned}")]
    GenesisMismatch {
        /// The configured hash.
        pinned: EntryHash,
        /// The served genesis's hash.
        found: EntryHash,
    },
    /// The genesis breaks a rule.
    #[error("invalid genesis: {0}")]
    InvalidGenesis(#[from] GenesisError),
    /// The entry was verified for another ledger.
    #[error("entry was verified for ledger {found}, not {expected}")]
    WrongLedger {
        /// This ledger's genesis hash.
        expected: EntryHash,
        /// The genesis it was verified against.
        found: EntryHash,
    },
    /// A genesis entry after height 0.
    #[error("a ledger has exactly one genesis entry")]
    UnexpectedGenesis,
    /// The identity has registered before, in any role (identities are single-use).
    #[error("the author has already registered as a {role}")]
    AlreadyRegistered {
        /// The role it registered in.
        role: &'static str,
    },
    /// A council member cannot also be a gatekeeper or worker.
    #[error("the author is a council member and cannot register as a node")]
    RoleConflict,
    /// The registration's evidence does not satisfy the role's policy.
    #[error("evidence refused: {0}")]
    EvidenceRefused(EvidenceError),
    /// Less stake than the role needs.
    #[error("a {role} needs a stake of at least {min}, found {found}")]
    StakeTooLow {
        /// The role.
        role: &'static str,
        /// The minimum.
        min: u64,
        /// The declared stake.
        found: u64,
    },
    /// A gatekeeper's RPC address is reachable from the public internet.
    #[error("gatekeeper endpoint {0} is public; use loopback or a private address")]
    PublicGatekeeperEndpoint(SocketAddr),
    /// The gatekeeper is the last active holder of an epoch: its leaving would lose the epoch.
    #[error("the author is the last active holder of epoch {epoch}")]
    LastHolder {
        /// The epoch.
        epoch: Epoch,
    },
    /// Vendor evidence checked too long before the latest an accepted registration was
    /// checked at.
    #[error(
        "the evidence was verified at {verified_at}, more than {max_age_secs} s before the \
         ledger's time {ledger_time}"
    )]
    StaleEvidence {
        /// The evidence's verification time.
        verified_at: u64,
        /// The latest verification time of accepted vendor evidence.
        ledger_time: u64,
        /// The role policy's age limit.
        max_age_secs: u64,
    },
    /// DCAP evidence whose TCB status was computed under a lower TCB evaluation data number
    /// than accepted evidence of the same platform: its collateral predates a TCB recovery the
    /// ledger has seen.
    #[error(
        "the {platform} evidence was evaluated under TCB evaluation data number {found}, below \
         the {ledger} of accepted {platform} evidence"
    )]
    OutdatedTcbEvaluation {
        /// The evidence's platform (SGX or TDX).
        platform: Platform,
        /// The evidence's TCB evaluation data number.
        found: u32,
        /// The highest accepted for that platform.
        ledger: u32,
    },
    /// Vendor evidence verified too long before, or after, the clock of the verifier that
    /// first saw the entry ([`crate::Genesis::check_current`]).
    #[error(
        "the evidence was verified at {verified_at}, not within {max_age_secs} s before now \
         ({now})"
    )]
    EvidenceNotCurrent {
        /// The evidence's verification time.
        verified_at: u64,
        /// The verifier's clock.
        now: u64,
        /// The role policy's age limit.
        max_age_secs: u64,
    },
    /// The gatekeeper founds an epoch that has not activated yet.
    #[error("the author founds epoch {epoch}, which is not active yet")]
    EpochPending {
        /// The epoch.
        epoch: Epoch,
    },
    /// The entry creates an epoch other than the next one.
    #[error("the next epoch is {expected}, not {found}")]
    WrongEpoch {
        /// The next epoch.
        expected: Epoch,
        /// The entry's epoch.
        found: Epoch,
    },
    /// A later epoch must be the council's approved, running rotation.
    #[error("proposal {proposal} is not an approved rotation")]
    ProposalNotApproved {
        /// The proposal the entry names.
        proposal: EntryHash,
    },
    /// An epoch's committee member or secret recipient is not an active, admitted gatekeeper.
    #[error("{id} is not an active, admitted gatekeeper")]
    NotAdmitted {
        /// The identity.
        id: Named,
    },
    /// An epoch-secret envelope is not what its entry says.
    #[error("the epoch-secret envelope for {member}: {reason}")]
    BadSecretEnvelope {
        /// The member it should be for.
        member: Named,
        /// What is wrong.
        reason: &'static str,
    },
    /// The author hands over the secret of an epoch it does not hold.
    #[error("the author does not hold epoch {epoch}")]
    NotHolder {
        /// The epoch.
        epoch: Epoch,
    },
    /// The recipient already holds the epoch.
    #[error("the recipient already holds epoch {epoch}")]
    AlreadyHolder {
        /// The epoch.
        epoch: Epoch,
    },
    /// The author accepts an epoch whose secret nobody handed it.
    #[error("the author has no pending secret for epoch {epoch}")]
    NoPendingSecret {
        /// The epoch.
        epoch: Epoch,
    },
    /// A pending epoch is handed only to its founding members.
    #[error("epoch {epoch} is pending: only its founders receive it")]
    NotAFounder {
        /// The epoch.
        epoch: Epoch,
    },
    /// A new epoch must have a new MasterKey.
    #[error("the master public key is epoch {epoch}'s")]
    MasterKeyReused {
        /// The earlier epoch with that key.
        epoch: Epoch,
    },
    /// No such epoch.
    #[error("epoch {epoch} does not exist")]
    UnknownEpoch {
        /// The epoch.
        epoch: Epoch,
    },
    /// A cluster with this id exists.
    #[error("cluster {0} exists")]
    ClusterExists(ClusterId),
    /// No such cluster.
    #[error("cluster {0} does not exist")]
    UnknownCluster(ClusterId),
    /// Not an active worker.
    #[error("{id} is not an active worker")]
    NotAWorker {
        /// The identity.
        id: Named,
    },
    /// The worker is already in a cluster (a worker serves one cluster).
    #[error("worker {id} is already in a cluster")]
    AlreadyInCluster {
        /// The worker.
        id: Named,
    },
    /// The cluster would exceed the genesis's `max_cluster_size`.
    #[error("a cluster has at most {max} workers")]
    ClusterFull {
        /// The limit.
        max: u16,
    },
    /// The author is not an active worker of the contract's cluster.
    #[error("the author is not an active worker of the contract's cluster")]
    NotClusterMember,
    /// Keys for another key context than the cluster's current one.
    #[error("keys for {found}, but the current key context is {expected}")]
    StaleKeyContext {
        /// The cluster's current key context.
        expected: KeyContext,
        /// The entry's.
        found: KeyContext,
    },
    /// The author already published these keys.
    #[error("already published for this key context")]
    AlreadyPublished,
    /// A contract with this id exists.
    #[error("contract {0} exists")]
    ContractExists(ContractId),
    /// No such contract.
    #[error("contract {0} does not exist")]
    UnknownContract(ContractId),
    /// The genesis does not list this contract code.
    #[error("contract code {0} is not one the genesis allows")]
    UnknownCode(crate::CodeId),
    /// A contract cannot be deployed to a cluster without workers.
    #[error("cluster {0} has no workers")]
    EmptyCluster(ClusterId),
    /// The contract keys are certified by another key than the cluster's published one.
    #[error("the contract keys are not certified by the cluster's published key")]
    UntrustedClusterKey,
    /// The certificate's signature does not verify.
    #[error("the contract key certificate's signature does not verify")]
    BadCertificate,
    /// Other workers established other keys for this contract and key context.
    #[error("the contract's keys for this key context differ from the established ones")]
    ContractKeysMismatch,
    /// No keys are established for the contract's current key context yet.
    #[error("contract {0} has no established keys for its current key context")]
    ContractKeysMissing(ContractId),
    /// The command is not addressed to the contract's current key and context.
    #[error("the command is not addressed to the contract's current key and context")]
    WrongContractKey,
    /// The command's envelope is not what its entry says.
    #[error("command envelope: {reason}")]
    BadInputEnvelope {
        /// What is wrong.
        reason: &'static str,
    },
    /// Registered gatekeepers and workers do not deploy contracts.
    #[error("a registered gatekeeper or worker cannot deploy a contract")]
    NodeCannotDeploy,
    /// No epoch is active yet, so no key context exists.
    #[error("no epoch is active yet")]
    NoActiveEpoch,
    /// No gatekeeper has published the cluster's key for its current key context yet.
    #[error("the cluster's key for {0} is not published yet")]
    ClusterKeyMissing(KeyContext),
    /// No such command, or no established keys for the migration's context.
    #[error("the subject does not exist")]
    UnknownSubject,
    /// The author already published a digest for this subject.
    #[error("the author already published a digest for this subject")]
    DuplicateDigest,
    /// The digest is not signed by the contract's key for the subject's context.
    #[error("the digest is not signed by the contract's key")]
    BadResultSignature,
    /// No digest has a strict majority of the electorate yet.
    #[error("no digest has a strict majority of the electorate")]
    NoMajority,
    /// The accused's digest is the majority's.
    #[error("the accused's digest agrees with the majority")]
    DigestAgrees,
    /// The accused is already reported for this subject.
    #[error("the accused is already reported for this subject")]
    AlreadyReported,
    /// The accused published no digest for this subject.
    #[error("the accused published no digest for this subject")]
    NoDigest,
    /// The worker was slashed: it publishes nothing more.
    #[error("the worker was slashed")]
    WorkerSlashed,
    /// A rotation's epoch must be founded by exactly the approved committee, in order.
    #[error("the committee differs from the approved rotation's")]
    CommitteeMismatch,
    /// No such proposal.
    #[error("no such proposal")]
    UnknownProposal,
    /// The proposal's approval window has passed.
    #[error("the proposal expired at height {expired_at}")]
    ProposalExpired {
        /// Its last height.
        expired_at: u64,
    },
    /// The author already approved it.
    #[error("the author already approved this proposal")]
    AlreadyApproved,
    /// The proposal is no longer open (approved, executed or failed).
    #[error("the proposal is no longer open")]
    ProposalClosed,
    /// A ttl of 0 or over the genesis's maximum.
    #[error("a proposal's ttl is 1..={max}")]
    BadTtl {
        /// The maximum.
        max: u64,
    },
    /// The action cannot run now.
    #[error("invalid action: {reason}")]
    InvalidAction {
        /// Why.
        reason: &'static str,
    },
    /// A gatekeeper change is running (a rotation until its epoch is active; in threshold mode
    /// also a replacement or refresh until its resharing is done): no other change, and no
    /// gatekeeper leaves, until it ends.
    #[error("a rotation or resharing is in progress")]
    RotationInProgress,
    /// The entry belongs to the other key mode: a classic epoch entry in threshold mode, or a
    /// DKG entry in classic mode.
    #[error("not allowed in this key mode: {needs}")]
    WrongKeyMode {
        /// What this ledger's mode does instead.
        needs: &'static str,
    },
    /// No DKG or resharing run with this epoch and attempt is under way.
    #[error("no such DKG or resharing run {epoch}/{attempt} is under way")]
    NoDkgRun {
        /// The entry's epoch.
        epoch: Epoch,
        /// The entry's attempt.
        attempt: u16,
    },
    /// The author is not a member of the run (for a resharing deal: not an old committee member
    /// that still holds the epoch and is not excluded).
    #[error("the author is not a member of the run")]
    NotDkgMember,
    /// The entry comes at the wrong point of the run (a second commitment, a deal before every
    /// commitment, a resharing deal after the dealers are chosen, a complaint before the dealer
    /// dealt).
    #[error("out of turn in the run: {0}")]
    DkgOutOfTurn(&'static str),
    /// A DKG or resharing commitment does not verify for its author's share index.
    #[error("bad commitment: {0}")]
    BadDkgCommitment(keyward_threshold::SharingError),
    /// A part envelope is not sealed as the run requires.
    #[error("bad share-part envelope for {member}: {reason}")]
    BadSharePart {
        /// The recipient.
        member: Named,
        /// What is wrong.
        reason: &'static str,
    },
    /// A partial-evaluation report does not prove its gatekeeper wrong.
    #[error("partial report refused: {0}")]
    BadPartialReport(&'static str),
    /// A complaint does not prove its dealer wrong.
    #[error("complaint refused: {0}")]
    BadComplaint(&'static str),
    /// No signing run for this statement and attempt is under way (unknown, already certified,
    /// classic mode, or another attempt).
    #[error("no signing run for {statement}, attempt {attempt}, is under way")]
    NoSigningRun {
        /// The entry's statement.
        statement: crate::committee::Statement,
        /// The entry's attempt.
        attempt: u16,
    },
    /// The author may not take this step of the signing run: not an active member of the
    /// epoch's current committee, excluded, or (for a share) not a chosen signer.
    #[error("the author may not sign in this run: {0}")]
    NotSigner(&'static str),
    /// The entry comes at the wrong point of the signing run (a second commitment or share, a
    /// commitment after the signers are chosen, a share before).
    #[error("out of turn in the signing run: {0}")]
    SigningOutOfTurn(&'static str),
}

impl Rejected {
    /// The stable, snake_case name (metrics label, audit field, error data).
    pub fn name(&self) -> &'static str {
        self.entry().1
    }

    /// The stable error code.
    pub fn code(&self) -> i32 {
        self.entry().0
    }

    fn entry(&self) -> (i32, &'static str) {
        match self {
            Self::MalformedEntry(_) => (2001, "malformed_entry"),
            Self::UnknownKind(_) => (2002, "unknown_kind"),
            Self::BadSignature => (2003, "bad_signature"),
            Self::WrongHeight { .. } => (2004, "wrong_height"),
            Self::WrongParent { .. } => (2005, "wrong_parent"),
            Self::Replay { .. } => (2006, "replay"),
            Self::SequenceGap { .. } => (2007, "sequence_gap"),
            Self::WrongAuthor { .. } => (2008, "wrong_author"),
            Self::GenesisMismatch { .. } => (2009, "genesis_mismatch"),
            Self::InvalidGenesis(_) => (2010, "invalid_genesis"),
            Self::WrongLedger { .. } => (2011, "wrong_ledger"),
            Self::UnexpectedGenesis => (2012, "unexpected_genesis"),
            Self::AlreadyRegistered { .. } => (2101, "already_registered"),
            Self::RoleConflict => (2102, "role_conflict"),
            Self::EvidenceRefused(_) => (2103, "evidence_refused"),
            Self::StakeTooLow { .. } => (2104, "stake_too_low"),
            Self::PublicGatekeeperEndpoint(_) => (2105, "public_gatekeeper_endpoint"),
            Self::LastHolder { .. } => (2106, "last_holder"),
            Self::EpochPending { .. } => (2107, "epoch_pending"),
            Self::StaleEvidence { .. } => (2108, "stale_evidence"),
            Self::EvidenceNotCurrent { .. } => (2109, "evidence_not_current"),
            Self::OutdatedTcbEvaluation { .. } => (2110, "outdated_tcb_evaluation"),
            Self::WrongEpoch { .. } => (2201, "wrong_epoch"),
            Self::ProposalNotApproved { .. } => (2202, "proposal_not_approved"),
            Self::NotAdmitted { .. } => (2203, "not_admitted"),
            Self::BadSecretEnvelope { .. } => (2204, "bad_secret_envelope"),
            Self::NotHolder { .. } => (2205, "not_holder"),
            Self::AlreadyHolder { .. } => (2206, "already_holder"),
            Self::NoPendingSecret { .. } => (2207, "no_pending_secret"),
            Self::NotAFounder { .. } => (2211, "not_a_founder"),
            Self::MasterKeyReused { .. } => (2212, "master_key_reused"),
            Self::UnknownEpoch { .. } => (2209, "unknown_epoch"),
            Self::WrongKeyMode { .. } => (2213, "wrong_key_mode"),
            Self::NoDkgRun { .. } => (2214, "no_dkg_run"),
            Self::NotDkgMember => (2215, "not_dkg_member"),
            Self::DkgOutOfTurn(_) => (2216, "dkg_out_of_turn"),
            Self::BadDkgCommitment(_) => (2217, "bad_dkg_commitment"),
            Self::BadSharePart { .. } => (2218, "bad_share_part"),
            Self::BadComplaint(_) => (2219, "bad_complaint"),
            Self::NoSigningRun { .. } => (2220, "no_signing_run"),
            Self::NotSigner(_) => (2221, "not_signer"),
            Self::SigningOutOfTurn(_) => (2222, "signing_out_of_turn"),
            Self::ClusterExists(_) => (2301, "cluster_exists"),
            Self::UnknownCluster(_) => (2302, "unknown_cluster"),
            Self::NotAWorker { .. } => (2303, "not_a_worker"),
            Self::AlreadyInCluster { .. } => (2304, "already_in_cluster"),
            Self::ClusterFull { .. } => (2305, "cluster_full"),
            Self::NotClusterMember => (2306, "not_cluster_member"),
            Self::StaleKeyContext { .. } => (2307, "stale_key_context"),
            Self::AlreadyPublished => (2308, "already_published"),
            Self::ContractExists(_) => (2309, "contract_exists"),
            Self::UnknownContract(_) => (2310, "unknown_contract"),
            Self::UnknownCode(_) => (2311, "unknown_code"),
            Self::EmptyCluster(_) => (2312, "empty_cluster"),
            Self::UntrustedClusterKey => (2313, "untrusted_cluster_key"),
            Self::BadCertificate => (2314, "bad_certificate"),
            Self::ContractKeysMismatch => (2315, "contract_keys_mismatch"),
            Self::ContractKeysMissing(_) => (2316, "contract_keys_missing"),
            Self::WrongContractKey => (2317, "wrong_contract_key"),
            Self::BadInputEnvelope { .. } => (2318, "bad_input_envelope"),
            Self::NodeCannotDeploy => (2319, "node_cannot_deploy"),
            Self::NoActiveEpoch => (2320, "no_active_epoch"),
            Self::ClusterKeyMissing(_) => (2321, "cluster_key_missing"),
            Self::UnknownSubject => (2401, "unknown_subject"),
            Self::DuplicateDigest => (2402, "duplicate_digest"),
            Self::BadResultSignature => (2403, "bad_result_signature"),
            Self::NoMajority => (2404, "no_majority"),
            Self::DigestAgrees => (2405, "digest_agrees"),
            Self::AlreadyReported => (2406, "already_reported"),
            Self::NoDigest => (2407, "no_digest"),
            Self::WorkerSlashed => (2408, "worker_slashed"),
            Self::BadPartialReport(_) => (2409, "bad_partial_report"),
            Self::CommitteeMismatch => (2210, "committee_mismatch"),
            Self::UnknownProposal => (2501, "unknown_proposal"),
            Self::ProposalExpired { .. } => (2502, "proposal_expired"),
            Self::AlreadyApproved => (2503, "already_approved"),
            Self::ProposalClosed => (2504, "proposal_closed"),
            Self::BadTtl { .. } => (2505, "bad_ttl"),
            Self::InvalidAction { .. } => (2506, "invalid_action"),
            Self::RotationInProgress => (2507, "rotation_in_progress"),
        }
    }
}
