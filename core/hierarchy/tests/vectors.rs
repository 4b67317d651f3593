//! keyward's own test vectors (docs/test-vectors/keyward-v1.json): every derived key and every
//! deterministic ciphertext of the hierarchy, from fixed inputs. The test regenerates the file's
//! content and compares; `KEYWARD_WRITE_VECTORS=1` rewrites it after a deliberate change.
//! A second implementation reproduces every value marked as an output from the inputs beside it
//! and docs/PROTOCOL.md (signatures are randomized: check them, do not reproduce them).
#![allow(clippy::unwrap_used)] // test helpers

use std::collections::BTreeMap;

use keyward_crypto::{
    ChainId, ChannelKeypair, Envelope, EnvelopePurpose, IdentityKeypair, SecretBytes,
    hex::{from_hex, to_0x},
};
use keyward_enclave::{
    BoundKey, Evidence, SealPurpose, Sealer, SealingKey, VersionSet, evidence::report_data,
    tpm_quote,
};
use keyward_hierarchy::*;
use keyward_threshold::{SecretKey, ShareIndex};
use rand::{SeedableRng, rngs::StdRng};
use rand_core::{CryptoRng, RngCore};
use serde_json::{Value, json};

const PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/test-vectors/keyward-v1.json"
);

/// Yields `prefix` first, then a seeded stream: lets a vector fix the bytes a protocol draws
/// (HPKE's ephemeral ikm, a sealing nonce) while signatures still get randomness.
struct PrefixRng(Vec<u8>, StdRng);
impl RngCore for PrefixRng {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }
    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let n = dest.len().min(self.0.len());
        dest[..n].copy_from_slice(&self.0[..n]);
        self.0.drain(..n);
        self.1.fill_bytes(&mut dest[n..]);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for PrefixRng {}

fn prefix_rng(prefix: [u8; 32]) -> PrefixRng {
    PrefixRng(prefix.to_vec(), StdRng::seed_from_u64(0))
}

fn seed(byte: u8) -> SecretBytes<32> {
    SecretBytes::new([byte; 32])
}

