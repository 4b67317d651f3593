//! The genesis entry (kind 0): who the council is, how many of them must approve, the ledger's
//! parameters and the evidence each role must present (PROTOCOL §16.2). Nodes pin its hash in
//! their configuration; without the pin, a ledger server could serve another genesis with a
//! council of its own.

use std::collections::BTreeSet;
use std::sync::Arc;

use thiserror::Error;

use keyward_crypto::{ChainId, DecodeError, IdentityPublicKey, Reader, Writer};

use crate::codec::{ascending, text};
use keyward_enclave::{BoundKey, EvidencePolicy, TcbStatus};

use crate::body::{Body, Kind, Registration};
use crate::entry::{Entry, EntryHash, VendorStamp, VerifiedEntry};
use crate::registry::Role;
use crate::reject::Rejected;

keyward_crypto::id_type!(
    CodeId,
    "contract code",
    "The name of a built-in contract a deployment may run."
);

/// Most council members.
pub const MAX_COUNCIL: usize = 64;
/// Most contract codes a genesis allows.
pub const MAX_CODES: usize = 16;
/// Largest cluster size a genesis may set.
pub const MAX_CLUSTER_SIZE: u16 = 1024;

/// The ledger's numeric parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The first this-many gatekeepers to register are admitted without a council decision.
    pub bootstrap_gatekeepers: u16,
    /// Least stake a gatekeeper registers with; more than `min_worker_stake`.
    pub min_gatekeeper_stake: u64,
    /// Least stake a worker registers with.
    pub min_worker_stake: u64,
    /// Share of its stake a worker loses when slashed, in basis points (1..=10000).
    pub slash_bps: u16,
    /// Longest proposal lifetime, in entries (at least 1).
    pub max_proposal_ttl: u64,
    /// Most workers in a cluster (1..=[`MAX_CLUSTER_SIZE`]).
    pub max_cluster_size: u16,
    /// How many gatekeepers it takes to use a MasterKey: 1 is classic mode (each holder has the
    /// whole key); `t ≥ 2` is threshold mode (each committee member holds a share, made by a DKG
    /// on the ledger). At most `bootstrap_gatekeepers` and [`crate::epoch::MAX_COMMITTEE`].
    pub key_threshold: u16,
    /// Threshold mode: every epoch's shares are refreshed (reshared to the same committee) once
    /// this many entries have passed since they last changed; 0 (the default) refreshes only on
    /// council request. Otherwise at least [`MIN_REFRESH_INTERVAL`]; must be 0 in classic mode.
    pub refresh_interval: u64,
}

/// The shortest scheduled refresh interval, in entries: a refresh itself takes a few entries per
/// gatekeeper and epoch, and blocks gatekeeper changes while it runs.
pub const MIN_REFRESH_INTERVAL: u64 = 64;

impl Default for Params {
    /// Devnet values: three bootstrap gatekeepers, gatekeepers stake ten times what workers do,
    /// a 10 % slash.
    fn default() -> Self {
        Self {
            bootstrap_gatekeepers: 3,
            min_gatekeeper_stake: 10_000,
            min_worker_stake: 1_000,
            slash_bps: 1_000,
            max_proposal_ttl: 10_000,
            max_cluster_size: 64,
            key_threshold: 1,
            refresh_interval: 0,
        }
    }
}

/// The body of the genesis entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisConfig {
    /// The network's id; the epoch checksum chain starts from it.
    pub chain: ChainId,
    /// Council members. The genesis author must be one of them.
    pub council: BTreeSet<IdentityPublicKey>,
    /// Approvals a proposal needs (1..=council size). [`GenesisConfig::majority`] is the default.
    pub threshold: u16,
    /// Numeric parameters.
    pub params: Params,
    /// The contract codes deployments may name (1..=[`MAX_CODES`]).
    pub contract_codes: BTreeSet<CodeId>,
    /// What gatekeepers' evidence must satisfy: at least as strict as `worker_policy`.
    pub gatekeeper_policy: EvidencePolicy,
    /// What workers' evidence must satisfy.
    pub worker_policy: EvidencePolicy,
}

