//! ClusterKeys: one per (epoch, cluster, generation), derived one-way from the MasterKey.
//!
//! A worker makes a [`ClusterKeyRequest`]: the VOPRF input
//! `var16("keyward/v1/cluster-key") || u64(epoch) || var16(cluster id) || u64(generation)`,
//! blinded. Gatekeepers answer with partial evaluations and DLEQ proofs
//! ([`keyward_threshold::KeyShare::evaluate`]); the worker checks every proof against the
//! epoch's committee (whose public key is the master public key), combines, unblinds and gets the
//! 64-byte VOPRF output. That output is expanded into the ClusterKey:
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
    ids::{ClusterId, Epoch, Generation},
    kdf,
    master::MasterKey,
};
use keyward_crypto::{ChannelKeypair, IdentityKeypair, SecretBytes, Writer};
use keyward_threshold::{
    BlindedRequest, CombineError, Committee, Element, InvalidPartial, Output, PartialEvaluation,
};

/// Why a ClusterKey could not be obtained.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ClusterKeyError {
    /// Not enough valid partial evaluations; the refused ones are listed, to be reported.
    #[error("cannot finish ClusterKey: {0}")]
    Combine(#[from] CombineError),
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

/// A worker's pending request for its ClusterKey. Holds the VOPRF blind (secret, zeroized on drop).
#[derive(Debug)]
pub struct ClusterKeyRequest {
    epoch: Epoch,
    cluster: ClusterId,
    generation: Generation,
    request: BlindedRequest,
}

impl ClusterKeyRequest {
    /// Blinds the request for `(epoch, cluster, generation)`.
    pub fn new(
        epoch: Epoch,
        cluster: ClusterId,
        generation: Generation,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Self {
        let input = cluster_input(epoch, &cluster, generation);
        // The input is short and fixed-format; hashing to the identity has probability 2^-252.
        let request =
            BlindedRequest::new(&input, rng).expect("cluster input is a valid VOPRF input");
        Self {
            epoch,
            cluster,
            generation,
            request,
        }
    }

    /// The blinded element to send to the gatekeepers.
    pub fn blinded(&self) -> Element {
        self.request.blinded()
    }

    /// Checks the gatekeepers' partial evaluations against the epoch's `committee`, combines any
    /// `t` valid ones and derives the ClusterKey. Returns the refused partials with the key, so
    /// the worker can report them.
    ///
    /// # Errors
    /// [`ClusterKeyError::Combine`] if fewer than `t` partials are valid.
    pub fn finish(
        self,
        committee: &Committee,
        partials: &[PartialEvaluation],
    ) -> Result<(ClusterKey, Vec<InvalidPartial>), ClusterKeyError> {
        let (output, combined) = self.request.finalize_threshold(committee, partials)?;
        Ok((
            ClusterKey::from_output(self.epoch, self.cluster, self.generation, &output),
            combined.invalid,
        ))
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
