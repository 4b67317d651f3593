//! The registry: the state every node computes from the entries, one verified entry at a time.
//!
//! [`Registry::apply`] runs a pure check that returns what the entry will change (an `Effect`),
//! then commits that effect, which cannot fail. So a refused entry changes nothing, by
//! construction. Only ordered maps are used and there is no clock: the same entries give the
//! same registry on every node.

mod clusters;
mod contracts;
mod council;
mod dkg;
mod epochs;
mod nodes;
mod partials;
mod reshare;
mod results;
mod signing;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use keyward_crypto::{ChannelPublicKey, IdentityPublicKey};
use keyward_hierarchy::{ClusterId, ContractId, Epoch, EpochChecksum, Generation};

use crate::cluster::KeyContext;
use crate::result::Subject;

use crate::body::{Body, Kind};
use crate::entry::{Entry, EntryHash, VendorStamp, VerifiedEntry};
use crate::genesis::Genesis;
use crate::reject::Rejected;

pub use clusters::{Cluster, ProvisionError};
pub use contracts::{Command, Contract};
pub use council::{ProposalState, ProposalStatus};
pub use dkg::DkgRun;
pub use epochs::{EpochState, EpochStatus};
pub use reshare::{Change, ReshareRun};
pub use signing::SigningRun;

/// What a node is. Identities are single-use: one identity, one role, for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Holds MasterKey secrets and provisions ClusterKeys.
    Gatekeeper {
        /// Admitted to hold epoch secrets: one of the genesis's bootstrap gatekeepers (later
        /// also by council decision).
        admitted: bool,
    },
    /// Runs contracts.
    Worker,
}

impl Role {
    /// The role's name: `"gatekeeper"` or `"worker"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gatekeeper { .. } => "gatekeeper",
            Self::Worker => "worker",
        }
    }
}

/// Whether a node is still part of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Registered and not gone.
    Active,
    /// Left at this height.
    Deregistered {
        /// The height of the entry that removed it.
        at: u64,
    },
    /// Removed by the council (or by a rotation's end) at this height.
    Removed {
        /// The height of the entry that removed it.
        at: u64,
    },
}

/// A registered gatekeeper or worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its role.
    pub role: Role,
    /// Its attested X25519 channel key.
    pub channel: ChannelPublicKey,
    /// Its RPC address.
    pub endpoint: SocketAddr,
    /// Its stake: declared at registration, less what slashing took.
    pub stake: u64,
    /// Slashed at least once. A worker gets no more keys and its digests and key publications
    /// are refused; a gatekeeper (slashed for a wrong partial) stays in its committees until the
    /// council replaces it.
    pub slashed: bool,
    /// The measurement its evidence attested.
    pub measurement: [u8; 32],
    /// For vendor evidence, the time its chain was checked at (UNIX seconds), as the envelope
    /// says: whoever made the envelope chose it.
    pub attested_at: Option<u64>,
    /// For vendor evidence, what the vendor signed into it that the rules track: the latest
    /// time it signed (none for SEV-SNP), which moves the ledger's clock, and the TCB evaluation
    /// data number (DCAP).
    pub vendor: VendorStamp,
    /// The height it registered at.
    pub registered_at: u64,
    /// Whether it is still active.
    pub status: Status,
}

impl Node {
    /// Registered and not gone.
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }
}

