//! A worker's core: it obtains its ClusterKeys, publishes its contracts' keys, executes their
//! commands in ledger order and reports a worker whose digest disagrees with the majority, each
//! time deciding from the verified registry.

use std::collections::BTreeMap;

use keyward_contracts::{Builtin, Instance, RestoreError};
use keyward_crypto::{
    ChannelPublicKey, DecodeError, Envelope, EnvelopePurpose, IdentityKeypair, IdentityPublicKey,
    Reader,
};
use keyward_enclave::{BoundKey, SealedBlob, Sealer};
use keyward_hierarchy::{
    ClusterId, ClusterKey, ClusterKeyRequest, ContractId, ContractKey, ContractPublicKeys, Epoch,
    EpochRecord, Generation,
};
use keyward_ledger::{
    Body, ClusterKeyPublish, EntryHash, KeyContext, MisbehaviourReport, Offence, PartialReport,
    Registry, ResultDigest, Role, Subject,
};
use keyward_threshold::{CheckedPartial, Element, PartialEvaluation, ShareIndex};

use crate::provision::{ProvisionError, SignedPartial, answer_aad};
use crate::sealed::{Keys, RoleTag, StateError, count, secret};

/// The most wrong partials waiting to be reported (each is reported once; the rest are still
/// refused and logged).
const MAX_REPORTS: usize = 64;

/// The most ClusterKeys a sealed state may list.
const MAX_CLUSTER_KEYS: usize = 4096;

/// Where a cluster key belongs: (cluster, epoch, generation).
type Slot = (ClusterId, Epoch, Generation);

/// The answers to one ClusterKey request, gathered by [`Worker::check_answer`] as they arrive,
/// combined by [`Worker::provisioned_from`] and closed by [`Worker::audited`]. Holds the epoch's
/// committee as it was when collecting began, and no secret but the checked partials.
pub struct Answers {
    request: ClusterKeyRequest,
    record: EpochRecord,
    element: Element,
    aad: Vec<u8>,
    genesis: EntryHash,
    threshold: bool,
    senders: Vec<IdentityPublicKey>,
    valid: Vec<CheckedPartial>,
    refused: Vec<ProvisionError>,
    reports: Vec<PartialReport>,
}

impl Answers {
    /// Whether `t` valid partials are in.
    pub fn enough(&self) -> bool {
        self.valid.len() >= usize::from(self.record.committee().threshold())
    }

    /// The request being answered.
    pub fn request(&self) -> &ClusterKeyRequest {
        &self.request
    }
}

impl core::fmt::Debug for Answers {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Answers")
            .field("request", &self.request)
            .field("valid", &self.valid.len())
            .field("refused", &self.refused)
            .finish_non_exhaustive()
    }
}

/// What a worker's host does next.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // made and used one at a time, never stored in bulk
pub enum WorkerStep {
    /// Ask the gatekeepers for this ClusterKey: [`Worker::collect`], [`Worker::check_answer`] on
    /// each answer as it arrives, [`Worker::provisioned_from`] once `t` are valid, then
    /// [`Worker::audited`] after the rest (or [`Worker::provisioned`] with all of them).
    Provision(ClusterKeyRequest),
    /// Submit this entry.
    Submit(Body),
    /// A command ran. Store the reply (if any) for its sender, submit the digest (if this worker
    /// owes one), then store [`Worker::checkpoint`] of the contract.
    Executed {
        /// The contract.
        contract: ContractId,
        /// The command.
        command: EntryHash,
        /// The reply, sealed to the command's sender.
        reply: Option<Envelope>,
        /// The result digest this worker owes, if it is in the command's electorate and has not
        /// published one.
        digest: Option<Body>,
    },
}

/// A contract's sealed state with the public facts needed to reopen it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The key context the state is sealed under.
    pub context: KeyContext,
    /// The number of commands that ran.
    pub version: u64,
    /// The state, sealed under the contract's state key.
    pub sealed: Vec<u8>,
}

/// Why a checkpoint was not restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The contract is not one of this worker's cluster.
    #[error("the contract is not deployed in this worker's cluster")]
    UnknownContract,
    /// The worker has no ClusterKey for the checkpoint's context (yet).
    #[error("no ClusterKey for the checkpoint's key context")]
    NoKey,
    /// The sealed state does not open under that context's key at that version.
    #[error(transparent)]
    Sealed(#[from] RestoreError),
    /// The checkpoint is ahead of the ledger.
    #[error("the checkpoint ran {version} commands; the ledger has {ledger}")]
    Ahead {
        /// The checkpoint's version.
        version: u64,
        /// Commands on the ledger.
        ledger: u64,
    },
}

