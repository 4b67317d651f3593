//! The signer's state machine: validators, their vote keys, towers and nonces, and the sealed
//! records that make them durable.
//!
//! [`Signer::apply`] takes one authenticated request and either refuses it, changing nothing, or
//! returns the answer together with the validator's new [record](Signer::record). **The host
//! must make that record durable before the answer leaves the process**: a signature released
//! before its tower is on disk could be followed, after a crash, by a conflicting one.
//!
//! Hosts apply requests one at a time in a single thread (the order defines the towers), and may
//! commit the records of many requests with one fsync before releasing their answers
//! (group commit). A byte-identical retry of an answered request gets the stored answer, and so
//! does a new request for the exact message last signed (Ed25519 is deterministic).
//!
//! **Rollback.** Each commit is one value of the host's monotonic counter: [`Signer::seal_commit`]
//! seals the commit's manifest at that value, a keyed set hash of every validator's identity and
//! current record bytes ([`keyward_enclave::versions`]). The host stores the manifest in the same
//! transaction as the records and then advances its counter. [`Signer::restore`] refuses a
//! manifest below the counter and a set of records that is not the one the manifest pins, so
//! neither an older record of one validator (even one returned earlier in the same commit) nor
//! an older copy of the whole store brings back a tower the signer has moved past.
//!
//! **Evidence.** A record names its vote key's attestation evidence by SHA-256, so a vote
//! re-seals 32 bytes however long the platform's evidence is (a vendor quote with its
//! certificates runs to tens of kilobytes). [`Applied::evidence`] hands each new key's evidence
//! to the host, which stores it, content-addressed, in the same transaction as the record;
//! [`Signer::restore`] takes the stored evidence back and refuses a record whose evidence is
//! missing. The evidence is public, so the digest in the sealed record is all it needs.
//!
//! A restored signer's first commit is at the manifest's value plus 2 and changes no record,
//! so its manifest is the same bytes whichever process makes it; the host makes it durable before
//! taking requests. A process that fails a commit stops committing, so it used at most one value
//! past the durable manifest (plus 1); no counter value is ever sealed with two contents.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use keyward_crypto::{
    DecodeError, Reader, SecretBytes, SolanaKeypair, SolanaPubkey, SolanaSignature, VerifierCache,
    Writer,
};
use keyward_enclave::{
    AttestFailed, Attester, BoundKey, EvidencePolicy, SealError, SealPurpose, SealedBlob, Sealer,
    VersionSet, VersionTag,
};

use crate::ancestry::{AncestryPolicy, Evidence, PreviousVote};
use crate::message::{MAX_MESSAGE_LEN, MessageError, VoteAction, check_vote_message};
use crate::refusal::Refusal;
use crate::request::{Authenticated, Payload, ServiceId, SignedRequest};
use crate::tower::{Lockout, LockoutPolicy, Tower, TowerError};

/// How many answered requests per validator are kept for byte-identical retries.
pub const RECENT_ANSWERS: usize = 4;

/// Longest vote key evidence an answer carries: the `var16` bound, which every evidence
/// encoding fits (the longest, a vendor envelope, is
/// [`keyward_enclave::vendor::MAX_ENVELOPE_LEN`]).
pub const MAX_VOTE_KEY_EVIDENCE: usize = u16::MAX as usize;
const _: () = assert!(keyward_enclave::vendor::MAX_ENVELOPE_LEN <= MAX_VOTE_KEY_EVIDENCE);

const RECORD_MAGIC: &[u8; 4] = b"KWVR";
/// Version 3: evidence named by its SHA-256 instead of carried.
const RECORD_VERSION: u8 = 3;
const RECORD_FORMAT: &str = "keyward validator record";
const KEY_BINDING: &[u8] = b"keyward/v1/vote-key";

/// What the signer enforces. Immutable while it runs.
#[derive(Debug, Clone)]
pub struct SignerConfig {
    /// This service's id; requests for any other are refused.
    pub service: ServiceId,
    /// The lockout rules.
    pub lockout: LockoutPolicy,
    /// Ancestor verification and the threshold rule, when configured.
    pub ancestry: Option<AncestryPolicy>,
    /// The measurement the evidence reports (the enclave image's, once there is one).
    pub measurement: [u8; 32],
    /// The attestation policy every new vote key's evidence must meet before the key is made
    /// (the signer's own evidence, checked as a verifier would); `None`: not checked.
    pub evidence_policy: Option<EvidencePolicy>,
    /// Decoded identity keys, kept between requests (a memo: it changes no outcome).
    pub identity_keys: Arc<VerifierCache>,
}

impl SignerConfig {
    /// Everything about a request that needs no state: the service id, the identity's signature
    /// and the evidence's signatures.
    ///
    /// # Errors
    /// The refusal; nothing has changed.
    pub fn prepare(&self, request: SignedRequest) -> Result<Prepared, Refusal> {
        self.prepare_all(vec![request])
            .pop()
            .expect("one verdict per request")
    }

