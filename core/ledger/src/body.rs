//! Entry kinds and their bodies (PROTOCOL §16.3). Each body has exactly one encoding: decoding
//! refuses trailing bytes, unsorted sets and non-canonical text.

use core::fmt;
use std::net::SocketAddr;

use keyward_crypto::{ChannelPublicKey, DecodeError, Reader, Writer};
use keyward_enclave::{Evidence, EvidenceError};

use keyward_hierarchy::ContractPublicKeys;

use crate::cluster::{ClusterAddMember, ClusterCreate, ClusterKeyPublish};
use crate::committee::{SignCommit, SignShare};
use crate::contract::{ContractCommand, ContractDeploy, decode_keys, encode_keys};
use crate::council::{Approval, Proposal};
use crate::dkg::{Complaint, DkgCommit, DkgDeal, ReshareDeal, Sharing};
use crate::epoch::{EpochAccept, EpochCreate, EpochHandoff};
use crate::genesis::GenesisConfig;
use crate::partial::PartialReport;
use crate::result::{MisbehaviourReport, ResultDigest};

/// Longest encoded attestation evidence in a registration: what a `var16` holds, room for the
/// longest vendor envelope (a DCAP quote with its collateral).
pub const MAX_EVIDENCE_LEN: usize = u16::MAX as usize;
const _: () = assert!(keyward_enclave::vendor::MAX_ENVELOPE_LEN <= MAX_EVIDENCE_LEN);
/// Longest endpoint text (`ip:port`).
pub const MAX_ENDPOINT_LEN: usize = 64;

/// What an entry does. The code is the byte on the wire; codes are never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// The first entry: council, threshold, parameters and evidence policies.
    Genesis,
    /// A gatekeeper registers itself.
    GatekeeperRegister,
    /// A gatekeeper leaves.
    GatekeeperDeregister,
    /// A worker registers itself.
    WorkerRegister,
    /// A worker leaves.
    WorkerDeregister,
    /// A gatekeeper creates an epoch and seals its secret to the founding committee.
    EpochCreate,
    /// A holder hands epoch secrets to another admitted gatekeeper.
    EpochHandoff,
    /// A gatekeeper accepts the epoch secrets handed to it.
    EpochAccept,
    /// A council member forms a cluster of workers.
    ClusterCreate,
    /// A cluster's owner adds a worker.
    ClusterAddMember,
    /// A holder publishes a cluster's public key for its current key context.
    ClusterKeyPublish,
    /// A user deploys a contract to a cluster.
    ContractDeploy,
    /// A worker publishes a contract's certified public keys.
    ContractKeysPublish,
    /// A user sends a contract an encrypted command.
    ContractCommand,
    /// A worker publishes the digest of a result, signed with the contract's key.
    ResultDigest,
    /// A worker is reported for disagreeing with the majority, and slashed.
    MisbehaviourReport,
    /// A council member proposes an action.
    CouncilPropose,
    /// A council member approves a proposal.
    CouncilApprove,
    /// A DKG member commits to its polynomial (threshold mode).
    DkgCommit,
    /// A DKG member deals its secret parts to the other members.
    DkgDeal,
    /// A DKG member reveals a part that does not match its dealer's commitment.
    DkgComplaint,
    /// An old committee member reshares its share of an epoch to the new members.
    ReshareDeal,
    /// A new member reveals a resharing part that does not match its dealer's commitment.
    ReshareComplaint,
    /// A worker reveals a wrong partial evaluation a gatekeeper signed (threshold mode).
    PartialReport,
    /// A committee member commits to its FROST nonces for a statement (threshold mode).
    SignCommit,
    /// A chosen signer posts its FROST signature share for a statement (threshold mode).
    SignShare,
}

