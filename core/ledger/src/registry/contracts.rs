//! Kinds 11–13: contracts, their established public keys per key context, and the commands queued
//! for them in ledger order.

use std::collections::{BTreeMap, BTreeSet};

use keyward_crypto::{Envelope, IdentityPublicKey};
use keyward_hierarchy::{ClusterId, ContractContext, ContractId, ContractPublicKeys};

use super::{Effect, Event, Registry, Role};
use crate::body::Kind;
use crate::cluster::KeyContext;
use crate::contract::{ContractCommand, ContractDeploy};
use crate::entry::EntryHash;
use crate::genesis::CodeId;
use crate::reject::Rejected;

/// A deployed contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contract {
    cluster: ClusterId,
    code: CodeId,
    init: Vec<u8>,
    keys: BTreeMap<KeyContext, Established>,
    commands: Vec<EntryHash>,
}

/// A contract's public keys in one key context: the first certificate published, and every
/// worker that published the same keys.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Established {
    keys: ContractPublicKeys,
    confirmers: BTreeSet<IdentityPublicKey>,
}

impl Contract {
    /// The cluster that runs it.
    pub fn cluster(&self) -> &ClusterId {
        &self.cluster
    }

    /// Which built-in contract it is.
    pub fn code(&self) -> &CodeId {
        &self.code
    }

    /// Its public deployment argument.
    pub fn init(&self) -> &[u8] {
        &self.init
    }

    /// Its certified public keys in `context`, if a worker published them.
    pub fn keys(&self, context: KeyContext) -> Option<&ContractPublicKeys> {
        self.keys.get(&context).map(|e| &e.keys)
    }

    /// Its commands' ids, in ledger order: the order every worker executes them in.
    pub fn commands(&self) -> &[EntryHash] {
        &self.commands
    }

    /// The workers that published the keys of `context`.
    pub fn confirmers(&self, context: KeyContext) -> Option<&BTreeSet<IdentityPublicKey>> {
        self.keys.get(&context).map(|e| &e.confirmers)
    }
}

/// A command queued for a contract: every worker of its electorate executes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The contract and the key context the command was encrypted for.
    pub context: ContractContext,
    /// The cluster's members when the command was accepted.
    pub electorate: BTreeSet<IdentityPublicKey>,
    /// The command's height.
    pub height: u64,
    /// The encrypted input, as the user sealed it to the contract's key.
    pub input: Envelope,
}

/// Only public parts count: certificates carry randomized signatures.
fn same_keys(a: &ContractPublicKeys, b: &ContractPublicKeys) -> bool {
    (a.context == b.context)
        && (a.sr25519, a.x25519, a.cluster_key) == (b.sr25519, b.x25519, b.cluster_key)
}

impl Registry {
    /// The contract `id`.
    pub fn contract(&self, id: &ContractId) -> Option<&Contract> {
        self.contracts.get(id)
    }

    /// Every contract, in id order.
    pub fn contracts(&self) -> impl Iterator<Item = (&ContractId, &Contract)> {
        self.contracts.iter()
    }

    /// The command with id `id` (its entry's hash).
    pub fn command(&self, id: &EntryHash) -> Option<&Command> {
        self.commands.get(id)
    }

    /// A contract's context and established keys now: what a user encrypts to.
    ///
    /// # Errors
    /// [`Rejected::UnknownContract`], [`Rejected::NoActiveEpoch`] or
    /// [`Rejected::ContractKeysMissing`].
    pub fn contract_keys(&self, id: &ContractId) -> Result<&ContractPublicKeys, Rejected> {
        let contract = self
            .contracts
            .get(id)
            .ok_or_else(|| Rejected::UnknownContract(id.clone()))?;
        let context = self.key_context(&contract.cluster)?;
        contract
            .keys(context)
            .ok_or_else(|| Rejected::ContractKeysMissing(id.clone()))
    }

    pub(super) fn check_deploy(
        &self,
        author: IdentityPublicKey,
        deploy: &ContractDeploy,
    ) -> Result<Effect, Rejected> {
        if self.nodes.contains_key(&author) {
            return Err(Rejected::NodeCannotDeploy);
        }
        if self.contracts.contains_key(&deploy.contract) {
            return Err(Rejected::ContractExists(deploy.contract.clone()));
        }
        if !self.genesis.config().contract_codes.contains(&deploy.code) {
            return Err(Rejected::UnknownCode(deploy.code.clone()));
        }
        let cluster = self
            .cluster(&deploy.cluster)
            .ok_or_else(|| Rejected::UnknownCluster(deploy.cluster.clone()))?;
        if cluster.members().is_empty() {
            return Err(Rejected::EmptyCluster(deploy.cluster.clone()));
        }
        Ok(Effect::Deploy(deploy.clone()))
    }

