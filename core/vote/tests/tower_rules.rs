//! The tower rules against the Solana vote program's own test cases (agave
//! `programs/vote/src/vote_state/mod.rs`, transcribed in the vote-rules reference, §7 and §8),
//! the signer's extra `RootConflict` rule, and property tests: sequential towers stay well
//! formed, honest successors are accepted, and no accepted successor abandons a fork that a
//! signed vote is still locked out on.
#![allow(clippy::unwrap_used)] // test helpers

use keyward_vote::tower::{Lockout, LockoutPolicy, Slot, Tower, TowerError};
use proptest::prelude::*;

const POLICY: LockoutPolicy = LockoutPolicy::SOLANA;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `process_slot_vote_unchecked` for each slot in turn, from `start`, under `policy`: a slot not
/// newer than the last vote is ignored, as the vote program ignores it.
fn extend_with(
    policy: &LockoutPolicy,
    start: &Tower,
    slots: impl IntoIterator<Item = Slot>,
) -> Tower {
    let mut tower = start.clone();
    for slot in slots {
        match tower.apply_slots(&[slot], policy) {
            Ok(next) => tower = next,
            Err(TowerError::VoteTooOld { .. }) => {}
            Err(e) => panic!("vote on slot {slot} after {tower}: {e}"),
        }
    }
    tower
}

/// [`extend_with`] under Solana's rules.
fn extend(start: &Tower, slots: impl IntoIterator<Item = Slot>) -> Tower {
    extend_with(&POLICY, start, slots)
}

/// The tower of an empty vote state after voting on `slots` one at a time ("seq" in the doc).
fn seq(slots: impl IntoIterator<Item = Slot>) -> Tower {
    extend(&Tower::new(), slots)
}

fn lockouts(pairs: &[(Slot, u32)]) -> Vec<Lockout> {
    pairs
        .iter()
        .map(|&(slot, confirmation_count)| Lockout {
            slot,
            confirmation_count,
        })
        .collect()
}

/// A well-formed tower from `(slot, confirmations)` pairs, oldest first.
fn t(pairs: &[(Slot, u32)], root: Option<Slot>) -> Tower {
    Tower::from_parts(lockouts(pairs), root, &POLICY).unwrap()
}

/// The same votes under another root.
fn with_root(tower: &Tower, root: Option<Slot>) -> Tower {
    Tower::from_parts(tower.votes().to_vec(), root, &POLICY).unwrap()
}

/// A tower's votes as `(slot, confirmations)` pairs, oldest first.
fn pairs(tower: &Tower) -> Vec<(Slot, u32)> {
    tower
        .votes()
        .iter()
        .map(|v| (v.slot, v.confirmation_count))
        .collect()
}

/// A full stack over `slots`: confirmations from `len` down to 1, as votes that never expire give.
fn stack(slots: impl IntoIterator<Item = Slot>) -> Vec<(Slot, u32)> {
    let slots: Vec<Slot> = slots.into_iter().collect();
    let len = u32::try_from(slots.len()).unwrap();
    slots.into_iter().zip((1..=len).rev()).collect()
}

/// A tower built one vote at a time, and what it must be.
struct SeqCase {
    name: &'static str,
    got: Tower,
    votes: Vec<(Slot, u32)>,
    root: Option<Slot>,
}

fn check_seq_cases(cases: &[SeqCase]) {
    for case in cases {
        assert_eq!(pairs(&case.got), case.votes, "{}: votes", case.name);
        assert_eq!(case.got.root(), case.root, "{}: root", case.name);
        assert_eq!(
            case.got.validate(&POLICY),
            Ok(()),
            "{}: validate",
            case.name
        );
    }
}

/// A proposed tower checked against a stored one.
struct SuccessorCase {
    name: &'static str,
    stored: Tower,
    proposed: Tower,
    want: Result<(), TowerError>,
}

fn check_successor_cases(cases: &[SuccessorCase]) {
    for case in cases {
        assert_eq!(
            case.stored.check_successor(&case.proposed, &POLICY),
            case.want,
            "{}: {} -> {}",
            case.name,
            case.stored,
            case.proposed
        );
    }
}

// ---------------------------------------------------------------------------------------------
// §8.1 Sequential votes
// ---------------------------------------------------------------------------------------------