/// Something an applied entry changed, for hosts to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A node registered.
    Registered {
        /// Its identity.
        id: IdentityPublicKey,
        /// Its role (with admission, for a gatekeeper).
        role: Role,
    },
    /// A node left.
    Deregistered {
        /// Its identity.
        id: IdentityPublicKey,
        /// Its role.
        role: Role,
    },
    /// The council removed a node, or a rotation's end removed a gatekeeper outside the new
    /// committee.
    Removed {
        /// Its identity.
        id: IdentityPublicKey,
        /// Its role.
        role: Role,
    },
    /// The council dropped a pending epoch.
    EpochAbandoned {
        /// The epoch.
        epoch: Epoch,
    },
    /// An epoch was created; it is pending until its founding committee holds it.
    EpochCreated {
        /// The epoch.
        epoch: Epoch,
    },
    /// An epoch secret waits for `recipient` to open, seal and accept it.
    SecretPending {
        /// The epoch.
        epoch: Epoch,
        /// The gatekeeper it is sealed to.
        recipient: IdentityPublicKey,
    },
    /// A gatekeeper now holds an epoch's secret.
    SecretAccepted {
        /// The epoch.
        epoch: Epoch,
        /// The gatekeeper.
        holder: IdentityPublicKey,
    },
    /// An epoch became the current one; the one before it is retained. Every cluster's key
    /// context changed.
    EpochActivated {
        /// The epoch.
        epoch: Epoch,
    },
    /// A cluster was formed or its membership changed; a new generation if a worker left.
    ClusterChanged {
        /// The cluster.
        cluster: ClusterId,
        /// Its current generation.
        generation: Generation,
    },
    /// A cluster's key for a key context was published.
    ClusterKeyPublished {
        /// The cluster.
        cluster: ClusterId,
        /// The key context.
        context: KeyContext,
    },
    /// A contract was deployed.
    ContractDeployed {
        /// The contract.
        contract: ContractId,
        /// Its cluster.
        cluster: ClusterId,
    },
    /// The first worker published a contract's keys for a key context; users may encrypt to it.
    ContractKeysEstablished {
        /// The contract.
        contract: ContractId,
        /// The key context.
        context: KeyContext,
    },
    /// A command was queued for a contract's cluster to execute.
    CommandQueued {
        /// The command id: its entry's hash.
        id: EntryHash,
        /// The contract.
        contract: ContractId,
    },
    /// A worker published its result digest.
    DigestPublished {
        /// What about.
        subject: Subject,
        /// The worker.
        worker: IdentityPublicKey,
    },
    /// A council member proposed something.
    Proposed {
        /// The proposal (its entry hash).
        proposal: EntryHash,
    },
    /// A proposal reached its threshold and ran.
    ProposalExecuted {
        /// The proposal.
        proposal: EntryHash,
    },
    /// A rotation (or, in threshold mode, a replacement or refresh) was approved and runs: its
    /// committee is admitted, and the new epoch is created or the epochs are reshared.
    RotationApproved {
        /// The proposal.
        proposal: EntryHash,
    },
    /// A proposal reached its threshold when its action was no longer valid.
    ProposalFailed {
        /// The proposal.
        proposal: EntryHash,
    },
    /// A DKG run (threshold mode) started: its members may commit; or a resharing run started:
    /// the epoch's old committee may deal.
    RunStarted {
        /// What it shares, the epoch and the attempt.
        run: crate::dkg::RunId,
    },
    /// A resharing run chose its dealers: the new members may open their parts and accept.
    DealersChosen {
        /// The run.
        run: crate::dkg::RunId,
    },
    /// A scheduled refresh is done: every epoch's shares are new.
    SharesRefreshed,
    /// A resharing run is done: the epoch's shares are now the new committee's, and the old
    /// ones are useless.
    Reshared {
        /// The epoch.
        epoch: Epoch,
    },
    /// An upheld complaint excluded a dealer; its attempt is abandoned.
    DealerExcluded {
        /// The abandoned attempt.
        run: crate::dkg::RunId,
        /// The excluded dealer.
        dealer: IdentityPublicKey,
    },
    /// Too few members remain for the threshold: the epoch's DKG cannot complete.
    DkgFailed {
        /// The epoch.
        epoch: Epoch,
    },
    /// A gatekeeper was slashed for a wrong partial evaluation it signed (threshold mode).
    GatekeeperSlashed {
        /// The gatekeeper.
        gatekeeper: IdentityPublicKey,
        /// The stake it lost.
        amount: u64,
        /// The request it answered wrongly.
        request: keyward_hierarchy::ClusterKeyRequest,
    },
    /// The committee signed a statement: its certificate is on the ledger (threshold mode).
    CommitteeSigned {
        /// What it signed.
        statement: crate::committee::Statement,
    },
    /// A gatekeeper was slashed for a signature share that does not verify; the signing run
    /// restarts without it.
    SignerSlashed {
        /// The gatekeeper.
        signer: IdentityPublicKey,
        /// The stake it lost.
        amount: u64,
        /// What the run signs.
        statement: crate::committee::Statement,
    },
    /// A worker was slashed for disagreeing with the majority.
    Slashed {
        /// The worker.
        worker: IdentityPublicKey,
        /// The stake it lost.
        amount: u64,
        /// Where it disagreed.
        subject: Subject,
    },
}

