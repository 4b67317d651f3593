//! Reading a Solana vote transaction message with Solana's own crates, and refusing anything that
//! is not exactly one vote by the expected vote account and vote authority.
//!
//! A message is accepted when, and only when:
//! - it decodes as a legacy or v0 message (bincode, fixed-int, no trailing bytes, at most
//!   [`MAX_MESSAGE_LEN`] bytes) and passes Solana's `sanitize`;
//! - it has no address-table lookups (their contents cannot be checked without a ledger) and no
//!   account key twice;
//! - its signers are the vote key and, optionally, the validator's identity (the fee payer);
//! - it holds exactly one vote-program instruction, whose accounts are the builder's layout with
//!   the registered vote account first and the vote key as authority, plus at most one
//!   compute-budget instruction with no accounts and a known layout.

use solana_message::{VersionedMessage, compiled_instruction::CompiledInstruction};
use solana_vote_interface::instruction::VoteInstruction;
use thiserror::Error;

use keyward_crypto::SolanaPubkey;

use crate::tower::{Lockout, Slot, Tower};

/// Largest message accepted: Solana's `PACKET_DATA_SIZE` (a whole transaction fits in 1232 bytes).
pub const MAX_MESSAGE_LEN: usize = 1232;

/// Why a message is not a vote this signer may sign.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageError {
    /// Longer than [`MAX_MESSAGE_LEN`].
    #[error("message is {len} bytes, more than {MAX_MESSAGE_LEN}")]
    TooLong {
        /// The message length.
        len: usize,
    },
    /// Not a well-formed Solana message.
    #[error("not a Solana transaction message: {0}")]
    Malformed(String),
    /// A message version other than legacy and v0.
    #[error("message version {0} is not supported (legacy and v0 are)")]
    UnsupportedVersion(&'static str),
    /// The message loads accounts through address-table lookups.
    #[error("address-table lookups are refused: their accounts cannot be checked")]
    AddressTableLookup,
    /// An account key appears twice.
    #[error("account key {0} appears twice")]
    DuplicateAccount(SolanaPubkey),
    /// The vote key is not among the message's signers.
    #[error("the vote key {0} does not sign this message")]
    VoteKeyNotSigner(SolanaPubkey),
    /// A signer other than the vote key and the validator identity.
    #[error("unexpected signer {0}: only the vote key and the validator identity may sign")]
    UnexpectedSigner(SolanaPubkey),
    /// An instruction for a program other than the vote and compute-budget programs.
    #[error("instruction {index} calls program {program}, not the vote program")]
    ForeignInstruction {
        /// The instruction's position.
        index: usize,
        /// Its program.
        program: SolanaPubkey,
    },
    /// A vote-program instruction that is not a vote.
    #[error("instruction {index} is the vote program's {name}, not a vote")]
    NotAVote {
        /// The instruction's position.
        index: usize,
        /// The instruction's name.
        name: &'static str,
    },
    /// No vote instruction.
    #[error("the message holds no vote instruction")]
    NoVote,
    /// More than one vote instruction.
    #[error("the message holds more than one vote instruction")]
    MultipleVotes,
    /// More than one compute-budget instruction, or one with accounts or an unknown layout.
    #[error("compute-budget instruction {index} is refused: {reason}")]
    BadComputeBudget {
        /// The instruction's position.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The vote instruction's accounts are not the expected layout.
    #[error("the vote instruction's account {position} is {found}, expected {expected}")]
    WrongAccount {
        /// Which account of the instruction.
        position: &'static str,
        /// The key found.
        found: SolanaPubkey,
        /// The key expected.
        expected: SolanaPubkey,
    },
    /// The vote instruction has the wrong number of accounts.
    #[error("the vote instruction has {found} accounts, expected {expected}")]
    WrongAccountCount {
        /// Accounts found.
        found: usize,
        /// Accounts expected.
        expected: usize,
    },
}

/// What a vote asks of the tower.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VoteAction {
    /// `Vote`/`VoteSwitch`: these slots, oldest first.
    Slots(Vec<Slot>),
    /// `TowerSync`, `(Compact)UpdateVoteState` and their switch forms: this whole tower
    /// (not yet checked against any policy).
    Tower(Tower),
}

/// One vote instruction, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The instruction's name, e.g. `TowerSync`.
    pub kind: &'static str,
    /// The vote account it votes for.
    pub vote_account: SolanaPubkey,
    /// The vote authority named in it.
    pub authority: SolanaPubkey,
    /// What it does to the tower.
    pub action: VoteAction,
    /// The bank hash it claims for its last slot.
    pub hash: [u8; 32],
}

impl Vote {
    /// The newest slot this vote votes on.
    pub fn last_slot(&self) -> Option<Slot> {
        match &self.action {
            VoteAction::Slots(slots) => slots.last().copied(),
            VoteAction::Tower(tower) => tower.last_voted_slot(),
        }
    }

