//! `sealed-auction`: bids stay sealed in the contract's state; when the owner closes the auction,
//! only the winner and its bid are revealed (first price; a tie goes to the smaller identity).
//!
//! ```text
//! init  = owner sr25519(32)
//! call  = u8(1) || u64(amount)     bid (replaces the sender's earlier bid); refused once closed
//!       | u8(2)                    close (owner only): reply u8(had bids 0|1) || winner(32) || u64(amount)
//!       | u8(3)                    result (once closed): the same reply
//! ```

use keyward_crypto::{IdentityPublicKey, Reader, Writer};

use crate::code::ContractError;
use crate::state::State;

const OWNER: &[u8] = b"owner";
const RESULT: &[u8] = b"result";
const BID: &[u8] = b"bid/";

pub(crate) fn init(init: &[u8]) -> Result<State, ContractError> {
    let owner: [u8; 32] = init
        .try_into()
        .map_err(|_| ContractError::Malformed("sealed-auction takes the owner's 32-byte key"))?;
    IdentityPublicKey::from_bytes(&owner)
        .map_err(|_| ContractError::Malformed("the owner is not an sr25519 key"))?;
    let mut state = State::default();
    state
        .put(OWNER.to_vec(), owner.to_vec())
        .map_err(ContractError::Refused)?;
    Ok(state)
}

pub(crate) fn call(
    state: &mut State,
    sender: &IdentityPublicKey,
    call: &[u8],
) -> Result<Vec<u8>, ContractError> {
    let malformed = |_| ContractError::Malformed("sealed-auction call");
    let mut r = Reader::new(call);
    let op = r.u8("op").map_err(malformed)?;
    let closed = state.get(RESULT).map(<[u8]>::to_vec);
    match op {
        1 => {
            let amount = r.u64("amount").map_err(malformed)?;
            r.finish().map_err(malformed)?;
            if closed.is_some() {
                return Err(ContractError::Refused("the auction is closed"));
            }
            let key = [BID, &sender.to_bytes()[..]].concat();
            state
                .put(key, amount.to_be_bytes().to_vec())
                .map_err(ContractError::Refused)?;
            Ok(Vec::new())
        }
        2 => {
            r.finish().map_err(malformed)?;
            if state.get(OWNER) != Some(&sender.to_bytes()[..]) {
                return Err(ContractError::NotAllowed(
                    "only the owner closes the auction",
                ));
            }
            if closed.is_some() {
                return Err(ContractError::Refused("the auction is closed"));
            }
            let result = winner(state);
            state
                .put(RESULT.to_vec(), result.clone())
                .map_err(ContractError::Refused)?;
            Ok(result)
        }
        3 => {
            r.finish().map_err(malformed)?;
            closed.ok_or(ContractError::Refused("the auction is still open"))
        }
        _ => Err(ContractError::Malformed("unknown sealed-auction op")),
    }
}

/// `u8(had bids) || winner(32) || u64(amount)`; the highest bid, the smaller identity on a tie.
fn winner(state: &State) -> Vec<u8> {
    let best = state
        .scan(BID)
        .map(|(k, v)| {
            let amount = u64::from_be_bytes(v.try_into().expect("bids are u64"));
            (amount, &k[BID.len()..])
        })
        .fold(
            None,
            |best: Option<(u64, &[u8])>, (amount, who)| match best {
                Some((a, w)) if a > amount || (a == amount && w <= who) => Some((a, w)),
                _ => Some((amount, who)),
            },
        );
    let mut w = Writer::new();
    match best {
        Some((amount, who)) => w.u8(1).raw(who).u64(amount),
        None => w.u8(0).raw(&[0; 32]).u64(0),
    };
    w.finish()
}

/// The bytes of a bid.
pub fn bid(amount: u64) -> Vec<u8> {
    let mut w = Writer::new();
    w.u8(1).u64(amount);
    w.finish()
}

/// The bytes of a close.
pub fn close() -> Vec<u8> {
    vec![2]
}

/// The bytes of a result query.
pub fn result() -> Vec<u8> {
    vec![3]
}
