//! A gatekeeper's core: it holds MasterKeys, founds and hands over epochs, publishes cluster keys
//! and answers workers' provisioning requests, each time deciding from the verified registry.

use std::collections::BTreeMap;

use keyward_crypto::{
    ChannelPublicKey, Envelope, EnvelopePurpose, IdentityPublicKey, Reader, SecretBytes,
};
use keyward_enclave::{BoundKey, SealedBlob, Sealer};
use keyward_hierarchy::{ClusterId, ClusterKey, ClusterKeyRequest, Epoch, MasterKey};
use keyward_ledger::dkg::{Member, OpenedPart, PartError, open_part, seal_part};
use keyward_ledger::{
    Action, Body, Cluster, ClusterKeyPublish, Complaint, DkgCommit, DkgDeal, EntryHash,
    EpochAccept, EpochCreate, EpochHandoff, EpochStatus, KeyContext, Registry, ReshareDeal,
    ReshareRun, Role, RunId, SecretError, Sharing, open_epoch_secret,
};
use keyward_threshold::{Committee, Dealer, Element, KeyShare, ShareIndex, SharePart};

use crate::provision::{
    ANSWER_LEN, ProvisionError, ProvisionRequest, answer_aad, answer_plaintext,
};
use crate::sealed::{Keys, RoleTag, StateError, count, secret};
use crate::signing::Signing;

/// The most MasterKeys a sealed state may list (every epoch a gatekeeper can hold).
const MAX_SECRETS: usize = 4096;
/// The most shares a sealed state may list: two per epoch while a resharing moves it.
const MAX_SHARES: usize = 2 * MAX_SECRETS;

/// The most partial evaluations one step computes (about 265 µs each), so that a cold start
/// with many clusters never holds the core for long; the rest come in later steps, and until
/// then `answer` evaluates on demand.
const MAX_EVALUATIONS_PER_STEP: usize = 64;

/// What a gatekeeper's host does next.
#[derive(Debug)]
pub enum GatekeeperStep {
    /// Submit this entry; the key state is unchanged.
    Submit(Body),
    /// The key state changed (a new or received MasterKey): seal it, store it durably, **then**
    /// submit this entry, so that the ledger never records a secret the gatekeeper could lose.
    SealThenSubmit(Body),
    /// The key state shrank (threshold mode: shares no live committee uses were dropped): seal
    /// it and store it, replacing the stored copy that still holds them. Nothing to submit.
    Seal,
}

/// An epoch-secret envelope addressed to this gatekeeper that it cannot accept. The sender
/// sealed a wrong or broken secret: the gatekeeper never accepts it, and the council can abandon
/// the epoch or remove the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadSecret {
    /// The epoch.
    pub epoch: Epoch,
    /// Who sealed it.
    pub sender: IdentityPublicKey,
    /// Why it was refused.
    pub reason: SecretError,
}

/// A gatekeeper's core.
///
/// Guarantees: every MasterKey it holds matches an epoch's master public key on the ledger (or
/// is the candidate for the epoch it is creating); secrets zeroize on drop and never print; it
/// answers a provisioning request only when the registry allows it.
pub struct Gatekeeper {
    keys: Keys,
    /// Held MasterKeys, by master public key.
    secrets: BTreeMap<[u8; 32], MasterKey>,
    /// A MasterKey made for an epoch this gatekeeper creates, kept until the ledger shows that
    /// epoch: (epoch, rotation proposal, key).
    candidate: Option<(Epoch, Option<EntryHash>, MasterKey)>,
    /// The encoded partial evaluation of each cluster's current key context. Every member of a
    /// cluster gets the same one, so it is computed once per context (by [`Gatekeeper::step`])
    /// and an answer costs one envelope. Secret: in classic mode it yields the ClusterKey. Boxed,
    /// so that the map moves pointers, never copies of the secret it cannot zeroize.
    partials: BTreeMap<ClusterId, (KeyContext, Box<Partial>)>,
    bad: crate::alarms::Alarms<BadSecret>,
    /// Threshold mode: its shares of each epoch's MasterKey, by master public key. An epoch has
    /// more than one while a resharing moves it (the old share deals and answers until the new
    /// committee takes over); shares of no live committee are dropped. Boxed, so that the map
    /// and vectors move pointers, never copies of a share they cannot zeroize.
    #[allow(clippy::vec_box)] // a Vec that grows copies its elements and frees them unwiped
    shares: BTreeMap<[u8; 32], Vec<Box<Held>>>,
    /// The verification share behind the cached partials (threshold mode): when a resharing
    /// replaces the share, every cached partial is stale.
    partials_basis: Option<[u8; 32]>,
    /// Threshold mode: its dealer for the DKG run under way (rebuilt from its seed on demand).
    dealer: Option<Box<(RunId, Dealer)>>,
    bad_parts: crate::alarms::Alarms<BadPart>,
    /// Threshold mode: its FROST nonce state in the committee's signing runs (sealed).
    signing: Signing,
}

