//! The foundation's decoders of untrusted bytes: envelopes, evidence, contract contexts, sealed
//! blobs, DLEQ proofs, group elements and keys. The first byte picks the decoder. Never panics.
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_crypto::{ChainId, Envelope, IdentityPublicKey, IdentitySignature, SecretBytes};
use keyward_enclave::{Evidence, SealPurpose, SealedBlob, Sealer, SealingKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => drop(Envelope::from_bytes(rest)),
        1 => drop(Evidence::from_bytes(rest)),
        2 => drop(keyward_hierarchy::ContractContext::from_bytes(rest)),
        3 => {
            let sealer = Sealer::new(
                &SealingKey::from_bytes(SecretBytes::new([3; 32])),
                ChainId::new("fuzz").unwrap(),
                [0; 32],
            );
            let _ = sealer.open(
                SealPurpose::ClusterKey,
                &SealedBlob::from_bytes(rest.to_vec()),
                0,
            );
        }
        4 => {
            if let Ok(bytes) = <[u8; 64]>::try_from(rest) {
                let _ = keyward_threshold::Proof::from_bytes(&bytes);
                let _ = IdentitySignature::from_bytes(&bytes);
            }
        }
        5 => {
            if let Ok(bytes) = <[u8; 32]>::try_from(rest) {
                let _ = IdentityPublicKey::from_bytes(&bytes);
                let _ = keyward_threshold::Element::from_bytes(&bytes);
            }
        }
        6 => drop(keyward_threshold::PartialEvaluation::from_bytes(rest)),
        _ => drop(std::str::from_utf8(rest).map(|s| s.parse::<keyward_crypto::SolanaPubkey>())),
    }
});