/// Why a genesis is invalid.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenesisError {
    /// Not at height 0 with a zero parent and sequence number 0.
    #[error("genesis must be at height 0 with a zero parent and sequence number 0")]
    Position,
    /// The author is not a council member.
    #[error("the genesis author is not a council member")]
    AuthorNotInCouncil,
    /// No council members, or more than [`MAX_COUNCIL`].
    #[error("the council must have 1 to {MAX_COUNCIL} members")]
    CouncilSize,
    /// The threshold is 0 or above the council size.
    #[error("the threshold {threshold} is not between 1 and the council size {council}")]
    Threshold {
        /// The threshold.
        threshold: u16,
        /// The council size.
        council: usize,
    },
    /// A parameter is out of its range.
    #[error("parameter {0} is out of range")]
    Param(&'static str),
    /// Gatekeepers would not need more stake than workers.
    #[error("min_gatekeeper_stake must exceed min_worker_stake")]
    StakeOrder,
    /// No contract codes, or more than [`MAX_CODES`].
    #[error("a genesis names 1 to {MAX_CODES} contract codes")]
    Codes,
    /// The gatekeeper policy accepts evidence the worker policy refuses.
    #[error("the gatekeeper evidence policy must be at least as strict as the worker policy")]
    WeakGatekeeperPolicy,
    /// A policy lists more than [`keyward_enclave::MAX_POLICY_ENTRIES`] distinct measurements,
    /// platform keys or TPM keys, or has a vendor part with no platform or a measurement over
    /// 64 bytes.
    #[error(
        "the {0} evidence policy lists more than {max} measurements, platform keys or TPM keys, \
         or its vendor part names no platform or a measurement over 64 bytes",
        max = keyward_enclave::MAX_POLICY_ENTRIES
    )]
    PolicyTooLong(&'static str),
    /// The gatekeeper policy's vendor part accepts a TCB status below `UpToDate`, or evidence
    /// with no TCB status: gatekeepers hold the MasterKey and need the top confidence level.
    #[error(
        "the gatekeeper policy's vendor part must accept only TCB status UpToDate and no unrated \
         evidence"
    )]
    GatekeeperVendorNotStrict,
    /// The gatekeeper policy's vendor part names only platforms whose evidence carries no TCB
    /// status (Nitro, SEV-SNP): gatekeepers refuse unrated evidence, so that part admits no
    /// gatekeeper (its dev and TPM parts still may).
    #[error(
        "the gatekeeper policy's vendor part names only platforms whose evidence is unrated \
         (nitro, sev-snp), which gatekeepers refuse, so it admits no gatekeeper: name sgx or tdx \
         there (and in the worker policy's vendor part), or remove the gatekeeper vendor part"
    )]
    GatekeeperVendorUnrated,
}

impl GenesisConfig {
    /// More than half of `council`: the default threshold.
    pub fn majority(council: usize) -> u16 {
        u16::try_from(council / 2 + 1).unwrap_or(u16::MAX)
    }

    /// Appends the encoding.
    ///
    /// # Panics
    /// If the council has more than [`MAX_COUNCIL`] members or there are more than
    /// [`MAX_CODES`] codes; [`GenesisConfig::validate`] refuses both.
    pub fn encode(&self, w: &mut Writer) {
        w.var8(self.chain.as_str().as_bytes());
        w.u16(u16::try_from(self.council.len()).expect("validated council size"));
        for member in &self.council {
            w.raw(&member.to_bytes());
        }
        let p = &self.params;
        w.u16(self.threshold)
            .u16(p.bootstrap_gatekeepers)
            .u64(p.min_gatekeeper_stake)
            .u64(p.min_worker_stake)
            .u16(p.slash_bps)
            .u64(p.max_proposal_ttl)
            .u16(p.max_cluster_size)
            .u16(p.key_threshold)
            .u64(p.refresh_interval);
        w.u16(u16::try_from(self.contract_codes.len()).expect("validated code count"));
        for code in &self.contract_codes {
            w.var8(code.as_str().as_bytes());
        }
        self.gatekeeper_policy.encode(w);
        self.worker_policy.encode(w);
    }

