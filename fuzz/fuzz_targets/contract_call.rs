//! What a worker's enclave parses from a user: the call plaintext, and the call bytes each
//! built-in contract interprets. Decoders never panic and are canonical; a contract never panics
//! on any call and changes its state only when the call succeeds.
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_contracts::{Builtin, Call, State};
use keyward_crypto::{IdentityKeypair, SecretBytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(call) = Call::from_bytes(data) {
        assert_eq!(call.to_bytes().as_slice(), data);
    }
    if let Ok(state) = State::decode(data) {
        assert_eq!(state.encode(), data);
    }
    let sender = IdentityKeypair::from_seed(SecretBytes::new([7; 32])).public();
    for code in Builtin::ALL {
        let mut state = code
            .init(&sender.to_bytes())
            .or_else(|_| code.init(b""))
            .unwrap();
        // Split the input into a few calls, so that sequences reach deeper states.
        for call in data.split(|&b| b == 0xfe) {
            let before = state.clone();
            if code.call(&mut state, &sender, call).is_err() {
                assert_eq!(state, before);
            }
        }
    }
});
