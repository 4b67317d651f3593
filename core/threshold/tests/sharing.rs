//! The threshold MasterKey's life cycle, end to end in memory: DKG, threshold evaluation,
//! resharing, refresh and committee signatures, with cheating dealers and signers.
#![allow(clippy::unwrap_used)] // test helpers

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::Scalar;
use rand::{RngCore, SeedableRng, rngs::StdRng};

use keyward_crypto::SecretBytes;
use keyward_threshold::{
    CombineError, Committee, CommitteeSignature, Dealer, DkgCommitment, DkgParams, KeyShare,
    PartialFault, Resharing, SecretKey, ShareIndex, SharePart, SharingError, SignError, dkg, sign,
};

const INPUT: &[u8] = b"keyward cluster-key input: epoch 1, cluster 7, generation 0";

fn idx(i: u16) -> ShareIndex {
    ShareIndex::new(i).unwrap()
}

fn set(members: &[u16]) -> BTreeSet<ShareIndex> {
    members.iter().map(|i| idx(*i)).collect()
}

fn seed(rng: &mut StdRng) -> SecretBytes<32> {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    SecretBytes::new(bytes)
}

type Parts = BTreeMap<ShareIndex, BTreeMap<ShareIndex, SharePart>>;

/// Round 1 and 2 of a DKG among `members`: every dealer, commitment, and part (by recipient,
/// then dealer).
fn dkg_rounds(
    t: u16,
    members: &[u16],
    rng: &mut StdRng,
) -> (Vec<Dealer>, BTreeMap<ShareIndex, DkgCommitment>, Parts) {
    let params = DkgParams::new(t, set(members)).unwrap();
    let dealers: Vec<Dealer> = members
        .iter()
        .map(|i| Dealer::new(params.clone(), idx(*i), &seed(rng)).unwrap())
        .collect();
    let commitments: BTreeMap<_, _> = dealers
        .iter()
        .zip(members)
        .map(|(d, i)| (idx(*i), d.commitment().clone()))
        .collect();
    let mut parts: Parts = BTreeMap::new();
    for (dealer, i) in dealers.iter().zip(members) {
        for (recipient, part) in dealer.parts(&commitments).unwrap() {
            parts.entry(recipient).or_default().insert(idx(*i), part);
        }
    }
    (dealers, commitments, parts)
}

/// A whole honest DKG: the committee every member agrees on, and each member's share.
fn run_dkg(t: u16, members: &[u16], rng: &mut StdRng) -> (Committee, Vec<KeyShare>) {
    let (dealers, commitments, parts) = dkg_rounds(t, members, rng);
    let params = DkgParams::new(t, set(members)).unwrap();
    let public = dkg::committee(&params, &commitments).unwrap();
    let shares = dealers
        .iter()
        .zip(members)
        .map(|(dealer, i)| {
            let (share, committee) = dealer.finish(&commitments, &parts[&idx(*i)]).unwrap();
            assert_eq!(
                committee, public,
                "every member derives the public committee"
            );
            share
        })
        .collect();
    (public, shares)
}

/// The secret the shares interpolate to at zero, computed here independently of the crate.
fn interpolate(shares: &[&KeyShare]) -> Scalar {
    let xs: Vec<Scalar> = shares
        .iter()
        .map(|s| Scalar::from(u64::from(s.index().get())))
        .collect();
    shares
        .iter()
        .zip(&xs)
        .map(|(s, xi)| {
            let lambda = xs
                .iter()
                .filter(|xj| *xj != xi)
                .fold(Scalar::ONE, |acc, xj| acc * xj * (xj - xi).invert());
            let value =
                Option::<Scalar>::from(Scalar::from_canonical_bytes(*s.secret_bytes().expose()))
                    .unwrap();
            lambda * value
        })
        .sum()
}

fn classic_key(shares: &[&KeyShare]) -> SecretKey {
    SecretKey::from_bytes(&SecretBytes::new(interpolate(shares).to_bytes())).unwrap()
}

/// The threshold evaluation of [`INPUT`] from the given members' shares.
fn evaluate(
    committee: &Committee,
    shares: &[&KeyShare],
    rng: &mut StdRng,
) -> Result<keyward_threshold::Output, CombineError> {
    let element = keyward_threshold::Element::from_input(INPUT).unwrap();
    let partials: Vec<_> = shares.iter().map(|s| s.evaluate(&element, rng)).collect();
    committee
        .evaluate_input(INPUT, &partials)
        .map(|(out, _)| out)
}

