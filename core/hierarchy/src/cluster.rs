//! ClusterKeys: one per (epoch, cluster, generation), derived one-way from the MasterKey.
//!
//! A worker asks for the ClusterKey of `(epoch, cluster, generation)` with a
//! [`ClusterKeyRequest`]. The request is **not blinded**: its input is public, and each
//! gatekeeper must see exactly which (epoch, cluster, generation) it evaluates so that it can
//! refuse a worker that is not a member of that cluster at that generation. Otherwise one
//! compromised worker could obtain every cluster's key. Each gatekeeper computes the VOPRF input
//! itself, `var16("keyward/v1/cluster-key") || u64(epoch) || var16(cluster id) ||
//! u64(generation)`, and answers with its partial evaluation of `HashToGroup(input)` and a DLEQ
//! proof ([`ClusterKeyRequest::evaluate`]). Partials are secret in transit: `t` of them give the
//! ClusterKey, so they travel in envelopes to the worker's attested channel key. The worker
//! checks every proof against the epoch's committee from the verified [`EpochRecord`], combines
//! any `t` valid partials and finalizes, getting the 64-byte RFC 9497 output `Evaluate(s_e,
//! input)`. That output is expanded into the ClusterKey:
//!
//! ```text
//! cluster seed   = KDF(output,        "keyward/v1/cluster-seed",    input)
//! sr25519 seed   = KDF(cluster seed,  "keyward/v1/cluster/sr25519", "")
//! X25519 ikm     = KDF(cluster seed,  "keyward/v1/cluster/x25519",  "")   → RFC 9180 DeriveKeyPair
//! ```
//!
//! where `KDF(k, label, ctx) = HKDF-SHA256(salt = "", ikm = k, info = var16(label) || ctx)`.

use core::fmt;
use thiserror::Error;

use crate::{
    checksum::EpochRecord,
    ids::{ClusterId, Epoch, Generation},
    kdf,
    master::MasterKey,
};
use keyward_crypto::{ChannelKeypair, IdentityKeypair, SecretBytes, Writer};
use keyward_threshold::{
    CheckedPartial, CombineError, Element, InvalidPartial, KeyShare, Output, PartialEvaluation,
};

/// Why a ClusterKey could not be obtained.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClusterKeyError {
    /// Not enough valid partial evaluations; the refused ones are listed, to be reported.
    #[error("cannot finish ClusterKey: {0}")]
    Combine(#[from] CombineError),
    /// The epoch record given is for another epoch than the request.
    #[error("request is for epoch {request}, the epoch record is for epoch {record}")]
    WrongEpoch {
        /// The request's epoch.
        request: Epoch,
        /// The record's epoch.
        record: Epoch,
    },
}

/// The VOPRF input of a ClusterKey:
/// `var16("keyward/v1/cluster-key") || u64(epoch) || var16(cluster id) || u64(generation)`.
pub fn cluster_input(epoch: Epoch, cluster: &ClusterId, generation: Generation) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(b"keyward/v1/cluster-key")
        .u64(epoch.0)
        .var16(cluster.as_str().as_bytes())
        .u64(generation.0);
    w.finish()
}

/// A worker's request for the ClusterKey of one (epoch, cluster, generation). Public data: the
/// host sends it signed by the worker's identity, and each gatekeeper checks the worker's
/// membership before answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterKeyRequest {
    /// The MasterKey epoch.
    pub epoch: Epoch,
    /// The cluster.
    pub cluster: ClusterId,
    /// The cluster generation.
    pub generation: Generation,
}

impl ClusterKeyRequest {
    /// The VOPRF input this request asks to evaluate.
    pub fn input(&self) -> Vec<u8> {
        cluster_input(self.epoch, &self.cluster, self.generation)
    }

    /// The VOPRF element of [`ClusterKeyRequest::input`], which gatekeepers evaluate.
    pub fn element(&self) -> Element {
        // A short, fixed-format input: too long is impossible, hashing to the identity has
        // probability 2^-252.
        Element::from_input(&self.input()).expect("cluster input is a valid VOPRF input")
    }

    /// A gatekeeper's answer: its partial evaluation of this request's input under `share` (the
    /// whole MasterKey in classic mode), with a DLEQ proof against its verification share. The
    /// caller has checked that the requesting worker is a member of this cluster and generation.
    pub fn evaluate(
        &self,
        share: &KeyShare,
        rng: &mut impl keyward_crypto::Rng,
    ) -> PartialEvaluation {
        share.evaluate(&self.element(), rng)
    }

