//! Committee signatures (kinds 24–25, PROTOCOL §16.13): in threshold mode the committee holding
//! an epoch signs, with FROST under the epoch's master public key, the epoch's checksum and every
//! cluster key published for that epoch. A certificate is an ordinary Schnorr signature, so
//! anyone with the master public key checks it without replaying the ledger
//! ([`Certified::verify`]).
//!
//! 1. When an epoch activates or a cluster key is published, the registry opens a signing run
//!    for the [`Statement`].
//! 2. Members of the epoch's current committee post a [`SignCommit`] (their FROST nonce
//!    commitment); the first `t` are the signers.
//! 3. Each signer posts a [`SignShare`]. The last share completes the run: every node aggregates
//!    the shares, and either records the certificate or names the signers whose shares are wrong;
//!    they are slashed and the run restarts without them.

use keyward_crypto::{DecodeError, IdentityPublicKey, Reader, Writer};
use keyward_hierarchy::{ClusterId, Epoch, EpochChecksum, Generation};
use keyward_threshold::{CommitteeSignature, NonceCommitment, PublicKey, SignatureShare};

use crate::cluster::KeyContext;
use crate::codec::{decode_id, encode_id};
use crate::entry::EntryHash;

/// What a committee signs: an epoch's checksum, or a cluster's key in a key context. The content
/// (the checksum, the key) comes from the registry, never from an entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Statement {
    /// The epoch checksum `c_e` after `epoch`.
    EpochChecksum(Epoch),
    /// The cluster's published sr25519 key in a key context.
    ClusterKey(ClusterId, KeyContext),
}

impl Statement {
    /// The epoch whose committee signs it.
    pub fn epoch(&self) -> Epoch {
        match self {
            Self::EpochChecksum(epoch) => *epoch,
            Self::ClusterKey(_, context) => context.epoch,
        }
    }

    /// Writes `u8(0) || u64(epoch)` or `u8(1) || var8(cluster) || u64(epoch) ||
    /// u64(generation)`.
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Self::EpochChecksum(epoch) => {
                w.u8(0).u64(epoch.0);
            }
            Self::ClusterKey(cluster, context) => {
                w.u8(1);
                encode_id(w, cluster.as_str());
                w.u64(context.epoch.0).u64(context.generation.0);
            }
        }
    }

    /// Reads [`Statement::encode`].
    ///
    /// # Errors
    /// A [`DecodeError`] naming the field.
    pub fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        match r.u8("statement")? {
            0 => Ok(Self::EpochChecksum(Epoch(r.u64("epoch")?))),
            1 => Ok(Self::ClusterKey(
                decode_id(r, "cluster id", ClusterId::new)?,
                KeyContext {
                    epoch: Epoch(r.u64("epoch")?),
                    generation: Generation(r.u64("generation")?),
                },
            )),
            _ => Err(DecodeError::Invalid {
                field: "statement",
                reason: "not 0 (epoch checksum) or 1 (cluster key)",
            }),
        }
    }
}

impl core::fmt::Display for Statement {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::EpochChecksum(epoch) => write!(f, "the checksum of epoch {epoch}"),
            Self::ClusterKey(cluster, context) => {
                write!(f, "the key of cluster {cluster} in {context}")
            }
        }
    }
}

/// A statement with its content: what the committee's signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Certified {
    /// Epoch `epoch`'s checksum is `checksum`.
    EpochChecksum {
        /// The epoch.
        epoch: Epoch,
        /// Its checksum `c_e`.
        checksum: EpochChecksum,
    },
    /// Cluster `cluster`'s sr25519 key in `context` is `key`.
    ClusterKey {
        /// The cluster.
        cluster: ClusterId,
        /// The key context.
        context: KeyContext,
        /// The cluster's public key.
        key: IdentityPublicKey,
    },
}

impl Certified {
    /// The message the committee signs: `var16("keyward/v1/ledger/certified-checksum") || genesis
    /// || u64(epoch) || checksum`, or `var16("keyward/v1/ledger/certified-cluster-key") || genesis
    /// || var8(cluster) || u64(epoch) || u64(generation) || key`.
    pub fn message(&self, genesis: &EntryHash) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::EpochChecksum { epoch, checksum } => {
                w.var16(b"keyward/v1/ledger/certified-checksum")
                    .raw(&genesis.0)
                    .u64(epoch.0)
                    .raw(&checksum.0);
            }
            Self::ClusterKey {
                cluster,
                context,
                key,
            } => {
                w.var16(b"keyward/v1/ledger/certified-cluster-key")
                    .raw(&genesis.0);
                encode_id(&mut w, cluster.as_str());
                w.u64(context.epoch.0)
                    .u64(context.generation.0)
                    .raw(&key.to_bytes());
            }
        }
        w.finish()
    }

    /// Whether `signature` is the committee's signature of this statement on the ledger
    /// `genesis`, under the epoch's master public key `master`. Needs nothing else: a user or
    /// light client can check a certificate from the master public key alone.
    pub fn verify(
        &self,
        genesis: &EntryHash,
        master: &PublicKey,
        signature: &CommitteeSignature,
    ) -> bool {
        signature.verify(master, &self.message(genesis))
    }
}

/// Kind 24: a committee member's FROST nonce commitment for a statement's signing run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignCommit {
    /// What is signed.
    pub statement: Statement,
    /// The run's attempt.
    pub attempt: u16,
    /// The member's nonce commitment.
    pub commitment: NonceCommitment,
}

impl SignCommit {
    pub(crate) fn encode(&self, w: &mut Writer) {
        self.statement.encode(w);
        w.u16(self.attempt).raw(&self.commitment.to_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            statement: Statement::decode(r)?,
            attempt: r.u16("attempt")?,
            commitment: NonceCommitment::from_bytes(&r.array("nonce commitment")?)?,
        })
    }
}

/// Kind 25: a chosen signer's FROST signature share for a statement's signing run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignShare {
    /// What is signed.
    pub statement: Statement,
    /// The run's attempt.
    pub attempt: u16,
    /// The signer's share.
    pub share: SignatureShare,
}

impl SignShare {
    pub(crate) fn encode(&self, w: &mut Writer) {
        self.statement.encode(w);
        w.u16(self.attempt).raw(&self.share.to_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            statement: Statement::decode(r)?,
            attempt: r.u16("attempt")?,
            share: SignatureShare::from_bytes(&r.array("signature share")?)?,
        })
    }
}
