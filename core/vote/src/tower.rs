//! The tower of votes a validator has signed, and the Solana vote program's lockout rules on it.
//!
//! Two ways a vote reaches the tower, exactly as in the vote program
//! (`programs/vote/src/vote_state/mod.rs` in Agave):
//!
//! - [`Tower::apply_slots`] for `Vote`/`VoteSwitch`: each new slot pops expired votes, roots the
//!   oldest vote of a full tower, is pushed, and doubles the lockouts that have earned it
//!   (`process_next_vote_slot`).
//! - [`Tower::check_successor`] for the full-tower instructions (`TowerSync`,
//!   `(Compact)UpdateVoteState`): the proposed tower must be well formed and a valid successor of
//!   the stored one (`process_new_vote_state`: no lockout conflict, no confirmation or root
//!   rollback, strictly newer last slot).
//!
//! The vote program also checks every slot against the fork's `SlotHashes`; a signer without a
//! ledger cannot. It adds one rule of its own in that place, see [`TowerError::RootConflict`].

use std::fmt;

use thiserror::Error;

/// A slot number.
pub type Slot = u64;

/// The lockout rules: the RFC's initial lockout `N`, factor `F` and cap.
///
/// The defaults are Solana's: `N = 2` (`INITIAL_LOCKOUT`), `F = 2`, cap 31
/// (`MAX_LOCKOUT_HISTORY`): a vote with `c` confirmations is locked out for `N·F^(c−1) = 2^c`
/// slots, the tower holds 31 votes and the 32nd roots the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    initial_lockout: u64,
    factor: u64,
    max_history: u32,
}

/// Why a [`LockoutPolicy`] was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid lockout policy: {0}")]
pub struct PolicyError(&'static str);

impl LockoutPolicy {
    /// Solana's rules: `N = 2`, `F = 2`, cap 31.
    pub const SOLANA: Self = Self {
        initial_lockout: 2,
        factor: 2,
        max_history: 31,
    };

    /// A policy with initial lockout `initial_lockout` slots, growth `factor` per confirmation
    /// and at most `max_history` votes in the tower (also the largest confirmation count).
    ///
    /// # Errors
    /// A zero lockout, a factor below 2, or a cap outside 1..=64.
    pub fn new(initial_lockout: u64, factor: u64, max_history: u32) -> Result<Self, PolicyError> {
        if initial_lockout == 0 {
            return Err(PolicyError("the initial lockout must be at least 1 slot"));
        }
        if factor < 2 {
            return Err(PolicyError("the lockout factor must be at least 2"));
        }
        if !(1..=64).contains(&max_history) {
            return Err(PolicyError("the cap must be between 1 and 64"));
        }
        Ok(Self {
            initial_lockout,
            factor,
            max_history,
        })
    }

    /// The initial lockout `N`, in slots.
    pub fn initial_lockout(&self) -> u64 {
        self.initial_lockout
    }

    /// The factor `F`.
    pub fn factor(&self) -> u64 {
        self.factor
    }

    /// The cap: most votes in the tower and most confirmations of one vote.
    pub fn max_history(&self) -> u32 {
        self.max_history
    }

    /// How many slots a vote with `confirmations` confirmations is locked out for
    /// (`N·F^(c−1)`, saturating).
    pub fn lockout(&self, confirmations: u32) -> u64 {
        let exponent = confirmations.saturating_sub(1).min(self.max_history);
        self.initial_lockout
            .saturating_mul(self.factor.saturating_pow(exponent))
    }

    /// The last slot at which `vote` still locks the validator out of other forks.
    pub fn last_locked_out_slot(&self, vote: &Lockout) -> Slot {
        vote.slot
            .saturating_add(self.lockout(vote.confirmation_count))
    }
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self::SOLANA
    }
}

/// One vote in a tower: its slot and how many times its lockout has doubled, plus one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lockout {
    /// The voted slot.
    pub slot: Slot,
    /// The confirmation count (at least 1).
    pub confirmation_count: u32,
}

impl Lockout {
    /// A fresh vote on `slot` (one confirmation).
    pub fn new(slot: Slot) -> Self {
        Self {
            slot,
            confirmation_count: 1,
        }
    }
}

