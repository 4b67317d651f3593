//! Kinds 18–20: the DKG that creates an epoch in threshold mode (PROTOCOL §16.10).
//!
//! The run for epoch 0 starts when the last bootstrap gatekeeper registers; its members are the
//! active admitted gatekeepers, in registration order, with share indices from 1. A member
//! named by an upheld complaint is excluded and the next attempt runs without it, keeping every
//! other member's index.

use std::collections::{BTreeMap, BTreeSet};

use keyward_crypto::{Envelope, IdentityPublicKey, SigningPurpose};
use keyward_hierarchy::{Epoch, EpochRecord};
use keyward_threshold::{DkgCommitment, DkgParams, ShareIndex, SharePart, dkg};

use super::{Effect, EpochState, EpochStatus, Event, Registry, Role};
use crate::dkg::{Complaint, DkgCommit, DkgDeal, RunId, Sharing, part_aad};
use crate::entry::EntryHash;
use crate::reject::Rejected;

/// A DKG run as the ledger records it.
///
/// Guarantees: every commitment verified for its member's index; every deal holds one part
/// envelope per other member, sealed by the dealer to that member's registered channel key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgRun {
    id: RunId,
    proposal: Option<EntryHash>,
    params: DkgParams,
    members: BTreeMap<ShareIndex, IdentityPublicKey>,
    commitments: BTreeMap<ShareIndex, DkgCommitment>,
    deals: BTreeMap<ShareIndex, Vec<Envelope>>,
    excluded: BTreeSet<IdentityPublicKey>,
}

impl DkgRun {
    /// The epoch and attempt.
    pub fn id(&self) -> RunId {
        self.id
    }

    /// The threshold and member indices.
    pub fn params(&self) -> &DkgParams {
        &self.params
    }

    /// The members, by share index.
    pub fn members(&self) -> &BTreeMap<ShareIndex, IdentityPublicKey> {
        &self.members
    }

    /// `id`'s share index, if it is a member.
    pub fn index_of(&self, id: &IdentityPublicKey) -> Option<ShareIndex> {
        keyward_hierarchy::checksum::index_of(&self.members, id)
    }

    /// The commitments posted so far.
    pub fn commitments(&self) -> &BTreeMap<ShareIndex, DkgCommitment> {
        &self.commitments
    }

    /// Every member has committed.
    pub fn committed(&self) -> bool {
        self.commitments.len() == self.members.len()
    }

    /// Whether `dealer` has dealt.
    pub fn has_dealt(&self, dealer: ShareIndex) -> bool {
        self.deals.contains_key(&dealer)
    }

    /// Every member has dealt: the epoch exists, pending until every member accepts it.
    pub fn dealt(&self) -> bool {
        self.deals.len() == self.members.len()
    }

    /// The part envelope `dealer` sealed to `recipient`, once it dealt.
    pub fn part(&self, dealer: ShareIndex, recipient: ShareIndex) -> Option<&Envelope> {
        let position = self
            .members
            .keys()
            .filter(|i| **i != dealer)
            .position(|i| *i == recipient)?;
        self.deals.get(&dealer)?.get(position)
    }

    /// Gatekeepers excluded from this epoch's runs by upheld complaints.
    pub fn excluded(&self) -> &BTreeSet<IdentityPublicKey> {
        &self.excluded
    }

    /// The rotation proposal the epoch is for (none for epoch 0).
    pub fn proposal(&self) -> Option<EntryHash> {
        self.proposal
    }
}

/// `ids` with share indices from 1, in order.
pub(super) fn indexed<'a>(
    ids: impl IntoIterator<Item = &'a IdentityPublicKey>,
) -> BTreeMap<ShareIndex, IdentityPublicKey> {
    (1..)
        .map(|i| ShareIndex::new(i).expect("indices start at 1"))
        .zip(ids.into_iter().copied())
        .collect()
}

impl Registry {
    /// The DKG run under way, if any.
    pub fn dkg(&self) -> Option<&DkgRun> {
        self.dkg.as_ref()
    }

    /// The MasterKey threshold: 1 is classic mode.
    pub fn key_threshold(&self) -> u16 {
        self.genesis.config().params.key_threshold
    }

    /// Refuses an entry unless the ledger is in threshold mode; `needs` says why the entry
    /// cannot exist in classic mode.
    pub(super) fn check_threshold_mode(&self, needs: &'static str) -> Result<(), Rejected> {
        if self.key_threshold() >= 2 {
            Ok(())
        } else {
            Err(Rejected::WrongKeyMode { needs })
        }
    }

