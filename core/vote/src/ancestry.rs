//! Ancestor verification, the initial-vote freeze and the `N_vote`/`N_depth` rule of Solana's RFC
//! "Signing using Secure Enclave", on evidence the request carries.
//!
//! The signer has no ledger, so the validator hands it the active set's votes it observed in the
//! slot of its previous vote, as signed vote transactions. The signer verifies each against the
//! configured active set (N_active, with optional stakes), then:
//!
//! - **Ancestor verification**: its own previous vote (the exact message it last signed) must be
//!   among them, and more than half of the active set (by stake) must have voted on a fork holding
//!   that slot with the same bank hash. Otherwise it refuses and raises an alarm: a host that
//!   fed it a bogus vote can be believed at most once. Until the first vote is seen this way,
//!   nothing more is signed (the initial-vote freeze).
//! - **Threshold** (`N_vote` at `N_depth`): after the new vote, the vote `N_depth` places down the
//!   tower must be held by more than `N_vote` of the active set (by stake), as Agave's
//!   `check_vote_stake_thresholds` does.

use sha2::{Digest, Sha256};
use thiserror::Error;

use keyward_crypto::{SolanaPubkey, SolanaSignature};

use crate::message::{MessageError, Vote, decode_vote_message};
use crate::tower::{Slot, Tower};

/// A fraction `num/den` of the active set's stake; "more than" it is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction {
    num: u64,
    den: u64,
}

impl Fraction {
    /// `num/den`, which must lie in `[0, 1)` with a non-zero denominator.
    pub fn new(num: u64, den: u64) -> Option<Self> {
        (den > 0 && num < den).then_some(Self { num, den })
    }

    /// True when `part/total` is strictly more than this fraction.
    pub fn exceeded_by(&self, part: u64, total: u64) -> bool {
        u128::from(part) * u128::from(self.den) > u128::from(total) * u128::from(self.num)
    }
}

impl std::fmt::Display for Fraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// One validator of the active set: the key that signs its votes, and its stake (1 when stakes
/// are not configured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The member's vote authority.
    pub authority: SolanaPubkey,
    /// Its stake.
    pub stake: u64,
}

/// The `N_vote` at `N_depth` rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threshold {
    /// `N_depth`: how far down the tower the checked vote sits (Agave uses 8).
    pub depth: usize,
    /// `N_vote`: the share of stake that must hold it (Agave uses 2/3).
    pub share: Fraction,
}

/// What the signer demands of a vote's evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AncestryPolicy {
    active_set: Vec<Member>,
    total_stake: u64,
    verify_ancestors: bool,
    threshold: Option<Threshold>,
}

