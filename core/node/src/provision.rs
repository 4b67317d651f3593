//! ClusterKey provisioning between a worker and a gatekeeper (PROTOCOL §18.1).
//!
//! The worker signs a [`ProvisionRequest`] naming one gatekeeper and one (epoch, cluster,
//! generation). The gatekeeper checks the signature and asks its registry whether the worker may
//! have that key (`Registry::may_provision`), then answers with its partial evaluation and DLEQ
//! proof in a `cluster-key` envelope sealed to the worker's **registered** channel key, with
//! [`answer_aad`] binding it to the request. Replaying a request gains nothing: only the worker's
//! enclave can open the answer.

use thiserror::Error;

use keyward_crypto::{
    DecodeError, IdentityKeypair, IdentityPublicKey, IdentitySignature, Reader, SecretBytes,
    SignedMessage, SigningPurpose, Writer, verify_batch,
};
use keyward_hierarchy::{ClusterKeyError, ClusterKeyRequest, Epoch, Generation};
use keyward_ledger::{EntryHash, Named, ProvisionError as Refusal, Registry, partial_message};
use keyward_threshold::{Element, PartialEvaluation};
use zeroize::Zeroizing;

/// Longest encoded request: two keys, the request (epoch, var8 cluster id ≤ 64, generation) and
/// the signature.
pub const MAX_REQUEST_LEN: usize = 32 + 32 + 8 + 1 + keyward_crypto::ids::MAX_ID_LEN + 8 + 64;

/// Why provisioning failed, on either side.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProvisionError {
    /// The request's bytes are malformed.
    #[error("malformed provisioning request: {0}")]
    Malformed(#[from] DecodeError),
    /// The request names another gatekeeper.
    #[error("the request is for another gatekeeper")]
    WrongGatekeeper,
    /// The worker's signature does not verify.
    #[error("the request's signature does not verify")]
    BadSignature,
    /// The registry says no.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// This gatekeeper does not hold the epoch's secret.
    #[error("this gatekeeper does not hold epoch {0}")]
    NotHolder(Epoch),
    /// An answer did not open, or is not a partial evaluation for this request.
    #[error("answer from {from} refused: {reason}")]
    BadAnswer {
        /// The gatekeeper that sent it.
        from: Named,
        /// Why.
        reason: &'static str,
    },
    /// The partials did not give a ClusterKey (too few valid ones, or a wrong epoch).
    #[error(transparent)]
    Combine(#[from] ClusterKeyError),
    /// The key the partials give is not the cluster key published on the ledger: a gatekeeper
    /// lied, to the worker or on the ledger. The worker does not use it.
    #[error("the provisioned key does not match the cluster key published on the ledger")]
    PublishedKeyMismatch,
}

impl ProvisionError {
    /// A stable name for the reason, as in JSON-RPC errors and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::WrongGatekeeper => "wrong_gatekeeper",
            Self::BadSignature => "bad_signature",
            Self::Refused(Refusal::NotAWorker) => "not_a_worker",
            Self::Refused(Refusal::UnknownCluster(_)) => "unknown_cluster",
            Self::Refused(Refusal::NotMember(_)) => "not_member",
            Self::Refused(Refusal::EpochNotReady(_)) => "epoch_not_ready",
            Self::Refused(_) => "refused",
            Self::NotHolder(_) => "not_holder",
            Self::BadAnswer { .. } => "bad_answer",
            Self::Combine(_) => "combine_failed",
            Self::PublishedKeyMismatch => "published_key_mismatch",
        }
    }
}

/// A worker's signed request to one gatekeeper for its part of a ClusterKey.
///
/// Guarantees: a decoded request has a well-formed worker key, cluster id and signature
/// encoding; its signature is checked by [`ProvisionRequest::verify`], against the genesis the
/// gatekeeper follows. The asked gatekeeper's key is kept as encoded (it is only ever compared
/// with the answering gatekeeper's, [`ProvisionRequest::is_for`]), which spares a point
/// decompression per request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionRequest {
    /// The requesting worker.
    pub worker: IdentityPublicKey,
    /// The gatekeeper asked, encoded.
    gatekeeper: [u8; 32],
    /// What is asked for.
    pub request: ClusterKeyRequest,
    signature: IdentitySignature,
}

