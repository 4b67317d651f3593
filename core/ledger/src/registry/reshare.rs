//! Kinds 21–22: resharing an epoch's MasterKey to another committee, or refreshing it, in
//! threshold mode (PROTOCOL §16.11).
//!
//! An approved rotation, replacement or refresh starts one run per epoch. Any old committee
//! member that still holds the epoch deals ([`ReshareDeal`]); the first `t` valid deals (the old
//! threshold) are the dealers, and every node derives the new committee from their commitments.
//! Each new member opens its parts, checks them and accepts the epoch (`EpochAccept`), or reveals
//! a wrong part in a complaint; an upheld complaint restarts the run without that dealer. When
//! every new member has accepted, the new committee holds the epoch and the old shares are
//! useless; when every run is done, the change completes.

use std::collections::{BTreeMap, BTreeSet};

use keyward_crypto::{Envelope, IdentityPublicKey};
use keyward_hierarchy::checksum::index_of;
use keyward_hierarchy::{Epoch, EpochRecord};
use keyward_threshold::{Committee, ReshareCommitment, Resharing, ShareIndex};

use super::{Effect, Event, ProposalStatus, Registry};
use crate::council::Action;
use crate::dkg::{Complaint, ReshareDeal, RunId, Sharing};
use crate::entry::EntryHash;
use crate::reject::Rejected;

/// Why the epochs are being reshared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// An approved council proposal: a rotation, a replacement or a refresh.
    Proposal(EntryHash),
    /// A refresh on the genesis schedule (`refresh_interval`).
    Scheduled,
}

/// One epoch's resharing run.
///
/// Guarantees: every commitment verified against its dealer's verification share; every deal
/// holds one part envelope per new member, sealed to that member's registered channel key; the
/// new committee is set exactly when the old threshold of deals is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshareRun {
    id: RunId,
    resharing: Resharing,
    /// The old committee's members, by share index.
    old: BTreeMap<ShareIndex, IdentityPublicKey>,
    /// The new members, by share index.
    members: BTreeMap<ShareIndex, IdentityPublicKey>,
    commitments: BTreeMap<ShareIndex, ReshareCommitment>,
    parts: BTreeMap<ShareIndex, Vec<Envelope>>,
    /// The new committee, once the dealers are chosen.
    committee: Option<Committee>,
    accepted: BTreeSet<IdentityPublicKey>,
    excluded: BTreeSet<IdentityPublicKey>,
}

impl ReshareRun {
    /// The epoch and attempt.
    pub fn id(&self) -> RunId {
        self.id
    }

    /// The old committee, the new threshold and the new member indices.
    pub fn resharing(&self) -> &Resharing {
        &self.resharing
    }

    /// The old committee's members, by share index.
    pub fn old_members(&self) -> &BTreeMap<ShareIndex, IdentityPublicKey> {
        &self.old
    }

    /// The new members, by share index.
    pub fn members(&self) -> &BTreeMap<ShareIndex, IdentityPublicKey> {
        &self.members
    }

    /// `id`'s index among the new members.
    pub fn index_of(&self, id: &IdentityPublicKey) -> Option<ShareIndex> {
        index_of(&self.members, id)
    }

    /// `id`'s index in the old committee.
    pub fn old_index_of(&self, id: &IdentityPublicKey) -> Option<ShareIndex> {
        index_of(&self.old, id)
    }

    /// The dealers' commitments so far; once the dealers are chosen, exactly theirs.
    pub fn commitments(&self) -> &BTreeMap<ShareIndex, ReshareCommitment> {
        &self.commitments
    }

    /// The part envelope `dealer` sealed to new member `recipient`, once it dealt.
    pub fn part(&self, dealer: ShareIndex, recipient: ShareIndex) -> Option<&Envelope> {
        let position = self.members.keys().position(|i| *i == recipient)?;
        self.parts.get(&dealer)?.get(position)
    }