    /// [`SignerConfig::prepare`] for many requests, with their identity signatures checked
    /// together ([`SignedRequest::authenticate_all`]); returns each one's verdict in order.
    pub fn prepare_all(&self, requests: Vec<SignedRequest>) -> Vec<Result<Prepared, Refusal>> {
        let mut refused: Vec<Option<Refusal>> = Vec::with_capacity(requests.len());
        let mut sized = Vec::with_capacity(requests.len());
        for request in requests {
            match &request.payload {
                Payload::SignVote { message, .. } if message.len() > MAX_MESSAGE_LEN => {
                    refused.push(Some(MessageError::TooLong { len: message.len() }.into()));
                }
                _ => {
                    refused.push(None);
                    sized.push(request);
                }
            }
        }
        let mut authenticated =
            SignedRequest::authenticate_all(sized, &self.service, &self.identity_keys).into_iter();
        refused
            .into_iter()
            .map(|refusal| match refusal {
                Some(refusal) => Err(refusal),
                None => self.with_evidence(authenticated.next().expect("one verdict per request")?),
            })
            .collect()
    }

    /// Checks an authenticated request's ancestry evidence, if any.
    fn with_evidence(&self, authenticated: Authenticated) -> Result<Prepared, Refusal> {
        let evidence = match (&authenticated.request().payload, &self.ancestry) {
            (Payload::SignVote { evidence, .. }, Some(policy)) => {
                policy.verify_evidence(evidence)?
            }
            (Payload::SignVote { evidence, .. }, None) if !evidence.is_empty() => {
                return Err(Refusal::UnexpectedEvidence);
            }
            _ => Evidence::default(),
        };
        Ok(Prepared {
            authenticated,
            evidence,
        })
    }
}

/// A request checked by [`SignerConfig::prepare`], ready for [`Signer::apply`].
#[derive(Debug, Clone)]
pub struct Prepared {
    authenticated: Authenticated,
    evidence: Evidence,
}

impl Prepared {
    /// The request.
    pub fn request(&self) -> &SignedRequest {
        self.authenticated.request()
    }
}

/// A vote key and the evidence that binds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoteKeyInfo {
    /// The vote public key.
    pub vote_pubkey: SolanaPubkey,
    /// Attestation evidence binding it to the identity and vote account (`Evidence::to_bytes`).
    pub evidence: Vec<u8>,
}

/// A validator's tower as exported (see `docs/SIGNER.md`, "Tower interchange").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TowerExport {
    /// The validator identity.
    pub identity: SolanaPubkey,
    /// Its vote account.
    pub vote_account: SolanaPubkey,
    /// The tower of votes signed.
    pub tower: Tower,
}

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// `registerNode` and `rotateVoteKey`: the vote key.
    VoteKey(VoteKeyInfo),
    /// `signVote`: the vote key's signature over the message.
    Signature(SolanaSignature),
    /// `deregisterNode`: the final tower.
    FinalTower(TowerExport),
}

/// An accepted request: the answer, and what to make durable before releasing it.
#[derive(Debug)]
pub struct Applied {
    /// The answer.
    pub answer: Answer,
    /// The validator's identity and its new record, or `None` when nothing changed.
    pub record: Option<(SolanaPubkey, Vec<u8>)>,
    /// The evidence of a vote key this request made (`registerNode`, `rotateVoteKey`), which
    /// the record names by [`evidence_digest`]: stored in the same commit, keyed by that digest.
    pub evidence: Option<Vec<u8>>,
    /// Digests of evidence the validator's record no longer names (a replaced key's, once no
    /// recent answer names it either): deleted in the same commit. A digest, once retired, is
    /// never named again (each is a fresh key's), so the host may store new evidence before
    /// deleting retired evidence.
    pub retired: Vec<[u8; 32]>,
}

/// What happened to an imported tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The validator was unknown; its tower is stored and applies once it registers.
    Created,
    /// The imported tower is a valid successor and replaced the stored one.
    Advanced,
    /// The stored tower is already at or past the imported one; nothing changed.
    Unchanged,
}

/// Why an import was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// The imported tower breaks the structural rules.
    #[error("the imported tower is invalid: {0}")]
    Invalid(TowerError),
    /// The validator is registered for another vote account.
    #[error("validator is registered for vote account {registered}, the import says {imported}")]
    VoteAccountMismatch {
        /// The registered vote account.
        registered: SolanaPubkey,
        /// The imported one.
        imported: SolanaPubkey,
    },
    /// Neither tower succeeds the other: importing would lose lockouts.
    #[error("the imported tower conflicts with the stored one ({0}); nothing was changed")]
    Conflict(TowerError),
}