    /// Refuses classic epoch entries in threshold mode.
    pub(super) fn check_classic_mode(&self) -> Result<(), Rejected> {
        if self.key_threshold() == 1 {
            Ok(())
        } else {
            Err(Rejected::WrongKeyMode {
                needs: "threshold mode creates epochs by DKG and moves shares by resharing",
            })
        }
    }

    /// The run `run` names and the author's index in it.
    fn run_member(
        &self,
        author: &IdentityPublicKey,
        run: RunId,
    ) -> Result<(&DkgRun, ShareIndex), Rejected> {
        self.check_threshold_mode(
            "classic mode creates epochs with epoch_create and epoch_handoff",
        )?;
        let current = self
            .dkg
            .as_ref()
            .filter(|r| r.id == run)
            .ok_or(Rejected::NoDkgRun {
                epoch: run.epoch,
                attempt: run.attempt,
            })?;
        let index = current.index_of(author).ok_or(Rejected::NotDkgMember)?;
        Ok((current, index))
    }

    /// Starts epoch 0's run once the last bootstrap gatekeeper has registered (threshold mode).
    pub(super) fn start_dkg_if_due(&mut self) -> Vec<Event> {
        let params = self.genesis.config().params;
        if params.key_threshold < 2
            || !self.epochs.is_empty()
            || self.dkg.is_some()
            || self.gatekeepers.len() != usize::from(params.bootstrap_gatekeepers)
        {
            return Vec::new();
        }
        let mut members: Vec<(u64, IdentityPublicKey)> = self
            .gatekeepers()
            .filter(|(_, n)| n.is_active() && n.role == Role::Gatekeeper { admitted: true })
            .map(|(id, n)| (n.registered_at, *id))
            .collect();
        members.sort();
        let members = indexed(members.iter().map(|(_, id)| id));
        self.start_run(
            RunId {
                sharing: Sharing::Dkg,
                epoch: Epoch(0),
                attempt: 0,
            },
            None,
            members,
            BTreeSet::new(),
        )
    }

    pub(super) fn start_run(
        &mut self,
        id: RunId,
        proposal: Option<EntryHash>,
        members: BTreeMap<ShareIndex, IdentityPublicKey>,
        excluded: BTreeSet<IdentityPublicKey>,
    ) -> Vec<Event> {
        match DkgParams::new(self.key_threshold(), members.keys().copied().collect()) {
            Ok(params) => {
                self.dkg = Some(DkgRun {
                    id,
                    proposal,
                    params,
                    members,
                    commitments: BTreeMap::new(),
                    deals: BTreeMap::new(),
                    excluded,
                });
                vec![Event::RunStarted { run: id }]
            }
            Err(_) => {
                self.dkg = None;
                let mut events = vec![Event::DkgFailed { epoch: id.epoch }];
                if let Some(proposal) = proposal {
                    events.extend(self.abandon_change(super::Change::Proposal(proposal)));
                }
                events
            }
        }
    }

    pub(super) fn check_dkg_commit(
        &self,
        author: IdentityPublicKey,
        commit: &DkgCommit,
    ) -> Result<Effect, Rejected> {
        let (run, index) = self.run_member(&author, commit.run)?;
        if run.commitments.contains_key(&index) {
            return Err(Rejected::DkgOutOfTurn("the member has already committed"));
        }
        commit
            .commitment
            .verify(index, &run.params)
            .map_err(Rejected::BadDkgCommitment)?;
        Ok(Effect::DkgCommit(
            index,
            Box::new(commit.commitment.clone()),
        ))
    }

    pub(super) fn check_dkg_deal(
        &self,
        author: IdentityPublicKey,
        deal: &DkgDeal,
    ) -> Result<Effect, Rejected> {
        let (run, index) = self.run_member(&author, deal.run)?;
        if !run.committed() {
            return Err(Rejected::DkgOutOfTurn("not every member has committed"));
        }
        if run.has_dealt(index) {
            return Err(Rejected::DkgOutOfTurn("the member has already dealt"));
        }
        let recipients: Vec<&IdentityPublicKey> = run
            .members
            .iter()
            .filter(|(i, _)| **i != index)
            .map(|(_, id)| id)
            .collect();
        if recipients.len() != deal.parts.len() {
            return Err(Rejected::BadSharePart {
                member: author.into(),
                reason: "a deal holds one part per other member",
            });
        }
        self.check_parts_sealed(deal.run, index, recipients.into_iter(), &deal.parts)?;
        let created = if run.deals.len() + 1 == run.members.len() {
            Some(Box::new(self.dkg_epoch(run)?))
        } else {
            None
        };
        Ok(Effect::DkgDeal {
            dealer: index,
            parts: deal.parts.clone(),
            created,
        })
    }

