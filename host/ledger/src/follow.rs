//! How a node reads the ledger: it fetches entries from the server and replays them through its
//! own core from the genesis it pinned. A server that serves another genesis, an altered entry or
//! a chain that does not extend what the node already verified is caught and named.

use thiserror::Error;

use keyward_crypto::IdentityKeypair;
use keyward_ledger::{Applied, Body, Entry, EntryHash, Position, Registry, Rejected};

use crate::client::{ClientError, LedgerClient};
use crate::wire::{EntriesResult, from_base64, parse_hash};

/// How many times [`Follower::submit`] re-signs an entry that lost a race for the head.
pub const SUBMIT_ATTEMPTS: usize = 32;

/// Why following or submitting failed.
#[derive(Debug, Error)]
pub enum FollowError {
    /// The call failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The server serves another genesis than the pinned one.
    #[error("the ledger's genesis is not the pinned one: {0}")]
    Genesis(Rejected),
    /// The server served an entry the core refuses: it is faulty or lying. Stop acting on it.
    #[error("the ledger served an invalid entry at height {height}: {reason}")]
    LedgerFault {
        /// The height.
        height: u64,
        /// Why the core refused it.
        reason: Rejected,
    },
    /// The server's chain does not extend the one this node verified.
    #[error("the ledger forked at height {height}: {detail}")]
    Fork {
        /// The first height where the chains differ.
        height: u64,
        /// What differs.
        detail: String,
    },
    /// The server's answer is malformed.
    #[error("the ledger's answer is malformed: {0}")]
    BadAnswer(String),
    /// The entry was refused.
    #[error("entry refused: {0}")]
    Refused(Rejected),
    /// The author's sequence number was used by an entry other than the one submitted.
    #[error("sequence number {seq} was used by another entry of this author")]
    SeqTaken {
        /// The sequence number.
        seq: u64,
    },
    /// The entry kept losing the race for the head.
    #[error("gave up after {SUBMIT_ATTEMPTS} attempts: the head kept moving")]
    Contended,
}

/// A node's verified view of the ledger.
#[derive(Debug, Clone)]
pub struct Follower {
    client: LedgerClient,
    registry: Registry,
}

impl Follower {
    /// Fetches the genesis, checks it against `pinned`, and catches up.
    ///
    /// # Errors
    /// [`FollowError`].
    pub async fn start(
        client: LedgerClient,
        pinned: EntryHash,
    ) -> Result<(Self, Vec<Applied>), FollowError> {
        let first = client.entries(0, Some(1)).await?;
        let entry = first
            .entries
            .first()
            .ok_or_else(|| FollowError::BadAnswer("the ledger has no genesis".into()))?;
        let bytes = from_base64(&entry.entry)
            .ok_or_else(|| FollowError::BadAnswer("entry is not base64".into()))?;
        let genesis = Entry::from_bytes(bytes).map_err(FollowError::Genesis)?;
        let registry = Registry::from_genesis(&genesis, &pinned).map_err(FollowError::Genesis)?;
        let mut follower = Self { client, registry };
        let applied = follower.sync().await?;
        Ok((follower, applied))
    }

    /// The verified registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The client.
    pub fn client(&self) -> &LedgerClient {
        &self.client
    }

    /// Reads from another server from now on (a replica, or after a restart). Everything it
    /// serves is checked against what this node has already verified.
    pub fn switch_to(&mut self, client: LedgerClient) {
        self.client = client;
    }

    /// Applies every entry the server has beyond this node's head.
    ///
    /// # Errors
    /// [`FollowError`].
    pub async fn sync(&mut self) -> Result<Vec<Applied>, FollowError> {
        let mut all = Vec::new();
        loop {
            let answer = self
                .client
                .entries(self.registry.next_height(), None)
                .await?;
            let applied = self.apply(answer)?;
            if applied.is_empty() {
                return Ok(all);
            }
            all.extend(applied);
        }
    }

