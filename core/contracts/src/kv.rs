//! `kv-store`: a confidential key-value store. Each sender has its own namespace, so no user reads
//! or overwrites another's keys.
//!
//! ```text
//! call  = u8(1) || var16(key) || var32(value)     put
//!       | u8(2) || var16(key)                     get: reply u8(found 0|1) || var32(value)
//!       | u8(3) || var16(key)                     delete: reply u8(existed 0|1)
//! ```

use keyward_crypto::{IdentityPublicKey, Reader, Writer};

use crate::code::ContractError;
use crate::state::{MAX_KEY_LEN, MAX_VALUE_LEN, State};

/// Longest user key (the sender's 32 bytes are prepended in state).
pub const MAX_USER_KEY_LEN: usize = MAX_KEY_LEN - 32;

pub(crate) fn init(init: &[u8]) -> Result<State, ContractError> {
    if init.is_empty() || init == b"{}" {
        Ok(State::default())
    } else {
        Err(ContractError::Malformed(
            "kv-store takes no deployment argument",
        ))
    }
}

fn slot(sender: &IdentityPublicKey, key: &[u8]) -> Vec<u8> {
    [&sender.to_bytes()[..], key].concat()
}

pub(crate) fn call(
    state: &mut State,
    sender: &IdentityPublicKey,
    call: &[u8],
) -> Result<Vec<u8>, ContractError> {
    let malformed = |_| ContractError::Malformed("kv-store call");
    let mut r = Reader::new(call);
    let op = r.u8("op").map_err(malformed)?;
    let key = r
        .var16("key", MAX_USER_KEY_LEN)
        .map_err(malformed)?
        .to_vec();
    let mut w = Writer::new();
    match op {
        1 => {
            let value = r.var32("value", MAX_VALUE_LEN).map_err(malformed)?.to_vec();
            r.finish().map_err(malformed)?;
            state
                .put(slot(sender, &key), value)
                .map_err(ContractError::Refused)?;
        }
        2 => {
            r.finish().map_err(malformed)?;
            match state.get(&slot(sender, &key)) {
                Some(value) => w.u8(1).var32(value),
                None => w.u8(0).var32(&[]),
            };
        }
        3 => {
            r.finish().map_err(malformed)?;
            w.u8(u8::from(state.delete(&slot(sender, &key))));
        }
        _ => return Err(ContractError::Malformed("unknown kv-store op")),
    }
    Ok(w.finish())
}

/// The bytes of a put.
pub fn put(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(1).var16(key).var32(value);
    w.finish()
}

/// The bytes of a get.
pub fn get(key: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(2).var16(key);
    w.finish()
}

/// The bytes of a delete.
pub fn delete(key: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(3).var16(key);
    w.finish()
}
