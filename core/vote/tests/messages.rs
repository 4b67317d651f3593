//! `decode_vote_message` and `check_vote_message` on real Solana messages, built with Solana's
//! own instruction builders and message compiler.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::LazyLock;

use common::{
    addr, compute_budget_raw, compute_unit_price, encode, hash, legacy, legacy_message, random_key,
    tower, tower_sync, tower_sync_ix, v0_compiled, v0_message,
};
use keyward_crypto::SolanaPubkey;
use keyward_vote::message::{
    MAX_MESSAGE_LEN, MessageError, Vote, VoteAction, check_vote_message, decode_vote_message,
};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use solana_address::Address;
use solana_instruction::{AccountMeta, Instruction};
use solana_message::VersionedMessage;
use solana_message::v0::MessageAddressTableLookup;
use solana_message::v1;
use solana_vote_interface::instruction as vote_ix;
use solana_vote_interface::state::{TowerSync, Vote as SolanaVote, VoteAuthorize, VoteStateUpdate};

/// The slots every test vote votes on, and the root of the tower forms.
const SLOTS: [u64; 3] = [10, 11, 12];
const ROOT: u64 = 5;

/// A validator's identity, its vote account and its vote key.
struct Keys {
    identity: SolanaPubkey,
    vote_account: SolanaPubkey,
    vote_key: SolanaPubkey,
}

fn keys(seed: u64) -> Keys {
    let mut rng = StdRng::seed_from_u64(seed);
    Keys {
        identity: random_key(&mut rng),
        vote_account: random_key(&mut rng),
        vote_key: random_key(&mut rng),
    }
}

impl Keys {
    fn check(&self, bytes: &[u8]) -> Result<Vote, MessageError> {
        check_vote_message(bytes, &self.identity, &self.vote_account, &self.vote_key)
    }

    /// A legacy message of `instructions`, paid by the identity.
    fn message(&self, instructions: &[Instruction]) -> Vec<u8> {
        legacy_message(instructions, &self.identity)
    }

    fn account(&self) -> Address {
        addr(&self.vote_account)
    }

    fn authority(&self) -> Address {
        addr(&self.vote_key)
    }

    /// `TowerSync` on [`SLOTS`] with root [`ROOT`] and bank hash `[1; 32]`.
    fn tower_sync(&self) -> Instruction {
        tower_sync_ix(
            &self.vote_account,
            &self.vote_key,
            tower_sync(&SLOTS, Some(ROOT), 1),
        )
    }

    /// `Vote` on [`SLOTS`] with bank hash `[1; 32]`.
    fn simple_vote(&self) -> Instruction {
        vote_ix::vote(
            &self.account(),
            &self.authority(),
            SolanaVote::new(SLOTS.to_vec(), hash(1)),
        )
    }