fn generate() -> Value {
    // Identity: sr25519 from a seed.
    let user = IdentityKeypair::from_seed(seed(0x11));

    // MasterKey (canonical scalar: the RFC 9497 DeriveKeyPair output of a fixed seed).
    let master_secret = SecretKey::derive(&seed(0x42), b"keyward test vectors").unwrap();
    let master = MasterKey::from_bytes(&master_secret.to_bytes()).unwrap();
    let (epoch, cluster, generation) = (
        Epoch(7),
        ClusterId::new("cluster-1").unwrap(),
        Generation(2),
    );
    let input = cluster_input(epoch, &cluster, generation);
    let output = master_secret.evaluate(&input).unwrap();
    let cluster_key = ClusterKey::derive(&master, epoch, cluster.clone(), generation);

    // ContractKey, its context, and a state record.
    let contract = ContractKey::derive(&cluster_key, ContractId::new("auction").unwrap());
    let state = contract.state().encrypt(b"bids", 1, b"alice=42").unwrap();

    // A user's input to the contract, with a fixed HPKE ephemeral ikm.
    let ikm_e = [0x33u8; 32];
    let context = contract.context().to_bytes();
    let envelope = Envelope::seal(
        &user,
        &contract.channel().public(),
        EnvelopePurpose::ContractInput,
        &context,
        b"bid: 42",
        &mut prefix_rng(ikm_e),
    )
    .unwrap();
    let envelope_bytes = envelope.to_bytes();
    assert!(contract.open_input(&envelope).is_ok());

    // Epoch checksum chain: epoch 0 in classic mode with two gatekeepers.
    let chain = ChainId::new("keyward-vectors").unwrap();
    let gatekeepers: BTreeMap<ShareIndex, _> = (1..=2u16)
        .map(|i| {
            (
                ShareIndex::new(i).unwrap(),
                IdentityKeypair::from_seed(seed(0x50 + i as u8)).public(),
            )
        })
        .collect();
    let record = EpochRecord::new(
        Epoch(0),
        master
            .classic_committee(gatekeepers.keys().copied())
            .unwrap(),
        gatekeepers.clone(),
    )
    .unwrap();
    let genesis = EpochChecksum::genesis(&chain);
    let c0 = genesis.next(&record);

    // Sealed blob with a fixed nonce (the first 24 bytes drawn).
    let sealer = Sealer::new(
        &SealingKey::from_bytes(seed(0x77)),
        chain.clone(),
        [0x4d; 32],
    );
    let mut nonce = [0u8; 32];
    nonce[..24].copy_from_slice(&[0x99; 24]);
    let blob = sealer
        .seal(
            SealPurpose::ClusterKey,
            7,
            cluster_key.seed().expose(),
            &mut prefix_rng(nonce),
        )
        .unwrap();
    let synthetic = sealer
        .seal_synthetic(SealPurpose::ValidatorRecord, 8, b"keyward validator record")
        .unwrap();
    // A manifest pinning two items, sealed at counter 9.
    let mut pinned = VersionSet::new(SealPurpose::ValidatorRecord);
    pinned.insert(sealer.version_tag(
        SealPurpose::ValidatorRecord,
        &[0xa1; 32],
        synthetic.as_bytes(),
    ));
    pinned.insert(sealer.version_tag(SealPurpose::ValidatorRecord, &[0xa2; 32], b"another blob"));
    let manifest = sealer.seal_manifest(&pinned, 9);

    // Dev evidence report data.
    let channel = ChannelKeypair::derive(&[0x66; 32]);
    let bound = [
        BoundKey::Identity(user.public()),
        BoundKey::Channel(channel.public()),
    ];

    // tpm-quote evidence: a quote as a TPM marshals one, of the dev evidence's report data, by an
    // attestation key from a fixed scalar (ECDSA with RFC 6979 nonces, so deterministic).
    let ak = p256::ecdsa::SigningKey::from_slice(&[0x42; 32]).expect("scalar");
    let ak_sec1: [u8; 65] = ak
        .verifying_key()
        .to_sec1_point(false)
        .as_bytes()
        .try_into()
        .expect("65 bytes");
    let quoted_report = report_data(&bound, b"nonce-1").unwrap();
    let mut attest = keyward_crypto::Writer::new();
    attest
        .u32(0xff54_4347)
        .u16(0x8018)
        .var16(&[0x00, 0x0b, 0x11, 0x22])
        .var16(&tpm_quote::qualifying_data(&quoted_report))
        .u64(81_000)
        .u32(3)
        .u32(0)
        .u8(1)
        .u64(0x2023_0415)
        .raw(&tpm_quote::sha256_selection(&[0, 7]))
        .var16(&[0x5a; 32]);
    let attest = attest.finish();
    let quote_signature: p256::ecdsa::Signature =
        p256::ecdsa::signature::Signer::sign(&ak, &attest);
    let quote_signature = tpm_quote::low_s(&quote_signature.to_bytes().into()).unwrap();
    let tpm_evidence =
        Evidence::tpm_quote(ak_sec1, quoted_report, attest.clone(), quote_signature).unwrap();
    tpm_evidence.check_signature().unwrap();

    json!({
        "about": "keyward v1 test vectors; see docs/PROTOCOL.md. Regenerated and compared by `cargo test -p keyward-hierarchy --test vectors`.",
        "identity": {
            "seed": to_0x(&[0x11; 32]),
            "sr25519Public": user.public().to_string(),
        },
        "clusterKey": {
            "masterKey": to_0x(master.to_bytes().expose()),
            "masterKeyIs": "RFC 9497 DeriveKeyPair(seed = 0x42 * 32, info = \"keyward test vectors\")",
            "masterPublicKey": master.public_key().to_string(),
            "epoch": epoch.0,
            "cluster": cluster.as_str(),
            "generation": generation.0,
            "voprfInput": to_0x(&input),
            "voprfOutput": to_0x(output.expose()),
            "clusterSeed": to_0x(cluster_key.seed().expose()),
            "clusterSr25519Public": cluster_key.identity().public().to_string(),
            "clusterX25519Public": cluster_key.channel().public().to_string(),
        },
        "contractKey": {
            "contract": "auction",
            "contextBytes": to_0x(&context),
            "sr25519Public": contract.identity().public().to_string(),
            "x25519Public": contract.channel().public().to_string(),
            "x25519Secret": to_0x(contract.channel().secret_bytes().expose()),
            "state": { "record": "bids", "version": 1, "plaintext": "alice=42", "sealed": to_0x(&state) },
        },
        "contractInput": {
            "senderSeed": to_0x(&[0x11; 32]),
            "ikmE": to_0x(&ikm_e),
            "plaintext": "bid: 42",
            "envelope": to_0x(&envelope_bytes),
            "note": "the last 64 bytes are a randomized sr25519 signature: verify it, do not reproduce it",
        },
        "epochChain": {
            "chainId": chain.as_str(),
            "gatekeeperSeeds": [to_0x(&[0x51; 32]), to_0x(&[0x52; 32])],
            "genesis": to_0x(&genesis.0),
            "epoch0": { "threshold": 1, "members": [1, 2], "checksum": to_0x(&c0.0) },
        },
        "sealedBlob": {
            "sealingKey": to_0x(&[0x77; 32]),
            "chainId": chain.as_str(),
            "measurement": to_0x(&[0x4d; 32]),
            "counter": 7,
            "purpose": SealPurpose::ClusterKey.label(),
            "plaintext": "the clusterKey.clusterSeed above",
            "blob": to_0x(blob.as_bytes()),
        },
        "sealedBlobSynthetic": {
            "sealingKey": to_0x(&[0x77; 32]),
            "chainId": chain.as_str(),
            "measurement": to_0x(&[0x4d; 32]),
            "counter": 8,
            "purpose": SealPurpose::ValidatorRecord.label(),
            "plaintext": "keyward validator record",
            "blob": to_0x(synthetic.as_bytes()),
        },
        "sealedManifest": {
            "sealingKey": to_0x(&[0x77; 32]),
            "chainId": chain.as_str(),
            "measurement": to_0x(&[0x4d; 32]),
            "counter": 9,
            "itemPurpose": SealPurpose::ValidatorRecord.label(),
            "items": [
                { "name": to_0x(&[0xa1; 32]), "blob": "the sealedBlobSynthetic.blob above" },
                { "name": to_0x(&[0xa2; 32]), "blob": to_0x(b"another blob") },
            ],
            "blob": to_0x(manifest.as_bytes()),
        },
        "devEvidence": {
            "boundKeys": ["the identity.sr25519Public above", format!("x25519 {}", channel.public())],
            "nonce": "nonce-1",
            "reportData": to_0x(&report_data(&bound, b"nonce-1").unwrap()),
        },
        "tpmQuoteEvidence": {
            "about": "the devEvidence report data, quoted by a TPM attestation key (PROTOCOL §13.4)",
            "akScalar": to_0x(&[0x42; 32]),
            "akSec1": to_0x(&ak_sec1),
            "akFingerprint": to_0x(&tpm_evidence.tpm_key().unwrap().fingerprint()),
            "attest": to_0x(&attest),
            "measurement": to_0x(&tpm_evidence.measurement()),
            "evidence": to_0x(&tpm_evidence.to_bytes()),
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
        &std::fs::read_to_string(PATH).expect("docs/test-vectors/keyward-v1.json"),
    )
    .unwrap();
    assert_eq!(
        generated, on_disk,
        "the construction changed: if deliberate, rerun with KEYWARD_WRITE_VECTORS=1 and update docs/PROTOCOL.md"
    );
}

#[test]
fn vectors_open_with_only_the_documented_inputs() {
    // Read back from the file, not from the generator: the recorded values are self-consistent.
    let v: Value = serde_json::from_str(&std::fs::read_to_string(PATH).unwrap()).unwrap();
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap().to_owned();
    let master = MasterKey::from_bytes(&SecretBytes::new(
        from_hex::<32>("m", &s("/clusterKey/masterKey")).unwrap(),
    ))
    .unwrap();
    let cluster = ClusterKey::derive(
        &master,
        Epoch(7),
        ClusterId::new("cluster-1").unwrap(),
        Generation(2),
    );
    let contract = ContractKey::derive(&cluster, ContractId::new("auction").unwrap());
    let sealed = hex::decode(s("/contractKey/state/sealed").trim_start_matches("0x")).unwrap();
    assert_eq!(
        &contract.state().decrypt(b"bids", 1, &sealed).unwrap()[..],
        b"alice=42"
    );
    let envelope = Envelope::from_bytes(
        &hex::decode(s("/contractInput/envelope").trim_start_matches("0x")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        &contract.open_input(&envelope).unwrap().plaintext[..],
        b"bid: 42"
    );
}
