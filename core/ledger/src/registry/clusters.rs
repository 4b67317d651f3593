//! Kinds 8–10: clusters, their members and generations, their published keys, and which worker
//! a gatekeeper may provision with which ClusterKey.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use keyward_crypto::IdentityPublicKey;
use keyward_hierarchy::{ClusterId, ClusterKeyRequest, Epoch, EpochRecord, Generation};

use super::{Effect, EpochStatus, Event, Registry, Role};
use crate::body::Kind;
use crate::cluster::{ClusterAddMember, ClusterCreate, ClusterKeyPublish, KeyContext};
use crate::reject::Rejected;

/// A cluster of workers.
///
/// Guarantees: `members_at[generation]` is the current membership; a removed or departed worker
/// is absent from every later generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    owner: IdentityPublicKey,
    generation: Generation,
    members_at: BTreeMap<Generation, BTreeSet<IdentityPublicKey>>,
    keys: BTreeMap<KeyContext, IdentityPublicKey>,
}

impl Cluster {
    /// The council member who formed it and may add members.
    pub fn owner(&self) -> IdentityPublicKey {
        self.owner
    }

    /// The current generation.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The current members.
    pub fn members(&self) -> &BTreeSet<IdentityPublicKey> {
        &self.members_at[&self.generation]
    }

    /// The members of `generation`, if it exists.
    pub fn members_at(&self, generation: Generation) -> Option<&BTreeSet<IdentityPublicKey>> {
        self.members_at.get(&generation)
    }

    /// The cluster's published sr25519 key for `context`.
    pub fn key(&self, context: KeyContext) -> Option<&IdentityPublicKey> {
        self.keys.get(&context)
    }
}

/// Why a gatekeeper must not provision a worker with a ClusterKey.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProvisionError {
    /// Not an active, unslashed worker.
    #[error("the requester is not an active, unslashed worker")]
    NotAWorker,
    /// No such cluster.
    #[error("cluster {0} does not exist")]
    UnknownCluster(ClusterId),
    /// The worker is not a current member of the cluster, or was not a member of that generation.
    #[error("the worker is not a member of the cluster in generation {0}")]
    NotMember(Generation),
    /// The epoch does not exist or is not active or retained yet.
    #[error("epoch {0} is not active or retained")]
    EpochNotReady(Epoch),
}

impl Registry {
    /// An active worker, never slashed: one that may join clusters and get keys.
    fn is_eligible_worker(&self, id: &IdentityPublicKey) -> bool {
        self.nodes
            .get(id)
            .is_some_and(|n| n.is_active() && n.role == Role::Worker && !n.slashed)
    }

    /// The cluster `id`.
    pub fn cluster(&self, id: &ClusterId) -> Option<&Cluster> {
        self.clusters.get(id)
    }

    /// Every cluster, in id order.
    pub fn clusters(&self) -> impl Iterator<Item = (&ClusterId, &Cluster)> {
        self.clusters.iter()
    }

    /// The cluster `worker` belongs to.
    pub fn cluster_of(&self, worker: &IdentityPublicKey) -> Option<&ClusterId> {
        self.cluster_of.get(worker)
    }

    /// The key context a cluster uses now: the current epoch and its current generation.
    ///
    /// # Errors
    /// [`Rejected::UnknownCluster`] or [`Rejected::NoActiveEpoch`].
    pub fn key_context(&self, cluster: &ClusterId) -> Result<KeyContext, Rejected> {
        let c = self
            .clusters
            .get(cluster)
            .ok_or_else(|| Rejected::UnknownCluster(cluster.clone()))?;
        self.key_context_of(c).ok_or(Rejected::NoActiveEpoch)
    }

    /// [`Registry::key_context`] of a cluster already at hand (no lookup); `None` without an
    /// active epoch.
    pub fn key_context_of(&self, cluster: &Cluster) -> Option<KeyContext> {
        Some(KeyContext {
            epoch: self.current?,
            generation: cluster.generation,
        })
    }

    /// Whether a gatekeeper may answer `worker`'s `request`, and the epoch record to evaluate
    /// under. A worker gets the keys of every generation it belonged to, as long as it is still
    /// an active member of the cluster; a removed or departed worker gets nothing more.
    ///
    /// # Errors
    /// A [`ProvisionError`].
    pub fn may_provision(
        &self,
        worker: &IdentityPublicKey,
        request: &ClusterKeyRequest,
    ) -> Result<&EpochRecord, ProvisionError> {
        if !self.is_eligible_worker(worker) {
            return Err(ProvisionError::NotAWorker);
        }
        let cluster = self
            .clusters
            .get(&request.cluster)
            .ok_or_else(|| ProvisionError::UnknownCluster(request.cluster.clone()))?;
        let member_then = cluster
            .members_at(request.generation)
            .is_some_and(|m| m.contains(worker));
        if !member_then || !cluster.members().contains(worker) {
            return Err(ProvisionError::NotMember(request.generation));
        }
        match self.epoch(request.epoch) {
            Some(state) if state.status() != EpochStatus::Pending => Ok(state.record()),
            _ => Err(ProvisionError::EpochNotReady(request.epoch)),
        }
    }