/// `var16("keyward/v1/provision-request") || genesis(32) || worker(32) || gatekeeper(32) ||
/// cluster input`.
fn message(
    genesis: &EntryHash,
    worker: &IdentityPublicKey,
    gatekeeper: &[u8; 32],
    request: &ClusterKeyRequest,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(b"keyward/v1/provision-request")
        .raw(&genesis.0)
        .raw(&worker.to_bytes())
        .raw(gatekeeper)
        .raw(&request.input());
    w.finish()
}

/// The aad of a gatekeeper's answer: `var16("keyward/v1/provision-answer") || genesis(32) ||
/// worker(32) || cluster input`.
pub fn answer_aad(
    genesis: &EntryHash,
    worker: &IdentityPublicKey,
    request: &ClusterKeyRequest,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(b"keyward/v1/provision-answer")
        .raw(&genesis.0)
        .raw(&worker.to_bytes())
        .raw(&request.input());
    w.finish()
}

/// Length of a gatekeeper's answer plaintext: `partial (98) || verification share (32) ||
/// signature (64)`, the signature over [`partial_message`] by the answering gatekeeper.
pub const ANSWER_LEN: usize = PartialEvaluation::LEN + 32 + 64;

/// A gatekeeper's answer plaintext for `request`: its partial evaluation with the verification
/// share it evaluated with, signed, so that a worker can prove a wrong one to everyone
/// (PROTOCOL §16.12). Secret: in classic mode the partial yields the ClusterKey.
pub fn answer_plaintext(
    gatekeeper: &IdentityKeypair,
    genesis: &EntryHash,
    request: &ClusterKeyRequest,
    verification: &Element,
    partial: &PartialEvaluation,
    rng: &mut impl keyward_crypto::Rng,
) -> SecretBytes<ANSWER_LEN> {
    // In classic mode the partial is the whole evaluation: every copy of it is wiped.
    let partial = Zeroizing::new(partial.to_bytes());
    let message = Zeroizing::new(partial_message(genesis, request, verification, &partial));
    let signature = gatekeeper.sign(SigningPurpose::PartialEvaluation, &message, rng);
    let mut bytes = Zeroizing::new([0u8; ANSWER_LEN]);
    bytes[..PartialEvaluation::LEN].copy_from_slice(partial.as_slice());
    bytes[PartialEvaluation::LEN..PartialEvaluation::LEN + 32]
        .copy_from_slice(&verification.to_bytes());
    bytes[PartialEvaluation::LEN + 32..].copy_from_slice(&signature.to_bytes());
    SecretBytes::new(*bytes)
}

/// An answer plaintext whose signature verified for its sender: what a report reveals. No
/// `Debug`, and the partial is wiped on drop: in classic mode it is the whole evaluation.
pub(crate) struct SignedPartial {
    pub(crate) partial: Zeroizing<[u8; PartialEvaluation::LEN]>,
    pub(crate) verification: Element,
    pub(crate) signature: IdentitySignature,
}

impl SignedPartial {
    /// Parses `plaintext` and checks `sender`'s signature over it for `request`.
    pub(crate) fn open(
        plaintext: &[u8],
        sender: &IdentityPublicKey,
        genesis: &EntryHash,
        request: &ClusterKeyRequest,
    ) -> Result<Self, &'static str> {
        if plaintext.len() != ANSWER_LEN {
            return Err("is not a signed partial evaluation");
        }
        let (partial, rest) = plaintext.split_at(PartialEvaluation::LEN);
        let (verification, signature) = rest.split_at(32);
        let partial: Zeroizing<[u8; PartialEvaluation::LEN]> =
            Zeroizing::new(partial.try_into().expect("split above"));
        let verification = Element::from_bytes(&verification.try_into().expect("32 bytes"))
            .map_err(|_| "names no verification share")?;
        let signature = IdentitySignature::from_bytes(&signature.try_into().expect("64 bytes"))
            .map_err(|_| "carries no signature")?;
        let message = Zeroizing::new(partial_message(genesis, request, &verification, &partial));
        sender
            .verify(SigningPurpose::PartialEvaluation, &message, &signature)
            .map_err(|_| "is not signed by its sender")?;
        Ok(Self {
            partial,
            verification,
            signature,
        })
    }
}

