//! The ledger's test vectors (docs/test-vectors/keyward-ledger-v1.json): a genesis, a worker
//! registration and an epoch 0 founded by two gatekeepers, from fixed seeds, with every field, the body and entry bytes and the hashes. The
//! test regenerates the file's content and compares; `KEYWARD_WRITE_VECTORS=1` rewrites it after a
//! deliberate change. tools/spec-check rebuilds the bytes and hashes from the fields and
//! PROTOCOL §16, and verifies the signatures (sr25519 signatures are randomized: the seeded RNG
//! makes this file reproducible, but a second implementation checks them, it does not redo them).
#![allow(clippy::unwrap_used)] // test helpers

use std::collections::BTreeSet;

use keyward_crypto::{ChainId, ChannelKeypair, IdentityKeypair, SecretBytes, hex::to_0x};
use keyward_enclave::{
    AttestationPolicy, BoundKey, DevPlatformKey, EvidencePolicy, Platform, TcbStatus,
    evidence::report_data,
};
use keyward_hierarchy::{Epoch, EpochChecksum, MasterKey};
use keyward_ledger::*;
use rand::{SeedableRng, rngs::StdRng};
use serde_json::{Value, json};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/test-vectors/keyward-ledger-v1.json"
);

fn key(byte: u8) -> IdentityKeypair {
    IdentityKeypair::from_seed(SecretBytes::new([byte; 32]))
}

fn policy_json(p: &EvidencePolicy) -> Value {
    json!({
        "acceptInsecureDev": p.accept_insecure_dev,
        "allowedMeasurements": p.allowed_measurements.iter().map(|m| to_0x(m)).collect::<Vec<_>>(),
        "trustedDevPlatforms": p.trusted_dev_platforms.iter().map(|k| to_0x(&k.to_bytes())).collect::<Vec<_>>(),
        "trustedTpmKeys": p.trusted_tpm_keys.iter().map(|k| to_0x(k)).collect::<Vec<_>>(),
        "vendor": p.vendor.as_ref().map(|v| json!({
            "platforms": v.platforms.iter().map(|p| p.name()).collect::<Vec<_>>(),
            "measurements": v.measurements.iter().map(|m| to_0x(m)).collect::<Vec<_>>(),
            "minimumTcb": v.minimum_tcb.name(),
            "acceptUnrated": v.accept_unrated,
            "maxAgeSecs": v.max_age_secs,
        })),
    })
}

