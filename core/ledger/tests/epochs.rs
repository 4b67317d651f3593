//! Kinds 5–7 (PROTOCOL §16.6): creating epoch 0, handing its secret to later gatekeepers,
//! activation, and every refusal, each shown to change nothing.
#![allow(clippy::unwrap_used)] // tests

mod support;

use std::collections::BTreeSet;

use keyward_crypto::{ChannelKeypair, Envelope, EnvelopePurpose, IdentityPublicKey};
use keyward_hierarchy::{Epoch, EpochChecksum, MasterKey};
use keyward_ledger::*;
use support::*;

/// What a recipient's core does before accepting: opens every pending envelope and checks it
/// against the ledger's master public key.
fn open(net: &Net, me: &Member, epoch: u64) -> Result<MasterKey, SecretError> {
    let state = net.registry.epoch(Epoch(epoch)).unwrap();
    let master = state.record().committee().public_key();
    let envelope = state.pending_for(&me.id.public()).last().unwrap();
    open_epoch_secret(
        &me.channel,
        &me.id.public(),
        &net.registry.genesis().hash(),
        Epoch(epoch),
        &master,
        envelope,
    )
}

fn holders(net: &Net, epoch: u64) -> BTreeSet<IdentityPublicKey> {
    net.registry.epoch(Epoch(epoch)).unwrap().holders().clone()
}

#[test]
fn a_single_founder_activates_epoch_0_at_once_and_the_checksum_chain_verifies() {
    let mut net = Net::new(1);
    let gk = net.gatekeeper();
    let master = MasterKey::generate(&mut net.rng);
    assert_eq!(
        net.registry.checksum(),
        EpochChecksum::genesis(&net.registry.genesis().config().chain)
    );
    let body = create(&mut net, &gk, 0, &master, &[]);
    let applied = net.submit(&gk.id, &body).unwrap();
    assert!(
        applied
            .events
            .contains(&Event::EpochActivated { epoch: Epoch(0) })
    );
    assert_eq!(net.registry.current_epoch(), Some(Epoch(0)));
    let state = net.registry.epoch(Epoch(0)).unwrap();
    assert_eq!(state.status(), EpochStatus::Active);
    assert_eq!(state.record().committee().public_key(), master.public_key());
    chain_verifies(&net);
    let chain = net.registry.genesis().config().chain.clone();
    assert_eq!(
        net.registry.checksum(),
        EpochChecksum::genesis(&chain).next(state.record())
    );
}

#[test]
fn a_founding_committee_of_three_activates_when_both_others_accept() {
    let mut net = Net::new(2);
    let [a, b, c] = [net.gatekeeper(), net.gatekeeper(), net.gatekeeper()];
    let master = MasterKey::generate(&mut net.rng);
    let body = create(&mut net, &a, 0, &master, &[&b, &c]);
    let applied = net.submit(&a.id, &body).unwrap();
    for m in [&b, &c] {
        assert!(applied.events.contains(&Event::SecretPending {
            epoch: Epoch(0),
            recipient: m.id.public()
        }));
    }
    assert_eq!(net.registry.current_epoch(), None);
    // Each recipient's core opens exactly the epoch's key.
    assert!(open(&net, &b, 0).unwrap() == master);
    net.submit(&b.id, &accept(&[0])).unwrap();
    assert_eq!(
        net.registry.epoch(Epoch(0)).unwrap().status(),
        EpochStatus::Pending
    );
    // A founder of a pending epoch may not leave, or it would never activate.
    refused(
        &mut net,
        &c.id,
        &Body::GatekeeperDeregister,
        "epoch_pending",
    );
    assert!(open(&net, &c, 0).unwrap() == master);
    let applied = net.submit(&c.id, &accept(&[0])).unwrap();
    assert!(
        applied
            .events
            .contains(&Event::EpochActivated { epoch: Epoch(0) })
    );
    assert_eq!(
        holders(&net, 0),
        [&a, &b, &c].iter().map(|m| m.id.public()).collect()
    );
    // Three holders: any one may now leave, and stops being a holder.
    net.submit(&a.id, &Body::GatekeeperDeregister).unwrap();
    assert!(!holders(&net, 0).contains(&a.id.public()));
    net.submit(&b.id, &Body::GatekeeperDeregister).unwrap();
    refused(&mut net, &c.id, &Body::GatekeeperDeregister, "last_holder");
}

