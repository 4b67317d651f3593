//! Result entries (kinds 14–15, PROTOCOL §16.8): each worker of a command's electorate publishes a
//! digest of its result, signed with the contract's key; a worker whose digest disagrees with a
//! strict majority of the electorate is reported and slashed.

use keyward_crypto::{
    DecodeError, IdentityPublicKey, IdentitySignature, Reader, SigningPurpose, Writer,
};
use keyward_hierarchy::{ContractId, ContractKey, Epoch, Generation};

use crate::codec::{decode_id, decode_identity, encode_id};
use crate::entry::EntryHash;

/// What a digest is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// The result of a queued command (its id).
    Command(EntryHash),
    /// A contract's state re-encrypted for a new key context (after a rotation or re-key).
    Migration {
        /// The contract.
        contract: ContractId,
        /// The new context's epoch.
        epoch: Epoch,
        /// The new context's generation.
        generation: Generation,
    },
}

impl Subject {
    /// `u8(1) || command id(32)` or `u8(2) || var8(contract) || u64(epoch) || u64(generation)`.
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Self::Command(id) => {
                w.u8(1).raw(&id.0);
            }
            Self::Migration {
                contract,
                epoch,
                generation,
            } => {
                w.u8(2);
                encode_id(w, contract.as_str());
                w.u64(epoch.0).u64(generation.0);
            }
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("subject")? {
            1 => Ok(Self::Command(EntryHash(r.array("command id")?))),
            2 => Ok(Self::Migration {
                contract: decode_id(r, "contract id", ContractId::new)?,
                epoch: Epoch(r.u64("epoch")?),
                generation: Generation(r.u64("generation")?),
            }),
            _ => Err(DecodeError::Invalid {
                field: "subject",
                reason: "not 1 (command) or 2 (migration)",
            }),
        }
    }
}

/// What the contract's sr25519 key signs for a digest:
/// `var16("keyward/v1/ledger/result") || genesis hash || subject || digest`.
pub fn result_message(genesis: &EntryHash, subject: &Subject, digest: &[u8; 32]) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(b"keyward/v1/ledger/result").raw(&genesis.0);
    subject.encode(&mut w);
    w.raw(digest);
    w.finish()
}

/// Kind 14: a worker's digest of its result for a subject, signed by the contract's key, which
/// proves the worker holds the ContractKey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultDigest {
    /// What the digest is about.
    pub subject: Subject,
    /// The digest (the contract defines it; the ledger compares it only).
    pub digest: [u8; 32],
    /// The contract key's signature over [`result_message`].
    pub signature: IdentitySignature,
}

impl ResultDigest {
    /// A worker's digest, signed with the contract's key.
    pub fn sign(
        key: &ContractKey,
        genesis: &EntryHash,
        subject: Subject,
        digest: [u8; 32],
        rng: &mut impl keyward_crypto::Rng,
    ) -> Self {
        let signature = key.identity().sign(
            SigningPurpose::ContractResult,
            &result_message(genesis, &subject, &digest),
            rng,
        );
        Self {
            subject,
            digest,
            signature,
        }
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        self.subject.encode(w);
        w.raw(&self.digest).raw(&self.signature.to_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            subject: Subject::decode(r)?,
            digest: r.array("digest")?,
            signature: IdentitySignature::from_bytes(&r.array("signature")?)?,
        })
    }
}

/// Why a worker is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Offence {
    /// Its digest differs from the one a strict majority of the electorate published.
    DigestMismatch,
}

/// Kind 15: a report that `accused` misbehaved on `subject`. Anyone the ledger knows may report;
/// the registry checks the offence from the digests alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisbehaviourReport {
    /// The worker reported.
    pub accused: IdentityPublicKey,
    /// What it did.
    pub offence: Offence,
    /// Where.
    pub subject: Subject,
}

impl MisbehaviourReport {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.raw(&self.accused.to_bytes());
        w.u8(match self.offence {
            Offence::DigestMismatch => 1,
        });
        self.subject.encode(w);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let accused = decode_identity(r, "accused")?;
        let offence = match r.u8("offence")? {
            1 => Offence::DigestMismatch,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "offence",
                    reason: "unknown offence",
                });
            }
        };
        Ok(Self {
            accused,
            offence,
            subject: Subject::decode(r)?,
        })
    }
}
