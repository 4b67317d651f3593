//! Kinds 5–7: epochs, who holds their secrets, and when an epoch becomes current.
//!
//! Classic mode: every holder holds the whole MasterKey. The epoch record (and so the checksum)
//! names the founding committee, written once at creation; gatekeepers who receive the secret
//! later are holders in the registry only, so a checksum never changes after it is published.

use std::collections::{BTreeMap, BTreeSet};

use keyward_crypto::{Envelope, IdentityPublicKey};
use keyward_hierarchy::{Epoch, EpochChecksum, EpochRecord};

use super::{Effect, Event, Registry, Role};
use crate::body::Kind;
use crate::entry::EntryHash;
use crate::epoch::{EpochAccept, EpochCreate, EpochHandoff};
use crate::reject::Rejected;

/// Where an epoch is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochStatus {
    /// Created; not every founding member holds it (and every earlier epoch) yet.
    Pending,
    /// The current epoch: new keys derive from it.
    Active,
    /// Superseded, and kept so that data of this epoch stays readable.
    Retained,
}

/// One epoch as the ledger records it.
///
/// Guarantees: `record` and `checksum` never change after creation; `holders` and `pending`
/// contain only active, admitted gatekeepers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochState {
    record: EpochRecord,
    /// The committee holding the epoch now: `record` until a resharing moves it (threshold mode).
    current: EpochRecord,
    /// Resharing attempts started for this epoch: the next one's attempt number.
    reshares: u16,
    checksum: EpochChecksum,
    status: EpochStatus,
    holders: BTreeSet<IdentityPublicKey>,
    /// Recipient → sender → the latest envelope that sender sealed to it.
    pending: BTreeMap<IdentityPublicKey, BTreeMap<IdentityPublicKey, Envelope>>,
    proposal: Option<EntryHash>,
}

impl EpochState {
    pub(super) fn created(
        record: EpochRecord,
        checksum: EpochChecksum,
        holders: BTreeSet<IdentityPublicKey>,
        pending: BTreeMap<IdentityPublicKey, BTreeMap<IdentityPublicKey, Envelope>>,
        proposal: Option<EntryHash>,
    ) -> Self {
        Self {
            current: record.clone(),
            record,
            reshares: 0,
            checksum,
            status: EpochStatus::Pending,
            holders,
            pending,
            proposal,
        }
    }

    /// The public record: master public key, committee and founding gatekeepers.
    pub fn record(&self) -> &EpochRecord {
        &self.record
    }

    /// The committee that holds the epoch now, with the same epoch and master public key: the
    /// founding one until a resharing moves the shares to another (threshold mode). Partial
    /// evaluations for this epoch are checked against it.
    pub fn current(&self) -> &EpochRecord {
        &self.current
    }

    /// The epoch checksum `c_e` after this epoch.
    pub fn checksum(&self) -> EpochChecksum {
        self.checksum
    }

    /// Pending, active or retained.
    pub fn status(&self) -> EpochStatus {
        self.status
    }

    /// The active gatekeepers that hold the secret (threshold mode: a share of the current
    /// committee).
    pub fn holders(&self) -> &BTreeSet<IdentityPublicKey> {
        &self.holders
    }

    /// The envelopes sealed to `recipient` that it has not accepted yet: the latest from each
    /// sender.
    pub fn pending_for(&self, recipient: &IdentityPublicKey) -> impl Iterator<Item = &Envelope> {
        self.pending
            .get(recipient)
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    /// The founding committee's identities, in share-index order.
    pub fn founders(&self) -> impl Iterator<Item = &IdentityPublicKey> {
        self.record.gatekeepers().values()
    }

    /// The rotation proposal that created it (none for epoch 0).
    pub fn proposal(&self) -> Option<EntryHash> {
        self.proposal
    }
}

impl EpochState {
    /// The attempt number of the next resharing of this epoch; `None` once all are used.
    pub(super) fn next_reshare_attempt(&mut self) -> Option<u16> {
        let attempt = self.reshares;
        self.reshares = self.reshares.checked_add(1)?;
        Some(attempt)
    }

    /// A resharing is done: `current` holds the epoch now, and only its members are holders.
    pub(super) fn reshared(&mut self, current: EpochRecord) {
        self.holders = current.gatekeepers().values().copied().collect();
        self.pending.clear();
        self.current = current;
    }
}

impl Registry {
    /// An active gatekeeper admitted to hold epoch secrets.
    fn admitted(&self, id: &IdentityPublicKey) -> Result<&super::Node, Rejected> {
        self.nodes
            .get(id)
            .filter(|n| n.is_active() && n.role == Role::Gatekeeper { admitted: true })
            .ok_or(Rejected::NotAdmitted { id: (*id).into() })
    }

    fn is_admitted(&self, id: &IdentityPublicKey) -> bool {
        self.admitted(id).is_ok()
    }

    fn epoch_state(&self, epoch: Epoch) -> Result<&EpochState, Rejected> {
        self.epoch(epoch).ok_or(Rejected::UnknownEpoch { epoch })
    }

