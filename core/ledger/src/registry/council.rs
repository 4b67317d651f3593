//! Kinds 16–17: proposals, approvals, and what an approved action does. A rotation runs in two
//! steps: approval admits the new committee and opens the rotation; the new epoch's activation
//! (registry/epochs.rs) removes every gatekeeper outside the committee and closes it.

use std::collections::BTreeSet;

use keyward_crypto::IdentityPublicKey;

use keyward_hierarchy::Epoch;

use super::{Change, Effect, EpochStatus, Event, Registry, Role, Status};
use crate::body::Kind;
use crate::council::{Action, Approval, Proposal};
use crate::dkg::{RunId, Sharing};
use crate::entry::EntryHash;
use crate::reject::Rejected;

/// Where a proposal is in its life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProposalStatus {
    /// Collecting approvals until its expiry height.
    Open,
    /// A rotation approved and running (the new epoch is not active yet), or in threshold mode
    /// a replacement or refresh whose resharing is not done.
    Approved,
    /// Done.
    Executed,
    /// Reached the threshold when its action was no longer valid; nothing happened.
    Failed(Box<Rejected>),
    /// A rotation whose epoch the council abandoned.
    Abandoned,
}

/// A council proposal as the ledger records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalState {
    /// Who proposed it.
    pub proposer: IdentityPublicKey,
    /// What it does.
    pub action: Action,
    /// Council members that approved it, the proposer included.
    pub approvals: BTreeSet<IdentityPublicKey>,
    /// The last height at which an approval counts.
    pub expires_at: u64,
    /// Where it is.
    pub status: ProposalStatus,
}

impl Registry {
    /// The proposal `id` (its entry hash).
    pub fn proposal(&self, id: &EntryHash) -> Option<&ProposalState> {
        self.proposals.get(id)
    }

    /// The approved rotation whose epoch is not active yet.
    pub fn rotation(&self) -> Option<EntryHash> {
        self.rotation
    }

    fn is_active_gatekeeper(&self, id: &IdentityPublicKey) -> bool {
        self.nodes
            .get(id)
            .is_some_and(|n| n.is_active() && matches!(n.role, Role::Gatekeeper { .. }))
    }

