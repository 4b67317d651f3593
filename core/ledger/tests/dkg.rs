//! Kinds 18–22 (PROTOCOL §16.10–16.11): epoch 0 made by a DKG on the ledger in threshold mode, a
//! cheating dealer convicted by a complaint anyone can check, epochs reshared by a rotation, a
//! replacement and a refresh, and every refusal shown to change nothing.
#![allow(clippy::unwrap_used)] // tests

mod support;

use std::collections::BTreeMap;

use keyward_crypto::{Envelope, SecretBytes};
use keyward_hierarchy::{Epoch, MasterKey};
use keyward_ledger::dkg::{Member as Recipient, open_part, seal_part};
use keyward_ledger::*;
use keyward_threshold::{Dealer, KeyShare, ShareIndex, SharePart, sign};
use rand::RngCore;
use support::*;

fn threshold_net(seed: u64) -> (Net, Vec<Member>) {
    let mut net = Net::with(seed, |c| c.params.key_threshold = 2);
    let gatekeepers = (0..3).map(|_| net.gatekeeper()).collect();
    (net, gatekeepers)
}

fn run(net: &Net) -> RunId {
    net.registry.dkg().unwrap().id()
}

fn dealer(net: &mut Net, gk: &Member) -> Dealer {
    let run = net.registry.dkg().unwrap();
    let index = run.index_of(&gk.id.public()).unwrap();
    let params = run.params().clone();
    let mut seed = [0u8; 32];
    net.rng.fill_bytes(&mut seed);
    Dealer::new(params, index, &SecretBytes::new(seed)).unwrap()
}

fn recipients(net: &Net, except: ShareIndex) -> Vec<Recipient> {
    net.registry
        .dkg()
        .unwrap()
        .members()
        .iter()
        .filter(|(i, _)| **i != except)
        .map(|(i, id)| Recipient {
            index: *i,
            id: *id,
            channel: net.registry.node(id).unwrap().channel,
        })
        .collect()
}

/// The deal body for `dealer`, with `forge` replacing the part for that member.
fn deal(net: &mut Net, gk: &Member, dealer: &Dealer, forge: Option<ShareIndex>) -> Body {
    let run = run(net);
    let index = net
        .registry
        .dkg()
        .unwrap()
        .index_of(&gk.id.public())
        .unwrap();
    let commitments = net.registry.dkg().unwrap().commitments().clone();
    let parts = dealer.parts(&commitments).unwrap();
    let genesis = net.registry.genesis().hash();
    let envelopes: Vec<Envelope> = recipients(net, index)
        .iter()
        .map(|m| {
            let part = if forge == Some(m.index) {
                SharePart::from_bytes(&SecretBytes::new([9; 32])).unwrap()
            } else {
                parts[&m.index].clone()
            };
            seal_part(&gk.id, &genesis, run, index, m, &part, &mut net.rng).unwrap()
        })
        .collect();
    Body::DkgDeal(DkgDeal {
        run,
        parts: envelopes,
    })
}

/// What a member's core does once every deal is in: open its parts and finish.
#[allow(clippy::result_large_err)] // a test helper
fn finish(net: &Net, gk: &Member, dealer: &Dealer) -> Result<KeyShare, (ShareIndex, Complaint)> {
    let registry = &net.registry;
    let run = registry.dkg().unwrap();
    let me = run.index_of(&gk.id.public()).unwrap();
    let genesis = registry.genesis().hash();
    let mut parts = BTreeMap::new();
    for (dealer_index, dealer_id) in run.members() {
        if *dealer_index == me {
            continue;
        }
        let envelope = run.part(*dealer_index, me).unwrap();
        let opened = open_part(
            &gk.channel,
            &genesis,
            run.id(),
            (*dealer_index, dealer_id),
            (me, &gk.id.public()),
            envelope,
        )
        .unwrap();
        if !run.commitments()[dealer_index].verify_part(me, &opened.part) {
            return Err((
                *dealer_index,
                Complaint {
                    run: run.id(),
                    dealer: *dealer_index,
                    part: *opened.part.to_bytes().expose(),
                    signature: opened.signature,
                },
            ));
        }
        parts.insert(*dealer_index, opened.part);
    }
    let (share, committee) = dealer.finish(run.commitments(), &parts).unwrap();
    assert_eq!(
        &committee,
        registry.epoch(run.id().epoch).unwrap().record().committee()
    );
    Ok(share)
}

fn commit_all(net: &mut Net, gks: &[Member]) -> Vec<Dealer> {
    let dealers: Vec<Dealer> = gks.iter().map(|g| dealer(net, g)).collect();
    for (gk, d) in gks.iter().zip(&dealers) {
        let body = Body::DkgCommit(Box::new(DkgCommit {
            run: run(net),
            commitment: d.commitment().clone(),
        }));
        net.submit(&gk.id, &body).unwrap();
    }
    dealers
}

#[test]
fn epoch_0_is_created_by_a_dkg_and_activates_when_every_member_holds_a_share() {
    let (mut net, gks) = threshold_net(1);
    let started = net.registry.dkg().unwrap();
    assert_eq!(
        started.id(),
        RunId {
            sharing: Sharing::Dkg,
            epoch: Epoch(0),
            attempt: 0
        }
    );
    assert_eq!(started.params().threshold(), 2);
    let dealers = commit_all(&mut net, &gks);
    for (gk, d) in gks.iter().zip(&dealers) {
        assert!(net.registry.epoch(Epoch(0)).is_none());
        let body = deal(&mut net, gk, d, None);
        net.submit(&gk.id, &body).unwrap();
    }
    let state = net.registry.epoch(Epoch(0)).unwrap();
    assert_eq!(state.status(), EpochStatus::Pending);
    assert_eq!(state.record().committee().threshold(), 2);
    let shares: Vec<KeyShare> = gks
        .iter()
        .zip(&dealers)
        .map(|(g, d)| finish(&net, g, d).unwrap())
        .collect();
    for gk in &gks[..2] {
        net.submit(&gk.id, &accept(&[0])).unwrap();
        assert_eq!(net.registry.current_epoch(), None);
    }
    let applied = net.submit(&gks[2].id, &accept(&[0])).unwrap();
    assert!(
        applied
            .events
            .contains(&Event::EpochActivated { epoch: Epoch(0) })
    );
    assert!(net.registry.dkg().is_none(), "the run ends at activation");
    // Any two shares evaluate to what the (never assembled) key gives.
    let committee = net
        .registry
        .epoch(Epoch(0))
        .unwrap()
        .record()
        .committee()
        .clone();
    let element = keyward_threshold::Element::from_input(b"x").unwrap();
    let partials: Vec<_> = shares[1..]
        .iter()
        .map(|s| s.evaluate(&element, &mut net.rng))
        .collect();
    assert!(committee.evaluate_input(b"x", &partials).is_ok());
    // t holders must stay: one of the three may leave, the next may not.
    net.submit(&gks[0].id, &Body::GatekeeperDeregister).unwrap();
    refused(
        &mut net,
        &gks[1].id,
        &Body::GatekeeperDeregister,
        "last_holder",
    );
    // The checksum chain covers the DKG's committee.
    chain_verifies(&net);
}

