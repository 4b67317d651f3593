//! Benchmarks of the vote signer's core path. Figures: docs/BENCHMARKS.md.
//! Run: `cargo bench -p keyward-signer --bench signer`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::cell::Cell;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use keyward_crypto::{ChainId, SolanaKeypair};
use keyward_enclave::{DevPlatformKey, Sealer, SealingKey};
use keyward_signer::votes::tower_sync_message;
use keyward_vote::{
    Answer, LockoutPolicy, Payload, ServiceId, SignedRequest, Signer, SignerConfig, Tower,
};
use rand::{SeedableRng, rngs::StdRng};

fn raw_ed25519(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let key = SolanaKeypair::generate(&mut rng);
    let message = vec![7u8; 200];
    let sig = key.sign(&message);
    c.bench_function("ed25519/sign (200 B)", |b| {
        b.iter(|| key.sign(black_box(&message)))
    });
    c.bench_function("ed25519/verify strict (200 B)", |b| {
        b.iter(|| key.pubkey().verify(black_box(&message), &sig).unwrap())
    });
    c.bench_function("ed25519/verify + sign (the per-vote bound)", |b| {
        b.iter(|| {
            key.pubkey().verify(black_box(&message), &sig).unwrap();
            key.sign(black_box(&message))
        })
    });
}

fn core_path(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2);
    let service = ServiceId([5; 32]);
    let config = SignerConfig {
        service,
        lockout: LockoutPolicy::SOLANA,
        ancestry: None,
        measurement: [0; 32],
        evidence_policy: None,
        identity_keys: Default::default(),
    };
    let sealer = Sealer::new(
        &SealingKey::generate(&mut rng),
        ChainId::new("bench").unwrap(),
        [0; 32],
    );
    let mut signer = Signer::restore(
        config.clone(),
        sealer,
        Box::new(DevPlatformKey::generate(&mut rng)),
        std::iter::empty::<(keyward_crypto::SolanaPubkey, &[u8])>(),
        [],
        None,
        0,
    )
    .unwrap();
    let identity = SolanaKeypair::generate(&mut rng);
    let vote_account = SolanaKeypair::generate(&mut rng).pubkey();
    let register = SignedRequest::sign(
        Payload::RegisterNode { vote_account },
        service,
        &identity,
        1,
    );
    let prepared = config.prepare(register).unwrap();
    let Answer::VoteKey(info) = signer.apply(&prepared, &mut rng).unwrap().answer else {
        panic!("registered")
    };
    let policy = LockoutPolicy::SOLANA;
    let next = Cell::new((Tower::new(), 1u64));
    let request = |rng_tower: &Cell<(Tower, u64)>| {
        let (tower, slot) = rng_tower.take();
        let tower = tower.apply_slots(&[slot], &policy).unwrap();
        let message = tower_sync_message(
            &identity.pubkey(),
            &vote_account,
            &info.vote_pubkey,
            &tower,
            [1; 32],
            [2; 32],
        );
        rng_tower.set((tower, slot + 1));
        SignedRequest::sign(
            Payload::SignVote {
                message,
                evidence: Vec::new(),
            },
            service,
            &identity,
            slot + 1,
        )
    };
    let sample = request(&next);
    c.bench_function("core/prepare signVote (request signature check)", |b| {
        b.iter(|| config.prepare(black_box(sample.clone())).unwrap())
    });
    // A writer's batch: 32 validators' votes, their signatures checked together.
    let batch: Vec<SignedRequest> = (0..32u64)
        .map(|i| {
            let identity = SolanaKeypair::generate(&mut rng);
            SignedRequest::sign(sample.payload.clone(), service, &identity, i + 1)
        })
        .collect();
    c.bench_function(
        "core/prepare_all 32 signVotes (signatures checked together)",
        |b| b.iter(|| config.prepare_all(black_box(batch.clone()))),
    );
    c.bench_function("core/apply signVote (rules, sign, record)", |b| {
        b.iter_batched(
            || config.prepare(request(&next)).unwrap(),
            |prepared| signer.apply(&prepared, &mut rng).unwrap(),
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, raw_ed25519, core_path);
criterion_main!(benches);