    /// Every vote instruction the signer signs, by the vote program's name, each on [`SLOTS`]
    /// with bank hash `[1; 32]` (switch proofs hash `[2; 32]`).
    fn vote_kinds(&self) -> [(&'static str, Instruction); 8] {
        let (account, authority) = (self.account(), self.authority());
        let sync = || tower_sync(&SLOTS, Some(ROOT), 1);
        let update = || VoteStateUpdate::new(sync().lockouts, Some(ROOT), hash(1));
        let simple = || SolanaVote::new(SLOTS.to_vec(), hash(1));
        [
            (
                "TowerSync",
                vote_ix::tower_sync(&account, &authority, sync()),
            ),
            (
                "TowerSyncSwitch",
                vote_ix::tower_sync_switch(&account, &authority, sync(), hash(2)),
            ),
            ("Vote", vote_ix::vote(&account, &authority, simple())),
            (
                "VoteSwitch",
                vote_ix::vote_switch(&account, &authority, simple(), hash(2)),
            ),
            (
                "UpdateVoteState",
                vote_ix::update_vote_state(&account, &authority, update()),
            ),
            (
                "UpdateVoteStateSwitch",
                vote_ix::update_vote_state_switch(&account, &authority, update(), hash(2)),
            ),
            (
                "CompactUpdateVoteState",
                vote_ix::compact_update_vote_state(&account, &authority, update()),
            ),
            (
                "CompactUpdateVoteStateSwitch",
                vote_ix::compact_update_vote_state_switch(&account, &authority, update(), hash(2)),
            ),
        ]
    }
}

/// What a vote of `kind` on [`SLOTS`] asks of the tower.
fn expected_action(kind: &str) -> VoteAction {
    if kind.starts_with("Vote") {
        VoteAction::Slots(SLOTS.to_vec())
    } else {
        VoteAction::Tower(tower(&[(10, 3), (11, 2), (12, 1)], Some(ROOT)))
    }
}

/// The slots a vote of `kind` on [`SLOTS`] claims are on its fork.
fn expected_claimed(kind: &str) -> Vec<u64> {
    if kind.starts_with("Vote") {
        SLOTS.to_vec()
    } else {
        vec![ROOT, 10, 11, 12]
    }
}

fn system_transfer(from: &SolanaPubkey, to: &SolanaPubkey, lamports: u64) -> Instruction {
    // SystemInstruction::Transfer: u32 tag 2, then the lamports, both little-endian.
    let mut data = 2u32.to_le_bytes().to_vec();
    data.extend_from_slice(&lamports.to_le_bytes());
    Instruction::new_with_bytes(
        solana_sdk_ids::system_program::ID,
        &data,
        vec![
            AccountMeta::new(addr(from), true),
            AccountMeta::new(addr(to), false),
        ],
    )
}

fn program_key(id: &Address) -> SolanaPubkey {
    SolanaPubkey(id.to_bytes())
}

#[test]
fn every_vote_kind_is_accepted_with_or_without_a_compute_budget() {
    let k = keys(1);
    for (kind, ix) in k.vote_kinds() {
        let layouts = [
            vec![ix.clone()],
            vec![compute_unit_price(5_000), ix.clone()],
            vec![ix, compute_unit_price(5_000)],
        ];
        for instructions in layouts {
            let encodings = [
                k.message(&instructions),
                v0_message(&instructions, &k.identity),
            ];
            for bytes in encodings {
                let decoded = decode_vote_message(&bytes).unwrap_or_else(|e| panic!("{kind}: {e}"));
                assert_eq!(decoded.signers, [k.identity, k.vote_key], "{kind}");
                let vote = k.check(&bytes).unwrap_or_else(|e| panic!("{kind}: {e}"));
                assert_eq!(vote, decoded.vote, "{kind}");
                assert_eq!(vote.kind, kind);
                assert_eq!(vote.vote_account, k.vote_account, "{kind}");
                assert_eq!(vote.authority, k.vote_key, "{kind}");
                assert_eq!(vote.hash, [1; 32], "{kind}");
                assert_eq!(vote.last_slot(), Some(12), "{kind}");
                assert_eq!(vote.action, expected_action(kind), "{kind}");
                assert_eq!(vote.claimed_slots(), expected_claimed(kind), "{kind}");
            }
        }
    }
}

#[test]
fn the_tower_of_a_tower_sync_is_its_lockouts_and_root() {
    let k = keys(2);
    let sync = TowerSync::from(vec![(3, 5), (4, 4), (6, 2), (7, 1)]);
    let sync = TowerSync {
        root: Some(2),
        hash: hash(0x77),
        ..sync
    };
    let bytes = k.message(&[tower_sync_ix(&k.vote_account, &k.vote_key, sync)]);
    let vote = k.check(&bytes).unwrap();
    assert_eq!(vote.kind, "TowerSync");
    assert_eq!(vote.hash, [0x77; 32]);
    assert_eq!(vote.last_slot(), Some(7));
    assert_eq!(
        vote.action,
        VoteAction::Tower(tower(&[(3, 5), (4, 4), (6, 2), (7, 1)], Some(2)))
    );
    assert_eq!(vote.claimed_slots(), [2, 3, 4, 6, 7]);
}

#[test]
fn the_identity_need_not_pay() {
    // The vote key alone may sign (and pay): the identity is optional.
    let k = keys(3);
    let bytes = legacy_message(&[k.tower_sync()], &k.vote_key);
    assert_eq!(decode_vote_message(&bytes).unwrap().signers, [k.vote_key]);
    assert_eq!(k.check(&bytes).unwrap().kind, "TowerSync");
}

#[test]
fn every_known_compute_budget_instruction_is_accepted() {
    let k = keys(4);
    let cases: [&[u8]; 4] = [
        &[1, 0, 0, 1, 0],             // RequestHeapFrame(u32)
        &[2, 0x40, 0x0d, 0x03, 0],    // SetComputeUnitLimit(u32)
        &[3, 1, 0, 0, 0, 0, 0, 0, 0], // SetComputeUnitPrice(u64)
        &[4, 0, 0, 0x10, 0],          // SetLoadedAccountsDataSizeLimit(u32)
    ];
    for data in cases {
        let bytes = k.message(&[compute_budget_raw(data), k.tower_sync()]);
        assert_eq!(k.check(&bytes).unwrap().kind, "TowerSync", "{data:?}");
    }
}

#[test]
fn compute_budget_refusals() {
    let k = keys(5);
    fn bad(index: usize, reason: &'static str) -> MessageError {
        MessageError::BadComputeBudget { index, reason }
    }
    let two = k.message(&[compute_unit_price(1), compute_unit_price(2), k.tower_sync()]);
    assert_eq!(
        k.check(&two).unwrap_err(),
        bad(1, "only one compute-budget instruction is allowed")
    );
    let around = k.message(&[compute_unit_price(1), k.tower_sync(), compute_unit_price(2)]);
    assert_eq!(
        k.check(&around).unwrap_err(),
        bad(2, "only one compute-budget instruction is allowed")
    );
    let short_price = k.message(&[compute_budget_raw(&[3, 1, 0, 0, 0]), k.tower_sync()]);
    assert_eq!(
        k.check(&short_price).unwrap_err(),
        bad(0, "wrong data length")
    );
    let long_limit = k.message(&[
        compute_budget_raw(&[2, 1, 0, 0, 0, 0, 0, 0, 0]),
        k.tower_sync(),
    ]);
    assert_eq!(
        k.check(&long_limit).unwrap_err(),
        bad(0, "wrong data length")
    );
    let unknown = k.message(&[k.tower_sync(), compute_budget_raw(&[0, 0, 0, 0, 0])]);
    assert_eq!(
        k.check(&unknown).unwrap_err(),
        bad(1, "unknown instruction")
    );
    let empty = k.message(&[k.tower_sync(), compute_budget_raw(&[])]);
    assert_eq!(k.check(&empty).unwrap_err(), bad(1, "unknown instruction"));
    let with_accounts = Instruction::new_with_bytes(
        solana_sdk_ids::compute_budget::ID,
        &[3, 1, 0, 0, 0, 0, 0, 0, 0],
        vec![AccountMeta::new_readonly(k.account(), false)],
    );
    let named = k.message(&[with_accounts, k.tower_sync()]);
    assert_eq!(k.check(&named).unwrap_err(), bad(0, "it names accounts"));
}

#[test]
fn v0_with_an_address_table_lookup_is_refused() {
    let k = keys(6);
    let mut message = v0_compiled(&[k.tower_sync()], &k.identity);
    assert_eq!(
        k.check(&encode(&VersionedMessage::V0(message.clone())))
            .unwrap()
            .kind,
        "TowerSync"
    );
    message
        .address_table_lookups
        .push(MessageAddressTableLookup {
            account_key: addr(&keys(60).vote_key),
            writable_indexes: vec![0],
            readonly_indexes: Vec::new(),
        });
    let bytes = encode(&VersionedMessage::V0(message));
    assert_eq!(bytes[0], 0x80);
    assert_eq!(
        decode_vote_message(&bytes).unwrap_err(),
        MessageError::AddressTableLookup
    );
    assert_eq!(
        k.check(&bytes).unwrap_err(),
        MessageError::AddressTableLookup
    );
}

#[test]
fn v1_is_refused_as_unsupported() {
    let k = keys(7);
    let message = v1::Message::try_compile_with_config(
        &addr(&k.identity),
        &[k.tower_sync()],
        hash(9),
        v1::TransactionConfig::empty(),
    )
    .unwrap();
    let bytes = encode(&VersionedMessage::V1(message));
    assert_eq!(bytes[0], 0x81);
    assert_eq!(
        decode_vote_message(&bytes).unwrap_err(),
        MessageError::UnsupportedVersion("v1")
    );
}

#[test]
fn more_than_one_vote_is_refused() {
    let k = keys(8);
    let second = tower_sync_ix(
        &k.vote_account,
        &k.vote_key,
        tower_sync(&[10, 11, 12, 13], Some(ROOT), 1),
    );
    let two_syncs = k.message(&[k.tower_sync(), second]);
    assert_eq!(
        decode_vote_message(&two_syncs).unwrap_err(),
        MessageError::MultipleVotes
    );
    let mixed = k.message(&[k.simple_vote(), compute_unit_price(1), k.tower_sync()]);
    assert_eq!(k.check(&mixed).unwrap_err(), MessageError::MultipleVotes);
}

#[test]
fn instructions_of_other_programs_are_refused() {
    let k = keys(9);
    let mut rng = StdRng::seed_from_u64(90);
    let to = random_key(&mut rng);
    let system = program_key(&solana_sdk_ids::system_program::ID);
    let after = k.message(&[k.tower_sync(), system_transfer(&k.identity, &to, 1)]);
    assert_eq!(
        k.check(&after).unwrap_err(),
        MessageError::ForeignInstruction {
            index: 1,
            program: system
        }
    );
    let before = k.message(&[system_transfer(&k.identity, &to, 1), k.tower_sync()]);
    assert_eq!(
        decode_vote_message(&before).unwrap_err(),
        MessageError::ForeignInstruction {
            index: 0,
            program: system
        }
    );
    let program = random_key(&mut rng);
    let memo = Instruction::new_with_bytes(addr(&program), b"hello", Vec::new());
    let with_memo = k.message(&[compute_unit_price(1), k.tower_sync(), memo]);
    assert_eq!(
        k.check(&with_memo).unwrap_err(),
        MessageError::ForeignInstruction { index: 2, program }
    );
}

#[test]
fn vote_program_instructions_that_are_not_votes_are_refused() {
    let k = keys(10);
    let mut rng = StdRng::seed_from_u64(100);
    let other = addr(&random_key(&mut rng));
    let (account, authority) = (k.account(), k.authority());
    let cases = [
        (
            "Authorize",
            vote_ix::authorize(&account, &authority, &other, VoteAuthorize::Voter),
        ),
        (
            "Withdraw",
            vote_ix::withdraw(&account, &authority, 1_000_000, &other),
        ),
        (
            "UpdateValidatorIdentity",
            vote_ix::update_validator_identity(&account, &authority, &addr(&k.identity)),
        ),
        (
            "UpdateCommission",
            vote_ix::update_commission(&account, &authority, 5),
        ),
    ];
    for (name, ix) in cases {
        let alone = k.message(std::slice::from_ref(&ix));
        assert_eq!(
            k.check(&alone).unwrap_err(),
            MessageError::NotAVote { index: 0, name }
        );
        let budgeted = k.message(&[compute_unit_price(1), ix]);
        assert_eq!(
            decode_vote_message(&budgeted).unwrap_err(),
            MessageError::NotAVote { index: 1, name }
        );
    }
}

#[test]
fn a_message_without_a_vote_is_refused() {
    let k = keys(11);
    assert_eq!(
        k.check(&k.message(&[compute_unit_price(1)])).unwrap_err(),
        MessageError::NoVote
    );
    assert_eq!(k.check(&k.message(&[])).unwrap_err(), MessageError::NoVote);
}

#[test]
fn the_vote_account_and_authority_must_be_the_expected_ones() {
    let k = keys(12);
    let mut rng = StdRng::seed_from_u64(120);
    let other_account = random_key(&mut rng);
    let elsewhere = k.message(&[tower_sync_ix(
        &other_account,
        &k.vote_key,
        tower_sync(&SLOTS, None, 1),
    )]);
    assert_eq!(
        k.check(&elsewhere).unwrap_err(),
        MessageError::WrongAccount {
            position: "vote account",
            found: other_account,
            expected: k.vote_account,
        }
    );
    // The vote key signs (and pays), but the identity is named as the authority.
    let identity_votes = legacy_message(
        &[tower_sync_ix(
            &k.vote_account,
            &k.identity,
            tower_sync(&SLOTS, None, 1),
        )],
        &k.vote_key,
    );
    assert_eq!(
        decode_vote_message(&identity_votes).unwrap().signers,
        [k.vote_key, k.identity]
    );
    assert_eq!(
        k.check(&identity_votes).unwrap_err(),
        MessageError::WrongAccount {
            position: "vote authority",
            found: k.identity,
            expected: k.vote_key,
        }
    );
}

#[test]
fn a_vote_must_name_the_sysvars_in_place() {
    let k = keys(13);
    let slot_hashes = program_key(&solana_sdk_ids::sysvar::slot_hashes::ID);
    let clock = program_key(&solana_sdk_ids::sysvar::clock::ID);
    let mut ix = k.simple_vote();
    ix.accounts[1] = AccountMeta::new_readonly(solana_sdk_ids::sysvar::clock::ID, false);
    assert_eq!(
        k.check(&k.message(&[ix])).unwrap_err(),
        MessageError::WrongAccount {
            position: "1 (SlotHashes sysvar)",
            found: clock,
            expected: slot_hashes,
        }
    );
    let mut ix = k.simple_vote();
    ix.accounts[2] = AccountMeta::new_readonly(solana_sdk_ids::sysvar::slot_hashes::ID, false);
    assert_eq!(
        k.check(&k.message(&[ix])).unwrap_err(),
        MessageError::WrongAccount {
            position: "2 (Clock sysvar)",
            found: slot_hashes,
            expected: clock,
        }
    );
}

#[test]
fn the_vote_instruction_must_have_the_builder_account_count() {
    let k = keys(14);
    let mut extra = k.tower_sync();
    extra
        .accounts
        .push(AccountMeta::new_readonly(addr(&keys(140).vote_key), false));
    assert_eq!(
        k.check(&k.message(&[extra])).unwrap_err(),
        MessageError::WrongAccountCount {
            found: 3,
            expected: 2
        }
    );
    let mut short = k.simple_vote();
    short.accounts.truncate(3);
    assert_eq!(
        decode_vote_message(&k.message(&[short])).unwrap_err(),
        MessageError::WrongAccountCount {
            found: 3,
            expected: 4
        }
    );
}

#[test]
fn only_the_vote_key_and_the_identity_may_sign() {
    let k = keys(15);
    // The vote account signs too: a third signer.
    let mut ix = k.tower_sync();
    ix.accounts[0].is_signer = true;
    let three = k.message(&[ix]);
    assert_eq!(
        decode_vote_message(&three).unwrap().signers,
        [k.identity, k.vote_account, k.vote_key]
    );
    assert_eq!(
        k.check(&three).unwrap_err(),
        MessageError::UnexpectedSigner(k.vote_account)
    );
    // Someone else pays.
    let stranger = keys(150).identity;
    let paid_by_stranger = legacy_message(&[k.tower_sync()], &stranger);
    assert_eq!(
        k.check(&paid_by_stranger).unwrap_err(),
        MessageError::UnexpectedSigner(stranger)
    );
    // Another validator's identity pays for this vote.
    let valid = k.message(&[k.tower_sync()]);
    assert_eq!(
        check_vote_message(&valid, &stranger, &k.vote_account, &k.vote_key).unwrap_err(),
        MessageError::UnexpectedSigner(k.identity)
    );
}

#[test]
fn the_vote_key_must_sign() {
    let k = keys(16);
    let mut ix = k.tower_sync();
    ix.accounts[1].is_signer = false;
    let bytes = k.message(&[ix]);
    assert_eq!(decode_vote_message(&bytes).unwrap().signers, [k.identity]);
    assert_eq!(
        k.check(&bytes).unwrap_err(),
        MessageError::VoteKeyNotSigner(k.vote_key)
    );
    // A message by another vote key (here: the right layout under a key rotated away).
    let old = keys(160).vote_key;
    let by_old = k.message(&[tower_sync_ix(
        &k.vote_account,
        &old,
        tower_sync(&SLOTS, None, 1),
    )]);
    assert_eq!(
        k.check(&by_old).unwrap_err(),
        MessageError::VoteKeyNotSigner(k.vote_key)
    );
}

#[test]
fn a_repeated_account_key_is_refused() {
    let k = keys(17);
    let mut message = legacy(&[k.tower_sync()], &k.identity);
    message.account_keys.push(addr(&k.identity));
    let bytes = encode(&VersionedMessage::Legacy(message));
    assert_eq!(
        decode_vote_message(&bytes).unwrap_err(),
        MessageError::DuplicateAccount(k.identity)
    );
}

#[test]
fn a_message_over_the_packet_size_is_refused() {
    let k = keys(18);
    let slots: Vec<u64> = (1..=160).collect();
    let ix = vote_ix::vote(
        &k.account(),
        &k.authority(),
        SolanaVote::new(slots, hash(1)),
    );
    let bytes = k.message(&[ix]);
    assert!(bytes.len() > MAX_MESSAGE_LEN, "{} bytes", bytes.len());
    assert_eq!(
        k.check(&bytes).unwrap_err(),
        MessageError::TooLong { len: bytes.len() }
    );
    assert_eq!(
        decode_vote_message(&[0; MAX_MESSAGE_LEN + 1]).unwrap_err(),
        MessageError::TooLong {
            len: MAX_MESSAGE_LEN + 1
        }
    );
    // At the limit, the length is not what is refused.
    assert!(matches!(
        decode_vote_message(&[0; MAX_MESSAGE_LEN]),
        Err(MessageError::Malformed(_))
    ));
}

#[test]
fn trailing_bytes_and_garbage_are_malformed() {
    let k = keys(19);
    let valid = k.message(&[k.tower_sync()]);
    assert!(k.check(&valid).is_ok());
    let mut trailing = valid.clone();
    trailing.push(0);
    assert!(matches!(
        decode_vote_message(&trailing),
        Err(MessageError::Malformed(_))
    ));
    let mut v0_trailing = v0_message(&[k.tower_sync()], &k.identity);
    v0_trailing.push(0);
    assert!(matches!(
        decode_vote_message(&v0_trailing),
        Err(MessageError::Malformed(_))
    ));
    // No signer: the header says zero required signatures, which `sanitize` refuses.
    let mut unsigned = valid.clone();
    unsigned[0] = 0;
    assert!(matches!(
        decode_vote_message(&unsigned),
        Err(MessageError::Malformed(_))
    ));
    // Off-chain message prefix (version 127) and an unknown version (2).
    for prefix in [0xff, 0x82] {
        let mut versioned = vec![prefix];
        versioned.extend_from_slice(&valid);
        assert!(
            matches!(
                decode_vote_message(&versioned),
                Err(MessageError::Malformed(_))
            ),
            "prefix {prefix:#x}"
        );
    }
    assert!(matches!(
        decode_vote_message(&[]),
        Err(MessageError::Malformed(_))
    ));
}

#[test]
fn every_truncation_is_malformed() {
    let k = keys(20);
    for (kind, ix) in k.vote_kinds() {
        let messages = [
            k.message(&[compute_unit_price(7), ix.clone()]),
            v0_message(&[ix], &k.identity),
        ];
        for bytes in messages {
            assert!(k.check(&bytes).is_ok(), "{kind}");
            for len in 0..bytes.len() {
                assert!(
                    matches!(
                        decode_vote_message(&bytes[..len]),
                        Err(MessageError::Malformed(_))
                    ),
                    "{kind}: prefix of {len} of {} bytes",
                    bytes.len()
                );
            }
        }
    }
}

#[test]
fn every_single_bit_flip_is_handled_without_panicking() {
    let k = keys(21);
    let valid = k.message(&[compute_unit_price(7), k.tower_sync()]);
    let mut refused = 0usize;
    for bit in 0..valid.len() * 8 {
        let mut flipped = valid.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        if k.check(&flipped).is_err() {
            refused += 1;
        }
    }
    // Flips in the signers' keys alone refuse 2 × 32 × 8 messages.
    assert!(refused >= 2 * 32 * 8, "{refused} refused");
}

/// Valid messages of every kind, legacy and v0, for the fuzz tests.
static VALID: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let k = keys(22);
    let mut out = Vec::new();
    for (_, ix) in k.vote_kinds() {
        out.push(k.message(&[compute_unit_price(3), ix.clone()]));
        out.push(v0_message(&[ix], &k.identity));
    }
    out
});

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1400)) {
        let _ = decode_vote_message(&bytes);
        let k = keys(22);
        let _ = k.check(&bytes);
    }

    #[test]
    fn random_bytes_after_a_version_prefix_never_panic(
        prefix in prop_oneof![Just(0x80u8), Just(0x81u8), Just(0x01u8), Just(0x02u8)],
        rest in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut bytes = vec![prefix];
        bytes.extend_from_slice(&rest);
        let _ = decode_vote_message(&bytes);
    }

    #[test]
    fn single_byte_changes_decode_or_fail_cleanly(
        which in any::<prop::sample::Index>(),
        pos in any::<prop::sample::Index>(),
        value in any::<u8>(),
    ) {
        let k = keys(22);
        let mut bytes = VALID[which.index(VALID.len())].clone();
        let i = pos.index(bytes.len());
        let unchanged = bytes[i] == value;
        bytes[i] = value;
        match decode_vote_message(&bytes) {
            Ok(decoded) => {
                let again = decode_vote_message(&bytes).unwrap();
                prop_assert_eq!(&decoded.vote, &again.vote);
                prop_assert_eq!(&decoded.signers, &again.signers);
                let checked = k.check(&bytes);
                if unchanged {
                    prop_assert_eq!(checked, Ok(decoded.vote));
                }
            }
            Err(e) => prop_assert!(!unchanged, "a valid message was refused: {e}"),
        }
    }

    #[test]
    fn random_tails_after_a_valid_prefix_never_panic(
        which in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        tail in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let valid = &VALID[which.index(VALID.len())];
        let mut bytes = valid[..cut.index(valid.len())].to_vec();
        bytes.extend_from_slice(&tail);
        let _ = decode_vote_message(&bytes);
        let _ = keys(22).check(&bytes);
    }
}