/// Why stored records could not be loaded.
#[derive(Debug, Error)]
pub enum RestoreError {
    /// A record does not decode.
    #[error("validator record is malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// A record's tower is invalid.
    #[error("validator record holds an invalid tower: {0}")]
    Tower(#[from] TowerError),
    /// A record does not open: altered, or sealed under another sealing key or chain.
    #[error("validator record does not unseal: {0}")]
    Seal(#[from] SealError),
    /// A record's vote key does not match the public key it names.
    #[error("the vote key in the record of {0} does not match its public key")]
    KeyMismatch(SolanaPubkey),
    /// A record names vote key evidence the store does not hold.
    #[error("the vote key evidence the record names (SHA-256 {}) is not in the store", keyward_crypto::hex::to_0x(.0))]
    EvidenceMissing([u8; 32]),
    /// Two records for one identity.
    #[error("two records for validator {0}")]
    Duplicate(SolanaPubkey),
    /// A record stored under one identity holds another's: the host moved it.
    #[error("the record stored for validator {stored_as} is validator {holds}'s")]
    Misplaced {
        /// The identity it is stored under.
        stored_as: SolanaPubkey,
        /// The identity inside it.
        holds: SolanaPubkey,
    },
    /// The record stored for `identity` does not load.
    #[error("the record stored for validator {identity}: {error}")]
    Record {
        /// The identity the record is stored under.
        identity: SolanaPubkey,
        /// Why it does not load.
        error: Box<RestoreError>,
    },
    /// The manifest does not open: altered, or sealed below the monotonic counter (the whole
    /// store was put back from an older copy).
    #[error("the store's manifest does not open: {0}")]
    Manifest(SealError),
    /// There are records, or the monotonic counter has moved, but there is no manifest: the
    /// store was replaced or emptied.
    #[error(
        "the store has no manifest, but the monotonic counter is at {counter} and {records} records are stored: the store was replaced or emptied"
    )]
    ManifestMissing {
        /// The monotonic counter's value.
        counter: u64,
        /// How many records there are.
        records: usize,
    },
    /// The records are not the ones the manifest pins: one was put back from an older commit,
    /// removed, or added.
    #[error(
        "the stored records are not the ones the manifest of commit {counter} pins ({expected} records): a record was rolled back, removed or added"
    )]
    RolledBack {
        /// The counter value of the manifest.
        counter: u64,
        /// How many records the manifest pins.
        expected: u64,
    },
    /// The monotonic counter is too close to its end for another commit.
    #[error("the monotonic counter ({0}) is exhausted")]
    CounterExhausted(u64),
}

/// The manifest of one commit: store it in the same transaction as the records returned since
/// the previous one, then advance the monotonic counter to `counter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitManifest {
    /// The counter value the commit's records and manifest are sealed at.
    pub counter: u64,
    /// The sealed manifest.
    pub blob: Vec<u8>,
}

struct ActiveKey {
    keypair: SolanaKeypair,
    evidence: Vec<u8>,
    /// [`evidence_digest`] of `evidence`, which the record holds instead.
    evidence_digest: [u8; 32],
}

struct LastSigned {
    vote: PreviousVote,
    signature: SolanaSignature,
    key: SolanaPubkey,
}

struct Recent {
    nonce: u64,
    digest: [u8; 32],
    answer: Answer,
    /// [`evidence_digest`] of a vote key answer's evidence, which the record holds instead.
    key_evidence: Option<[u8; 32]>,
}

struct Validator {
    identity: SolanaPubkey,
    vote_account: SolanaPubkey,
    key: Option<ActiveKey>,
    tower: Tower,
    last_signed: Option<LastSigned>,
    nonce: u64,
    recent: VecDeque<Recent>,
    /// The version tag of this validator's current record; `None` until it is first committed.
    version: Option<VersionTag>,
}

