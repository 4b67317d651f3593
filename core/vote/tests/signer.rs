//! The signer's state machine, driven as a host drives it (`SignerConfig::prepare`, then
//! `Signer::apply`): registration and evidence, signing, nonces and retries, lockouts, key
//! rotation, deregistration, durable records, tower imports and ancestor verification.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::{
    MEASUREMENT, SERVICE, Validator, addr, final_tower, hash, legacy_message, new_signer,
    platform_public, random_key, register, request, restore, send, sign_vote, sign_vote_with,
    signature_of, signed_tx, submit, tower, tower_sync_ix, ts_message, vote_key_info,
};
use keyward_crypto::{SolanaKeypair, SolanaPubkey, SolanaSignature};
use keyward_enclave::{
    BoundKey, Evidence, EvidenceError, EvidenceKind, EvidencePolicy, SealError, SealPurpose,
    SealedBlob,
};
use keyward_vote::ancestry::{AncestryError, AncestryPolicy, Fraction, Member, Threshold};
use keyward_vote::message::{MAX_MESSAGE_LEN, MessageError};
use keyward_vote::request::RequestError;
use keyward_vote::signer::{ImportError, ImportOutcome, RECENT_ANSWERS, RestoreError, key_binding};
use keyward_vote::{
    Applied, CommitManifest, Lockout, LockoutPolicy, Payload, Refusal, ServiceId, SignedRequest,
    Signer, Tower, TowerError, TowerExport,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use solana_vote_interface::instruction as vote_ix;
use solana_vote_interface::state::{TowerSync, Vote as SolanaVote};

/// Registers `v` with `nonce` and returns its vote key.
fn register_key(signer: &mut Signer, v: &Validator, nonce: u64, rng: &mut StdRng) -> SolanaPubkey {
    let applied = send(signer, &v.identity, nonce, register(&v.vote_account), rng).unwrap();
    vote_key_info(&applied).vote_pubkey
}

/// Sends a `signVote` of `message` with no evidence and returns the signature.
fn vote(
    signer: &mut Signer,
    v: &Validator,
    nonce: u64,
    message: &[u8],
    rng: &mut StdRng,
) -> SolanaSignature {
    signature_of(&send(signer, &v.identity, nonce, sign_vote(message), rng).unwrap())
}

/// After voting 1 then 2 with another key, the tower carried over to `new`: slot 2 again is too
/// old, slot 3 over 2 breaks 2's lockout, and 1, 2, 3 is signed by `new`. Uses `nonce` for the
/// two refusals (a refusal takes no nonce) and for the signed vote; returns the signed message
/// and its signature.
fn assert_tower_carried_over(
    signer: &mut Signer,
    v: &Validator,
    new: &SolanaPubkey,
    nonce: u64,
    rng: &mut StdRng,
) -> (Vec<u8>, SolanaSignature) {
    assert_eq!(
        send(
            signer,
            &v.identity,
            nonce,
            sign_vote(&v.vote(new, &[1, 2], 2)),
            rng
        )
        .unwrap_err(),
        Refusal::Lockout(TowerError::VoteTooOld { slot: 2, last: 2 })
    );
    assert_eq!(
        send(
            signer,
            &v.identity,
            nonce,
            sign_vote(&v.vote(new, &[1, 3], 3)),
            rng
        )
        .unwrap_err(),
        Refusal::Lockout(TowerError::LockoutConflict {
            locked: 2,
            until: 4,
            slot: 3,
        })
    );
    let m3 = v.vote(new, &[1, 2, 3], 3);
    let sig3 = vote(signer, v, nonce, &m3, rng);
    assert!(new.verify(&m3, &sig3).is_ok());
    (m3, sig3)
}

/// Evidence that accepts only the test signer's dev platform and measurement.
fn dev_policy() -> EvidencePolicy {
    EvidencePolicy {
        accept_insecure_dev: true,
        allowed_measurements: vec![MEASUREMENT],
        trusted_dev_platforms: vec![platform_public()],
        trusted_tpm_keys: Vec::new(),
        vendor: None,
    }
}

#[test]
fn register_returns_a_vote_key_with_evidence_and_is_idempotent() {
    let mut rng = StdRng::seed_from_u64(1);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    assert_eq!(signer.registered(), 0);
    assert_eq!(signer.record(&v.id()), None);

    let applied = send(
        &mut signer,
        &v.identity,
        1,
        register(&v.vote_account),
        &mut rng,
    )
    .unwrap();
    let info = vote_key_info(&applied);
    assert_eq!(
        applied.record,
        Some((v.id(), signer.record(&v.id()).unwrap()))
    );
    assert_eq!(signer.vote_key(&v.id()), Some(info.clone()));
    assert_eq!(signer.registered(), 1);
    assert_eq!(
        signer.export(&v.id()),
        Some(TowerExport {
            identity: v.id(),
            vote_account: v.vote_account,
            tower: Tower::new(),
        })
    );

    // The evidence binds the vote key to this identity and vote account, from the dev platform.
    let evidence = Evidence::from_bytes(&info.evidence).unwrap();
    assert_eq!(evidence.kind(), EvidenceKind::Dev);
    assert_eq!(evidence.measurement(), MEASUREMENT);
    let bound = [BoundKey::Ed25519(info.vote_pubkey)];
    let binding = key_binding(&v.id(), &v.vote_account);
    let verified = evidence.verify(&dev_policy(), &bound, &binding).unwrap();
    assert!(verified.insecure);
    assert_eq!(verified.kind, EvidenceKind::Dev);
    assert_eq!(verified.measurement, MEASUREMENT);
    assert_eq!(
        evidence.verify(&EvidencePolicy::default(), &bound, &binding),
        Err(EvidenceError::InsecureNotAccepted)
    );
    let other_account = random_key(&mut rng);
    assert_eq!(
        evidence.verify(&dev_policy(), &bound, &key_binding(&v.id(), &other_account)),
        Err(EvidenceError::ReportDataMismatch)
    );
    assert_eq!(
        evidence.verify(&dev_policy(), &[BoundKey::Ed25519(v.id())], &binding),
        Err(EvidenceError::ReportDataMismatch)
    );

    // A retry with a new nonce returns the same key and the same evidence.
    let again = send(
        &mut signer,
        &v.identity,
        2,
        register(&v.vote_account),
        &mut rng,
    )
    .unwrap();
    assert_eq!(vote_key_info(&again), info);
    assert!(again.record.is_some());
    assert_eq!(signer.registered(), 1);

    // Another vote account is refused and changes nothing.
    let before = signer.record(&v.id()).unwrap();
    let refusal = send(
        &mut signer,
        &v.identity,
        3,
        register(&other_account),
        &mut rng,
    )
    .unwrap_err();
    assert_eq!(
        refusal,
        Refusal::VoteAccountMismatch {
            registered: v.vote_account,
            requested: other_account,
        }
    );
    assert_eq!(refusal.name(), "vote_account_mismatch");
    assert_eq!(refusal.code(), 1103);
    assert_eq!(signer.record(&v.id()).unwrap(), before);
    assert_eq!(signer.vote_key(&v.id()), Some(info));
}

#[test]
fn sign_vote_signs_the_exact_message_with_the_vote_key() {
    let mut rng = StdRng::seed_from_u64(2);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 1, &mut rng);

    let m1 = v.vote(&vote_key, &[1], 0xa1);
    let applied = send(&mut signer, &v.identity, 2, sign_vote(&m1), &mut rng).unwrap();
    let sig1 = signature_of(&applied);
    assert!(vote_key.verify(&m1, &sig1).is_ok());
    assert!(v.id().verify(&m1, &sig1).is_err());
    let mut altered = m1.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert!(vote_key.verify(&altered, &sig1).is_err());
    assert_eq!(
        applied.record,
        Some((v.id(), signer.record(&v.id()).unwrap()))
    );
    assert_eq!(
        signer.export(&v.id()).unwrap().tower,
        tower(&[(1, 1)], None)
    );

    let m2 = v.vote(&vote_key, &[1, 2], 0xa2);
    let sig2 = vote(&mut signer, &v, 3, &m2, &mut rng);
    assert!(vote_key.verify(&m2, &sig2).is_ok());
    assert_eq!(
        signer.export(&v.id()).unwrap().tower,
        tower(&[(1, 2), (2, 1)], None)
    );
}

#[test]
fn a_vote_instruction_applies_its_slots_to_the_tower() {
    let mut rng = StdRng::seed_from_u64(3);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 1, &mut rng);
    vote(&mut signer, &v, 2, &v.vote(&vote_key, &[1, 2], 2), &mut rng);

    let simple = |slots: Vec<u64>, hash_byte: u8| {
        legacy_message(
            &[vote_ix::vote(
                &addr(&v.vote_account),
                &addr(&vote_key),
                SolanaVote::new(slots, hash(hash_byte)),
            )],
            &v.id(),
        )
    };
    // Slot 2 is already voted: only slot 3 is applied, as the vote program does.
    let m3 = simple(vec![2, 3], 3);
    let sig3 = vote(&mut signer, &v, 3, &m3, &mut rng);
    assert!(vote_key.verify(&m3, &sig3).is_ok());
    assert_eq!(
        signer.export(&v.id()).unwrap().tower,
        tower(&[(1, 3), (2, 2), (3, 1)], None)
    );
    let again = simple(vec![3], 4);
    assert_eq!(
        send(&mut signer, &v.identity, 4, sign_vote(&again), &mut rng).unwrap_err(),
        Refusal::Lockout(TowerError::VoteTooOld { slot: 3, last: 3 })
    );
}