#[test]
fn a_cheating_dealer_is_convicted_by_a_complaint_and_the_rest_complete() {
    let (mut net, gks) = threshold_net(2);
    let dealers = commit_all(&mut net, &gks);
    let index = |net: &Net, gk: &Member| {
        net.registry
            .dkg()
            .unwrap()
            .index_of(&gk.id.public())
            .unwrap()
    };
    let victim = index(&net, &gks[2]);
    // Dealer 0 sends member 2 a part off its polynomial, with a valid signature.
    let body = deal(&mut net, &gks[0], &dealers[0], Some(victim));
    net.submit(&gks[0].id, &body).unwrap();
    // A complaint before the others dealt is possible; a false one is refused and changes nothing.
    for (gk, d) in gks[1..].iter().zip(&dealers[1..]) {
        let body = deal(&mut net, gk, d, None);
        net.submit(&gk.id, &body).unwrap();
    }
    assert!(net.registry.epoch(Epoch(0)).is_some());
    // Member 1's parts are all fine: it cannot complain about dealer 0.
    let honest = finish(&net, &gks[1], &dealers[1]);
    assert!(honest.is_ok());
    let (accused, complaint) = finish(&net, &gks[2], &dealers[2]).unwrap_err();
    assert_eq!(accused, index(&net, &gks[0]));
    // Tampering with the revealed part breaks the dealer's signature: refused.
    let mut forged = complaint.clone();
    forged.part[0] ^= 1;
    refused(
        &mut net,
        &gks[2].id,
        &Body::DkgComplaint(forged),
        "bad_complaint",
    );
    // Accusing an honest dealer with its genuine part is refused.
    let me = index(&net, &gks[2]);
    let run_id = run(&net);
    let honest_dealer = index(&net, &gks[1]);
    let envelope = net
        .registry
        .dkg()
        .unwrap()
        .part(honest_dealer, me)
        .unwrap()
        .clone();
    let opened = open_part(
        &gks[2].channel,
        &net.registry.genesis().hash(),
        run_id,
        (honest_dealer, &gks[1].id.public()),
        (me, &gks[2].id.public()),
        &envelope,
    )
    .unwrap();
    let false_accusation = Complaint {
        run: run_id,
        dealer: honest_dealer,
        part: *opened.part.to_bytes().expose(),
        signature: opened.signature,
    };
    refused(
        &mut net,
        &gks[2].id,
        &Body::DkgComplaint(false_accusation),
        "bad_complaint",
    );
    // The genuine complaint is upheld: the attempt and its epoch are abandoned.
    let abandoned = net
        .registry
        .epoch(Epoch(0))
        .unwrap()
        .record()
        .committee()
        .public_key();
    let applied = net
        .submit(&gks[2].id, &Body::DkgComplaint(complaint))
        .unwrap();
    assert!(applied.events.contains(&Event::DealerExcluded {
        run: run_id,
        dealer: gks[0].id.public()
    }));
    assert!(
        applied
            .events
            .contains(&Event::EpochAbandoned { epoch: Epoch(0) })
    );
    assert!(net.registry.epoch(Epoch(0)).is_none());
    let next = net.registry.dkg().unwrap();
    assert_eq!(
        next.id(),
        RunId {
            sharing: Sharing::Dkg,
            epoch: Epoch(0),
            attempt: 1
        }
    );
    assert!(next.index_of(&gks[0].id.public()).is_none());
    assert!(next.excluded().contains(&gks[0].id.public()));
    // The council abandoning the fresh attempt (its proposal raced the complaint) excludes
    // nobody else: no member has had a chance to act in it.
    let abandon = Body::CouncilPropose(Box::new(Proposal {
        ttl: 10,
        action: Action::AbandonEpoch { epoch: Epoch(0) },
    }));
    let proposal = net.as_council(0, &abandon).unwrap().hash;
    let applied = net
        .as_council(1, &Body::CouncilApprove(Approval { proposal }))
        .unwrap();
    let next = net
        .registry
        .dkg()
        .unwrap_or_else(|| panic!("{:?}", applied.events));
    assert_eq!(next.id().attempt, 2);
    assert_eq!(next.members().len(), 2);
    // The excluded dealer can no longer take part; the two honest members finish 2-of-2.
    let stale = Body::DkgCommit(Box::new(DkgCommit {
        run: run(&net),
        commitment: dealers[0].commitment().clone(),
    }));
    refused(&mut net, &gks[0].id, &stale, "not_dkg_member");
    let dealers = commit_all(&mut net, &gks[1..]);
    for (gk, d) in gks[1..].iter().zip(&dealers) {
        let body = deal(&mut net, gk, d, None);
        net.submit(&gk.id, &body).unwrap();
    }
    let master = net
        .registry
        .epoch(Epoch(0))
        .unwrap()
        .record()
        .committee()
        .public_key();
    assert_ne!(master, abandoned);
    for (gk, d) in gks[1..].iter().zip(&dealers) {
        finish(&net, gk, d).unwrap();
        net.submit(&gk.id, &accept(&[0])).unwrap();
    }
    assert_eq!(net.registry.current_epoch(), Some(Epoch(0)));
    // The surviving members kept their indices.
    let record = net.registry.epoch(Epoch(0)).unwrap().record().clone();
    assert_eq!(
        record.committee().members().collect::<Vec<_>>(),
        vec![ShareIndex::new(2).unwrap(), ShareIndex::new(3).unwrap()]
    );
}