/// The signer: every validator's state, the sealer and the platform's attester.
pub struct Signer {
    config: SignerConfig,
    sealer: Sealer,
    platform: Box<dyn Attester>,
    validators: BTreeMap<SolanaPubkey, Validator>,
    /// The versions of every record, as the next manifest pins them.
    versions: VersionSet,
    /// The counter value of the last commit sealed or restored.
    pinned: u64,
    /// The counter value of the commit in progress.
    commit: u64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("service", &self.config.service)
            .field("validators", &self.validators.len())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// A signer with `config`, sealing records with `sealer` and attesting new vote keys with
    /// `platform` (a dev platform key, a TPM), over the stored `records`, each with the identity
    /// it is stored under, the vote key `evidence` they name (any order; blobs no record names
    /// are ignored), and the store's `manifest`, checked against the monotonic `counter`'s
    /// current value. A new store has neither records nor manifest, and its counter is at 0.
    ///
    /// After a restore, the host makes the first [`Signer::seal_commit`] (which changes no
    /// record) durable and advances its counter to it before taking requests (a crash may have
    /// come between storing a commit and advancing the counter, and see the module docs).
    ///
    /// # Errors
    /// [`RestoreError::Record`] naming the first record that does not load (a record that holds
    /// another identity is [`RestoreError::Misplaced`], one whose evidence is not in `evidence`
    /// [`RestoreError::EvidenceMissing`]); [`RestoreError::Manifest`],
    /// [`RestoreError::ManifestMissing`] or [`RestoreError::RolledBack`] when the store is not
    /// the latest one committed. Nothing is half-loaded.
    pub fn restore<'a>(
        config: SignerConfig,
        sealer: Sealer,
        platform: Box<dyn Attester>,
        records: impl IntoIterator<Item = (SolanaPubkey, &'a [u8])>,
        evidence: impl IntoIterator<Item = &'a [u8]>,
        manifest: Option<&[u8]>,
        counter: u64,
    ) -> Result<Self, RestoreError> {
        let evidence: EvidenceStore<'_> = evidence
            .into_iter()
            .map(|blob| (evidence_digest(blob), blob))
            .collect();
        let pinned = match manifest {
            Some(blob) => Some(
                sealer
                    .open_manifest(
                        SealPurpose::ValidatorRecord,
                        &SealedBlob::from_bytes(blob.to_vec()),
                        counter,
                    )
                    .map_err(RestoreError::Manifest)?,
            ),
            None => None,
        };
        let pinned_at = pinned.as_ref().map_or(counter, |(_, at)| *at);
        // Two past the manifest: the process before this one may have sealed other contents
        // at the value after it, in a commit that failed (module docs).
        let commit = pinned_at
            .checked_add(2)
            .ok_or(RestoreError::CounterExhausted(pinned_at))?;
        let mut signer = Self {
            config,
            sealer,
            platform,
            validators: BTreeMap::new(),
            versions: VersionSet::new(SealPurpose::ValidatorRecord),
            pinned: pinned_at,
            commit,
        };
        for (stored_as, bytes) in records {
            let in_record = |error| RestoreError::Record {
                identity: stored_as,
                error: Box::new(error),
            };
            let mut v = signer.decode_record(bytes, &evidence).map_err(in_record)?;
            if v.identity != stored_as {
                return Err(in_record(RestoreError::Misplaced {
                    stored_as,
                    holds: v.identity,
                }));
            }
            if signer.validators.contains_key(&v.identity) {
                return Err(in_record(RestoreError::Duplicate(v.identity)));
            }
            let tag = signer
                .sealer
                .version_tag(SealPurpose::ValidatorRecord, &v.identity.0, bytes);
            v.version = Some(tag);
            signer.versions.insert(tag);
            signer.validators.insert(v.identity, v);
        }
        match pinned {
            Some((set, at)) if !set.matches(&signer.versions) => Err(RestoreError::RolledBack {
                counter: at,
                expected: set.len(),
            }),
            Some(_) => Ok(signer),
            None if signer.validators.is_empty() && counter == 0 => Ok(signer),
            None => Err(RestoreError::ManifestMissing {
                counter,
                records: signer.validators.len(),
            }),
        }
    }

    /// The counter value of the last commit: the restored manifest's, or that of the last
    /// [`Signer::seal_commit`].
    pub fn pinned_at(&self) -> u64 {
        self.pinned
    }

    /// Seals the manifest of the commit that makes durable every record returned since the last
    /// call (by [`Signer::apply`] or [`Signer::import`]), and starts the next commit. The host
    /// stores the manifest in the same transaction as those records, then advances its
    /// monotonic counter to [`CommitManifest::counter`], and only then releases their answers.
    pub fn seal_commit(&mut self) -> CommitManifest {
        let counter = self.commit;
        let blob = self.sealer.seal_manifest(&self.versions, counter);
        self.pinned = counter;
        self.commit += 1;
        CommitManifest {
            counter,
            blob: blob.into_bytes(),
        }
    }

    /// Puts `identity`'s current record into the commit in progress and returns it.
    fn commit_record(&mut self, identity: &SolanaPubkey) -> Vec<u8> {
        let record = self.record(identity).expect("the validator exists");
        let new = self
            .sealer
            .version_tag(SealPurpose::ValidatorRecord, &identity.0, &record);
        let v = self
            .validators
            .get_mut(identity)
            .expect("the validator exists");
        match v.version.replace(new) {
            Some(old) => self.versions.replace(old, new),
            None => self.versions.insert(new),
        }
        record
    }

    /// The configuration.
    pub fn config(&self) -> &SignerConfig {
        &self.config
    }

    /// How many validators hold a vote key.
    pub fn registered(&self) -> usize {
        self.validators.values().filter(|v| v.key.is_some()).count()
    }

    /// The current vote key of `identity`, if registered.
    pub fn vote_key(&self, identity: &SolanaPubkey) -> Option<VoteKeyInfo> {
        let key = self.validators.get(identity)?.key.as_ref()?;
        Some(VoteKeyInfo {
            vote_pubkey: key.keypair.pubkey(),
            evidence: key.evidence.clone(),
        })
    }

    /// The tower of `identity`, if known.
    pub fn export(&self, identity: &SolanaPubkey) -> Option<TowerExport> {
        self.validators.get(identity).map(Validator::export)
    }

    /// Every known validator's tower.
    pub fn export_all(&self) -> Vec<TowerExport> {
        self.validators.values().map(Validator::export).collect()
    }

