//! A stored validator record. The raw bytes must fail to open without panicking; and because the
//! AEAD stops a fuzzer at the first byte, the same bytes are also sealed as a record plaintext
//! with the signer's own key, which drives the decoder behind it. A record that restores must
//! encode back to the same sealed bytes.
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_crypto::{ChainId, SecretBytes};
use keyward_enclave::{DevPlatformKey, SealPurpose, Sealer, SoftSealingKey};
use keyward_vote::{LockoutPolicy, ServiceId, Signer, SignerConfig};
use libfuzzer_sys::fuzz_target;

fn sealer() -> Sealer {
    Sealer::new(
        &SoftSealingKey::from_bytes(SecretBytes::new([3; 32])),
        ChainId::new("fuzz").unwrap(),
    )
}

fn restore(record: &[u8]) -> Option<Signer> {
    let config = SignerConfig {
        service: ServiceId([5; 32]),
        lockout: LockoutPolicy::SOLANA,
        ancestry: None,
        measurement: [0; 32],
        identity_keys: Default::default(),
    };
    let platform = DevPlatformKey::from_identity(keyward_crypto::IdentityKeypair::from_seed(
        SecretBytes::new([4; 32]),
    ));
    Signer::restore(config, sealer(), platform, [record]).ok()
}

fuzz_target!(|data: &[u8]| {
    let _ = restore(data);
    let sealed = sealer()
        .seal_synthetic(SealPurpose::ValidatorRecord, data)
        .unwrap();
    if let Some(signer) = restore(sealed.as_bytes()) {
        let identity: [u8; 32] = data[5..37].try_into().unwrap();
        let again = signer
            .record(&keyward_crypto::SolanaPubkey(identity))
            .unwrap();
        assert_eq!(again, sealed.as_bytes(), "a record encodes back to itself");
    }
});
