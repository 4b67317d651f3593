//! `keyward keys demo`: the key hierarchy's story, in one process, with every security claim
//! checked as it is told. Exits non-zero if any check fails.

use std::collections::BTreeMap;

use rand_core::OsRng;

use crate::error::{CliError, Result};
use keyward_crypto::{ChainId, Envelope, EnvelopePurpose, IdentityKeypair};
use keyward_enclave::{
    BoundKey, DevPlatformKey, EvidencePolicy, SealPurpose, SealedBlob, Sealer, SealingKey,
};
use keyward_hierarchy::{
    ClusterId, ClusterKey, ClusterKeyRequest, ContractId, ContractKey, ContractPublicKeys, Epoch,
    EpochChecksum, EpochRecord, Generation, MasterKey, verify_chain,
};
use keyward_threshold::{PartialFault, ShareIndex};

struct Story {
    passed: usize,
    failed: usize,
}

impl Story {
    fn chapter(&self, title: &str) {
        println!("\n== {title}");
    }
    fn check(&mut self, claim: &str, ok: bool) {
        if ok {
            self.passed += 1;
            println!("  ok    {claim}");
        } else {
            self.failed += 1;
            println!("  FAIL  {claim}");
        }
    }
}

fn idx(i: u16) -> ShareIndex {
    ShareIndex::new(i).expect("demo indices are nonzero")
}