    /// Reads the encoding; sets must be strictly ascending.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the field.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let chain = ChainId::new(text(r.var8("chain id", 64)?, "chain id")?).map_err(|_| {
            DecodeError::Invalid {
                field: "chain id",
                reason: "not a valid id",
            }
        })?;
        let count = usize::from(r.u16("council size")?);
        if count > MAX_COUNCIL {
            return Err(DecodeError::TooLong {
                field: "council",
                len: count,
                max: MAX_COUNCIL,
            });
        }
        let mut council = BTreeSet::new();
        for _ in 0..count {
            let member = IdentityPublicKey::from_bytes(&r.array("council member")?)?;
            ascending(&council, &member, "council")?;
            council.insert(member);
        }
        let threshold = r.u16("threshold")?;
        let params = Params {
            bootstrap_gatekeepers: r.u16("bootstrap gatekeepers")?,
            min_gatekeeper_stake: r.u64("min gatekeeper stake")?,
            min_worker_stake: r.u64("min worker stake")?,
            slash_bps: r.u16("slash bps")?,
            max_proposal_ttl: r.u64("max proposal ttl")?,
            max_cluster_size: r.u16("max cluster size")?,
            key_threshold: r.u16("key threshold")?,
            refresh_interval: r.u64("refresh interval")?,
        };
        let count = usize::from(r.u16("contract code count")?);
        if count > MAX_CODES {
            return Err(DecodeError::TooLong {
                field: "contract codes",
                len: count,
                max: MAX_CODES,
            });
        }
        let mut contract_codes = BTreeSet::new();
        for _ in 0..count {
            let code = CodeId::new(text(r.var8("contract code", 64)?, "contract code")?).map_err(
                |_| DecodeError::Invalid {
                    field: "contract code",
                    reason: "not a valid id",
                },
            )?;
            ascending(&contract_codes, &code, "contract codes")?;
            contract_codes.insert(code);
        }
        Ok(Self {
            chain,
            council,
            threshold,
            params,
            contract_codes,
            gatekeeper_policy: EvidencePolicy::decode(r)?,
            worker_policy: EvidencePolicy::decode(r)?,
        })
    }

    /// Checks the rules of PROTOCOL §16.2 for a genesis signed by `author`.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self, author: &IdentityPublicKey) -> Result<(), GenesisError> {
        if self.council.is_empty() || self.council.len() > MAX_COUNCIL {
            return Err(GenesisError::CouncilSize);
        }
        if !self.council.contains(author) {
            return Err(GenesisError::AuthorNotInCouncil);
        }
        if self.threshold == 0 || usize::from(self.threshold) > self.council.len() {
            return Err(GenesisError::Threshold {
                threshold: self.threshold,
                council: self.council.len(),
            });
        }
        let p = &self.params;
        if p.bootstrap_gatekeepers == 0 {
            return Err(GenesisError::Param("bootstrap_gatekeepers"));
        }
        if p.slash_bps == 0 || p.slash_bps > 10_000 {
            return Err(GenesisError::Param("slash_bps"));
        }
        if p.max_proposal_ttl == 0 {
            return Err(GenesisError::Param("max_proposal_ttl"));
        }
        if p.max_cluster_size == 0 || p.max_cluster_size > MAX_CLUSTER_SIZE {
            return Err(GenesisError::Param("max_cluster_size"));
        }
        // In threshold mode every bootstrap gatekeeper is a member of epoch 0's DKG.
        if p.key_threshold == 0
            || p.key_threshold > p.bootstrap_gatekeepers
            || (p.key_threshold > 1
                && usize::from(p.bootstrap_gatekeepers) > crate::epoch::MAX_COMMITTEE)
        {
            return Err(GenesisError::Param("key_threshold"));
        }
        if p.refresh_interval != 0
            && (p.key_threshold == 1 || p.refresh_interval < MIN_REFRESH_INTERVAL)
        {
            return Err(GenesisError::Param("refresh_interval"));
        }
        if p.min_gatekeeper_stake <= p.min_worker_stake {
            return Err(GenesisError::StakeOrder);
        }
        if self.contract_codes.is_empty() || self.contract_codes.len() > MAX_CODES {
            return Err(GenesisError::Codes);
        }
        for (role, policy) in [
            ("gatekeeper", &self.gatekeeper_policy),
            ("worker", &self.worker_policy),
        ] {
            if !policy.within_limits() {
                return Err(GenesisError::PolicyTooLong(role));
            }
        }
        if !self
            .gatekeeper_policy
            .is_at_least_as_strict_as(&self.worker_policy)
        {
            return Err(GenesisError::WeakGatekeeperPolicy);
        }
        if self
            .gatekeeper_policy
            .vendor
            .as_ref()
            .is_some_and(|v| v.minimum_tcb != TcbStatus::UpToDate || v.accept_unrated)
        {
            return Err(GenesisError::GatekeeperVendorNotStrict);
        }
        if self
            .gatekeeper_policy
            .vendor
            .as_ref()
            .is_some_and(|v| !v.platforms.iter().any(|p| p.is_rated()))
        {
            return Err(GenesisError::GatekeeperVendorUnrated);
        }
        Ok(())
    }

    /// The evidence policy for `role`.
    pub fn policy(&self, role: Role) -> &EvidencePolicy {
        match role {
            Role::Gatekeeper { .. } => &self.gatekeeper_policy,
            Role::Worker => &self.worker_policy,
        }
    }
}

