//! Every rule of PROTOCOL §16 for the entry framing, genesis, positions and the node kinds, each
//! with the refusal it must give (name and code), and each refusal shown to change nothing.
#![allow(clippy::unwrap_used)] // tests

mod support;

use std::collections::BTreeSet;

use keyward_crypto::{DecodeError, IdentityKeypair, SigningPurpose, Writer};
use keyward_enclave::{
    AttestationPolicy, DevPlatformKey, Evidence, EvidenceError, EvidenceKind, Platform, TcbStatus,
};
use keyward_hierarchy::Epoch;
use keyward_ledger::entry::MAX_BODY_LEN;
use keyward_ledger::*;
use support::*;

/// A strict TDX vendor policy for one made-up measurement.
fn tdx_policy() -> AttestationPolicy {
    AttestationPolicy::strict(vec![Platform::Tdx], vec![vec![0x5a; 48]])
}

/// Submits `entry`, expects the refusal named `name`, and checks the registry did not change.
fn refused(net: &mut Net, entry: Entry, name: &str) -> Rejected {
    let before = net.registry.clone();
    let err = net.submit_entry(entry).unwrap_err();
    assert_eq!(err.name(), name, "{err}");
    assert_eq!(net.registry, before, "a refused entry changed the registry");
    err
}

fn sign_raw(
    net: &mut Net,
    author: &IdentityKeypair,
    position: Position,
    kind: u8,
    body: &[u8],
) -> Vec<u8> {
    Entry::sign_raw(author, position, kind, body, &mut net.rng)
}

mod framing {
    use super::*;

    #[test]
    fn an_entry_round_trips_and_its_hash_covers_every_byte() {
        let mut net = Net::new(1);
        let gk = net.key();
        let body = net.gatekeeper_body(&gk);
        let entry = net.sign(&gk, &body);
        let again = Entry::from_bytes(entry.as_bytes().to_vec()).unwrap();
        assert_eq!(again, entry);
        assert_eq!(
            Body::decode(entry.kind(), entry.body_bytes()).unwrap(),
            body
        );
        for i in 0..entry.as_bytes().len() {
            let mut bytes = entry.as_bytes().to_vec();
            bytes[i] ^= 0x01;
            assert_ne!(EntryHash::of(&bytes), entry.hash());
            // A flipped bit never gets through framing and verification.
            if let Ok(e) = Entry::from_bytes(bytes) {
                assert!(
                    net.registry.genesis().verify(e).is_err(),
                    "bit {i} accepted"
                );
            }
        }
    }

    #[test]
    fn framing_errors_are_malformed_or_unknown_kind() {
        let mut net = Net::new(2);
        let gk = net.key();
        let p = net.position(&gk);
        let good = sign_raw(&mut net, &gk, p, Kind::GatekeeperDeregister.code(), &[]);
        let mut trailing = good.clone();
        trailing.push(0);
        for bytes in [
            trailing,
            good[..good.len() - 1].to_vec(),
            b"KWLE\x02".to_vec(),
            vec![],
        ] {
            assert_eq!(Entry::from_bytes(bytes).unwrap_err().code(), 2001);
        }
        let unknown = sign_raw(&mut net, &gk, p, 99, &[]);
        assert_eq!(
            Entry::from_bytes(unknown).unwrap_err(),
            Rejected::UnknownKind(99)
        );
    }