    /// Applies one prepared request. On refusal nothing changes.
    ///
    /// # Errors
    /// The [`Refusal`].
    pub fn apply(
        &mut self,
        prepared: &Prepared,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Applied, Refusal> {
        let request = prepared.request();
        let digest = prepared.authenticated.digest();
        let identity = request.identity;
        if let Some(v) = self.validators.get(&identity) {
            if let Some(done) = v.recent.iter().find(|r| r.nonce == request.nonce) {
                return if done.digest == digest {
                    Ok(Applied {
                        answer: done.answer.clone(),
                        record: None,
                        evidence: None,
                        retired: Vec::new(),
                    })
                } else {
                    Err(Refusal::ReplayedNonce {
                        nonce: request.nonce,
                    })
                };
            }
            if request.nonce <= v.nonce {
                return Err(Refusal::StaleNonce {
                    nonce: request.nonce,
                    last: v.nonce,
                });
            }
        }
        let before = self
            .validators
            .get(&identity)
            .map(Validator::evidence_named)
            .unwrap_or_default();
        let answer = match &request.payload {
            Payload::RegisterNode { vote_account } => {
                self.register(identity, *vote_account, rng)?
            }
            Payload::SignVote { message, .. } => {
                self.sign_vote(identity, message, &prepared.evidence)?
            }
            Payload::DeregisterNode => self.deregister(identity)?,
            Payload::RotateVoteKey => self.rotate(identity, rng)?,
        };
        let v = self
            .validators
            .get_mut(&identity)
            .expect("every accepted request leaves a validator");
        v.nonce = request.nonce;
        if v.recent.len() == RECENT_ANSWERS {
            v.recent.pop_front();
        }
        v.recent.push_back(Recent {
            nonce: request.nonce,
            digest,
            key_evidence: match &answer {
                Answer::VoteKey(info) => Some(evidence_digest(&info.evidence)),
                _ => None,
            },
            answer: answer.clone(),
        });
        // Only a key made by this request names evidence the record did not name before.
        let evidence = v
            .key
            .as_ref()
            .filter(|key| !before.contains(&Some(key.evidence_digest)))
            .map(|key| key.evidence.clone());
        let after = v.evidence_named();
        let mut retired: Vec<[u8; 32]> = before
            .into_iter()
            .flatten()
            .filter(|d| !after.contains(&Some(*d)))
            .collect();
        retired.sort_unstable();
        retired.dedup();
        let record = self.commit_record(&identity);
        Ok(Applied {
            answer,
            record: Some((identity, record)),
            evidence,
            retired,
        })
    }

    fn register(
        &mut self,
        identity: SolanaPubkey,
        vote_account: SolanaPubkey,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Answer, Refusal> {
        if let Some(v) = self.validators.get(&identity) {
            if v.vote_account != vote_account {
                return Err(Refusal::VoteAccountMismatch {
                    registered: v.vote_account,
                    requested: vote_account,
                });
            }
            if let Some(key) = &v.key {
                return Ok(Answer::VoteKey(VoteKeyInfo {
                    vote_pubkey: key.keypair.pubkey(),
                    evidence: key.evidence.clone(),
                }));
            }
        }
        let key = self.new_key(identity, vote_account, rng)?;
        let info = key.info();
        let v = self
            .validators
            .entry(identity)
            .or_insert_with(|| Validator::new(identity, vote_account));
        v.key = Some(key);
        Ok(Answer::VoteKey(info))
    }

    fn rotate(
        &mut self,
        identity: SolanaPubkey,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Answer, Refusal> {
        let vote_account = active_in(&mut self.validators, identity)?.vote_account;
        let key = self.new_key(identity, vote_account, rng)?;
        let info = key.info();
        active_in(&mut self.validators, identity)?.key = Some(key);
        Ok(Answer::VoteKey(info))
    }

    fn deregister(&mut self, identity: SolanaPubkey) -> Result<Answer, Refusal> {
        let v = self
            .validators
            .get_mut(&identity)
            .ok_or(Refusal::UnknownValidator(identity))?;
        v.key = None;
        Ok(Answer::FinalTower(v.export()))
    }

    fn sign_vote(
        &mut self,
        identity: SolanaPubkey,
        message: &[u8],
        evidence: &Evidence,
    ) -> Result<Answer, Refusal> {
        let policy = self.config.lockout;
        let ancestry = self.config.ancestry.as_ref();
        let v = active_in(&mut self.validators, identity)?;
        let key = v.key.as_ref().expect("active_mut checks the key");
        let vote_key = key.keypair.pubkey();
        let vote = check_vote_message(message, &identity, &v.vote_account, &vote_key)?;
        let digest: [u8; 32] = Sha256::digest(message).into();
        if let Some(last) = &v.last_signed
            && last.vote.digest == digest
            && last.key == vote_key
        {
            return Ok(Answer::Signature(last.signature));
        }
        // A refresh: the same vote as the last one signed (same tower, same bank hash) in a new
        // message, as a validator sends when its vote did not land and its blockhash expired.
        // Signing it votes for nothing new, so the tower, the ancestry state and the last
        // signed vote stay as they are. Only the key that signed the vote refreshes it.
        if let (VoteAction::Tower(proposed), Some(last)) = (&vote.action, &v.last_signed)
            && last.key == vote_key
            && *proposed == v.tower
            && last.vote.hash == vote.hash
            && proposed.last_voted_slot() == Some(last.vote.slot)
        {
            return Ok(Answer::Signature(key.keypair.sign(message)));
        }
        let next = match &vote.action {
            VoteAction::Slots(slots) => v.tower.apply_slots(slots, &policy)?,
            VoteAction::Tower(proposed) => {
                v.tower.check_successor(proposed, &policy)?;
                proposed.clone()
            }
        };
        if let Some(ancestry) = ancestry {
            ancestry.check(
                &v.vote_account,
                v.last_signed.as_ref().map(|l| &l.vote),
                &next,
                evidence,
            )?;
        }
        let signature = key.keypair.sign(message);
        let slot = next
            .last_voted_slot()
            .expect("a tower after a vote holds that vote");
        v.last_signed = Some(LastSigned {
            vote: PreviousVote {
                slot,
                hash: vote.hash,
                digest,
                initial: v.last_signed.is_none(),
            },
            signature,
            key: vote_key,
        });
        v.tower = next;
        Ok(Answer::Signature(signature))
    }

    /// Imports an exported tower. Never moves a tower backwards: an older tower changes nothing,
    /// a conflicting one is refused.
    ///
    /// # Errors
    /// [`ImportError`]; nothing changed.
    pub fn import(&mut self, export: TowerExport) -> Result<(ImportOutcome, Vec<u8>), ImportError> {
        let policy = self.config.lockout;
        export
            .tower
            .validate(&policy)
            .map_err(ImportError::Invalid)?;
        let identity = export.identity;
        let outcome = match self.validators.get_mut(&identity) {
            None => {
                let mut v = Validator::new(identity, export.vote_account);
                v.tower = export.tower;
                self.validators.insert(identity, v);
                ImportOutcome::Created
            }
            Some(v) => {
                if v.vote_account != export.vote_account {
                    return Err(ImportError::VoteAccountMismatch {
                        registered: v.vote_account,
                        imported: export.vote_account,
                    });
                }
                if export.tower == v.tower || export.tower.is_empty() {
                    ImportOutcome::Unchanged
                } else if v.tower.is_empty() {
                    v.tower = export.tower;
                    ImportOutcome::Advanced
                } else {
                    match v.tower.check_successor(&export.tower, &policy) {
                        Ok(()) => {
                            v.tower = export.tower;
                            ImportOutcome::Advanced
                        }
                        Err(forward) => match export.tower.check_successor(&v.tower, &policy) {
                            Ok(()) => ImportOutcome::Unchanged,
                            Err(_) => return Err(ImportError::Conflict(forward)),
                        },
                    }
                }
            }
        };
        let record = self.commit_record(&identity);
        Ok((outcome, record))
    }

    fn new_key(
        &mut self,
        identity: SolanaPubkey,
        vote_account: SolanaPubkey,
        mut rng: &mut impl keyward_crypto::Rng,
    ) -> Result<ActiveKey, Refusal> {
        let keypair = SolanaKeypair::generate(rng);
        let bound = [BoundKey::Ed25519(keypair.pubkey())];
        let binding = key_binding(&identity, &vote_account);
        let evidence = self
            .platform
            .attest(self.config.measurement, &bound, &binding, &mut rng)?;
        if let Some(policy) = &self.config.evidence_policy {
            evidence.verify(policy, &bound, &binding).map_err(|e| {
                AttestFailed(format!(
                    "the evidence fails this signer's attestation policy: {e}"
                ))
            })?;
        }
        let evidence = evidence.to_bytes();
        if evidence.len() > MAX_VOTE_KEY_EVIDENCE {
            let len = evidence.len();
            return Err(AttestFailed(format!(
                "the platform's evidence is {len} bytes; a vote key's may be {MAX_VOTE_KEY_EVIDENCE}"
            ))
            .into());
        }
        Ok(ActiveKey {
            keypair,
            evidence_digest: evidence_digest(&evidence),
            evidence,
        })
    }

    /// The durable record of `identity`: everything needed to restore it, sealed as one blob, so
    /// the host can neither read the vote key nor alter the tower, nonce or answers undetected;
    /// the manifest pins which record is current. The same state always gives the same bytes.
    /// `None` for an unknown validator.
    pub fn record(&self, identity: &SolanaPubkey) -> Option<Vec<u8>> {
        let v = self.validators.get(identity)?;
        let mut w = Writer::with_header(RECORD_MAGIC, RECORD_VERSION);
        w.raw(&v.identity.0).raw(&v.vote_account.0);
        match &v.key {
            Some(key) => {
                w.u8(1)
                    .raw(&key.keypair.pubkey().0)
                    .raw(&key.evidence_digest);
            }
            None => {
                w.u8(0);
            }
        }
        encode_tower(&mut w, &v.tower);
        match &v.last_signed {
            Some(last) => {
                w.u8(1)
                    .u64(last.vote.slot)
                    .raw(&last.vote.hash)
                    .raw(&last.vote.digest)
                    .u8(u8::from(last.vote.initial))
                    .raw(&last.signature.0)
                    .raw(&last.key.0);
            }
            None => {
                w.u8(0);
            }
        }
        w.u64(v.nonce);
        w.u8(u8::try_from(v.recent.len()).expect("at most RECENT_ANSWERS"));
        for r in &v.recent {
            w.u64(r.nonce).raw(&r.digest);
            encode_answer(&mut w, r);
        }
        // The seed goes last, so no growth of the buffer leaves a copy of it in freed memory.
        if let Some(key) = &v.key {
            w.raw(key.keypair.seed().expose());
        }
        let plain = Zeroizing::new(w.finish());
        let sealed = self
            .sealer
            // Counter 0: the manifest, sealed at the commit's counter value, pins records by
            // their bytes.
            .seal_synthetic(SealPurpose::ValidatorRecord, 0, &plain)
            .expect("a record is far below the sealing limit");
        Some(sealed.into_bytes())
    }

    fn decode_record(
        &self,
        sealed: &[u8],
        evidence: &EvidenceStore<'_>,
    ) -> Result<Validator, RestoreError> {
        let policy = &self.config.lockout;
        let plain = self
            .sealer
            .open(
                SealPurpose::ValidatorRecord,
                &SealedBlob::from_bytes(sealed.to_vec()),
                0,
            )?
            .plaintext;
        let mut r = Reader::new(&plain);
        r.header(RECORD_FORMAT, RECORD_MAGIC, RECORD_VERSION)?;
        let identity = SolanaPubkey(r.array("identity")?);
        let vote_account = SolanaPubkey(r.array("vote account")?);
        let key = match r.u8("key flag")? {
            0 => None,
            1 => Some((
                SolanaPubkey(r.array("vote pubkey")?),
                r.array::<32>("vote key evidence digest")?,
            )),
            _ => {
                return Err(DecodeError::Invalid {
                    field: "key flag",
                    reason: "not 0 or 1",
                }
                .into());
            }
        };
        let tower = decode_tower(&mut r, policy)?;
        let last_signed = match r.u8("last-signed flag")? {
            0 => None,
            1 => Some(LastSigned {
                vote: PreviousVote {
                    slot: r.u64("last slot")?,
                    hash: r.array("last hash")?,
                    digest: r.array("last digest")?,
                    initial: decode_bool(&mut r, "initial flag")?,
                },
                signature: SolanaSignature(r.array("last signature")?),
                key: SolanaPubkey(r.array("last key")?),
            }),
            _ => {
                return Err(DecodeError::Invalid {
                    field: "last-signed flag",
                    reason: "not 0 or 1",
                }
                .into());
            }
        };
        let nonce = r.u64("nonce")?;
        let count = usize::from(r.u8("recent count")?);
        if count > RECENT_ANSWERS {
            return Err(DecodeError::Invalid {
                field: "recent count",
                reason: "more than RECENT_ANSWERS",
            }
            .into());
        }
        let mut recent = VecDeque::with_capacity(count);
        for _ in 0..count {
            let nonce = r.u64("recent nonce")?;
            let digest = r.array("recent digest")?;
            let (answer, key_evidence) =
                decode_answer(&mut r, identity, vote_account, policy, evidence)?;
            recent.push_back(Recent {
                nonce,
                digest,
                answer,
                key_evidence,
            });
        }
        let key = match key {
            Some((pubkey, evidence_digest)) => {
                let seed = SecretBytes::<32>::from_slice(r.take("vote key seed", 32)?)
                    .expect("take gives 32 bytes");
                let keypair = SolanaKeypair::from_seed(&seed);
                if keypair.pubkey() != pubkey {
                    return Err(RestoreError::KeyMismatch(identity));
                }
                Some(ActiveKey {
                    keypair,
                    evidence: stored_evidence(evidence, &evidence_digest)?,
                    evidence_digest,
                })
            }
            None => None,
        };
        r.finish()?;
        Ok(Validator {
            identity,
            vote_account,
            key,
            tower,
            last_signed,
            nonce,
            recent,
            version: None,
        })
    }
}

/// The registered validator `identity`, holding a vote key.
fn active_in(
    validators: &mut BTreeMap<SolanaPubkey, Validator>,
    identity: SolanaPubkey,
) -> Result<&mut Validator, Refusal> {
    let v = validators
        .get_mut(&identity)
        .ok_or(Refusal::UnknownValidator(identity))?;
    if v.key.is_none() {
        return Err(Refusal::NotRegistered(identity));
    }
    Ok(v)
}

impl ActiveKey {
    fn info(&self) -> VoteKeyInfo {
        VoteKeyInfo {
            vote_pubkey: self.keypair.pubkey(),
            evidence: self.evidence.clone(),
        }
    }
}

impl Validator {
    fn new(identity: SolanaPubkey, vote_account: SolanaPubkey) -> Self {
        Self {
            identity,
            vote_account,
            key: None,
            tower: Tower::new(),
            last_signed: None,
            nonce: 0,
            recent: VecDeque::new(),
            version: None,
        }
    }

    /// The evidence digests the record names: the key's and the recent key answers' (at most
    /// one per slot; a digest may appear twice).
    fn evidence_named(&self) -> [Option<[u8; 32]>; 1 + RECENT_ANSWERS] {
        let mut named = [None; 1 + RECENT_ANSWERS];
        named[0] = self.key.as_ref().map(|k| k.evidence_digest);
        for (slot, r) in named[1..].iter_mut().zip(&self.recent) {
            *slot = r.key_evidence;
        }
        named
    }

    fn export(&self) -> TowerExport {
        TowerExport {
            identity: self.identity,
            vote_account: self.vote_account,
            tower: self.tower.clone(),
        }
    }
}

/// The evidence nonce binding a vote key to its validator: `var16(label) || identity || account`.
pub fn key_binding(identity: &SolanaPubkey, vote_account: &SolanaPubkey) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(KEY_BINDING).raw(&identity.0).raw(&vote_account.0);
    w.finish()
}

fn decode_bool(r: &mut Reader<'_>, field: &'static str) -> Result<bool, DecodeError> {
    match r.u8(field)? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Invalid {
            field,
            reason: "not 0 or 1",
        }),
    }
}