    /// Checks the gatekeepers' partial evaluations against the committee of `record` (an epoch
    /// record the caller verified against the epoch checksum chain), combines any `t` valid ones
    /// and derives the ClusterKey. Returns the refused partials with the key, to be reported.
    ///
    /// # Errors
    /// [`ClusterKeyError::WrongEpoch`] for a record of another epoch; [`ClusterKeyError::Combine`]
    /// if fewer than `t` partials are valid.
    pub fn finish(
        &self,
        record: &EpochRecord,
        partials: &[PartialEvaluation],
    ) -> Result<(ClusterKey, Vec<InvalidPartial>), ClusterKeyError> {
        self.check_epoch(record)?;
        let (output, combined) = record.committee().evaluate_input(&self.input(), partials)?;
        Ok((self.key_from(&output), combined.invalid))
    }

    /// [`ClusterKeyRequest::finish`] over partials the caller already checked with
    /// [`keyward_threshold::Committee::check_partial`] against [`ClusterKeyRequest::element`]
    /// under `record`'s committee (a worker checks each answer as it arrives, to blame its
    /// sender); their proofs are not checked again.
    ///
    /// # Errors
    /// As [`ClusterKeyRequest::finish`].
    pub fn finish_checked(
        &self,
        record: &EpochRecord,
        partials: &[CheckedPartial],
    ) -> Result<ClusterKey, ClusterKeyError> {
        self.check_epoch(record)?;
        let (output, _) = record
            .committee()
            .evaluate_input_checked(&self.input(), partials)?;
        Ok(self.key_from(&output))
    }

    fn check_epoch(&self, record: &EpochRecord) -> Result<(), ClusterKeyError> {
        if record.epoch() == self.epoch {
            Ok(())
        } else {
            Err(ClusterKeyError::WrongEpoch {
                request: self.epoch,
                record: record.epoch(),
            })
        }
    }

    fn key_from(&self, output: &Output) -> ClusterKey {
        ClusterKey::from_output(self.epoch, self.cluster.clone(), self.generation, output)
    }
}

/// The ClusterKey of one (epoch, cluster, generation), shared by the cluster's workers.
///
/// Guarantees: the seed and both secret keys zeroize on drop and never print. It reveals neither
/// the MasterKey nor any other cluster's, epoch's or generation's key.
pub struct ClusterKey {
    epoch: Epoch,
    cluster: ClusterId,
    generation: Generation,
    seed: SecretBytes<32>,
    identity: IdentityKeypair,
    channel: ChannelKeypair,
}

impl ClusterKey {
    /// Computes the ClusterKey directly from the whole MasterKey (what a classic-mode gatekeeper
    /// or the `keyward keys derive` tool can do). Equal to what a worker obtains by request.
    pub fn derive(
        master: &MasterKey,
        epoch: Epoch,
        cluster: ClusterId,
        generation: Generation,
    ) -> Self {
        let input = cluster_input(epoch, &cluster, generation);
        let output = master
            .secret()
            .evaluate(&input)
            .expect("cluster input is a valid VOPRF input");
        Self::from_output(epoch, cluster, generation, &output)
    }

    fn from_output(
        epoch: Epoch,
        cluster: ClusterId,
        generation: Generation,
        output: &Output,
    ) -> Self {
        let input = cluster_input(epoch, &cluster, generation);
        let seed = kdf::derive(output.expose(), "keyward/v1/cluster-seed", &input);
        Self::from_seed(epoch, cluster, generation, seed)
    }

    /// Rebuilds a ClusterKey from its sealed seed.
    pub fn from_seed(
        epoch: Epoch,
        cluster: ClusterId,
        generation: Generation,
        seed: SecretBytes<32>,
    ) -> Self {
        let identity = IdentityKeypair::from_seed(kdf::derive(
            seed.expose(),
            "keyward/v1/cluster/sr25519",
            b"",
        ));
        let channel = ChannelKeypair::derive(
            kdf::derive(seed.expose(), "keyward/v1/cluster/x25519", b"").expose(),
        );
        Self {
            epoch,
            cluster,
            generation,
            seed,
            identity,
            channel,
        }
    }

    /// The 32-byte cluster seed, for sealing and for deriving ContractKeys.
    pub fn seed(&self) -> &SecretBytes<32> {
        &self.seed
    }

    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The cluster.
    pub fn cluster(&self) -> &ClusterId {
        &self.cluster
    }

    /// The generation.
    pub fn generation(&self) -> Generation {
        self.generation
    }

    /// The cluster's sr25519 keypair.
    pub fn identity(&self) -> &IdentityKeypair {
        &self.identity
    }

    /// The cluster's X25519 keypair.
    pub fn channel(&self) -> &ChannelKeypair {
        &self.channel
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterKey")
            .field("epoch", &self.epoch)
            .field("cluster", &self.cluster)
            .field("generation", &self.generation)
            .field("sr25519", &self.identity.public())
            .field("x25519", &self.channel.public())
            .finish_non_exhaustive()
    }
}
