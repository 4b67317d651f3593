//! The node enclave's messages (`keyward_node_service::runner::protocol`), as `keyward
//! enclave --role` reads a host's and the host reads the enclave's: no decoder panics, and whatever
//! one accepts re-encodes to the same bytes.
#![no_main]
// A panic is what a fuzz target reports; unwrap marks what must hold.
#![allow(clippy::unwrap_used)]

use keyward_crypto::{DecodeError, Reader, Writer};
use keyward_node_service::runner::protocol as p;
use libfuzzer_sys::fuzz_target;

/// Decodes `body` with `read`; if accepted, `write` must give the same bytes back.
fn canonical<T>(
    body: &[u8],
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
    write: impl FnOnce(&mut Writer, &T),
) {
    if let Ok(value) = p::decode(body, read) {
        assert_eq!(p::encode(|w| write(w, &value)), body);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    match kind % 12 {
        0 => canonical(body, p::hello, |w, (role, genesis)| {
            p::put_hello(w, *role, genesis)
        }),
        1 => canonical(body, p::entries, |w, entries| p::put_entries(w, entries)),
        2 => canonical(body, p::register, |w, (endpoint, stake)| {
            p::put_register(w, endpoint, *stake);
        }),
        3 => canonical(body, p::sign, |w, (position, body)| {
            p::put_sign(w, *position, body)
        }),
        4 => canonical(body, p::step, |w, step| p::put_step(w, step.as_ref())),
        5 => canonical(body, p::round, p::put_round),
        6 => canonical(body, p::check, |w, (ticket, answer)| {
            p::put_check(w, *ticket, answer)
        }),
        7 => canonical(body, p::outcome, p::put_outcome),
        8 => canonical(body, p::refusals, |w, refusals| {
            p::put_refusals(w, refusals)
        }),
        9 => canonical(body, p::answers, |w, answers| p::put_answers(w, answers)),
        10 => canonical(body, p::welcome, |w, (id, height)| {
            p::put_welcome(w, id, *height)
        }),
        _ => {
            let _ = p::failed(body);
            let _ = p::decode(body, p::answer);
            let _ = p::decode(body, p::checkpoint);
        }
    }
});