pub fn run() -> Result<()> {
    let rng = &mut OsRng;
    let mut s = Story {
        passed: 0,
        failed: 0,
    };
    let c1 = ClusterId::new("cluster-1").map_err(CliError::refused)?;
    let auction = ContractId::new("auction").map_err(CliError::refused)?;
    let kv = ContractId::new("kv-store").map_err(CliError::refused)?;

    s.chapter("Identities: every entity makes its own keys inside its enclave");
    let gatekeepers: Vec<IdentityKeypair> =
        (0..3).map(|_| IdentityKeypair::generate(rng)).collect();
    let user = IdentityKeypair::generate(rng);
    let platform = DevPlatformKey::generate(rng);
    let worker = IdentityKeypair::generate(rng);
    let worker_channel = keyward_crypto::ChannelKeypair::generate(rng);
    let bound = [
        BoundKey::Identity(worker.public()),
        BoundKey::Channel(worker_channel.public()),
    ];
    let evidence = platform
        .attest([0u8; 32], &bound, b"ledger nonce 1", rng)
        .map_err(CliError::refused)?;
    let dev_policy = EvidencePolicy {
        accept_insecure_dev: true,
        ..Default::default()
    };
    s.check(
        "worker's dev evidence binds its identity and channel keys",
        evidence
            .verify(&dev_policy, &bound, b"ledger nonce 1")
            .is_ok(),
    );
    s.check(
        "dev evidence is refused by a policy that does not accept insecure evidence",
        evidence
            .verify(&EvidencePolicy::default(), &bound, b"ledger nonce 1")
            .is_err(),
    );

    s.chapter("Epoch 0: a MasterKey held whole by each of 3 gatekeepers (classic mode)");
    let master0 = MasterKey::generate(rng);
    println!("  master public key S_0 = {}", master0.public_key());
    let members = |n: u16, list: &[&IdentityKeypair]| -> BTreeMap<ShareIndex, _> {
        (1..=n)
            .map(|i| (idx(i), list[usize::from(i) - 1].public()))
            .collect()
    };
    let gatekeeper_refs: Vec<&IdentityKeypair> = gatekeepers.iter().collect();
    let classic = master0
        .classic_committee([idx(1), idx(2), idx(3)])
        .map_err(CliError::refused)?;
    let record0 = EpochRecord::new(Epoch(0), classic, members(3, &gatekeeper_refs))
        .map_err(CliError::refused)?;
    // The worker's request names what it asks for, so each gatekeeper can check membership.
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: c1.clone(),
        generation: Generation(0),
    };
    let partial = request.evaluate(&master0.classic_share(idx(2)), rng);
    let (cluster_key, _) = request
        .finish(&record0, &[partial])
        .map_err(CliError::refused)?;
    println!(
        "  cluster-1 key (sr25519) = {}",
        cluster_key.identity().public()
    );
    s.check(
        "worker's ClusterKey, checked by DLEQ proof against S_0, equals the direct derivation",
        {
            let direct = ClusterKey::derive(&master0, Epoch(0), c1.clone(), Generation(0));
            direct.seed() == cluster_key.seed()
        },
    );
    let record_other_epoch = EpochRecord::new(
        Epoch(1),
        master0
            .classic_committee([idx(1)])
            .map_err(CliError::refused)?,
        members(1, &gatekeeper_refs),
    )
    .map_err(CliError::refused)?;
    s.check(
        "the worker refuses to finish against another epoch's committee",
        request.finish(&record_other_epoch, &[partial]).is_err(),
    );

    s.chapter("The same MasterKey as 2-of-3 threshold shares: same ClusterKey, no gatekeeper holds S_0's secret");
    let (committee, shares) = master0.deal(2, 3, rng).map_err(CliError::refused)?;
    let threshold_record = EpochRecord::new(Epoch(0), committee, members(3, &gatekeeper_refs))
        .map_err(CliError::refused)?;
    let mut lying = request.evaluate(&shares[0], rng);
    lying.evaluated = request.evaluate(&shares[2], rng).evaluated;
    // Gatekeeper 2 is down; gatekeeper 1 lies.
    let partials = [lying, request.evaluate(&shares[2], rng)];
    s.check(
        "with one gatekeeper down and one lying, the worker refuses to finish",
        request.finish(&threshold_record, &partials).is_err(),
    );
    let partials = [
        lying,
        request.evaluate(&shares[1], rng),
        request.evaluate(&shares[2], rng),
    ];
    let (threshold_key, refused_partials) = request
        .finish(&threshold_record, &partials)
        .map_err(CliError::refused)?;
    s.check(
        "any 2 honest partials give exactly the classic ClusterKey",
        threshold_key.seed() == cluster_key.seed(),
    );
    s.check(
        "the lying gatekeeper is named, with a proof anyone can check",
        refused_partials.len() == 1
            && refused_partials[0].index == idx(1)
            && refused_partials[0].fault == PartialFault::BadProof,
    );

    s.chapter("Contracts: every worker derives the same ContractKey; users encrypt to it");
    let auction_key = ContractKey::derive(&cluster_key, auction.clone());
    let kv_key = ContractKey::derive(&cluster_key, kv.clone());
    let auction_public = ContractPublicKeys::certify(&cluster_key, &auction_key, rng);
    s.check(
        "the contract's public keys carry the cluster key's signature",
        auction_public.verify().is_ok(),
    );
    let bid = auction_public
        .encrypt_input(&cluster_key.identity().public(), &user, b"bid: 42 PHA", rng)
        .map_err(CliError::refused)?;
    let opened = auction_key.open_input(&bid);
    s.check(
        "the auction contract opens the user's bid and knows who sent it",
        opened
            .as_ref()
            .is_ok_and(|o| &o.plaintext[..] == b"bid: 42 PHA" && o.sender == user.public()),
    );
    let state = auction_key
        .state()
        .encrypt(b"bids", 1, b"user=42")
        .map_err(CliError::refused)?;
    s.check(
        "contract state round-trips under the state key",
        auction_key.state().decrypt(b"bids", 1, &state).is_ok(),
    );
    s.check(
        "a second worker seals the same state byte for byte",
        ContractKey::derive(&threshold_key, auction.clone())
            .state()
            .encrypt(b"bids", 1, b"user=42")
            .ok()
            == Some(state.clone()),
    );

    s.chapter("Leak table: a leaked key opens only what it should");
    s.check(
        "the kv-store ContractKey does not open the auction's bid",
        kv_key
            .channel()
            .open(&bid, EnvelopePurpose::ContractInput)
            .is_err(),
    );
    s.check(
        "the kv-store ContractKey does not open the auction's state",
        kv_key.state().decrypt(b"bids", 1, &state).is_err(),
    );
    let c2_key = ClusterKey::derive(
        &master0,
        Epoch(0),
        ClusterId::new("cluster-2").map_err(CliError::refused)?,
        Generation(0),
    );
    s.check(
        "cluster-2's keys do not open cluster-1's auction",
        ContractKey::derive(&c2_key, auction.clone())
            .state()
            .decrypt(b"bids", 1, &state)
            .is_err(),
    );
    let gen1 = ClusterKey::derive(&master0, Epoch(0), c1.clone(), Generation(1));
    let gen1_state = ContractKey::derive(&gen1, auction.clone())
        .state()
        .encrypt(b"bids", 2, b"user=43")
        .map_err(CliError::refused)?;
    s.check(
        "after a worker is removed (generation 1), the old ClusterKey opens nothing new",
        auction_key
            .state()
            .decrypt(b"bids", 2, &gen1_state)
            .is_err(),
    );

    s.chapter("Rotation: the council replaces the MasterKey and the gatekeepers");
    let master1 = MasterKey::generate(rng);
    let new_gatekeeper = IdentityKeypair::generate(rng);
    let new_gatekeeper_channel = keyward_crypto::ChannelKeypair::generate(rng);
    let handover = Envelope::seal(
        &new_gatekeeper,
        &new_gatekeeper_channel.public(),
        EnvelopePurpose::EpochSecret,
        b"epoch 1",
        master1.to_bytes().expose(),
        rng,
    )
    .map_err(CliError::refused)?;
    // Phala derives the handover's sender key from the old MasterKey; here nothing derived from
    // it (a key made from its bytes, or the old ClusterKey) opens the handover.
    let from_old_master = keyward_crypto::ChannelKeypair::derive(master0.to_bytes().expose());
    s.check(
        "the new epoch secret opens only for the new gatekeeper, not with keys derived from the old MasterKey",
        new_gatekeeper_channel.open(&handover, EnvelopePurpose::EpochSecret).is_ok()
            && from_old_master.open(&handover, EnvelopePurpose::EpochSecret).is_err()
            && cluster_key.channel().open(&handover, EnvelopePurpose::EpochSecret).is_err(),
    );
    let e1_key = ClusterKey::derive(&master1, Epoch(1), c1.clone(), Generation(0));
    let e1_state = ContractKey::derive(&e1_key, auction.clone())
        .state()
        .encrypt(b"bids", 3, b"user=44")
        .map_err(CliError::refused)?;
    s.check(
        "epoch 0's keys do not open epoch 1's data",
        auction_key.state().decrypt(b"bids", 3, &e1_state).is_err(),
    );
    let chain = ChainId::new("keyward-demo").map_err(CliError::refused)?;
    let r1 = EpochRecord::new(
        Epoch(1),
        master1
            .classic_committee([idx(1)])
            .map_err(CliError::refused)?,
        members(1, &[&new_gatekeeper]),
    )
    .map_err(CliError::refused)?;
    let published = EpochChecksum::genesis(&chain).next(&record0).next(&r1);
    s.check(
        "retained epoch 0 verifies against the one published checksum",
        verify_chain(&chain, &[record0, r1.clone()], &published).is_ok(),
    );
    let forged = EpochRecord::new(
        Epoch(0),
        MasterKey::generate(rng)
            .classic_committee([idx(1)])
            .map_err(CliError::refused)?,
        members(1, &[&gatekeepers[0]]),
    )
    .map_err(CliError::refused)?;
    s.check(
        "a substituted epoch 0 does not",
        verify_chain(&chain, &[forged, r1], &published).is_err(),
    );

    s.chapter("Sealing: secrets at rest");
    let measurement = [0x4d; 32];
    let key = SealingKey::generate(rng);
    let sealer = Sealer::new(&key, chain.clone(), measurement);
    let blob = sealer
        .seal(SealPurpose::ClusterKey, 1, cluster_key.seed().expose(), rng)
        .map_err(CliError::refused)?;
    s.check(
        "the sealed ClusterKey seed reopens",
        sealer.open(SealPurpose::ClusterKey, &blob, 1).is_ok(),
    );
    let mut tampered = blob.as_bytes().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    s.check(
        "a tampered blob is refused",
        sealer
            .open(
                SealPurpose::ClusterKey,
                &SealedBlob::from_bytes(tampered),
                1,
            )
            .is_err(),
    );
    s.check(
        "a blob sealed as a ClusterKey does not open as an epoch secret",
        sealer.open(SealPurpose::EpochSecret, &blob, 1).is_err(),
    );
    s.check(
        "a core with another measurement cannot open it",
        Sealer::new(&key, chain, [0x4e; 32])
            .open(SealPurpose::ClusterKey, &blob, 1)
            .is_err(),
    );
    s.check(
        "once the monotonic counter has moved past it, it is refused as rolled back",
        matches!(
            sealer.open(SealPurpose::ClusterKey, &blob, 2),
            Err(keyward_enclave::SealError::RolledBack { .. })
        ),
    );

    let total = s.passed + s.failed;
    println!("\n{} of {total} checks passed", s.passed);
    if s.failed > 0 {
        return Err(CliError::DemoFailed {
            failed: s.failed,
            total,
        });
    }
    Ok(())
}