#[test]
fn dkg_entries_out_of_turn_or_out_of_mode_are_refused_and_change_nothing() {
    let (mut net, gks) = threshold_net(3);
    let dealers: Vec<Dealer> = gks.iter().map(|g| dealer(&mut net, g)).collect();
    let commit = |net: &Net, d: &Dealer| {
        Body::DkgCommit(Box::new(DkgCommit {
            run: run(net),
            commitment: d.commitment().clone(),
        }))
    };
    // Someone else's commitment: its proof of knowledge is for another index.
    let theirs = commit(&net, &dealers[1]);
    refused(&mut net, &gks[0].id, &theirs, "bad_dkg_commitment");
    // An outsider, and another attempt.
    let outsider = net.gatekeeper();
    let mine = commit(&net, &dealers[0]);
    refused(&mut net, &outsider.id, &mine, "not_dkg_member");
    let mut wrong_run = DkgCommit {
        run: run(&net),
        commitment: dealers[0].commitment().clone(),
    };
    wrong_run.run.attempt = 5;
    refused(
        &mut net,
        &gks[0].id,
        &Body::DkgCommit(Box::new(wrong_run)),
        "no_dkg_run",
    );
    net.submit(&gks[0].id, &commit(&net, &dealers[0])).unwrap();
    refused(&mut net, &gks[0].id, &mine, "dkg_out_of_turn");
    // Dealing before every member committed.
    let early = Body::DkgDeal(DkgDeal {
        run: run(&net),
        parts: Vec::new(),
    });
    let entry = net.sign(&gks[0].id, &early);
    assert!(net.submit_entry(entry).is_err());
    for (gk, d) in gks[1..].iter().zip(&dealers[1..]) {
        net.submit(&gk.id, &commit(&net, d)).unwrap();
    }
    // A deal whose parts are sealed to the wrong members (swapped).
    let Body::DkgDeal(mut swapped) = deal(&mut net, &gks[0], &dealers[0], None) else {
        unreachable!()
    };
    swapped.parts.swap(0, 1);
    refused(
        &mut net,
        &gks[0].id,
        &Body::DkgDeal(swapped),
        "bad_share_part",
    );
    // Classic entries are refused in threshold mode, and a gatekeeper in the run may not leave.
    let master = MasterKey::generate(&mut net.rng);
    let body = create(&mut net, &gks[0], 0, &master, &[]);
    refused(&mut net, &gks[0].id, &body, "wrong_key_mode");
    refused(
        &mut net,
        &gks[1].id,
        &Body::GatekeeperDeregister,
        "epoch_pending",
    );
    // Accepting before the epoch exists.
    refused(&mut net, &gks[0].id, &accept(&[0]), "unknown_epoch");
}

#[test]
fn classic_mode_refuses_dkg_entries() {
    let mut net = Net::new(4);
    let gk = net.gatekeeper();
    assert!(net.registry.dkg().is_none());
    let body = Body::DkgComplaint(Complaint {
        run: RunId {
            sharing: Sharing::Dkg,
            epoch: Epoch(0),
            attempt: 0,
        },
        dealer: ShareIndex::new(1).unwrap(),
        part: [0; 32],
        signature: gk.id.sign(
            keyward_crypto::SigningPurpose::SharePart,
            b"x",
            &mut net.rng,
        ),
    });
    refused(&mut net, &gk.id, &body, "wrong_key_mode");
}

#[test]
fn a_key_threshold_above_the_bootstrap_set_is_an_invalid_genesis() {
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(5);
    let council = vec![keyward_crypto::IdentityKeypair::generate(&mut rng)];
    let platform = keyward_enclave::DevPlatformKey::generate(&mut rng);
    for (t, bootstrap) in [(0, 3), (4, 3), (2, 65)] {
        let mut cfg = config(&council, &platform);
        cfg.params.key_threshold = t;
        cfg.params.bootstrap_gatekeepers = bootstrap;
        let genesis = Entry::sign(
            &council[0],
            genesis_position(),
            &Body::Genesis(Box::new(cfg)),
            &mut rng,
        );
        assert!(
            Registry::from_genesis(&genesis, &genesis.hash()).is_err(),
            "t = {t}, bootstrap = {bootstrap}"
        );
    }
}

#[test]
fn the_council_abandons_a_stalled_attempt_and_the_next_runs_without_the_silent_member() {
    let (mut net, gks) = threshold_net(6);
    // Only the first two commit; the third is down.
    let dealers = commit_all(&mut net, &gks[..2]);
    let stalled = run(&net);
    let propose = Body::CouncilPropose(Box::new(Proposal {
        ttl: 10,
        action: Action::AbandonEpoch { epoch: Epoch(0) },
    }));
    let proposal = net.as_council(0, &propose).unwrap().hash;
    let applied = net
        .as_council(1, &Body::CouncilApprove(Approval { proposal }))
        .unwrap();
    assert!(applied.events.contains(&Event::RunStarted {
        run: RunId {
            sharing: Sharing::Dkg,
            epoch: Epoch(0),
            attempt: stalled.attempt + 1
        }
    }));
    let next = net.registry.dkg().unwrap();
    assert_eq!(next.members().len(), 2);
    assert!(next.excluded().contains(&gks[2].id.public()));
    // The two live members finish without it (their old commitments were for the old attempt).
    drop(dealers);
    let dealers = commit_all(&mut net, &gks[..2]);
    for (gk, d) in gks[..2].iter().zip(&dealers) {
        let body = deal(&mut net, gk, d, None);
        net.submit(&gk.id, &body).unwrap();
    }
    for (gk, d) in gks[..2].iter().zip(&dealers) {
        finish(&net, gk, d).unwrap();
        net.submit(&gk.id, &accept(&[0])).unwrap();
    }
    assert_eq!(net.registry.current_epoch(), Some(Epoch(0)));
}

// ---- Resharing (kinds 21–22, PROTOCOL §16.11) ----