#[test]
fn retries_replays_and_stale_nonces() {
    assert_eq!(RECENT_ANSWERS, 4);
    let mut rng = StdRng::seed_from_u64(4);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 10, &mut rng);

    let first = request(
        &signer,
        &v.identity,
        20,
        sign_vote(&v.vote(&vote_key, &[1], 1)),
    );
    let applied = submit(&mut signer, first.clone(), &mut rng).unwrap();
    let record = signer.record(&v.id()).unwrap();

    // The byte-identical retry gets the same answer, with nothing to commit.
    let retry = submit(&mut signer, first.clone(), &mut rng).unwrap();
    assert_eq!(retry.answer, applied.answer);
    assert_eq!(retry.record, None);
    assert_eq!(signer.record(&v.id()).unwrap(), record);
    // Signing the same request again makes the same bytes (Ed25519 is deterministic).
    let resigned = request(
        &signer,
        &v.identity,
        20,
        sign_vote(&v.vote(&vote_key, &[1], 1)),
    );
    assert_eq!(resigned, first);

    // The same nonce for another request is a replay.
    let next = v.vote(&vote_key, &[1, 2], 1);
    let replay = send(&mut signer, &v.identity, 20, sign_vote(&next), &mut rng).unwrap_err();
    assert_eq!(replay, Refusal::ReplayedNonce { nonce: 20 });
    assert_eq!(replay.name(), "replayed_nonce");
    assert_eq!(replay.code(), 1005);
    // A nonce never used, but not above the last accepted one, is stale.
    for nonce in [0, 15, 19] {
        assert_eq!(
            send(&mut signer, &v.identity, nonce, sign_vote(&next), &mut rng).unwrap_err(),
            Refusal::StaleNonce { nonce, last: 20 }
        );
    }
    // The registration (nonce 10) is still among the recent answers.
    let register_retry = send(
        &mut signer,
        &v.identity,
        10,
        register(&v.vote_account),
        &mut rng,
    )
    .unwrap();
    assert_eq!(vote_key_info(&register_retry).vote_pubkey, vote_key);
    assert_eq!(register_retry.record, None);
    assert_eq!(signer.record(&v.id()).unwrap(), record);

    // Four more answers push nonce 20 out of the recent answers: its retry is then stale.
    let towers: [&[u64]; 4] = [&[1, 2], &[1, 2, 3], &[1, 2, 3, 4], &[1, 2, 3, 4, 5]];
    let mut later = Vec::new();
    for (nonce, slots) in (21..).zip(towers) {
        let req = request(
            &signer,
            &v.identity,
            nonce,
            sign_vote(&v.vote(&vote_key, slots, 1)),
        );
        let answer = submit(&mut signer, req.clone(), &mut rng).unwrap().answer;
        later.push((req, answer));
    }
    assert_eq!(
        submit(&mut signer, first, &mut rng).unwrap_err(),
        Refusal::StaleNonce {
            nonce: 20,
            last: 24
        }
    );
    // The oldest of the four is still answered from memory.
    let (oldest, answer) = later.swap_remove(0);
    let retry = submit(&mut signer, oldest, &mut rng).unwrap();
    assert_eq!(retry.answer, answer);
    assert_eq!(retry.record, None);
}

#[test]
fn a_refused_vote_changes_nothing_and_takes_no_nonce() {
    let mut rng = StdRng::seed_from_u64(5);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 1, &mut rng);
    vote(&mut signer, &v, 2, &v.vote(&vote_key, &[1], 1), &mut rng);
    vote(&mut signer, &v, 3, &v.vote(&vote_key, &[1, 2], 2), &mut rng);
    let record = signer.record(&v.id()).unwrap();
    let export = signer.export(&v.id()).unwrap();
    assert_eq!(export.tower, tower(&[(1, 2), (2, 1)], None));

    // Slot 3 on a fork without slot 2, which is locked out until slot 4.
    let conflict = v.vote(&vote_key, &[1, 3], 3);
    let refusal = send(&mut signer, &v.identity, 4, sign_vote(&conflict), &mut rng).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Lockout(TowerError::LockoutConflict {
            locked: 2,
            until: 4,
            slot: 3,
        })
    );
    assert_eq!(refusal.name(), "lockout_conflict");
    assert_eq!(refusal.code(), 1311);
    assert!(!refusal.is_alarm());
    assert_eq!(signer.export(&v.id()).unwrap(), export);
    assert_eq!(signer.record(&v.id()).unwrap(), record);

    // An older vote (not the last one signed) is too old.
    let old = v.vote(&vote_key, &[1], 1);
    assert_eq!(
        send(&mut signer, &v.identity, 4, sign_vote(&old), &mut rng).unwrap_err(),
        Refusal::Lockout(TowerError::VoteTooOld { slot: 1, last: 2 })
    );
    // A vote for another vote account is not this validator's vote.
    let elsewhere = random_key(&mut rng);
    let foreign = ts_message(&v.id(), &elsewhere, &vote_key, &[1, 2, 3], 3);
    assert_eq!(
        send(&mut signer, &v.identity, 4, sign_vote(&foreign), &mut rng).unwrap_err(),
        Refusal::Message(MessageError::WrongAccount {
            position: "vote account",
            found: elsewhere,
            expected: v.vote_account,
        })
    );
    assert_eq!(signer.record(&v.id()).unwrap(), record);

    // None of the refusals took nonce 4: the honest successor signs with it.
    let m3 = v.vote(&vote_key, &[1, 2, 3], 3);
    let sig3 = vote(&mut signer, &v, 4, &m3, &mut rng);
    assert!(vote_key.verify(&m3, &sig3).is_ok());
    assert_eq!(
        signer.export(&v.id()).unwrap().tower,
        tower(&[(1, 3), (2, 2), (3, 1)], None)
    );

    // Switching forks: refused while slot 2 (until 6) is locked out, signed once it expired.
    let switch = |votes: Vec<(u64, u32)>| {
        legacy_message(
            &[tower_sync_ix(
                &v.vote_account,
                &vote_key,
                TowerSync::from(votes),
            )],
            &v.id(),
        )
    };
    assert_eq!(
        send(
            &mut signer,
            &v.identity,
            5,
            sign_vote(&switch(vec![(1, 3), (5, 1)])),
            &mut rng
        )
        .unwrap_err(),
        Refusal::Lockout(TowerError::LockoutConflict {
            locked: 2,
            until: 6,
            slot: 5,
        })
    );
    vote(&mut signer, &v, 5, &switch(vec![(1, 3), (7, 1)]), &mut rng);
    assert_eq!(
        signer.export(&v.id()).unwrap().tower,
        tower(&[(1, 3), (7, 1)], None)
    );
}

#[test]
fn the_last_message_signed_gets_the_same_signature_again() {
    let mut rng = StdRng::seed_from_u64(6);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 1, &mut rng);
    let m1 = v.vote(&vote_key, &[1], 1);
    let sig1 = vote(&mut signer, &v, 2, &m1, &mut rng);

    let again = send(&mut signer, &v.identity, 3, sign_vote(&m1), &mut rng).unwrap();
    assert_eq!(signature_of(&again), sig1);
    assert!(again.record.is_some());
    assert_eq!(
        signer.export(&v.id()).unwrap().tower,
        tower(&[(1, 1)], None)
    );

    // Only the last one: once a newer vote is signed, the older message is too old.
    let m2 = v.vote(&vote_key, &[1, 2], 2);
    let sig2 = vote(&mut signer, &v, 4, &m2, &mut rng);
    assert_eq!(
        send(&mut signer, &v.identity, 5, sign_vote(&m1), &mut rng).unwrap_err(),
        Refusal::Lockout(TowerError::VoteTooOld { slot: 1, last: 2 })
    );
    assert_eq!(vote(&mut signer, &v, 5, &m2, &mut rng), sig2);
}