impl Kind {
    /// Every kind, in code order.
    pub const ALL: [Self; 26] = [
        Self::Genesis,
        Self::GatekeeperRegister,
        Self::GatekeeperDeregister,
        Self::WorkerRegister,
        Self::WorkerDeregister,
        Self::EpochCreate,
        Self::EpochHandoff,
        Self::EpochAccept,
        Self::ClusterCreate,
        Self::ClusterAddMember,
        Self::ClusterKeyPublish,
        Self::ContractDeploy,
        Self::ContractKeysPublish,
        Self::ContractCommand,
        Self::ResultDigest,
        Self::MisbehaviourReport,
        Self::CouncilPropose,
        Self::CouncilApprove,
        Self::DkgCommit,
        Self::DkgDeal,
        Self::DkgComplaint,
        Self::ReshareDeal,
        Self::ReshareComplaint,
        Self::PartialReport,
        Self::SignCommit,
        Self::SignShare,
    ];

    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            Self::Genesis => 0,
            Self::GatekeeperRegister => 1,
            Self::GatekeeperDeregister => 2,
            Self::WorkerRegister => 3,
            Self::WorkerDeregister => 4,
            Self::EpochCreate => 5,
            Self::EpochHandoff => 6,
            Self::EpochAccept => 7,
            Self::ClusterCreate => 8,
            Self::ClusterAddMember => 9,
            Self::ClusterKeyPublish => 10,
            Self::ContractDeploy => 11,
            Self::ContractKeysPublish => 12,
            Self::ContractCommand => 13,
            Self::ResultDigest => 14,
            Self::MisbehaviourReport => 15,
            Self::CouncilPropose => 16,
            Self::CouncilApprove => 17,
            Self::DkgCommit => 18,
            Self::DkgDeal => 19,
            Self::DkgComplaint => 20,
            Self::ReshareDeal => 21,
            Self::ReshareComplaint => 22,
            Self::PartialReport => 23,
            Self::SignCommit => 24,
            Self::SignShare => 25,
        }
    }

    /// The kind of a wire code, if it is known.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    /// The name used in logs and errors.
    pub fn name(self) -> &'static str {
        match self {
            Self::Genesis => "genesis",
            Self::GatekeeperRegister => "gatekeeper_register",
            Self::GatekeeperDeregister => "gatekeeper_deregister",
            Self::WorkerRegister => "worker_register",
            Self::WorkerDeregister => "worker_deregister",
            Self::EpochCreate => "epoch_create",
            Self::EpochHandoff => "epoch_handoff",
            Self::EpochAccept => "epoch_accept",
            Self::ClusterCreate => "cluster_create",
            Self::ClusterAddMember => "cluster_add_member",
            Self::ClusterKeyPublish => "cluster_key_publish",
            Self::ContractDeploy => "contract_deploy",
            Self::ContractKeysPublish => "contract_keys_publish",
            Self::ContractCommand => "contract_command",
            Self::ResultDigest => "result_digest",
            Self::MisbehaviourReport => "misbehaviour_report",
            Self::CouncilPropose => "council_propose",
            Self::CouncilApprove => "council_approve",
            Self::DkgCommit => "dkg_commit",
            Self::DkgDeal => "dkg_deal",
            Self::DkgComplaint => "dkg_complaint",
            Self::ReshareDeal => "reshare_deal",
            Self::ReshareComplaint => "reshare_complaint",
            Self::PartialReport => "partial_report",
            Self::SignCommit => "sign_commit",
            Self::SignShare => "sign_share",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A node registering itself: its attested channel key, where it serves RPC, its stake, and
/// evidence binding its identity and channel keys to the ledger's registration nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The X25519 key others encrypt to.
    pub channel: ChannelPublicKey,
    /// The node's RPC address.
    pub endpoint: SocketAddr,
    /// Declared stake, in the ledger's units.
    pub stake: u64,
    /// Attestation evidence (checked by [`crate::Genesis::verify`]).
    pub evidence: Evidence,
}

impl Registration {
    fn encode(&self, w: &mut Writer) {
        w.raw(&self.channel.0)
            .var8(self.endpoint.to_string().as_bytes())
            .u64(self.stake)
            .var16(&self.evidence.to_bytes());
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let channel = ChannelPublicKey(r.array("channel key")?);
        let text = r.var8("endpoint", MAX_ENDPOINT_LEN)?;
        let endpoint = core::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<SocketAddr>().ok().filter(|a| a.to_string() == t))
            .filter(|a| a.port() != 0 && !matches!(a, SocketAddr::V6(v6) if v6.scope_id() != 0))
            .ok_or(DecodeError::Invalid {
                field: "endpoint",
                reason: "not a canonical ip:port (PROTOCOL §16.3)",
            })?;
        let stake = r.u64("stake")?;
        let evidence =
            Evidence::from_bytes(r.var16("evidence", MAX_EVIDENCE_LEN)?).map_err(|e| match e {
                EvidenceError::Malformed(d) => d,
                _ => DecodeError::Invalid {
                    field: "evidence",
                    reason: "malformed",
                },
            })?;
        Ok(Self {
            channel,
            endpoint,
            stake,
            evidence,
        })
    }
}