    #[test]
    fn a_body_length_over_the_limit_is_refused_before_reading_it() {
        let mut w = Writer::with_header(b"KWLE", 1);
        w.u64(1)
            .raw(&[0; 32])
            .raw(
                &IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new([1; 32]))
                    .public()
                    .to_bytes(),
            )
            .u64(0)
            .u8(2)
            .u32(u32::try_from(MAX_BODY_LEN + 1).unwrap());
        let err = Entry::from_bytes(w.finish()).unwrap_err();
        assert!(
            matches!(err, Rejected::MalformedEntry(DecodeError::TooLong { .. })),
            "{err}"
        );
    }

    #[test]
    fn a_signature_for_another_purpose_or_author_is_bad_signature() {
        let mut net = Net::new(3);
        let gk = net.key();
        let p = net.position(&gk);
        let mut w = Writer::with_header(b"KWLE", 1);
        w.u64(p.height)
            .raw(&p.parent.0)
            .raw(&gk.public().to_bytes())
            .u64(p.seq)
            .u8(2)
            .var32(&[]);
        let sig = gk.sign(SigningPurpose::Envelope, w.as_slice(), &mut net.rng);
        w.raw(&sig.to_bytes());
        refused(
            &mut net,
            Entry::from_bytes(w.finish()).unwrap(),
            "bad_signature",
        );

        // Another key's signature under the author's name.
        let other = net.key();
        let mut bytes = sign_raw(&mut net, &other, p, 2, &[]);
        bytes[5 + 8 + 32..5 + 8 + 64].copy_from_slice(&gk.public().to_bytes());
        refused(&mut net, Entry::from_bytes(bytes).unwrap(), "bad_signature");
    }

    #[test]
    fn body_decoding_refuses_trailing_bytes_and_bad_endpoints() {
        let mut net = Net::new(4);
        let gk = net.key();
        let body = net.gatekeeper_body(&gk).encode();
        let p = net.position(&gk);
        let mut long = body.clone();
        long.push(0);
        let e = Entry::from_bytes(sign_raw(&mut net, &gk, p, 1, &long)).unwrap();
        refused(&mut net, e, "malformed_entry");
        let e = Entry::from_bytes(sign_raw(&mut net, &gk, p, 2, &[0])).unwrap();
        refused(&mut net, e, "malformed_entry");
        // The endpoint must be a canonical ip:port: no host names, no leading zeros.
        for endpoint in [
            "localhost:80",
            "127.0.0.01:80",
            "127.0.0.1",
            "[::1]:080",
            "127.0.0.1:0",
            "[fe80::1%2]:80",
            "[0:0::1]:80",
        ] {
            let mut w = Writer::new();
            w.raw(&body[..32]).var8(endpoint.as_bytes());
            let rest = &body[32 + 1 + "127.0.0.1:9100".len()..];
            w.raw(rest);
            let e = Entry::from_bytes(sign_raw(&mut net, &gk, p, 1, &w.finish())).unwrap();
            refused(&mut net, e, "malformed_entry");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_decoders_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = Entry::from_bytes(bytes.clone());
            let mut prefixed = b"KWLE\x01".to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = Entry::from_bytes(prefixed);
            for kind in Kind::ALL {
                let _ = Body::decode(kind, &bytes);
            }
        }
    }
}

mod genesis {
    use super::*;

    type Edit = dyn FnOnce(&mut GenesisConfig, &[IdentityKeypair], &DevPlatformKey);

    fn genesis_result(
        edit: impl FnOnce(&mut GenesisConfig, &[IdentityKeypair], &DevPlatformKey),
    ) -> Result<Registry, Rejected> {
        let mut net = Net::new(10);
        let mut cfg = config(&net.council, &net.platform);
        edit(&mut cfg, &net.council, &net.platform);
        let e = Entry::sign(
            &net.council[0],
            genesis_position(),
            &Body::Genesis(Box::new(cfg)),
            &mut net.rng,
        );
        Registry::from_genesis(&e, &e.hash())
    }

    #[test]
    fn a_valid_genesis_starts_the_registry() {
        let net = Net::new(11);
        assert_eq!(net.registry.next_height(), 1);
        assert_eq!(net.registry.head(), net.genesis.hash());
        assert_eq!(net.registry.next_seq(&net.council[0].public()), 1);
        assert_eq!(net.registry.genesis().config().threshold, 2);
    }

    #[test]
    fn the_genesis_must_hash_to_the_pin() {
        let net = Net::new(12);
        let err = Registry::from_genesis(&net.genesis, &EntryHash([7; 32])).unwrap_err();
        assert_eq!((err.name(), err.code()), ("genesis_mismatch", 2009));
    }

