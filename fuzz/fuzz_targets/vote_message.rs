//! A vote transaction message from the host: decoding and the ownership checks never panic,
//! and a message checked against the keys it names gives the vote it decoded to.
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_crypto::SolanaPubkey;
use keyward_vote::message::{check_vote_message, decode_vote_message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(message) = decode_vote_message(data) else {
        return;
    };
    let vote = &message.vote;
    for identity in &message.signers {
        if let Ok(checked) = check_vote_message(data, identity, &vote.vote_account, &vote.authority)
        {
            assert_eq!(checked.vote_account, vote.vote_account);
            assert_eq!(checked.authority, vote.authority);
        }
    }
    let stranger = SolanaPubkey([1; 32]);
    if !message.signers.contains(&stranger) {
        assert!(check_vote_message(data, &stranger, &vote.vote_account, &stranger).is_err());
    }
});