#[test]
fn a_later_gatekeeper_receives_the_secret_by_handoff() {
    let mut net = Net::new(3);
    let [a, b] = [net.gatekeeper(), net.gatekeeper()];
    let master = MasterKey::generate(&mut net.rng);
    let body = create(&mut net, &a, 0, &master, &[]);
    net.submit(&a.id, &body).unwrap();
    let body = handoff(&mut net, &a, &b, &[(Epoch(0), &master)]);
    let applied = net.submit(&a.id, &body).unwrap();
    assert_eq!(
        applied.events,
        vec![Event::SecretPending {
            epoch: Epoch(0),
            recipient: b.id.public()
        }]
    );
    assert!(open(&net, &b, 0).unwrap() == master);
    net.submit(&b.id, &accept(&[0])).unwrap();
    assert!(holders(&net, 0).contains(&b.id.public()));
    assert!(
        net.registry
            .epoch(Epoch(0))
            .unwrap()
            .pending_for(&b.id.public())
            .next()
            .is_none()
    );
    // Now b may hand it on, and a may leave.
    net.submit(&a.id, &Body::GatekeeperDeregister).unwrap();
    assert_eq!(holders(&net, 0), BTreeSet::from([b.id.public()]));
}

#[test]
fn a_recipient_core_refuses_a_wrong_secret_and_never_accepts_it() {
    let mut net = Net::new(4);
    let [a, b] = [net.gatekeeper(), net.gatekeeper()];
    let master = MasterKey::generate(&mut net.rng);
    let body = create(&mut net, &a, 0, &master, &[]);
    net.submit(&a.id, &body).unwrap();
    // A holder seals some other key: the ledger cannot see it, the recipient's core can.
    let other = MasterKey::generate(&mut net.rng);
    let body = handoff(&mut net, &a, &b, &[(Epoch(0), &other)]);
    net.submit(&a.id, &body).unwrap();
    assert_eq!(open(&net, &b, 0).err(), Some(SecretError::WrongKey));
    // Another channel key cannot open it at all.
    let stranger = Member {
        id: net.key(),
        channel: ChannelKeypair::generate(&mut net.rng),
    };
    let state = net.registry.epoch(Epoch(0)).unwrap();
    let envelope = state.pending_for(&b.id.public()).next().unwrap();
    let err = open_epoch_secret(
        &stranger.channel,
        &b.id.public(),
        &net.registry.genesis().hash(),
        Epoch(0),
        &master.public_key(),
        envelope,
    )
    .unwrap_err();
    assert!(matches!(err, SecretError::Envelope(_)), "{err}");
    // Opened for another epoch's context, it is refused.
    let err = open_epoch_secret(
        &b.channel,
        &b.id.public(),
        &net.registry.genesis().hash(),
        Epoch(1),
        &other.public_key(),
        envelope,
    )
    .unwrap_err();
    assert_eq!(err, SecretError::WrongContext);
}

mod refusals {
    use super::*;

    /// A network with three admitted gatekeepers a, b, c and epoch 0 founded by a alone.
    fn founded(seed: u64) -> (Net, [Member; 3], MasterKey) {
        let mut net = Net::new(seed);
        let members = [net.gatekeeper(), net.gatekeeper(), net.gatekeeper()];
        let master = MasterKey::generate(&mut net.rng);
        let body = create(&mut net, &members[0], 0, &master, &[]);
        net.submit(&members[0].id, &body).unwrap();
        (net, members, master)
    }

    #[test]
    fn create_needs_an_admitted_gatekeeper_as_first_member() {
        let mut net = Net::new(10);
        let [a, b, c] = [net.gatekeeper(), net.gatekeeper(), net.gatekeeper()];
        let late = net.gatekeeper(); // the fourth: beyond the 3 bootstrap gatekeepers
        let worker = net.worker();
        let master = MasterKey::generate(&mut net.rng);
        for author in [&late, &worker] {
            let body = create(&mut net, author, 0, &master, &[]);
            refused(&mut net, &author.id, &body, "wrong_author");
        }
        // Only the committee's first member may write it.
        let body = create(&mut net, &a, 0, &master, &[&b]);
        refused(&mut net, &b.id, &body, "wrong_author");
        // Every member must be admitted.
        for other in [&late, &worker] {
            let body = create(&mut net, &a, 0, &master, &[&b, other]);
            let err = refused(&mut net, &a.id, &body, "not_admitted");
            assert_eq!(
                err,
                Rejected::NotAdmitted {
                    id: other.id.public().into()
                }
            );
        }
        assert_eq!(
            Rejected::NotAdmitted {
                id: c.id.public().into()
            }
            .code(),
            2203
        );
    }

