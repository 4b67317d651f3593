//! Evidence transactions for ancestor verification (signed vote transactions of the active
//! set), split from the input at 0xff 0x00 markers: never panics.
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_crypto::SolanaPubkey;
use keyward_vote::ancestry::{AncestryPolicy, Member};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let transactions: Vec<Vec<u8>> = data.split(|b| *b == 0xff).map(<[u8]>::to_vec).collect();
    let policy = AncestryPolicy::new(
        vec![Member {
            authority: SolanaPubkey([7; 32]),
            stake: 1,
        }],
        true,
        None,
    )
    .unwrap();
    let _ = policy.verify_evidence(&transactions);
});