fn subsets<T: Copy>(items: &[T], k: usize) -> Vec<Vec<T>> {
    if k == 0 {
        return vec![vec![]];
    }
    if items.len() < k {
        return vec![];
    }
    let mut with: Vec<Vec<T>> = subsets(&items[1..], k - 1)
        .into_iter()
        .map(|mut s| {
            s.insert(0, items[0]);
            s
        })
        .collect();
    with.extend(subsets(&items[1..], k));
    with
}

#[test]
fn a_dkg_key_is_the_classic_key_and_any_t_partials_give_it() {
    let mut rng = StdRng::seed_from_u64(1);
    for (t, members) in [(2u16, vec![1u16, 2, 3]), (3, vec![1, 2, 3, 4, 5])] {
        let (committee, shares) = run_dkg(t, &members, &mut rng);
        assert_eq!(committee.threshold(), t);
        let refs: Vec<&KeyShare> = shares.iter().collect();
        // The key the shares hold, used whole, is the committee's public key and gives the
        // same ClusterKey: threshold mode and classic mode agree for the same secret.
        let whole = classic_key(&refs[..usize::from(t)]);
        assert_eq!(whole.public_key(), committee.public_key());
        let expected = whole.evaluate(INPUT).unwrap();
        for subset in subsets(&refs, usize::from(t)) {
            assert_eq!(evaluate(&committee, &subset, &mut rng).unwrap(), expected);
        }
        // With n − t members down, the rest still suffice (the last t members alone).
        let survivors = &refs[refs.len() - usize::from(t)..];
        assert_eq!(evaluate(&committee, survivors, &mut rng).unwrap(), expected);
    }
}

#[test]
fn fewer_than_t_shares_give_nothing() {
    let mut rng = StdRng::seed_from_u64(2);
    let (committee, shares) = run_dkg(3, &[1, 2, 3, 4, 5], &mut rng);
    let refs: Vec<&KeyShare> = shares.iter().collect();
    let expected = classic_key(&refs[..3]).evaluate(INPUT).unwrap();
    assert!(matches!(
        evaluate(&committee, &refs[..2], &mut rng),
        Err(CombineError::NotEnough {
            valid: 2,
            needed: 3,
            ..
        })
    ));
    // Interpolating t − 1 shares as if they were enough gives another, useless key.
    let wrong = classic_key(&refs[..2]);
    assert_ne!(wrong.public_key(), committee.public_key());
    assert_ne!(wrong.evaluate(INPUT).unwrap(), expected);
}

#[test]
fn a_dealer_is_deterministic_in_its_seed() {
    let mut rng = StdRng::seed_from_u64(3);
    let params = DkgParams::new(2, set(&[1, 2, 3])).unwrap();
    let seeds: Vec<_> = (0..3).map(|_| seed(&mut rng)).collect();
    let make = |i: u16| Dealer::new(params.clone(), idx(i), &seeds[usize::from(i) - 1]).unwrap();
    let commitments: BTreeMap<_, _> = (1..=3)
        .map(|i| (idx(i), make(i).commitment().clone()))
        .collect();
    let again = make(2);
    assert_eq!(again.commitment(), &commitments[&idx(2)]);
    let a = make(2).parts(&commitments).unwrap();
    let b = again.parts(&commitments).unwrap();
    assert_eq!(
        a.values()
            .map(|p| *p.to_bytes().expose())
            .collect::<Vec<_>>(),
        b.values()
            .map(|p| *p.to_bytes().expose())
            .collect::<Vec<_>>()
    );
    // A fresh seed gives another polynomial.
    let other = Dealer::new(params, idx(2), &seed(&mut rng)).unwrap();
    assert_ne!(other.commitment(), again.commitment());
}