    pub(super) fn check_contract_keys(
        &self,
        author: IdentityPublicKey,
        keys: &ContractPublicKeys,
    ) -> Result<Effect, Rejected> {
        let id = &keys.context.contract;
        let contract = self
            .contracts
            .get(id)
            .ok_or_else(|| Rejected::UnknownContract(id.clone()))?;
        let cluster = self
            .cluster(&contract.cluster)
            .expect("contracts name clusters");
        if !cluster.members().contains(&author) {
            return Err(Rejected::NotClusterMember);
        }
        if self.nodes[&author].slashed {
            return Err(Rejected::WorkerSlashed);
        }
        if keys.context.cluster != contract.cluster {
            // Certified for the contract in another cluster: not under this cluster's key.
            return Err(Rejected::UntrustedClusterKey);
        }
        let expected = self.key_context(&contract.cluster)?;
        let found = KeyContext::from(&keys.context);
        if found != expected {
            return Err(Rejected::StaleKeyContext { expected, found });
        }
        let cluster_key = cluster
            .key(expected)
            .ok_or(Rejected::ClusterKeyMissing(expected))?;
        if keys.cluster_key != *cluster_key {
            return Err(Rejected::UntrustedClusterKey);
        }
        if let Some(established) = contract.keys.get(&expected) {
            if !same_keys(&established.keys, keys) {
                return Err(Rejected::ContractKeysMismatch);
            }
            if established.confirmers.contains(&author) {
                return Err(Rejected::AlreadyPublished);
            }
        }
        Ok(Effect::PublishContractKeys(Box::new(keys.clone())))
    }

    pub(super) fn check_command(
        &self,
        author: IdentityPublicKey,
        command: &ContractCommand,
    ) -> Result<Effect, Rejected> {
        if self
            .nodes
            .get(&author)
            .is_some_and(|n| matches!(n.role, Role::Gatekeeper { .. }))
        {
            return Err(Rejected::WrongAuthor {
                kind: Kind::ContractCommand,
                needs: "anyone but a gatekeeper",
            });
        }
        let keys = self.contract_keys(&command.contract)?;
        if command.input.recipient() != keys.x25519
            || command.input.aad() != keys.context.to_bytes().as_slice()
        {
            return Err(Rejected::WrongContractKey);
        }
        let cluster = self
            .cluster(&keys.context.cluster)
            .expect("contracts name clusters");
        Ok(Effect::Command(Box::new(Command {
            context: keys.context.clone(),
            electorate: cluster.members().clone(),
            height: self.height,
            input: command.input.clone(),
        })))
    }

    pub(super) fn commit_deploy(&mut self, deploy: ContractDeploy) -> Vec<Event> {
        let event = Event::ContractDeployed {
            contract: deploy.contract.clone(),
            cluster: deploy.cluster.clone(),
        };
        self.contracts.insert(
            deploy.contract,
            Contract {
                cluster: deploy.cluster,
                code: deploy.code,
                init: deploy.init,
                keys: BTreeMap::new(),
                commands: Vec::new(),
            },
        );
        vec![event]
    }

    pub(super) fn commit_contract_keys(
        &mut self,
        author: IdentityPublicKey,
        keys: ContractPublicKeys,
    ) -> Vec<Event> {
        let context = KeyContext::from(&keys.context);
        let id = keys.context.contract.clone();
        let contract = self.contracts.get_mut(&id).expect("checked");
        let established = contract.keys.entry(context).or_insert_with(|| Established {
            keys,
            confirmers: BTreeSet::new(),
        });
        established.confirmers.insert(author);
        if established.confirmers.len() == 1 {
            vec![Event::ContractKeysEstablished {
                contract: id,
                context,
            }]
        } else {
            Vec::new()
        }
    }

    pub(super) fn commit_command(&mut self, id: EntryHash, command: Command) -> Vec<Event> {
        let event = Event::CommandQueued {
            id,
            contract: command.context.contract.clone(),
        };
        self.contracts
            .get_mut(&command.context.contract)
            .expect("checked")
            .commands
            .push(id);
        self.commands.insert(id, command);
        vec![event]
    }
}