/// Why an [`AncestryPolicy`] is refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[error("invalid ancestry policy: {0}")]
pub struct AncestryPolicyError(&'static str);

impl AncestryPolicy {
    /// A policy over `active_set`, with ancestor verification on or off and an optional threshold.
    ///
    /// # Errors
    /// An empty active set, a member listed twice, zero total stake, or a policy that checks
    /// nothing.
    pub fn new(
        active_set: Vec<Member>,
        verify_ancestors: bool,
        threshold: Option<Threshold>,
    ) -> Result<Self, AncestryPolicyError> {
        if active_set.is_empty() {
            return Err(AncestryPolicyError("the active set is empty"));
        }
        let mut keys: Vec<_> = active_set.iter().map(|m| m.authority).collect();
        keys.sort_unstable();
        keys.dedup();
        if keys.len() != active_set.len() {
            return Err(AncestryPolicyError("a member is listed twice"));
        }
        let total_stake = active_set
            .iter()
            .try_fold(0u64, |sum, m| sum.checked_add(m.stake))
            .ok_or(AncestryPolicyError("the total stake overflows"))?;
        if total_stake == 0 {
            return Err(AncestryPolicyError("the active set has no stake"));
        }
        if !verify_ancestors && threshold.is_none() {
            return Err(AncestryPolicyError(
                "neither ancestor verification nor a threshold is enabled",
            ));
        }
        Ok(Self {
            active_set,
            total_stake,
            verify_ancestors,
            threshold,
        })
    }

    /// `N_active`: the active set's size.
    pub fn active_count(&self) -> usize {
        self.active_set.len()
    }

    /// Checks the signatures of `transactions` and decodes their votes. Stateless and
    /// parallelisable: hosts run it before taking any lock.
    ///
    /// # Errors
    /// [`AncestryError::Malformed`], [`AncestryError::BadSignature`] or
    /// [`AncestryError::DuplicateVoter`]. Votes from keys outside the active set are kept aside:
    /// only the validator's own vote may be among them, which [`AncestryPolicy::check`] decides.
    pub fn verify_evidence(&self, transactions: &[Vec<u8>]) -> Result<Evidence, AncestryError> {
        let mut votes = Vec::with_capacity(transactions.len());
        for (index, tx) in transactions.iter().enumerate() {
            let (vote, digest) = verify_transaction(index, tx)?;
            let member = self
                .active_set
                .iter()
                .position(|m| m.authority == vote.authority);
            if member.is_some() && votes.iter().any(|o: &Observed| o.member == member) {
                return Err(AncestryError::DuplicateVoter(vote.authority));
            }
            votes.push(Observed {
                member,
                vote,
                digest,
            });
        }
        Ok(Evidence { votes })
    }

    /// Checks a vote for `vote_account` that would take the tower to `next`, given the previous
    /// signed vote
    /// (`None` for the validator's first) and verified `evidence`.
    ///
    /// # Errors
    /// The first rule broken; see [`AncestryError::is_alarm`].
    pub fn check(
        &self,
        vote_account: &SolanaPubkey,
        previous: Option<&PreviousVote>,
        next: &Tower,
        evidence: &Evidence,
    ) -> Result<(), AncestryError> {
        // Outside the active set, only the validator's own votes may appear.
        if let Some(stranger) = evidence
            .votes
            .iter()
            .find(|o| o.member.is_none() && o.vote.vote_account != *vote_account)
        {
            return Err(AncestryError::UnknownVoter(stranger.vote.authority));
        }
        if self.verify_ancestors
            && let Some(prev) = previous
        {
            if !evidence.votes.iter().any(|o| o.digest == prev.digest) {
                return Err(if prev.initial {
                    AncestryError::InitialVoteFreeze { slot: prev.slot }
                } else {
                    AncestryError::PreviousVoteMissing { slot: prev.slot }
                });
            }
            let support = self.stake_holding(evidence, prev.slot, Some(&prev.hash));
            if !Fraction::HALF.exceeded_by(support, self.total_stake) {
                return Err(AncestryError::AncestorMismatch {
                    slot: prev.slot,
                    support,
                    total: self.total_stake,
                });
            }
        }
        if let Some(threshold) = self.threshold
            && let Some(vote) = next.nth_recent(threshold.depth)
        {
            let support = self.stake_holding(evidence, vote.slot, None);
            if !threshold.share.exceeded_by(support, self.total_stake) {
                return Err(AncestryError::ThresholdNotMet {
                    slot: vote.slot,
                    depth: threshold.depth,
                    support,
                    total: self.total_stake,
                    share: threshold.share,
                });
            }
        }
        Ok(())
    }

    /// Stake of active-set members whose observed vote holds `slot` on its fork (and, when given,
    /// the same bank hash if `slot` is the vote's last slot).
    fn stake_holding(&self, evidence: &Evidence, slot: Slot, hash: Option<&[u8; 32]>) -> u64 {
        evidence
            .votes
            .iter()
            .filter_map(|o| o.member.map(|m| (m, &o.vote)))
            .filter(|(_, vote)| {
                vote.claimed_slots().contains(&slot)
                    && hash.is_none_or(|h| vote.last_slot() != Some(slot) || vote.hash == *h)
            })
            .map(|(m, _)| self.active_set[m].stake)
            .fold(0u64, u64::saturating_add)
    }
}

impl Fraction {
    const HALF: Self = Self { num: 1, den: 2 };
}

/// The validator's previous signed vote, as ancestor verification needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreviousVote {
    /// Its last slot.
    pub slot: Slot,
    /// The bank hash it claimed for that slot.
    pub hash: [u8; 32],
    /// SHA-256 of the message signed.
    pub digest: [u8; 32],
    /// True when it was the validator's first vote.
    pub initial: bool,
}