/// A problem the worker noticed and will not act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerAlarm {
    /// The contract's code is not a built-in this worker runs.
    UnknownCode(ContractId),
    /// Commands of a key context this worker never belonged to: it cannot rebuild the state.
    MissedContext(ContractId, KeyContext),
    /// The ClusterKey provisioned does not match the key published on the ledger.
    PublishedKeyMismatch(ClusterId, KeyContext),
}

/// A worker's core.
///
/// Guarantees: it uses a ClusterKey only after checking every partial's DLEQ proof against the
/// epoch's committee and the key against the one published on the ledger; it executes each
/// contract's commands exactly in ledger order; secrets zeroize on drop and never print.
pub struct Worker {
    keys: Keys,
    cluster_keys: BTreeMap<Slot, ClusterKey>,
    instances: BTreeMap<ContractId, Instance>,
    alarms: crate::alarms::Alarms<WorkerAlarm>,
    /// Wrong partial evaluations to report on the ledger (threshold mode), each once.
    reports: Vec<PartialReport>,
}

impl core::fmt::Debug for Worker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Worker")
            .field("identity", &self.keys.id())
            .field(
                "cluster_keys",
                &self.cluster_keys.keys().collect::<Vec<_>>(),
            )
            .field("contracts", &self.instances.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A new worker for the ledger `genesis`, with fresh identity and channel keys.
    pub fn generate(genesis: EntryHash, rng: &mut impl keyward_crypto::Rng) -> Self {
        Self {
            keys: Keys::generate(genesis, rng),
            cluster_keys: BTreeMap::new(),
            instances: BTreeMap::new(),
            alarms: crate::alarms::Alarms::default(),
            reports: Vec::new(),
        }
    }

    /// Its identity.
    pub fn id(&self) -> IdentityPublicKey {
        self.keys.id()
    }

    /// Its channel key.
    pub fn channel(&self) -> ChannelPublicKey {
        self.keys.channel_public()
    }

    /// The keys its attestation evidence binds.
    pub fn bound_keys(&self) -> [BoundKey; 2] {
        self.keys.bound_keys()
    }

    /// The identity keypair, for signing this worker's ledger entries and requests.
    pub fn signer(&self) -> &IdentityKeypair {
        &self.keys.identity
    }

    /// The ClusterKey of (cluster, epoch, generation), if this worker holds it.
    pub fn cluster_key(&self, cluster: &ClusterId, context: KeyContext) -> Option<&ClusterKey> {
        self.cluster_keys
            .get(&(cluster.clone(), context.epoch, context.generation))
    }

    /// How many ClusterKeys it holds.
    pub fn held(&self) -> usize {
        self.cluster_keys.len()
    }

    /// Problems noticed since the last call.
    pub fn take_alarms(&mut self) -> Vec<WorkerAlarm> {
        self.alarms.take_new()
    }

    fn alarm(&mut self, alarm: WorkerAlarm) {
        self.alarms.raise(alarm);
    }

    /// The key state (identity, channel key, ClusterKeys), sealed. Contract states are sealed
    /// separately, under their own keys ([`Worker::checkpoint`]). Sealed at monotonic counter
    /// value `counter`.
    pub fn seal(
        &self,
        sealer: &Sealer,
        counter: u64,
        rng: &mut impl keyward_crypto::Rng,
    ) -> SealedBlob {
        self.keys.seal(
            RoleTag::Worker,
            sealer,
            counter,
            |w| {
                w.u16(u16::try_from(self.cluster_keys.len()).expect("bounded"));
                for ((cluster, epoch, generation), key) in &self.cluster_keys {
                    w.var8(cluster.as_str().as_bytes())
                        .u64(epoch.0)
                        .u64(generation.0)
                        .raw(key.seed().expose());
                }
            },
            rng,
        )
    }

    /// Restores a worker from [`Worker::seal`]'s blob, refusing one sealed below the monotonic
    /// counter's value `minimum` (rolled back).
    ///
    /// # Errors
    /// A [`StateError`]; nothing is restored.
    pub fn restore(
        sealer: &Sealer,
        genesis: &EntryHash,
        blob: &SealedBlob,
        minimum: u64,
    ) -> Result<Self, StateError> {
        let (keys, cluster_keys) =
            Keys::open(RoleTag::Worker, sealer, genesis, blob, minimum, |r| {
                let n = count(r, "cluster key count", MAX_CLUSTER_KEYS)?;
                let mut keys = BTreeMap::new();
                for _ in 0..n {
                    let cluster = cluster_id(r)?;
                    let epoch = Epoch(r.u64("epoch")?);
                    let generation = Generation(r.u64("generation")?);
                    let seed = secret(r, "cluster seed")?;
                    let key = ClusterKey::from_seed(epoch, cluster.clone(), generation, seed);
                    keys.insert((cluster, epoch, generation), key);
                }
                Ok(keys)
            })?;
        Ok(Self {
            keys,
            cluster_keys,
            instances: BTreeMap::new(),
            alarms: crate::alarms::Alarms::default(),
            reports: Vec::new(),
        })
    }

    /// Starts collecting the gatekeepers' answers to `request`, for [`Worker::check_answer`].
    ///
    /// # Errors
    /// [`ProvisionError::Refused`] while the request's epoch has no committee on the ledger.
    pub fn collect(
        &self,
        registry: &Registry,
        request: &ClusterKeyRequest,
    ) -> Result<Answers, ProvisionError> {
        // The committee holding the epoch now: its founding one, or the one a resharing moved
        // it to.
        let record = registry
            .epoch(request.epoch)
            .ok_or(ProvisionError::Refused(
                keyward_ledger::ProvisionError::EpochNotReady(request.epoch),
            ))?
            .current()
            .clone();
        let genesis = registry.genesis().hash();
        Ok(Answers {
            aad: answer_aad(&genesis, &self.id(), request),
            element: request.element(),
            request: request.clone(),
            record,
            genesis,
            threshold: registry.key_threshold() > 1,
            senders: Vec::new(),
            valid: Vec::new(),
            refused: Vec::new(),
            reports: Vec::new(),
        })
    }

    /// Checks one answer as it arrives: opens it, checks the sender's signature, its share and
    /// its DLEQ proof, and keeps the partial if it is valid. A signed partial with a wrong proof
    /// is refused and becomes a report against its sender (threshold mode), queued by
    /// [`Worker::audited`]. Only a sender's first authentic answer counts: one that does not
    /// open, answers another request or is not signed by its claimed sender is refused without
    /// using up that sender's turn, so a forgery cannot crowd out the real answer. Returns whether `t` valid
    /// partials are in: the host can then combine them ([`Worker::provisioned_from`]) and check
    /// the answers still on their way afterwards, so that every wrong partial is named without
    /// the key waiting for the slowest gatekeeper.
    pub fn check_answer(&self, answers: &mut Answers, answer: &Envelope) -> bool {
        let sender = answer.sender();
        if !answers.senders.contains(&sender) {
            match self.check_one(answers, answer) {
                // One partial per member: a second answer from the same share adds nothing.
                Ok(partial) if answers.valid.iter().all(|p| p.index() != partial.index()) => {
                    answers.valid.push(partial);
                }
                Ok(_) => {}
                Err(reason) => answers.refused.push(ProvisionError::BadAnswer {
                    from: sender.into(),
                    reason,
                }),
            }
        }
        answers.enough()
    }

    fn check_one(
        &self,
        answers: &mut Answers,
        answer: &Envelope,
    ) -> Result<CheckedPartial, &'static str> {
        // Each partial is checked here, against the envelope's signed sender, so a bad proof is
        // blamed on who sent it (in classic mode every holder claims index 1).
        let sender = answer.sender();
        let opened = self
            .keys
            .channel
            .open(answer, EnvelopePurpose::ClusterKey)
            .map_err(|_| "does not open under this worker's channel key")?;
        if opened.aad != answers.aad {
            return Err("answers another request");
        }
        let signed = SignedPartial::open(
            &opened.plaintext,
            &sender,
            &answers.genesis,
            &answers.request,
        )?;
        // Authentic from here on: this is the sender's answer, right or wrong.
        answers.senders.push(sender);
        // The sender's index and verification share in the committee holding the epoch now
        // (classic mode: index 1, the master public key).
        let index = if answers.threshold {
            answers.record.index_of(&sender)
        } else {
            ShareIndex::new(1)
        };
        let committee = answers.record.committee();
        let verification = index.and_then(|i| committee.verification_share(i));
        if verification != Some(signed.verification) {
            return Err("evaluated with a share the epoch's committee does not hold");
        }
        let checked = PartialEvaluation::from_bytes(signed.partial.as_slice())
            .ok()
            .filter(|p| Some(p.index) == index)
            .and_then(|p| committee.check_partial(&answers.element, &p).ok());
        checked.ok_or_else(|| {
            // Signed, checkable and wrong: evidence anyone can verify (threshold mode only: a
            // classic partial is the whole evaluation).
            if answers.threshold {
                answers.reports.push(PartialReport {
                    gatekeeper: sender,
                    request: answers.request.clone(),
                    verification: signed.verification,
                    partial: *signed.partial,
                    signature: signed.signature,
                });
            }
            "partial evaluation with an invalid proof"
        })
    }

    /// Combines the valid partials of `answers` against the epoch's committee (without checking
    /// their proofs again), checks the key against the cluster key published on the ledger
    /// (when there is one) and keeps it.
    ///
    /// # Errors
    /// A [`ProvisionError`]; the worker keeps no key. In threshold mode a key that differs from
    /// the published one is kept (t proofs vouch for it) and raises
    /// [`WorkerAlarm::PublishedKeyMismatch`]; the worker then acts under neither.
    pub fn provisioned_from(
        &mut self,
        registry: &Registry,
        answers: &Answers,
    ) -> Result<(), ProvisionError> {
        let request = &answers.request;
        let key = request.finish_checked(&answers.record, &answers.valid)?;
        let context = KeyContext {
            epoch: request.epoch,
            generation: request.generation,
        };
        let published = registry
            .cluster(&request.cluster)
            .and_then(|c| c.key(context).copied());
        if published.is_some_and(|p| p != key.identity().public()) {
            // Threshold mode: t proofs vouch for this key, so the published one is wrong (a
            // member worker wrote it): keep ours, raise the alarm, and do not act under it.
            if registry.key_threshold() == 1 {
                return Err(ProvisionError::PublishedKeyMismatch);
            }
            self.alarm(WorkerAlarm::PublishedKeyMismatch(
                request.cluster.clone(),
                context,
            ));
        }
        self.cluster_keys.insert(
            (request.cluster.clone(), request.epoch, request.generation),
            key,
        );
        Ok(())
    }

    /// Ends a collection: queues a report against each gatekeeper whose signed partial was wrong
    /// (once each, at most 64 waiting) and returns every refused answer, with why, for the host
    /// to log (an invalid partial is evidence against its sender).
    pub fn audited(&mut self, answers: Answers) -> Vec<ProvisionError> {
        for report in answers.reports {
            let queued = self.reports.iter().any(|r| {
                r.gatekeeper == report.gatekeeper
                    && r.request == report.request
                    && r.verification == report.verification
            });
            if !queued && self.reports.len() < MAX_REPORTS {
                self.reports.push(report);
            }
        }
        answers.refused
    }

    /// [`Worker::collect`], [`Worker::check_answer`] on every answer, [`Worker::provisioned_from`]
    /// and [`Worker::audited`]: for a host that has all answers at once. Returns the refused
    /// answers.
    ///
    /// # Errors
    /// As [`Worker::collect`] and [`Worker::provisioned_from`]; the reports are queued either way.
    pub fn provisioned(
        &mut self,
        registry: &Registry,
        request: &ClusterKeyRequest,
        answers: &[Envelope],
    ) -> Result<Vec<ProvisionError>, ProvisionError> {
        let mut collected = self.collect(registry, request)?;
        for answer in answers {
            self.check_answer(&mut collected, answer);
        }
        let outcome = self.provisioned_from(registry, &collected);
        let refused = self.audited(collected);
        outcome.map(|()| refused)
    }

    /// The sealed state of `contract` now, for the host to store after each executed command.
    pub fn checkpoint(&self, contract: &ContractId) -> Option<Checkpoint> {
        self.instances.get(contract).map(|i| Checkpoint {
            context: KeyContext::from(i.key().context()),
            version: i.version(),
            sealed: i.sealed_state(),
        })
    }

    /// Reopens a stored checkpoint of `contract`, so that the worker resumes after its commands
    /// instead of executing them all again. A stale checkpoint is harmless: the commands after
    /// it run again from the ledger, deterministically.
    ///
    /// # Errors
    /// A [`CheckpointError`]; the worker keeps no instance for the contract and will rebuild it
    /// from the ledger.
    pub fn restore_checkpoint(
        &mut self,
        registry: &Registry,
        contract: &ContractId,
        checkpoint: &Checkpoint,
    ) -> Result<(), CheckpointError> {
        let deployed = registry
            .contract(contract)
            .ok_or(CheckpointError::UnknownContract)?;
        if registry.cluster_of(&self.id()) != Some(deployed.cluster()) {
            return Err(CheckpointError::UnknownContract);
        }
        let ledger = deployed.commands().len() as u64;
        if checkpoint.version > ledger {
            return Err(CheckpointError::Ahead {
                version: checkpoint.version,
                ledger,
            });
        }
        let code =
            Builtin::from_code(deployed.code().as_str()).ok_or(CheckpointError::UnknownContract)?;
        let cluster_key = self
            .cluster_key(deployed.cluster(), checkpoint.context)
            .ok_or(CheckpointError::NoKey)?;
        let key = ContractKey::derive(cluster_key, contract.clone());
        let instance = Instance::restore(code, key, checkpoint.version, &checkpoint.sealed)?;
        self.instances.insert(contract.clone(), instance);
        Ok(())
    }

    /// The next thing this worker should do, decided from `registry` as it is now, or `None`
    /// when there is nothing to do. Call it again after every change of the registry and after
    /// acting on each step (whatever the outcome).
    pub fn step(
        &mut self,
        registry: &Registry,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<WorkerStep> {
        let me = self.id();
        let active = registry
            .node(&me)
            .is_some_and(|n| n.is_active() && n.role == Role::Worker && !n.slashed);
        if !active {
            return None;
        }
        if let Some(report) = self.reports.pop() {
            return Some(WorkerStep::Submit(Body::PartialReport(Box::new(report))));
        }
        let cluster_id = registry.cluster_of(&me)?.clone();
        let current = registry.key_context(&cluster_id).ok()?;
        if self.cluster_key(&cluster_id, current).is_none() {
            return Some(WorkerStep::Provision(ClusterKeyRequest {
                epoch: current.epoch,
                cluster: cluster_id,
                generation: current.generation,
            }));
        }
        let cluster = registry.cluster(&cluster_id)?;
        // Act only under a cluster key the ledger confirms.
        match cluster.key(current) {
            // Threshold mode: no gatekeeper can derive the key, so a member publishes the one
            // it combined from verified partials (PROTOCOL §16.7).
            None if registry.key_threshold() > 1 => {
                let held = self.cluster_key(&cluster_id, current)?.identity().public();
                return Some(WorkerStep::Submit(Body::ClusterKeyPublish(
                    ClusterKeyPublish {
                        cluster: cluster_id,
                        epoch: current.epoch,
                        generation: current.generation,
                        key: held,
                    },
                )));
            }
            None => return None,
            Some(published) => {
                let held = self.cluster_key(&cluster_id, current)?.identity().public();
                if *published != held {
                    // Classic mode: the key came from one holder; drop it and ask again. Threshold
                    // mode: the key is checked against t proofs, so the published one is wrong (a
                    // member worker wrote it); keep ours and stop, rather than ask again forever.
                    if registry.key_threshold() == 1 {
                        self.cluster_keys.remove(&(
                            cluster_id.clone(),
                            current.epoch,
                            current.generation,
                        ));
                    }
                    self.alarm(WorkerAlarm::PublishedKeyMismatch(cluster_id, current));
                    return None;
                }
            }
        }
        let contracts: Vec<ContractId> = registry
            .contracts()
            .filter(|(_, c)| *c.cluster() == cluster_id)
            .map(|(id, _)| id.clone())
            .collect();
        for contract in &contracts {
            if let Some(step) = self.contract_step(registry, &cluster_id, current, contract, rng) {
                return Some(step);
            }
        }
        for contract in &contracts {
            if let Some(step) = self.report(registry, contract) {
                return Some(step);
            }
        }
        None
    }

    fn contract_step(
        &mut self,
        registry: &Registry,
        cluster: &ClusterId,
        current: KeyContext,
        id: &ContractId,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<WorkerStep> {
        let me = self.id();
        let genesis = registry.genesis().hash();
        let contract = registry.contract(id)?;
        // 1. Publish (or confirm) the contract's keys for the current context.
        if !contract
            .confirmers(current)
            .is_some_and(|c| c.contains(&me))
        {
            let cluster_key = self.cluster_key(cluster, current)?;
            let key = ContractKey::derive(cluster_key, id.clone());
            let keys = ContractPublicKeys::certify(cluster_key, &key, rng);
            return Some(WorkerStep::Submit(Body::ContractKeysPublish(Box::new(
                keys,
            ))));
        }
        let Some(code) = Builtin::from_code(contract.code().as_str()) else {
            self.alarm(WorkerAlarm::UnknownCode(id.clone()));
            return None;
        };
        // 2. The context the next command needs, or the current one when all have run.
        let version = self.instances.get(id).map_or(0, Instance::version);
        let next = contract.commands().get(usize::try_from(version).ok()?);
        let command = next.and_then(|h| registry.command(h).map(|c| (*h, c)));
        let needed = command.map_or(current, |(_, c)| KeyContext::from(&c.context));
        let Some(cluster_key) = self.cluster_key(cluster, needed) else {
            if registry
                .cluster(cluster)
                .and_then(|c| c.members_at(needed.generation))
                .is_some_and(|m| m.contains(&me))
            {
                return Some(WorkerStep::Provision(ClusterKeyRequest {
                    epoch: needed.epoch,
                    cluster: cluster.clone(),
                    generation: needed.generation,
                }));
            }
            self.alarm(WorkerAlarm::MissedContext(id.clone(), needed));
            return None;
        };
        let key = ContractKey::derive(cluster_key, id.clone());
        // 3. Deploy, or move the state to the needed context: after the last command of the old
        //    context, so every worker migrates the same state.
        let mut migrated = false;
        let instance = match self.instances.remove(id) {
            None => match Instance::deploy(code, key, contract.init()) {
                Ok(i) => i,
                Err(_) => {
                    self.alarm(WorkerAlarm::UnknownCode(id.clone()));
                    return None;
                }
            },
            Some(i) if KeyContext::from(i.key().context()) != needed => {
                migrated = true;
                i.migrate(key)
            }
            Some(i) => i,
        };
        let instance = self.instances.entry(id.clone()).or_insert(instance);
        if migrated {
            let subject = Subject::Migration {
                contract: id.clone(),
                epoch: needed.epoch,
                generation: needed.generation,
            };
            let member = registry
                .cluster(cluster)
                .and_then(|c| c.members_at(needed.generation))
                .is_some_and(|m| m.contains(&me));
            let published = registry.digests(&subject).any(|(w, _)| *w == me);
            if member && !published {
                return Some(WorkerStep::Submit(Body::ResultDigest(Box::new(
                    ResultDigest::sign(
                        instance.key(),
                        &genesis,
                        subject,
                        instance.state_digest(),
                        rng,
                    ),
                ))));
            }
        }
        // 4. Run the next command.
        let (hash, queued) = command?;
        let executed = instance.execute(&hash.0, &queued.input, rng);
        let subject = Subject::Command(hash);
        let owes =
            queued.electorate.contains(&me) && !registry.digests(&subject).any(|(w, _)| *w == me);
        let digest = owes.then(|| {
            Body::ResultDigest(Box::new(ResultDigest::sign(
                instance.key(),
                &genesis,
                subject,
                executed.digest,
                rng,
            )))
        });
        Some(WorkerStep::Executed {
            contract: id.clone(),
            command: hash,
            reply: executed.reply,
            digest,
        })
    }

    /// Reports a worker whose digest of one of `contract`'s subjects differs from the strict
    /// majority this worker agrees with.
    fn report(&self, registry: &Registry, contract: &ContractId) -> Option<WorkerStep> {
        let me = self.id();
        let deployed = registry.contract(contract)?;
        for hash in deployed.commands() {
            let subject = Subject::Command(*hash);
            let electorate = registry.command(hash)?.electorate.len();
            let digests: Vec<_> = registry.digests(&subject).collect();
            let Some(majority) = digests
                .iter()
                .map(|(_, d)| *d)
                .find(|d| digests.iter().filter(|(_, x)| x == d).count() * 2 > electorate)
            else {
                continue;
            };
            if !digests.iter().any(|(w, d)| **w == me && *d == majority) {
                continue;
            }
            if let Some((accused, _)) = digests
                .iter()
                .find(|(w, d)| *d != majority && registry.node(w).is_some_and(|n| !n.slashed))
            {
                return Some(WorkerStep::Submit(Body::MisbehaviourReport(Box::new(
                    MisbehaviourReport {
                        accused: **accused,
                        offence: Offence::DigestMismatch,
                        subject,
                    },
                ))));
            }
        }
        None
    }
}

pub(crate) fn cluster_id(r: &mut Reader<'_>) -> Result<ClusterId, DecodeError> {
    let bytes = r.var8("cluster id", keyward_crypto::ids::MAX_ID_LEN)?;
    core::str::from_utf8(bytes)
        .ok()
        .and_then(|s| ClusterId::new(s).ok())
        .ok_or(DecodeError::Invalid {
            field: "cluster id",
            reason: "not a valid id",
        })
}