/// How far ahead of a verifier's clock a registration's evidence may be dated.
pub const CLOCK_SKEW_SECS: u64 = 60;

/// The nonce a node's registration evidence binds: `var16("keyward/v1/ledger/registration") ||
/// genesis hash || var8(role)`, role `"gatekeeper"` or `"worker"`. It ties the evidence to this
/// ledger and role, so evidence made for another network or the other role does not register.
pub fn registration_nonce(genesis: &EntryHash, role: Role) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(b"keyward/v1/ledger/registration")
        .raw(&genesis.0)
        .var8(role.name().as_bytes());
    w.finish()
}

/// A verified genesis: the ledger every [`VerifiedEntry`] is checked against. Shared (as
/// `Arc<Genesis>`) by threads that verify entries in parallel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Genesis {
    hash: EntryHash,
    author: IdentityPublicKey,
    config: GenesisConfig,
}

impl Genesis {
    /// Checks a genesis entry: it hashes to `pinned`, sits at height 0 with a zero parent and
    /// sequence number 0, is signed by its author, and its body is a valid [`GenesisConfig`]
    /// that names the author in the council.
    ///
    /// # Errors
    /// [`Rejected::GenesisMismatch`], [`Rejected::BadSignature`],
    /// [`Rejected::MalformedEntry`] or [`Rejected::InvalidGenesis`].
    pub fn from_entry(entry: &Entry, pinned: &EntryHash) -> Result<Arc<Self>, Rejected> {
        if entry.hash() != *pinned {
            return Err(Rejected::GenesisMismatch {
                pinned: *pinned,
                found: entry.hash(),
            });
        }
        if entry.kind() != Kind::Genesis {
            return Err(Rejected::WrongAuthor {
                kind: entry.kind(),
                needs: "a genesis at height 0",
            });
        }
        let p = entry.position();
        if p.height != 0 || p.parent != EntryHash::ZERO || p.seq != 0 {
            return Err(GenesisError::Position.into());
        }
        entry.verify_signature()?;
        let mut r = Reader::new(entry.body_bytes());
        let config = GenesisConfig::decode(&mut r)?;
        r.finish()?;
        config.validate(&entry.author())?;
        Ok(Arc::new(Self {
            hash: entry.hash(),
            author: entry.author(),
            config,
        }))
    }

    /// The genesis hash: the ledger's name.
    pub fn hash(&self) -> EntryHash {
        self.hash
    }

    /// The council member who signed the genesis.
    pub fn author(&self) -> IdentityPublicKey {
        self.author
    }

    /// The genesis body.
    pub fn config(&self) -> &GenesisConfig {
        &self.config
    }

