//! A tower interchange document (`keyward signer-tower import`): never panics, and whatever it
//! accepts round-trips through the writer.
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_signer::interchange::{document, parse};
use keyward_vote::LockoutPolicy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = LockoutPolicy::SOLANA;
    if let Ok(towers) = parse(text, &policy) {
        let written = serde_json::to_string(&document(&towers)).unwrap();
        let back = parse(&written, &policy).unwrap();
        assert_eq!(back, towers);
    }
});