/// Runs the DKG under way to the end with `gks`, its members; returns their shares.
fn complete_dkg(net: &mut Net, gks: &[Member]) -> Vec<KeyShare> {
    let dealers = commit_all(net, gks);
    for (gk, d) in gks.iter().zip(&dealers) {
        let body = deal(net, gk, d, None);
        net.submit(&gk.id, &body).unwrap();
    }
    let epoch = run(net).epoch;
    let shares = gks
        .iter()
        .zip(&dealers)
        .map(|(g, d)| finish(net, g, d).unwrap())
        .collect();
    for gk in gks {
        net.submit(&gk.id, &accept(&[epoch.0])).unwrap();
    }
    shares
}

/// The council proposes `action` and approves it (two of three).
fn decide(net: &mut Net, action: Action) -> (EntryHash, Applied) {
    let propose = Body::CouncilPropose(Box::new(Proposal { ttl: 50, action }));
    let proposal = net.as_council(0, &propose).unwrap().hash;
    let applied = net
        .as_council(1, &Body::CouncilApprove(Approval { proposal }))
        .unwrap();
    (proposal, applied)
}

fn reshare_run(net: &Net, epoch: u64) -> ReshareRun {
    net.registry.reshares()[&Epoch(epoch)].clone()
}

/// `gk`'s resharing deal of `share` for `epoch`, with `forge` replacing one new member's part.
fn reshare_deal(
    net: &mut Net,
    gk: &Member,
    share: &KeyShare,
    epoch: u64,
    forge: Option<ShareIndex>,
) -> Body {
    let run = reshare_run(net, epoch);
    let mut seed = [0u8; 32];
    net.rng.fill_bytes(&mut seed);
    let (commitment, parts) = run
        .resharing()
        .deal(share, &SecretBytes::new(seed))
        .unwrap();
    let genesis = net.registry.genesis().hash();
    let envelopes = run
        .members()
        .iter()
        .map(|(i, id)| {
            let member = Recipient {
                index: *i,
                id: *id,
                channel: net.registry.node(id).unwrap().channel,
            };
            let part = if forge == Some(*i) {
                SharePart::from_bytes(&SecretBytes::new([9; 32])).unwrap()
            } else {
                parts[i].clone()
            };
            seal_part(
                &gk.id,
                &genesis,
                run.id(),
                share.index(),
                &member,
                &part,
                &mut net.rng,
            )
            .unwrap()
        })
        .collect();
    Body::ReshareDeal(Box::new(ReshareDeal {
        run: run.id(),
        commitment,
        parts: envelopes,
    }))
}

/// What a new member's core does once the dealers are chosen: open, check, finish or complain.
#[allow(clippy::result_large_err)] // a test helper
fn reshare_finish(net: &Net, gk: &Member, epoch: u64) -> Result<KeyShare, Complaint> {
    let run = &net.registry.reshares()[&Epoch(epoch)];
    let me = run.index_of(&gk.id.public()).unwrap();
    let genesis = net.registry.genesis().hash();
    let mut parts = BTreeMap::new();
    for (dealer, commitment) in run.commitments() {
        let opened = open_part(
            &gk.channel,
            &genesis,
            run.id(),
            (*dealer, &run.old_members()[dealer]),
            (me, &gk.id.public()),
            run.part(*dealer, me).unwrap(),
        )
        .unwrap();
        if !commitment.verify_part(me, &opened.part) {
            return Err(Complaint {
                run: run.id(),
                dealer: *dealer,
                part: *opened.part.to_bytes().expose(),
                signature: opened.signature,
            });
        }
        parts.insert(*dealer, opened.part);
    }
    let (share, committee) = run
        .resharing()
        .finish(me, run.commitments(), &parts)
        .unwrap();
    assert_eq!(Some(&committee), run.committee());
    Ok(share)
}

/// The VOPRF output `shares` give for a fixed input, checked against `epoch`'s current
/// committee (`None` if they do not combine).
fn output(net: &mut Net, epoch: u64, shares: &[&KeyShare]) -> Option<[u8; 64]> {
    let committee = net
        .registry
        .epoch(Epoch(epoch))
        .unwrap()
        .current()
        .committee()
        .clone();
    let element = keyward_threshold::Element::from_input(b"cluster").unwrap();
    let partials: Vec<_> = shares
        .iter()
        .map(|s| s.evaluate(&element, &mut net.rng))
        .collect();
    let (out, _) = committee.evaluate_input(b"cluster", &partials).ok()?;
    Some(*out.expose())
}