    /// The new committee, once the dealers are chosen (every node derives it).
    pub fn committee(&self) -> Option<&Committee> {
        self.committee.as_ref()
    }

    /// The new members that have accepted.
    pub fn accepted(&self) -> &BTreeSet<IdentityPublicKey> {
        &self.accepted
    }

    /// Dealers excluded from this epoch's resharing by upheld complaints.
    pub fn excluded(&self) -> &BTreeSet<IdentityPublicKey> {
        &self.excluded
    }
}

impl Registry {
    /// The resharing runs under way, by epoch.
    pub fn reshares(&self) -> &BTreeMap<Epoch, ReshareRun> {
        &self.reshares
    }

    /// The change whose resharing is under way.
    pub fn resharing(&self) -> Option<Change> {
        self.resharing
    }

    /// Starts a scheduled refresh (threshold mode, genesis `refresh_interval > 0`) once that many
    /// entries have passed since the shares last changed, unless a DKG or another change runs.
    pub(super) fn refresh_if_due(&mut self) -> Vec<Event> {
        let interval = self.genesis.config().params.refresh_interval;
        if interval == 0
            || self.current.is_none()
            || self.dkg.is_some()
            || self.rotation.is_some()
            || self.resharing.is_some()
            || self.height < self.shares_changed_at.saturating_add(interval)
        {
            return Vec::new();
        }
        let mut events = self.start_resharing(Change::Scheduled, None);
        if self.reshares.is_empty() {
            // Every epoch's resharing attempts are used up: nothing to wait for.
            events.extend(self.abandon_change(Change::Scheduled));
        }
        events
    }

    /// Starts resharing every epoch for `change`: to `members` (a rotation or replacement), or,
    /// for `None`, to each epoch's current members that still hold it, with their indices (a
    /// refresh: a member that has left could never accept).
    pub(super) fn start_resharing(
        &mut self,
        change: Change,
        members: Option<&BTreeMap<ShareIndex, IdentityPublicKey>>,
    ) -> Vec<Event> {
        self.resharing = Some(change);
        let runs: Vec<(Epoch, BTreeMap<ShareIndex, IdentityPublicKey>)> = self
            .epochs
            .iter()
            .map(|s| {
                let members = members.cloned().unwrap_or_else(|| {
                    s.current()
                        .gatekeepers()
                        .iter()
                        .filter(|(_, id)| s.holders().contains(*id))
                        .map(|(i, id)| (*i, *id))
                        .collect()
                });
                (s.record().epoch(), members)
            })
            .collect();
        runs.into_iter()
            .filter_map(|(epoch, members)| self.start_reshare_run(epoch, members, BTreeSet::new()))
            .collect()
    }

    /// Starts the next resharing attempt of `epoch`, or returns `None` if the new member set
    /// cannot hold the deployment's threshold (validation rules that out).
    fn start_reshare_run(
        &mut self,
        epoch: Epoch,
        members: BTreeMap<ShareIndex, IdentityPublicKey>,
        excluded: BTreeSet<IdentityPublicKey>,
    ) -> Option<Event> {
        let threshold = self.key_threshold();
        let state = self.epoch_mut(epoch);
        let old = state.current().clone();
        let resharing = Resharing::new(
            old.committee().clone(),
            threshold,
            members.keys().copied().collect(),
        )
        .ok()?;
        // Attempt numbers are never reused; after the last one the epoch is not reshared.
        let attempt = state.next_reshare_attempt()?;
        let id = RunId {
            sharing: Sharing::Reshare,
            epoch,
            attempt,
        };
        self.reshares.insert(
            epoch,
            ReshareRun {
                id,
                resharing,
                old: old.gatekeepers().clone(),
                members,
                commitments: BTreeMap::new(),
                parts: BTreeMap::new(),
                committee: None,
                accepted: BTreeSet::new(),
                excluded,
            },
        );
        Some(Event::RunStarted { run: id })
    }

