//! A stored validator record. The raw bytes are restored as they are (they almost never open);
//! and because the AEAD stops a fuzzer at the first byte, the same bytes are also sealed as a
//! record plaintext with the signer's own key, which drives the decoder behind it. A record that
//! restores must encode back to the same sealed bytes.
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_crypto::{ChainId, SecretBytes, SolanaPubkey};
use keyward_enclave::{DevPlatformKey, SealPurpose, Sealer, SealingKey, VersionSet};
use keyward_vote::{LockoutPolicy, ServiceId, Signer, SignerConfig};
use libfuzzer_sys::fuzz_target;

fn sealer() -> Sealer {
    Sealer::new(
        &SealingKey::from_bytes(SecretBytes::new([3; 32])),
        ChainId::new("fuzz").unwrap(),
        [0; 32],
    )
}

fn restore(stored_as: [u8; 32], record: &[u8]) -> Option<Signer> {
    let config = SignerConfig {
        service: ServiceId([5; 32]),
        lockout: LockoutPolicy::SOLANA,
        ancestry: None,
        measurement: [0; 32],
        evidence_policy: None,
        identity_keys: Default::default(),
    };
    let platform = DevPlatformKey::from_identity(keyward_crypto::IdentityKeypair::from_seed(
        SecretBytes::new([4; 32]),
    ));
    // A manifest pinning this one record, so a record that opens is restored.
    let sealer = sealer();
    let mut pinned = VersionSet::new(SealPurpose::ValidatorRecord);
    pinned.insert(sealer.version_tag(SealPurpose::ValidatorRecord, &stored_as, record));
    let manifest = sealer.seal_manifest(&pinned, 0);
    Signer::restore(
        config,
        sealer,
        Box::new(platform),
        [(SolanaPubkey(stored_as), record)],
        // Reachable by a record that names its SHA-256 (libFuzzer's comparison tracing).
        [b"fuzz evidence".as_slice()],
        Some(manifest.as_bytes()),
        0,
    )
    .ok()
}

fuzz_target!(|data: &[u8]| {
    // The identity a record names sits right after its 5-byte header.
    let named = data.get(5..37).map_or([0; 32], |b| b.try_into().unwrap());
    let _ = restore(named, data);
    let sealed = sealer()
        .seal_synthetic(SealPurpose::ValidatorRecord, 0, data)
        .unwrap();
    if let Some(signer) = restore(named, sealed.as_bytes()) {
        let again = signer.record(&SolanaPubkey(named)).unwrap();
        assert_eq!(again, sealed.as_bytes(), "a record encodes back to itself");
    }
});