/// The outcome of an applied entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its height.
    pub height: u64,
    /// Its hash: the new head.
    pub hash: EntryHash,
    /// Its kind.
    pub kind: Kind,
    /// Its author.
    pub author: IdentityPublicKey,
    /// What it changed.
    pub events: Vec<Event>,
}

/// What a checked entry will change. Produced by the pure check, consumed by the infallible
/// commit.
enum Effect {
    Register(Node),
    Deregister,
    CreateEpoch(Box<EpochState>),
    Handoff(crate::epoch::EpochHandoff),
    Accept(crate::epoch::EpochAccept),
    CreateCluster(crate::cluster::ClusterCreate),
    AddMember(crate::cluster::ClusterAddMember),
    PublishClusterKey(crate::cluster::ClusterKeyPublish),
    Deploy(crate::contract::ContractDeploy),
    PublishContractKeys(Box<keyward_hierarchy::ContractPublicKeys>),
    Command(Box<Command>),
    Digest {
        result: Box<crate::result::ResultDigest>,
        electorate: BTreeSet<IdentityPublicKey>,
    },
    Slash {
        report: Box<crate::result::MisbehaviourReport>,
        amount: u64,
    },
    Propose(Box<crate::council::Proposal>),
    Approve {
        proposal: EntryHash,
        /// `None` below the threshold; at it, whether the action can still run.
        outcome: Option<Result<(), Box<Rejected>>>,
    },
    DkgCommit(
        keyward_threshold::ShareIndex,
        Box<keyward_threshold::DkgCommitment>,
    ),
    DkgDeal {
        dealer: keyward_threshold::ShareIndex,
        parts: Vec<keyward_crypto::Envelope>,
        /// The pending epoch the last deal creates.
        created: Option<Box<EpochState>>,
    },
    DkgComplaint(IdentityPublicKey),
    ReshareDeal {
        dealer: keyward_threshold::ShareIndex,
        deal: Box<crate::dkg::ReshareDeal>,
        /// The new committee the last needed deal fixes.
        chosen: Option<Box<keyward_threshold::Committee>>,
    },
    ReshareComplaint(crate::dkg::RunId, IdentityPublicKey),
    PartialReport(Box<crate::partial::PartialReport>, u64),
    SignCommit(
        Box<crate::committee::SignCommit>,
        keyward_threshold::ShareIndex,
    ),
    SignShare {
        share: Box<crate::committee::SignShare>,
        index: keyward_threshold::ShareIndex,
        /// The aggregation the last share triggers.
        outcome: Option<signing::Outcome>,
    },
}

/// A reported partial: (gatekeeper, epoch, cluster, generation, verification share).
type PartialReportKey = (IdentityPublicKey, Epoch, ClusterId, Generation, [u8; 32]);