#[test]
fn sequential_votes() {
    // test_vote_lockout: 32 votes on even slots; the 32nd roots the first.
    let s1 = seq((0..32).map(|i| 2 * i));
    let s2 = extend(&s1, [64]);
    assert_eq!(POLICY.last_locked_out_slot(&s2.votes()[0]), 2_147_483_652);
    let s3 = extend(&s2, [2_147_483_652]);
    // test_vote_double_lockout_after_expiration
    let s4 = seq([0, 1, 2]);
    let s5 = extend(&s4, [5]);
    let s6 = extend(&s5, [6]);
    let s7 = extend(&s6, [7]);
    // test_expire_multiple_votes
    let s8 = extend(&t(&[(0, 3), (1, 2), (2, 1)], None), [6]);
    let s9 = extend(&s8, [7]);
    // test_process_missed_votes: one Vote on 0..=15, on a tower that has 0..=4 and on an empty one.
    let missed: Vec<Slot> = (0..=15).collect();
    let s13a = seq(0..=4).apply_slots(&missed, &POLICY).unwrap();
    let s13b = Tower::new().apply_slots(&missed, &POLICY).unwrap();

    let cases = [
        SeqCase {
            name: "S1 test_vote_lockout: 32 votes root slot 0",
            got: s1,
            votes: stack((1..32).map(|i| 2 * i)),
            root: Some(0),
        },
        SeqCase {
            name: "S2 test_vote_lockout: vote at the top's last locked-out slot",
            got: s2,
            votes: stack((2..=32).map(|i| 2 * i)),
            root: Some(2),
        },
        SeqCase {
            name: "S3 test_vote_lockout: vote at the bottom's last locked-out slot",
            got: s3,
            votes: vec![(4, 31), (2_147_483_652, 1)],
            root: Some(2),
        },
        SeqCase {
            name: "S4 test_vote_double_lockout_after_expiration: 0,1,2",
            got: s4,
            votes: vec![(0, 3), (1, 2), (2, 1)],
            root: None,
        },
        SeqCase {
            name: "S5 test_vote_double_lockout_after_expiration: +5 expires 2",
            got: s5,
            votes: vec![(0, 3), (1, 2), (5, 1)],
            root: None,
        },
        SeqCase {
            name: "S6 test_vote_double_lockout_after_expiration: +6",
            got: s6,
            votes: vec![(0, 4), (1, 3), (5, 2), (6, 1)],
            root: None,
        },
        SeqCase {
            name: "S7 test_vote_double_lockout_after_expiration: +7",
            got: s7,
            votes: vec![(0, 5), (1, 4), (5, 3), (6, 2), (7, 1)],
            root: None,
        },
        SeqCase {
            name: "S8 test_expire_multiple_votes: +6 expires 1 and 2",
            got: s8,
            votes: vec![(0, 3), (6, 1)],
            root: None,
        },
        SeqCase {
            name: "S9 test_expire_multiple_votes: +7, slot 0 keeps 3",
            got: s9,
            votes: vec![(0, 3), (6, 2), (7, 1)],
            root: None,
        },
        SeqCase {
            name: "S11 test_duplicate_vote: second 0 ignored",
            got: seq([0, 1, 0]),
            votes: vec![(0, 2), (1, 1)],
            root: None,
        },
        SeqCase {
            name: "S13 test_process_missed_votes: after 0..=4",
            got: s13a,
            votes: stack(0..=15),
            root: None,
        },
        SeqCase {
            name: "S13 test_process_missed_votes: from empty",
            got: s13b,
            votes: stack(0..=15),
            root: None,
        },
    ];
    check_seq_cases(&cases);
}

#[test]
fn sequential_roots_follow_the_full_tower() {
    // test_vote_credits (credits are out of scope): 31 votes fill the tower, each further
    // vote roots the oldest.
    let mut tower = seq(0..=30);
    assert_eq!(pairs(&tower), stack(0..=30), "S10 after 0..=30");
    assert_eq!(tower.root(), None, "S10 after 0..=30");
    for (slot, root) in [(32, 0), (33, 1), (34, 2)] {
        tower = extend(&tower, [slot]);
        assert_eq!(tower.root(), Some(root), "S10 after {slot}");
        assert_eq!(tower.votes().len(), 31, "S10 after {slot}");
    }
}

#[test]
fn nth_recent_counts_from_the_top() {
    // test_nth_recent_lockout
    let tower = seq(0..=30);
    for depth in 0..31 {
        assert_eq!(
            tower.nth_recent(depth).map(|v| v.slot),
            Some(30 - depth as Slot),
            "S12 depth {depth}"
        );
    }
    assert_eq!(tower.nth_recent(31), None, "S12 depth 31");
    assert_eq!(Tower::new().nth_recent(0), None, "empty tower");
}