impl ProvisionRequest {
    /// The worker signs a request for `request` to `gatekeeper`, on the ledger `genesis`.
    pub fn sign(
        worker: &IdentityKeypair,
        genesis: &EntryHash,
        gatekeeper: IdentityPublicKey,
        request: ClusterKeyRequest,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Self {
        let me = worker.public();
        let gatekeeper = gatekeeper.to_bytes();
        let signature = worker.sign(
            SigningPurpose::ProvisionRequest,
            &message(genesis, &me, &gatekeeper, &request),
            rng,
        );
        Self {
            worker: me,
            gatekeeper,
            request,
            signature,
        }
    }

    /// Whether the request asks `gatekeeper`.
    pub fn is_for(&self, gatekeeper: &IdentityPublicKey) -> bool {
        self.gatekeeper == gatekeeper.to_bytes()
    }

    /// Checks the worker's signature for the ledger `genesis`.
    ///
    /// # Errors
    /// [`ProvisionError::BadSignature`].
    pub fn verify(&self, genesis: &EntryHash) -> Result<(), ProvisionError> {
        self.worker
            .verify(
                SigningPurpose::ProvisionRequest,
                &message(genesis, &self.worker, &self.gatekeeper, &self.request),
                &self.signature,
            )
            .map_err(|_| ProvisionError::BadSignature)
    }

    /// Checks the signatures of many requests for the ledger `genesis`, one result per request,
    /// in order. They are verified as one batch (about 40 % cheaper per signature than
    /// [`ProvisionRequest::verify`] at 64 requests); only if the batch fails is each checked
    /// alone, to name the bad ones.
    pub fn verify_all(
        requests: &[&Self],
        genesis: &EntryHash,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Vec<Result<(), ProvisionError>> {
        if requests.len() > 1 {
            let messages: Vec<Vec<u8>> = requests
                .iter()
                .map(|r| message(genesis, &r.worker, &r.gatekeeper, &r.request))
                .collect();
            let batch: Vec<SignedMessage<'_>> = requests
                .iter()
                .zip(&messages)
                .map(|(r, message)| SignedMessage {
                    signer: &r.worker,
                    purpose: SigningPurpose::ProvisionRequest,
                    message,
                    signature: &r.signature,
                })
                .collect();
            if verify_batch(&batch, rng).is_ok() {
                return vec![Ok(()); requests.len()];
            }
        }
        requests.iter().map(|r| r.verify(genesis)).collect()
    }

    /// `worker(32) || gatekeeper(32) || u64(epoch) || var8(cluster id) || u64(generation) ||
    /// signature(64)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&self.worker.to_bytes())
            .raw(&self.gatekeeper)
            .u64(self.request.epoch.0)
            .var8(self.request.cluster.as_str().as_bytes())
            .u64(self.request.generation.0)
            .raw(&self.signature.to_bytes());
        w.finish()
    }

    /// Decodes [`ProvisionRequest::to_bytes`]; the signature is not checked here.
    ///
    /// # Errors
    /// [`ProvisionError::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProvisionError> {
        Self::decode(bytes, |worker| Ok(IdentityPublicKey::from_bytes(worker)?))
    }

    /// Decodes a request from a worker registered in `registry`, as a gatekeeper does: the
    /// worker's key is taken from the registry by its encoding instead of being decompressed.
    /// The signature is not checked here.
    ///
    /// # Errors
    /// [`ProvisionError::Malformed`], or `Refused(NotAWorker)` for a key no node registered.
    pub fn from_registered(bytes: &[u8], registry: &Registry) -> Result<Self, ProvisionError> {
        Self::decode(bytes, |worker| {
            registry
                .node_by_encoding(worker)
                .map(|(key, _)| *key)
                .ok_or(ProvisionError::Refused(Refusal::NotAWorker))
        })
    }

    fn decode(
        bytes: &[u8],
        worker_key: impl FnOnce(&[u8; 32]) -> Result<IdentityPublicKey, ProvisionError>,
    ) -> Result<Self, ProvisionError> {
        if bytes.len() > MAX_REQUEST_LEN {
            return Err(DecodeError::Invalid {
                field: "provisioning request",
                reason: "too long",
            }
            .into());
        }
        let mut r = Reader::new(bytes);
        let worker = r.array("worker")?;
        let gatekeeper = r.array("gatekeeper")?;
        let epoch = Epoch(r.u64("epoch")?);
        let cluster = crate::worker::cluster_id(&mut r)?;
        let generation = Generation(r.u64("generation")?);
        let signature = IdentitySignature::from_bytes(&r.array("signature")?)?;
        r.finish()?;
        Ok(Self {
            worker: worker_key(&worker)?,
            gatekeeper,
            request: ClusterKeyRequest {
                epoch,
                cluster,
                generation,
            },
            signature,
        })
    }
}