#[test]
fn requests_must_be_signed_by_the_identity_for_this_service() {
    let mut rng = StdRng::seed_from_u64(7);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 1, &mut rng);
    let record = signer.record(&v.id()).unwrap();
    let m = v.vote(&vote_key, &[1], 1);

    let mut tampered = request(&signer, &v.identity, 2, sign_vote(&m));
    tampered.signature.0[0] ^= 1;
    let refusal = submit(&mut signer, tampered, &mut rng).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Request(RequestError::BadSignature(v.id()))
    );
    assert_eq!(refusal.name(), "bad_signature");
    assert_eq!(refusal.code(), 1001);

    // A signed field changed after signing.
    let mut renonced = request(&signer, &v.identity, 2, sign_vote(&m));
    renonced.nonce = 3;
    assert_eq!(
        submit(&mut signer, renonced, &mut rng).unwrap_err(),
        Refusal::Request(RequestError::BadSignature(v.id()))
    );
    // Someone else's signature over this identity's request.
    let mallory = SolanaKeypair::generate(&mut rng);
    let mut forged = request(&signer, &mallory, 2, sign_vote(&m));
    forged.identity = v.id();
    assert_eq!(
        submit(&mut signer, forged, &mut rng).unwrap_err(),
        Refusal::Request(RequestError::BadSignature(v.id()))
    );

    // Addressed to another signer service.
    let other = ServiceId([1; 32]);
    let misaddressed = SignedRequest::sign(sign_vote(&m), other, &v.identity, 2);
    let refusal = submit(&mut signer, misaddressed, &mut rng).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Request(RequestError::WrongService {
            found: other,
            expected: SERVICE,
        })
    );
    assert_eq!(refusal.name(), "wrong_service");
    assert_eq!(refusal.code(), 1002);

    // Over the size limit.
    let oversized = Payload::SignVote {
        message: vec![0; MAX_MESSAGE_LEN + 1],
        evidence: Vec::new(),
    };
    let refusal = send(&mut signer, &v.identity, 2, oversized, &mut rng).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Message(MessageError::TooLong {
            len: MAX_MESSAGE_LEN + 1
        })
    );
    assert_eq!(refusal.code(), 1201);
    let too_much_evidence = Payload::SignVote {
        message: m.clone(),
        evidence: vec![vec![0; 10]; keyward_vote::request::MAX_EVIDENCE + 1],
    };
    assert_eq!(
        send(&mut signer, &v.identity, 2, too_much_evidence, &mut rng).unwrap_err(),
        Refusal::Request(RequestError::Malformed(
            "the evidence is over its size limit"
        ))
    );
    // Evidence, but no ancestry policy.
    assert_eq!(
        send(
            &mut signer,
            &v.identity,
            2,
            sign_vote_with(&m, vec![vec![1, 2, 3]]),
            &mut rng
        )
        .unwrap_err(),
        Refusal::UnexpectedEvidence
    );

    assert_eq!(signer.record(&v.id()).unwrap(), record);
    let sig = vote(&mut signer, &v, 2, &m, &mut rng);
    assert!(vote_key.verify(&m, &sig).is_ok());
}

#[test]
fn an_unknown_validator_can_only_register() {
    let mut rng = StdRng::seed_from_u64(8);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let stranger_key = random_key(&mut rng);
    let m = v.vote(&stranger_key, &[1], 1);

    let refusal = send(&mut signer, &v.identity, 1, sign_vote(&m), &mut rng).unwrap_err();
    assert_eq!(refusal, Refusal::UnknownValidator(v.id()));
    assert_eq!(refusal.code(), 1101);
    for payload in [Payload::DeregisterNode, Payload::RotateVoteKey] {
        assert_eq!(
            send(&mut signer, &v.identity, 1, payload, &mut rng).unwrap_err(),
            Refusal::UnknownValidator(v.id())
        );
    }
    assert_eq!(signer.record(&v.id()), None);
    assert_eq!(signer.export(&v.id()), None);
    assert!(signer.export_all().is_empty());

    // The refusals took no nonce.
    register_key(&mut signer, &v, 1, &mut rng);
    assert_eq!(signer.registered(), 1);
}

#[test]
fn rotation_replaces_the_key_and_keeps_the_tower() {
    let mut rng = StdRng::seed_from_u64(9);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let old = register_key(&mut signer, &v, 1, &mut rng);
    let m2 = v.vote(&old, &[1, 2], 2);
    vote(&mut signer, &v, 2, &v.vote(&old, &[1], 1), &mut rng);
    vote(&mut signer, &v, 3, &m2, &mut rng);
    let export = signer.export(&v.id()).unwrap();

    let applied = send(
        &mut signer,
        &v.identity,
        4,
        Payload::RotateVoteKey,
        &mut rng,
    )
    .unwrap();
    let info = vote_key_info(&applied);
    let new = info.vote_pubkey;
    assert_ne!(new, old);
    assert_eq!(signer.vote_key(&v.id()), Some(info.clone()));
    assert_eq!(signer.export(&v.id()).unwrap(), export);
    let evidence = Evidence::from_bytes(&info.evidence).unwrap();
    let binding = key_binding(&v.id(), &v.vote_account);
    assert!(
        evidence
            .verify(&dev_policy(), &[BoundKey::Ed25519(new)], &binding)
            .is_ok()
    );
    assert_eq!(
        evidence.verify(&dev_policy(), &[BoundKey::Ed25519(old)], &binding),
        Err(EvidenceError::ReportDataMismatch)
    );

    // Messages authorised by the old key are not signed: the new key does not sign them. Not
    // even the last one signed.
    for message in [m2, v.vote(&old, &[1, 2, 3], 3)] {
        assert_eq!(
            send(&mut signer, &v.identity, 5, sign_vote(&message), &mut rng).unwrap_err(),
            Refusal::Message(MessageError::VoteKeyNotSigner(new))
        );
    }
    // The tower carried over.
    let (m3, sig3) = assert_tower_carried_over(&mut signer, &v, &new, 5, &mut rng);
    assert!(old.verify(&m3, &sig3).is_err());

    // registerNode now returns the new key; another rotation makes yet another.
    assert_eq!(register_key(&mut signer, &v, 6, &mut rng), new);
    let applied = send(
        &mut signer,
        &v.identity,
        7,
        Payload::RotateVoteKey,
        &mut rng,
    )
    .unwrap();
    let newest = vote_key_info(&applied).vote_pubkey;
    assert_ne!(newest, new);
    assert_ne!(newest, old);
}

#[test]
fn deregistration_returns_the_final_tower_and_registration_resumes_it() {
    let mut rng = StdRng::seed_from_u64(10);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let old = register_key(&mut signer, &v, 1, &mut rng);
    vote(&mut signer, &v, 2, &v.vote(&old, &[1], 1), &mut rng);
    vote(&mut signer, &v, 3, &v.vote(&old, &[1, 2], 2), &mut rng);
    let expected = TowerExport {
        identity: v.id(),
        vote_account: v.vote_account,
        tower: tower(&[(1, 2), (2, 1)], None),
    };

    let applied = send(
        &mut signer,
        &v.identity,
        4,
        Payload::DeregisterNode,
        &mut rng,
    )
    .unwrap();
    assert_eq!(final_tower(&applied), expected);
    assert_eq!(
        applied.record,
        Some((v.id(), signer.record(&v.id()).unwrap()))
    );
    assert_eq!(signer.vote_key(&v.id()), None);
    assert_eq!(signer.registered(), 0);
    assert_eq!(signer.export(&v.id()), Some(expected.clone()));

    let m3 = v.vote(&old, &[1, 2, 3], 3);
    let refusal = send(&mut signer, &v.identity, 5, sign_vote(&m3), &mut rng).unwrap_err();
    assert_eq!(refusal, Refusal::NotRegistered(v.id()));
    assert_eq!(refusal.name(), "not_registered");
    assert_eq!(
        send(
            &mut signer,
            &v.identity,
            5,
            Payload::RotateVoteKey,
            &mut rng
        )
        .unwrap_err(),
        Refusal::NotRegistered(v.id())
    );
    // Deregistering again returns the same tower.
    let again = send(
        &mut signer,
        &v.identity,
        5,
        Payload::DeregisterNode,
        &mut rng,
    )
    .unwrap();
    assert_eq!(final_tower(&again), expected);

    // The validator stays bound to its vote account.
    let other_account = random_key(&mut rng);
    assert_eq!(
        send(
            &mut signer,
            &v.identity,
            6,
            register(&other_account),
            &mut rng
        )
        .unwrap_err(),
        Refusal::VoteAccountMismatch {
            registered: v.vote_account,
            requested: other_account,
        }
    );
    // Registering again makes a new key over the kept tower.
    let new = register_key(&mut signer, &v, 6, &mut rng);
    assert_ne!(new, old);
    assert_eq!(signer.registered(), 1);
    assert_eq!(signer.export(&v.id()), Some(expected));
    assert_tower_carried_over(&mut signer, &v, &new, 7, &mut rng);
}

/// What a host stores: every validator's latest record, and the vote key evidence they name.
#[derive(Clone, Default)]
struct Kept {
    records: BTreeMap<SolanaPubkey, Vec<u8>>,
    evidence: Vec<Vec<u8>>,
}

impl Kept {
    fn evidence(&self) -> impl Iterator<Item = &[u8]> {
        self.evidence.iter().map(Vec::as_slice)
    }
}

/// Keeps the latest record and the evidence an answer carries, as a host commits them.
fn keep(kept: &mut Kept, applied: &Applied) {
    if let Some((identity, record)) = &applied.record {
        kept.records.insert(*identity, record.clone());
    }
    kept.evidence.extend(applied.evidence.clone());
}

/// Sends a request that must be accepted, and keeps its record.
fn send_keep(
    signer: &mut Signer,
    records: &mut Kept,
    v: &Validator,
    nonce: u64,
    payload: Payload,
    rng: &mut StdRng,
) -> Applied {
    let applied = send(signer, &v.identity, nonce, payload, rng).unwrap();
    keep(records, &applied);
    applied
}