/// A DKG or resharing part addressed to this gatekeeper that it cannot use and cannot prove
/// wrong: the envelope does not open or holds no part signed by its dealer. The run stalls until
/// the council abandons the attempt (PROTOCOL §16.10), or, for a resharing, for good (a known
/// limit, PROTOCOL §16.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPart {
    /// The run.
    pub run: RunId,
    /// The dealer.
    pub dealer: IdentityPublicKey,
    /// Why.
    pub reason: PartError,
}

/// A share with its verification share `Y = k·G`, worked out once: shares are matched to
/// committees on every step.
struct Held {
    share: KeyShare,
    y: Element,
}

impl Held {
    fn new(share: KeyShare) -> Self {
        Self {
            y: share.verification_share(),
            share,
        }
    }

    /// Whether it is a share in `committee`.
    fn in_committee(&self, committee: &Committee) -> bool {
        committee.verification_share(self.share.index()) == Some(self.y)
    }
}

/// The share in `committee` among `shares` (by master public key), if there is one.
#[allow(clippy::vec_box)] // see `Gatekeeper::shares`
fn held_in<'a>(
    shares: &'a BTreeMap<[u8; 32], Vec<Box<Held>>>,
    committee: &Committee,
) -> Option<&'a Held> {
    shares
        .get(&committee.public_key().to_bytes())?
        .iter()
        .find(|h| h.in_committee(committee))
        .map(|h| &**h)
}

/// Why a member cannot finish a run yet.
enum Blocked {
    /// A part is provably wrong: submit this complaint.
    Complain(Box<Body>),
    /// Parts it cannot use and cannot prove wrong (an alarm each).
    Unusable(Vec<BadPart>),
    /// A part is not on the ledger yet.
    NotYet,
}

/// An answer plaintext: a signed, encoded [`PartialEvaluation`].
type Partial = SecretBytes<ANSWER_LEN>;