#[test]
fn a_threshold_rotation_reshares_epoch_0_and_leaves_the_old_shares_useless() {
    let (mut net, old) = threshold_net(7);
    let old_shares = complete_dkg(&mut net, &old);
    let expected = output(&mut net, 0, &[&old_shares[0], &old_shares[2]]).unwrap();
    let new: Vec<Member> = (0..3).map(|_| net.gatekeeper()).collect();
    let committee: Vec<_> = new.iter().map(|m| m.id.public()).collect();
    let (proposal, applied) = decide(&mut net, Action::RotateMasterKey { committee });
    assert!(
        applied
            .events
            .contains(&Event::RotationApproved { proposal })
    );
    // A DKG for epoch 1 among the new committee, and a resharing of epoch 0 to it.
    assert_eq!(run(&net).epoch, Epoch(1));
    let reshare = reshare_run(&net, 0);
    assert_eq!(reshare.id().sharing, Sharing::Reshare);
    assert_eq!(reshare.members().len(), 3);
    // Nobody leaves while the change runs.
    refused(
        &mut net,
        &old[0].id,
        &Body::GatekeeperDeregister,
        "rotation_in_progress",
    );

    // A new member holds no share to deal; a dealer cannot pass off another's share.
    let body = reshare_deal(&mut net, &new[0], &old_shares[1], 0, None);
    refused(&mut net, &new[0].id, &body, "not_dkg_member");
    let Body::ReshareDeal(mut stolen) = reshare_deal(&mut net, &old[1], &old_shares[1], 0, None)
    else {
        unreachable!()
    };
    let Body::ReshareDeal(other) = reshare_deal(&mut net, &old[2], &old_shares[2], 0, None) else {
        unreachable!()
    };
    stolen.commitment = other.commitment.clone();
    refused(
        &mut net,
        &old[1].id,
        &Body::ReshareDeal(stolen),
        "bad_dkg_commitment",
    );

    // Old member 0 deals a wrong part to new member 2; old member 1 deals honestly. Two deals
    // (the old threshold) choose the dealers; a third is refused.
    let two = ShareIndex::new(2).unwrap();
    let body = reshare_deal(&mut net, &old[0], &old_shares[0], 0, Some(two));
    net.submit(&old[0].id, &body).unwrap();
    let body = reshare_deal(&mut net, &old[1], &old_shares[1], 0, None);
    let applied = net.submit(&old[1].id, &body).unwrap();
    assert!(
        applied
            .events
            .contains(&Event::DealersChosen { run: reshare.id() })
    );
    let body = reshare_deal(&mut net, &old[2], &old_shares[2], 0, None);
    refused(&mut net, &old[2].id, &body, "dkg_out_of_turn");

    // New member 1 (index 2) proves the part wrong: the run restarts without old member 0.
    let complaint = reshare_finish(&net, &new[1], 0).unwrap_err();
    let mut false_accusation = complaint.clone();
    false_accusation.dealer = ShareIndex::new(2).unwrap();
    refused(
        &mut net,
        &new[1].id,
        &Body::ReshareComplaint(false_accusation),
        "bad_complaint",
    );
    // The same revealed part is no DKG complaint: the label differs.
    refused(
        &mut net,
        &new[1].id,
        &Body::DkgComplaint(complaint.clone()),
        "no_dkg_run",
    );
    let applied = net
        .submit(&new[1].id, &Body::ReshareComplaint(complaint))
        .unwrap();
    assert!(applied.events.contains(&Event::DealerExcluded {
        run: reshare.id(),
        dealer: old[0].id.public()
    }));
    let restarted = reshare_run(&net, 0);
    assert_eq!(restarted.id().attempt, reshare.id().attempt + 1);
    let body = reshare_deal(&mut net, &old[0], &old_shares[0], 0, None);
    refused(&mut net, &old[0].id, &body, "not_dkg_member");
    for (gk, share) in old[1..].iter().zip(&old_shares[1..]) {
        let body = reshare_deal(&mut net, gk, share, 0, None);
        net.submit(&gk.id, &body).unwrap();
    }

    // The new committee makes epoch 1 by DKG; it stays pending until epoch 0 is reshared.
    complete_dkg(&mut net, &new);
    assert_eq!(net.registry.current_epoch(), Some(Epoch(0)));
    let new_shares: Vec<KeyShare> = new
        .iter()
        .map(|g| reshare_finish(&net, g, 0).unwrap())
        .collect();
    for gk in &new[..2] {
        net.submit(&gk.id, &accept(&[0])).unwrap();
    }
    // Until the last new member accepts, epoch 0 stays with the old committee.
    assert_eq!(
        output(&mut net, 0, &[&old_shares[1], &old_shares[2]]),
        Some(expected)
    );
    let applied = net.submit(&new[2].id, &accept(&[0])).unwrap();
    assert!(
        applied
            .events
            .contains(&Event::Reshared { epoch: Epoch(0) })
    );
    assert!(
        applied
            .events
            .contains(&Event::EpochActivated { epoch: Epoch(1) })
    );
    assert!(
        applied
            .events
            .contains(&Event::ProposalExecuted { proposal })
    );
    for gk in &old {
        assert!(!net.registry.node(&gk.id.public()).unwrap().is_active());
    }
    assert!(net.registry.reshares().is_empty());
    assert_eq!(net.registry.rotation(), None);

    // Epoch 0: same master public key and the same derived keys under the new shares; the old
    // shares are useless, alone or mixed with new ones.
    let state = net.registry.epoch(Epoch(0)).unwrap();
    assert_eq!(
        state.current().committee().public_key(),
        state.record().committee().public_key()
    );
    assert_ne!(state.current(), state.record());
    assert_eq!(
        state.holders(),
        &new.iter().map(|m| m.id.public()).collect()
    );
    assert_eq!(
        output(&mut net, 0, &[&new_shares[0], &new_shares[2]]),
        Some(expected)
    );
    assert_eq!(output(&mut net, 0, &[&old_shares[0], &old_shares[1]]), None);
    assert_eq!(output(&mut net, 0, &[&old_shares[0], &new_shares[1]]), None);
    // Checksums never change: the chain still verifies over the founding records.
    chain_verifies(&net);
}

#[test]
fn a_refresh_gives_new_shares_of_the_same_key_and_a_replacement_moves_them() {
    let (mut net, gks) = threshold_net(8);
    let shares = complete_dkg(&mut net, &gks);
    let expected = output(&mut net, 0, &[&shares[0], &shares[1]]).unwrap();
    let (refresh, _) = decide(&mut net, Action::RefreshShares);
    assert_eq!(
        reshare_run(&net, 0).members(),
        net.registry
            .epoch(Epoch(0))
            .unwrap()
            .current()
            .gatekeepers()
    );
    // One holder is down: the other two deal.
    for (gk, share) in gks[1..].iter().zip(&shares[1..]) {
        let body = reshare_deal(&mut net, gk, share, 0, None);
        net.submit(&gk.id, &body).unwrap();
    }
    let fresh: Vec<KeyShare> = gks
        .iter()
        .map(|g| reshare_finish(&net, g, 0).unwrap())
        .collect();
    for gk in &gks {
        net.submit(&gk.id, &accept(&[0])).unwrap();
    }
    assert_eq!(
        net.registry.proposal(&refresh).unwrap().status,
        ProposalStatus::Executed
    );
    assert_eq!(output(&mut net, 0, &[&fresh[0], &fresh[2]]), Some(expected));
    assert_eq!(output(&mut net, 0, &[&shares[0], &fresh[1]]), None);

    // Replace the set with two of the old members and a newcomer: epoch 0 moves to them, and
    // the member left out is removed once it has.
    let newcomer = net.gatekeeper();
    let set = [gks[0].id.public(), gks[1].id.public(), newcomer.id.public()];
    let (replace, _) = decide(
        &mut net,
        Action::ReplaceGatekeepers {
            set: set.into_iter().collect(),
        },
    );
    for (gk, share) in gks[..2].iter().zip(&fresh[..2]) {
        let body = reshare_deal(&mut net, gk, share, 0, None);
        net.submit(&gk.id, &body).unwrap();
    }
    let members: Vec<&Member> = gks[..2].iter().chain([&newcomer]).collect();
    let moved: Vec<KeyShare> = members
        .iter()
        .map(|g| reshare_finish(&net, g, 0).unwrap())
        .collect();
    for gk in &members {
        net.submit(&gk.id, &accept(&[0])).unwrap();
    }
    assert_eq!(
        net.registry.proposal(&replace).unwrap().status,
        ProposalStatus::Executed
    );
    assert!(!net.registry.node(&gks[2].id.public()).unwrap().is_active());
    assert_eq!(output(&mut net, 0, &[&moved[1], &moved[2]]), Some(expected));
    assert_eq!(output(&mut net, 0, &[&fresh[2], &moved[0]]), None);
}