    /// The stateless checks of an entry for this ledger: the author's signature, the body's
    /// encoding, and the body rules that need no registry state (evidence against the role's
    /// policy and registration nonce; a gatekeeper's endpoint is not public; epoch-secret
    /// envelopes come from the author and name this ledger, epoch and recipient). Safe to run on
    /// many threads at once.
    ///
    /// # Errors
    /// [`Rejected::BadSignature`], [`Rejected::UnexpectedGenesis`],
    /// [`Rejected::MalformedEntry`], [`Rejected::EvidenceRefused`] or
    /// [`Rejected::PublicGatekeeperEndpoint`].
    pub fn verify(&self, entry: Entry) -> Result<VerifiedEntry, Rejected> {
        entry.verify_signature()?;
        if entry.kind() == Kind::Genesis {
            return Err(Rejected::UnexpectedGenesis);
        }
        let body = Body::decode(entry.kind(), entry.body_bytes())?;
        let mut vendor = VendorStamp::default();
        match &body {
            Body::GatekeeperRegister(reg) => {
                // The cheap rule first: evidence can cost a vendor chain check.
                if !is_private(&reg.endpoint) {
                    return Err(Rejected::PublicGatekeeperEndpoint(reg.endpoint));
                }
                vendor =
                    self.check_registration(&entry, reg, Role::Gatekeeper { admitted: false })?;
            }
            Body::WorkerRegister(reg) => {
                vendor = self.check_registration(&entry, reg, Role::Worker)?;
            }
            Body::EpochCreate(create) => create.check(&entry.author(), &self.hash)?,
            Body::EpochHandoff(handoff) => handoff.check(&entry.author(), &self.hash)?,
            Body::ContractKeysPublish(keys) => crate::contract::check_keys(keys)?,
            Body::ContractCommand(command) => command.check(&entry.author())?,
            Body::DkgDeal(deal) => deal.check(&entry.author())?,
            Body::ReshareDeal(deal) => deal.check(&entry.author())?,
            Body::Genesis(_)
            | Body::GatekeeperDeregister
            | Body::WorkerDeregister
            | Body::EpochAccept(_)
            | Body::ClusterCreate(_)
            | Body::ClusterAddMember(_)
            | Body::ClusterKeyPublish(_)
            | Body::ContractDeploy(_)
            | Body::ResultDigest(_)
            | Body::MisbehaviourReport(_)
            | Body::CouncilPropose(_)
            | Body::CouncilApprove(_)
            | Body::DkgCommit(_)
            | Body::DkgComplaint(_)
            | Body::ReshareComplaint(_)
            | Body::PartialReport(_)
            | Body::SignCommit(_)
            | Body::SignShare(_) => {}
        }
        Ok(VerifiedEntry::new(entry, body, self.hash, vendor))
    }

    /// The check a verifier with a clock adds when it first sees an entry (the ledger server,
    /// on append): a registration's vendor evidence must have been verified at most the role
    /// policy's `max_age_secs` before `now` (UNIX seconds) and at most 60 s after it. Nodes that
    /// replay the ledger do not run it, so their verdict never depends on when they replay; they
    /// rely on the ledger's own clock instead ([`Rejected::StaleEvidence`]).
    ///
    /// # Errors
    /// [`Rejected::EvidenceNotCurrent`].
    pub fn check_current(&self, entry: &VerifiedEntry, now: u64) -> Result<(), Rejected> {
        let (reg, role) = match entry.body() {
            Body::GatekeeperRegister(reg) => (reg, Role::Gatekeeper { admitted: false }),
            Body::WorkerRegister(reg) => (reg, Role::Worker),
            _ => return Ok(()),
        };
        let (Some(at), Some(vendor)) =
            (reg.evidence.verified_at(), &self.config.policy(role).vendor)
        else {
            return Ok(());
        };
        if at > now.saturating_add(CLOCK_SKEW_SECS) || now.saturating_sub(at) > vendor.max_age_secs
        {
            return Err(Rejected::EvidenceNotCurrent {
                verified_at: at,
                now,
                max_age_secs: vendor.max_age_secs,
            });
        }
        Ok(())
    }

    /// Checks a registration's evidence under its role's policy; returns, for vendor evidence,
    /// what the registry's rules track of it ([`VendorStamp`]), used once the registration is
    /// applied.
    fn check_registration(
        &self,
        entry: &Entry,
        reg: &Registration,
        role: Role,
    ) -> Result<VendorStamp, Rejected> {
        reg.evidence
            .verify(
                self.config.policy(role),
                &[
                    BoundKey::Identity(entry.author()),
                    BoundKey::Channel(reg.channel),
                ],
                &registration_nonce(&self.hash, role),
            )
            .map(|verified| {
                verified
                    .vendor
                    .as_ref()
                    .map(VendorStamp::of)
                    .unwrap_or_default()
            })
            .map_err(Rejected::EvidenceRefused)
    }
}

/// Loopback, RFC 1918 or IPv6 unique-local: an address the public internet cannot reach, the
/// only kind a gatekeeper may register (and, in the host, listen on).
pub fn is_private(addr: &std::net::SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback() || ip.is_private(),
        std::net::IpAddr::V6(ip) => ip.is_loopback() || ip.is_unique_local(),
    }
}