#[test]
fn timely_credits_groups() {
    // test_timely_credits: the groups voted in turn (one slot at a time, so the repeated 42 is
    // ignored) and the root after each, from the test's comments.
    let groups: Vec<(Vec<Slot>, Option<Slot>)> = vec![
        ((1..=8).collect(), None),
        ((9..=31).collect(), None),
        (vec![32], Some(1)),
        (vec![33], Some(2)),
        (vec![34, 35], Some(4)),
        (vec![36, 37, 38], Some(7)),
        (
            [39, 40, 41, 42, 42].into_iter().chain(43..=68).collect(),
            Some(37),
        ),
        ((69..=99).collect(), Some(68)),
        ((115..=124).collect(), Some(74)),
        (vec![200, 201], Some(74)),
        ((202..=226).collect(), Some(95)),
        ((227..=236).collect(), Some(205)),
    ];
    let mut tower = Tower::new();
    let mut after = Vec::new();
    for (i, (slots, root)) in groups.into_iter().enumerate() {
        let first = slots[0];
        tower = extend(&tower, slots);
        assert_eq!(
            tower.root(),
            root,
            "S17 group {i} (from slot {first}): root"
        );
        assert_eq!(tower.validate(&POLICY), Ok(()), "S17 group {i}: validate");
        after.push(tower.clone());
    }

    let after_200: Vec<(Slot, u32)> = (75..=95)
        .chain(115..=118)
        .zip((7..=31).rev())
        .chain([(200, 2), (201, 1)])
        .collect();
    let towers = [
        ("S17 after 9..=31", &after[1], stack(1..=31)),
        (
            "S17 after 115..=124",
            &after[8],
            stack((75..=95).chain(115..=124)),
        ),
        ("S17 after 200,201", &after[9], after_200),
        (
            "S17 after 202..=226",
            &after[10],
            stack([115, 116, 117, 118, 200, 201].into_iter().chain(202..=226)),
        ),
        ("S17 after 227..=236", &after[11], stack(206..=236)),
    ];
    for (name, got, want) in towers {
        assert_eq!(pairs(got), want, "{name}");
    }
}

/// One `Vote` on a tower: what `apply_slots` must return.
struct VoteCase {
    name: &'static str,
    start: Tower,
    slots: Vec<Slot>,
    want: Result<Tower, TowerError>,
}

#[test]
fn vote_instructions() {
    let cases = [
        // test_process_vote_skips_old_vote
        VoteCase {
            name: "S14 first vote",
            start: Tower::new(),
            slots: vec![0],
            want: Ok(t(&[(0, 1)], None)),
        },
        VoteCase {
            name: "S14 same vote again",
            start: seq([0]),
            slots: vec![0],
            want: Err(TowerError::VoteTooOld { slot: 0, last: 0 }),
        },
        // test_process_vote_empty_slots
        VoteCase {
            name: "S15 no slots",
            start: Tower::new(),
            slots: vec![],
            want: Err(TowerError::EmptySlots),
        },
        // check_slots_are_valid: out-of-order slots never match SlotHashes (SlotsMismatch there).
        VoteCase {
            name: "descending slots",
            start: Tower::new(),
            slots: vec![2, 1],
            want: Err(TowerError::SlotsNotOrdered),
        },
        VoteCase {
            name: "repeated slot",
            start: Tower::new(),
            slots: vec![1, 1],
            want: Err(TowerError::SlotsNotOrdered),
        },
        VoteCase {
            name: "every slot old",
            start: seq(0..=4),
            slots: vec![1, 3],
            want: Err(TowerError::VoteTooOld { slot: 3, last: 4 }),
        },
        VoteCase {
            name: "old slots skipped",
            start: seq(0..=4),
            slots: vec![1, 3, 7],
            want: Ok(t(&[(0, 5), (1, 4), (2, 3), (3, 2), (7, 1)], None)),
        },
        VoteCase {
            name: "a bare root is the floor",
            start: t(&[], Some(5)),
            slots: vec![5],
            want: Err(TowerError::VoteTooOld { slot: 5, last: 5 }),
        },
        VoteCase {
            name: "slots at or below a bare root skipped",
            start: t(&[], Some(5)),
            slots: vec![3, 6],
            want: Ok(t(&[(6, 1)], Some(5))),
        },
    ];
    for case in &cases {
        assert_eq!(
            case.start.apply_slots(&case.slots, &POLICY),
            case.want,
            "{}",
            case.name
        );
    }
}

// ---------------------------------------------------------------------------------------------
// §7 The book's rollback example
// ---------------------------------------------------------------------------------------------

#[test]
fn book_rollback_example() {
    // tower-bft.md "Rollback", with "time" as the voted slot; rows are
    // (slot, confirmations, last locked-out slot), oldest first.
    let start = seq(1..=4);
    let start_rows = vec![(1, 4, 17), (2, 3, 10), (3, 2, 7), (4, 1, 6)];
    let steps = vec![
        (
            "vote 9 pops 4 and 3",
            9,
            vec![(1, 4, 17), (2, 3, 10), (9, 1, 11)],
        ),
        (
            "vote 10",
            10,
            vec![(1, 4, 17), (2, 3, 10), (9, 2, 13), (10, 1, 12)],
        ),
        // The book pops everything above slot 1 here; the program pops nothing, since the top
        // (10, 1) is locked out until 12 (test_process_new_vote_state_expired_ancestor_not_removed).
        (
            "vote 11 (code, not the book)",
            11,
            vec![(1, 5, 33), (2, 4, 18), (9, 3, 17), (10, 2, 14), (11, 1, 13)],
        ),
    ];
    let rows = |tower: &Tower| -> Vec<(Slot, u32, Slot)> {
        tower
            .votes()
            .iter()
            .map(|v| (v.slot, v.confirmation_count, POLICY.last_locked_out_slot(v)))
            .collect()
    };
    assert_eq!(rows(&start), start_rows, "book start");
    let mut tower = start;
    for (name, slot, want) in steps {
        tower = extend(&tower, [slot]);
        assert_eq!(rows(&tower), want, "book: {name}");
        assert_eq!(tower.root(), None, "book: {name}");
    }
}