    /// The slots this vote claims are on its fork: the tower's votes and root, or the voted slots.
    pub fn claimed_slots(&self) -> Vec<Slot> {
        match &self.action {
            VoteAction::Slots(slots) => slots.clone(),
            VoteAction::Tower(tower) => tower
                .root()
                .into_iter()
                .chain(tower.votes().iter().map(|l| l.slot))
                .collect(),
        }
    }
}

/// A decoded message: its signers and its one vote.
#[derive(Debug, Clone)]
pub struct VoteMessage {
    /// The message's required signers, in order (the first pays the fee).
    pub signers: Vec<SolanaPubkey>,
    /// The vote.
    pub vote: Vote,
}

fn key(address: &solana_address::Address) -> SolanaPubkey {
    SolanaPubkey(address.to_bytes())
}

/// Decodes `bytes` as a legacy or v0 message that holds exactly one vote (plus at most one
/// compute-budget instruction), with no lookups and no repeated keys. Does not check who votes:
/// see [`check_vote_message`].
///
/// # Errors
/// The first [`MessageError`] found; nothing partial is returned.
pub fn decode_vote_message(bytes: &[u8]) -> Result<VoteMessage, MessageError> {
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(MessageError::TooLong { len: bytes.len() });
    }
    let message: VersionedMessage = decode_bincode(bytes)?;
    message
        .sanitize()
        .map_err(|e| MessageError::Malformed(e.to_string()))?;
    let instructions = match &message {
        VersionedMessage::Legacy(m) => &m.instructions,
        VersionedMessage::V0(m) => {
            if !m.address_table_lookups.is_empty() {
                return Err(MessageError::AddressTableLookup);
            }
            &m.instructions
        }
        VersionedMessage::V1(_) => return Err(MessageError::UnsupportedVersion("v1")),
    };
    let keys: Vec<SolanaPubkey> = message.static_account_keys().iter().map(key).collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(MessageError::DuplicateAccount(w[0]));
    }
    let signers = keys[..usize::from(message.header().num_required_signatures)].to_vec();

    let mut vote = None;
    let mut budget = false;
    for (index, ix) in instructions.iter().enumerate() {
        // `sanitize` has checked every index against the static keys.
        let program = keys[usize::from(ix.program_id_index)];
        if program.0 == solana_sdk_ids::vote::ID.to_bytes() {
            if vote.is_some() {
                return Err(MessageError::MultipleVotes);
            }
            vote = Some(decode_vote_instruction(index, ix, &keys)?);
        } else if program.0 == solana_sdk_ids::compute_budget::ID.to_bytes() {
            if budget {
                return Err(MessageError::BadComputeBudget {
                    index,
                    reason: "only one compute-budget instruction is allowed",
                });
            }
            check_compute_budget(index, ix)?;
            budget = true;
        } else {
            return Err(MessageError::ForeignInstruction { index, program });
        }
    }
    let vote = vote.ok_or(MessageError::NoVote)?;
    Ok(VoteMessage { signers, vote })
}

/// Decodes `bytes` with [`decode_vote_message`] and checks that the vote is for `vote_account`
/// with `vote_key` as its authority, and that only `vote_key` and `identity` sign.
///
/// # Errors
/// The first [`MessageError`] found.
pub fn check_vote_message(
    bytes: &[u8],
    identity: &SolanaPubkey,
    vote_account: &SolanaPubkey,
    vote_key: &SolanaPubkey,
) -> Result<Vote, MessageError> {
    let message = decode_vote_message(bytes)?;
    if !message.signers.contains(vote_key) {
        return Err(MessageError::VoteKeyNotSigner(*vote_key));
    }
    if let Some(other) = message
        .signers
        .iter()
        .find(|s| *s != vote_key && *s != identity)
    {
        return Err(MessageError::UnexpectedSigner(*other));
    }
    let vote = message.vote;
    if vote.vote_account != *vote_account {
        return Err(MessageError::WrongAccount {
            position: "vote account",
            found: vote.vote_account,
            expected: *vote_account,
        });
    }
    if vote.authority != *vote_key {
        return Err(MessageError::WrongAccount {
            position: "vote authority",
            found: vote.authority,
            expected: *vote_key,
        });
    }
    Ok(vote)
}

/// Bincode as the vote program reads it (fixed-width integers), bounded, with no trailing bytes
/// (the vote program ignores trailing bytes; refusing them is stricter and costs nothing).
fn decode_bincode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, MessageError> {
    use bincode::Options;
    bincode::options()
        .with_limit(MAX_MESSAGE_LEN as u64)
        .with_fixint_encoding()
        .reject_trailing_bytes()
        .deserialize(bytes)
        .map_err(|e| MessageError::Malformed(e.to_string()))
}