/// Tower layout: `u8 has_root || u64 root || u8 n || n × (u64 slot || u32 confirmations)`.
pub(crate) fn encode_tower(w: &mut Writer, tower: &Tower) {
    w.u8(u8::from(tower.root().is_some()))
        .u64(tower.root().unwrap_or(0))
        .u8(u8::try_from(tower.votes().len()).expect("towers hold at most 64 votes"));
    for v in tower.votes() {
        w.u64(v.slot).u32(v.confirmation_count);
    }
}

pub(crate) fn decode_tower(
    r: &mut Reader<'_>,
    policy: &LockoutPolicy,
) -> Result<Tower, RestoreError> {
    let has_root = decode_bool(r, "root flag")?;
    let root = r.u64("root")?;
    // One encoding per tower: the record's bytes are a function of the state.
    if !has_root && root != 0 {
        return Err(DecodeError::Invalid {
            field: "root",
            reason: "not 0 in a tower without a root",
        }
        .into());
    }
    let count = usize::from(r.u8("vote count")?);
    let mut votes = Vec::with_capacity(count);
    for _ in 0..count {
        votes.push(Lockout {
            slot: r.u64("slot")?,
            confirmation_count: r.u32("confirmations")?,
        });
    }
    Ok(Tower::from_parts(votes, has_root.then_some(root), policy)?)
}