// ---------------------------------------------------------------------------------------------
// §8.2 Proposed towers
// ---------------------------------------------------------------------------------------------

/// A proposed tower built from its parts: what `from_parts` must return.
struct StructureCase {
    name: &'static str,
    votes: Vec<(Slot, u32)>,
    root: Option<Slot>,
    want: Result<(), TowerError>,
}

#[test]
fn proposed_tower_structure() {
    // The structural rules of process_new_vote_state. `from_parts` runs the same `validate` as
    // `check_successor`; from an empty stored tower, the only check `check_successor` makes
    // before it on a non-empty proposal is TooManyVotes, with the same error. So an invalid
    // proposal (which `from_parts` cannot build) is tested through `from_parts` itself.
    let cases = [
        StructureCase {
            name: "P1 test_process_new_vote_too_many_votes",
            votes: stack(0..32),
            root: None,
            want: Err(TowerError::TooManyVotes { len: 32, max: 31 }),
        },
        StructureCase {
            name: "P4 …_zero_confirmations (first)",
            votes: vec![(0, 0), (1, 1)],
            root: None,
            want: Err(TowerError::ZeroConfirmations),
        },
        StructureCase {
            name: "P5 …_zero_confirmations (second)",
            votes: vec![(0, 2), (1, 0)],
            root: None,
            want: Err(TowerError::ZeroConfirmations),
        },
        StructureCase {
            name: "P6 …_confirmations_too_large (31 is fine)",
            votes: vec![(0, 31)],
            root: None,
            want: Ok(()),
        },
        StructureCase {
            name: "P7 …_confirmations_too_large",
            votes: vec![(0, 32)],
            root: None,
            want: Err(TowerError::ConfirmationTooLarge { count: 32, max: 31 }),
        },
        StructureCase {
            name: "P8 …_slot_smaller_than_root (equal)",
            votes: vec![(5, 2), (6, 1)],
            root: Some(5),
            want: Err(TowerError::SlotSmallerThanRoot { slot: 5, root: 5 }),
        },
        StructureCase {
            name: "P9 …_slot_smaller_than_root (below)",
            votes: vec![(4, 2), (6, 1)],
            root: Some(5),
            want: Err(TowerError::SlotSmallerThanRoot { slot: 4, root: 5 }),
        },
        StructureCase {
            name: "P10 …_slots_not_ordered (descending)",
            votes: vec![(1, 2), (0, 1)],
            root: None,
            want: Err(TowerError::SlotsNotOrdered),
        },
        StructureCase {
            name: "P11 …_slots_not_ordered (repeated)",
            votes: vec![(1, 2), (1, 1)],
            root: None,
            want: Err(TowerError::SlotsNotOrdered),
        },
        StructureCase {
            name: "P12 …_confirmations_not_ordered (growing)",
            votes: vec![(0, 1), (1, 2)],
            root: None,
            want: Err(TowerError::ConfirmationsNotOrdered),
        },
        StructureCase {
            name: "P13 …_confirmations_not_ordered (equal)",
            votes: vec![(0, 1), (1, 1)],
            root: None,
            want: Err(TowerError::ConfirmationsNotOrdered),
        },
        StructureCase {
            name: "P14 …_new_vote_state_lockout_mismatch",
            votes: vec![(0, 2), (7, 1)],
            root: None,
            want: Err(TowerError::NewVoteStateLockoutMismatch {
                slot: 7,
                previous: 0,
            }),
        },
        StructureCase {
            name: "P32 root 0 skips SlotSmallerThanRoot",
            votes: vec![(0, 1)],
            root: Some(0),
            want: Ok(()),
        },
    ];
    for case in &cases {
        let built = Tower::from_parts(lockouts(&case.votes), case.root, &POLICY);
        assert_eq!(built.clone().map(|_| ()), case.want, "{}", case.name);
        if let Ok(proposed) = built {
            assert_eq!(
                Tower::new().check_successor(&proposed, &POLICY),
                Ok(()),
                "{}: from an empty tower",
                case.name
            );
        }
    }
}