/// The registry state after the entries applied so far.
///
/// Guarantees: it changes only through [`Registry::apply`], which either applies a whole entry
/// or refuses it and changes nothing; it holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    genesis: Arc<Genesis>,
    height: u64,
    head: EntryHash,
    next_seq: BTreeMap<IdentityPublicKey, u64>,
    nodes: BTreeMap<IdentityPublicKey, Node>,
    /// Every identity ever registered as a gatekeeper (in `nodes` too): a network has a few
    /// gatekeepers and may have 100,000 workers.
    gatekeepers: BTreeSet<IdentityPublicKey>,
    epochs: Vec<EpochState>,
    current: Option<Epoch>,
    clusters: BTreeMap<ClusterId, Cluster>,
    cluster_of: BTreeMap<IdentityPublicKey, ClusterId>,
    contracts: BTreeMap<ContractId, Contract>,
    commands: BTreeMap<EntryHash, Command>,
    digests: BTreeMap<Subject, results::Digests>,
    reports: BTreeSet<(Subject, IdentityPublicKey)>,
    proposals: BTreeMap<EntryHash, ProposalState>,
    rotation: Option<EntryHash>,
    /// Master public keys of abandoned epochs: they may have reached gatekeepers, so they are
    /// never used again.
    abandoned_keys: BTreeSet<[u8; 32]>,
    /// The DKG run under way (threshold mode).
    dkg: Option<DkgRun>,
    /// The resharing runs under way, one per epoch (threshold mode).
    reshares: BTreeMap<Epoch, ReshareRun>,
    /// The change whose resharing runs (threshold mode).
    resharing: Option<Change>,
    /// The height at which the shares last changed (an epoch activated, or a resharing ended or
    /// was abandoned): a scheduled refresh counts from it.
    shares_changed_at: u64,
    /// Wrong partial evaluations reported.
    partial_reports: BTreeSet<PartialReportKey>,
    /// The committee signing runs under way (threshold mode).
    signing: BTreeMap<crate::committee::Statement, SigningRun>,
    /// The committee's certificates (threshold mode).
    certificates: BTreeMap<crate::committee::Statement, keyward_threshold::CommitteeSignature>,
    /// The latest time a vendor signed into the evidence of an accepted registration (UNIX
    /// seconds; [`VendorStamp::signed_at`]): the ledger's only clock. It never goes back, and
    /// never ahead of a time the vendor signed, whatever `verified_at` an envelope claims.
    attested_until: u64,
    /// The highest TCB evaluation data number of accepted vendor evidence, per platform
    /// ([`VendorStamp::tcb_evaluation`]): evidence evaluated under a lower one is refused. It
    /// never goes back.
    tcb_evaluations: BTreeMap<keyward_enclave::Platform, u32>,
}

impl Registry {
    /// The registry after the genesis entry `entry`, which must hash to `pinned`.
    ///
    /// # Errors
    /// As [`Genesis::from_entry`].
    pub fn from_genesis(entry: &Entry, pinned: &EntryHash) -> Result<Self, Rejected> {
        let genesis = Genesis::from_entry(entry, pinned)?;
        Ok(Self {
            height: 1,
            head: genesis.hash(),
            next_seq: BTreeMap::from([(genesis.author(), 1)]),
            nodes: BTreeMap::new(),
            gatekeepers: BTreeSet::new(),
            epochs: Vec::new(),
            current: None,
            clusters: BTreeMap::new(),
            cluster_of: BTreeMap::new(),
            contracts: BTreeMap::new(),
            commands: BTreeMap::new(),
            digests: BTreeMap::new(),
            reports: BTreeSet::new(),
            proposals: BTreeMap::new(),
            rotation: None,
            abandoned_keys: BTreeSet::new(),
            dkg: None,
            reshares: BTreeMap::new(),
            resharing: None,
            shares_changed_at: 0,
            partial_reports: BTreeSet::new(),
            signing: BTreeMap::new(),
            certificates: BTreeMap::new(),
            attested_until: 0,
            tcb_evaluations: BTreeMap::new(),
            genesis,
        })
    }

    /// Applies `entry`, or refuses it and changes nothing.
    ///
    /// # Errors
    /// The first rule the entry breaks, checked in this order: the ledger it was verified for,
    /// its height, parent and sequence number, then the rules of its kind.
    pub fn apply(&mut self, entry: VerifiedEntry) -> Result<Applied, Rejected> {
        let effect = self.check(&entry)?;
        Ok(self.commit(entry, effect))
    }

    /// Whether [`Registry::apply`] would accept `entry` now, without applying it (and without
    /// copying the registry to find out).
    ///
    /// # Errors
    /// The [`Rejected`] reason `apply` would return.
    pub fn admits(&self, entry: &VerifiedEntry) -> Result<(), Rejected> {
        self.check(entry).map(|_| ())
    }

