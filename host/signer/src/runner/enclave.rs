//! The enclave side of the signer: the core [`Signer`], the sealing key and monotonic counter it
//! is checked against, the platform's attester, and the answers it holds back until the commit
//! that makes them durable has advanced the counter.
//!
//! It runs wherever the runner puts the enclave: in the signer's own process ([`Enclave`] is the
//! in-process runner) or in `keyward enclave` ([`super::server`]). Either way the host sees only
//! sealed records, manifests and answers, and the counter is advanced here, by the side that
//! holds the keys: a host that never stores a commit cannot get its answers, and one that says
//! it stored a commit it did not store only makes the next start refuse its store.

use std::sync::{Arc, Mutex};

use rand_core::OsRng;
use thiserror::Error;

use keyward_crypto::{ChainId, IdentityKeypair, SecretBytes};
use keyward_enclave::SealingKey;
use keyward_enclave::{
    AttestFailed, Attester, BoundKey, DevPlatformKey, Evidence, EvidencePolicy, SealPurpose,
    SealedBlob, Sealer,
};
use keyward_host::counter::{CounterError, MonotonicCounter};
use keyward_tpm::source::Sealing;
use keyward_vote::ancestry::AncestryPolicy;
use keyward_vote::signer::RestoreError;
use keyward_vote::{
    CommitManifest, LockoutPolicy, Rejection, ServiceId, SignedRequest, Signer, SignerConfig,
};

use super::{Changes, Opening, Outcome, Query, QueryAnswer, Runner, RunnerError, Stored};

/// The measurement the signer's evidence reports: all zeros until a real TEE measures the core.
pub const DEV_MEASUREMENT: [u8; 32] = [0; 32];

/// Why a store could not be opened.
#[derive(Debug, Error)]
pub enum OpenError {
    /// A record or the manifest did not load, or the store is older than the counter.
    #[error("cannot load the stored validators: {0}")]
    Restore(#[from] RestoreError),
    /// The stored platform key does not open.
    #[error("the stored platform key does not open: {0}")]
    PlatformKey(String),
    /// The platform's evidence fails the configured attestation policy.
    #[error("this signer's own evidence fails its attestation policy: {0}")]
    Attestation(String),
}

/// The lockout and ancestry rules the enclave enforces: its own configuration, not the host's.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The lockout rules.
    pub lockout: LockoutPolicy,
    /// Ancestor verification and the threshold rule, when configured.
    pub ancestry: Option<AncestryPolicy>,
    /// The attestation policy the enclave's own evidence must meet, when configured.
    pub evidence: Option<EvidencePolicy>,
}

/// The signer's enclave: sealing material and, while a host is attached, the core.
pub struct Enclave {
    policy: Policy,
    chain: ChainId,
    key: SealingKey,
    counter: Box<dyn MonotonicCounter>,
    /// The sealing source's attester (a TPM), shared by every session; `None`: the store's dev
    /// platform key attests.
    attester: Option<Arc<Mutex<Box<dyn Attester>>>>,
    live: Option<Live>,
    /// The sealing directory's lock, when it is the isolated enclave's: held while this enclave
    /// lives, so no second one (a `keyward enclave`, a tower command) keeps its own view of the
    /// counter beside it.
    state_lock: Option<std::fs::File>,
}

struct Live {
    signer: Signer,
    /// A manifest sealed by [`Enclave::seal`] whose counter value is not reached yet.
    sealed: Option<u64>,
    /// Outcomes of the requests applied since the last release, in order.
    held: Vec<Outcome>,
}

impl std::fmt::Debug for Enclave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enclave")
            .field("chain", &self.chain)
            .field("counter", &self.counter)
            .field("open", &self.live.is_some())
            .finish_non_exhaustive()
    }
}

impl Enclave {
    /// An enclave over the sealing source's key, counter and attester, sealing for `chain`.
    pub fn new(sealing: Sealing, chain: ChainId, policy: Policy) -> Self {
        Self {
            key: sealing.key,
            policy,
            chain,
            counter: sealing.counter,
            attester: sealing.attester.map(|a| Arc::new(Mutex::new(a))),
            live: None,
            state_lock: None,
        }
    }

    /// Holds `lock` (the sealing directory's) for as long as this enclave lives.
    #[must_use]
    pub fn holding(mut self, lock: std::fs::File) -> Self {
        self.state_lock = Some(lock);
        self
    }

    /// The core, while a store is open (the tower export and import commands use it).
    pub fn signer(&mut self) -> Option<&mut Signer> {
        self.live.as_mut().map(|l| &mut l.signer)
    }

    fn live(&mut self) -> Result<&mut Live, RunnerError> {
        self.live.as_mut().ok_or(RunnerError::NotOpen)
    }

    fn sealer(&self) -> Sealer {
        Sealer::new(&self.key, self.chain.clone(), DEV_MEASUREMENT)
    }

    fn platform(
        sealer: &Sealer,
        stored: Option<&[u8]>,
    ) -> Result<(DevPlatformKey, Option<Vec<u8>>), OpenError> {
        let (seed, new) = match stored {
            Some(blob) => {
                let opened = sealer
                    .open(
                        SealPurpose::PlatformKey,
                        &SealedBlob::from_bytes(blob.to_vec()),
                        0,
                    )
                    .map_err(|e| OpenError::PlatformKey(e.to_string()))?;
                let seed = SecretBytes::<32>::from_slice(&opened.plaintext)
                    .ok_or_else(|| OpenError::PlatformKey("not 32 bytes".into()))?;
                (seed, None)
            }
            None => {
                let seed = SecretBytes::<32>::random(&mut OsRng);
                let sealed = sealer
                    // The platform key never changes, so it has nothing to roll back to.
                    .seal(SealPurpose::PlatformKey, 0, seed.expose(), &mut OsRng)
                    .expect("32 bytes seal");
                (seed, Some(sealed.into_bytes()))
            }
        };
        let key = DevPlatformKey::from_identity(IdentityKeypair::from_seed(seed));
        Ok((key, new))
    }
}