/// A vote state: the votes still in the tower, oldest first, and the root.
///
/// Invariant of every tower the signer stores: it passed [`Tower::validate`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tower {
    votes: Vec<Lockout>,
    root: Option<Slot>,
}

/// Why a vote breaks the lockout rules. The names are the vote program's `VoteError`s.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TowerError {
    /// The vote has no slots.
    #[error("the vote has no slots")]
    EmptySlots,
    /// The vote's last slot is not newer than the last slot already signed.
    #[error("vote on slot {slot} is not newer than the last signed vote, slot {last}")]
    VoteTooOld {
        /// The vote's newest slot.
        slot: Slot,
        /// The newest slot already signed.
        last: Slot,
    },
    /// A `Vote`'s slots are not strictly increasing.
    #[error("the vote's slots are not strictly increasing")]
    SlotsNotOrdered,
    /// The proposed tower holds more votes than the cap.
    #[error("the proposed tower holds {len} votes, more than the cap {max}")]
    TooManyVotes {
        /// Votes in the proposed tower.
        len: usize,
        /// The cap.
        max: u32,
    },
    /// The proposed root is older than the stored root, or missing while one is stored.
    #[error("the proposed root {proposed:?} rolls back the signed root {stored}")]
    RootRollBack {
        /// The proposed root.
        proposed: Option<Slot>,
        /// The stored root.
        stored: Slot,
    },
    /// A proposed vote has zero confirmations.
    #[error("a proposed vote has zero confirmations")]
    ZeroConfirmations,
    /// A proposed vote has more confirmations than the cap.
    #[error("a proposed vote has {count} confirmations, more than the cap {max}")]
    ConfirmationTooLarge {
        /// The confirmation count.
        count: u32,
        /// The cap.
        max: u32,
    },
    /// A proposed vote is at or below the proposed root.
    #[error("proposed vote on slot {slot} is not above the proposed root {root}")]
    SlotSmallerThanRoot {
        /// The vote's slot.
        slot: Slot,
        /// The proposed root.
        root: Slot,
    },
    /// Proposed confirmations do not strictly decrease from oldest to newest.
    #[error("proposed confirmation counts do not strictly decrease")]
    ConfirmationsNotOrdered,
    /// A proposed vote lies beyond the lockout of the vote before it.
    #[error("proposed vote on slot {slot} lies outside the lockout of slot {previous}")]
    NewVoteStateLockoutMismatch {
        /// The vote's slot.
        slot: Slot,
        /// The previous vote's slot.
        previous: Slot,
    },
    /// A signed vote that is still locked out is missing from the proposed tower.
    #[error(
        "signed vote on slot {locked} is locked out until slot {until}, and slot {slot} is not on its fork"
    )]
    LockoutConflict {
        /// The signed vote that is dropped.
        locked: Slot,
        /// Its last locked-out slot.
        until: Slot,
        /// The proposed slot it conflicts with.
        slot: Slot,
    },
    /// A proposed vote has fewer confirmations than the signed vote on the same slot.
    #[error(
        "proposed vote on slot {slot} has {proposed} confirmations, the signed one has {stored}"
    )]
    ConfirmationRollBack {
        /// The slot.
        slot: Slot,
        /// Proposed confirmations.
        proposed: u32,
        /// Signed confirmations.
        stored: u32,
    },
    /// The proposed root passes a signed vote that is still locked out and that the signed
    /// tower does not place below the new root. Stricter than the vote program, which leans
    /// on `SlotHashes` here: without it, a host could jump the root over a locked-out vote.
    #[error(
        "proposed root {root} passes signed vote on slot {locked}, locked out until slot {until}, without an ancestry the signer has signed"
    )]
    RootConflict {
        /// The proposed root.
        root: Slot,
        /// The signed vote it passes.
        locked: Slot,
        /// Its last locked-out slot.
        until: Slot,
    },
}

impl Tower {
    /// An empty tower: no votes, no root.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tower from its parts, checked with [`Tower::validate`].
    ///
    /// # Errors
    /// The first rule the parts break.
    pub fn from_parts(
        votes: Vec<Lockout>,
        root: Option<Slot>,
        policy: &LockoutPolicy,
    ) -> Result<Self, TowerError> {
        let tower = Self { votes, root };
        tower.validate(policy)?;
        Ok(tower)
    }