    #[test]
    fn each_genesis_rule_is_enforced() {
        let cases: Vec<(GenesisError, Box<Edit>)> = vec![
            (
                GenesisError::AuthorNotInCouncil,
                Box::new(|c, council, _| {
                    c.council.remove(&council[0].public());
                }),
            ),
            (
                GenesisError::CouncilSize,
                Box::new(|c, _, _| c.council.clear()),
            ),
            (
                GenesisError::Threshold {
                    threshold: 0,
                    council: 3,
                },
                Box::new(|c, _, _| c.threshold = 0),
            ),
            (
                GenesisError::Threshold {
                    threshold: 4,
                    council: 3,
                },
                Box::new(|c, _, _| c.threshold = 4),
            ),
            (
                GenesisError::Param("bootstrap_gatekeepers"),
                Box::new(|c, _, _| c.params.bootstrap_gatekeepers = 0),
            ),
            (
                GenesisError::Param("slash_bps"),
                Box::new(|c, _, _| c.params.slash_bps = 10_001),
            ),
            (
                GenesisError::Param("max_proposal_ttl"),
                Box::new(|c, _, _| c.params.max_proposal_ttl = 0),
            ),
            (
                GenesisError::Param("max_cluster_size"),
                Box::new(|c, _, _| c.params.max_cluster_size = 0),
            ),
            (
                GenesisError::StakeOrder,
                Box::new(|c, _, _| c.params.min_gatekeeper_stake = c.params.min_worker_stake),
            ),
            (
                GenesisError::Codes,
                Box::new(|c, _, _| c.contract_codes = BTreeSet::new()),
            ),
            (
                GenesisError::WeakGatekeeperPolicy,
                Box::new(|c, _, _| c.gatekeeper_policy.allowed_measurements.clear()),
            ),
            (
                GenesisError::WeakGatekeeperPolicy,
                Box::new(|c, _, _| {
                    c.worker_policy.accept_insecure_dev = false;
                    c.worker_policy.trusted_dev_platforms.clear();
                }),
            ),
            // A gatekeeper vendor policy that a worker policy lacks.
            (
                GenesisError::WeakGatekeeperPolicy,
                Box::new(|c, _, _| c.gatekeeper_policy.vendor = Some(tdx_policy())),
            ),
            // Gatekeepers need the top confidence level.
            (
                GenesisError::GatekeeperVendorNotStrict,
                Box::new(|c, _, _| {
                    let loose = AttestationPolicy {
                        minimum_tcb: TcbStatus::SwHardeningNeeded,
                        ..tdx_policy()
                    };
                    c.gatekeeper_policy.vendor = Some(loose.clone());
                    c.worker_policy.vendor = Some(loose);
                }),
            ),
            (
                GenesisError::GatekeeperVendorNotStrict,
                Box::new(|c, _, _| {
                    let unrated = AttestationPolicy {
                        accept_unrated: true,
                        ..tdx_policy()
                    };
                    c.gatekeeper_policy.vendor = Some(unrated.clone());
                    c.worker_policy.vendor = Some(unrated);
                }),
            ),
            // Nitro and SEV-SNP evidence is unrated, which gatekeepers refuse: this part could
            // admit no gatekeeper.
            (
                GenesisError::GatekeeperVendorUnrated,
                Box::new(|c, _, _| {
                    let unrated_only = AttestationPolicy::strict(
                        vec![Platform::Nitro, Platform::SevSnp],
                        vec![vec![0x5a; 48]],
                    );
                    c.gatekeeper_policy.vendor = Some(unrated_only.clone());
                    c.worker_policy.vendor = Some(unrated_only);
                }),
            ),
        ];
        for (expected, edit) in cases {
            let err = genesis_result(edit).unwrap_err();
            assert_eq!(
                err,
                Rejected::InvalidGenesis(expected.clone()),
                "{expected}"
            );
            assert_eq!(err.code(), 2010);
        }
    }