#[test]
fn a_cheating_dealer_is_named_checkably_and_the_rest_complete_without_it() {
    let mut rng = StdRng::seed_from_u64(4);
    let members = [1u16, 2, 3, 4, 5];
    let (dealers, commitments, mut parts) = dkg_rounds(3, &members, &mut rng);
    // Dealer 2 sends member 4 a part off its polynomial.
    let forged = SharePart::from_bytes(&SecretBytes::new(Scalar::from(42u64).to_bytes())).unwrap();
    parts
        .get_mut(&idx(4))
        .unwrap()
        .insert(idx(2), forged.clone());
    assert_eq!(
        dealers[3]
            .finish(&commitments, &parts[&idx(4)])
            .unwrap_err(),
        SharingError::BadParts(vec![idx(2)])
    );
    // The complaint reveals the part; anyone checks it against dealer 2's public commitment.
    assert!(!commitments[&idx(2)].verify_part(idx(4), &forged));
    // An honest part passes the same check, so an honest dealer cannot be framed.
    assert!(commitments[&idx(3)].verify_part(idx(4), &parts[&idx(4)][&idx(3)]));
    // A missing part is named too.
    parts.get_mut(&idx(5)).unwrap().remove(&idx(1));
    assert_eq!(
        dealers[4]
            .finish(&commitments, &parts[&idx(5)])
            .unwrap_err(),
        SharingError::MissingParts(vec![idx(1)])
    );
    // The run restarts without the cheater and completes: 3-of-4 among the honest members.
    let (committee, shares) = run_dkg(3, &[1, 3, 4, 5], &mut rng);
    assert!(committee.verification_share(idx(2)).is_none());
    let refs: Vec<&KeyShare> = shares.iter().collect();
    let expected = classic_key(&refs[..3]).evaluate(INPUT).unwrap();
    assert_eq!(
        evaluate(&committee, &refs[1..], &mut rng).unwrap(),
        expected
    );
}

#[test]
fn a_bad_commitment_is_refused_with_its_dealer() {
    let mut rng = StdRng::seed_from_u64(5);
    let (dealers, commitments, _) = dkg_rounds(2, &[1, 2, 3], &mut rng);
    let params = DkgParams::new(2, set(&[1, 2, 3])).unwrap();
    // Dealer 1's commitment replayed as dealer 3's: the proof of knowledge is bound to the index.
    let replayed = commitments[&idx(1)].clone();
    assert!(matches!(
        replayed.verify(idx(3), &params),
        Err(SharingError::BadCommitment { dealer, .. }) if dealer == idx(3)
    ));
    // A dealer meeting it while dealing or finishing names the same dealer.
    let mut with_replay = commitments.clone();
    with_replay.insert(idx(3), replayed.clone());
    assert!(matches!(
        dealers[0].parts(&with_replay),
        Err(SharingError::BadCommitment { dealer, .. }) if dealer == idx(3)
    ));
    assert!(matches!(
        dealers[0].finish(&with_replay, &BTreeMap::new()),
        Err(SharingError::BadCommitment { dealer, .. }) if dealer == idx(3)
    ));
    // A flipped proof byte.
    let mut bytes = commitments[&idx(2)].to_bytes();
    let last = bytes.len() - 1;
    bytes[last - 5] ^= 1;
    if let Ok(tampered) = DkgCommitment::from_bytes(&bytes) {
        assert!(tampered.verify(idx(2), &params).is_err());
    }
    // Wrong threshold, non-member dealer, threshold one.
    let five = DkgParams::new(3, set(&[1, 2, 3, 4, 5])).unwrap();
    assert!(commitments[&idx(1)].verify(idx(1), &five).is_err());
    assert_eq!(
        commitments[&idx(1)].verify(idx(9), &params),
        Err(SharingError::NotAMember(idx(9)))
    );
    assert_eq!(
        DkgParams::new(1, set(&[1, 2])),
        Err(SharingError::ThresholdOne)
    );
    let mut missing = commitments.clone();
    missing.remove(&idx(2));
    assert_eq!(
        dkg::committee(&params, &missing),
        Err(SharingError::WrongCommitters(idx(2)))
    );
}

/// Reshares `shares` (of `old`) to `members` with threshold `t`, every given old member dealing.
fn reshare(
    old: &Committee,
    shares: &[&KeyShare],
    t: u16,
    members: &[u16],
    rng: &mut StdRng,
) -> (Committee, Vec<KeyShare>) {
    let resharing = Resharing::new(old.clone(), t, set(members)).unwrap();
    let mut commitments = BTreeMap::new();
    let mut parts: Parts = BTreeMap::new();
    for share in shares {
        let (commitment, dealt) = resharing.deal(share, &seed(rng)).unwrap();
        resharing
            .verify_commitment(share.index(), &commitment)
            .unwrap();
        commitments.insert(share.index(), commitment);
        for (recipient, part) in dealt {
            parts
                .entry(recipient)
                .or_default()
                .insert(share.index(), part);
        }
    }
    let public = resharing.committee(&commitments).unwrap();
    let new_shares = members
        .iter()
        .map(|j| {
            let (share, committee) = resharing
                .finish(idx(*j), &commitments, &parts[&idx(*j)])
                .unwrap();
            assert_eq!(committee, public);
            share
        })
        .collect();
    (public, new_shares)
}