    /// The pending epoch a fully dealt run creates: its committee comes from the commitments.
    fn dkg_epoch(&self, run: &DkgRun) -> Result<EpochState, Rejected> {
        // Every commitment was verified when it landed.
        let committee = dkg::committee_of_verified(&run.params, &run.commitments)
            .map_err(Rejected::BadDkgCommitment)?;
        self.check_fresh_master(&committee.public_key(), run.id.epoch)?;
        let record = EpochRecord::new(run.id.epoch, committee, run.members.clone())
            .expect("the committee's members are the run's");
        let checksum = self.checksum().next(&record);
        Ok(EpochState::created(
            record,
            checksum,
            BTreeSet::new(),
            BTreeMap::new(),
            run.proposal,
        ))
    }

    pub(super) fn check_dkg_complaint(
        &self,
        author: IdentityPublicKey,
        complaint: &Complaint,
    ) -> Result<Effect, Rejected> {
        let (run, index) = self.run_member(&author, complaint.run)?;
        let dealer = complaint.dealer;
        let Some(dealer_id) = run.members.get(&dealer).filter(|_| dealer != index) else {
            return Err(Rejected::BadComplaint("the dealer is not another member"));
        };
        if !run.has_dealt(dealer) {
            return Err(Rejected::DkgOutOfTurn("the dealer has not dealt"));
        }
        let accepted = self
            .epoch(run.id.epoch)
            .is_some_and(|s| s.holders().contains(&author));
        if accepted {
            return Err(Rejected::DkgOutOfTurn("the member accepted the epoch"));
        }
        self.check_revealed(complaint, dealer_id, index, |part| {
            run.commitments[&dealer].verify_part(index, part)
        })?;
        Ok(Effect::DkgComplaint(*dealer_id))
    }

