//! Building real Solana vote transaction messages, with Solana's own crates: what a validator
//! hands the signer. Used by the load generator, the service tests and `signer-client`.

use keyward_crypto::SolanaPubkey;
use keyward_vote::{LockoutPolicy, Tower, TowerError};
use solana_address::Address;
use solana_hash::Hash;
use solana_message::{Message, VersionedMessage};
use solana_vote_interface::instruction as vote_ix;
use solana_vote_interface::state::{Lockout, TowerSync};

/// The legacy message of one `TowerSync` carrying `tower` for `vote_account`, signed by the vote
/// key `authority`, paid by `identity`, claiming bank hash `hash` for its last slot.
pub fn tower_sync_message(
    identity: &SolanaPubkey,
    vote_account: &SolanaPubkey,
    authority: &SolanaPubkey,
    tower: &Tower,
    hash: [u8; 32],
    blockhash: [u8; 32],
) -> Vec<u8> {
    let sync = TowerSync {
        lockouts: tower
            .votes()
            .iter()
            .map(|l| Lockout::new_with_confirmation_count(l.slot, l.confirmation_count))
            .collect(),
        root: tower.root(),
        hash: Hash::new_from_array(hash),
        timestamp: None,
        block_id: Hash::new_from_array([0; 32]),
    };
    let ix = vote_ix::tower_sync(
        &Address::new_from_array(vote_account.0),
        &Address::new_from_array(authority.0),
        sync,
    );
    let message = Message::new_with_blockhash(
        &[ix],
        Some(&Address::new_from_array(identity.0)),
        &Hash::new_from_array(blockhash),
    );
    bincode::serialize(&VersionedMessage::Legacy(message)).expect("a message serializes")
}

/// The [`tower_sync_message`] of the tower that voting on `slots` in order makes from an empty
/// one under Solana's lockout rules, claiming bank hash `[last slot as u8; 32]` (a test and
/// bench convention: distinct slots, distinct hashes).
///
/// # Errors
/// [`TowerError`] if `slots` is empty or not increasing.
pub fn slots_message(
    identity: &SolanaPubkey,
    vote_account: &SolanaPubkey,
    authority: &SolanaPubkey,
    slots: &[u64],
) -> Result<Vec<u8>, TowerError> {
    let tower = Tower::new().apply_slots(slots, &LockoutPolicy::SOLANA)?;
    let last = tower.last_voted_slot().unwrap_or_default().to_le_bytes()[0];
    Ok(tower_sync_message(
        identity,
        vote_account,
        authority,
        &tower,
        [last; 32],
        [9; 32],
    ))
}