    /// `validate` catches what `EvidencePolicy::encode` would panic on, so a genesis tool
    /// checks before it signs.
    #[test]
    fn a_policy_over_the_entry_limit_is_refused_before_it_is_encoded() {
        let net = Net::new(13);
        let mut cfg = config(&net.council, &net.platform);
        cfg.worker_policy.trusted_tpm_keys = (0..=keyward_enclave::MAX_POLICY_ENTRIES)
            .map(|i| [u8::try_from(i).unwrap(); 32])
            .collect();
        assert_eq!(
            cfg.validate(&net.council[0].public()),
            Err(GenesisError::PolicyTooLong("worker"))
        );
        // Duplicates do not count: the encoding lists each entry once.
        cfg.worker_policy.trusted_tpm_keys = vec![[1; 32]; 100];
        cfg.validate(&net.council[0].public()).unwrap();
        // A vendor part that names no platform has no encoding either.
        cfg.worker_policy.vendor = Some(AttestationPolicy {
            platforms: Vec::new(),
            ..tdx_policy()
        });
        assert_eq!(
            cfg.validate(&net.council[0].public()),
            Err(GenesisError::PolicyTooLong("worker"))
        );
    }

    #[test]
    fn a_genesis_off_height_zero_or_of_another_kind_is_refused() {
        let mut net = Net::new(13);
        let cfg = config(&net.council, &net.platform);
        let body = Body::Genesis(Box::new(cfg));
        let misplaced = Position {
            height: 0,
            parent: EntryHash::ZERO,
            seq: 1,
        };
        let e = Entry::sign(&net.council[0], misplaced, &body, &mut net.rng);
        assert_eq!(
            Registry::from_genesis(&e, &e.hash()).unwrap_err(),
            Rejected::InvalidGenesis(GenesisError::Position)
        );
        let e = Entry::sign(
            &net.council[0],
            genesis_position(),
            &Body::WorkerDeregister,
            &mut net.rng,
        );
        assert_eq!(
            Registry::from_genesis(&e, &e.hash()).unwrap_err().name(),
            "wrong_author"
        );
        // A second genesis on a running ledger.
        let e = net.sign(&net.council[0].clone_for_test(), &body);
        refused(&mut net, e, "unexpected_genesis");
    }

    #[test]
    fn the_genesis_body_has_one_encoding() {
        let net = Net::new(14);
        let cfg = net.registry.genesis().config().clone();
        let bytes = Body::Genesis(Box::new(cfg)).encode();
        assert_eq!(bytes, net.genesis.body_bytes());
        // Council members swapped: not ascending.
        let mut swapped = bytes.clone();
        let start = 1 + "test-net".len() + 2;
        let (a, b) = (
            swapped[start..start + 32].to_vec(),
            swapped[start + 32..start + 64].to_vec(),
        );
        swapped[start..start + 32].copy_from_slice(&b);
        swapped[start + 32..start + 64].copy_from_slice(&a);
        assert!(matches!(
            Body::decode(Kind::Genesis, &swapped),
            Err(DecodeError::Invalid { .. })
        ));
    }
}

/// `IdentityKeypair` is not `Clone`; tests that need the same key twice rebuild it from its seed.
trait CloneForTest {
    fn clone_for_test(&self) -> IdentityKeypair;
}
impl CloneForTest for IdentityKeypair {
    fn clone_for_test(&self) -> IdentityKeypair {
        IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new(*self.seed().expose()))
    }
}

mod position {
    use super::*;

    #[test]
    fn height_parent_and_sequence_are_enforced() {
        let mut net = Net::new(20);
        let gk = net.key();
        let body = net.gatekeeper_body(&gk);
        let p = net.position(&gk);
        for (position, name) in [
            (
                Position {
                    height: p.height + 1,
                    ..p
                },
                "wrong_height",
            ),
            (
                Position {
                    height: p.height - 1,
                    ..p
                },
                "wrong_height",
            ),
            (
                Position {
                    parent: EntryHash([9; 32]),
                    ..p
                },
                "wrong_parent",
            ),
            (Position { seq: 1, ..p }, "sequence_gap"),
        ] {
            let e = net.sign_at(&gk, position, &body);
            refused(&mut net, e, name);
        }
        let first = net.sign_at(&gk, p, &body);
        net.submit_entry(first.clone()).unwrap();
        // The same entry again: its height is taken.
        refused(&mut net, first, "wrong_height");
        // Re-signed on the new head with the used sequence number: a replay.
        let mut p2 = net.position(&gk);
        p2.seq = 0;
        let e = net.sign_at(&gk, p2, &Body::GatekeeperDeregister);
        let err = refused(&mut net, e, "replay");
        assert_eq!(err, Rejected::Replay { seq: 0, next: 1 });
        assert_eq!(err.code(), 2006);
    }