#[test]
fn a_signer_restored_from_its_records_keeps_every_rule() {
    let mut rng = StdRng::seed_from_u64(11);
    let (mut signer, sealing_key) = new_signer(&mut rng, None);
    let (a, b, c) = (
        Validator::new(&mut rng),
        Validator::new(&mut rng),
        Validator::new(&mut rng),
    );
    let mut records = Kept::default();

    // a: registered, two votes.
    let a_key = vote_key_info(&send_keep(
        &mut signer,
        &mut records,
        &a,
        1,
        register(&a.vote_account),
        &mut rng,
    ))
    .vote_pubkey;
    send_keep(
        &mut signer,
        &mut records,
        &a,
        2,
        sign_vote(&a.vote(&a_key, &[1], 1)),
        &mut rng,
    );
    let a_last = request(
        &signer,
        &a.identity,
        3,
        sign_vote(&a.vote(&a_key, &[1, 2], 2)),
    );
    let a_last_answer = submit(&mut signer, a_last.clone(), &mut rng).unwrap();
    keep(&mut records, &a_last_answer);
    // b: a vote, a rotation, a vote with the new key.
    let b_old = vote_key_info(&send_keep(
        &mut signer,
        &mut records,
        &b,
        1,
        register(&b.vote_account),
        &mut rng,
    ))
    .vote_pubkey;
    send_keep(
        &mut signer,
        &mut records,
        &b,
        2,
        sign_vote(&b.vote(&b_old, &[5], 5)),
        &mut rng,
    );
    let b_new = vote_key_info(&send_keep(
        &mut signer,
        &mut records,
        &b,
        3,
        Payload::RotateVoteKey,
        &mut rng,
    ))
    .vote_pubkey;
    send_keep(
        &mut signer,
        &mut records,
        &b,
        4,
        sign_vote(&b.vote(&b_new, &[5, 6], 6)),
        &mut rng,
    );
    // c: registered, then deregistered.
    send_keep(
        &mut signer,
        &mut records,
        &c,
        1,
        register(&c.vote_account),
        &mut rng,
    );
    send_keep(
        &mut signer,
        &mut records,
        &c,
        2,
        Payload::DeregisterNode,
        &mut rng,
    );

    // The records the answers carried are the signer's current records.
    assert_eq!(records.records.len(), 3);
    for v in [&a, &b, &c] {
        assert_eq!(
            records.records.get(&v.id()),
            signer.record(&v.id()).as_ref()
        );
    }

    let mut restored = restore(
        None,
        &sealing_key,
        records.records.values().map(Vec::as_slice),
        records.evidence(),
    )
    .unwrap();
    assert_eq!(restored.export_all(), signer.export_all());
    assert_eq!(restored.registered(), 2);
    for v in [&a, &b, &c] {
        assert_eq!(restored.vote_key(&v.id()), signer.vote_key(&v.id()));
        assert_eq!(restored.record(&v.id()), signer.record(&v.id()));
    }

    // Retries and nonces survive the restart.
    let retry = submit(&mut restored, a_last, &mut rng).unwrap();
    assert_eq!(retry.answer, a_last_answer.answer);
    assert_eq!(retry.record, None);
    let a3 = a.vote(&a_key, &[1, 2, 3], 3);
    assert_eq!(
        send(&mut restored, &a.identity, 1, sign_vote(&a3), &mut rng).unwrap_err(),
        Refusal::ReplayedNonce { nonce: 1 }
    );
    assert_eq!(
        send(&mut restored, &a.identity, 0, sign_vote(&a3), &mut rng).unwrap_err(),
        Refusal::StaleNonce { nonce: 0, last: 3 }
    );
    // So do the lockouts.
    assert_eq!(
        send(
            &mut restored,
            &a.identity,
            4,
            sign_vote(&a.vote(&a_key, &[1, 3], 3)),
            &mut rng
        )
        .unwrap_err(),
        Refusal::Lockout(TowerError::LockoutConflict {
            locked: 2,
            until: 4,
            slot: 3,
        })
    );
    // The honest successor is signed, with the same key: the same signature as before restart.
    let restored_sig = vote(&mut restored, &a, 4, &a3, &mut rng);
    assert_eq!(restored_sig, vote(&mut signer, &a, 4, &a3, &mut rng));
    assert!(a_key.verify(&a3, &restored_sig).is_ok());

    // b votes with its rotated key only.
    let b7 = b.vote(&b_new, &[5, 6, 7], 7);
    assert_eq!(
        send(
            &mut restored,
            &b.identity,
            5,
            sign_vote(&b.vote(&b_old, &[5, 6, 7], 7)),
            &mut rng
        )
        .unwrap_err(),
        Refusal::Message(MessageError::VoteKeyNotSigner(b_new))
    );
    assert!(
        b_new
            .verify(&b7, &vote(&mut restored, &b, 5, &b7, &mut rng))
            .is_ok()
    );

    // c stays deregistered until it registers again.
    assert_eq!(
        send(
            &mut restored,
            &c.identity,
            3,
            sign_vote(&c.vote(&b_new, &[1], 1)),
            &mut rng
        )
        .unwrap_err(),
        Refusal::NotRegistered(c.id())
    );
    register_key(&mut restored, &c, 3, &mut rng);
    assert_eq!(restored.registered(), 3);
}

/// A record names its vote key's evidence by SHA-256 instead of carrying it: the evidence is
/// stored once, beside the records, and must be there, unaltered, for the record to restore.
#[test]
fn a_record_names_its_evidence_which_must_be_stored_unaltered() {
    let mut rng = StdRng::seed_from_u64(14);
    let (mut signer, sealing_key) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let applied = send(
        &mut signer,
        &v.identity,
        1,
        register(&v.vote_account),
        &mut rng,
    )
    .unwrap();
    let evidence = applied
        .evidence
        .clone()
        .expect("a new key's evidence is handed over");
    assert_eq!(evidence, vote_key_info(&applied).evidence);
    let vote_key = vote_key_info(&applied).vote_pubkey;
    let voted = send(
        &mut signer,
        &v.identity,
        2,
        sign_vote(&v.vote(&vote_key, &[1], 1)),
        &mut rng,
    )
    .unwrap();
    assert_eq!(voted.evidence, None, "a vote hands over no evidence");
    let record = signer.record(&v.id()).unwrap();

    // The sealed plaintext holds the digest, not the evidence.
    let plain = common::sealer(&sealing_key)
        .open(
            SealPurpose::ValidatorRecord,
            &SealedBlob::from_bytes(record.clone()),
            0,
        )
        .unwrap()
        .plaintext;
    let digest = keyward_vote::signer::evidence_digest(&evidence);
    assert!(plain.windows(32).any(|w| w == digest));
    assert!(!plain.windows(evidence.len()).any(|w| w == evidence));

    // Restored with its evidence (and an unrelated blob, ignored): the same key and evidence.
    let restored = restore(
        None,
        &sealing_key,
        [record.as_slice()],
        [b"unrelated".as_slice(), evidence.as_slice()],
    )
    .unwrap();
    assert_eq!(restored.vote_key(&v.id()), signer.vote_key(&v.id()));

    // Missing, or altered by one bit: refused, naming the digest.
    let mut altered = evidence.clone();
    *altered.last_mut().unwrap() ^= 1;
    for stored in [vec![], vec![altered.as_slice()]] {
        let error = restore(None, &sealing_key, [record.as_slice()], stored)
            .err()
            .unwrap();
        assert!(matches!(error, RestoreError::EvidenceMissing(d) if d == digest));
        assert!(
            error
                .to_string()
                .contains(&keyward_crypto::hex::to_0x(&digest))
        );
    }
}

/// Evidence is handed over once, by the request that makes the key, and retired once the record
/// names it no more (its key replaced and no recent answer naming it): the host's evidence
/// table holds what the records name, not every key ever made.
#[test]
fn evidence_is_retired_once_no_record_names_it() {
    let mut rng = StdRng::seed_from_u64(15);
    let (mut signer, sealing_key) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let mut kept = Kept::default();
    let digest =
        |applied: &Applied| keyward_vote::signer::evidence_digest(&vote_key_info(applied).evidence);
    let first = send_keep(
        &mut signer,
        &mut kept,
        &v,
        1,
        register(&v.vote_account),
        &mut rng,
    );
    // A repeated registration (a new nonce) names the same key: nothing new to store.
    let again = send_keep(
        &mut signer,
        &mut kept,
        &v,
        2,
        register(&v.vote_account),
        &mut rng,
    );
    assert_eq!((again.evidence.as_ref(), again.retired.len()), (None, 0));
    let rotated = send_keep(
        &mut signer,
        &mut kept,
        &v,
        3,
        Payload::RotateVoteKey,
        &mut rng,
    );
    assert!(rotated.evidence.is_some());
    assert!(
        rotated.retired.is_empty(),
        "recent answers still name the first key's evidence"
    );
    let key = vote_key_info(&rotated).vote_pubkey;
    // Recent answers: [1, 2, 3, 4] after the first vote, then 1 and 2 (the first key's) leave.
    let mut retired = Vec::new();
    for (nonce, slot) in [(4, 1), (5, 2), (6, 3)] {
        let slots: Vec<u64> = (1..=slot).collect();
        let voted = send_keep(
            &mut signer,
            &mut kept,
            &v,
            nonce,
            sign_vote(&v.vote(&key, &slots, slot as u8)),
            &mut rng,
        );
        assert_eq!(voted.evidence, None);
        retired.push(voted.retired);
    }
    assert_eq!(retired, [vec![], vec![], vec![digest(&first)]]);

    // What the host keeps after applying the retirements is enough to restore.
    let retired_digest = digest(&first);
    kept.evidence
        .retain(|blob| keyward_vote::signer::evidence_digest(blob) != retired_digest);
    assert_eq!(kept.evidence.len(), 1);
    let restored = restore(
        None,
        &sealing_key,
        kept.records.values().map(Vec::as_slice),
        kept.evidence(),
    )
    .unwrap();
    assert_eq!(restored.vote_key(&v.id()), signer.vote_key(&v.id()));
}

