//! Benchmarks of the threshold MasterKey's protocols, in one process (no network): one member's
//! whole DKG work, the public committee derivation every node runs, a resharing member's work,
//! and a FROST committee signature. Figures: docs/BENCHMARKS.md.
//! Run: `cargo bench -p keyward-threshold --bench sharing`.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rand::{RngCore, SeedableRng, rngs::StdRng};

use keyward_crypto::SecretBytes;
use keyward_threshold::{
    Dealer, DkgCommitment, DkgParams, KeyShare, Resharing, ShareIndex, SharePart, dkg, sign,
};

fn seed(rng: &mut StdRng) -> SecretBytes<32> {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    SecretBytes::new(bytes)
}

fn params(n: u16) -> DkgParams {
    let members: BTreeSet<ShareIndex> = (1..=n).map(|i| ShareIndex::new(i).unwrap()).collect();
    DkgParams::new(n / 2 + 1, members).unwrap()
}

struct Run {
    dealers: Vec<Dealer>,
    commitments: BTreeMap<ShareIndex, DkgCommitment>,
    /// Parts for member 1, by dealer.
    parts_for_1: BTreeMap<ShareIndex, SharePart>,
}

fn rounds(n: u16, rng: &mut StdRng) -> Run {
    let params = params(n);
    let dealers: Vec<Dealer> = params
        .members()
        .iter()
        .map(|i| Dealer::new(params.clone(), *i, &seed(rng)).unwrap())
        .collect();
    let commitments: BTreeMap<_, _> = params
        .members()
        .iter()
        .zip(&dealers)
        .map(|(i, d)| (*i, d.commitment().clone()))
        .collect();
    let one = ShareIndex::new(1).unwrap();
    let parts_for_1 = params
        .members()
        .iter()
        .zip(&dealers)
        .filter(|(i, _)| **i != one)
        .map(|(i, d)| (*i, d.parts(&commitments).unwrap().remove(&one).unwrap()))
        .collect();
    Run {
        dealers,
        commitments,
        parts_for_1,
    }
}

fn dkg_member(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let mut group = c.benchmark_group("dkg");
    group.sample_size(10);
    for n in [3u16, 5, 10, 20] {
        let run = rounds(n, &mut rng);
        let p = params(n);
        let one = ShareIndex::new(1).unwrap();
        // Everything one member computes: its commitment, its parts for the others (checking
        // their commitments), and its share from theirs (checking every part and the committee).
        group.bench_with_input(
            BenchmarkId::new("one member's work, t = n/2+1", n),
            &n,
            |b, _| {
                b.iter(|| {
                    let dealer = Dealer::new(p.clone(), one, &seed(&mut rng)).unwrap();
                    let mut commitments = run.commitments.clone();
                    commitments.insert(one, dealer.commitment().clone());
                    black_box(dealer.parts(&commitments).unwrap());
                    black_box(
                        run.dealers[0]
                            .finish(&run.commitments, &run.parts_for_1)
                            .unwrap(),
                    );
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("committee from commitments", n),
            &n,
            |b, _| b.iter(|| black_box(dkg::committee(&p, &run.commitments).unwrap())),
        );
    }
    group.finish();
}

fn reshare_member(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2);
    let run = rounds(5, &mut rng);
    let shares: Vec<KeyShare> = (0..5)
        .map(|i| {
            let me = ShareIndex::new(i + 1).unwrap();
            let parts = rounds_parts(&run, me);
            run.dealers[usize::from(i)]
                .finish(&run.commitments, &parts)
                .unwrap()
                .0
        })
        .collect();
    let old = dkg::committee(&params(5), &run.commitments).unwrap();
    let members: BTreeSet<ShareIndex> = (6..=10).map(|i| ShareIndex::new(i).unwrap()).collect();
    let resharing = Resharing::new(old, 3, members).unwrap();
    let dealt: Vec<_> = shares
        .iter()
        .map(|s| resharing.deal(s, &seed(&mut rng)).unwrap())
        .collect();
    let commitments: BTreeMap<_, _> = shares
        .iter()
        .zip(&dealt)
        .map(|(s, (c, _))| (s.index(), c.clone()))
        .collect();
    let six = ShareIndex::new(6).unwrap();
    let parts: BTreeMap<_, _> = shares
        .iter()
        .zip(&dealt)
        .map(|(s, (_, p))| (s.index(), p[&six].clone()))
        .collect();
    c.bench_function("reshare/(3,5)→(3,5) one dealer's deal", |b| {
        b.iter(|| black_box(resharing.deal(&shares[0], &seed(&mut rng)).unwrap()))
    });
    c.bench_function("reshare/(3,5)→(3,5) one new member's finish", |b| {
        b.iter(|| black_box(resharing.finish(six, &commitments, &parts).unwrap()))
    });
}

fn rounds_parts(run: &Run, me: ShareIndex) -> BTreeMap<ShareIndex, SharePart> {
    run.commitments
        .keys()
        .zip(&run.dealers)
        .filter(|(i, _)| **i != me)
        .map(|(i, d)| (*i, d.parts(&run.commitments).unwrap().remove(&me).unwrap()))
        .collect()
}

fn frost(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(3);
    let run = rounds(5, &mut rng);
    let committee = dkg::committee(&params(5), &run.commitments).unwrap();
    let shares: Vec<KeyShare> = (0..3u16)
        .map(|i| {
            let me = ShareIndex::new(i + 1).unwrap();
            run.dealers[usize::from(i)]
                .finish(&run.commitments, &rounds_parts(&run, me))
                .unwrap()
                .0
        })
        .collect();
    let message = [9u8; 32];
    c.bench_function(
        "frost/3-of-5 signature, all three signers and the aggregator",
        |b| {
            b.iter(|| {
                let round1: Vec<_> = shares
                    .iter()
                    .map(|s| sign::commit(s, &seed(&mut rng)))
                    .collect();
                let commitments: BTreeMap<_, _> = shares
                    .iter()
                    .zip(&round1)
                    .map(|(s, (_, c))| (s.index(), *c))
                    .collect();
                let signed: BTreeMap<_, _> = shares
                    .iter()
                    .zip(round1)
                    .map(|(s, (n, _))| {
                        (
                            s.index(),
                            sign::sign(s, &committee, &message, &commitments, n).unwrap(),
                        )
                    })
                    .collect();
                black_box(sign::aggregate(&committee, &message, &commitments, &signed).unwrap())
            })
        },
    );
}

criterion_group!(benches, dkg_member, reshare_member, frost);
criterion_main!(benches);