/// Refuses to serve on a platform whose evidence fails `policy`: attests a probe (the service
/// id, under a fixed nonce) and verifies it as a client would.
fn self_check(
    attester: &mut dyn Attester,
    policy: &EvidencePolicy,
    service: ServiceId,
) -> Result<(), OpenError> {
    let probe = [BoundKey::Ed25519(keyward_crypto::SolanaPubkey(service.0))];
    let nonce = b"keyward/v1/signer-self-check";
    let evidence = attester
        .attest(DEV_MEASUREMENT, &probe, nonce, &mut OsRng)
        .map_err(|e| OpenError::Attestation(e.to_string()))?;
    evidence
        .verify(policy, &probe, nonce)
        .map_err(|e| OpenError::Attestation(e.to_string()))?;
    Ok(())
}

/// Lends the shared attester to one [`Signer`] at a time.
struct SharedAttester(Arc<Mutex<Box<dyn Attester>>>);

impl Attester for SharedAttester {
    fn attest(
        &mut self,
        measurement: [u8; 32],
        keys: &[BoundKey],
        nonce: &[u8],
        rng: &mut dyn keyward_crypto::Rng,
    ) -> Result<Evidence, AttestFailed> {
        let mut attester = self
            .0
            .lock()
            .map_err(|_| AttestFailed("the attester failed earlier".into()))?;
        attester.attest(measurement, keys, nonce, rng)
    }
}

impl Runner for Enclave {
    fn open(&mut self, service: ServiceId, stored: &Stored) -> Result<Opening, RunnerError> {
        // Whatever was live is gone: its held answers were never released.
        self.live = None;
        let sealer = self.sealer();
        let (platform, new_platform) = Self::platform(&sealer, stored.platform.as_deref())?;
        let mut attester: Box<dyn Attester> = match &self.attester {
            Some(shared) => Box::new(SharedAttester(shared.clone())),
            None => Box::new(platform),
        };
        if let Some(policy) = &self.policy.evidence {
            self_check(attester.as_mut(), policy, service)?;
        }
        let config = SignerConfig {
            service,
            lockout: self.policy.lockout,
            ancestry: self.policy.ancestry.clone(),
            measurement: DEV_MEASUREMENT,
            evidence_policy: self.policy.evidence.clone(),
            identity_keys: Default::default(),
        };
        let mut signer = Signer::restore(
            config,
            sealer,
            attester,
            stored.records.iter().map(|(id, r)| (*id, r.as_slice())),
            stored.evidence.iter().map(Vec::as_slice),
            stored.manifest.as_deref(),
            self.counter.value(),
        )
        .map_err(OpenError::from)?;
        // The startup commit (no record; keyward_vote's signer docs): after it, no commit of
        // this session can reuse a counter value an earlier one sealed.
        let startup = signer.seal_commit();
        self.live = Some(Live {
            signer,
            sealed: Some(startup.counter),
            held: Vec::new(),
        });
        Ok(Opening {
            platform: new_platform,
            startup,
        })
    }

    fn apply(&mut self, requests: Vec<SignedRequest>) -> Result<Changes, RunnerError> {
        let live = self.live()?;
        let mut changes = Changes::default();
        for prepared in live.signer.config().prepare_all(requests) {
            let outcome = prepared.and_then(|p| live.signer.apply(&p, &mut OsRng));
            live.held.push(match outcome {
                Ok(applied) => {
                    changes.records.extend(applied.record);
                    changes.evidence.extend(applied.evidence);
                    changes.retired.extend(applied.retired);
                    Ok(applied.answer)
                }
                Err(refusal) => Err(Rejection::from(&refusal)),
            });
        }
        Ok(changes)
    }

    fn seal(&mut self) -> Result<CommitManifest, RunnerError> {
        let live = self.live()?;
        let manifest = live.signer.seal_commit();
        live.sealed = Some(manifest.counter);
        Ok(manifest)
    }

    fn release(&mut self) -> Result<Vec<Outcome>, RunnerError> {
        let live = self.live.as_mut().ok_or(RunnerError::NotOpen)?;
        if let Some(to) = live.sealed {
            if let Err(e) = self.counter.advance(to) {
                // The answers stay unreleased, and the state is ahead of the counter: start over
                // from the store.
                self.live = None;
                return Err(RunnerError::Counter(e.to_string()));
            }
            live.sealed = None;
        }
        Ok(std::mem::take(&mut live.held))
    }

    fn query(&mut self, query: &Query) -> Result<QueryAnswer, RunnerError> {
        let live = self.live()?;
        Ok(match query {
            Query::VoteKey(identity) => QueryAnswer::VoteKey(live.signer.vote_key(identity)),
            Query::Registered => QueryAnswer::Registered(live.signer.registered()),
        })
    }

    fn close(&mut self) {
        self.live = None;
    }
}

impl From<OpenError> for RunnerError {
    fn from(e: OpenError) -> Self {
        Self::Open(e.to_string())
    }
}

impl From<CounterError> for RunnerError {
    fn from(e: CounterError) -> Self {
        Self::Counter(e.to_string())
    }
}