#[test]
fn proposed_tower_successors() {
    // test_process_new_vote_state_root_rollback: stored root 1, proposal = stored + vote 34.
    let p2_stored = seq(0..=32);
    assert_eq!(pairs(&p2_stored), stack(2..=32));
    assert_eq!(p2_stored.root(), Some(1));
    let p2_next = extend(&p2_stored, [34]);
    assert_eq!(pairs(&p2_next), stack((3..=32).chain([34])));
    // test_process_new_vote_state_root_progress
    let p16_stored = seq(0..=30);
    let p16 = t(&stack((1..=30).chain([32])), Some(0));
    let p17 = t(&stack((2..=30).chain([32, 33])), Some(1));
    // test_retroactive_voting_timely_credits
    let p24 = t(&[(7, 4), (8, 3), (9, 2), (10, 1)], None);
    let p25 = t(&stack(1..=10), None);

    let cases = [
        SuccessorCase {
            name: "P2 …_root_rollback (older root)",
            stored: p2_stored.clone(),
            proposed: with_root(&p2_next, Some(0)),
            want: Err(TowerError::RootRollBack {
                proposed: Some(0),
                stored: 1,
            }),
        },
        SuccessorCase {
            name: "P3 …_root_rollback (root dropped)",
            stored: p2_stored,
            proposed: with_root(&p2_next, None),
            want: Err(TowerError::RootRollBack {
                proposed: None,
                stored: 1,
            }),
        },
        SuccessorCase {
            name: "P6 …_confirmations_too_large (31 from empty)",
            stored: Tower::new(),
            proposed: t(&[(0, 31)], None),
            want: Ok(()),
        },
        SuccessorCase {
            name: "P15 …_confirmation_rollback",
            stored: t(&[(0, 4), (1, 3)], None),
            proposed: t(&[(0, 4), (1, 2), (2, 1)], None),
            want: Err(TowerError::ConfirmationRollBack {
                slot: 1,
                proposed: 2,
                stored: 3,
            }),
        },
        SuccessorCase {
            name: "P16 …_root_progress (a)",
            stored: p16_stored,
            proposed: p16.clone(),
            want: Ok(()),
        },
        SuccessorCase {
            name: "P17 …_root_progress (b)",
            stored: p16,
            proposed: p17,
            want: Ok(()),
        },
        SuccessorCase {
            name: "P18 …_same_slot_but_not_common_ancestor",
            stored: seq([1, 2, 5]),
            proposed: seq([1, 2, 3, 5, 7]),
            want: Ok(()),
        },
        SuccessorCase {
            name: "P19 …_lockout_violation",
            stored: seq([1, 2, 4, 5]),
            proposed: t(&[(1, 5), (2, 4), (3, 3), (5, 2), (7, 1)], None),
            want: Err(TowerError::LockoutConflict {
                locked: 4,
                until: 8,
                slot: 5,
            }),
        },
        SuccessorCase {
            name: "P20 …_lockout_violation2",
            stored: seq([1, 2, 5, 6, 7]),
            proposed: seq([1, 2, 3, 5, 6, 8]),
            want: Err(TowerError::LockoutConflict {
                locked: 7,
                until: 9,
                slot: 8,
            }),
        },
        SuccessorCase {
            name: "P21 …_expired_ancestor_not_removed",
            stored: seq([1, 2, 3, 9]),
            proposed: seq([1, 2, 3, 9, 10]),
            want: Ok(()),
        },
        SuccessorCase {
            name: "P22 …_current_state_contains_bigger_slots (locked at 14)",
            stored: seq([6, 7, 8]),
            proposed: t(&[(2, 5), (14, 1)], Some(1)),
            want: Err(TowerError::LockoutConflict {
                locked: 6,
                until: 14,
                slot: 14,
            }),
        },
        SuccessorCase {
            name: "P23 …_current_state_contains_bigger_slots (expired at 15)",
            stored: seq([6, 7, 8]),
            proposed: t(&[(2, 5), (15, 1)], Some(1)),
            want: Ok(()),
        },
        SuccessorCase {
            name: "P24 test_retroactive_voting_timely_credits (1)",
            stored: Tower::new(),
            proposed: p24.clone(),
            want: Ok(()),
        },
        // The agave test calls process_new_vote_state directly, which does not ask for a newer
        // last slot; with check_and_filter's newness check the same last slot 10 is too old.
        SuccessorCase {
            name: "P25 test_retroactive_voting_timely_credits (2), same last slot",
            stored: p24.clone(),
            proposed: p25.clone(),
            want: Err(TowerError::VoteTooOld { slot: 10, last: 10 }),
        },
        // P25 adapted: older slots added below the stored ones, with one newer slot on top.
        SuccessorCase {
            name: "P25 adapted: older slots added, plus slot 11",
            stored: p24,
            proposed: t(&stack(1..=11), None),
            want: Ok(()),
        },
        SuccessorCase {
            name: "P26 test_retroactive_voting_timely_credits (3)",
            stored: p25,
            proposed: t(&stack(11..=41), Some(10)),
            want: Ok(()),
        },
        SuccessorCase {
            name: "P27 test_check_and_filter_proposed_vote_state_empty",
            stored: Tower::new(),
            proposed: t(&[], None),
            want: Err(TowerError::EmptySlots),
        },
        SuccessorCase {
            name: "P28 …_check_and_filter_proposed_vote_state_too_old",
            stored: seq([1, 2, 3, 4]),
            proposed: t(&[(4, 1)], None),
            want: Err(TowerError::VoteTooOld { slot: 4, last: 4 }),
        },
        SuccessorCase {
            name: "P29 same tower again (PNVS alone would accept)",
            stored: t(&[(1, 3), (2, 2), (3, 1)], None),
            proposed: t(&[(1, 3), (2, 2), (3, 1)], None),
            want: Err(TowerError::VoteTooOld { slot: 3, last: 3 }),
        },
        // [SH] tests: only the process_new_vote_state part.
        SuccessorCase {
            name: "P30 …_slot_some_slot_hashes_in_update_ok (PNVS part)",
            stored: t(&[(6, 1)], None),
            proposed: t(&[(4, 2), (8, 1)], None),
            want: Err(TowerError::LockoutConflict {
                locked: 6,
                until: 8,
                slot: 8,
            }),
        },
        SuccessorCase {
            name: "P31 …_slot_all_slot_hashes_in_update_ok (PNVS part)",
            stored: seq([2, 4, 6]),
            proposed: t(&[(2, 4), (4, 3), (6, 2), (8, 1)], None),
            want: Ok(()),
        },
        SuccessorCase {
            name: "P32 root 0 skips SlotSmallerThanRoot",
            stored: Tower::new(),
            proposed: t(&[(0, 1)], Some(0)),
            want: Ok(()),
        },
    ];
    check_successor_cases(&cases);
}