impl core::fmt::Debug for Gatekeeper {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Gatekeeper")
            .field("identity", &self.keys.id())
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

impl Gatekeeper {
    /// A new gatekeeper for the ledger `genesis`, with fresh identity and channel keys.
    pub fn generate(genesis: EntryHash, rng: &mut impl keyward_crypto::Rng) -> Self {
        Self {
            keys: Keys::generate(genesis, rng),
            secrets: BTreeMap::new(),
            candidate: None,
            partials: BTreeMap::new(),
            bad: crate::alarms::Alarms::default(),
            shares: BTreeMap::new(),
            partials_basis: None,
            dealer: None,
            bad_parts: crate::alarms::Alarms::default(),
            signing: Signing::default(),
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

    /// The identity keypair, for signing this gatekeeper's ledger entries.
    pub fn signer(&self) -> &keyward_crypto::IdentityKeypair {
        &self.keys.identity
    }

    /// How many MasterKeys (classic mode) or shares (threshold mode) it holds.
    pub fn held(&self) -> usize {
        self.secrets.len() + self.shares.values().map(Vec::len).sum::<usize>()
    }

    /// DKG parts refused since the last call.
    pub fn take_bad_parts(&mut self) -> Vec<BadPart> {
        self.bad_parts.take_new()
    }

    /// Envelopes refused since the last call.
    pub fn take_bad_secrets(&mut self) -> Vec<BadSecret> {
        self.bad.take_new()
    }

    /// The whole key state, sealed at monotonic counter value `counter` (the host advances its
    /// counter to it once the blob is durable).
    pub fn seal(
        &self,
        sealer: &Sealer,
        counter: u64,
        rng: &mut impl keyward_crypto::Rng,
    ) -> SealedBlob {
        self.keys.seal(
            RoleTag::Gatekeeper,
            sealer,
            counter,
            |w| {
                w.u16(u16::try_from(self.secrets.len()).expect("bounded by MAX_SECRETS"));
                for key in self.secrets.values() {
                    w.raw(key.to_bytes().expose());
                }
                match &self.candidate {
                    None => {
                        w.u8(0);
                    }
                    Some((epoch, proposal, key)) => {
                        w.u8(1).u64(epoch.0);
                        w.raw(&proposal.map_or([0; 32], |p| p.0));
                        w.raw(key.to_bytes().expose());
                    }
                }
                let shares = self
                    .shares
                    .iter()
                    .flat_map(|(master, shares)| shares.iter().map(move |h| (master, &h.share)));
                w.u16(u16::try_from(shares.clone().count()).expect("bounded by MAX_SHARES"));
                for (master, share) in shares {
                    w.raw(master)
                        .u16(share.index().get())
                        .raw(share.secret_bytes().expose());
                }
                self.signing.encode(w);
            },
            rng,
        )
    }

    /// Restores a gatekeeper from [`Gatekeeper::seal`]'s blob, refusing one sealed below the
    /// monotonic counter's value `minimum` (rolled back).
    ///
    /// # Errors
    /// A [`StateError`]; nothing is restored.
    pub fn restore(
        sealer: &Sealer,
        genesis: &EntryHash,
        blob: &SealedBlob,
        minimum: u64,
    ) -> Result<Self, StateError> {
        let (keys, (secrets, candidate, shares, signing)) =
            Keys::open(RoleTag::Gatekeeper, sealer, genesis, blob, minimum, |r| {
                let n = count(r, "secret count", MAX_SECRETS)?;
                let mut secrets = BTreeMap::new();
                for _ in 0..n {
                    let key = master(r)?;
                    secrets.insert(key.public_key().to_bytes(), key);
                }
                let candidate = match r.u8("candidate")? {
                    0 => None,
                    1 => {
                        let epoch = Epoch(r.u64("candidate epoch")?);
                        let proposal = r.array::<32>("candidate proposal")?;
                        let proposal = (proposal != [0; 32]).then_some(EntryHash(proposal));
                        Some((epoch, proposal, master(r)?))
                    }
                    _ => {
                        return Err(keyward_crypto::DecodeError::Invalid {
                            field: "candidate",
                            reason: "not 0 or 1",
                        });
                    }
                };
                let n = count(r, "share count", MAX_SHARES)?;
                let mut shares: BTreeMap<[u8; 32], Vec<Box<Held>>> = BTreeMap::new();
                for _ in 0..n {
                    let master = r.array::<32>("share's master public key")?;
                    let index = ShareIndex::new(r.u16("share index")?).ok_or(
                        keyward_crypto::DecodeError::Invalid {
                            field: "share index",
                            reason: "zero",
                        },
                    )?;
                    let share = KeyShare::from_bytes(index, &secret(r, "share")?)?;
                    shares
                        .entry(master)
                        .or_default()
                        .push(Box::new(Held::new(share)));
                }
                Ok((secrets, candidate, shares, Signing::decode(r)?))
            })?;
        Ok(Self {
            keys,
            secrets,
            candidate,
            partials: BTreeMap::new(),
            bad: crate::alarms::Alarms::default(),
            shares,
            partials_basis: None,
            dealer: None,
            bad_parts: crate::alarms::Alarms::default(),
            signing,
        })
    }

    /// The MasterKey of `epoch`, held or just created (the candidate the ledger now shows).
    fn secret_of(&self, registry: &Registry, epoch: Epoch) -> Option<&MasterKey> {
        let master = registry.epoch(epoch)?.record().committee().public_key();
        self.secrets.get(&master.to_bytes()).or_else(|| {
            self.candidate
                .as_ref()
                .map(|(_, _, key)| key)
                .filter(|key| key.public_key() == master)
        })
    }

    /// Threshold mode: its share of `epoch`'s MasterKey in the committee holding it now.
    fn share_of(&self, registry: &Registry, epoch: Epoch) -> Option<&Held> {
        self.share_in(registry.epoch(epoch)?.current().committee())
    }

    /// Its share in `committee`, if it holds one.
    fn share_in(&self, committee: &Committee) -> Option<&Held> {
        held_in(&self.shares, committee)
    }

    /// Keeps `share`, a member's share in a committee the ledger derived.
    fn keep_share(&mut self, committee: &Committee, share: KeyShare) {
        self.shares
            .entry(committee.public_key().to_bytes())
            .or_default()
            .push(Box::new(Held::new(share)));
    }

    /// Drops every share of no live committee: one an epoch has left by resharing, or one of an
    /// abandoned attempt. Returns whether it dropped any: the sealed state must then be stored
    /// again, so that a stolen copy of it holds nothing the ledger uses.
    fn drop_dead_shares(&mut self, registry: &Registry) -> bool {
        let before = self.held();
        // Live committees by master public key, as the shares are kept.
        let mut live: BTreeMap<[u8; 32], Vec<&Committee>> = BTreeMap::new();
        for committee in registry
            .epochs()
            .iter()
            .map(|s| s.current().committee())
            .chain(registry.reshares().values().filter_map(|r| r.committee()))
        {
            live.entry(committee.public_key().to_bytes())
                .or_default()
                .push(committee);
        }
        for (key, shares) in &mut self.shares {
            let live = live.get(key).map_or(&[][..], Vec::as_slice);
            shares.retain(|h| live.iter().any(|c| h.in_committee(c)));
        }
        self.shares.retain(|_, shares| !shares.is_empty());
        self.held() != before
    }

    /// Its dealer's seed in `run` (a DKG or a resharing): one-way from its channel seed, so a
    /// restarted gatekeeper deals exactly as before and never equivocates, with nothing new to
    /// seal.
    fn run_seed(&self, genesis: &EntryHash, run: RunId) -> SecretBytes<32> {
        let mut context = keyward_crypto::Writer::new();
        context.raw(&genesis.0).u64(run.epoch.0).u16(run.attempt);
        let label = match run.sharing {
            Sharing::Dkg => "keyward/v1/dkg-seed",
            Sharing::Reshare => "keyward/v1/reshare-seed",
        };
        self.keys.derive(label, context.as_slice())
    }

    /// Drops the cached partials once a resharing of the current epoch has replaced the share
    /// they were evaluated with.
    fn forget_stale_partials(&mut self, registry: &Registry) {
        let basis = registry
            .current_epoch()
            .and_then(|epoch| self.share_of(registry, epoch))
            .map(|h| h.y.to_bytes());
        if basis != self.partials_basis {
            self.partials.clear();
            self.partials_basis = basis;
        }
    }

    /// Its part in the DKG run under way (PROTOCOL §16.10): commit, deal, then finish (open and
    /// check its parts, seal its share, accept the epoch) or complain about a wrong part.
    fn dkg_step(
        &mut self,
        registry: &Registry,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<GatekeeperStep> {
        let Some((run, me)) = registry
            .dkg()
            .and_then(|run| Some((run, run.index_of(&self.id())?)))
        else {
            // Its polynomial is secret: forget it once the run is over or goes on without it.
            self.dealer = None;
            return None;
        };
        let genesis = registry.genesis().hash();
        if self.dealer.as_ref().map(|d| d.0) != Some(run.id()) {
            let seed = self.run_seed(&genesis, run.id());
            let dealer = Dealer::new(run.params().clone(), me, &seed).ok()?;
            self.dealer = Some(Box::new((run.id(), dealer)));
        }
        let (_, dealer) = self.dealer.as_deref().expect("set above");
        if !run.commitments().contains_key(&me) {
            return Some(GatekeeperStep::Submit(Body::DkgCommit(Box::new(
                DkgCommit {
                    run: run.id(),
                    commitment: dealer.commitment().clone(),
                },
            ))));
        }
        if !run.committed() {
            return None;
        }
        if !run.has_dealt(me) {
            let parts = dealer.parts(run.commitments()).ok()?;
            let others = run.members().iter().filter(|(i, _)| **i != me);
            let envelopes =
                self.seal_parts(registry, &genesis, run.id(), me, others, &parts, rng)?;
            return Some(GatekeeperStep::Submit(Body::DkgDeal(DkgDeal {
                run: run.id(),
                parts: envelopes,
            })));
        }
        let state = registry.epoch(run.id().epoch).filter(|_| run.dealt())?;
        if state.holders().contains(&self.id()) {
            return None;
        }
        let accept = Body::EpochAccept(EpochAccept {
            epochs: std::collections::BTreeSet::from([run.id().epoch]),
        });
        let committee = state.record().committee();
        if self.share_in(committee).is_some() {
            // Sealed before a restart; the acceptance did not land.
            return Some(GatekeeperStep::Submit(accept));
        }
        let dealers = run
            .members()
            .iter()
            .filter(|(i, _)| **i != me)
            .map(|(i, id)| (*i, id, run.part(*i, me)));
        let parts = match self.open_parts(&genesis, run.id(), me, dealers, |dealer, part| {
            run.commitments()[&dealer].verify_part(me, part)
        }) {
            Ok(parts) => parts,
            Err(blocked) => return self.blocked(blocked),
        };
        let (share, derived) = dealer.finish(run.commitments(), &parts).ok()?;
        if derived != *committee {
            return None;
        }
        self.keep_share(committee, share);
        Some(GatekeeperStep::SealThenSubmit(accept))
    }

    /// Opens the parts sealed to it (index `me`) in `run`, one per (dealer index, dealer, part
    /// envelope), checking each with `matches`. Every part is opened first: a part provably wrong
    /// is a complaint, which beats an unusable part (which only the council can resolve).
    ///
    /// # Errors
    /// Why it cannot finish yet: see [`Blocked`].
    fn open_parts<'a>(
        &self,
        genesis: &EntryHash,
        run: RunId,
        me: ShareIndex,
        dealers: impl Iterator<Item = (ShareIndex, &'a IdentityPublicKey, Option<&'a Envelope>)>,
        matches: impl Fn(ShareIndex, &SharePart) -> bool,
    ) -> Result<BTreeMap<ShareIndex, SharePart>, Blocked> {
        let mut parts = BTreeMap::new();
        let mut unusable = Vec::new();
        for (dealer, id, envelope) in dealers {
            let envelope = envelope.ok_or(Blocked::NotYet)?;
            match open_part(
                &self.keys.channel,
                genesis,
                run,
                (dealer, id),
                (me, &self.id()),
                envelope,
            ) {
                Ok(OpenedPart { part, signature }) if !matches(dealer, &part) => {
                    let complaint = Complaint {
                        run,
                        dealer,
                        part: *part.to_bytes().expose(),
                        signature,
                    };
                    return Err(Blocked::Complain(Box::new(match run.sharing {
                        Sharing::Dkg => Body::DkgComplaint(complaint),
                        Sharing::Reshare => Body::ReshareComplaint(complaint),
                    })));
                }
                Ok(OpenedPart { part, .. }) => {
                    parts.insert(dealer, part);
                }
                Err(reason) => unusable.push(BadPart {
                    run,
                    dealer: *id,
                    reason,
                }),
            }
        }
        if unusable.is_empty() {
            Ok(parts)
        } else {
            Err(Blocked::Unusable(unusable))
        }
    }

    /// What to do when [`Gatekeeper::open_parts`] is blocked: complain, or raise the alarms.
    fn blocked(&mut self, blocked: Blocked) -> Option<GatekeeperStep> {
        match blocked {
            Blocked::Complain(body) => Some(GatekeeperStep::Submit(*body)),
            Blocked::Unusable(bad) => {
                for bad in bad {
                    self.bad_parts.raise(bad);
                }
                None
            }
            Blocked::NotYet => None,
        }
    }

    /// Its part in the resharing runs under way (PROTOCOL §16.11): as an old member holding
    /// the epoch, deal until the dealers are chosen; as a new member, open and check its parts
    /// from the chosen dealers, then seal its new share and accept the epoch, or complain.
    fn reshare_step(
        &mut self,
        registry: &Registry,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<GatekeeperStep> {
        let me = self.id();
        let genesis = registry.genesis().hash();
        for (epoch, run) in registry.reshares() {
            match (run.committee(), run.index_of(&me)) {
                (Some(committee), Some(index)) if !run.accepted().contains(&me) => {
                    if let Some(step) = self.finish_reshare(&genesis, run, committee, index) {
                        return Some(step);
                    }
                }
                (None, _) => {
                    if let Some(step) = self.deal_reshare(registry, &genesis, run, *epoch, rng) {
                        return Some(step);
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// Its resharing deal for `run`, if it is an old member holding `epoch` that has not dealt.
    fn deal_reshare(
        &self,
        registry: &Registry,
        genesis: &EntryHash,
        run: &ReshareRun,
        epoch: Epoch,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<GatekeeperStep> {
        let me = self.id();
        let dealer = run
            .old_index_of(&me)
            .filter(|d| !run.excluded().contains(&me) && !run.commitments().contains_key(d))?;
        let share = self.share_of(registry, epoch)?;
        let (commitment, parts) = run
            .resharing()
            .deal(&share.share, &self.run_seed(genesis, run.id()))
            .ok()?;
        let envelopes = self.seal_parts(
            registry,
            genesis,
            run.id(),
            dealer,
            run.members().iter(),
            &parts,
            rng,
        )?;
        Some(GatekeeperStep::Submit(Body::ReshareDeal(Box::new(
            ReshareDeal {
                run: run.id(),
                commitment,
                parts: envelopes,
            },
        ))))
    }

    /// Seals `parts` to `recipients` (share index, identity) as `dealer` of `run`, in order; `None`
    /// if a recipient is not registered or its channel key is degenerate.
    #[allow(clippy::too_many_arguments)] // one call per kind of run; a struct would only rename them
    fn seal_parts<'a>(
        &self,
        registry: &Registry,
        genesis: &EntryHash,
        run: RunId,
        dealer: ShareIndex,
        recipients: impl Iterator<Item = (&'a ShareIndex, &'a IdentityPublicKey)>,
        parts: &BTreeMap<ShareIndex, SharePart>,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<Vec<Envelope>> {
        recipients
            .map(|(i, id)| {
                let member = Member {
                    index: *i,
                    id: *id,
                    channel: registry.node(id)?.channel,
                };
                seal_part(
                    &self.keys.identity,
                    genesis,
                    run,
                    dealer,
                    &member,
                    parts.get(i)?,
                    rng,
                )
                .ok()
            })
            .collect()
    }

    /// As new member `index` of `run`, whose dealers are chosen: its new share, sealed, then the
    /// acceptance; or a complaint.
    fn finish_reshare(
        &mut self,
        genesis: &EntryHash,
        run: &ReshareRun,
        committee: &Committee,
        index: ShareIndex,
    ) -> Option<GatekeeperStep> {
        let accept = Body::EpochAccept(EpochAccept {
            epochs: std::collections::BTreeSet::from([run.id().epoch]),
        });
        if self.share_in(committee).is_some() {
            // Sealed before a restart; the acceptance did not land.
            return Some(GatekeeperStep::Submit(accept));
        }
        let dealers = run
            .commitments()
            .keys()
            .map(|d| (*d, &run.old_members()[d], run.part(*d, index)));
        let parts = match self.open_parts(genesis, run.id(), index, dealers, |dealer, part| {
            run.commitments()[&dealer].verify_part(index, part)
        }) {
            Ok(parts) => parts,
            Err(blocked) => return self.blocked(blocked),
        };
        let (share, derived) = run
            .resharing()
            .finish(index, run.commitments(), &parts)
            .ok()?;
        if derived != *committee {
            return None;
        }
        self.keep_share(committee, share);
        Some(GatekeeperStep::SealThenSubmit(accept))
    }

    fn is_admitted(registry: &Registry, id: &IdentityPublicKey) -> bool {
        registry
            .node(id)
            .is_some_and(|n| n.is_active() && n.role == Role::Gatekeeper { admitted: true })
    }

    /// The next entry this gatekeeper should submit, decided from `registry` as it is now, or
    /// `None` when there is nothing to do. Call it again after every change of the registry and
    /// after every submission (whatever its outcome): a step that lost a race is recomputed.
    pub fn step(
        &mut self,
        registry: &Registry,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<GatekeeperStep> {
        let me = self.id();
        // Even a removed gatekeeper forgets the shares the ledger no longer uses.
        if registry.key_threshold() > 1 && self.drop_dead_shares(registry) {
            return Some(GatekeeperStep::Seal);
        }
        if !Self::is_admitted(registry, &me) {
            return None;
        }
        if registry.key_threshold() > 1 {
            // Threshold mode: epochs come from DKG runs, shares move by resharing, and no
            // gatekeeper can derive a cluster key to publish.
            self.forget_stale_partials(registry);
            if let Some(step) = self.dkg_step(registry, rng) {
                return Some(step);
            }
            if let Some(step) = self.reshare_step(registry, rng) {
                return Some(step);
            }
            self.prepare_partials(registry, rng);
            let shares = &self.shares;
            return self.signing.step(
                registry,
                &me,
                |committee| held_in(shares, committee).map(|h| &h.share),
                rng,
            );
        }
        self.settle_candidate(registry);
        if let Some(step) = self.accept(registry) {
            return Some(step);
        }
        self.prepare_partials(registry, rng);
        if let Some(step) = self.create(registry, rng) {
            return Some(step);
        }
        if let Some(step) = self.handoff(registry, rng) {
            return Some(step);
        }
        self.publish_cluster_key(registry)
    }

    /// Keeps the candidate's key if its epoch landed with it; drops it if the epoch landed with
    /// another key or its reason is gone.
    fn settle_candidate(&mut self, registry: &Registry) {
        let Some((epoch, proposal, key)) = self.candidate.take() else {
            return;
        };
        match registry.epoch(epoch) {
            Some(state) if state.record().committee().public_key() == key.public_key() => {
                self.secrets.insert(key.public_key().to_bytes(), key);
            }
            Some(_) => {}
            None if proposal.is_none() || registry.rotation() == proposal => {
                self.candidate = Some((epoch, proposal, key));
            }
            None => {}
        }
    }

    /// Opens every epoch secret sealed to this gatekeeper and accepts the ones that match.
    fn accept(&mut self, registry: &Registry) -> Option<GatekeeperStep> {
        let me = self.id();
        let genesis = registry.genesis().hash();
        let mut accepted = std::collections::BTreeSet::new();
        for state in registry.epochs() {
            let epoch = state.record().epoch();
            if state.holders().contains(&me) {
                continue;
            }
            let master = state.record().committee().public_key();
            for envelope in state.pending_for(&me) {
                match open_epoch_secret(&self.keys.channel, &me, &genesis, epoch, &master, envelope)
                {
                    Ok(key) => {
                        self.secrets.insert(master.to_bytes(), key);
                        accepted.insert(epoch);
                        break;
                    }
                    Err(reason) => {
                        let bad = BadSecret {
                            epoch,
                            sender: envelope.sender(),
                            reason,
                        };
                        self.bad.raise(bad);
                    }
                }
            }
        }
        (!accepted.is_empty()).then_some(GatekeeperStep::SealThenSubmit(Body::EpochAccept(
            EpochAccept { epochs: accepted },
        )))
    }

    /// Forgets the partials of contexts that are no longer current, and evaluates up to
    /// [`MAX_EVALUATIONS_PER_STEP`] current contexts it has none for.
    ///
    /// This runs on every step, so it never looks a cluster up by id: the cache and the registry
    /// both iterate in cluster-id order, and one merge pass over each pairs them.
    fn prepare_partials(&mut self, registry: &Registry, rng: &mut impl keyward_crypto::Rng) {
        let mut clusters = registry.clusters().peekable();
        self.partials.retain(|id, (context, _)| {
            while clusters.next_if(|(c, _)| *c < id).is_some() {}
            clusters
                .peek()
                .is_some_and(|(c, cluster)| *c == id && wanted(registry, cluster) == Some(*context))
        });
        let Some(epoch) = registry.current_epoch() else {
            return;
        };
        if self.secret_of(registry, epoch).is_none() && self.share_of(registry, epoch).is_none() {
            return;
        }
        let mut cached = self.partials.keys().peekable();
        let missing: Vec<ClusterKeyRequest> = registry
            .clusters()
            .filter_map(|(id, cluster)| {
                while cached.next_if(|c| *c < id).is_some() {}
                let context = wanted(registry, cluster)?;
                (cached.peek() != Some(&id)).then(|| ClusterKeyRequest {
                    epoch: context.epoch,
                    cluster: id.clone(),
                    generation: context.generation,
                })
            })
            .take(MAX_EVALUATIONS_PER_STEP)
            .collect();
        for request in missing {
            if let Some(partial) = self.evaluate(registry, &request, rng) {
                let context = KeyContext {
                    epoch: request.epoch,
                    generation: request.generation,
                };
                self.partials.insert(request.cluster, (context, partial));
            }
        }
    }

    /// Its partial evaluation of `request`, if it holds the epoch's MasterKey.
    fn evaluate(
        &self,
        registry: &Registry,
        request: &ClusterKeyRequest,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<Box<Partial>> {
        let classic;
        let (share, y) = match self.secret_of(registry, request.epoch) {
            // Classic mode: every holder evaluates as share index 1 (PROTOCOL §16.6).
            Some(master) => {
                classic = master.classic_share(ShareIndex::new(1).expect("1 is a valid index"));
                (&classic, master.public_key().element())
            }
            None => {
                let held = self.share_of(registry, request.epoch)?;
                (&held.share, held.y)
            }
        };
        let partial = request.evaluate(share, rng);
        Some(Box::new(answer_plaintext(
            &self.keys.identity,
            &registry.genesis().hash(),
            request,
            &y,
            &partial,
            rng,
        )))
    }

    /// Epoch 0 by the first admitted gatekeeper; a rotation's epoch by its committee's first
    /// member.
    fn create(
        &mut self,
        registry: &Registry,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<GatekeeperStep> {
        let me = self.id();
        let next = Epoch(registry.epochs().len() as u64);
        let (proposal, others) = if registry.epochs().is_empty() {
            let first = registry
                .gatekeepers()
                .filter(|(id, _)| Self::is_admitted(registry, id))
                .min_by_key(|(id, n)| (n.registered_at, **id))
                .map(|(id, _)| *id);
            if first != Some(me) {
                return None;
            }
            (None, Vec::new())
        } else {
            let proposal = registry.rotation()?;
            let Action::RotateMasterKey { committee } = &registry.proposal(&proposal)?.action
            else {
                return None;
            };
            if committee.first() != Some(&me)
                || registry
                    .epochs()
                    .iter()
                    .any(|s| s.proposal() == Some(proposal))
            {
                return None;
            }
            (Some(proposal), committee[1..].to_vec())
        };
        let others: Vec<(IdentityPublicKey, ChannelPublicKey)> = others
            .iter()
            .map(|id| registry.node(id).map(|n| (*id, n.channel)))
            .collect::<Option<_>>()?;
        let fresh = match &self.candidate {
            Some((epoch, p, _)) if *epoch == next && *p == proposal => false,
            _ => {
                self.candidate = Some((next, proposal, MasterKey::generate(rng)));
                true
            }
        };
        let (_, _, master) = self.candidate.as_ref().expect("set above");
        let body = EpochCreate::new(
            &self.keys.identity,
            &registry.genesis().hash(),
            next,
            master,
            &others,
            proposal,
            rng,
        )
        .ok()?;
        let body = Body::EpochCreate(Box::new(body));
        Some(if fresh {
            GatekeeperStep::SealThenSubmit(body)
        } else {
            GatekeeperStep::Submit(body)
        })
    }

    /// Hands every epoch this gatekeeper holds to an admitted gatekeeper that lacks it and has no
    /// envelope for it waiting (a pending epoch to its founders only).
    fn handoff(
        &mut self,
        registry: &Registry,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<GatekeeperStep> {
        let me = self.id();
        for (id, node) in registry.gatekeepers() {
            if *id == me || !Self::is_admitted(registry, id) {
                continue;
            }
            let mut secrets = Vec::new();
            for state in registry.epochs() {
                let epoch = state.record().epoch();
                let eligible =
                    state.status() != EpochStatus::Pending || state.founders().any(|f| f == id);
                let wanted = eligible
                    && state.holders().contains(&me)
                    && !state.holders().contains(id)
                    && state.pending_for(id).next().is_none();
                if let Some(key) = self.secret_of(registry, epoch).filter(|_| wanted) {
                    secrets.push((epoch, key));
                }
            }
            if secrets.is_empty() {
                continue;
            }
            let body = EpochHandoff::new(
                &self.keys.identity,
                &registry.genesis().hash(),
                (*id, node.channel),
                &secrets,
                rng,
            )
            .ok()?;
            return Some(GatekeeperStep::Submit(Body::EpochHandoff(body)));
        }
        None
    }

    /// Publishes the cluster key of each cluster's current key context that has none yet.
    fn publish_cluster_key(&self, registry: &Registry) -> Option<GatekeeperStep> {
        let epoch = registry.current_epoch()?;
        if !registry.epoch(epoch)?.holders().contains(&self.id()) {
            return None;
        }
        let master = self.secret_of(registry, epoch)?;
        for (id, cluster) in registry.clusters() {
            let Some(context) = wanted(registry, cluster) else {
                continue;
            };
            if cluster.key(context).is_some() {
                continue;
            }
            let key = ClusterKey::derive(master, epoch, id.clone(), context.generation);
            return Some(GatekeeperStep::Submit(Body::ClusterKeyPublish(
                ClusterKeyPublish {
                    cluster: id.clone(),
                    epoch,
                    generation: context.generation,
                    key: key.identity().public(),
                },
            )));
        }
        None
    }

    /// Answers a worker's provisioning request (the bytes of a [`ProvisionRequest`]): its partial
    /// evaluation and DLEQ proof, sealed to the worker's registered channel key.
    ///
    /// # Errors
    /// A [`ProvisionError`] saying why; nothing is evaluated.
    pub fn answer(
        &self,
        registry: &Registry,
        request: &[u8],
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Envelope, ProvisionError> {
        self.answer_all(registry, &[request], rng)
            .pop()
            .expect("one answer per request")
    }

    /// Answers many requests at once, one result per request, in order, each exactly as
    /// [`Gatekeeper::answer`] would; the signatures are checked as one batch
    /// ([`ProvisionRequest::verify_all`]), which is what makes a queue of requests cheaper to
    /// answer together.
    pub fn answer_all(
        &self,
        registry: &Registry,
        requests: &[&[u8]],
        rng: &mut impl keyward_crypto::Rng,
    ) -> Vec<Result<Envelope, ProvisionError>> {
        let genesis = registry.genesis().hash();
        let mut answers: Vec<Result<ProvisionRequest, ProvisionError>> = requests
            .iter()
            .map(|bytes| {
                let request = ProvisionRequest::from_registered(bytes, registry)?;
                if request.is_for(&self.id()) {
                    Ok(request)
                } else {
                    Err(ProvisionError::WrongGatekeeper)
                }
            })
            .collect();
        let decoded: Vec<&ProvisionRequest> = answers.iter().flatten().collect();
        let verdicts = ProvisionRequest::verify_all(&decoded, &genesis, rng);
        let mut verdicts = verdicts.into_iter();
        for answer in &mut answers {
            if answer.is_ok()
                && let Err(e) = verdicts.next().expect("one verdict per decoded request")
            {
                *answer = Err(e);
            }
        }
        answers
            .into_iter()
            .map(|request| self.seal_answer(registry, &genesis, &request?, rng))
            .collect()
    }

    /// Answers one decoded request whose signature verified.
    fn seal_answer(
        &self,
        registry: &Registry,
        genesis: &EntryHash,
        request: &ProvisionRequest,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Envelope, ProvisionError> {
        registry.may_provision(&request.worker, &request.request)?;
        let context = KeyContext {
            epoch: request.request.epoch,
            generation: request.request.generation,
        };
        let fresh;
        let partial = match self.partials.get(&request.request.cluster) {
            Some((cached, partial)) if *cached == context => partial,
            _ => {
                fresh = self
                    .evaluate(registry, &request.request, rng)
                    .ok_or(ProvisionError::NotHolder(request.request.epoch))?;
                &fresh
            }
        };
        let channel = registry
            .node(&request.worker)
            .expect("may_provision found the worker")
            .channel;
        Envelope::seal(
            &self.keys.identity,
            &channel,
            EnvelopePurpose::ClusterKey,
            &answer_aad(genesis, &request.worker, &request.request),
            partial.expose(),
            rng,
        )
        .map_err(|_| ProvisionError::BadAnswer {
            from: self.id().into(),
            reason: "the worker's channel key is degenerate",
        })
    }
}

/// The key context a gatekeeper provisions `cluster` under now, if it has members.
fn wanted(registry: &Registry, cluster: &Cluster) -> Option<KeyContext> {
    if cluster.members().is_empty() {
        return None;
    }
    registry.key_context_of(cluster)
}

fn master(r: &mut Reader<'_>) -> Result<MasterKey, keyward_crypto::DecodeError> {
    MasterKey::from_bytes(&secret(r, "master key")?)
}
