//! How a node reads the ledger: it fetches entries from the server and replays them through its
//! own core from the genesis it pinned. A server that serves another genesis, an altered entry or
//! a chain that does not extend what the node already verified is caught and named.

use keyward_host::from_base64;
use std::sync::{Arc, RwLock, RwLockReadGuard};

use thiserror::Error;

use keyward_crypto::{IdentityKeypair, IdentityPublicKey};
use keyward_ledger::{Applied, Body, Entry, EntryHash, Genesis, Position, Registry, Rejected};

use crate::client::{ClientError, LedgerClient};
use crate::wire::{EntriesResult, EntryJson, MAX_READ, parse_hash};

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
    /// The author's key (in an enclave) did not sign the entry.
    #[error("the entry was not signed: {0}")]
    Sign(String),
}

/// Who signs a submitted entry: a key in this process, or a core that holds it elsewhere.
pub trait EntrySigner {
    /// The author's identity.
    fn author(&self) -> IdentityPublicKey;

    /// The entry of `body` at `position`, signed by the author.
    ///
    /// # Errors
    /// Why the signer would not sign, in words.
    fn sign_entry(
        &self,
        position: Position,
        body: &Body,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Entry, String>;
}

impl EntrySigner for IdentityKeypair {
    fn author(&self) -> IdentityPublicKey {
        self.public()
    }

    fn sign_entry(
        &self,
        position: Position,
        body: &Body,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Entry, String> {
        Ok(Entry::sign(self, position, body, rng))
    }
}

/// A node's verified view of the ledger.
///
/// Entries are applied to the registry one at a time as they arrive; their [`Applied`] outcomes
/// queue up inside the follower until a successful [`Follower::sync`] or [`Follower::wait`]
/// hands them over, so an error part-way through never loses an event.
///
/// The registry is shared ([`Follower::shared`]): readers on other threads see each entry as
/// soon as it is applied, and nothing is copied per batch. Only the follower writes to it, and
/// it holds the write lock only to apply one already-verified entry.
#[derive(Debug)]
pub struct Follower {
    client: LedgerClient,
    genesis: Arc<Genesis>,
    /// The genesis entry as served, checked against the pinned hash.
    genesis_entry: Entry,
    registry: Arc<RwLock<Registry>>,
    events: Vec<Applied>,
}

/// The entry the server served for `height`, framed but not verified.
fn served_entry(served: &EntryJson, height: u64) -> Result<Entry, FollowError> {
    if served.height != height {
        return Err(FollowError::BadAnswer(format!(
            "expected height {height}, got {}",
            served.height
        )));
    }
    let bytes = from_base64(&served.entry)
        .ok_or_else(|| FollowError::BadAnswer("entry is not base64".into()))?;
    Entry::from_bytes(bytes).map_err(|reason| FollowError::LedgerFault { height, reason })
}

/// Whether a failed append may have landed or may succeed if retried.
fn outcome_unknown(e: &ClientError) -> bool {
    match e {
        ClientError::Refused { reason, .. } => matches!(
            reason.as_str(),
            "wrong_height" | "wrong_parent" | "replay" | "busy" | "stopped" | "storage_unavailable"
        ),
        ClientError::Transport(_) | ClientError::BadAnswer(_) => true,
    }
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
        let mut follower = Self {
            client,
            genesis: registry.genesis().clone(),
            genesis_entry: genesis,
            registry: Arc::new(RwLock::new(registry)),
            events: Vec::new(),
        };
        let applied = follower.sync().await?;
        Ok((follower, applied))
    }

    /// The verified registry, read-locked: release it before the next call that applies
    /// entries.
    pub fn registry(&self) -> RwLockReadGuard<'_, Registry> {
        self.registry.read().expect("registry lock")
    }

    /// The pinned genesis entry (for a core that keeps its own registry).
    pub fn genesis_entry(&self) -> &Entry {
        &self.genesis_entry
    }

    /// The verified registry, to share with readers on other threads.
    pub fn shared(&self) -> Arc<RwLock<Registry>> {
        self.registry.clone()
    }