    /// Checks that each envelope is sealed to the registered channel key of its member.
    fn check_recipient(
        &self,
        member: &IdentityPublicKey,
        envelope: &Envelope,
    ) -> Result<(), Rejected> {
        if self.admitted(member)?.channel == envelope.recipient() {
            Ok(())
        } else {
            Err(Rejected::BadSecretEnvelope {
                member: (*member).into(),
                reason: "not sealed to the member's registered channel key",
            })
        }
    }

    pub(super) fn check_create(
        &self,
        author: IdentityPublicKey,
        create: &EpochCreate,
    ) -> Result<Effect, Rejected> {
        self.check_classic_mode()?;
        if !self.is_admitted(&author) {
            return Err(Rejected::WrongAuthor {
                kind: Kind::EpochCreate,
                needs: "an active, admitted gatekeeper",
            });
        }
        if let Some(pending) = self
            .epochs
            .last()
            .filter(|s| s.status == EpochStatus::Pending)
        {
            // One pending epoch at a time: a second one would never activate.
            return Err(Rejected::EpochPending {
                epoch: pending.record.epoch(),
            });
        }
        let expected = Epoch(self.epochs.len() as u64);
        if create.epoch != expected {
            return Err(Rejected::WrongEpoch {
                expected,
                found: create.epoch,
            });
        }
        if let Some(proposal) = create.proposal {
            if self.rotation != Some(proposal) {
                return Err(Rejected::ProposalNotApproved { proposal });
            }
            let crate::council::Action::RotateMasterKey { committee } =
                &self.proposals[&proposal].action
            else {
                unreachable!("only rotations run as the rotation");
            };
            if *committee != create.committee {
                return Err(Rejected::CommitteeMismatch);
            }
        }
        self.check_fresh_master(&create.master, expected)?;
        for (member, envelope) in create.committee[1..].iter().zip(&create.envelopes) {
            self.check_recipient(member, envelope)?;
        }
        let record = create.record();
        let checksum = self.checksum().next(&record);
        let pending = create.committee[1..]
            .iter()
            .zip(&create.envelopes)
            .map(|(member, envelope)| (*member, BTreeMap::from([(author, envelope.clone())])))
            .collect();
        Ok(Effect::CreateEpoch(Box::new(EpochState::created(
            record,
            checksum,
            BTreeSet::from([author]),
            pending,
            create.proposal,
        ))))
    }

    pub(super) fn check_handoff(
        &self,
        author: IdentityPublicKey,
        handoff: &EpochHandoff,
    ) -> Result<Effect, Rejected> {
        self.check_classic_mode()?;
        for (&epoch, envelope) in &handoff.secrets {
            let state = self.epoch_state(epoch)?;
            if !state.holders.contains(&author) {
                return Err(Rejected::NotHolder { epoch });
            }
            self.check_recipient(&handoff.recipient, envelope)?;
            if state.holders.contains(&handoff.recipient) {
                return Err(Rejected::AlreadyHolder { epoch });
            }
            // A pending epoch goes to its founders only: while a rotation runs, nobody outside
            // the new committee receives the new MasterKey.
            if state.status == EpochStatus::Pending
                && !state.founders().any(|f| *f == handoff.recipient)
            {
                return Err(Rejected::NotAFounder { epoch });
            }
        }
        Ok(Effect::Handoff(handoff.clone()))
    }

    pub(super) fn check_accept(
        &self,
        author: IdentityPublicKey,
        accept: &EpochAccept,
    ) -> Result<Effect, Rejected> {
        if !self.is_admitted(&author) {
            return Err(Rejected::WrongAuthor {
                kind: Kind::EpochAccept,
                needs: "an active, admitted gatekeeper",
            });
        }
        for &epoch in &accept.epochs {
            let state = self.epoch_state(epoch)?;
            let dkg_member =
                self.accepts_dkg_epoch(&author, epoch) && !state.holders.contains(&author);
            if !state.pending.contains_key(&author)
                && !dkg_member
                && !self.accepts_reshared_epoch(&author, epoch)
            {
                return Err(Rejected::NoPendingSecret { epoch });
            }
        }
        Ok(Effect::Accept(accept.clone()))
    }

    /// A gatekeeper may leave unless it is the last active holder of an epoch, or founds an
    /// epoch that is still pending (which could then never activate).
    pub(super) fn check_gatekeeper_may_leave(
        &self,
        author: &IdentityPublicKey,
    ) -> Result<(), Rejected> {
        if self.rotation.is_some() || self.resharing.is_some() {
            return Err(Rejected::RotationInProgress);
        }
        if let Some(epoch) = self.in_dkg(author) {
            return Err(Rejected::EpochPending { epoch });
        }
        for state in &self.epochs {
            let epoch = state.record.epoch();
            if state.status == EpochStatus::Pending && state.founders().any(|f| f == author) {
                return Err(Rejected::EpochPending { epoch });
            }
            // At least t holders must stay (t = 1: the last holder stays).
            if state.holders.contains(author)
                && state.holders.len() <= usize::from(self.key_threshold())
            {
                return Err(Rejected::LastHolder { epoch });
            }
        }
        Ok(())
    }