    #[test]
    fn an_entry_verified_for_another_ledger_is_wrong_ledger() {
        let mut net = Net::new(21);
        let mut other = Net::new(22);
        let gk = net.key();
        let body = net.gatekeeper_body(&gk);
        let entry = net.sign(&gk, &body);
        // Verified against the other ledger's genesis (its evidence nonce differs, so use a
        // deregistration, which has no evidence).
        let e = net.sign(&gk, &Body::GatekeeperDeregister);
        let verified = other.registry.genesis().verify(e).unwrap();
        let before = net.registry.clone();
        let err = net.registry.apply(verified).unwrap_err();
        assert_eq!((err.name(), err.code()), ("wrong_ledger", 2011));
        assert_eq!(net.registry, before);
        // Registration evidence is bound to its ledger: the other ledger refuses it.
        assert_eq!(
            other.submit_entry(entry).unwrap_err().name(),
            "evidence_refused"
        );
        let _ = &mut other;
    }
}

mod nodes {
    use super::*;

    #[test]
    fn the_first_bootstrap_gatekeepers_are_admitted() {
        let mut net = Net::new(30);
        for i in 0..4 {
            let gk = net.key();
            let body = net.gatekeeper_body(&gk);
            let applied = net.submit(&gk, &body).unwrap();
            let admitted = i < 3;
            assert_eq!(
                applied.events,
                vec![Event::Registered {
                    id: gk.public(),
                    role: Role::Gatekeeper { admitted }
                }]
            );
            let node = net.registry.node(&gk.public()).unwrap();
            assert_eq!(node.role, Role::Gatekeeper { admitted });
            assert_eq!(node.measurement, MEASUREMENT);
            assert_eq!(node.registered_at, applied.height);
            assert!(node.is_active());
        }
        assert_eq!(net.registry.nodes().count(), 4);
    }

    #[test]
    fn identities_are_single_use_and_single_role() {
        let mut net = Net::new(31);
        let node = net.key();
        let body = net.worker_body(&node);
        net.submit(&node, &body).unwrap();
        let again = net.worker_body(&node);
        let e = net.sign(&node, &again);
        assert_eq!(
            refused(&mut net, e, "already_registered"),
            Rejected::AlreadyRegistered { role: "worker" }
        );
        let as_gk = net.gatekeeper_body(&node);
        let e = net.sign(&node, &as_gk);
        refused(&mut net, e, "already_registered");
        // Not even after leaving.
        net.submit(&node, &Body::WorkerDeregister).unwrap();
        let e = net.sign(&node, &again);
        refused(&mut net, e, "already_registered");
        // Council members cannot be nodes.
        let member = net.council[1].clone_for_test();
        let body = net.worker_body(&member);
        let e = net.sign(&member, &body);
        assert_eq!(refused(&mut net, e, "role_conflict").code(), 2102);
    }

    #[test]
    fn stake_below_the_role_minimum_is_refused() {
        let mut net = Net::new(32);
        let params = Params::default();
        let gk = net.key();
        let reg = net.registration(
            &gk,
            Role::Gatekeeper { admitted: false },
            "10.0.0.1:1",
            params.min_gatekeeper_stake - 1,
        );
        let e = net.sign(&gk, &Body::GatekeeperRegister(reg));
        let err = refused(&mut net, e, "stake_too_low");
        assert_eq!(
            err,
            Rejected::StakeTooLow {
                role: "gatekeeper",
                min: params.min_gatekeeper_stake,
                found: params.min_gatekeeper_stake - 1
            }
        );
        // A worker's stake is not enough for a gatekeeper, but is for a worker.
        let w = net.key();
        let reg = net.registration(&w, Role::Worker, "10.0.0.2:1", params.min_worker_stake - 1);
        let e = net.sign(&w, &Body::WorkerRegister(reg));
        refused(&mut net, e, "stake_too_low");
        let reg = net.registration(&w, Role::Worker, "10.0.0.2:1", params.min_worker_stake);
        net.submit(&w, &Body::WorkerRegister(reg)).unwrap();
    }

