//! The isolated runner's messages (`keyward_signer::runner::protocol`), as `keyward enclave` reads
//! a host's and the host reads the enclave's: no decoder panics, and whatever one accepts
//! re-encodes to the same bytes.
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_signer::runner::Changes;
use keyward_signer::runner::protocol::{self, OpenHeader};
use keyward_vote::{LockoutPolicy, SignedRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 8 {
        0 => {
            if let Ok(request) = SignedRequest::from_bytes(body) {
                assert_eq!(request.to_bytes(), body);
            }
            if let Ok(requests) = protocol::decode_apply(body) {
                let encoded: Vec<Vec<u8>> = requests.iter().map(SignedRequest::to_bytes).collect();
                assert_eq!(protocol::encode_apply(&encoded), body);
            }
        }
        1 => {
            if let Ok(header) = OpenHeader::decode(body) {
                assert_eq!(header.encode(), body);
            }
        }
        2 => {
            if let Ok(stored) = protocol::decode_records(body) {
                // A store's frames decode back to it, records first.
                let mut back = Changes::default();
                for frame in protocol::encode_records(&stored.records, &stored.evidence) {
                    back.extend(protocol::decode_records(&frame).unwrap());
                }
                assert_eq!(back, stored);
            }
        }
        3 => {
            if let Ok(query) = protocol::decode_query(body) {
                assert_eq!(protocol::encode_query(&query), body);
            }
        }
        4 => {
            if let Ok(outcomes) = protocol::decode_released(body, &LockoutPolicy::SOLANA) {
                assert_eq!(protocol::encode_released(&outcomes), body);
            }
        }
        5 => {
            if let Ok(opening) = protocol::decode_opened(body) {
                assert_eq!(protocol::encode_opened(&opening), body);
            }
        }
        6 => {
            if let Ok(answer) = protocol::decode_answered(body) {
                assert_eq!(protocol::encode_answered(&answer), body);
            }
        }
        _ => {
            let _ = protocol::decode_failed(body);
            if let Ok(changes) = protocol::decode_applied(body) {
                assert_eq!(protocol::encode_applied(&changes), body);
            }
        }
    }
});
