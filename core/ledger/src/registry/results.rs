//! Kinds 14–15: result digests and slashing a worker that disagrees with a strict majority.

use std::collections::{BTreeMap, BTreeSet};

use keyward_crypto::{IdentityPublicKey, SigningPurpose};
use keyward_hierarchy::ContractPublicKeys;

use super::{Effect, Event, Registry, Role};
use crate::body::Kind;
use crate::cluster::KeyContext;
use crate::reject::Rejected;
use crate::result::{MisbehaviourReport, Offence, ResultDigest, Subject, result_message};

/// The digests of one subject, and its electorate, fixed when the first digest arrived (a
/// migration's cluster may grow afterwards; the majority is over who was asked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Digests {
    electorate: BTreeSet<IdentityPublicKey>,
    by: BTreeMap<IdentityPublicKey, [u8; 32]>,
}

impl Registry {
    /// Who must publish a digest for `subject`, and the contract keys that sign it.
    fn scope(
        &self,
        subject: &Subject,
    ) -> Result<(&BTreeSet<IdentityPublicKey>, &ContractPublicKeys), Rejected> {
        let found = match subject {
            Subject::Command(id) => self.commands.get(id).and_then(|command| {
                let context = KeyContext::from(&command.context);
                let keys = self
                    .contracts
                    .get(&command.context.contract)?
                    .keys(context)?;
                Some((
                    self.electorate(subject).unwrap_or(&command.electorate),
                    keys,
                ))
            }),
            Subject::Migration {
                contract,
                epoch,
                generation,
            } => self.contracts.get(contract).and_then(|c| {
                let context = KeyContext {
                    epoch: *epoch,
                    generation: *generation,
                };
                let keys = c.keys(context)?;
                let electorate = match self.electorate(subject) {
                    Some(fixed) => fixed,
                    None => self.clusters.get(c.cluster())?.members_at(*generation)?,
                };
                Some((electorate, keys))
            }),
        };
        found.ok_or(Rejected::UnknownSubject)
    }

    fn electorate(&self, subject: &Subject) -> Option<&BTreeSet<IdentityPublicKey>> {
        self.digests.get(subject).map(|d| &d.electorate)
    }

    /// The digest more than half of `subject`'s electorate published, if there is one.
    fn majority(&self, subject: &Subject) -> Option<[u8; 32]> {
        let d = self.digests.get(subject)?;
        d.by.values()
            .find(|x| d.by.values().filter(|y| y == x).count() * 2 > d.electorate.len())
            .copied()
    }

    pub(super) fn check_digest(
        &self,
        author: IdentityPublicKey,
        result: &ResultDigest,
    ) -> Result<Effect, Rejected> {
        match self.nodes.get(&author) {
            Some(node) if node.is_active() && node.role == Role::Worker => {
                if node.slashed {
                    return Err(Rejected::WorkerSlashed);
                }
            }
            _ => {
                return Err(Rejected::WrongAuthor {
                    kind: Kind::ResultDigest,
                    needs: "an active worker",
                });
            }
        }
        let (electorate, keys) = self.scope(&result.subject)?;
        if !electorate.contains(&author) {
            return Err(Rejected::NotClusterMember);
        }
        if self
            .digests
            .get(&result.subject)
            .is_some_and(|d| d.by.contains_key(&author))
        {
            return Err(Rejected::DuplicateDigest);
        }
        let message = result_message(&self.genesis.hash(), &result.subject, &result.digest);
        keys.sr25519
            .verify(SigningPurpose::ContractResult, &message, &result.signature)
            .map_err(|_| Rejected::BadResultSignature)?;
        Ok(Effect::Digest {
            result: Box::new(result.clone()),
            electorate: electorate.clone(),
        })
    }

    pub(super) fn check_report(
        &self,
        author: IdentityPublicKey,
        report: &MisbehaviourReport,
    ) -> Result<Effect, Rejected> {
        let known = self.genesis.config().council.contains(&author)
            || self.nodes.get(&author).is_some_and(super::Node::is_active);
        if !known {
            return Err(Rejected::WrongAuthor {
                kind: Kind::MisbehaviourReport,
                needs: "a council member or an active node",
            });
        }
        let Offence::DigestMismatch = report.offence;
        self.scope(&report.subject)?;
        let accused = self
            .digests
            .get(&report.subject)
            .and_then(|d| d.by.get(&report.accused))
            .ok_or(Rejected::NoDigest)?;
        let majority = self.majority(&report.subject).ok_or(Rejected::NoMajority)?;
        if *accused == majority {
            return Err(Rejected::DigestAgrees);
        }
        if self
            .reports
            .contains(&(report.subject.clone(), report.accused))
        {
            return Err(Rejected::AlreadyReported);
        }
        let amount = self.slash_amount(&report.accused);
        Ok(Effect::Slash {
            report: Box::new(report.clone()),
            amount,
        })
    }

    pub(super) fn commit_digest(
        &mut self,
        author: IdentityPublicKey,
        result: ResultDigest,
        electorate: BTreeSet<IdentityPublicKey>,
    ) -> Vec<Event> {
        self.digests
            .entry(result.subject.clone())
            .or_insert_with(|| Digests {
                electorate,
                by: BTreeMap::new(),
            })
            .by
            .insert(author, result.digest);
        vec![Event::DigestPublished {
            subject: result.subject,
            worker: author,
        }]
    }

    pub(super) fn commit_slash(&mut self, report: MisbehaviourReport, amount: u64) -> Vec<Event> {
        self.slash(&report.accused, amount);
        self.reports
            .insert((report.subject.clone(), report.accused));
        vec![Event::Slashed {
            worker: report.accused,
            amount,
            subject: report.subject,
        }]
    }

    /// What slashing `id` takes: the genesis's `slash_bps` of its stake, rounded down.
    pub(super) fn slash_amount(&self, id: &IdentityPublicKey) -> u64 {
        let stake = self.nodes.get(id).map_or(0, |n| u128::from(n.stake));
        let bps = u128::from(self.genesis.config().params.slash_bps);
        u64::try_from(stake * bps / 10_000).expect("at most the stake")
    }

    /// Slashes registered node `id` by `amount` (from [`Registry::slash_amount`]) and marks it.
    pub(super) fn slash(&mut self, id: &IdentityPublicKey, amount: u64) {
        let node = self
            .nodes
            .get_mut(id)
            .expect("only registered nodes are slashed");
        node.stake -= amount;
        node.slashed = true;
    }

    /// The digests published for `subject`, by worker.
    pub fn digests(
        &self,
        subject: &Subject,
    ) -> impl Iterator<Item = (&IdentityPublicKey, &[u8; 32])> {
        self.digests.get(subject).into_iter().flat_map(|d| &d.by)
    }
}