    #[test]
    fn evidence_must_bind_this_ledger_role_and_keys() {
        let mut net = Net::new(33);
        let gk = net.key();
        // Evidence made with the worker nonce does not register a gatekeeper.
        let mut reg = net.registration(
            &gk,
            Role::Worker,
            "127.0.0.1:1",
            Params::default().min_gatekeeper_stake,
        );
        let e = net.sign(&gk, &Body::GatekeeperRegister(reg.clone()));
        assert_eq!(
            refused(&mut net, e, "evidence_refused"),
            Rejected::EvidenceRefused(EvidenceError::ReportDataMismatch)
        );
        // Evidence for another channel key.
        let other = net.registration(&gk, Role::Gatekeeper { admitted: false }, "127.0.0.1:1", 1);
        reg.evidence = other.evidence;
        let e = net.sign(&gk, &Body::GatekeeperRegister(reg));
        refused(&mut net, e, "evidence_refused");
        // Evidence signed by a platform the policy does not trust.
        let rogue = DevPlatformKey::generate(&mut net.rng);
        let honest = std::mem::replace(&mut net.platform, rogue);
        let reg = net.registration(&gk, Role::Gatekeeper { admitted: false }, "127.0.0.1:1", 1);
        net.platform = honest;
        let e = net.sign(&gk, &Body::GatekeeperRegister(reg));
        let err = refused(&mut net, e, "evidence_refused");
        assert_eq!(err.code(), 2103);
    }