    /// The next height this node has not verified.
    fn next_height(&self) -> u64 {
        self.registry().next_height()
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

    /// Applies every entry the server has beyond this node's head; returns the outcomes of every
    /// entry applied since the last successful call.
    ///
    /// # Errors
    /// [`FollowError`]; entries applied before the error stay applied and their outcomes are
    /// returned by the next successful call.
    pub async fn sync(&mut self) -> Result<Vec<Applied>, FollowError> {
        self.catch_up().await?;
        Ok(std::mem::take(&mut self.events))
    }

    /// Waits up to `wait_ms` for entries beyond this node's head, applies them, and returns as
    /// [`Follower::sync`] does.
    ///
    /// # Errors
    /// As [`Follower::sync`].
    pub async fn wait(&mut self, wait_ms: u64) -> Result<Vec<Applied>, FollowError> {
        let answer = self.client.wait(self.next_height(), None, wait_ms).await?;
        self.apply(answer)?;
        self.sync().await
    }

    /// One page of the server's entries from height `from`, framed but not verified, and none
    /// at or beyond this node's next height: for a core that keeps its own registry (an isolated
    /// enclave) and verifies them itself, so it catches up with this node's view and no further.
    ///
    /// # Errors
    /// [`FollowError`]: the call failed, or the server's answer is malformed.
    pub async fn entries_from(&self, from: u64) -> Result<Vec<Entry>, FollowError> {
        let end = self.next_height();
        if from >= end {
            return Ok(Vec::new());
        }
        let limit = usize::try_from(end - from).map_or(MAX_READ, |n| n.min(MAX_READ));
        let answer = self.client.entries(from, Some(limit)).await?;
        let mut entries = Vec::with_capacity(answer.entries.len());
        for (served, height) in answer.entries.into_iter().zip(from..end) {
            entries.push(served_entry(&served, height)?);
        }
        Ok(entries)
    }

    async fn catch_up(&mut self) -> Result<(), FollowError> {
        loop {
            let answer = self.client.entries(self.next_height(), None).await?;
            let head = answer.head.height;
            // Done once we hold the head the server reported: no extra empty read.
            if self.apply(answer)? == 0 || self.next_height() > head {
                return Ok(());
            }
        }
    }

    /// Applies what the server sent; how many entries that was.
    fn apply(&mut self, answer: EntriesResult) -> Result<usize, FollowError> {
        let ours = self.next_height() - 1;
        if answer.head.height < ours {
            return Err(FollowError::Fork {
                height: answer.head.height + 1,
                detail: format!(
                    "the server's head {} is behind our verified height {ours}",
                    answer.head.height
                ),
            });
        }
        if answer.entries.is_empty() {
            if answer.head.height > ours {
                return Err(FollowError::BadAnswer(format!(
                    "the server claims height {} but sent nothing beyond {ours}",
                    answer.head.height
                )));
            }
            // Same height: the same chain only if the same head.
            let head = self.registry().head();
            if parse_hash(&answer.head.hash) != Some(head) {
                return Err(FollowError::Fork {
                    height: ours,
                    detail: format!(
                        "the server's head at our height is {}, ours is {head}",
                        answer.head.hash,
                    ),
                });
            }
            return Ok(0);
        }
        let count = answer.entries.len();
        for served in answer.entries {
            let height = self.next_height();
            let fault = |reason| FollowError::LedgerFault { height, reason };
            let entry = served_entry(&served, height)?;
            if parse_hash(&served.hash) != Some(entry.hash()) {
                return Err(FollowError::BadAnswer(format!(
                    "the hash served for height {height} is not the entry's"
                )));
            }
            // Verified without the lock; only the apply excludes readers.
            let verified = self.genesis.verify(entry).map_err(fault)?;
            let applied = self
                .registry
                .write()
                .expect("registry lock")
                .apply(verified);
            match applied {
                Ok(a) => self.events.push(a),
                Err(Rejected::WrongParent { expected, found }) => {
                    return Err(FollowError::Fork {
                        height,
                        detail: format!("entry's parent {found} is not our head {expected}"),
                    });
                }
                Err(reason) => return Err(fault(reason)),
            }
        }
        Ok(count)
    }

    /// Signs `body` as `author` on the verified head and appends it. When the outcome is unknown
    /// (another entry took the head, the server was busy, the answer was lost) it catches up,
    /// returns the entry if it landed, and otherwise re-signs on the new head with the **same**
    /// sequence number, so the entry is never applied twice. Returns the entry's outcome as this
    /// node's own registry applied it (the outcome also stays queued for the next
    /// [`Follower::sync`]).
    ///
    /// # Errors
    /// [`FollowError::Refused`] with the core's reason for a refusal that re-signing cannot fix;
    /// [`FollowError::SeqTaken`] if another entry of this author took the sequence number;
    /// [`FollowError::Contended`] after [`SUBMIT_ATTEMPTS`] unknown outcomes; otherwise
    /// [`FollowError`]. After a transport error while catching up, the entry may have landed:
    /// [`Follower::sync`] tells.
    pub async fn submit(
        &mut self,
        author: &impl EntrySigner,
        body: &Body,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Applied, FollowError> {
        self.catch_up().await?;
        let seq = self.registry().next_seq(&author.author());
        for attempt in 0..SUBMIT_ATTEMPTS {
            let position = {
                let registry = self.registry();
                Position {
                    height: registry.next_height(),
                    parent: registry.head(),
                    seq,
                }
            };
            let entry = author
                .sign_entry(position, body, rng)
                .map_err(FollowError::Sign)?;
            let hash = entry.hash();
            match self.client.append(std::slice::from_ref(&entry)).await {
                Ok(_) => {}
                Err(e) if outcome_unknown(&e) => {
                    // Back off a little more each time, with no two submitters in step.
                    let ms = 5 * (attempt as u64 + 1) + u64::from(rng.next_u32() % 20);
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                }
                Err(ClientError::Refused { code, .. }) => {
                    // Recompute the refusal with our own core, so the caller gets a typed reason.
                    let verified = self.genesis.verify(entry).map_err(FollowError::Refused)?;
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    self.genesis
                        .check_current(&verified, now)
                        .map_err(FollowError::Refused)?;
                    return Err(match self.registry().admits(&verified) {
                        Err(reason) => FollowError::Refused(reason),
                        Ok(()) => FollowError::BadAnswer(format!(
                            "the ledger refused (code {code}) an entry our core accepts"
                        )),
                    });
                }
                Err(e) => return Err(e.into()),
            }
            self.catch_up().await?;
            if let Some(mine) = self.events.iter().find(|a| a.hash == hash) {
                return Ok(mine.clone());
            }
            if self.registry().next_seq(&author.author()) > seq {
                return Err(FollowError::SeqTaken { seq });
            }
        }
        Err(FollowError::Contended)
    }
}