    fn check(&self, v: &VerifiedEntry) -> Result<Effect, Rejected> {
        if v.genesis() != self.genesis.hash() {
            return Err(Rejected::WrongLedger {
                expected: self.genesis.hash(),
                found: v.genesis(),
            });
        }
        let entry = v.entry();
        let position = entry.position();
        if position.height != self.height {
            return Err(Rejected::WrongHeight {
                expected: self.height,
                found: position.height,
            });
        }
        if position.parent != self.head {
            return Err(Rejected::WrongParent {
                expected: self.head,
                found: position.parent,
            });
        }
        let author = entry.author();
        let next = self.next_seq(&author);
        if position.seq < next {
            return Err(Rejected::Replay {
                seq: position.seq,
                next,
            });
        }
        if position.seq > next {
            return Err(Rejected::SequenceGap {
                seq: position.seq,
                next,
            });
        }
        match v.body() {
            Body::GatekeeperRegister(reg) => self.check_register(author, reg, true, v.vendor()),
            Body::WorkerRegister(reg) => self.check_register(author, reg, false, v.vendor()),
            Body::GatekeeperDeregister => self.check_deregister(author, Kind::GatekeeperDeregister),
            Body::WorkerDeregister => self.check_deregister(author, Kind::WorkerDeregister),
            Body::EpochCreate(create) => self.check_create(author, create),
            Body::EpochHandoff(handoff) => self.check_handoff(author, handoff),
            Body::EpochAccept(accept) => self.check_accept(author, accept),
            Body::ClusterCreate(create) => self.check_cluster_create(author, create),
            Body::ClusterAddMember(add) => self.check_add_member(author, add),
            Body::ClusterKeyPublish(publish) => self.check_cluster_key(author, publish),
            Body::ContractDeploy(deploy) => self.check_deploy(author, deploy),
            Body::ContractKeysPublish(keys) => self.check_contract_keys(author, keys),
            Body::ContractCommand(command) => self.check_command(author, command),
            Body::ResultDigest(result) => self.check_digest(author, result),
            Body::MisbehaviourReport(report) => self.check_report(author, report),
            Body::CouncilPropose(proposal) => self.check_propose(author, proposal),
            Body::CouncilApprove(approval) => self.check_approve(author, *approval),
            Body::DkgCommit(commit) => self.check_dkg_commit(author, commit),
            Body::DkgDeal(deal) => self.check_dkg_deal(author, deal),
            Body::DkgComplaint(complaint) => self.check_dkg_complaint(author, complaint),
            Body::ReshareDeal(deal) => self.check_reshare_deal(author, deal),
            Body::ReshareComplaint(complaint) => self.check_reshare_complaint(author, complaint),
            Body::PartialReport(report) => self.check_partial_report(author, report),
            Body::SignCommit(commit) => self.check_sign_commit(author, commit),
            Body::SignShare(share) => self.check_sign_share(author, share),
            Body::Genesis(_) => Err(Rejected::UnexpectedGenesis),
        }
    }