/// A decoded entry body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// Kind 0.
    Genesis(Box<GenesisConfig>),
    /// Kind 1.
    GatekeeperRegister(Registration),
    /// Kind 2: empty.
    GatekeeperDeregister,
    /// Kind 3.
    WorkerRegister(Registration),
    /// Kind 4: empty.
    WorkerDeregister,
    /// Kind 5.
    EpochCreate(Box<EpochCreate>),
    /// Kind 6.
    EpochHandoff(EpochHandoff),
    /// Kind 7.
    EpochAccept(EpochAccept),
    /// Kind 8.
    ClusterCreate(ClusterCreate),
    /// Kind 9.
    ClusterAddMember(ClusterAddMember),
    /// Kind 10.
    ClusterKeyPublish(ClusterKeyPublish),
    /// Kind 11.
    ContractDeploy(ContractDeploy),
    /// Kind 12.
    ContractKeysPublish(Box<ContractPublicKeys>),
    /// Kind 13.
    ContractCommand(Box<ContractCommand>),
    /// Kind 14.
    ResultDigest(Box<ResultDigest>),
    /// Kind 15.
    MisbehaviourReport(Box<MisbehaviourReport>),
    /// Kind 16.
    CouncilPropose(Box<Proposal>),
    /// Kind 17.
    CouncilApprove(Approval),
    /// Kind 18.
    DkgCommit(Box<DkgCommit>),
    /// Kind 19.
    DkgDeal(DkgDeal),
    /// Kind 20.
    DkgComplaint(Complaint),
    /// Kind 21.
    ReshareDeal(Box<ReshareDeal>),
    /// Kind 22.
    ReshareComplaint(Complaint),
    /// Kind 23.
    PartialReport(Box<PartialReport>),
    /// Kind 24.
    SignCommit(Box<SignCommit>),
    /// Kind 25.
    SignShare(Box<SignShare>),
}