// ---------------------------------------------------------------------------------------------
// The signer's RootConflict rule
// ---------------------------------------------------------------------------------------------

#[test]
fn root_conflict() {
    let stored = seq([1, 2, 3, 4]);
    assert_eq!(pairs(&stored), vec![(1, 4), (2, 3), (3, 2), (4, 1)]);
    let gapped = seq([1, 2, 4]);
    assert_eq!(pairs(&gapped), vec![(1, 3), (2, 2), (4, 1)]);

    let cases = [
        // The vote program skips every stored vote at or below the root (SlotHashes vouches
        // for them); the signer cannot tell that slot 5 descends from slot 1.
        SuccessorCase {
            name: "root jumps over locked-out votes",
            stored: stored.clone(),
            proposed: t(&[(6, 1)], Some(5)),
            want: Err(TowerError::RootConflict {
                root: 5,
                locked: 1,
                until: 17,
            }),
        },
        SuccessorCase {
            name: "root on a signed slot",
            stored: stored.clone(),
            proposed: t(&[(4, 2), (5, 1)], Some(3)),
            want: Ok(()),
        },
        SuccessorCase {
            name: "root below a signed slot the proposal keeps",
            stored: stored.clone(),
            proposed: t(&[(3, 3), (4, 2), (5, 1)], Some(2)),
            want: Ok(()),
        },
        SuccessorCase {
            name: "root on the last signed slot",
            stored,
            proposed: t(&[(5, 1)], Some(4)),
            want: Ok(()),
        },
        // The vote program accepts this one too: slot 4 expires at 6 < 7.
        SuccessorCase {
            name: "root between signed slots, the one above dropped",
            stored: gapped.clone(),
            proposed: t(&[(7, 1)], Some(3)),
            want: Err(TowerError::RootConflict {
                root: 3,
                locked: 1,
                until: 9,
            }),
        },
        SuccessorCase {
            name: "root between signed slots, the one above kept",
            stored: gapped,
            proposed: t(&[(4, 2), (5, 1)], Some(3)),
            want: Ok(()),
        },
        SuccessorCase {
            name: "votes expired long before the root",
            stored: seq([1]),
            proposed: t(&[(11, 1)], Some(10)),
            want: Ok(()),
        },
        SuccessorCase {
            name: "lockout ends at the root (inclusive)",
            stored: seq([1]),
            proposed: t(&[(4, 1)], Some(3)),
            want: Err(TowerError::RootConflict {
                root: 3,
                locked: 1,
                until: 3,
            }),
        },
        SuccessorCase {
            name: "lockout ends just before the root",
            stored: seq([1]),
            proposed: t(&[(5, 1)], Some(4)),
            want: Ok(()),
        },
    ];
    check_successor_cases(&cases);
}

// ---------------------------------------------------------------------------------------------
// Lockout policies
// ---------------------------------------------------------------------------------------------