#[test]
fn a_damaged_record_or_another_sealing_key_does_not_restore() {
    let mut rng = StdRng::seed_from_u64(12);
    let (mut signer, sealing_key) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 1, &mut rng);
    vote(&mut signer, &v, 2, &v.vote(&vote_key, &[1], 1), &mut rng);
    let record = signer.record(&v.id()).unwrap();
    let evidence = signer.vote_key(&v.id()).unwrap().evidence;
    let evidence = [evidence.as_slice()];
    assert!(restore(None, &sealing_key, [record.as_slice()], evidence).is_ok());

    // Another sealing key cannot open the record.
    assert!(matches!(
        restore(None, &[0x42; 32], [record.as_slice()], evidence),
        Err(RestoreError::Seal(SealError::Tampered))
    ));

    // The whole record is one sealed blob: the host sees only its purpose and chain.
    assert_eq!(&record[..4], b"KWSB");
    assert!(record.windows(16).any(|w| w == b"validator-record"));
    assert!(
        !record.windows(32).any(|w| w == v.id().0 || w == vote_key.0),
        "neither the identity nor the vote key is in clear"
    );

    // Any flipped bit anywhere: the record does not restore.
    for at in 0..record.len() {
        let mut damaged = record.clone();
        damaged[at] ^= 0x01;
        assert!(
            matches!(
                restore(None, &sealing_key, [damaged.as_slice()], evidence),
                Err(RestoreError::Seal(_))
            ),
            "byte {at}"
        );
    }
    // Truncated, extended, duplicated.
    assert!(matches!(
        restore(None, &sealing_key, [&record[..record.len() - 1]], evidence),
        Err(RestoreError::Seal(SealError::Malformed(_)))
    ));
    let mut extended = record.clone();
    extended.push(0);
    assert!(matches!(
        restore(None, &sealing_key, [extended.as_slice()], evidence),
        Err(RestoreError::Seal(SealError::Malformed(_)))
    ));
    assert!(matches!(
        restore(None, &sealing_key, [record.as_slice(), record.as_slice()], evidence),
        Err(RestoreError::Duplicate(id)) if id == v.id()
    ));

    // Only the sealing key's holder can write a record; even then, a vote key that does not
    // match the public key the record names is refused. Layout of the sealed plaintext:
    // "KWVR" 3 | identity | vote account | 1 | vote pubkey | evidence digest | tower | … |
    // seed (32, last).
    const PUBKEY_AT: usize = 5 + 32 + 32 + 1;
    let sealer = common::sealer(&sealing_key);
    let plain = sealer
        .open(
            SealPurpose::ValidatorRecord,
            &SealedBlob::from_bytes(record.clone()),
            0,
        )
        .unwrap()
        .plaintext;
    assert_eq!(&plain[..4], b"KWVR");
    assert_eq!(&plain[PUBKEY_AT..PUBKEY_AT + 32], &vote_key.0);
    let mut forged = plain.to_vec();
    forged[PUBKEY_AT] ^= 0x01;
    let forged = sealer
        .seal_synthetic(SealPurpose::ValidatorRecord, 0, &forged)
        .unwrap();
    assert!(matches!(
        restore(None, &sealing_key, [forged.as_bytes()], evidence),
        Err(RestoreError::KeyMismatch(id)) if id == v.id()
    ));

    // One encoding per state: a root value in a tower without a root is refused, not ignored
    // (a fuzz finding: such a record restored and then re-encoded to other bytes).
    let tower_at = PUBKEY_AT + 32 + 32;
    assert_eq!(plain[tower_at], 0, "this tower has no root");
    let mut forged = plain.to_vec();
    forged[tower_at + 8] = 4;
    let forged = sealer
        .seal_synthetic(SealPurpose::ValidatorRecord, 0, &forged)
        .unwrap();
    assert!(matches!(
        restore(None, &sealing_key, [forged.as_bytes()], evidence),
        Err(RestoreError::Malformed(_))
    ));
}

#[test]
fn a_record_stored_under_another_identity_is_refused_and_named() {
    let mut rng = StdRng::seed_from_u64(22);
    let (mut signer, sealing_key) = new_signer(&mut rng, None);
    let (a, b) = (Validator::new(&mut rng), Validator::new(&mut rng));
    register_key(&mut signer, &a, 1, &mut rng);
    register_key(&mut signer, &b, 1, &mut rng);
    let (ra, rb) = (
        signer.record(&a.id()).unwrap(),
        signer.record(&b.id()).unwrap(),
    );
    let evidence = [a.id(), b.id()].map(|id| signer.vote_key(&id).unwrap().evidence);
    let manifest = signer.seal_commit();
    let load = |records: Vec<(SolanaPubkey, &[u8])>| {
        Signer::restore(
            common::config(None),
            common::sealer(&sealing_key),
            Box::new(common::platform()),
            records,
            evidence.iter().map(Vec::as_slice),
            Some(&manifest.blob),
            manifest.counter,
        )
    };
    assert!(load(vec![(a.id(), &ra), (b.id(), &rb)]).is_ok());
    // The host swaps the two records between their slots.
    assert!(matches!(
        load(vec![(a.id(), &rb), (b.id(), &ra)]),
        Err(RestoreError::Record { identity, error })
            if identity == a.id()
                && matches!(*error, RestoreError::Misplaced { stored_as, holds }
                    if stored_as == a.id() && holds == b.id())
    ));
    // A damaged record is named by the identity it is stored under.
    let mut damaged = rb.clone();
    *damaged.last_mut().unwrap() ^= 1;
    let error = load(vec![(a.id(), &ra), (b.id(), &damaged)]).err().unwrap();
    assert!(matches!(&error, RestoreError::Record { identity, .. } if *identity == b.id()));
    assert!(error.to_string().contains(&b.id().to_string()), "{error}");
}

/// What a host keeps between runs: every record by identity, the last commit's manifest, and
/// the monotonic counter.
#[derive(Clone)]
struct Disk {
    kept: Kept,
    manifest: Option<CommitManifest>,
    counter: u64,
}

impl Disk {
    /// Applies a request and commits what it changed, as the service's writer does.
    fn send(
        &mut self,
        signer: &mut Signer,
        v: &Validator,
        nonce: u64,
        payload: Payload,
        rng: &mut StdRng,
    ) -> Result<Applied, Refusal> {
        let applied = send(signer, &v.identity, nonce, payload, rng)?;
        keep(&mut self.kept, &applied);
        let manifest = signer.seal_commit();
        self.counter = manifest.counter;
        self.manifest = Some(manifest);
        Ok(applied)
    }

    /// The signer this disk restores to, with the monotonic counter at `counter`.
    fn load(&self, sealing_key: &[u8; 32], counter: u64) -> Result<Signer, RestoreError> {
        Signer::restore(
            common::config(None),
            common::sealer(sealing_key),
            Box::new(common::platform()),
            self.kept.records.iter().map(|(id, r)| (*id, r.as_slice())),
            self.kept.evidence(),
            self.manifest.as_ref().map(|m| m.blob.as_slice()),
            counter,
        )
    }
}

#[test]
fn an_older_record_or_store_does_not_restore_so_no_conflicting_vote_is_unlocked() {
    let (mut signer, sealing_key, v, key, mut disk) = registered_on_disk(31);
    let mut rng = StdRng::seed_from_u64(31);
    let w = Validator::new(&mut rng);
    disk.send(&mut signer, &w, 1, register(&w.vote_account), &mut rng)
        .unwrap();
    disk.send(
        &mut signer,
        &v,
        2,
        sign_vote(&v.vote(&key, &[1], 1)),
        &mut rng,
    )
    .unwrap();
    let old = disk.clone();
    disk.send(
        &mut signer,
        &v,
        3,
        sign_vote(&v.vote(&key, &[1, 2], 2)),
        &mut rng,
    )
    .unwrap();
    assert!(disk.counter > old.counter);
    // Slot 3 on a fork without 2 breaks 2's lockout.
    let conflicting = sign_vote(&v.vote(&key, &[1, 3], 3));
    let is_lockout = |r: Result<Applied, Refusal>| matches!(r, Err(Refusal::Lockout(_)));

    // The latest store restores, and keeps the lockout.
    let mut current = disk.load(&sealing_key, disk.counter).unwrap();
    assert_eq!(current.pinned_at(), disk.counter);
    assert!(is_lockout(send(
        &mut current,
        &v.identity,
        4,
        conflicting.clone(),
        &mut rng
    )));

    // The whole store put back from before the vote on 2: its manifest is below the counter.
    assert!(matches!(
        old.load(&sealing_key, disk.counter).err().unwrap(),
        RestoreError::Manifest(SealError::RolledBack { found, minimum })
            if found == old.counter && minimum == disk.counter
    ));
    // What that refusal prevents: with the counter put back too (beyond a soft counter's reach),
    // the older store would sign the conflicting vote.
    let mut unlocked = old.load(&sealing_key, old.counter).unwrap();
    assert!(send(&mut unlocked, &v.identity, 4, conflicting, &mut rng).is_ok());

    // One record put back from an older commit, under the current manifest and counter.
    let mut partial = disk.clone();
    partial
        .kept
        .records
        .insert(v.id(), old.kept.records[&v.id()].clone());
    assert!(matches!(
        partial.load(&sealing_key, disk.counter).err().unwrap(),
        RestoreError::RolledBack { counter, expected: 2 } if counter == disk.counter
    ));
    // One record removed.
    let mut removed = disk.clone();
    removed.kept.records.remove(&w.id());
    assert!(matches!(
        removed.load(&sealing_key, disk.counter),
        Err(RestoreError::RolledBack { .. })
    ));
    // The manifest removed, with records or with only the counter left.
    let mut bare = disk.clone();
    bare.manifest = None;
    assert!(matches!(
        bare.load(&sealing_key, disk.counter),
        Err(RestoreError::ManifestMissing { records: 2, .. })
    ));
    bare.kept.records.clear();
    assert!(matches!(
        bare.load(&sealing_key, disk.counter),
        Err(RestoreError::ManifestMissing { records: 0, .. })
    ));

    // A crash between storing a commit and advancing the counter: the store is one ahead, and
    // restores, and its startup commit moves the counter past both.
    let restored = disk.load(&sealing_key, old.counter).unwrap();
    assert_eq!(restored.pinned_at(), disk.counter);
    // The startup commit skips a value, which a commit that failed before the restart may have
    // used.
    let mut restored = restored;
    assert_eq!(restored.seal_commit().counter, disk.counter + 2);
}

