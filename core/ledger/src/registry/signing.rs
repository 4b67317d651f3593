//! Kinds 24–25: committee signatures over epoch checksums and cluster keys (threshold mode,
//! PROTOCOL §16.13).
//!
//! Activating an epoch or publishing a cluster key opens a signing run for its [`Statement`].
//! Active members of the epoch's current committee commit to nonces; the first `t` commitments
//! fix the signers and the signing package, so every node agrees on it. When the last chosen
//! signer's share is in, every node aggregates: a valid signature is the statement's certificate;
//! otherwise the signers whose shares do not verify are named, slashed and excluded, and the run
//! restarts. A resharing of the epoch restarts its runs too, since the shares change.

use std::collections::{BTreeMap, BTreeSet};

use keyward_crypto::IdentityPublicKey;
use keyward_hierarchy::Epoch;
use keyward_threshold::{
    CommitteeSignature, NonceCommitment, ShareIndex, SignError, SignatureShare, sign,
};

use super::{Effect, Event, Registry};
use crate::committee::{Certified, SignCommit, SignShare, Statement};
use crate::reject::Rejected;

/// One statement's signing run.
///
/// Guarantees: every commitment and share comes from an active member of the epoch's current
/// committee; at most `t` commitments, and shares only from their signers; attempt numbers only
/// go up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningRun {
    attempt: u16,
    /// The deployment's threshold, which every committee has.
    threshold: u16,
    commitments: BTreeMap<ShareIndex, NonceCommitment>,
    shares: BTreeMap<ShareIndex, SignatureShare>,
    excluded: BTreeSet<IdentityPublicKey>,
}

impl SigningRun {
    /// The attempt under way.
    pub fn attempt(&self) -> u16 {
        self.attempt
    }

    /// The nonce commitments so far; once the signers are chosen, exactly theirs.
    pub fn commitments(&self) -> &BTreeMap<ShareIndex, NonceCommitment> {
        &self.commitments
    }

    /// Whether the signers are chosen: `t` commitments are in.
    pub fn chosen(&self) -> bool {
        self.commitments.len() >= usize::from(self.threshold)
    }

    /// The signature shares so far.
    pub fn shares(&self) -> &BTreeMap<ShareIndex, SignatureShare> {
        &self.shares
    }

    /// Members excluded for a wrong share.
    pub fn excluded(&self) -> &BTreeSet<IdentityPublicKey> {
        &self.excluded
    }

    /// The next attempt, without `excluded`; `None` once attempts run out.
    fn restart(&mut self) -> Option<()> {
        self.attempt = self.attempt.checked_add(1)?;
        self.commitments.clear();
        self.shares.clear();
        Some(())
    }
}

/// What the last share of a run does.
pub(super) enum Outcome {
    /// The committee's signature: the certificate.
    Certified(CommitteeSignature),
    /// These signers' shares are wrong: each with the stake it loses.
    Wrong(Vec<(IdentityPublicKey, u64)>),
}

impl Registry {
    /// The signing runs under way, by statement.
    pub fn signing(&self) -> &BTreeMap<Statement, SigningRun> {
        &self.signing
    }

    /// The committee's signature of `statement`, once it is certified.
    pub fn certificate(&self, statement: &Statement) -> Option<&CommitteeSignature> {
        self.certificates.get(statement)
    }

    /// Whether `statement` has a certificate that verifies, checked afresh with the ledger's
    /// genesis hash and the master public key of the statement's epoch: what a user relies on.
    pub fn is_certified(&self, statement: &Statement) -> bool {
        let (Some(signature), Some(certified), Some(state)) = (
            self.certificates.get(statement),
            self.certified(statement),
            self.epoch(statement.epoch()),
        ) else {
            return false;
        };
        let master = state.record().committee().public_key();
        certified.verify(&self.genesis.hash(), &master, signature)
    }

    /// `statement` with its content as the registry records it: what the committee signs.
    /// `None` for an unknown epoch, or a cluster key not published.
    pub fn certified(&self, statement: &Statement) -> Option<Certified> {
        match statement {
            Statement::EpochChecksum(epoch) => Some(Certified::EpochChecksum {
                epoch: *epoch,
                checksum: self.epoch(*epoch)?.checksum(),
            }),
            Statement::ClusterKey(cluster, context) => Some(Certified::ClusterKey {
                cluster: cluster.clone(),
                context: *context,
                key: *self.clusters.get(cluster)?.key(*context)?,
            }),
        }
    }

    /// Opens a signing run for `statement` (threshold mode only).
    pub(super) fn open_signing(&mut self, statement: Statement) {
        if self.key_threshold() == 1 || self.certificates.contains_key(&statement) {
            return;
        }
        let threshold = self.key_threshold();
        self.signing.entry(statement).or_insert(SigningRun {
            attempt: 0,
            threshold,
            commitments: BTreeMap::new(),
            shares: BTreeMap::new(),
            excluded: BTreeSet::new(),
        });
    }

    /// Restarts the runs of `epoch` after a resharing replaced its shares.
    pub(super) fn restart_signing(&mut self, epoch: Epoch) {
        self.signing
            .retain(|statement, run| statement.epoch() != epoch || run.restart().is_some());
    }