    /// A tower from its parts without any check, for a proposal still to be checked.
    pub(crate) fn unchecked(votes: Vec<Lockout>, root: Option<Slot>) -> Self {
        Self { votes, root }
    }

    /// The votes, oldest first.
    pub fn votes(&self) -> &[Lockout] {
        &self.votes
    }

    /// The root, if any vote has been rooted.
    pub fn root(&self) -> Option<Slot> {
        self.root
    }

    /// The newest voted slot.
    pub fn last_voted_slot(&self) -> Option<Slot> {
        self.votes.last().map(|v| v.slot)
    }

    /// True when nothing has been voted or rooted.
    pub fn is_empty(&self) -> bool {
        self.votes.is_empty() && self.root.is_none()
    }

    /// Checks the structure the vote program demands of a proposed tower: at most `cap` votes,
    /// confirmations in `1..=cap` and strictly decreasing, slots strictly increasing and above
    /// the root, each vote inside the lockout of the one before.
    ///
    /// # Errors
    /// The first rule broken, in the vote program's order.
    pub fn validate(&self, policy: &LockoutPolicy) -> Result<(), TowerError> {
        let max = policy.max_history();
        if self.votes.len() > max as usize {
            return Err(TowerError::TooManyVotes {
                len: self.votes.len(),
                max,
            });
        }
        let mut previous: Option<&Lockout> = None;
        for vote in &self.votes {
            if vote.confirmation_count == 0 {
                return Err(TowerError::ZeroConfirmations);
            }
            if vote.confirmation_count > max {
                return Err(TowerError::ConfirmationTooLarge {
                    count: vote.confirmation_count,
                    max,
                });
            }
            // The vote program exempts a root of 0 here (an old validator bug set it on empty
            // towers). Slot 0 is the genesis slot, so nothing is lost by keeping the exemption.
            if let Some(root) = self.root
                && vote.slot <= root
                && root != 0
            {
                return Err(TowerError::SlotSmallerThanRoot {
                    slot: vote.slot,
                    root,
                });
            }
            if let Some(prev) = previous {
                if prev.slot >= vote.slot {
                    return Err(TowerError::SlotsNotOrdered);
                }
                if prev.confirmation_count <= vote.confirmation_count {
                    return Err(TowerError::ConfirmationsNotOrdered);
                }
                if vote.slot > policy.last_locked_out_slot(prev) {
                    return Err(TowerError::NewVoteStateLockoutMismatch {
                        slot: vote.slot,
                        previous: prev.slot,
                    });
                }
            }
            previous = Some(vote);
        }
        Ok(())
    }

    /// The tower after a `Vote`/`VoteSwitch` on `slots`: the vote program's
    /// `process_vote_unfiltered` after its filter. Slots at or below the last voted slot are
    /// skipped, as the vote program skips them; the rest are applied in order.
    ///
    /// # Errors
    /// [`TowerError::EmptySlots`], [`TowerError::SlotsNotOrdered`], or
    /// [`TowerError::VoteTooOld`] when no slot is newer than the last one signed.
    pub fn apply_slots(&self, slots: &[Slot], policy: &LockoutPolicy) -> Result<Self, TowerError> {
        let Some(&newest) = slots.last() else {
            return Err(TowerError::EmptySlots);
        };
        if slots.windows(2).any(|w| w[0] >= w[1]) {
            return Err(TowerError::SlotsNotOrdered);
        }
        let floor = self.last_voted_slot().or(self.root);
        if let Some(last) = floor
            && newest <= last
        {
            return Err(TowerError::VoteTooOld { slot: newest, last });
        }
        let mut next = self.clone();
        for &slot in slots.iter().filter(|&&s| floor.is_none_or(|f| s > f)) {
            next.push_slot(slot, policy);
        }
        Ok(next)
    }