impl Body {
    /// The body's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Genesis(_) => Kind::Genesis,
            Self::GatekeeperRegister(_) => Kind::GatekeeperRegister,
            Self::GatekeeperDeregister => Kind::GatekeeperDeregister,
            Self::WorkerRegister(_) => Kind::WorkerRegister,
            Self::WorkerDeregister => Kind::WorkerDeregister,
            Self::EpochCreate(_) => Kind::EpochCreate,
            Self::EpochHandoff(_) => Kind::EpochHandoff,
            Self::EpochAccept(_) => Kind::EpochAccept,
            Self::ClusterCreate(_) => Kind::ClusterCreate,
            Self::ClusterAddMember(_) => Kind::ClusterAddMember,
            Self::ClusterKeyPublish(_) => Kind::ClusterKeyPublish,
            Self::ContractDeploy(_) => Kind::ContractDeploy,
            Self::ContractKeysPublish(_) => Kind::ContractKeysPublish,
            Self::ContractCommand(_) => Kind::ContractCommand,
            Self::ResultDigest(_) => Kind::ResultDigest,
            Self::MisbehaviourReport(_) => Kind::MisbehaviourReport,
            Self::CouncilPropose(_) => Kind::CouncilPropose,
            Self::CouncilApprove(_) => Kind::CouncilApprove,
            Self::DkgCommit(_) => Kind::DkgCommit,
            Self::DkgDeal(_) => Kind::DkgDeal,
            Self::DkgComplaint(_) => Kind::DkgComplaint,
            Self::ReshareDeal(_) => Kind::ReshareDeal,
            Self::ReshareComplaint(_) => Kind::ReshareComplaint,
            Self::PartialReport(_) => Kind::PartialReport,
            Self::SignCommit(_) => Kind::SignCommit,
            Self::SignShare(_) => Kind::SignShare,
        }
    }

    /// The body bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::Genesis(config) => config.encode(&mut w),
            Self::GatekeeperRegister(reg) | Self::WorkerRegister(reg) => reg.encode(&mut w),
            Self::GatekeeperDeregister | Self::WorkerDeregister => {}
            Self::EpochCreate(create) => create.encode(&mut w),
            Self::EpochHandoff(handoff) => handoff.encode(&mut w),
            Self::EpochAccept(accept) => accept.encode(&mut w),
            Self::ClusterCreate(create) => create.encode(&mut w),
            Self::ClusterAddMember(add) => add.encode(&mut w),
            Self::ClusterKeyPublish(publish) => publish.encode(&mut w),
            Self::ContractDeploy(deploy) => deploy.encode(&mut w),
            Self::ContractKeysPublish(keys) => encode_keys(&mut w, keys),
            Self::ContractCommand(command) => command.encode(&mut w),
            Self::ResultDigest(result) => result.encode(&mut w),
            Self::MisbehaviourReport(report) => report.encode(&mut w),
            Self::CouncilPropose(proposal) => proposal.encode(&mut w),
            Self::CouncilApprove(approval) => approval.encode(&mut w),
            Self::DkgCommit(commit) => commit.encode(&mut w),
            Self::DkgDeal(deal) => deal.encode(&mut w),
            Self::DkgComplaint(complaint) | Self::ReshareComplaint(complaint) => {
                complaint.encode(&mut w);
            }
            Self::ReshareDeal(deal) => deal.encode(&mut w),
            Self::PartialReport(report) => report.encode(&mut w),
            Self::SignCommit(commit) => commit.encode(&mut w),
            Self::SignShare(share) => share.encode(&mut w),
        }
        w.finish()
    }

    /// Decodes the body of a `kind` entry.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the field.
    pub fn decode(kind: Kind, bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let body = match kind {
            Kind::Genesis => Self::Genesis(Box::new(GenesisConfig::decode(&mut r)?)),
            Kind::GatekeeperRegister => Self::GatekeeperRegister(Registration::decode(&mut r)?),
            Kind::GatekeeperDeregister => Self::GatekeeperDeregister,
            Kind::WorkerRegister => Self::WorkerRegister(Registration::decode(&mut r)?),
            Kind::WorkerDeregister => Self::WorkerDeregister,
            Kind::EpochCreate => Self::EpochCreate(Box::new(EpochCreate::decode(&mut r)?)),
            Kind::EpochHandoff => Self::EpochHandoff(EpochHandoff::decode(&mut r)?),
            Kind::EpochAccept => Self::EpochAccept(EpochAccept::decode(&mut r)?),
            Kind::ClusterCreate => Self::ClusterCreate(ClusterCreate::decode(&mut r)?),
            Kind::ClusterAddMember => Self::ClusterAddMember(ClusterAddMember::decode(&mut r)?),
            Kind::ClusterKeyPublish => Self::ClusterKeyPublish(ClusterKeyPublish::decode(&mut r)?),
            Kind::ContractDeploy => Self::ContractDeploy(ContractDeploy::decode(&mut r)?),
            Kind::ContractKeysPublish => Self::ContractKeysPublish(Box::new(decode_keys(&mut r)?)),
            Kind::ContractCommand => {
                Self::ContractCommand(Box::new(ContractCommand::decode(&mut r)?))
            }
            Kind::ResultDigest => Self::ResultDigest(Box::new(ResultDigest::decode(&mut r)?)),
            Kind::MisbehaviourReport => {
                Self::MisbehaviourReport(Box::new(MisbehaviourReport::decode(&mut r)?))
            }
            Kind::CouncilPropose => Self::CouncilPropose(Box::new(Proposal::decode(&mut r)?)),
            Kind::CouncilApprove => Self::CouncilApprove(Approval::decode(&mut r)?),
            Kind::DkgCommit => Self::DkgCommit(Box::new(DkgCommit::decode(&mut r)?)),
            Kind::DkgDeal => Self::DkgDeal(DkgDeal::decode(&mut r)?),
            Kind::DkgComplaint => Self::DkgComplaint(Complaint::decode(&mut r, Sharing::Dkg)?),
            Kind::ReshareDeal => Self::ReshareDeal(Box::new(ReshareDeal::decode(&mut r)?)),
            Kind::ReshareComplaint => {
                Self::ReshareComplaint(Complaint::decode(&mut r, Sharing::Reshare)?)
            }
            Kind::PartialReport => Self::PartialReport(Box::new(PartialReport::decode(&mut r)?)),
            Kind::SignCommit => Self::SignCommit(Box::new(SignCommit::decode(&mut r)?)),
            Kind::SignShare => Self::SignShare(Box::new(SignShare::decode(&mut r)?)),
        };
        r.finish()?;
        Ok(body)
    }
}