/// One verified vote from the evidence.
#[derive(Debug, Clone)]
struct Observed {
    member: Option<usize>,
    vote: Vote,
    digest: [u8; 32],
}

/// Evidence whose signatures have been verified.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    votes: Vec<Observed>,
}

/// Why evidence is refused, or a vote refused on its evidence.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AncestryError {
    /// An evidence transaction does not decode as a signed vote transaction.
    #[error("evidence transaction {index} is malformed: {reason}")]
    Malformed {
        /// Its position.
        index: usize,
        /// What is wrong.
        reason: String,
    },
    /// An evidence transaction's vote authority did not sign it.
    #[error("evidence transaction {index} is not signed by its vote authority {authority}")]
    BadSignature {
        /// Its position.
        index: usize,
        /// The authority named in its vote.
        authority: SolanaPubkey,
    },
    /// Two evidence votes from one member.
    #[error("the evidence holds two votes from {0}")]
    DuplicateVoter(SolanaPubkey),
    /// An evidence vote from a key outside the active set that is not the validator's own vote.
    #[error("the evidence holds a vote from {0}, which is not in the active set")]
    UnknownVoter(SolanaPubkey),
    /// The validator's previous vote is not in the evidence. Alarm.
    #[error("the validator's previous vote (slot {slot}) is not in the evidence")]
    PreviousVoteMissing {
        /// The previous vote's slot.
        slot: Slot,
    },
    /// The validator's first vote has not yet been seen in evidence; no vote is signed until it is.
    #[error(
        "initial-vote freeze: the first vote (slot {slot}) has not yet been seen in the evidence"
    )]
    InitialVoteFreeze {
        /// The first vote's slot.
        slot: Slot,
    },
    /// The majority has not voted on the previous vote's fork. Alarm.
    #[error(
        "the previous vote's slot {slot} is held by {support} of {total} stake, not a majority"
    )]
    AncestorMismatch {
        /// The previous vote's slot.
        slot: Slot,
        /// Stake that holds it.
        support: u64,
        /// Total active stake.
        total: u64,
    },
    /// Not enough of the active set holds the vote at `N_depth`.
    #[error(
        "slot {slot} at depth {depth} is held by {support} of {total} stake, not more than {share}"
    )]
    ThresholdNotMet {
        /// The slot at depth `N_depth`.
        slot: Slot,
        /// `N_depth`.
        depth: usize,
        /// Stake that holds it.
        support: u64,
        /// Total active stake.
        total: u64,
        /// `N_vote`.
        share: Fraction,
    },
}

impl AncestryError {
    /// True for the refusals the RFC says must raise an alarm: evidence that the validator's
    /// host lied about the fork.
    pub fn is_alarm(&self) -> bool {
        matches!(
            self,
            Self::PreviousVoteMissing { .. } | Self::AncestorMismatch { .. }
        )
    }
}

/// Splits a wire transaction into signatures and message, decodes the vote and verifies its
/// authority's signature. Returns the vote and SHA-256 of the message.
fn verify_transaction(index: usize, tx: &[u8]) -> Result<(Vote, [u8; 32]), AncestryError> {
    let malformed = |reason: String| AncestryError::Malformed { index, reason };
    let (count, used) = solana_short_vec::decode_shortu16_len(tx)
        .map_err(|()| malformed("bad signature count".into()))?;
    let message_start = count
        .checked_mul(64)
        .and_then(|n| n.checked_add(used))
        .filter(|&end| end <= tx.len())
        .ok_or_else(|| malformed("truncated signatures".into()))?;
    let message = &tx[message_start..];
    let decoded =
        decode_vote_message(message).map_err(|e: MessageError| malformed(e.to_string()))?;
    if decoded.signers.len() != count {
        return Err(malformed(format!(
            "{count} signatures for {} signers",
            decoded.signers.len()
        )));
    }
    let authority = decoded.vote.authority;
    let position = decoded
        .signers
        .iter()
        .position(|s| *s == authority)
        .ok_or(AncestryError::BadSignature { index, authority })?;
    let start = used + 64 * position;
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&tx[start..start + 64]);
    authority
        .verify(message, &SolanaSignature(signature))
        .map_err(|_| AncestryError::BadSignature { index, authority })?;
    Ok((decoded.vote, Sha256::digest(message).into()))
}