    pub(super) fn commit_create(
        &mut self,
        author: IdentityPublicKey,
        state: EpochState,
    ) -> Vec<Event> {
        let epoch = state.record.epoch();
        let mut events = vec![
            Event::EpochCreated { epoch },
            Event::SecretAccepted {
                epoch,
                holder: author,
            },
        ];
        events.extend(
            state
                .pending
                .keys()
                .map(|&recipient| Event::SecretPending { epoch, recipient }),
        );
        self.epochs.push(state);
        events.extend(self.activate());
        events
    }

    pub(super) fn commit_handoff(
        &mut self,
        author: IdentityPublicKey,
        handoff: EpochHandoff,
    ) -> Vec<Event> {
        let recipient = handoff.recipient;
        handoff
            .secrets
            .into_iter()
            .map(|(epoch, envelope)| {
                let state = self.epoch_mut(epoch);
                // A later handoff from the same holder replaces its earlier one, so a bad envelope
                // can be corrected.
                state
                    .pending
                    .entry(recipient)
                    .or_default()
                    .insert(author, envelope);
                Event::SecretPending { epoch, recipient }
            })
            .collect()
    }

    pub(super) fn commit_accept(
        &mut self,
        author: IdentityPublicKey,
        accept: &EpochAccept,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        for &epoch in &accept.epochs {
            if self.accepts_reshared_epoch(&author, epoch) {
                events.extend(self.accept_reshared(author, epoch));
                continue;
            }
            let state = self.epoch_mut(epoch);
            state.pending.remove(&author);
            state.holders.insert(author);
            events.push(Event::SecretAccepted {
                epoch,
                holder: author,
            });
        }
        events.extend(self.activate());
        events
    }

    /// A leaving gatekeeper holds nothing and waits for nothing.
    pub(super) fn forget_holder(&mut self, id: &IdentityPublicKey) {
        for state in &mut self.epochs {
            state.holders.remove(id);
            state.pending.remove(id);
        }
    }

    /// Drops the newest epoch, which the caller found pending: it produced no key, and its
    /// `S_e` is never used again.
    pub(super) fn drop_pending_epoch(&mut self) -> EpochState {
        let state = self.epochs.pop().expect("the caller found a pending epoch");
        debug_assert_eq!(state.status, EpochStatus::Pending);
        self.abandoned_keys
            .insert(state.record.committee().public_key().to_bytes());
        state
    }

    /// Refuses a master public key some epoch, live or abandoned, already used.
    pub(super) fn check_fresh_master(
        &self,
        master: &keyward_threshold::PublicKey,
        epoch: Epoch,
    ) -> Result<(), Rejected> {
        if let Some(earlier) = self
            .epochs
            .iter()
            .find(|s| s.record.committee().public_key() == *master)
        {
            return Err(Rejected::MasterKeyReused {
                epoch: earlier.record.epoch(),
            });
        }
        if self.abandoned_keys.contains(&master.to_bytes()) {
            return Err(Rejected::MasterKeyReused { epoch });
        }
        Ok(())
    }

    pub(super) fn epoch_mut(&mut self, epoch: Epoch) -> &mut EpochState {
        usize::try_from(epoch.0)
            .ok()
            .and_then(|i| self.epochs.get_mut(i))
            .expect("the check found the epoch")
    }

    /// Activates the newest epoch once every founding member holds it and every epoch before
    /// it (in threshold mode: once every earlier epoch is reshared to it), so that no founder of
    /// the current epoch lacks retained data. A rotation then ends: every gatekeeper outside the
    /// approved committee is removed.
    fn activate(&mut self) -> Vec<Event> {
        let Some(newest) = self.epochs.last() else {
            return Vec::new();
        };
        let ready = newest.status == EpochStatus::Pending
            && self.reshares.is_empty()
            && newest
                .founders()
                .all(|f| self.epochs.iter().all(|s| s.holders.contains(f)));
        if !ready {
            return Vec::new();
        }
        let epoch = newest.record.epoch();
        let proposal = newest.proposal;
        for state in &mut self.epochs {
            if state.status == EpochStatus::Active {
                state.status = EpochStatus::Retained;
            }
        }
        self.epoch_mut(epoch).status = EpochStatus::Active;
        self.current = Some(epoch);
        self.end_dkg(epoch);
        self.shares_changed_at = self.height;
        self.open_signing(crate::committee::Statement::EpochChecksum(epoch));
        let mut events = vec![Event::EpochActivated { epoch }];
        if let Some(id) = proposal {
            // The approved committee stays: in threshold mode a DKG attempt may have gone on
            // without a member that the earlier epochs were still reshared to.
            let crate::council::Action::RotateMasterKey { committee } =
                self.proposals[&id].action.clone()
            else {
                unreachable!("only rotations create epochs after 0");
            };
            events.extend(self.remove_gatekeepers_outside(&committee));
            self.rotation = None;
            self.proposals
                .get_mut(&id)
                .expect("the rotation's proposal")
                .status = super::ProposalStatus::Executed;
            events.push(Event::ProposalExecuted { proposal: id });
        }
        events
    }
}