#[test]
fn classic_mode_cannot_refresh() {
    let mut net = Net::new(9);
    let g = net.gatekeeper();
    let master = MasterKey::generate(&mut net.rng);
    let body = create(&mut net, &g, 0, &master, &[]);
    net.submit(&g.id, &body).unwrap();
    let propose = Body::CouncilPropose(Box::new(Proposal {
        ttl: 10,
        action: Action::RefreshShares,
    }));
    let err = net.as_council(0, &propose).unwrap_err();
    assert_eq!(err.name(), "invalid_action");
}

// ---- Partial reports (kind 23, PROTOCOL §16.12) ----

/// `gk`'s signed report body for `partial` of `request`, claiming verification share `y`.
fn partial_report(
    net: &mut Net,
    gk: &Member,
    request: &keyward_hierarchy::ClusterKeyRequest,
    y: keyward_threshold::Element,
    partial: &keyward_threshold::PartialEvaluation,
) -> Body {
    let partial = partial.to_bytes();
    let message = partial_message(&net.registry.genesis().hash(), request, &y, &partial);
    let signature = gk.id.sign(
        keyward_crypto::SigningPurpose::PartialEvaluation,
        &message,
        &mut net.rng,
    );
    Body::PartialReport(Box::new(PartialReport {
        gatekeeper: gk.id.public(),
        request: request.clone(),
        verification: y,
        partial,
        signature,
    }))
}

#[test]
fn a_signed_wrong_partial_slashes_its_gatekeeper_and_nothing_else_does() {
    let (mut net, gks) = threshold_net(10);
    let shares = complete_dkg(&mut net, &gks);
    let worker = net.worker();
    let request = keyward_hierarchy::ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: keyward_hierarchy::ClusterId::new("c1").unwrap(),
        generation: keyward_hierarchy::Generation(0),
    };
    let y = shares[0].verification_share();
    // A valid partial convicts nobody.
    let good = request.evaluate(&shares[0], &mut net.rng);
    let body = partial_report(&mut net, &gks[0], &request, y, &good);
    refused(&mut net, &worker.id, &body, "bad_partial_report");
    // Only workers report.
    let wrong = keyward_threshold::KeyShare::new(
        shares[0].index(),
        &keyward_threshold::SecretKey::random(&mut net.rng),
    );
    let bad = request.evaluate(&wrong, &mut net.rng);
    let body = partial_report(&mut net, &gks[0], &request, y, &bad);
    refused(&mut net, &gks[1].id, &body, "wrong_author");
    // Signed for a verification share the committee does not hold: nothing to check against.
    let other = partial_report(
        &mut net,
        &gks[0],
        &request,
        wrong.verification_share(),
        &bad,
    );
    refused(&mut net, &worker.id, &other, "bad_partial_report");
    // Another member's index, even with a valid proof for it, convicts the signer.
    let borrowed = request.evaluate(&shares[1], &mut net.rng);
    let stolen = partial_report(&mut net, &gks[0], &request, y, &borrowed);
    let stake = net.registry.node(&gks[0].id.public()).unwrap().stake;
    let applied = net.submit(&worker.id, &stolen).unwrap();
    assert!(matches!(
        &applied.events[..],
        [Event::GatekeeperSlashed { gatekeeper, amount, .. }]
            if *gatekeeper == gks[0].id.public() && *amount == stake / 10
    ));
    refused(&mut net, &worker.id, &body, "already_reported");
    // A wrong partial from another member is its own offence.
    let wrong2 = keyward_threshold::KeyShare::new(
        shares[1].index(),
        &keyward_threshold::SecretKey::random(&mut net.rng),
    );
    let bad2 = request.evaluate(&wrong2, &mut net.rng);
    let body = partial_report(
        &mut net,
        &gks[1],
        &request,
        shares[1].verification_share(),
        &bad2,
    );
    net.submit(&worker.id, &body).unwrap();
}

#[test]
fn classic_mode_refuses_partial_reports() {
    let mut net = Net::new(11);
    let g = net.gatekeeper();
    let worker = net.worker();
    let master = MasterKey::generate(&mut net.rng);
    let body = create(&mut net, &g, 0, &master, &[]);
    net.submit(&g.id, &body).unwrap();
    let request = keyward_hierarchy::ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: keyward_hierarchy::ClusterId::new("c1").unwrap(),
        generation: keyward_hierarchy::Generation(0),
    };
    let share = master.classic_share(ShareIndex::new(1).unwrap());
    let partial = request.evaluate(&share, &mut net.rng);
    let body = partial_report(&mut net, &g, &request, share.verification_share(), &partial);
    refused(&mut net, &worker.id, &body, "wrong_key_mode");
}

