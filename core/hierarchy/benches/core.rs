//! Benchmarks of the trusted core's hot operations. Figures: docs/BENCHMARKS.md.
//! Run: `cargo bench -p keyward-hierarchy --bench core`.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use keyward_crypto::{
    ChannelKeypair, Envelope, EnvelopePurpose, IdentityKeypair, SignedMessage, SigningPurpose,
    verify_batch,
};
use keyward_hierarchy::{
    ClusterId, ClusterKey, ClusterKeyRequest, ContractId, ContractKey, Epoch, EpochRecord,
    Generation, MasterKey,
};
use keyward_threshold::{BlindedRequest, Element, SecretKey};
use rand::{SeedableRng, rngs::StdRng};
use std::hint::black_box;

fn identity(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let id = IdentityKeypair::generate(&mut rng);
    let msg = [7u8; 128];
    let sig = id.sign(SigningPurpose::LedgerEntry, &msg, &mut rng);
    c.bench_function("identity/sr25519 sign (128 B)", |b| {
        b.iter(|| id.sign(SigningPurpose::LedgerEntry, black_box(&msg), &mut rng))
    });
    c.bench_function("identity/sr25519 verify (128 B)", |b| {
        b.iter(|| {
            id.public()
                .verify(SigningPurpose::LedgerEntry, black_box(&msg), &sig)
                .unwrap()
        })
    });
    // 64 signers, as a gatekeeper checks a queue of provisioning requests; figures are per batch.
    let signers: Vec<_> = (0..64)
        .map(|_| IdentityKeypair::generate(&mut rng))
        .collect();
    let publics: Vec<_> = signers.iter().map(IdentityKeypair::public).collect();
    let sigs: Vec<_> = signers
        .iter()
        .map(|k| k.sign(SigningPurpose::LedgerEntry, &msg, &mut rng))
        .collect();
    let batch: Vec<_> = (0..64)
        .map(|i| SignedMessage {
            signer: &publics[i],
            purpose: SigningPurpose::LedgerEntry,
            message: &msg,
            signature: &sigs[i],
        })
        .collect();
    c.bench_function("identity/sr25519 verify_batch of 64 (128 B)", |b| {
        b.iter(|| verify_batch(black_box(&batch), &mut rng).unwrap())
    });
}

fn envelope(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2);
    let sender = IdentityKeypair::generate(&mut rng);
    let recipient = ChannelKeypair::generate(&mut rng);
    let pt = [1u8; 256];
    let env = Envelope::seal(
        &sender,
        &recipient.public(),
        EnvelopePurpose::ContractInput,
        b"ctx",
        &pt,
        &mut rng,
    )
    .unwrap();
    c.bench_function("envelope/HPKE seal + sign (256 B)", |b| {
        b.iter(|| {
            Envelope::seal(
                &sender,
                &recipient.public(),
                EnvelopePurpose::ContractInput,
                b"ctx",
                black_box(&pt),
                &mut rng,
            )
            .unwrap()
        })
    });
    c.bench_function("envelope/verify + HPKE open (256 B)", |b| {
        b.iter(|| {
            recipient
                .open(black_box(&env), EnvelopePurpose::ContractInput)
                .unwrap()
        })
    });
}

fn voprf(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(3);
    let sk = SecretKey::random(&mut rng);
    let req = BlindedRequest::new(b"keyward cluster input", &mut rng).unwrap();
    let blinded = [req.blinded()];
    c.bench_function("voprf/evaluate + DLEQ prove", |b| {
        b.iter(|| sk.blind_evaluate(black_box(&blinded), &mut rng).unwrap())
    });
    let (eval, proof) = sk.blind_evaluate(&blinded, &mut rng).unwrap();
    c.bench_function("voprf/verify proof + finalize", |b| {
        b.iter(|| {
            req.finalize(&sk.public_key(), black_box(&eval[0]), &proof)
                .unwrap()
        })
    });

    let master = MasterKey::generate(&mut rng);
    let (committee, shares) = master.deal(3, 5, &mut rng).unwrap();
    let gatekeepers = committee
        .members()
        .map(|i| (i, IdentityKeypair::generate(&mut rng).public()))
        .collect();
    let record = EpochRecord::new(Epoch(0), committee.clone(), gatekeepers).unwrap();
    let request = ClusterKeyRequest {
        epoch: Epoch(0),
        cluster: ClusterId::new("c1").unwrap(),
        generation: Generation(0),
    };
    let element = Element::from_input(&request.input()).unwrap();
    let partials: Vec<_> = shares[..3]
        .iter()
        .map(|s| request.evaluate(s, &mut rng))
        .collect();
    c.bench_function("threshold/3-of-5 verify 3 partials + combine", |b| {
        b.iter(|| committee.combine(&element, black_box(&partials)).unwrap())
    });
    c.bench_function("threshold/partial evaluate + DLEQ prove", |b| {
        b.iter(|| request.evaluate(black_box(&shares[0]), &mut rng))
    });
    c.bench_function(
        "threshold/3-of-5 ClusterKey, end to end (3 partials, verify, combine, derive)",
        |b| {
            b.iter(|| {
                let partials: Vec<_> = shares[..3]
                    .iter()
                    .map(|s| request.evaluate(s, &mut rng))
                    .collect();
                request.finish(&record, &partials).unwrap()
            })
        },
    );
}

fn hierarchy(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(4);
    let master = MasterKey::generate(&mut rng);
    let cluster = ClusterKey::derive(
        &master,
        Epoch(0),
        ClusterId::new("c1").unwrap(),
        Generation(0),
    );
    let contract = ContractId::new("auction").unwrap();
    c.bench_function("hierarchy/ClusterKey from MasterKey (direct)", |b| {
        b.iter(|| {
            ClusterKey::derive(
                &master,
                Epoch(0),
                ClusterId::new("c1").unwrap(),
                Generation(0),
            )
        })
    });
    c.bench_function("hierarchy/ContractKey derivation", |b| {
        b.iter(|| ContractKey::derive(&cluster, black_box(contract.clone())))
    });
    let key = ContractKey::derive(&cluster, contract);
    let pt = [2u8; 1024];
    c.bench_function("state/encrypt 1 KiB", |b| {
        b.iter(|| key.state().encrypt(b"r", 1, black_box(&pt)).unwrap())
    });
}

criterion_group!(benches, identity, envelope, voprf, hierarchy);
criterion_main!(benches);