    #[test]
    fn create_must_be_the_next_epoch_and_later_ones_need_an_approved_rotation() {
        let (mut net, [a, b, _], master) = founded(11);
        let body = create(&mut net, &b, 0, &master, &[]);
        let err = refused(&mut net, &b.id, &body, "wrong_epoch");
        assert_eq!(
            err,
            Rejected::WrongEpoch {
                expected: Epoch(1),
                found: Epoch(0)
            }
        );
        let body = create(&mut net, &a, 2, &master, &[]);
        refused(&mut net, &a.id, &body, "wrong_epoch");
        let body = create(&mut net, &a, 1, &master, &[]);
        let err = refused(&mut net, &a.id, &body, "proposal_not_approved");
        assert_eq!(err.code(), 2202);
    }

    #[test]
    fn envelopes_must_be_for_their_member_from_the_author_for_this_epoch() {
        let mut net = Net::new(12);
        let [a, b, c] = [net.gatekeeper(), net.gatekeeper(), net.gatekeeper()];
        let master = MasterKey::generate(&mut net.rng);
        let genesis = net.registry.genesis().hash();
        let good = EpochCreate::new(
            &a.id,
            &genesis,
            Epoch(0),
            &master,
            &[b.public(), c.public()],
            None,
            &mut net.rng,
        )
        .unwrap();
        let reseal =
            |net: &mut Net, sender: &Member, to: keyward_crypto::ChannelPublicKey, aad: Vec<u8>| {
                Envelope::seal(
                    &sender.id,
                    &to,
                    EnvelopePurpose::EpochSecret,
                    &aad,
                    master.to_bytes().expose(),
                    &mut net.rng,
                )
                .unwrap()
            };
        let aad_b = epoch_secret_aad(&genesis, Epoch(0), &b.id.public());
        let cases = [
            // sealed to c's channel key but named for b
            reseal(&mut net, &a, c.channel.public(), aad_b.clone()),
            // for b, but its additional data names another epoch
            reseal(
                &mut net,
                &a,
                b.channel.public(),
                epoch_secret_aad(&genesis, Epoch(1), &b.id.public()),
            ),
            // for b, but signed and sent by c
            reseal(&mut net, &c, b.channel.public(), aad_b.clone()),
            // for b, but another purpose
            Envelope::seal(
                &a.id,
                &b.channel.public(),
                EnvelopePurpose::ContractInput,
                &aad_b,
                b"x",
                &mut net.rng,
            )
            .unwrap(),
        ];
        for envelope in cases {
            let mut bad = good.clone();
            bad.envelopes[0] = envelope;
            let err = refused(
                &mut net,
                &a.id,
                &Body::EpochCreate(Box::new(bad)),
                "bad_secret_envelope",
            );
            assert!(
                matches!(err, Rejected::BadSecretEnvelope { member, .. } if member == b.id.public().into())
            );
        }
        net.submit(&a.id, &Body::EpochCreate(Box::new(good)))
            .unwrap();
    }