#[test]
fn resharing_2_3_to_3_5_to_2_3_keeps_the_key() {
    let mut rng = StdRng::seed_from_u64(6);
    let (c0, s0) = run_dkg(2, &[1, 2, 3], &mut rng);
    let r0: Vec<&KeyShare> = s0.iter().collect();
    let expected = evaluate(&c0, &r0[..2], &mut rng).unwrap();

    // Members 2 and 3 stay, 4..=6 join, 1 leaves; threshold 3.
    let (c1, s1) = reshare(&c0, &r0[1..], 3, &[2, 3, 4, 5, 6], &mut rng);
    assert_eq!(c1.public_key(), c0.public_key());
    assert_eq!(c1.threshold(), 3);
    let r1: Vec<&KeyShare> = s1.iter().collect();
    for subset in subsets(&r1, 3) {
        assert_eq!(evaluate(&c1, &subset, &mut rng).unwrap(), expected);
    }
    // The member who left holds a share of nothing now.
    assert!(c1.verification_share(idx(1)).is_none());

    // Back to 2-of-3 among new indices, dealt by three of the five.
    let (c2, s2) = reshare(&c1, &r1[2..], 2, &[7, 8, 9], &mut rng);
    assert_eq!(c2.public_key(), c0.public_key());
    let r2: Vec<&KeyShare> = s2.iter().collect();
    for subset in subsets(&r2, 2) {
        assert_eq!(evaluate(&c2, &subset, &mut rng).unwrap(), expected);
    }
    assert_eq!(classic_key(&r2[..2]).public_key(), c0.public_key());
}

#[test]
fn refreshed_shares_do_not_combine_with_stale_ones() {
    let mut rng = StdRng::seed_from_u64(7);
    let (old, old_shares) = run_dkg(2, &[1, 2, 3], &mut rng);
    let (new, new_shares) = reshare(
        &old,
        &old_shares.iter().collect::<Vec<_>>(),
        2,
        &[1, 2, 3],
        &mut rng,
    );
    assert_eq!(new.public_key(), old.public_key());
    assert_ne!(new, old, "refresh changes every verification share");
    let expected = evaluate(&old, &[&old_shares[0], &old_shares[1]], &mut rng).unwrap();
    assert_eq!(
        evaluate(&new, &[&new_shares[0], &new_shares[1]], &mut rng).unwrap(),
        expected
    );
    // A stale partial fails its proof against the new committee and is named.
    let element = keyward_threshold::Element::from_input(INPUT).unwrap();
    let stale = old_shares[0].evaluate(&element, &mut rng);
    assert_eq!(
        new.check_partial(&element, &stale),
        Err(PartialFault::BadProof)
    );
    let partials = [stale, new_shares[1].evaluate(&element, &mut rng)];
    assert!(matches!(
        new.evaluate_input(INPUT, &partials),
        Err(CombineError::NotEnough { valid: 1, .. })
    ));
    // Interpolating a stale and a fresh share gives another key.
    assert_ne!(
        classic_key(&[&old_shares[0], &new_shares[1]]).public_key(),
        old.public_key()
    );
    // The refresh helper is the same resharing: same members and threshold.
    let refresh = Resharing::refresh(old.clone());
    assert_eq!(refresh.members(), &set(&[1, 2, 3]));
    assert_eq!(refresh.threshold(), 2);
}

