//! The parameters of a signed JSON-RPC request, as the service parses them: JSON, then the
//! request, then the stateless checks (sizes, service, signature, evidence). Never panics.
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_signer::wire::SignedParams;
use keyward_vote::ancestry::{AncestryPolicy, Member};
use keyward_vote::{LockoutPolicy, Method, ServiceId, SignerConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(params) = serde_json::from_slice::<SignedParams>(data) else {
        return;
    };
    let member = Member {
        authority: keyward_crypto::SolanaPubkey([7; 32]),
        stake: 1,
    };
    let configs = [
        config(None),
        config(Some(AncestryPolicy::new(vec![member], true, None).unwrap())),
    ];
    for method in Method::ALL {
        if let Ok(request) = params.clone().into_request(method) {
            for config in &configs {
                let _ = config.prepare(request.clone());
            }
        }
    }
});

fn config(ancestry: Option<AncestryPolicy>) -> SignerConfig {
    SignerConfig {
        service: ServiceId([5; 32]),
        lockout: LockoutPolicy::SOLANA,
        ancestry,
        measurement: [0; 32],
        evidence_policy: None,
        identity_keys: Default::default(),
    }
}