    /// Waits up to `wait_ms` for entries beyond this node's head, and applies them.
    ///
    /// # Errors
    /// [`FollowError`].
    pub async fn wait(&mut self, wait_ms: u64) -> Result<Vec<Applied>, FollowError> {
        let answer = self
            .client
            .wait(self.registry.next_height(), None, wait_ms)
            .await?;
        let mut applied = self.apply(answer)?;
        applied.extend(self.sync().await?);
        Ok(applied)
    }

    fn apply(&mut self, answer: EntriesResult) -> Result<Vec<Applied>, FollowError> {
        let ours = self.registry.next_height() - 1;
        if answer.head.height < ours {
            return Err(FollowError::Fork {
                height: answer.head.height + 1,
                detail: format!(
                    "the server's head {} is behind our verified height {ours}",
                    answer.head.height
                ),
            });
        }
        let mut applied = Vec::with_capacity(answer.entries.len());
        for served in answer.entries {
            let height = self.registry.next_height();
            if served.height != height {
                return Err(FollowError::BadAnswer(format!(
                    "expected height {height}, got {}",
                    served.height
                )));
            }
            let bytes = from_base64(&served.entry)
                .ok_or_else(|| FollowError::BadAnswer("entry is not base64".into()))?;
            let fault = |reason| FollowError::LedgerFault { height, reason };
            let entry = Entry::from_bytes(bytes).map_err(fault)?;
            if parse_hash(&served.hash) != Some(entry.hash()) {
                return Err(FollowError::BadAnswer(format!(
                    "the hash served for height {height} is not the entry's"
                )));
            }
            let verified = self.registry.genesis().verify(entry).map_err(fault)?;
            match self.registry.apply(verified) {
                Ok(a) => applied.push(a),
                Err(Rejected::WrongParent { expected, found }) => {
                    return Err(FollowError::Fork {
                        height,
                        detail: format!("entry's parent {found} is not our head {expected}"),
                    });
                }
                Err(reason) => return Err(fault(reason)),
            }
        }
        Ok(applied)
    }

    /// Signs `body` as `author` on the current head and appends it, re-signing on the new head
    /// (with the same sequence number) when another entry got there first. Returns the entry as
    /// applied by this node's own registry.
    ///
    /// # Errors
    /// [`FollowError::Refused`] for a refusal that re-signing cannot fix; [`FollowError`].
    pub async fn submit(
        &mut self,
        author: &IdentityKeypair,
        body: &Body,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Applied, FollowError> {
        self.sync().await?;
        let seq = self.registry.next_seq(&author.public());
        for _ in 0..SUBMIT_ATTEMPTS {
            let position = Position {
                height: self.registry.next_height(),
                parent: self.registry.head(),
                seq,
            };
            let entry = Entry::sign(author, position, body, rng);
            let hash = entry.hash();
            match self.client.append(std::slice::from_ref(&entry)).await {
                Ok(_) => {}
                // Another entry took the head (or this one landed before a lost answer):
                // sync, then look for it or re-sign.
                Err(e)
                    if matches!(e.reason(), Some("wrong_height" | "wrong_parent" | "replay")) => {}
                Err(ClientError::Refused { code, .. }) => {
                    // Recompute the refusal with our own core, so the caller gets a typed reason.
                    let verified = self
                        .registry
                        .genesis()
                        .verify(entry)
                        .map_err(FollowError::Refused)?;
                    let mut scratch = self.registry.clone();
                    return Err(match scratch.apply(verified) {
                        Err(reason) => FollowError::Refused(reason),
                        Ok(_) => FollowError::BadAnswer(format!(
                            "the ledger refused (code {code}) an entry our core accepts"
                        )),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            let applied = self.sync().await?;
            if let Some(mine) = applied.into_iter().find(|a| a.hash == hash) {
                return Ok(mine);
            }
            if self.registry.next_seq(&author.public()) > seq {
                return Err(FollowError::SeqTaken { seq });
            }
        }
        Err(FollowError::Contended)
    }
}
