//! Council entries (kinds 16–17, PROTOCOL §16.9): a council member proposes an action; it runs
//! once the genesis's threshold of members approved it before it expired.

use std::collections::BTreeSet;

use keyward_crypto::{DecodeError, IdentityPublicKey, Reader, Writer};
use keyward_hierarchy::ClusterId;

use crate::codec::{ascending, decode_committee, decode_id, decode_identity, encode_id};
use crate::entry::EntryHash;
use crate::epoch::MAX_COMMITTEE;

/// What the council can decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create a new epoch whose MasterKey only `committee` receives, then remove every other
    /// gatekeeper. Classic mode: `committee[0]` creates it. Threshold mode: `committee` creates
    /// it by DKG and every earlier epoch is reshared to it (share index `i + 1` for member `i`).
    RotateMasterKey {
        /// The new epoch's founding committee, in share-index order.
        committee: Vec<IdentityPublicKey>,
    },
    /// Keep the MasterKey; admit `set` and remove every other gatekeeper. Classic mode: the set
    /// must hold every epoch already, so that nothing is lost; its holders hand the epochs to the
    /// rest. Threshold mode: every epoch is reshared to the set (share indices in set order).
    ReplaceGatekeepers {
        /// The gatekeepers that remain.
        set: BTreeSet<IdentityPublicKey>,
    },
    /// Remove a worker; its cluster moves to a new generation without it.
    RemoveWorker {
        /// The worker.
        worker: IdentityPublicKey,
    },
    /// Move a cluster to a new generation, so that every key of the old one opens nothing
    /// written afterwards.
    RekeyCluster {
        /// The cluster.
        cluster: ClusterId,
    },
    /// Threshold mode: give every epoch's committee new shares of the same key (a refresh), so
    /// that shares stolen before it are useless.
    RefreshShares,
    /// Drop the newest epoch while it is still pending (a founder never accepts, or a rotation
    /// stalls), so the network can try again. A pending epoch has produced no key.
    AbandonEpoch {
        /// The pending epoch.
        epoch: keyward_hierarchy::Epoch,
    },
}

impl Action {
    /// The action's name, as in logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::RotateMasterKey { .. } => "rotate_master_key",
            Self::ReplaceGatekeepers { .. } => "replace_gatekeepers",
            Self::RemoveWorker { .. } => "remove_worker",
            Self::RekeyCluster { .. } => "rekey_cluster",
            Self::AbandonEpoch { .. } => "abandon_epoch",
            Self::RefreshShares => "refresh_shares",
        }
    }
}

/// Kind 16: a proposal, open for `ttl` entries after its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    /// How many entries after this one approvals are accepted (1..=the genesis's
    /// `max_proposal_ttl`).
    pub ttl: u64,
    /// What it does.
    pub action: Action,
}

fn encode_members<'a>(
    w: &mut Writer,
    members: impl ExactSizeIterator<Item = &'a IdentityPublicKey>,
) {
    w.u16(u16::try_from(members.len()).expect("bounded by MAX_COMMITTEE"));
    for member in members {
        w.raw(&member.to_bytes());
    }
}

fn member_count(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let n = usize::from(r.u16("member count")?);
    if n == 0 || n > MAX_COMMITTEE {
        return Err(DecodeError::Invalid {
            field: "member count",
            reason: "1..=64 gatekeepers",
        });
    }
    Ok(n)
}

impl Proposal {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u64(self.ttl);
        match &self.action {
            Action::RotateMasterKey { committee } => {
                w.u8(1);
                encode_members(w, committee.iter());
            }
            Action::ReplaceGatekeepers { set } => {
                w.u8(2);
                encode_members(w, set.iter());
            }
            Action::RemoveWorker { worker } => {
                w.u8(3).raw(&worker.to_bytes());
            }
            Action::RekeyCluster { cluster } => {
                w.u8(4);
                encode_id(w, cluster.as_str());
            }
            Action::AbandonEpoch { epoch } => {
                w.u8(5).u64(epoch.0);
            }
            Action::RefreshShares => {
                w.u8(6);
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ttl = r.u64("ttl")?;
        let action = match r.u8("action")? {
            1 => {
                let n = member_count(r)?;
                Action::RotateMasterKey {
                    committee: decode_committee(r, n)?,
                }
            }
            2 => {
                let n = member_count(r)?;
                let mut set = BTreeSet::new();
                for _ in 0..n {
                    let member = decode_identity(r, "gatekeeper")?;
                    ascending(&set, &member, "gatekeepers")?;
                    set.insert(member);
                }
                Action::ReplaceGatekeepers { set }
            }
            3 => Action::RemoveWorker {
                worker: decode_identity(r, "worker")?,
            },
            4 => Action::RekeyCluster {
                cluster: decode_id(r, "cluster id", ClusterId::new)?,
            },
            5 => Action::AbandonEpoch {
                epoch: keyward_hierarchy::Epoch(r.u64("epoch")?),
            },
            6 => Action::RefreshShares,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "action",
                    reason: "unknown action",
                });
            }
        };
        Ok(Self { ttl, action })
    }
}

/// Kind 17: a council member approves a proposal (its entry hash).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Approval {
    /// The proposal.
    pub proposal: EntryHash,
}

impl Approval {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.raw(&self.proposal.0);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            proposal: EntryHash(r.array("proposal")?),
        })
    }
}