    fn commit(&mut self, v: VerifiedEntry, effect: Effect) -> Applied {
        let entry = v.into_entry();
        let author = entry.author();
        let height = self.height;
        let mut events = match effect {
            Effect::Register(node) => {
                let mut events = self.commit_register(author, node);
                events.extend(self.start_dkg_if_due());
                events
            }
            Effect::Deregister => self.commit_deregister(author, height),
            Effect::CreateEpoch(state) => self.commit_create(author, *state),
            Effect::Handoff(handoff) => self.commit_handoff(author, handoff),
            Effect::Accept(accept) => self.commit_accept(author, &accept),
            Effect::CreateCluster(create) => self.commit_cluster_create(author, create),
            Effect::AddMember(add) => self.commit_add_member(add),
            Effect::PublishClusterKey(publish) => self.commit_cluster_key(publish),
            Effect::Deploy(deploy) => self.commit_deploy(deploy),
            Effect::PublishContractKeys(keys) => self.commit_contract_keys(author, *keys),
            Effect::Command(command) => self.commit_command(entry.hash(), *command),
            Effect::Digest { result, electorate } => {
                self.commit_digest(author, *result, electorate)
            }
            Effect::Slash { report, amount } => self.commit_slash(*report, amount),
            Effect::Propose(proposal) => self.commit_propose(author, entry.hash(), *proposal),
            Effect::Approve { proposal, outcome } => self.commit_approve(author, proposal, outcome),
            Effect::DkgCommit(index, commitment) => self.commit_dkg_commit(index, *commitment),
            Effect::DkgDeal {
                dealer,
                parts,
                created,
            } => self.commit_dkg_deal(dealer, parts, created),
            Effect::DkgComplaint(dealer) => self.commit_dkg_complaint(dealer),
            Effect::ReshareDeal {
                dealer,
                deal,
                chosen,
            } => self.commit_reshare_deal(dealer, *deal, chosen),
            Effect::ReshareComplaint(run, dealer) => self.commit_reshare_complaint(run, dealer),
            Effect::PartialReport(report, amount) => self.commit_partial_report(*report, amount),
            Effect::SignCommit(commit, index) => self.commit_sign_commit(*commit, index),
            Effect::SignShare {
                share,
                index,
                outcome,
            } => self.commit_sign_share(*share, index, outcome),
        };
        events.extend(self.refresh_if_due());
        self.height += 1;
        self.head = entry.hash();
        self.next_seq.insert(author, entry.position().seq + 1);
        Applied {
            height,
            hash: entry.hash(),
            kind: entry.kind(),
            author,
            events,
        }
    }

    /// The verified genesis, to verify entries against (on any thread).
    pub fn genesis(&self) -> &Arc<Genesis> {
        &self.genesis
    }

    /// The height the next entry must have.
    pub fn next_height(&self) -> u64 {
        self.height
    }

    /// The hash of the last applied entry: the next entry's parent.
    pub fn head(&self) -> EntryHash {
        self.head
    }

    /// The sequence number `author`'s next entry must have.
    pub fn next_seq(&self, author: &IdentityPublicKey) -> u64 {
        self.next_seq.get(author).copied().unwrap_or(0)
    }

    /// The node registered as `id`, active or not.
    pub fn node(&self, id: &IdentityPublicKey) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// The registered node whose key is encoded as `key`, with its key: found by encoding, so a
    /// key from the network is never decompressed just to be looked up.
    pub fn node_by_encoding(&self, key: &[u8; 32]) -> Option<(&IdentityPublicKey, &Node)> {
        self.nodes.get_key_value(key)
    }

    /// Every registered node, in identity order.
    pub fn nodes(&self) -> impl Iterator<Item = (&IdentityPublicKey, &Node)> {
        self.nodes.iter()
    }

    /// Every node registered as a gatekeeper, active or not, in identity order; unlike
    /// [`Registry::nodes`], its cost does not grow with the number of workers.
    pub fn gatekeepers(&self) -> impl Iterator<Item = (&IdentityPublicKey, &Node)> {
        self.gatekeepers
            .iter()
            .filter_map(|id| self.nodes.get_key_value(id))
    }

    /// The current epoch: the last one activated.
    pub fn current_epoch(&self) -> Option<Epoch> {
        self.current
    }

    /// Epoch `epoch`'s state, pending, active or retained.
    pub fn epoch(&self, epoch: Epoch) -> Option<&EpochState> {
        usize::try_from(epoch.0)
            .ok()
            .and_then(|i| self.epochs.get(i))
    }

    /// Every epoch, from 0.
    pub fn epochs(&self) -> &[EpochState] {
        &self.epochs
    }

    /// The latest epoch checksum: the chain's genesis value before epoch 0. With the epochs'
    /// records it passes `keyward_hierarchy::verify_chain` by construction.
    pub fn checksum(&self) -> EpochChecksum {
        self.epochs.last().map_or_else(
            || EpochChecksum::genesis(&self.genesis.config().chain),
            EpochState::checksum,
        )
    }
}