/// A new signer with one registered validator, its record committed to a [`Disk`]; returns the
/// signer, its sealing key, the validator, its vote key and the disk.
fn registered_on_disk(seed: u64) -> (Signer, [u8; 32], Validator, SolanaPubkey, Disk) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut signer, sealing_key) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let mut disk = Disk {
        kept: Kept::default(),
        manifest: None,
        counter: 0,
    };
    let key = vote_key_info(
        &disk
            .send(&mut signer, &v, 1, register(&v.vote_account), &mut rng)
            .unwrap(),
    )
    .vote_pubkey;
    (signer, sealing_key, v, key, disk)
}

#[test]
fn a_record_returned_earlier_in_the_same_commit_does_not_restore() {
    let (mut signer, sealing_key, v, key, mut disk) = registered_on_disk(32);
    let mut rng = StdRng::seed_from_u64(32);
    // Two votes in one batch: both records are returned before the one commit.
    let first = send(
        &mut signer,
        &v.identity,
        2,
        sign_vote(&v.vote(&key, &[1], 1)),
        &mut rng,
    )
    .unwrap();
    keep(&mut disk.kept, &first);
    let earlier = disk.kept.records[&v.id()].clone();
    let second = send(
        &mut signer,
        &v.identity,
        3,
        sign_vote(&v.vote(&key, &[1, 2], 2)),
        &mut rng,
    )
    .unwrap();
    keep(&mut disk.kept, &second);
    let manifest = signer.seal_commit();
    disk.counter = manifest.counter;
    disk.manifest = Some(manifest);
    assert!(disk.load(&sealing_key, disk.counter).is_ok());
    // The host keeps the first record of the batch instead of the second.
    let mut swapped = disk.clone();
    swapped.kept.records.insert(v.id(), earlier);
    assert!(matches!(
        swapped.load(&sealing_key, disk.counter),
        Err(RestoreError::RolledBack { .. })
    ));
}

#[test]
fn a_failed_commit_s_counter_value_is_never_sealed_again_with_other_contents() {
    let (_, sealing_key, v, key, mut disk) = registered_on_disk(33);
    let mut rng = StdRng::seed_from_u64(33);
    // A process restores, makes its startup commit, and its first real commit (a vote on 2)
    // fails to become durable; the host keeps what it wrote.
    let restore_and_start = |disk: &mut Disk| {
        let mut signer = disk.load(&sealing_key, disk.counter).unwrap();
        let startup = signer.seal_commit();
        assert_eq!(startup.counter, disk.counter + 2);
        disk.counter = startup.counter;
        disk.manifest = Some(startup);
        signer
    };
    let mut first = restore_and_start(&mut disk);
    let mut failed = disk.clone();
    failed
        .send(
            &mut first,
            &v,
            2,
            sign_vote(&v.vote(&key, &[2], 2)),
            &mut rng,
        )
        .unwrap();
    // The next process restores the durable state and signs a conflicting vote on 3.
    let mut second = restore_and_start(&mut disk);
    disk.send(
        &mut second,
        &v,
        2,
        sign_vote(&v.vote(&key, &[3], 3)),
        &mut rng,
    )
    .unwrap();
    assert!(disk.counter > failed.counter, "no value is used twice");
    // The failed commit's store, put back, is below the counter: the vote on 2 stays unsignable.
    assert!(matches!(
        failed.load(&sealing_key, disk.counter),
        Err(RestoreError::Manifest(SealError::RolledBack { .. }))
    ));
}

#[test]
fn the_same_state_gives_the_same_record_bytes() {
    let mut rng = StdRng::seed_from_u64(21);
    let (mut signer, sealing_key) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 1, &mut rng);
    vote(&mut signer, &v, 2, &v.vote(&vote_key, &[1], 1), &mut rng);
    let record = signer.record(&v.id()).unwrap();
    assert_eq!(signer.record(&v.id()).unwrap(), record);
    let evidence = signer.vote_key(&v.id()).unwrap().evidence;
    let restored = restore(
        None,
        &sealing_key,
        [record.as_slice()],
        [evidence.as_slice()],
    )
    .unwrap();
    assert_eq!(restored.record(&v.id()).unwrap(), record);
}

