//! A ledger entry as the ledger server and every node receive it: framing and every body
//! decoder never panic, an accepted entry is exactly its input, and an accepted body re-encodes
//! to the same bytes (one body, one encoding).
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_ledger::{Body, Entry, Kind};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entry) = Entry::from_bytes(data.to_vec()) {
        assert_eq!(entry.as_bytes(), data);
        if let Ok(body) = Body::decode(entry.kind(), entry.body_bytes()) {
            assert_eq!(body.encode(), entry.body_bytes());
        }
    }
    // The body decoders on raw bytes, for kinds whose bodies the framing rarely reaches.
    for kind in Kind::ALL {
        if let Ok(body) = Body::decode(kind, data) {
            assert_eq!(body.encode(), data);
        }
    }
});
