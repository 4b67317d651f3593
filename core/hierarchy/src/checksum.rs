//! The epoch checksum chain: one published 32-byte value commits to every epoch's public record.
//!
//! ```text
//! c_genesis = SHA-256(var16("keyward/v1/epoch-chain/genesis") || var16(chain id))
//! c_e       = SHA-256(var16("keyward/v1/epoch-chain") || c_{e-1} || u64(e) || S_e || u16(t) || u16(n)
//!                     || for each member, ascending: u16(index) || Y_index || gatekeeper sr25519 key)
//! ```
//!
//! A node holding the latest checksum verifies any retained epoch by recomputing the chain from
//! genesis ([`verify_chain`]); a changed master public key, threshold, verification share or
//! gatekeeper in any epoch changes every later checksum.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::ids::Epoch;
use keyward_crypto::{ChainId, IdentityPublicKey, Writer};
use keyward_threshold::{Committee, ShareIndex};

/// A checksum in the epoch chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EpochChecksum(pub [u8; 32]);

impl EpochChecksum {
    /// The chain's starting value, bound to the chain id.
    pub fn genesis(chain: &ChainId) -> Self {
        let mut w = Writer::new();
        w.var16(b"keyward/v1/epoch-chain/genesis")
            .var16(chain.as_str().as_bytes());
        Self(Sha256::digest(w.as_slice()).into())
    }

    /// The checksum after `record`.
    pub fn next(&self, record: &EpochRecord) -> Self {
        let mut w = Writer::new();
        w.var16(b"keyward/v1/epoch-chain")
            .raw(&self.0)
            .u64(record.epoch.0)
            .raw(&record.committee.public_key().to_bytes())
            .u16(record.committee.threshold())
            .u16(
                u16::try_from(record.gatekeepers.len())
                    .expect("committee size bounded by MAX_MEMBERS"),
            );
        for (index, gatekeeper) in &record.gatekeepers {
            let share = record
                .committee
                .verification_share(*index)
                .expect("EpochRecord::new checked membership");
            w.u16(index.get())
                .raw(&share.to_bytes())
                .raw(&gatekeeper.to_bytes());
        }
        Self(Sha256::digest(w.as_slice()).into())
    }
}

/// The public record of one epoch: its committee (master public key, threshold, verification
/// shares) and the gatekeeper identity behind each share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochRecord {
    epoch: Epoch,
    committee: Committee,
    gatekeepers: BTreeMap<ShareIndex, IdentityPublicKey>,
}

impl EpochRecord {
    /// Builds a record.
    ///
    /// # Errors
    /// [`ChainError::MembersMismatch`] unless `gatekeepers` names exactly the committee's members.
    pub fn new(
        epoch: Epoch,
        committee: Committee,
        gatekeepers: BTreeMap<ShareIndex, IdentityPublicKey>,
    ) -> Result<Self, ChainError> {
        if !gatekeepers.keys().copied().eq(committee.members()) {
            return Err(ChainError::MembersMismatch { epoch });
        }
        Ok(Self {
            epoch,
            committee,
            gatekeepers,
        })
    }

    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The committee.
    pub fn committee(&self) -> &Committee {
        &self.committee
    }

    /// The gatekeeper identity behind each share index.
    pub fn gatekeepers(&self) -> &BTreeMap<ShareIndex, IdentityPublicKey> {
        &self.gatekeepers
    }

    /// `id`'s share index in the committee, if it is a member.
    pub fn index_of(&self, id: &IdentityPublicKey) -> Option<ShareIndex> {
        index_of(&self.gatekeepers, id)
    }
}

/// `id`'s share index in `members`, if it is one.
pub fn index_of(
    members: &BTreeMap<ShareIndex, IdentityPublicKey>,
    id: &IdentityPublicKey,
) -> Option<ShareIndex> {
    members.iter().find(|(_, m)| *m == id).map(|(i, _)| *i)
}

/// Why a chain of epoch records was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// The gatekeeper list does not match the committee's members.
    #[error("epoch {epoch}: gatekeepers do not match the committee's members")]
    MembersMismatch {
        /// The epoch.
        epoch: Epoch,
    },
    /// Records must run 0, 1, 2, … without gaps.
    #[error("expected epoch {expected}, found epoch {found}")]
    NotConsecutive {
        /// The epoch expected next.
        expected: Epoch,
        /// The epoch found.
        found: Epoch,
    },
    /// The recomputed checksum differs from the published one.
    #[error("recomputed checksum of epoch {last} differs from the published checksum")]
    Mismatch {
        /// The last epoch of the chain.
        last: Epoch,
    },
    /// No records.
    #[error("no epoch records")]
    Empty,
}

/// Recomputes the chain over `records` (epochs 0, 1, … in order) and compares the last checksum
/// with `published`. Returns every epoch's checksum on success.
///
/// # Errors
/// A [`ChainError`] naming the problem.
pub fn verify_chain(
    chain: &ChainId,
    records: &[EpochRecord],
    published: &EpochChecksum,
) -> Result<Vec<EpochChecksum>, ChainError> {
    let last = records.last().ok_or(ChainError::Empty)?.epoch;
    let mut checksums = Vec::with_capacity(records.len());
    let mut c = EpochChecksum::genesis(chain);
    for (expected, record) in (0u64..).map(Epoch).zip(records) {
        if record.epoch != expected {
            return Err(ChainError::NotConsecutive {
                expected,
                found: record.epoch,
            });
        }
        c = c.next(record);
        checksums.push(c);
    }
    if &c != published {
        return Err(ChainError::Mismatch { last });
    }
    Ok(checksums)
}