fn decode_vote_instruction(
    index: usize,
    ix: &CompiledInstruction,
    keys: &[SolanaPubkey],
) -> Result<Vote, MessageError> {
    let instruction: VoteInstruction = decode_bincode(&ix.data)?;
    let account = |i: usize| keys[usize::from(ix.accounts[i])];
    let (kind, action, hash, accounts) = match instruction {
        VoteInstruction::Vote(v) => ("Vote", VoteAction::Slots(v.slots), v.hash, 4),
        VoteInstruction::VoteSwitch(v, _) => ("VoteSwitch", VoteAction::Slots(v.slots), v.hash, 4),
        VoteInstruction::UpdateVoteState(u) => {
            ("UpdateVoteState", tower(&u.lockouts, u.root), u.hash, 2)
        }
        VoteInstruction::UpdateVoteStateSwitch(u, _) => (
            "UpdateVoteStateSwitch",
            tower(&u.lockouts, u.root),
            u.hash,
            2,
        ),
        VoteInstruction::CompactUpdateVoteState(u) => (
            "CompactUpdateVoteState",
            tower(&u.lockouts, u.root),
            u.hash,
            2,
        ),
        VoteInstruction::CompactUpdateVoteStateSwitch(u, _) => (
            "CompactUpdateVoteStateSwitch",
            tower(&u.lockouts, u.root),
            u.hash,
            2,
        ),
        VoteInstruction::TowerSync(t) => ("TowerSync", tower(&t.lockouts, t.root), t.hash, 2),
        VoteInstruction::TowerSyncSwitch(t, _) => {
            ("TowerSyncSwitch", tower(&t.lockouts, t.root), t.hash, 2)
        }
        other => {
            return Err(MessageError::NotAVote {
                index,
                name: instruction_name(&other),
            });
        }
    };
    if ix.accounts.len() != accounts {
        return Err(MessageError::WrongAccountCount {
            found: ix.accounts.len(),
            expected: accounts,
        });
    }
    let authority = if accounts == 4 {
        for (i, (position, sysvar)) in [
            (
                "1 (SlotHashes sysvar)",
                solana_sdk_ids::sysvar::slot_hashes::ID,
            ),
            ("2 (Clock sysvar)", solana_sdk_ids::sysvar::clock::ID),
        ]
        .into_iter()
        .enumerate()
        {
            let found = account(i + 1);
            if found.0 != sysvar.to_bytes() {
                return Err(MessageError::WrongAccount {
                    position,
                    found,
                    expected: SolanaPubkey(sysvar.to_bytes()),
                });
            }
        }
        account(3)
    } else {
        account(1)
    };
    Ok(Vote {
        kind,
        vote_account: account(0),
        authority,
        action,
        hash: hash.to_bytes(),
    })
}

fn tower(
    lockouts: &std::collections::VecDeque<solana_vote_interface::state::Lockout>,
    root: Option<Slot>,
) -> VoteAction {
    VoteAction::Tower(Tower::unchecked(
        lockouts
            .iter()
            .map(|l| Lockout {
                slot: l.slot(),
                confirmation_count: l.confirmation_count(),
            })
            .collect(),
        root,
    ))
}

/// The compute-budget program's instructions (borsh: a tag byte, then a little-endian integer):
/// 1 RequestHeapFrame(u32), 2 SetComputeUnitLimit(u32), 3 SetComputeUnitPrice(u64),
/// 4 SetLoadedAccountsDataSizeLimit(u32). None takes accounts.
fn check_compute_budget(index: usize, ix: &CompiledInstruction) -> Result<(), MessageError> {
    if !ix.accounts.is_empty() {
        return Err(MessageError::BadComputeBudget {
            index,
            reason: "it names accounts",
        });
    }
    let expected_len = match ix.data.first() {
        Some(1 | 2 | 4) => 5,
        Some(3) => 9,
        _ => {
            return Err(MessageError::BadComputeBudget {
                index,
                reason: "unknown instruction",
            });
        }
    };
    if ix.data.len() != expected_len {
        return Err(MessageError::BadComputeBudget {
            index,
            reason: "wrong data length",
        });
    }
    Ok(())
}

fn instruction_name(ix: &VoteInstruction) -> &'static str {
    match ix {
        VoteInstruction::InitializeAccount(_) => "InitializeAccount",
        VoteInstruction::Authorize(..) => "Authorize",
        VoteInstruction::Withdraw(_) => "Withdraw",
        VoteInstruction::UpdateValidatorIdentity => "UpdateValidatorIdentity",
        VoteInstruction::UpdateCommission(_) => "UpdateCommission",
        VoteInstruction::AuthorizeChecked(_) => "AuthorizeChecked",
        VoteInstruction::AuthorizeWithSeed(_) => "AuthorizeWithSeed",
        VoteInstruction::AuthorizeCheckedWithSeed(_) => "AuthorizeCheckedWithSeed",
        _ => "a non-vote instruction",
    }
}