#[test]
fn a_rotation_whose_dkg_fails_is_abandoned_and_frees_the_network() {
    let (mut net, old) = threshold_net(12);
    complete_dkg(&mut net, &old);
    let new: Vec<Member> = (0..2).map(|_| net.gatekeeper()).collect();
    let committee = new.iter().map(|m| m.id.public()).collect();
    let (proposal, _) = decide(&mut net, Action::RotateMasterKey { committee });
    assert!(!net.registry.reshares().is_empty());
    // A committee of exactly t: one upheld complaint leaves too few members.
    let dealers = commit_all(&mut net, &new);
    let body = deal(
        &mut net,
        &new[0],
        &dealers[0],
        Some(ShareIndex::new(2).unwrap()),
    );
    net.submit(&new[0].id, &body).unwrap();
    let body = deal(&mut net, &new[1], &dealers[1], None);
    net.submit(&new[1].id, &body).unwrap();
    let (_, complaint) = finish(&net, &new[1], &dealers[1]).unwrap_err();
    let applied = net
        .submit(&new[1].id, &Body::DkgComplaint(complaint))
        .unwrap();
    assert!(
        applied
            .events
            .contains(&Event::DkgFailed { epoch: Epoch(1) })
    );
    assert!(applied.events.contains(&Event::ProposalFailed { proposal }));
    assert_eq!(
        net.registry.proposal(&proposal).unwrap().status,
        ProposalStatus::Abandoned
    );
    assert_eq!(net.registry.rotation(), None);
    assert!(net.registry.reshares().is_empty());
    assert_eq!(net.registry.current_epoch(), Some(Epoch(0)));
    // The network is free again: a gatekeeper may leave, and the council may refresh.
    net.submit(&old[0].id, &Body::GatekeeperDeregister).unwrap();
    let (refresh, _) = decide(&mut net, Action::RefreshShares);
    // The refresh reshares to the holders that are left, keeping their indices.
    let members = reshare_run(&net, 0).members().clone();
    assert_eq!(members.len(), 2);
    assert!(!members.values().any(|id| *id == old[0].id.public()));
    assert_eq!(
        net.registry.proposal(&refresh).unwrap().status,
        ProposalStatus::Approved
    );
}

// ---- Committee signatures (kinds 24–25, PROTOCOL §16.13) ----

/// `gk`'s commitment (nonces from `seed`) to the run for `statement`.
fn sign_commit(
    net: &Net,
    statement: &Statement,
    share: &KeyShare,
    seed: u8,
) -> (Body, keyward_threshold::SigningNonces) {
    let (nonces, commitment) =
        keyward_threshold::sign::commit(share, &SecretBytes::new([seed; 32]));
    let body = Body::SignCommit(Box::new(SignCommit {
        statement: statement.clone(),
        attempt: net.registry.signing()[statement].attempt(),
        commitment,
    }));
    (body, nonces)
}

/// `share`'s signature share of `statement` (of `message`, normally the registry's).
fn sign_share(
    net: &Net,
    statement: &Statement,
    share: &KeyShare,
    nonces: keyward_threshold::SigningNonces,
    message: &[u8],
) -> Body {
    let run = &net.registry.signing()[statement];
    let current = net.registry.epoch(statement.epoch()).unwrap().current();
    let signed = keyward_threshold::sign::sign(
        share,
        current.committee(),
        message,
        run.commitments(),
        nonces,
    )
    .unwrap();
    Body::SignShare(Box::new(SignShare {
        statement: statement.clone(),
        attempt: run.attempt(),
        share: signed,
    }))
}

fn message(net: &Net, statement: &Statement) -> Vec<u8> {
    net.registry
        .certified(statement)
        .unwrap()
        .message(&net.registry.genesis().hash())
}

#[test]
fn the_committee_certifies_the_epoch_checksum_and_a_wrong_share_is_slashed_and_excluded() {
    let (mut net, gks) = threshold_net(40);
    let shares = complete_dkg(&mut net, &gks);
    let statement = Statement::EpochChecksum(Epoch(0));
    assert_eq!(net.registry.signing()[&statement].attempt(), 0);
    let master = net
        .registry
        .epoch(Epoch(0))
        .unwrap()
        .record()
        .committee()
        .public_key();
    let genesis = net.registry.genesis().hash();

    // Attempt 0: members 0 and 1 commit and are the signers; member 1 signs another message.
    let (c0, n0) = sign_commit(&net, &statement, &shares[0], 1);
    let (c1, n1) = sign_commit(&net, &statement, &shares[1], 2);
    net.submit(&gks[0].id, &c0).unwrap();
    // A share before the signers are chosen.
    let early = Body::SignShare(Box::new(SignShare {
        statement: statement.clone(),
        attempt: 0,
        share: keyward_threshold::SignatureShare::from_bytes(&[0; 32]).unwrap(),
    }));
    refused(&mut net, &gks[0].id, &early, "signing_out_of_turn");
    net.submit(&gks[1].id, &c1).unwrap();
    let (c2, _) = sign_commit(&net, &statement, &shares[2], 3);
    refused(&mut net, &gks[2].id, &c2, "signing_out_of_turn");
    let good = sign_share(&net, &statement, &shares[0], n0, &message(&net, &statement));
    let bad = sign_share(&net, &statement, &shares[1], n1, b"something else");
    net.submit(&gks[0].id, &good).unwrap();
    refused(&mut net, &gks[0].id, &good, "signing_out_of_turn");
    let stake = net.registry.node(&gks[1].id.public()).unwrap().stake;
    let applied = net.submit(&gks[1].id, &bad).unwrap();
    assert!(matches!(
        &applied.events[..],
        [Event::SignerSlashed { signer, .. }] if *signer == gks[1].id.public()
    ));
    assert!(net.registry.node(&gks[1].id.public()).unwrap().stake < stake);
    assert!(net.registry.certificate(&statement).is_none());
    assert!(!net.registry.is_certified(&statement));

    // Attempt 1 goes on without member 1, whose commitments are refused from now on.
    let run = &net.registry.signing()[&statement];
    assert_eq!(run.attempt(), 1);
    assert!(run.excluded().contains(&gks[1].id.public()));
    let (again, _) = sign_commit(&net, &statement, &shares[1], 4);
    refused(&mut net, &gks[1].id, &again, "not_signer");
    // A commitment for the old attempt names no run.
    refused(&mut net, &gks[0].id, &c0, "no_signing_run");
    let (c0, n0) = sign_commit(&net, &statement, &shares[0], 5);
    let (c2, n2) = sign_commit(&net, &statement, &shares[2], 6);
    net.submit(&gks[0].id, &c0).unwrap();
    net.submit(&gks[2].id, &c2).unwrap();
    let m = message(&net, &statement);
    let s0 = sign_share(&net, &statement, &shares[0], n0, &m);
    let s2 = sign_share(&net, &statement, &shares[2], n2, &m);
    net.submit(&gks[0].id, &s0).unwrap();
    let applied = net.submit(&gks[2].id, &s2).unwrap();
    assert_eq!(
        applied.events,
        vec![Event::CommitteeSigned {
            statement: statement.clone()
        }]
    );
    assert!(net.registry.signing().is_empty());

    // The certificate verifies under the epoch's master public key alone, for this statement
    // only.
    let signature = *net.registry.certificate(&statement).unwrap();
    let certified = net.registry.certified(&statement).unwrap();
    assert!(certified.verify(&genesis, &master, &signature));
    assert!(net.registry.is_certified(&statement));
    let other = Certified::EpochChecksum {
        epoch: Epoch(0),
        checksum: keyward_hierarchy::EpochChecksum([7; 32]),
    };
    assert!(!other.verify(&genesis, &master, &signature));
    assert!(!certified.verify(&EntryHash([1; 32]), &master, &signature));
    let stranger = MasterKey::generate(&mut net.rng).public_key();
    assert!(!certified.verify(&genesis, &stranger, &signature));
    // Nothing more to sign.
    refused(&mut net, &gks[0].id, &c0, "no_signing_run");
}