fn generate() -> Value {
    let mut rng = StdRng::seed_from_u64(16);
    let council = [key(0x21), key(0x22), key(0x23)];
    let platform = DevPlatformKey::from_identity(key(0x31));
    let measurement = [0x4d; 32];
    let dev = EvidencePolicy {
        accept_insecure_dev: true,
        allowed_measurements: vec![measurement],
        trusted_dev_platforms: vec![platform.public()],
        trusted_tpm_keys: Vec::new(),
        vendor: None,
    };
    let config = GenesisConfig {
        chain: ChainId::new("vector-net").unwrap(),
        council: council.iter().map(IdentityKeypair::public).collect(),
        threshold: 2,
        params: Params::default(),
        contract_codes: BTreeSet::from([
            CodeId::new("kv-store").unwrap(),
            CodeId::new("sealed-auction").unwrap(),
        ]),
        gatekeeper_policy: dev.clone(),
        worker_policy: EvidencePolicy {
            allowed_measurements: vec![measurement, [0x4e; 32]],
            vendor: Some(AttestationPolicy {
                minimum_tcb: TcbStatus::SwHardeningNeeded,
                ..AttestationPolicy::strict(
                    vec![Platform::Sgx, Platform::Tdx],
                    vec![vec![0x5a; 48], vec![0x5b; 32]],
                )
            }),
            ..dev
        },
    };
    let genesis_position = Position {
        height: 0,
        parent: EntryHash::ZERO,
        seq: 0,
    };
    let genesis = Entry::sign(
        &council[1],
        genesis_position,
        &Body::Genesis(Box::new(config.clone())),
        &mut rng,
    );
    let mut registry = Registry::from_genesis(&genesis, &genesis.hash()).unwrap();

    let worker = key(0x41);
    let channel = ChannelKeypair::derive(b"keyward vector worker channel").public();
    let nonce = registration_nonce(&genesis.hash(), Role::Worker);
    let bound = [
        BoundKey::Identity(worker.public()),
        BoundKey::Channel(channel),
    ];
    let evidence = platform
        .attest(measurement, &bound, &nonce, &mut rng)
        .unwrap();
    let registration = Registration {
        channel,
        endpoint: "203.0.113.7:9200".parse().unwrap(),
        stake: 1_000,
        evidence: evidence.clone(),
    };
    let position = Position {
        height: 1,
        parent: genesis.hash(),
        seq: 0,
    };
    let body = Body::WorkerRegister(registration);
    let entry = Entry::sign(&worker, position, &body, &mut rng);
    let applied = registry
        .apply(registry.genesis().verify(entry.clone()).unwrap())
        .unwrap();
    assert_eq!(applied.hash, entry.hash());

    // Two gatekeepers register; the first creates epoch 0 with both as founders.
    let gatekeepers = [key(0x51), key(0x52)];
    let gk_channels = [
        ChannelKeypair::derive(b"keyward vector gatekeeper channel 1"),
        ChannelKeypair::derive(b"keyward vector gatekeeper channel 2"),
    ];
    let gk_role = Role::Gatekeeper { admitted: false };
    for (gk, channel) in gatekeepers.iter().zip(&gk_channels) {
        let nonce = registration_nonce(&genesis.hash(), gk_role);
        let bound = [
            BoundKey::Identity(gk.public()),
            BoundKey::Channel(channel.public()),
        ];
        let body = Body::GatekeeperRegister(Registration {
            channel: channel.public(),
            endpoint: "127.0.0.1:9100".parse().unwrap(),
            stake: 10_000,
            evidence: platform
                .attest(measurement, &bound, &nonce, &mut rng)
                .unwrap(),
        });
        let position = Position {
            height: registry.next_height(),
            parent: registry.head(),
            seq: 0,
        };
        let e = Entry::sign(gk, position, &body, &mut rng);
        registry
            .apply(registry.genesis().verify(e).unwrap())
            .unwrap();
    }
    let master = MasterKey::from_bytes(&SecretBytes::new([0x06; 32])).unwrap();
    let create = EpochCreate::new(
        &gatekeepers[0],
        &genesis.hash(),
        Epoch(0),
        &master,
        &[(gatekeepers[1].public(), gk_channels[1].public())],
        None,
        &mut rng,
    )
    .unwrap();
    let epoch_position = Position {
        height: registry.next_height(),
        parent: registry.head(),
        seq: 1,
    };
    let epoch_entry = Entry::sign(
        &gatekeepers[0],
        epoch_position,
        &Body::EpochCreate(Box::new(create.clone())),
        &mut rng,
    );
    registry
        .apply(registry.genesis().verify(epoch_entry.clone()).unwrap())
        .unwrap();

    let p = &config.params;
    json!({
        "description": "keyward ledger v1 (docs/PROTOCOL.md §16): a genesis, a worker registration and the creation of epoch 0 by two gatekeepers (the second registration entries are not listed; epochCreate gives its position). Bytes and hashes are deterministic functions of the fields; signatures are sr25519 under keyward/v1/ledger-entry (verify them, do not reproduce them).",
        "council": council.iter().map(|k| json!({"seed": to_0x(k.seed().expose()), "public": to_0x(&k.public().to_bytes())})).collect::<Vec<_>>(),
        "devPlatform": {"seed": to_0x(&[0x31; 32]), "public": to_0x(&platform.public().to_bytes())},
        "genesis": {
            "author": to_0x(&council[1].public().to_bytes()),
            "chainId": config.chain.as_str(),
            "threshold": config.threshold,
            "params": {
                "bootstrapGatekeepers": p.bootstrap_gatekeepers,
                "minGatekeeperStake": p.min_gatekeeper_stake,
                "minWorkerStake": p.min_worker_stake,
                "slashBps": p.slash_bps,
                "maxProposalTtl": p.max_proposal_ttl,
                "maxClusterSize": p.max_cluster_size,
                "keyThreshold": p.key_threshold,
                "refreshInterval": p.refresh_interval,
            },
            "contractCodes": config.contract_codes.iter().map(CodeId::as_str).collect::<Vec<_>>(),
            "gatekeeperPolicy": policy_json(&config.gatekeeper_policy),
            "workerPolicy": policy_json(&config.worker_policy),
            "body": to_0x(genesis.body_bytes()),
            "entry": to_0x(genesis.as_bytes()),
            "hash": to_0x(&genesis.hash().0),
        },
        "workerRegister": {
            "seed": to_0x(worker.seed().expose()),
            "author": to_0x(&worker.public().to_bytes()),
            "height": position.height,
            "parent": to_0x(&position.parent.0),
            "seq": position.seq,
            "kind": Kind::WorkerRegister.code(),
            "channel": to_0x(&channel.0),
            "endpoint": "203.0.113.7:9200",
            "stake": 1_000,
            "measurement": to_0x(&measurement),
            "registrationNonce": to_0x(&nonce),
            "reportData": to_0x(&report_data(&bound, &nonce).unwrap()),
            "evidence": to_0x(&evidence.to_bytes()),
            "body": to_0x(entry.body_bytes()),
            "entry": to_0x(entry.as_bytes()),
            "hash": to_0x(&entry.hash().0),
        },
        "epochCreate": {
            "gatekeepers": gatekeepers.iter().zip(&gk_channels).map(|(k, c)| json!({
                "seed": to_0x(k.seed().expose()),
                "public": to_0x(&k.public().to_bytes()),
                "channel": to_0x(&c.public().0),
            })).collect::<Vec<_>>(),
            "height": epoch_position.height,
            "parent": to_0x(&epoch_position.parent.0),
            "seq": epoch_position.seq,
            "kind": Kind::EpochCreate.code(),
            "epoch": 0,
            "masterSecret": to_0x(master.to_bytes().expose()),
            "masterPublic": to_0x(&master.public_key().to_bytes()),
            "secretAad": to_0x(&epoch_secret_aad(&genesis.hash(), Epoch(0), &gatekeepers[1].public())),
            "envelope": to_0x(&create.envelopes[0].to_bytes()),
            "body": to_0x(epoch_entry.body_bytes()),
            "entry": to_0x(epoch_entry.as_bytes()),
            "hash": to_0x(&epoch_entry.hash().0),
            "checksumGenesis": to_0x(&EpochChecksum::genesis(&config.chain).0),
            "checksum": to_0x(&registry.checksum().0),
        },
    })
}

#[test]
fn vectors_match_docs() {
    let generated = generate();
    if std::env::var_os("KEYWARD_WRITE_VECTORS").is_some() {
        std::fs::write(
            PATH,
            serde_json::to_string_pretty(&generated).unwrap() + "\n",
        )
        .unwrap();
    }
    let on_disk: Value = serde_json::from_str(
        &std::fs::read_to_string(PATH).expect("docs/test-vectors/keyward-ledger-v1.json"),
    )
    .unwrap();
    assert_eq!(
        generated, on_disk,
        "the ledger format changed: if deliberate, rerun with KEYWARD_WRITE_VECTORS=1 and update docs/PROTOCOL.md §16"
    );
}