#[test]
fn lockout_policy() {
    let policy = LockoutPolicy::new(3, 3, 31).unwrap();
    assert_eq!(policy.lockout(1), 3);
    assert_eq!(policy.lockout(2), 9);
    assert_eq!(policy.lockout(3), 27);
    assert_eq!(policy.last_locked_out_slot(&Lockout::new(10)), 13);

    assert!(LockoutPolicy::new(3, 1, 31).is_err(), "factor 1");
    assert!(LockoutPolicy::new(0, 2, 31).is_err(), "initial lockout 0");
    assert!(LockoutPolicy::new(2, 2, 0).is_err(), "cap 0");
    assert!(LockoutPolicy::new(2, 2, 65).is_err(), "cap 65");
    assert!(LockoutPolicy::new(2, 2, 64).is_ok(), "cap 64");

    // Solana's: 2^c slots for c confirmations.
    assert_eq!(LockoutPolicy::new(2, 2, 31).unwrap(), LockoutPolicy::SOLANA);
    assert_eq!(LockoutPolicy::default(), LockoutPolicy::SOLANA);
    assert_eq!(POLICY.lockout(1), 2);
    assert_eq!(POLICY.lockout(2), 4);
    assert_eq!(POLICY.lockout(31), 1 << 31);
}

#[test]
fn small_cap_roots_early() {
    // Cap 4: the fifth vote roots the first.
    let policy = LockoutPolicy::new(2, 2, 4).unwrap();
    let tower = extend_with(&policy, &Tower::new(), 1..=5);
    assert_eq!(pairs(&tower), vec![(2, 4), (3, 3), (4, 2), (5, 1)]);
    assert_eq!(tower.root(), Some(1));
    assert_eq!(tower.validate(&policy), Ok(()));
    assert_eq!(
        Tower::from_parts(lockouts(&stack(1..=5)), None, &policy),
        Err(TowerError::TooManyVotes { len: 5, max: 4 })
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

/// Slot increments, each in 1..=40: mostly consecutive votes (so towers fill up and root),
/// some short skips and some long jumps (so votes expire).
fn increments(max_len: usize) -> impl Strategy<Value = Vec<Slot>> {
    prop::collection::vec(
        prop_oneof![6 => Just(1u64), 1 => 2u64..=8, 1 => 1u64..=40],
        0..=max_len,
    )
}

/// The slots reached by adding up `increments` from slot 0.
fn slots_from(increments: &[Slot]) -> Vec<Slot> {
    increments
        .iter()
        .scan(0, |slot, increment| {
            *slot += increment;
            Some(*slot)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    // (a) Votes applied one at a time keep the tower well formed and within the cap, and one
    // Vote on all the slots gives the same tower (test_process_missed_votes, generalised).
    #[test]
    fn sequential_towers_stay_valid(incs in increments(80)) {
        let slots = slots_from(&incs);
        let tower = seq(slots.iter().copied());
        prop_assert_eq!(tower.validate(&POLICY), Ok(()));
        prop_assert!(tower.votes().len() <= POLICY.max_history() as usize);
        if let Some(root) = tower.root() {
            prop_assert!(tower.votes().iter().all(|v| v.slot > root));
        }
        if !slots.is_empty() {
            prop_assert_eq!(Tower::new().apply_slots(&slots, &POLICY).unwrap(), tower);
        }
    }

    // (b) An honestly built successor (one more vote) is always accepted.
    #[test]
    fn honest_successor_is_accepted(incs in increments(80), gap in 1u64..=64) {
        let tower = seq(slots_from(&incs));
        let slot = tower.last_voted_slot().unwrap_or(0) + gap;
        let next = tower.apply_slots(&[slot], &POLICY).unwrap();
        prop_assert_eq!(tower.check_successor(&next, &POLICY), Ok(()));
    }

    // (c) check_successor between two towers that share a random history and then diverge
    // never panics, and accepts only a newer last vote.
    #[test]
    fn check_successor_never_panics(
        common in increments(60),
        stored_tail in increments(20),
        proposed_tail in increments(20),
    ) {
        let stored = seq(slots_from(&[common.clone(), stored_tail].concat()));
        let proposed = seq(slots_from(&[common, proposed_tail].concat()));
        if stored.check_successor(&proposed, &POLICY).is_ok() {
            prop_assert!(proposed.last_voted_slot() > stored.last_voted_slot());
        }
    }

    // Fork safety: no successor accepted on a random block tree abandons a fork that a signed
    // vote is still locked out on.
    #[test]
    fn accepted_successors_respect_lockouts(seed in any::<u64>()) {
        let walk = fork_walk(seed);
        prop_assert!(walk.is_ok(), "{:?}", walk.as_ref().err());
        prop_assert!(walk.unwrap().accepted >= 1, "the first vote is always accepted");
    }
}

// ---------------------------------------------------------------------------------------------
// Fork walks
// ---------------------------------------------------------------------------------------------

/// The last slot of the random block tree.
const TREE_SLOTS: Slot = 120;
/// Votes proposed per walk.
const WALK_STEPS: usize = 60;

/// SplitMix64: small and deterministic, so a failing seed replays exactly.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi` (the modulo bias does not matter here).
    fn in_range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `1/n`.
    fn one_in(&mut self, n: u64) -> bool {
        self.next_u64().is_multiple_of(n)
    }
}

/// A random block tree as a parent array: slot `i` in `1..=TREE_SLOTS` has its parent in
/// `max(0, i − 6)..=i − 1`; slot 0 is the tree's root.
fn random_tree(rng: &mut SplitMix) -> Vec<Slot> {
    std::iter::once(0)
        .chain((1..=TREE_SLOTS).map(|slot| rng.in_range(slot.saturating_sub(6), slot - 1)))
        .collect()
}

/// True when `ancestor` is a strict ancestor of `slot` in the tree.
fn is_ancestor(parent: &[Slot], ancestor: Slot, slot: Slot) -> bool {
    let mut x = slot;
    while x > ancestor {
        x = parent[x as usize];
    }
    x == ancestor && ancestor != slot
}

/// The vote program's `double_lockouts` on a tower just pushed.
fn double_lockouts(votes: &mut [Lockout]) {
    let depth = votes.len();
    for (i, vote) in votes.iter_mut().enumerate() {
        if depth > i + vote.confirmation_count as usize {
            vote.confirmation_count += 1;
        }
    }
}

/// What one fork walk did.
#[derive(Debug)]
struct Walk {
    /// Proposals `check_successor` accepted.
    accepted: usize,
    /// Accepted proposals whose last slot is not a descendant of the stored last vote.
    switches: usize,
}

/// Votes at random on a random block tree: each step proposes a tower whose last vote is a
/// random slot above the stored last vote, keeping the stored votes on that slot's fork, and
/// stores it when `check_successor` accepts it. `Err` names a signed vote still locked out that
/// an accepted proposal left behind on another fork.
fn fork_walk(seed: u64) -> Result<Walk, String> {
    let mut rng = SplitMix(seed);
    let parent = random_tree(&mut rng);
    let mut stored = Tower::new();
    let mut walk = Walk {
        accepted: 0,
        switches: 0,
    };
    for _ in 0..WALK_STEPS {
        let lowest = stored.last_voted_slot().map_or(0, |last| last + 1);
        if lowest > TREE_SLOTS {
            continue;
        }
        // Mostly a slot close above the last vote, sometimes anywhere above it.
        let highest = if rng.one_in(4) {
            TREE_SLOTS
        } else {
            (lowest + 9).min(TREE_SLOTS)
        };
        let slot = rng.in_range(lowest, highest);

        // The proposal: the stored votes on slot's fork with their confirmations, then slot.
        let mut votes: Vec<Lockout> = stored
            .votes()
            .iter()
            .copied()
            .filter(|v| is_ancestor(&parent, v.slot, slot))
            .collect();
        if rng.one_in(2) {
            // pop_expired_votes, as an honest validator would.
            while votes
                .last()
                .is_some_and(|v| POLICY.last_locked_out_slot(v) < slot)
            {
                votes.pop();
            }
        }
        votes.push(Lockout::new(slot));
        double_lockouts(&mut votes);

        // Sometimes a new root: an ancestor of slot, not below the stored root.
        let mut root = stored.root();
        if rng.one_in(4) {
            let candidates: Vec<Slot> = (0..slot)
                .filter(|&r| {
                    is_ancestor(&parent, r, slot) && stored.root().is_none_or(|old| r >= old)
                })
                .collect();
            if !candidates.is_empty() {
                let pick = rng.in_range(0, candidates.len() as u64 - 1);
                let new_root = candidates[pick as usize];
                votes.retain(|v| v.slot > new_root);
                root = Some(new_root);
            }
        }

        let Ok(proposal) = Tower::from_parts(votes, root, &POLICY) else {
            continue;
        };
        if stored.check_successor(&proposal, &POLICY).is_err() {
            continue;
        }
        // Oracle: every signed vote off slot's fork must have expired before slot.
        for vote in stored.votes() {
            let until = POLICY.last_locked_out_slot(vote);
            if vote.slot != slot && !is_ancestor(&parent, vote.slot, slot) && until >= slot {
                return Err(format!(
                    "seed {seed}: accepted {stored} -> {proposal}, but the vote on slot {} is \
                     locked out until {until} and slot {slot} is not on its fork",
                    vote.slot
                ));
            }
        }
        if stored
            .last_voted_slot()
            .is_some_and(|last| !is_ancestor(&parent, last, slot))
        {
            walk.switches += 1;
        }
        stored = proposal;
        walk.accepted += 1;
    }
    Ok(walk)
}

#[test]
fn fork_walks_switch_forks() {
    // The walks are not vacuous: some accepted proposals switch forks.
    let walks: Vec<Walk> = (0..32).map(|seed| fork_walk(seed).unwrap()).collect();
    let switches: usize = walks.iter().map(|w| w.switches).sum();
    assert!(switches > 0, "{walks:?}");
}