#[test]
fn classic_mode_opens_no_signing_runs_and_refuses_signing_entries() {
    let mut net = Net::new(41);
    let gk = net.gatekeeper();
    let master = MasterKey::generate(&mut net.rng);
    let body = create(&mut net, &gk, 0, &master, &[]);
    net.submit(&gk.id, &body).unwrap();
    assert_eq!(net.registry.current_epoch(), Some(Epoch(0)));
    assert!(net.registry.signing().is_empty());
    let share =
        KeyShare::from_bytes(ShareIndex::new(1).unwrap(), &SecretBytes::new([1; 32])).unwrap();
    let statement = Statement::EpochChecksum(Epoch(0));
    let (_, commitment) = sign::commit(&share, &SecretBytes::new([1; 32]));
    let commit = Body::SignCommit(Box::new(SignCommit {
        statement,
        attempt: 0,
        commitment,
    }));
    refused(&mut net, &gk.id, &commit, "wrong_key_mode");
}

// ---- Scheduled refresh (genesis `refresh_interval`, PROTOCOL §16.11) ----

/// One filler entry: a new worker registers.
fn filler(net: &mut Net) -> Applied {
    let id = net.key();
    let body = net.worker_body(&id);
    net.submit(&id, &body).unwrap()
}

#[test]
fn shares_are_refreshed_on_the_genesis_schedule() {
    let mut net = Net::with(42, |c| {
        c.params.key_threshold = 2;
        c.params.refresh_interval = MIN_REFRESH_INTERVAL;
    });
    let gks: Vec<Member> = (0..3).map(|_| net.gatekeeper()).collect();
    let shares = complete_dkg(&mut net, &gks);
    let activated = net.registry.next_height() - 1;
    let expected = output(&mut net, 0, &[&shares[0], &shares[1]]).unwrap();
    // Nothing happens before the interval has passed since epoch 0 activated.
    while net.registry.next_height() < activated + MIN_REFRESH_INTERVAL {
        let applied = filler(&mut net);
        assert!(net.registry.reshares().is_empty(), "at {}", applied.height);
    }
    // The entry at the interval starts the refresh, as a council refresh would.
    let applied = filler(&mut net);
    assert_eq!(applied.height, activated + MIN_REFRESH_INTERVAL);
    assert!(matches!(
        applied.events[..],
        [Event::Registered { .. }, Event::RunStarted { .. }]
    ));
    assert_eq!(net.registry.resharing(), Some(Change::Scheduled));
    // Gatekeeper changes wait for it, as for any resharing.
    refused(
        &mut net,
        &gks[0].id,
        &Body::GatekeeperDeregister,
        "rotation_in_progress",
    );
    for (gk, share) in gks.iter().zip(&shares).take(2) {
        let body = reshare_deal(&mut net, gk, share, 0, None);
        net.submit(&gk.id, &body).unwrap();
    }
    let fresh: Vec<KeyShare> = gks
        .iter()
        .map(|g| reshare_finish(&net, g, 0).unwrap())
        .collect();
    let mut events = Vec::new();
    for gk in &gks {
        events = net.submit(&gk.id, &accept(&[0])).unwrap().events;
    }
    assert_eq!(
        events,
        vec![Event::Reshared { epoch: Epoch(0) }, Event::SharesRefreshed]
    );
    assert_eq!(net.registry.resharing(), None);
    // Same key, new shares; old and new do not combine.
    assert_eq!(output(&mut net, 0, &[&fresh[1], &fresh[2]]), Some(expected));
    assert_eq!(output(&mut net, 0, &[&shares[0], &fresh[1]]), None);
    // The next refresh counts from the end of this one.
    let refreshed = net.registry.next_height() - 1;
    while net.registry.next_height() < refreshed + MIN_REFRESH_INTERVAL {
        filler(&mut net);
        assert!(net.registry.reshares().is_empty());
    }
    filler(&mut net);
    assert_eq!(net.registry.resharing(), Some(Change::Scheduled));
}

#[test]
fn a_refresh_schedule_needs_threshold_mode_and_a_sane_interval() {
    let mut net = Net::new(43);
    let platform = keyward_enclave::DevPlatformKey::generate(&mut net.rng);
    let council = [net.key()];
    let genesis_error = |threshold: u16, interval: u64| {
        let mut c = config(&council, &platform);
        c.params.key_threshold = threshold;
        c.params.refresh_interval = interval;
        c.validate(&council[0].public())
    };
    assert_eq!(
        genesis_error(1, MIN_REFRESH_INTERVAL),
        Err(GenesisError::Param("refresh_interval"))
    );
    assert_eq!(
        genesis_error(2, MIN_REFRESH_INTERVAL - 1),
        Err(GenesisError::Param("refresh_interval"))
    );
    assert_eq!(genesis_error(2, MIN_REFRESH_INTERVAL), Ok(()));
    assert_eq!(genesis_error(2, 0), Ok(()));
}