    /// The TDX sample of `core/attest/tests/data`, in keyward's envelope: real vendor evidence,
    /// but its report data binds no keys of ours.
    fn tdx_sample() -> Evidence {
        let data = |name: &str| {
            std::fs::read(format!(
                "{}/../attest/tests/data/{name}",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap()
        };
        Evidence::vendor(
            EvidenceKind::Dcap,
            data("tdx_quote"),
            data("tdx_quote_collateral.json"),
            1_750_332_747,
        )
        .unwrap()
    }

    #[test]
    fn vendor_evidence_is_verified_under_the_roles_vendor_policy() {
        let sample = tdx_sample();
        let claims = sample.vendor_claims().unwrap().unwrap();
        let policy = AttestationPolicy::strict(vec![claims.platform], vec![claims.measurement]);
        let mut net = Net::with(35, |c| c.worker_policy.vendor = Some(policy));
        let w = net.key();
        let mut reg = net.registration(&w, Role::Worker, "10.0.0.3:1", 1_000);
        reg.evidence = sample.clone();
        // A whole DCAP quote with its collateral fits in a registration.
        assert!(sample.to_bytes().len() > 16_000);
        let e = net.sign(&w, &Body::WorkerRegister(reg.clone()));
        // The chain and the policy pass; the report data is the sample's, not this node's keys.
        assert_eq!(
            refused(&mut net, e, "evidence_refused"),
            Rejected::EvidenceRefused(EvidenceError::ReportDataMismatch)
        );
        // Gatekeepers' policy has no vendor part: the same evidence is not even considered.
        let gk = net.key();
        let mut reg = net.registration(&gk, Role::Gatekeeper { admitted: false }, "127.0.0.1:1", 1);
        reg.evidence = sample;
        let e = net.sign(&gk, &Body::GatekeeperRegister(reg));
        assert_eq!(
            refused(&mut net, e, "evidence_refused"),
            Rejected::EvidenceRefused(EvidenceError::VendorNotAccepted(EvidenceKind::Dcap))
        );
    }

    #[test]
    fn the_gatekeeper_policy_can_be_stricter_than_the_workers() {
        let mut net = Net::with(34, |c| {
            c.gatekeeper_policy.allowed_measurements = vec![[0x99; 32]];
            c.worker_policy.allowed_measurements.push([0x99; 32]);
        });
        let gk = net.key();
        let body = net.gatekeeper_body(&gk);
        let e = net.sign(&gk, &body);
        assert_eq!(
            refused(&mut net, e, "evidence_refused"),
            Rejected::EvidenceRefused(EvidenceError::MeasurementNotAllowed(MEASUREMENT))
        );
        let w = net.key();
        let body = net.worker_body(&w);
        net.submit(&w, &body).unwrap();
    }

    #[test]
    fn gatekeepers_must_use_a_private_endpoint() {
        let mut net = Net::new(35);
        let stake = Params::default().min_gatekeeper_stake;
        for endpoint in ["8.8.8.8:9100", "[2001:db8::1]:9100", "172.32.0.1:1"] {
            let gk = net.key();
            let reg = net.registration(&gk, Role::Gatekeeper { admitted: false }, endpoint, stake);
            let e = net.sign(&gk, &Body::GatekeeperRegister(reg));
            assert_eq!(
                refused(&mut net, e, "public_gatekeeper_endpoint").code(),
                2105
            );
        }
        for endpoint in [
            "127.0.0.1:9100",
            "10.1.2.3:1",
            "172.16.0.1:1",
            "192.168.1.1:1",
            "[::1]:1",
            "[fd00::1]:1",
        ] {
            let gk = net.key();
            let reg = net.registration(&gk, Role::Gatekeeper { admitted: false }, endpoint, stake);
            net.submit(&gk, &Body::GatekeeperRegister(reg)).unwrap();
        }
    }

    #[test]
    fn only_an_active_node_deregisters_itself_in_its_own_role() {
        let mut net = Net::new(36);
        let gk = net.key();
        let w = net.key();
        let stranger = net.key();
        let body = net.gatekeeper_body(&gk);
        net.submit(&gk, &body).unwrap();
        let body = net.worker_body(&w);
        net.submit(&w, &body).unwrap();
        for (author, body) in [
            (&stranger, Body::WorkerDeregister),
            (&stranger, Body::GatekeeperDeregister),
            (&gk, Body::WorkerDeregister),
            (&w, Body::GatekeeperDeregister),
            (&net.council[0].clone_for_test(), Body::GatekeeperDeregister),
        ] {
            let e = net.sign(author, &body);
            assert_eq!(refused(&mut net, e, "wrong_author").code(), 2008);
        }
        let applied = net.submit(&gk, &Body::GatekeeperDeregister).unwrap();
        assert_eq!(
            applied.events,
            vec![Event::Deregistered {
                id: gk.public(),
                role: Role::Gatekeeper { admitted: true }
            }]
        );
        assert_eq!(
            net.registry.node(&gk.public()).unwrap().status,
            Status::Deregistered { at: applied.height }
        );
        let e = net.sign(&gk, &Body::GatekeeperDeregister);
        refused(&mut net, e, "wrong_author");
    }
}

#[test]
fn every_refusal_has_a_distinct_name_and_code() {
    let key = Net::new(0).key();
    let cluster = keyward_hierarchy::ClusterId::new("c").unwrap();
    let contract = keyward_hierarchy::ContractId::new("k").unwrap();
    let context = KeyContext {
        epoch: Epoch(0),
        generation: keyward_hierarchy::Generation(0),
    };
    let all = [
        Rejected::MalformedEntry(DecodeError::Truncated { field: "x" }),
        Rejected::UnknownKind(9),
        Rejected::BadSignature,
        Rejected::WrongHeight {
            expected: 1,
            found: 2,
        },
        Rejected::WrongParent {
            expected: EntryHash::ZERO,
            found: EntryHash::ZERO,
        },
        Rejected::Replay { seq: 0, next: 1 },
        Rejected::SequenceGap { seq: 2, next: 1 },
        Rejected::WrongAuthor {
            kind: Kind::WorkerDeregister,
            needs: "x",
        },
        Rejected::GenesisMismatch {
            pinned: EntryHash::ZERO,
            found: EntryHash::ZERO,
        },
        Rejected::InvalidGenesis(GenesisError::Codes),
        Rejected::WrongLedger {
            expected: EntryHash::ZERO,
            found: EntryHash::ZERO,
        },
        Rejected::UnexpectedGenesis,
        Rejected::AlreadyRegistered { role: "worker" },
        Rejected::RoleConflict,
        Rejected::EvidenceRefused(EvidenceError::BadSignature),
        Rejected::StakeTooLow {
            role: "worker",
            min: 1,
            found: 0,
        },
        Rejected::PublicGatekeeperEndpoint("8.8.8.8:1".parse().unwrap()),
        Rejected::LastHolder { epoch: Epoch(0) },
        Rejected::EpochPending { epoch: Epoch(0) },
        Rejected::StaleEvidence {
            verified_at: 0,
            ledger_time: 1,
            max_age_secs: 0,
        },
        Rejected::EvidenceNotCurrent {
            verified_at: 0,
            now: 1,
            max_age_secs: 0,
        },
        Rejected::OutdatedTcbEvaluation {
            platform: keyward_enclave::Platform::Tdx,
            found: 17,
            ledger: 20,
        },
        Rejected::WrongEpoch {
            expected: Epoch(0),
            found: Epoch(1),
        },
        Rejected::ProposalNotApproved {
            proposal: EntryHash::ZERO,
        },
        Rejected::NotAdmitted {
            id: key.public().into(),
        },
        Rejected::BadSecretEnvelope {
            member: key.public().into(),
            reason: "x",
        },
        Rejected::NotHolder { epoch: Epoch(0) },
        Rejected::AlreadyHolder { epoch: Epoch(0) },
        Rejected::NoPendingSecret { epoch: Epoch(0) },
        Rejected::NotAFounder { epoch: Epoch(0) },
        Rejected::MasterKeyReused { epoch: Epoch(0) },
        Rejected::UnknownEpoch { epoch: Epoch(0) },
        Rejected::ClusterExists(cluster.clone()),
        Rejected::UnknownCluster(cluster.clone()),
        Rejected::NotAWorker {
            id: key.public().into(),
        },
        Rejected::AlreadyInCluster {
            id: key.public().into(),
        },
        Rejected::ClusterFull { max: 1 },
        Rejected::NotClusterMember,
        Rejected::StaleKeyContext {
            expected: context,
            found: context,
        },
        Rejected::AlreadyPublished,
        Rejected::ContractExists(contract.clone()),
        Rejected::UnknownContract(contract.clone()),
        Rejected::UnknownCode(CodeId::new("x").unwrap()),
        Rejected::EmptyCluster(cluster),
        Rejected::UntrustedClusterKey,
        Rejected::BadCertificate,
        Rejected::ContractKeysMismatch,
        Rejected::ContractKeysMissing(contract),
        Rejected::WrongContractKey,
        Rejected::BadInputEnvelope { reason: "x" },
        Rejected::NodeCannotDeploy,
        Rejected::NoActiveEpoch,
        Rejected::ClusterKeyMissing(context),
        Rejected::UnknownSubject,
        Rejected::DuplicateDigest,
        Rejected::BadResultSignature,
        Rejected::NoMajority,
        Rejected::DigestAgrees,
        Rejected::AlreadyReported,
        Rejected::NoDigest,
        Rejected::WorkerSlashed,
        Rejected::CommitteeMismatch,
        Rejected::UnknownProposal,
        Rejected::ProposalExpired { expired_at: 1 },
        Rejected::AlreadyApproved,
        Rejected::ProposalClosed,
        Rejected::BadTtl { max: 1 },
        Rejected::InvalidAction { reason: "x" },
        Rejected::RotationInProgress,
        Rejected::WrongKeyMode { needs: "x" },
        Rejected::NoDkgRun {
            epoch: Epoch(0),
            attempt: 0,
        },
        Rejected::NotDkgMember,
        Rejected::DkgOutOfTurn("x"),
        Rejected::BadDkgCommitment(keyward_threshold::SharingError::ThresholdOne),
        Rejected::BadSharePart {
            member: key.public().into(),
            reason: "x",
        },
        Rejected::BadComplaint("x"),
    ];
    let names: BTreeSet<_> = all.iter().map(Rejected::name).collect();
    let codes: BTreeSet<_> = all.iter().map(Rejected::code).collect();
    assert_eq!((names.len(), codes.len()), (all.len(), all.len()));
    for kind in Kind::ALL {
        assert_eq!(Kind::from_code(kind.code()), Some(kind));
    }
}