    /// `process_next_vote_slot`: pop expired votes, root the oldest of a full tower, push, double.
    fn push_slot(&mut self, slot: Slot, policy: &LockoutPolicy) {
        while let Some(top) = self.votes.last() {
            if policy.last_locked_out_slot(top) >= slot {
                break;
            }
            self.votes.pop();
        }
        if self.votes.len() == policy.max_history() as usize {
            let rooted = self.votes.remove(0);
            self.root = Some(rooted.slot);
        }
        self.votes.push(Lockout::new(slot));
        let depth = self.votes.len();
        for (i, vote) in self.votes.iter_mut().enumerate() {
            // A vote doubles when enough votes stack above it: `depth > i + confirmations`.
            if depth > i + vote.confirmation_count as usize {
                vote.confirmation_count += 1;
            }
        }
    }

    /// Checks that `proposed` (a `TowerSync` or `(Compact)UpdateVoteState` tower) is a valid
    /// successor of this tower: `check_and_filter_proposed_vote_state`'s newness check and
    /// `process_new_vote_state`, without the `SlotHashes` checks, plus
    /// [`TowerError::RootConflict`] in their place.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn check_successor(
        &self,
        proposed: &Tower,
        policy: &LockoutPolicy,
    ) -> Result<(), TowerError> {
        let Some(newest) = proposed.last_voted_slot() else {
            return Err(TowerError::EmptySlots);
        };
        if let Some(last) = self.last_voted_slot()
            && newest <= last
        {
            return Err(TowerError::VoteTooOld { slot: newest, last });
        }
        if proposed.votes.len() > policy.max_history() as usize {
            return Err(TowerError::TooManyVotes {
                len: proposed.votes.len(),
                max: policy.max_history(),
            });
        }
        if let Some(stored) = self.root
            && proposed.root.is_none_or(|p| p < stored)
        {
            return Err(TowerError::RootRollBack {
                proposed: proposed.root,
                stored,
            });
        }
        proposed.validate(policy)?;

        // Signed votes at or below the new root leave the tower as rooted. The vote program
        // trusts SlotHashes to confirm they are on the root's fork; here the signed tower must
        // say so itself (a signed slot at or above the new root that the proposal keeps), or
        // the vote must have expired before the new root.
        let mut current = 0;
        if let Some(root) = proposed.root {
            let anchored = self.votes.iter().any(|v| {
                v.slot == root || (v.slot > root && proposed.votes.iter().any(|p| p.slot == v.slot))
            });
            while let Some(vote) = self.votes.get(current) {
                if vote.slot > root {
                    break;
                }
                let until = policy.last_locked_out_slot(vote);
                if vote.slot < root && !anchored && until >= root {
                    return Err(TowerError::RootConflict {
                        root,
                        locked: vote.slot,
                        until,
                    });
                }
                current += 1;
            }
        }

        // Every signed vote missing from the proposal must have expired before the next newer
        // proposed slot; a vote kept may not lose confirmations.
        let mut new = 0;
        while let (Some(old), Some(next)) = (self.votes.get(current), proposed.votes.get(new)) {
            match old.slot.cmp(&next.slot) {
                std::cmp::Ordering::Less => {
                    let until = policy.last_locked_out_slot(old);
                    if until >= next.slot {
                        return Err(TowerError::LockoutConflict {
                            locked: old.slot,
                            until,
                            slot: next.slot,
                        });
                    }
                    current += 1;
                }
                std::cmp::Ordering::Equal => {
                    if next.confirmation_count < old.confirmation_count {
                        return Err(TowerError::ConfirmationRollBack {
                            slot: old.slot,
                            proposed: next.confirmation_count,
                            stored: old.confirmation_count,
                        });
                    }
                    current += 1;
                    new += 1;
                }
                std::cmp::Ordering::Greater => new += 1,
            }
        }
        Ok(())
    }

    /// The vote `depth` places from the top (0 is the newest), as Agave's `nth_recent_lockout`.
    pub fn nth_recent(&self, depth: usize) -> Option<&Lockout> {
        let len = self.votes.len();
        len.checked_sub(depth + 1).map(|i| &self.votes[i])
    }
}

impl fmt::Display for Tower {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.root {
            Some(root) => write!(f, "root {root}, votes [")?,
            None => write!(f, "no root, votes [")?,
        }
        for (i, v) in self.votes.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}:{}", v.slot, v.confirmation_count)?;
        }
        f.write_str("]")
    }
}