/// Vote key evidence by [`evidence_digest`], as [`Signer::restore`] received it.
type EvidenceStore<'a> = BTreeMap<[u8; 32], &'a [u8]>;

/// The digest under which the host stores vote key evidence, and by which records name it:
/// SHA-256 of the bytes.
pub fn evidence_digest(evidence: &[u8]) -> [u8; 32] {
    Sha256::digest(evidence).into()
}

fn stored_evidence(store: &EvidenceStore<'_>, digest: &[u8; 32]) -> Result<Vec<u8>, RestoreError> {
    store
        .get(digest)
        .map(|blob| blob.to_vec())
        .ok_or(RestoreError::EvidenceMissing(*digest))
}

/// A record's answer: a vote key answer names its evidence by digest.
fn encode_answer(w: &mut Writer, recent: &Recent) {
    match &recent.answer {
        Answer::VoteKey(info) => {
            let digest = recent.key_evidence.expect("a key answer keeps its digest");
            w.u8(1).raw(&info.vote_pubkey.0).raw(&digest);
        }
        Answer::Signature(sig) => {
            w.u8(2).raw(&sig.0);
        }
        Answer::FinalTower(export) => {
            w.u8(3);
            encode_tower(w, &export.tower);
        }
    }
}

fn decode_answer(
    r: &mut Reader<'_>,
    identity: SolanaPubkey,
    vote_account: SolanaPubkey,
    policy: &LockoutPolicy,
    evidence: &EvidenceStore<'_>,
) -> Result<(Answer, Option<[u8; 32]>), RestoreError> {
    Ok(match r.u8("answer kind")? {
        1 => {
            let vote_pubkey = SolanaPubkey(r.array("answer vote pubkey")?);
            let digest = r.array("answer evidence digest")?;
            let info = VoteKeyInfo {
                vote_pubkey,
                evidence: stored_evidence(evidence, &digest)?,
            };
            (Answer::VoteKey(info), Some(digest))
        }
        2 => (
            Answer::Signature(SolanaSignature(r.array("answer signature")?)),
            None,
        ),
        3 => (
            Answer::FinalTower(TowerExport {
                identity,
                vote_account,
                tower: decode_tower(r, policy)?,
            }),
            None,
        ),
        _ => {
            return Err(DecodeError::Invalid {
                field: "answer kind",
                reason: "unknown kind",
            }
            .into());
        }
    })
}