    /// The run `id` names (threshold mode).
    fn reshare_run(&self, id: RunId) -> Result<&ReshareRun, Rejected> {
        self.check_threshold_mode(
            "classic mode hands epochs over with epoch_handoff, not resharing",
        )?;
        self.reshares
            .get(&id.epoch)
            .filter(|r| r.id == id)
            .ok_or(Rejected::NoDkgRun {
                epoch: id.epoch,
                attempt: id.attempt,
            })
    }

    pub(super) fn check_reshare_deal(
        &self,
        author: IdentityPublicKey,
        deal: &ReshareDeal,
    ) -> Result<Effect, Rejected> {
        let run = self.reshare_run(deal.run)?;
        let holds = self
            .epoch(deal.run.epoch)
            .is_some_and(|s| s.holders().contains(&author));
        let dealer = run
            .old_index_of(&author)
            .filter(|_| holds && !run.excluded.contains(&author))
            .ok_or(Rejected::NotDkgMember)?;
        if run.committee.is_some() {
            return Err(Rejected::DkgOutOfTurn("the dealers are chosen"));
        }
        if run.commitments.contains_key(&dealer) {
            return Err(Rejected::DkgOutOfTurn("the member has already dealt"));
        }
        run.resharing
            .verify_commitment(dealer, &deal.commitment)
            .map_err(Rejected::BadDkgCommitment)?;
        if deal.parts.len() != run.members.len() {
            return Err(Rejected::BadSharePart {
                member: author.into(),
                reason: "a deal holds one part per new member",
            });
        }
        self.check_parts_sealed(deal.run, dealer, run.members.values(), &deal.parts)?;
        let chosen = if run.commitments.len() + 1 == usize::from(run.resharing.old().threshold()) {
            let mut commitments = run.commitments.clone();
            commitments.insert(dealer, deal.commitment.clone());
            let committee = run
                .resharing
                .committee(&commitments)
                .map_err(Rejected::BadDkgCommitment)?;
            Some(Box::new(committee))
        } else {
            None
        };
        Ok(Effect::ReshareDeal {
            dealer,
            deal: Box::new(deal.clone()),
            chosen,
        })
    }

    pub(super) fn commit_reshare_deal(
        &mut self,
        dealer: ShareIndex,
        deal: ReshareDeal,
        chosen: Option<Box<Committee>>,
    ) -> Vec<Event> {
        let run = self.reshares.get_mut(&deal.run.epoch).expect("checked");
        run.commitments.insert(dealer, deal.commitment);
        run.parts.insert(dealer, deal.parts);
        match chosen {
            Some(committee) => {
                run.committee = Some(*committee);
                vec![Event::DealersChosen { run: run.id }]
            }
            None => Vec::new(),
        }
    }

    pub(super) fn check_reshare_complaint(
        &self,
        author: IdentityPublicKey,
        complaint: &Complaint,
    ) -> Result<Effect, Rejected> {
        let run = self.reshare_run(complaint.run)?;
        let index = run.index_of(&author).ok_or(Rejected::NotDkgMember)?;
        if run.committee.is_none() {
            return Err(Rejected::DkgOutOfTurn("the dealers are not chosen yet"));
        }
        if run.accepted.contains(&author) {
            return Err(Rejected::DkgOutOfTurn("the member accepted the epoch"));
        }
        let dealer = complaint.dealer;
        let (Some(commitment), Some(dealer_id)) =
            (run.commitments.get(&dealer), run.old.get(&dealer))
        else {
            return Err(Rejected::BadComplaint("the dealer is not a chosen dealer"));
        };
        self.check_revealed(complaint, dealer_id, index, |part| {
            commitment.verify_part(index, part)
        })?;
        Ok(Effect::ReshareComplaint(run.id, *dealer_id))
    }

