//! Cluster entries (kinds 8–10, PROTOCOL §16.7): the council forms clusters of workers and adds
//! members; a gatekeeper publishes each cluster's public key for every key context, which users
//! then trust for the contracts of that cluster.

use std::collections::BTreeSet;

use keyward_crypto::{DecodeError, IdentityPublicKey, Reader, Writer};
use keyward_hierarchy::{ClusterId, Epoch, Generation};

use crate::codec::{ascending, decode_id, decode_identity, encode_id};

/// The (epoch, generation) whose keys a cluster uses: the current epoch and the cluster's
/// current generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyContext {
    /// The MasterKey epoch.
    pub epoch: Epoch,
    /// The cluster generation.
    pub generation: Generation,
}

impl From<&keyward_hierarchy::ContractContext> for KeyContext {
    /// The key context a contract context names.
    fn from(c: &keyward_hierarchy::ContractContext) -> Self {
        Self {
            epoch: c.epoch,
            generation: c.generation,
        }
    }
}

impl core::fmt::Display for KeyContext {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "epoch {} generation {}", self.epoch, self.generation)
    }
}

/// Kind 8: a council member forms a cluster of registered workers and owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterCreate {
    /// The new cluster's id.
    pub cluster: ClusterId,
    /// Its first members (1..=the genesis's `max_cluster_size`).
    pub members: BTreeSet<IdentityPublicKey>,
}

impl ClusterCreate {
    pub(crate) fn encode(&self, w: &mut Writer) {
        encode_id(w, self.cluster.as_str());
        w.u16(u16::try_from(self.members.len()).expect("bounded by MAX_CLUSTER_SIZE"));
        for member in &self.members {
            w.raw(&member.to_bytes());
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let cluster = decode_id(r, "cluster id", ClusterId::new)?;
        let n = usize::from(r.u16("member count")?);
        if n == 0 || n > usize::from(crate::genesis::MAX_CLUSTER_SIZE) {
            return Err(DecodeError::Invalid {
                field: "member count",
                reason: "a cluster starts with 1..=1024 workers",
            });
        }
        let mut members = BTreeSet::new();
        for _ in 0..n {
            let member = decode_identity(r, "member")?;
            ascending(&members, &member, "members")?;
            members.insert(member);
        }
        Ok(Self { cluster, members })
    }
}

/// Kind 9: the cluster's owner adds a worker. The generation stays: a newcomer reads the state
/// written before it joined, as in Phala.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterAddMember {
    /// The cluster.
    pub cluster: ClusterId,
    /// The worker joining it.
    pub worker: IdentityPublicKey,
}

impl ClusterAddMember {
    pub(crate) fn encode(&self, w: &mut Writer) {
        encode_id(w, self.cluster.as_str());
        w.raw(&self.worker.to_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            cluster: decode_id(r, "cluster id", ClusterId::new)?,
            worker: decode_identity(r, "worker")?,
        })
    }
}

/// Kind 10: a holder of the epoch publishes the cluster's sr25519 public key for one key context
/// (`ClusterKey::derive(master, epoch, cluster, generation).identity().public()`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterKeyPublish {
    /// The cluster.
    pub cluster: ClusterId,
    /// The epoch of the key.
    pub epoch: Epoch,
    /// The generation of the key.
    pub generation: Generation,
    /// The cluster's sr25519 public key in that context.
    pub key: IdentityPublicKey,
}

impl ClusterKeyPublish {
    pub(crate) fn encode(&self, w: &mut Writer) {
        encode_id(w, self.cluster.as_str());
        w.u64(self.epoch.0)
            .u64(self.generation.0)
            .raw(&self.key.to_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            cluster: decode_id(r, "cluster id", ClusterId::new)?,
            epoch: Epoch(r.u64("epoch")?),
            generation: Generation(r.u64("generation")?),
            key: decode_identity(r, "cluster key")?,
        })
    }
}