    /// Checks each worker (active and unslashed) can join a cluster of `size` members.
    fn check_joiners<'a>(
        &self,
        workers: impl IntoIterator<Item = &'a IdentityPublicKey>,
        size: usize,
    ) -> Result<(), Rejected> {
        let max = self.genesis.config().params.max_cluster_size;
        if size > usize::from(max) {
            return Err(Rejected::ClusterFull { max });
        }
        for worker in workers {
            if !self.is_eligible_worker(worker) {
                return Err(Rejected::NotAWorker {
                    id: (*worker).into(),
                });
            }
            if self.cluster_of.contains_key(worker) {
                return Err(Rejected::AlreadyInCluster {
                    id: (*worker).into(),
                });
            }
        }
        Ok(())
    }

    pub(super) fn check_cluster_create(
        &self,
        author: IdentityPublicKey,
        create: &ClusterCreate,
    ) -> Result<Effect, Rejected> {
        if !self.genesis.config().council.contains(&author) {
            return Err(Rejected::WrongAuthor {
                kind: Kind::ClusterCreate,
                needs: "a council member",
            });
        }
        if self.clusters.contains_key(&create.cluster) {
            return Err(Rejected::ClusterExists(create.cluster.clone()));
        }
        self.check_joiners(&create.members, create.members.len())?;
        Ok(Effect::CreateCluster(create.clone()))
    }

    pub(super) fn check_add_member(
        &self,
        author: IdentityPublicKey,
        add: &ClusterAddMember,
    ) -> Result<Effect, Rejected> {
        let cluster = self
            .clusters
            .get(&add.cluster)
            .ok_or_else(|| Rejected::UnknownCluster(add.cluster.clone()))?;
        if cluster.owner != author {
            return Err(Rejected::WrongAuthor {
                kind: Kind::ClusterAddMember,
                needs: "the cluster's owner",
            });
        }
        self.check_joiners([&add.worker], cluster.members().len() + 1)?;
        Ok(Effect::AddMember(add.clone()))
    }

    pub(super) fn check_cluster_key(
        &self,
        author: IdentityPublicKey,
        publish: &ClusterKeyPublish,
    ) -> Result<Effect, Rejected> {
        let expected = self.key_context(&publish.cluster)?;
        // Classic mode: a holder of the epoch, which can derive the key. Threshold mode: no
        // gatekeeper can, so a member worker publishes the key it combined (PROTOCOL §16.7).
        let allowed = if self.key_threshold() == 1 {
            self.epoch(publish.epoch)
                .is_some_and(|s| s.holders().contains(&author))
        } else {
            self.is_eligible_worker(&author)
                && self.clusters[&publish.cluster].members().contains(&author)
        };
        if !allowed {
            return Err(Rejected::WrongAuthor {
                kind: Kind::ClusterKeyPublish,
                needs: if self.key_threshold() == 1 {
                    "an active holder of the epoch"
                } else {
                    "an active member worker of the cluster"
                },
            });
        }
        let found = KeyContext {
            epoch: publish.epoch,
            generation: publish.generation,
        };
        if found != expected {
            return Err(Rejected::StaleKeyContext { expected, found });
        }
        if self.clusters[&publish.cluster].keys.contains_key(&found) {
            return Err(Rejected::AlreadyPublished);
        }
        Ok(Effect::PublishClusterKey(publish.clone()))
    }

    pub(super) fn commit_cluster_create(
        &mut self,
        author: IdentityPublicKey,
        create: ClusterCreate,
    ) -> Vec<Event> {
        for worker in &create.members {
            self.cluster_of.insert(*worker, create.cluster.clone());
        }
        let generation = Generation(0);
        self.clusters.insert(
            create.cluster.clone(),
            Cluster {
                owner: author,
                generation,
                members_at: BTreeMap::from([(generation, create.members)]),
                keys: BTreeMap::new(),
            },
        );
        vec![Event::ClusterChanged {
            cluster: create.cluster,
            generation,
        }]
    }

    pub(super) fn commit_add_member(&mut self, add: ClusterAddMember) -> Vec<Event> {
        let cluster = self.clusters.get_mut(&add.cluster).expect("checked");
        let generation = cluster.generation;
        cluster
            .members_at
            .get_mut(&generation)
            .expect("the current generation has members")
            .insert(add.worker);
        self.cluster_of.insert(add.worker, add.cluster.clone());
        vec![Event::ClusterChanged {
            cluster: add.cluster,
            generation,
        }]
    }

    pub(super) fn commit_cluster_key(&mut self, publish: ClusterKeyPublish) -> Vec<Event> {
        let context = KeyContext {
            epoch: publish.epoch,
            generation: publish.generation,
        };
        self.clusters
            .get_mut(&publish.cluster)
            .expect("checked")
            .keys
            .insert(context, publish.key);
        self.open_signing(crate::committee::Statement::ClusterKey(
            publish.cluster.clone(),
            context,
        ));
        vec![Event::ClusterKeyPublished {
            cluster: publish.cluster,
            context,
        }]
    }

    /// Takes `worker` out of its cluster, if any, and starts a new generation without it, so
    /// that its keys open nothing written afterwards.
    pub(super) fn leave_cluster(&mut self, worker: &IdentityPublicKey) -> Option<Event> {
        let id = self.cluster_of.remove(worker)?;
        Some(self.next_generation(&id, Some(worker)))
    }

    /// Starts the cluster's next generation, without `leaving` if given.
    pub(super) fn next_generation(
        &mut self,
        id: &ClusterId,
        leaving: Option<&IdentityPublicKey>,
    ) -> Event {
        let cluster = self.clusters.get_mut(id).expect("a known cluster");
        let mut members = cluster.members().clone();
        if let Some(worker) = leaving {
            members.remove(worker);
        }
        cluster.generation = Generation(cluster.generation.0 + 1);
        cluster.members_at.insert(cluster.generation, members);
        Event::ClusterChanged {
            cluster: id.clone(),
            generation: cluster.generation,
        }
    }
}