    /// An upheld complaint: the run restarts, as a new attempt, without the dealer.
    pub(super) fn commit_reshare_complaint(
        &mut self,
        run: RunId,
        dealer: IdentityPublicKey,
    ) -> Vec<Event> {
        let old = self.reshares.remove(&run.epoch).expect("checked");
        let mut excluded = old.excluded;
        excluded.insert(dealer);
        let mut events = vec![Event::DealerExcluded { run, dealer }];
        match self.start_reshare_run(run.epoch, old.members, excluded) {
            Some(started) => events.push(started),
            // The epoch's attempts ran out: the change can never complete.
            None => {
                let change = self.resharing.expect("a run belongs to a change");
                events.extend(self.abandon_change(change));
            }
        }
        events
    }

    /// Whether `author` may accept `epoch` as a new member of its resharing.
    pub(super) fn accepts_reshared_epoch(&self, author: &IdentityPublicKey, epoch: Epoch) -> bool {
        self.reshares.get(&epoch).is_some_and(|r| {
            r.committee.is_some() && r.index_of(author).is_some() && !r.accepted.contains(author)
        })
    }

    /// Records `author`'s acceptance of `epoch`'s resharing; the last one moves the epoch to the
    /// new committee.
    pub(super) fn accept_reshared(
        &mut self,
        author: IdentityPublicKey,
        epoch: Epoch,
    ) -> Vec<Event> {
        let run = self.reshares.get_mut(&epoch).expect("checked");
        run.accepted.insert(author);
        if run.accepted.len() < run.members.len() {
            return Vec::new();
        }
        let run = self.reshares.remove(&epoch).expect("present");
        let committee = run.committee.expect("accepted only once chosen");
        let current = EpochRecord::new(epoch, committee, run.members)
            .expect("the committee's members are the run's");
        self.epoch_mut(epoch).reshared(current);
        self.restart_signing(epoch);
        let mut events = vec![Event::Reshared { epoch }];
        events.extend(self.finish_resharing_if_done());
        events
    }

    /// Ends a change that can no longer complete (a rotation's DKG failed, or an epoch's
    /// resharing attempts ran out): its resharing runs stop, the epochs stay with their current
    /// committees, and its proposal, if any, is abandoned.
    pub(super) fn abandon_change(&mut self, change: Change) -> Vec<Event> {
        self.reshares.clear();
        self.resharing = None;
        self.shares_changed_at = self.height;
        let Change::Proposal(proposal) = change else {
            return Vec::new();
        };
        if self.rotation == Some(proposal) {
            self.rotation = None;
        }
        self.proposals
            .get_mut(&proposal)
            .expect("the change's proposal")
            .status = ProposalStatus::Abandoned;
        vec![Event::ProposalFailed { proposal }]
    }

    /// Once every run is done, a replacement removes the gatekeepers outside its set and a
    /// refresh is executed; a rotation ends when its new epoch activates.
    fn finish_resharing_if_done(&mut self) -> Vec<Event> {
        let Some(change) = self.resharing.filter(|_| self.reshares.is_empty()) else {
            return Vec::new();
        };
        self.resharing = None;
        self.shares_changed_at = self.height;
        let Change::Proposal(id) = change else {
            return vec![Event::SharesRefreshed];
        };
        let mut events = Vec::new();
        match &self.proposals[&id].action {
            Action::RotateMasterKey { .. } => return events,
            Action::ReplaceGatekeepers { set } => {
                let set = set.clone();
                events.extend(self.remove_gatekeepers_outside(&set));
            }
            Action::RefreshShares => {}
            Action::RemoveWorker { .. }
            | Action::RekeyCluster { .. }
            | Action::AbandonEpoch { .. } => unreachable!("only gatekeeper changes reshare"),
        }
        self.proposals.get_mut(&id).expect("exists").status = ProposalStatus::Executed;
        events.push(Event::ProposalExecuted { proposal: id });
        events
    }
}