    #[test]
    fn malformed_create_bodies_are_refused() {
        let mut net = Net::new(13);
        let [a, b] = [net.gatekeeper(), net.gatekeeper()];
        let master = MasterKey::generate(&mut net.rng);
        let genesis = net.registry.genesis().hash();
        let good = EpochCreate::new(
            &a.id,
            &genesis,
            Epoch(0),
            &master,
            &[b.public()],
            None,
            &mut net.rng,
        )
        .unwrap();
        let mut with_proposal = good.clone();
        with_proposal.proposal = Some(EntryHash([1; 32]));
        let mut twice = good.clone();
        twice.committee[1] = a.id.public();
        let mut empty = good.clone();
        empty.committee.clear();
        empty.envelopes.clear();
        for body in [with_proposal, twice, empty] {
            let body = Body::EpochCreate(Box::new(body)).encode();
            let entry = Entry::sign_raw(&a.id, net.position(&a.id), 5, &body, &mut net.rng);
            let before = net.registry.clone();
            let err = net
                .submit_entry(Entry::from_bytes(entry).unwrap())
                .unwrap_err();
            assert_eq!(err.name(), "malformed_entry", "{err}");
            assert_eq!(net.registry, before);
        }
        // Truncated anywhere, or with a trailing byte: malformed.
        let bytes = Body::EpochCreate(Box::new(good)).encode();
        for len in (0..bytes.len()).step_by(7).chain([bytes.len() - 1]) {
            assert!(Body::decode(Kind::EpochCreate, &bytes[..len]).is_err());
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(Body::decode(Kind::EpochCreate, &long).is_err());
    }

    #[test]
    fn handoffs_need_a_holder_an_admitted_recipient_and_are_not_repeated() {
        let (mut net, [a, b, c], master) = founded(14);
        let late = net.gatekeeper();
        // b holds nothing yet.
        let body = handoff(&mut net, &b, &c, &[(Epoch(0), &master)]);
        refused(&mut net, &b.id, &body, "not_holder");
        let body = handoff(&mut net, &a, &late, &[(Epoch(0), &master)]);
        refused(&mut net, &a.id, &body, "not_admitted");
        let body = handoff(
            &mut net,
            &a,
            &b,
            &[(Epoch(0), &master), (Epoch(3), &master)],
        );
        let err = refused(&mut net, &a.id, &body, "unknown_epoch");
        assert_eq!(err, Rejected::UnknownEpoch { epoch: Epoch(3) });
        let body = handoff(&mut net, &a, &a, &[(Epoch(0), &master)]);
        refused(&mut net, &a.id, &body, "already_holder");
        // A second handoff from the same holder replaces the first (a bad envelope can be
        // corrected).
        let wrong_key = MasterKey::generate(&mut net.rng);
        let body = handoff(&mut net, &a, &b, &[(Epoch(0), &wrong_key)]);
        net.submit(&a.id, &body).unwrap();
        assert_eq!(open(&net, &b, 0).err(), Some(SecretError::WrongKey));
        let body = handoff(&mut net, &a, &b, &[(Epoch(0), &master)]);
        net.submit(&a.id, &body).unwrap();
        let state = net.registry.epoch(Epoch(0)).unwrap();
        assert_eq!(state.pending_for(&b.id.public()).count(), 1);
        assert!(open(&net, &b, 0).unwrap() == master);
        // An envelope to b's channel key but for c's identity.
        let genesis = net.registry.genesis().hash();
        let mut wrong = EpochHandoff::new(
            &a.id,
            &genesis,
            c.public(),
            &[(Epoch(0), &master)],
            &mut net.rng,
        )
        .unwrap();
        wrong.recipient = b.id.public();
        refused(
            &mut net,
            &a.id,
            &Body::EpochHandoff(wrong),
            "bad_secret_envelope",
        );
        net.submit(&b.id, &accept(&[0])).unwrap();
        let body = handoff(&mut net, &b, &a, &[(Epoch(0), &master)]);
        refused(&mut net, &b.id, &body, "already_holder");
    }

    #[test]
    fn accepts_need_a_pending_secret() {
        let (mut net, [a, b, _], _) = founded(15);
        let err = refused(&mut net, &b.id, &accept(&[0]), "no_pending_secret");
        assert_eq!(err, Rejected::NoPendingSecret { epoch: Epoch(0) });
        refused(&mut net, &a.id, &accept(&[0]), "no_pending_secret");
        refused(&mut net, &b.id, &accept(&[1]), "unknown_epoch");
        let worker = net.worker();
        refused(&mut net, &worker.id, &accept(&[0]), "wrong_author");
        // Epoch lists are strictly ascending and non-empty.
        for bytes in [
            vec![0, 0],
            [&[0, 2][..], &1u64.to_be_bytes(), &0u64.to_be_bytes()].concat(),
        ] {
            assert!(Body::decode(Kind::EpochAccept, &bytes).is_err());
        }
    }
}