    /// Checks that each of `parts` is sealed by `dealer` of `run` to the registered channel key of
    /// its recipient, in order, with the part aad. Purpose, sender and signature were checked
    /// before the registry saw the entry (`DkgDeal::check`, `ReshareDeal::check`).
    pub(super) fn check_parts_sealed<'a>(
        &self,
        run: RunId,
        dealer: ShareIndex,
        recipients: impl Iterator<Item = &'a IdentityPublicKey>,
        parts: &[Envelope],
    ) -> Result<(), Rejected> {
        let genesis = self.genesis.hash();
        for (member, envelope) in recipients.zip(parts) {
            let bad = |reason| {
                Err(Rejected::BadSharePart {
                    member: (*member).into(),
                    reason,
                })
            };
            if envelope.recipient() != self.nodes[member].channel {
                return bad("not sealed to the member's registered channel key");
            }
            if envelope.aad() != part_aad(&genesis, run, dealer, member).as_slice() {
                return bad("additional data names another ledger, run, dealer or recipient");
            }
        }
        Ok(())
    }

    /// Checks a complaint's revealed part: `dealer` signed it for the author's `index` in the
    /// complaint's run, and it fails `matches` (the dealer's commitment at `index`). A signed part
    /// that is not even a canonical scalar convicts its dealer too.
    pub(super) fn check_revealed(
        &self,
        complaint: &Complaint,
        dealer: &IdentityPublicKey,
        index: ShareIndex,
        matches: impl FnOnce(&SharePart) -> bool,
    ) -> Result<(), Rejected> {
        let message = crate::dkg::part_message(
            &self.genesis.hash(),
            complaint.run,
            complaint.dealer,
            index,
            &complaint.part,
        );
        dealer
            .verify(SigningPurpose::SharePart, &message, &complaint.signature)
            .map_err(|_| Rejected::BadComplaint("the dealer's signature does not verify"))?;
        if SharePart::from_bytes(&keyward_crypto::SecretBytes::new(complaint.part))
            .is_ok_and(|part| matches(&part))
        {
            return Err(Rejected::BadComplaint(
                "the part matches the dealer's commitment",
            ));
        }
        Ok(())
    }

    pub(super) fn commit_dkg_commit(
        &mut self,
        index: ShareIndex,
        commitment: DkgCommitment,
    ) -> Vec<Event> {
        let run = self.dkg.as_mut().expect("checked");
        run.commitments.insert(index, commitment);
        Vec::new()
    }

    pub(super) fn commit_dkg_deal(
        &mut self,
        dealer: ShareIndex,
        parts: Vec<Envelope>,
        created: Option<Box<EpochState>>,
    ) -> Vec<Event> {
        let run = self.dkg.as_mut().expect("checked");
        run.deals.insert(dealer, parts);
        match created {
            Some(state) => {
                let epoch = state.record().epoch();
                self.epochs.push(*state);
                vec![Event::EpochCreated { epoch }]
            }
            None => Vec::new(),
        }
    }

    /// An upheld complaint: the attempt (and the epoch it created, if any) is abandoned, and the
    /// next attempt runs without the dealer.
    pub(super) fn commit_dkg_complaint(&mut self, dealer: IdentityPublicKey) -> Vec<Event> {
        let run = self.dkg.take().expect("checked");
        let mut events = vec![Event::DealerExcluded {
            run: run.id,
            dealer,
        }];
        let (abandoned, _) = self.drop_pending_dkg_epoch(run.id.epoch);
        events.extend(abandoned);
        events.extend(self.next_attempt(run, [dealer]));
        events
    }

    /// The council abandoned the run's attempt (a member is down, or sent a part it cannot
    /// prove wrong): its epoch, if created, is dropped, and the next attempt runs without every
    /// member that had not done its part of the current step (commit, deal or accept), so that
    /// one member cannot stall the network.
    pub(super) fn abandon_dkg_attempt(&mut self) -> Vec<Event> {
        let run = self.dkg.take().expect("validated: a run is under way");
        let (mut events, holders) = self.drop_pending_dkg_epoch(run.id.epoch);
        let done = |index: &ShareIndex, id: &IdentityPublicKey| {
            if !run.committed() {
                run.commitments.contains_key(index)
            } else if !run.dealt() {
                run.deals.contains_key(index)
            } else {
                holders.contains(id)
            }
        };
        // An attempt nobody has acted on yet (one that a complaint just started, say) excludes
        // nobody: there is no silent member to tell from the rest.
        let anyone = run.members.iter().any(|(i, id)| done(i, id));
        let stalled: Vec<IdentityPublicKey> = run
            .members
            .iter()
            .filter(|(i, id)| anyone && !done(i, id))
            .map(|(_, id)| *id)
            .collect();
        events.extend(self.next_attempt(run, stalled));
        events
    }

    /// Drops `epoch` if a run created it and it is still pending (its `S_e` is never used
    /// again); returns the event and the members that had accepted it.
    fn drop_pending_dkg_epoch(
        &mut self,
        epoch: Epoch,
    ) -> (Vec<Event>, BTreeSet<IdentityPublicKey>) {
        let pending = self
            .epochs
            .last()
            .is_some_and(|s| s.record().epoch() == epoch && s.status() == EpochStatus::Pending);
        if !pending {
            return (Vec::new(), BTreeSet::new());
        }
        let abandoned = self.drop_pending_epoch();
        (
            vec![Event::EpochAbandoned { epoch }],
            abandoned.holders().clone(),
        )
    }

    /// Starts `run`'s next attempt without `leaving`, who join its excluded set.
    fn next_attempt(
        &mut self,
        run: DkgRun,
        leaving: impl IntoIterator<Item = IdentityPublicKey>,
    ) -> Vec<Event> {
        let mut excluded = run.excluded;
        excluded.extend(leaving);
        let members = run
            .members
            .into_iter()
            .filter(|(_, id)| !excluded.contains(id))
            .collect();
        let Some(attempt) = run.id.attempt.checked_add(1) else {
            // Attempt numbers are never reused: after the last one the epoch's DKG fails.
            return self.start_run(run.id, run.proposal, BTreeMap::new(), excluded);
        };
        let next = RunId {
            sharing: Sharing::Dkg,
            epoch: run.id.epoch,
            attempt,
        };
        self.start_run(next, run.proposal, members, excluded)
    }

    /// Whether `author` may accept `epoch` as a member of the run that created it.
    pub(super) fn accepts_dkg_epoch(&self, author: &IdentityPublicKey, epoch: Epoch) -> bool {
        self.dkg
            .as_ref()
            .is_some_and(|r| r.id.epoch == epoch && r.dealt() && r.index_of(author).is_some())
    }

    /// Whether `id` is a member of the run under way (it may not leave until the run ends).
    pub(super) fn in_dkg(&self, id: &IdentityPublicKey) -> Option<Epoch> {
        self.dkg
            .as_ref()
            .filter(|r| r.index_of(id).is_some())
            .map(|r| r.id.epoch)
    }

    /// The run ends when its epoch activates.
    pub(super) fn end_dkg(&mut self, epoch: Epoch) {
        if self.dkg.as_ref().is_some_and(|r| r.id.epoch == epoch) {
            self.dkg = None;
        }
    }
}