    /// The run for `statement` at `attempt`, and `author`'s index in the epoch's current
    /// committee if it is an active holder not excluded.
    fn signing_step(
        &self,
        author: &IdentityPublicKey,
        statement: &Statement,
        attempt: u16,
    ) -> Result<(&SigningRun, ShareIndex), Rejected> {
        self.check_threshold_mode("committee signatures are made in threshold mode")?;
        let run = self
            .signing
            .get(statement)
            .filter(|r| r.attempt == attempt)
            .ok_or_else(|| Rejected::NoSigningRun {
                statement: statement.clone(),
                attempt,
            })?;
        let state = self.epoch(statement.epoch()).expect("runs are for epochs");
        let index = state
            .current()
            .index_of(author)
            .filter(|_| state.holders().contains(author))
            .ok_or(Rejected::NotSigner(
                "not an active member of the epoch's current committee",
            ))?;
        if run.excluded.contains(author) {
            return Err(Rejected::NotSigner("excluded for a wrong share"));
        }
        Ok((run, index))
    }

    pub(super) fn check_sign_commit(
        &self,
        author: IdentityPublicKey,
        commit: &SignCommit,
    ) -> Result<Effect, Rejected> {
        let (run, index) = self.signing_step(&author, &commit.statement, commit.attempt)?;
        if run.commitments.contains_key(&index) {
            return Err(Rejected::SigningOutOfTurn(
                "the member has already committed",
            ));
        }
        if run.chosen() {
            return Err(Rejected::SigningOutOfTurn("the signers are chosen"));
        }
        Ok(Effect::SignCommit(Box::new(commit.clone()), index))
    }

    pub(super) fn check_sign_share(
        &self,
        author: IdentityPublicKey,
        share: &SignShare,
    ) -> Result<Effect, Rejected> {
        let (run, index) = self.signing_step(&author, &share.statement, share.attempt)?;
        if !run.chosen() {
            return Err(Rejected::SigningOutOfTurn("the signers are not chosen yet"));
        }
        if !run.commitments.contains_key(&index) {
            return Err(Rejected::NotSigner("not a chosen signer"));
        }
        if run.shares.contains_key(&index) {
            return Err(Rejected::SigningOutOfTurn("the signer has already signed"));
        }
        let outcome = (run.shares.len() + 1 == run.commitments.len())
            .then(|| self.aggregate(run, &share.statement, index, share.share))
            .transpose()?;
        Ok(Effect::SignShare {
            share: Box::new(share.clone()),
            index,
            outcome,
        })
    }

    /// Every node's aggregation of a run whose last share, `last` from `index`, is in.
    fn aggregate(
        &self,
        run: &SigningRun,
        statement: &Statement,
        index: ShareIndex,
        last: SignatureShare,
    ) -> Result<Outcome, Rejected> {
        let current = self.epoch(statement.epoch()).expect("checked").current();
        let message = self
            .certified(statement)
            .expect("runs are opened for recorded statements")
            .message(&self.genesis.hash());
        let mut shares = run.shares.clone();
        shares.insert(index, last);
        match sign::aggregate(current.committee(), &message, &run.commitments, &shares) {
            Ok(signature) => Ok(Outcome::Certified(signature)),
            Err(SignError::BadShares(culprits)) => Ok(Outcome::Wrong(
                culprits
                    .iter()
                    .filter_map(|i| current.gatekeepers().get(i))
                    .map(|id| (*id, self.slash_amount(id)))
                    .collect(),
            )),
            // Not reachable (the signers are members of the current committee, t of them), but
            // if it were, refusing the last share would freeze the run: restart it instead.
            Err(_) => Ok(Outcome::Wrong(Vec::new())),
        }
    }

    pub(super) fn commit_sign_commit(
        &mut self,
        commit: SignCommit,
        index: ShareIndex,
    ) -> Vec<Event> {
        self.signing
            .get_mut(&commit.statement)
            .expect("checked")
            .commitments
            .insert(index, commit.commitment);
        Vec::new()
    }

    pub(super) fn commit_sign_share(
        &mut self,
        share: SignShare,
        index: ShareIndex,
        outcome: Option<Outcome>,
    ) -> Vec<Event> {
        let statement = share.statement;
        match outcome {
            None => {
                let run = self.signing.get_mut(&statement).expect("checked");
                run.shares.insert(index, share.share);
                Vec::new()
            }
            Some(Outcome::Certified(signature)) => {
                self.signing.remove(&statement);
                self.certificates.insert(statement.clone(), signature);
                vec![Event::CommitteeSigned { statement }]
            }
            Some(Outcome::Wrong(culprits)) => {
                let run = self.signing.get_mut(&statement).expect("checked");
                run.excluded.extend(culprits.iter().map(|(id, _)| *id));
                if run.restart().is_none() {
                    self.signing.remove(&statement);
                }
                let mut events = Vec::new();
                for (signer, amount) in culprits {
                    self.slash(&signer, amount);
                    events.push(Event::SignerSlashed {
                        signer,
                        amount,
                        statement: statement.clone(),
                    });
                }
                events
            }
        }
    }
}