    /// A rotation, replacement or refresh needs no change or DKG running, an active epoch and
    /// none pending, and at least the key threshold of active gatekeepers as new members (a
    /// refresh names none: its members stay).
    fn check_gatekeeper_change<'a>(
        &self,
        members: impl IntoIterator<Item = &'a IdentityPublicKey>,
    ) -> Result<(), Rejected> {
        let invalid = |reason| Err(Rejected::InvalidAction { reason });
        if self.rotation.is_some() || self.resharing.is_some() {
            return Err(Rejected::RotationInProgress);
        }
        if self.dkg().is_some() {
            return invalid("a DKG is under way");
        }
        if self.current.is_none() {
            return invalid("no epoch is active");
        }
        if self.epochs.last().map(|s| s.status()) == Some(EpochStatus::Pending) {
            return invalid("an epoch is pending");
        }
        let mut count = 0;
        for member in members {
            if !self.is_active_gatekeeper(member) {
                return invalid("a member is not an active gatekeeper");
            }
            count += 1;
        }
        if count > 0 && count < usize::from(self.key_threshold()) {
            return invalid("fewer members than the key threshold");
        }
        Ok(())
    }

    /// Whether `action` can run now.
    fn validate(&self, action: &Action) -> Result<(), Rejected> {
        let invalid = |reason| Err(Rejected::InvalidAction { reason });
        match action {
            Action::RotateMasterKey { committee } => self.check_gatekeeper_change(committee),
            Action::RefreshShares if self.key_threshold() == 1 => {
                invalid("classic mode has no shares to refresh")
            }
            Action::RefreshShares => self.check_gatekeeper_change(None),
            Action::ReplaceGatekeepers { set } => {
                self.check_gatekeeper_change(set)?;
                // Threshold mode reshares every epoch to the set instead.
                if self.key_threshold() == 1
                    && self.epochs.iter().any(|s| s.holders().is_disjoint(set))
                {
                    return invalid("the set would hold no copy of an epoch");
                }
                Ok(())
            }
            Action::RemoveWorker { worker } => {
                let active = self
                    .nodes
                    .get(worker)
                    .is_some_and(|n| n.is_active() && n.role == Role::Worker);
                if active {
                    Ok(())
                } else {
                    invalid("not an active worker")
                }
            }
            Action::RekeyCluster { cluster } => {
                if self.clusters.contains_key(cluster) {
                    Ok(())
                } else {
                    invalid("no such cluster")
                }
            }
            Action::AbandonEpoch { epoch }
                if self.dkg().is_some_and(|r| r.id().epoch == *epoch) =>
            {
                Ok(())
            }
            Action::AbandonEpoch { epoch } => match self.epochs.last() {
                Some(s) if s.record().epoch() == *epoch && s.status() == EpochStatus::Pending => {
                    Ok(())
                }
                _ => invalid("not the pending epoch"),
            },
        }
    }

    fn check_council_author(&self, author: &IdentityPublicKey, kind: Kind) -> Result<(), Rejected> {
        if self.genesis.config().council.contains(author) {
            Ok(())
        } else {
            Err(Rejected::WrongAuthor {
                kind,
                needs: "a council member",
            })
        }
    }

    pub(super) fn check_propose(
        &self,
        author: IdentityPublicKey,
        proposal: &Proposal,
    ) -> Result<Effect, Rejected> {
        self.check_council_author(&author, Kind::CouncilPropose)?;
        let max = self.genesis.config().params.max_proposal_ttl;
        if proposal.ttl == 0 || proposal.ttl > max {
            return Err(Rejected::BadTtl { max });
        }
        self.validate(&proposal.action)?;
        Ok(Effect::Propose(Box::new(proposal.clone())))
    }

    pub(super) fn check_approve(
        &self,
        author: IdentityPublicKey,
        approval: Approval,
    ) -> Result<Effect, Rejected> {
        self.check_council_author(&author, Kind::CouncilApprove)?;
        let state = self
            .proposals
            .get(&approval.proposal)
            .ok_or(Rejected::UnknownProposal)?;
        if state.status != ProposalStatus::Open {
            return Err(Rejected::ProposalClosed);
        }
        if self.height > state.expires_at {
            return Err(Rejected::ProposalExpired {
                expired_at: state.expires_at,
            });
        }
        if state.approvals.contains(&author) {
            return Err(Rejected::AlreadyApproved);
        }
        let reached = state.approvals.len() + 1 >= usize::from(self.genesis.config().threshold);
        let outcome = reached.then(|| self.validate(&state.action).map_err(Box::new));
        Ok(Effect::Approve {
            proposal: approval.proposal,
            outcome,
        })
    }

    pub(super) fn commit_propose(
        &mut self,
        author: IdentityPublicKey,
        id: EntryHash,
        proposal: Proposal,
    ) -> Vec<Event> {
        let state = ProposalState {
            proposer: author,
            action: proposal.action,
            approvals: BTreeSet::from([author]),
            expires_at: self.height.saturating_add(proposal.ttl),
            status: ProposalStatus::Open,
        };
        self.proposals.insert(id, state);
        let mut events = vec![Event::Proposed { proposal: id }];
        if self.genesis.config().threshold <= 1 {
            events.extend(self.execute(id));
        }
        events
    }

    pub(super) fn commit_approve(
        &mut self,
        author: IdentityPublicKey,
        id: EntryHash,
        outcome: Option<Result<(), Box<Rejected>>>,
    ) -> Vec<Event> {
        let state = self.proposals.get_mut(&id).expect("checked");
        state.approvals.insert(author);
        match outcome {
            None => Vec::new(),
            Some(Ok(())) => self.execute(id),
            Some(Err(reason)) => {
                state.status = ProposalStatus::Failed(reason);
                vec![Event::ProposalFailed { proposal: id }]
            }
        }
    }

    /// Runs a validated action.
    fn execute(&mut self, id: EntryHash) -> Vec<Event> {
        let action = self.proposals[&id].action.clone();
        let mut events = Vec::new();
        let status = match action {
            Action::RotateMasterKey { committee } => {
                self.admit(&committee);
                self.rotation = Some(id);
                if self.key_threshold() > 1 {
                    let members = super::dkg::indexed(&committee);
                    events.extend(self.start_resharing(Change::Proposal(id), Some(&members)));
                    let run = RunId {
                        sharing: Sharing::Dkg,
                        epoch: Epoch(self.epochs.len() as u64),
                        attempt: 0,
                    };
                    events.extend(self.start_run(run, Some(id), members, BTreeSet::new()));
                }
                ProposalStatus::Approved
            }
            Action::ReplaceGatekeepers { set } if self.key_threshold() > 1 => {
                self.admit(&set);
                let members = super::dkg::indexed(&set);
                events.extend(self.start_resharing(Change::Proposal(id), Some(&members)));
                ProposalStatus::Approved
            }
            Action::ReplaceGatekeepers { set } => {
                self.admit(&set);
                events.extend(self.remove_gatekeepers_outside(&set));
                ProposalStatus::Executed
            }
            Action::RefreshShares => {
                events.extend(self.start_resharing(Change::Proposal(id), None));
                ProposalStatus::Approved
            }
            Action::RemoveWorker { worker } => {
                events.extend(self.remove_node(worker));
                ProposalStatus::Executed
            }
            Action::RekeyCluster { cluster } => {
                events.push(self.next_generation(&cluster, None));
                ProposalStatus::Executed
            }
            Action::AbandonEpoch { epoch } if self.dkg().is_some_and(|r| r.id().epoch == epoch) => {
                events.extend(self.abandon_dkg_attempt());
                ProposalStatus::Executed
            }
            Action::AbandonEpoch { epoch } => {
                events.extend(self.abandon_newest_epoch());
                events.push(Event::EpochAbandoned { epoch });
                ProposalStatus::Executed
            }
        };
        events.push(if status == ProposalStatus::Approved {
            Event::RotationApproved { proposal: id }
        } else {
            Event::ProposalExecuted { proposal: id }
        });
        self.proposals.get_mut(&id).expect("exists").status = status;
        events
    }

    fn admit<'a>(&mut self, members: impl IntoIterator<Item = &'a IdentityPublicKey>) {
        for member in members {
            if let Some(node) = self.nodes.get_mut(member) {
                node.role = Role::Gatekeeper { admitted: true };
            }
        }
    }

    /// Drops the pending newest epoch; a rotation it belonged to ends as abandoned.
    fn abandon_newest_epoch(&mut self) -> Option<Event> {
        let state = self.drop_pending_epoch();
        let id = state.proposal()?;
        self.rotation = None;
        self.proposals
            .get_mut(&id)
            .expect("the rotation's proposal")
            .status = ProposalStatus::Abandoned;
        Some(Event::ProposalFailed { proposal: id })
    }

    /// Removes every active gatekeeper outside `keep` (a rotation's end, or a replacement).
    pub(super) fn remove_gatekeepers_outside<'a>(
        &mut self,
        keep: impl IntoIterator<Item = &'a IdentityPublicKey>,
    ) -> Vec<Event> {
        let keep: BTreeSet<_> = keep.into_iter().copied().collect();
        let leaving: Vec<_> = self
            .gatekeepers()
            .filter(|(id, node)| {
                node.is_active()
                    && matches!(node.role, Role::Gatekeeper { .. })
                    && !keep.contains(*id)
            })
            .map(|(id, _)| *id)
            .collect();
        leaving
            .into_iter()
            .flat_map(|id| self.remove_node(id))
            .collect()
    }

    /// The council removes a node: it is no longer active, holds nothing and leaves its cluster.
    fn remove_node(&mut self, id: IdentityPublicKey) -> Vec<Event> {
        let height = self.height;
        let node = self.nodes.get_mut(&id).expect("validated");
        node.status = Status::Removed { at: height };
        let role = node.role;
        self.forget_holder(&id);
        let mut events = vec![Event::Removed { id, role }];
        events.extend(self.leave_cluster(&id));
        events
    }
}