#[test]
fn a_cheating_resharing_dealer_is_named() {
    let mut rng = StdRng::seed_from_u64(8);
    let (old, shares) = run_dkg(2, &[1, 2, 3], &mut rng);
    let resharing = Resharing::new(old.clone(), 2, set(&[4, 5, 6])).unwrap();
    // Dealing member 3's share while claiming to be dealer 1 changes the key: refused.
    let (c3, _) = resharing.deal(&shares[2], &seed(&mut rng)).unwrap();
    assert!(matches!(
        resharing.verify_commitment(idx(1), &c3),
        Err(SharingError::BadCommitment { dealer, .. }) if dealer == idx(1)
    ));
    // A share that is not the old committee's cannot deal.
    let (_, strangers) = run_dkg(2, &[1, 2, 3], &mut rng);
    assert_eq!(
        resharing.deal(&strangers[0], &seed(&mut rng)).unwrap_err(),
        SharingError::NotAMember(idx(1))
    );
    // A wrong part is named against its dealer's commitment.
    let (c1, p1) = resharing.deal(&shares[0], &seed(&mut rng)).unwrap();
    let (c2, p2) = resharing.deal(&shares[1], &seed(&mut rng)).unwrap();
    let commitments = BTreeMap::from([(idx(1), c1.clone()), (idx(2), c2)]);
    let mut parts = BTreeMap::from([(idx(1), p1[&idx(4)].clone()), (idx(2), p1[&idx(5)].clone())]);
    assert_eq!(
        resharing.finish(idx(4), &commitments, &parts).unwrap_err(),
        SharingError::BadParts(vec![idx(2)])
    );
    parts.insert(idx(2), p2[&idx(4)].clone());
    let (share, committee) = resharing.finish(idx(4), &commitments, &parts).unwrap();
    assert_eq!(committee.public_key(), old.public_key());
    assert_eq!(
        committee.verification_share(idx(4)),
        Some(share.verification_share())
    );
    // Fewer dealings than the old threshold, or one from a stranger, make no committee.
    assert!(matches!(
        resharing.committee(&BTreeMap::from([(idx(1), c1.clone())])),
        Err(SharingError::TooFewDealers {
            dealers: 1,
            needed: 2
        })
    ));
    assert_eq!(
        resharing
            .committee(&BTreeMap::from([(idx(1), c1.clone()), (idx(9), c1)]))
            .unwrap_err(),
        SharingError::NotAMember(idx(9))
    );
}

#[test]
fn any_t_dealings_reshare_the_same_key() {
    let mut rng = StdRng::seed_from_u64(10);
    let (old, shares) = run_dkg(3, &[1, 2, 3, 4, 5], &mut rng);
    let expected = evaluate(&old, &[&shares[0], &shares[1], &shares[2]], &mut rng).unwrap();
    // Whichever three of the five old members deal (two being down), the key is the same.
    let refs: Vec<&KeyShare> = shares.iter().collect();
    for dealers in subsets(&refs, 3) {
        let (new, new_shares) = reshare(&old, &dealers, 2, &[6, 7, 8], &mut rng);
        assert_eq!(new.public_key(), old.public_key());
        assert_eq!(
            evaluate(&new, &[&new_shares[0], &new_shares[2]], &mut rng).unwrap(),
            expected
        );
    }
}

/// One FROST session among `signers`; returns the signature or the aggregation error.
fn frost_session(
    committee: &Committee,
    shares: &[&KeyShare],
    message: &[u8],
    tamper: Option<ShareIndex>,
    rng: &mut StdRng,
) -> Result<CommitteeSignature, SignError> {
    let round1: Vec<_> = shares.iter().map(|s| sign::commit(s, &seed(rng))).collect();
    let commitments: BTreeMap<_, _> = shares
        .iter()
        .zip(&round1)
        .map(|(s, (_, c))| (s.index(), *c))
        .collect();
    let mut signature_shares = BTreeMap::new();
    for (share, (nonces, _)) in shares.iter().zip(round1) {
        let signed = if tamper == Some(share.index()) {
            // A signer that signs another message.
            sign::sign(share, committee, b"something else", &commitments, nonces)
        } else {
            sign::sign(share, committee, message, &commitments, nonces)
        };
        signature_shares.insert(share.index(), signed?);
    }
    sign::aggregate(committee, message, &commitments, &signature_shares)
}

#[test]
fn the_committee_signs_under_its_public_key_and_names_a_bad_signer() {
    let mut rng = StdRng::seed_from_u64(9);
    let (committee, shares) = run_dkg(3, &[1, 2, 3, 4, 5], &mut rng);
    let refs: Vec<&KeyShare> = shares.iter().collect();
    let message = b"keyward epoch checksum";
    for subset in [
        vec![refs[0], refs[1], refs[2]],
        vec![refs[1], refs[3], refs[4]],
        refs.clone(),
    ] {
        let signature = frost_session(&committee, &subset, message, None, &mut rng).unwrap();
        assert!(signature.verify(&committee.public_key(), message));
        assert!(!signature.verify(&committee.public_key(), b"another message"));
        let decoded = CommitteeSignature::from_bytes(&signature.to_bytes()).unwrap();
        assert_eq!(decoded, signature);
    }
    assert_eq!(
        frost_session(&committee, &refs[..3], message, Some(idx(2)), &mut rng).unwrap_err(),
        SignError::BadShares(vec![idx(2)])
    );
    assert!(matches!(
        frost_session(&committee, &refs[..2], message, None, &mut rng),
        Err(SignError::NotEnoughSigners { got: 2, needed: 3 })
    ));
    // After a resharing the same public key verifies the new committee's signatures.
    let (moved, moved_shares) = reshare(&committee, &refs[..3], 2, &[6, 7, 8], &mut rng);
    let signature = frost_session(
        &moved,
        &[&moved_shares[0], &moved_shares[2]],
        message,
        None,
        &mut rng,
    )
    .unwrap();
    assert!(signature.verify(&committee.public_key(), message));
}