#[test]
fn importing_towers_never_moves_one_backwards() {
    let mut rng = StdRng::seed_from_u64(13);
    let (mut previous, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let old_key = register_key(&mut previous, &v, 1, &mut rng);
    vote(&mut previous, &v, 2, &v.vote(&old_key, &[1], 1), &mut rng);
    vote(
        &mut previous,
        &v,
        3,
        &v.vote(&old_key, &[1, 2], 2),
        &mut rng,
    );
    let export = previous.export(&v.id()).unwrap();
    assert_eq!(export.tower, tower(&[(1, 2), (2, 1)], None));

    let (mut signer, _) = new_signer(&mut rng, None);
    let (outcome, record) = signer.import(export.clone()).unwrap();
    assert_eq!(outcome, ImportOutcome::Created);
    assert_eq!(signer.record(&v.id()), Some(record.clone()));
    assert_eq!(signer.export(&v.id()), Some(export.clone()));
    assert_eq!(signer.vote_key(&v.id()), None);
    assert_eq!(signer.registered(), 0);
    assert_eq!(
        send(
            &mut signer,
            &v.identity,
            1,
            sign_vote(&v.vote(&old_key, &[1, 2, 3], 3)),
            &mut rng
        )
        .unwrap_err(),
        Refusal::NotRegistered(v.id())
    );

    let with = |tower: Tower| TowerExport {
        tower,
        ..export.clone()
    };
    // The same tower, an older one, an empty one: nothing changes.
    for same_or_older in [
        export.clone(),
        with(tower(&[(1, 1)], None)),
        with(Tower::new()),
    ] {
        let (outcome, unchanged) = signer.import(same_or_older).unwrap();
        assert_eq!(outcome, ImportOutcome::Unchanged);
        assert_eq!(unchanged, record);
    }
    // A tower that drops a locked-out vote is refused.
    assert_eq!(
        signer.import(with(tower(&[(1, 2), (3, 1)], None))),
        Err(ImportError::Conflict(TowerError::LockoutConflict {
            locked: 2,
            until: 4,
            slot: 3,
        }))
    );
    // Another vote account.
    let other_account = random_key(&mut rng);
    assert_eq!(
        signer.import(TowerExport {
            vote_account: other_account,
            ..export.clone()
        }),
        Err(ImportError::VoteAccountMismatch {
            registered: v.vote_account,
            imported: other_account,
        })
    );
    // A tower valid under a looser policy, but taller than Solana's 31 votes.
    let loose = LockoutPolicy::new(2, 2, 64).unwrap();
    let tall: Vec<Lockout> = (1..=32u32)
        .map(|i| Lockout {
            slot: u64::from(i),
            confirmation_count: 33 - i,
        })
        .collect();
    assert_eq!(
        signer.import(with(Tower::from_parts(tall, None, &loose).unwrap())),
        Err(ImportError::Invalid(TowerError::TooManyVotes {
            len: 32,
            max: 31
        }))
    );
    assert_eq!(signer.record(&v.id()), Some(record));
    assert_eq!(signer.export(&v.id()), Some(export.clone()));

    // A successor advances the tower.
    let successor = tower(&[(1, 3), (2, 2), (3, 1)], None);
    let (outcome, advanced) = signer.import(with(successor.clone())).unwrap();
    assert_eq!(outcome, ImportOutcome::Advanced);
    assert_eq!(signer.record(&v.id()), Some(advanced));
    assert_eq!(signer.export(&v.id()).unwrap().tower, successor);

    // Once the validator registers, the imported tower binds its votes.
    let new_key = register_key(&mut signer, &v, 1, &mut rng);
    assert_eq!(signer.export(&v.id()).unwrap().tower, successor);
    assert_eq!(
        send(
            &mut signer,
            &v.identity,
            2,
            sign_vote(&v.vote(&new_key, &[1, 2, 3], 3)),
            &mut rng
        )
        .unwrap_err(),
        Refusal::Lockout(TowerError::VoteTooOld { slot: 3, last: 3 })
    );
    assert_eq!(
        send(
            &mut signer,
            &v.identity,
            2,
            sign_vote(&v.vote(&new_key, &[1, 2, 4], 4)),
            &mut rng
        )
        .unwrap_err(),
        Refusal::Lockout(TowerError::LockoutConflict {
            locked: 3,
            until: 5,
            slot: 4,
        })
    );
    vote(
        &mut signer,
        &v,
        2,
        &v.vote(&new_key, &[1, 2, 3, 4], 4),
        &mut rng,
    );
    assert_eq!(
        signer.export(&v.id()).unwrap().tower,
        tower(&[(1, 4), (2, 3), (3, 2), (4, 1)], None)
    );
    // Importing the old tower now changes nothing.
    assert_eq!(signer.import(export).unwrap().0, ImportOutcome::Unchanged);
}

/// A member of the active set: an identity that pays, a vote authority that signs its votes.
struct Peer {
    identity: SolanaKeypair,
    authority: SolanaKeypair,
    vote_account: SolanaPubkey,
}

impl Peer {
    fn new(rng: &mut StdRng) -> Self {
        Self {
            identity: SolanaKeypair::generate(rng),
            authority: SolanaKeypair::generate(rng),
            vote_account: random_key(rng),
        }
    }

    fn member(&self) -> Member {
        Member {
            authority: self.authority.pubkey(),
            stake: 1,
        }
    }

    /// A signed `TowerSync` transaction on `slots`, bank hash `[hash_byte; 32]`.
    fn vote_tx(&self, slots: &[u64], hash_byte: u8) -> Vec<u8> {
        let message = ts_message(
            &self.identity.pubkey(),
            &self.vote_account,
            &self.authority.pubkey(),
            slots,
            hash_byte,
        );
        signed_tx(&message, &[&self.identity, &self.authority])
    }
}

fn peers(rng: &mut StdRng) -> [Peer; 3] {
    [Peer::new(rng), Peer::new(rng), Peer::new(rng)]
}

#[test]
fn ancestor_verification_follows_the_previous_vote() {
    let mut rng = StdRng::seed_from_u64(14);
    let p = peers(&mut rng);
    let policy = AncestryPolicy::new(p.iter().map(Peer::member).collect(), true, None).unwrap();
    assert_eq!(policy.active_count(), 3);
    let (mut signer, _) = new_signer(&mut rng, Some(policy));
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 1, &mut rng);

    // The first vote needs no evidence.
    let m1 = v.vote(&vote_key, &[1], 0xa1);
    let sig1 = vote(&mut signer, &v, 2, &m1, &mut rng);
    let own1 = v.own_tx(&vote_key, &m1, sig1);
    let record = signer.record(&v.id()).unwrap();

    let m2 = v.vote(&vote_key, &[1, 2], 0xa2);
    let try_m2 = |signer: &mut Signer, evidence: Vec<Vec<u8>>, rng: &mut StdRng| {
        send(signer, &v.identity, 3, sign_vote_with(&m2, evidence), rng)
    };
    // Until the first vote is seen in the evidence, nothing more is signed.
    let frozen = Refusal::Ancestry(AncestryError::InitialVoteFreeze { slot: 1 });
    let refusal = try_m2(&mut signer, Vec::new(), &mut rng).unwrap_err();
    assert_eq!(refusal, frozen);
    assert!(!refusal.is_alarm());
    assert_eq!(refusal.name(), "initial_vote_freeze");
    let majority_only = vec![p[0].vote_tx(&[1], 0xa1), p[1].vote_tx(&[1], 0xa1)];
    assert_eq!(
        try_m2(&mut signer, majority_only, &mut rng).unwrap_err(),
        frozen
    );

    // Our vote is seen, but the active set voted another bank hash for slot 1: alarm.
    let refusal = try_m2(
        &mut signer,
        vec![
            own1.clone(),
            p[0].vote_tx(&[1], 0xb1),
            p[1].vote_tx(&[1], 0xb1),
            p[2].vote_tx(&[1], 0xb1),
        ],
        &mut rng,
    )
    .unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Ancestry(AncestryError::AncestorMismatch {
            slot: 1,
            support: 0,
            total: 3,
        })
    );
    assert!(refusal.is_alarm());
    assert_eq!(refusal.name(), "ancestor_mismatch");
    // One of three on our fork is not a majority.
    assert_eq!(
        try_m2(
            &mut signer,
            vec![
                own1.clone(),
                p[0].vote_tx(&[1], 0xa1),
                p[1].vote_tx(&[1], 0xb1),
            ],
            &mut rng,
        )
        .unwrap_err(),
        Refusal::Ancestry(AncestryError::AncestorMismatch {
            slot: 1,
            support: 1,
            total: 3,
        })
    );
    // A vote from outside the active set.
    let stranger = Peer::new(&mut rng);
    assert_eq!(
        try_m2(
            &mut signer,
            vec![
                own1.clone(),
                p[0].vote_tx(&[1], 0xa1),
                p[1].vote_tx(&[1], 0xa1),
                stranger.vote_tx(&[1], 0xa1),
            ],
            &mut rng,
        )
        .unwrap_err(),
        Refusal::Ancestry(AncestryError::UnknownVoter(stranger.authority.pubkey()))
    );
    // A member's vote whose authority signature is damaged (signers are [identity, authority]).
    let mut tampered = p[1].vote_tx(&[1], 0xa1);
    tampered[1 + 64] ^= 0x01;
    assert_eq!(
        try_m2(
            &mut signer,
            vec![own1.clone(), p[0].vote_tx(&[1], 0xa1), tampered],
            &mut rng
        )
        .unwrap_err(),
        Refusal::Ancestry(AncestryError::BadSignature {
            index: 2,
            authority: p[1].authority.pubkey(),
        })
    );
    // Two votes from one member.
    assert_eq!(
        try_m2(
            &mut signer,
            vec![
                own1.clone(),
                p[0].vote_tx(&[1], 0xa1),
                p[0].vote_tx(&[1, 2], 0xa2),
            ],
            &mut rng,
        )
        .unwrap_err(),
        Refusal::Ancestry(AncestryError::DuplicateVoter(p[0].authority.pubkey()))
    );
    // Not a transaction at all.
    assert!(matches!(
        try_m2(&mut signer, vec![vec![0; 10]], &mut rng).unwrap_err(),
        Refusal::Ancestry(AncestryError::Malformed { index: 0, .. })
    ));

    // None of the refusals changed anything.
    assert_eq!(signer.record(&v.id()).unwrap(), record);

    // Our first vote, and two of three members on its fork (one already voted past it).
    let applied = try_m2(
        &mut signer,
        vec![
            own1.clone(),
            p[0].vote_tx(&[1], 0xa1),
            p[1].vote_tx(&[1, 5], 0xc5),
        ],
        &mut rng,
    )
    .unwrap();
    let sig2 = signature_of(&applied);
    assert!(vote_key.verify(&m2, &sig2).is_ok());
    assert_ne!(signer.record(&v.id()).unwrap(), record);
    assert_eq!(
        signer.export(&v.id()).unwrap().tower,
        tower(&[(1, 2), (2, 1)], None)
    );

    // The next vote needs the previous one, no longer the first.
    let m3 = v.vote(&vote_key, &[1, 2, 3], 0xa3);
    let own2 = v.own_tx(&vote_key, &m2, sig2);
    let members_on_2 = || vec![p[0].vote_tx(&[1, 2], 0xa2), p[2].vote_tx(&[1, 2], 0xa2)];
    let refusal = send(
        &mut signer,
        &v.identity,
        4,
        sign_vote_with(&m3, members_on_2()),
        &mut rng,
    )
    .unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Ancestry(AncestryError::PreviousVoteMissing { slot: 2 })
    );
    assert!(refusal.is_alarm());
    // An older vote of ours is allowed in the evidence, but it is not the previous one.
    let mut stale = vec![own1];
    stale.extend(members_on_2());
    assert_eq!(
        send(
            &mut signer,
            &v.identity,
            4,
            sign_vote_with(&m3, stale),
            &mut rng
        )
        .unwrap_err(),
        Refusal::Ancestry(AncestryError::PreviousVoteMissing { slot: 2 })
    );
    let mut evidence = vec![own2];
    evidence.extend(members_on_2());
    let applied = send(
        &mut signer,
        &v.identity,
        4,
        sign_vote_with(&m3, evidence),
        &mut rng,
    )
    .unwrap();
    assert!(vote_key.verify(&m3, &signature_of(&applied)).is_ok());
}

#[test]
fn the_threshold_rule_needs_the_active_set_at_depth() {
    let mut rng = StdRng::seed_from_u64(15);
    let p = peers(&mut rng);
    let share = Fraction::new(2, 3).unwrap();
    let policy = AncestryPolicy::new(
        p.iter().map(Peer::member).collect(),
        false,
        Some(Threshold { depth: 2, share }),
    )
    .unwrap();
    let (mut signer, _) = new_signer(&mut rng, Some(policy));
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 1, &mut rng);

    // Fewer than three votes in the tower: nothing sits at depth 2.
    vote(&mut signer, &v, 2, &v.vote(&vote_key, &[1], 1), &mut rng);
    vote(&mut signer, &v, 3, &v.vote(&vote_key, &[1, 2], 2), &mut rng);

    let m3 = v.vote(&vote_key, &[1, 2, 3], 3);
    let not_met = |slot, support| {
        Refusal::Ancestry(AncestryError::ThresholdNotMet {
            slot,
            depth: 2,
            support,
            total: 3,
            share,
        })
    };
    let refusal = send(&mut signer, &v.identity, 4, sign_vote(&m3), &mut rng).unwrap_err();
    assert_eq!(refusal, not_met(1, 0));
    assert_eq!(refusal.name(), "threshold_not_met");
    assert!(!refusal.is_alarm());
    // Two of three is not more than two thirds.
    let two = vec![p[0].vote_tx(&[1], 1), p[1].vote_tx(&[1], 1)];
    assert_eq!(
        send(
            &mut signer,
            &v.identity,
            4,
            sign_vote_with(&m3, two),
            &mut rng
        )
        .unwrap_err(),
        not_met(1, 2)
    );
    let all_on_1: Vec<Vec<u8>> = p.iter().map(|peer| peer.vote_tx(&[1], 1)).collect();
    let applied = send(
        &mut signer,
        &v.identity,
        4,
        sign_vote_with(&m3, all_on_1.clone()),
        &mut rng,
    )
    .unwrap();
    assert!(vote_key.verify(&m3, &signature_of(&applied)).is_ok());

    // One vote deeper, slot 2 sits at depth 2: votes holding only slot 1 do not support it.
    let m4 = v.vote(&vote_key, &[1, 2, 3, 4], 4);
    assert_eq!(
        send(
            &mut signer,
            &v.identity,
            5,
            sign_vote_with(&m4, all_on_1),
            &mut rng
        )
        .unwrap_err(),
        not_met(2, 0)
    );
    let all_on_2: Vec<Vec<u8>> = p.iter().map(|peer| peer.vote_tx(&[1, 2], 2)).collect();
    let applied = send(
        &mut signer,
        &v.identity,
        5,
        sign_vote_with(&m4, all_on_2),
        &mut rng,
    )
    .unwrap();
    assert!(vote_key.verify(&m4, &signature_of(&applied)).is_ok());
}

#[test]
fn ancestry_policies_and_fractions_are_checked() {
    let mut rng = StdRng::seed_from_u64(16);
    let p = peers(&mut rng);
    let members: Vec<Member> = p.iter().map(Peer::member).collect();
    assert!(AncestryPolicy::new(Vec::new(), true, None).is_err());
    assert!(AncestryPolicy::new(members.clone(), false, None).is_err());
    assert!(AncestryPolicy::new(vec![members[0], members[0]], true, None).is_err());
    let unstaked = members.iter().map(|m| Member { stake: 0, ..*m }).collect();
    assert!(AncestryPolicy::new(unstaked, true, None).is_err());
    assert!(AncestryPolicy::new(members, true, None).is_ok());

    assert_eq!(Fraction::new(2, 2), None);
    assert_eq!(Fraction::new(1, 0), None);
    let two_thirds = Fraction::new(2, 3).unwrap();
    assert!(two_thirds.exceeded_by(3, 3));
    assert!(!two_thirds.exceeded_by(2, 3));
    assert_eq!(two_thirds.to_string(), "2/3");
}

#[test]
fn a_refreshed_vote_with_a_new_blockhash_is_signed_without_moving_the_tower() {
    let mut rng = StdRng::seed_from_u64(0x5e5);
    let (mut signer, _) = new_signer(&mut rng, None);
    let v = Validator::new(&mut rng);
    let vote_key = register_key(&mut signer, &v, 1, &mut rng);
    let ix = |hash_byte| {
        tower_sync_ix(
            &v.vote_account,
            &vote_key,
            common::tower_sync(&[1, 2], None, hash_byte),
        )
    };
    let with_blockhash = |ix, blockhash: u8| {
        let mut m = common::legacy(&[ix], &v.id());
        m.recent_blockhash = hash(blockhash);
        common::encode(&solana_message::VersionedMessage::Legacy(m))
    };
    let first = with_blockhash(ix(0xa2), 1);
    vote(&mut signer, &v, 2, &first, &mut rng);
    let before = signer.export(&v.id()).unwrap().tower;

    // Same tower, same bank hash, new blockhash: Agave's refresh of a vote that did not land.
    let refresh = with_blockhash(ix(0xa2), 2);
    let sig = vote(&mut signer, &v, 3, &refresh, &mut rng);
    assert!(vote_key.verify(&refresh, &sig).is_ok());
    assert_eq!(signer.export(&v.id()).unwrap().tower, before);

    // The same slots with another bank hash is a vote for another fork: refused.
    let other_fork = with_blockhash(ix(0xb2), 3);
    assert!(matches!(
        send(
            &mut signer,
            &v.identity,
            4,
            sign_vote(&other_fork),
            &mut rng
        )
        .unwrap_err(),
        Refusal::Lockout(TowerError::VoteTooOld { .. })
    ));
}

/// A platform that cannot attest (a TPM unreachable): no vote key is made, nothing changes, and
/// the validator can retry.
struct Unreachable;

impl keyward_enclave::Attester for Unreachable {
    fn attest(
        &mut self,
        _measurement: [u8; 32],
        _keys: &[BoundKey],
        _nonce: &[u8],
        _rng: &mut dyn keyward_crypto::Rng,
    ) -> Result<Evidence, keyward_enclave::AttestFailed> {
        Err(keyward_enclave::AttestFailed(
            "the TPM is unreachable".into(),
        ))
    }
}

#[test]
fn a_platform_that_cannot_attest_makes_no_vote_key_and_changes_nothing() {
    let mut rng = StdRng::seed_from_u64(77);
    let mut signer = Signer::restore(
        common::config(None),
        common::sealer(&[5; 32]),
        Box::new(Unreachable),
        std::iter::empty::<(SolanaPubkey, &[u8])>(),
        [],
        None,
        0,
    )
    .unwrap();
    let identity = SolanaKeypair::generate(&mut rng);
    let account = random_key(&mut rng);
    let refused = send(&mut signer, &identity, 1, register(&account), &mut rng).unwrap_err();
    assert!(matches!(refused, Refusal::Attestation(_)), "{refused}");
    assert_eq!(
        (refused.code(), refused.name()),
        (1104, "attestation_failed")
    );
    assert_eq!(signer.registered(), 0);
    assert!(signer.vote_key(&identity.pubkey()).is_none());
}

#[test]
fn a_counter_at_its_end_is_an_error_not_an_overflow() {
    let restored = Signer::restore(
        common::config(None),
        common::sealer(&[6; 32]),
        Box::new(common::platform()),
        std::iter::empty::<(SolanaPubkey, &[u8])>(),
        [],
        None,
        u64::MAX - 1,
    );
    assert!(matches!(
        restored.err(),
        Some(RestoreError::CounterExhausted(at)) if at == u64::MAX - 1
    ));
}

/// With an attestation policy, a vote key is made only if its evidence passes the policy: `dev`
/// evidence under a policy that refuses it is `attestation_failed` and changes nothing, and
/// passes once the policy accepts this platform and measurement.
#[test]
fn a_vote_key_whose_evidence_fails_the_signer_s_policy_is_not_made() {
    use keyward_enclave::EvidencePolicy;
    let with_policy = |policy: EvidencePolicy| {
        Signer::restore(
            keyward_vote::SignerConfig {
                evidence_policy: Some(policy),
                ..common::config(None)
            },
            common::sealer(&[8; 32]),
            Box::new(common::platform()),
            std::iter::empty::<(SolanaPubkey, &[u8])>(),
            [],
            None,
            0,
        )
        .unwrap()
    };
    let mut rng = StdRng::seed_from_u64(78);
    let identity = SolanaKeypair::generate(&mut rng);
    let account = random_key(&mut rng);

    for refusing in [
        EvidencePolicy::default(),
        EvidencePolicy {
            accept_insecure_dev: true,
            allowed_measurements: vec![[9; 32]],
            ..EvidencePolicy::default()
        },
    ] {
        let mut signer = with_policy(refusing);
        let refused = send(&mut signer, &identity, 1, register(&account), &mut rng).unwrap_err();
        assert_eq!(refused.name(), "attestation_failed", "{refused}");
        assert!(
            refused.to_string().contains("attestation policy"),
            "{refused}"
        );
        assert_eq!(signer.registered(), 0);
    }

    let mut signer = with_policy(EvidencePolicy {
        accept_insecure_dev: true,
        allowed_measurements: vec![common::MEASUREMENT],
        trusted_dev_platforms: vec![common::platform_public()],
        ..EvidencePolicy::default()
    });
    assert!(send(&mut signer, &identity, 1, register(&account), &mut rng).is_ok());
    assert_eq!(signer.registered(), 1);
}