#[test]
fn classic_committees_sign_too() {
    let mut rng = StdRng::seed_from_u64(10);
    let secret = SecretKey::random(&mut rng);
    let (committee, shares) = Committee::deal(&secret, 1, 3, &mut rng).unwrap();
    let signature = frost_session(&committee, &[&shares[1]], b"m", None, &mut rng).unwrap();
    assert!(signature.verify(&secret.public_key(), b"m"));
}

mod decoders {
    use super::*;
    use keyward_threshold::{NonceCommitment, ReshareCommitment, SignatureShare};
    use proptest::prelude::*;

    proptest! {
        /// No byte string makes a decoder panic, and whatever decodes re-encodes to itself.
        #[test]
        fn decoders_refuse_or_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(c) = DkgCommitment::from_bytes(&bytes) {
                prop_assert_eq!(c.to_bytes(), bytes.clone());
            }
            if let Ok(c) = ReshareCommitment::from_bytes(&bytes) {
                prop_assert_eq!(c.to_bytes(), bytes.clone());
            }
            if let Ok(a) = <[u8; 64]>::try_from(&bytes[..]) {
                if let Ok(c) = NonceCommitment::from_bytes(&a) {
                    prop_assert_eq!(c.to_bytes(), a);
                }
                if let Ok(s) = CommitteeSignature::from_bytes(&a) {
                    prop_assert_eq!(s.to_bytes(), a);
                }
            }
            if let Ok(a) = <[u8; 32]>::try_from(&bytes[..]) {
                if let Ok(s) = SignatureShare::from_bytes(&a) {
                    prop_assert_eq!(s.to_bytes(), a);
                }
                if let Ok(p) = SharePart::from_bytes(&SecretBytes::new(a)) {
                    prop_assert_eq!(*p.to_bytes().expose(), a);
                }
            }
        }

        /// Real encodings survive a round trip, and any one-byte change is refused or decodes to
        /// something else.
        #[test]
        fn real_commitments_round_trip(position in 0usize..1000, flip in 1u8..=255) {
            let mut rng = StdRng::seed_from_u64(99);
            let (_, commitments, _) = dkg_rounds(2, &[1, 2, 3], &mut rng);
            let c = &commitments[&idx(1)];
            let bytes = c.to_bytes();
            prop_assert_eq!(&DkgCommitment::from_bytes(&bytes).unwrap(), c);
            let mut tampered = bytes.clone();
            let at = position % tampered.len();
            tampered[at] ^= flip;
            if let Ok(other) = DkgCommitment::from_bytes(&tampered) {
                prop_assert_ne!(&other, c);
            }
        }
    }
}

#[test]
fn partials_checked_before_a_resharing_do_not_count_after_it() {
    let mut rng = StdRng::seed_from_u64(21);
    let (old, old_shares) = run_dkg(2, &[1, 2, 3], &mut rng);
    let refs: Vec<&KeyShare> = old_shares.iter().collect();
    // The same indices, the same key, new shares.
    let (new, new_shares) = reshare(&old, &refs, 2, &[1, 2, 3], &mut rng);
    assert_eq!(new.public_key(), old.public_key());
    let element = keyward_threshold::Element::from_input(INPUT).unwrap();
    let checked: Vec<_> = old_shares[..2]
        .iter()
        .map(|s| {
            old.check_partial(&element, &s.evaluate(&element, &mut rng))
                .unwrap()
        })
        .collect();
    assert!(old.combine_checked(&element, &checked).is_ok());
    assert!(matches!(
        new.combine_checked(&element, &checked),
        Err(keyward_threshold::CombineError::NotEnough { valid: 0, .. })
    ));
    let fresh: Vec<_> = new_shares[..2]
        .iter()
        .map(|s| {
            new.check_partial(&element, &s.evaluate(&element, &mut rng))
                .unwrap()
        })
        .collect();
    assert_eq!(
        new.combine_checked(&element, &fresh).unwrap().evaluated,
        old.combine_checked(&element, &checked).unwrap().evaluated
    );
}
