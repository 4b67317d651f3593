//! Users' inputs to contracts: an [`Envelope`] to the contract's X25519 key whose additional data
//! is the contract's [`ContractContext`], so an input made for one contract, cluster, generation
//! or epoch never opens as another's.

use thiserror::Error;

use crate::{
    contract::{ContractKey, ContractPublicKeys},
    ids::{ClusterId, ContractId, Epoch, Generation},
};
use keyward_crypto::{
    DecodeError, Envelope, EnvelopeError, EnvelopePurpose, IdentityKeypair, IdentityPublicKey,
    Opened, Reader, Writer,
};

/// Where a contract lives: the (epoch, cluster, generation) of its keys, and its id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContractContext {
    /// MasterKey epoch.
    pub epoch: Epoch,
    /// Cluster.
    pub cluster: ClusterId,
    /// Cluster generation.
    pub generation: Generation,
    /// Contract.
    pub contract: ContractId,
}

const CONTEXT_LABEL: &[u8] = b"keyward/v1/contract-context";

impl ContractContext {
    /// `var16("keyward/v1/contract-context") || u64(epoch) || var16(cluster) || u64(generation) || var16(contract)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.var16(CONTEXT_LABEL)
            .u64(self.epoch.0)
            .var16(self.cluster.as_str().as_bytes())
            .u64(self.generation.0)
            .var16(self.contract.as_str().as_bytes());
        w.finish()
    }

    /// Decodes [`ContractContext::to_bytes`].
    ///
    /// # Errors
    /// A [`DecodeError`] for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.var16("context label", CONTEXT_LABEL.len())? != CONTEXT_LABEL {
            return Err(DecodeError::Invalid {
                field: "context label",
                reason: "not a contract context",
            });
        }
        let epoch = Epoch(r.u64("epoch")?);
        let cluster = id(
            r.var16("cluster id", keyward_crypto::ids::MAX_ID_LEN)?,
            ClusterId::new,
        )?;
        let generation = Generation(r.u64("generation")?);
        let contract = id(
            r.var16("contract id", keyward_crypto::ids::MAX_ID_LEN)?,
            ContractId::new,
        )?;
        r.finish()?;
        Ok(Self {
            epoch,
            cluster,
            generation,
            contract,
        })
    }
}

fn id<T>(
    bytes: &[u8],
    parse: impl Fn(&str) -> Result<T, keyward_crypto::IdError>,
) -> Result<T, DecodeError> {
    core::str::from_utf8(bytes)
        .ok()
        .and_then(|s| parse(s).ok())
        .ok_or(DecodeError::Invalid {
            field: "id",
            reason: "not a valid id",
        })
}

/// Why an input could not be made or opened.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum InputError {
    /// The contract's public keys are not certified by the trusted cluster key.
    #[error("contract public keys are not validly certified by the trusted cluster key")]
    Uncertified,
    /// The envelope itself was refused.
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    /// The envelope's additional data is not a contract context.
    #[error("input's context is malformed: {0}")]
    MalformedContext(DecodeError),
    /// The input was made for another contract, cluster, generation or epoch.
    #[error("input is for contract {} (epoch {}, cluster {}, generation {}), not this one", .0.contract, .0.epoch, .0.cluster, .0.generation)]
    WrongContext(Box<ContractContext>),
}

impl ContractPublicKeys {
    /// A user encrypts `plaintext` to this contract, signed by the user's identity. Refuses
    /// unless these keys are certified by `trusted_cluster_key`, the cluster's key as the user
    /// knows it from a source it trusts (the ledger), not from these keys' own certificate.
    ///
    /// # Errors
    /// [`InputError::Uncertified`] or [`InputError::Envelope`].
    pub fn encrypt_input(
        &self,
        trusted_cluster_key: &IdentityPublicKey,
        user: &IdentityKeypair,
        plaintext: &[u8],
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Envelope, InputError> {
        if &self.cluster_key != trusted_cluster_key || self.verify().is_err() {
            return Err(InputError::Uncertified);
        }
        Ok(Envelope::seal(
            user,
            &self.x25519,
            EnvelopePurpose::ContractInput,
            &self.context.to_bytes(),
            plaintext,
            rng,
        )?)
    }
}

impl ContractKey {
    /// Opens a user's input to this contract.
    ///
    /// # Errors
    /// [`InputError::Envelope`] for a bad envelope or one addressed elsewhere;
    /// [`InputError::WrongContext`] for an input made for another context.
    pub fn open_input(&self, envelope: &Envelope) -> Result<Opened, InputError> {
        let context =
            ContractContext::from_bytes(envelope.aad()).map_err(InputError::MalformedContext)?;
        if &context != self.context() {
            return Err(InputError::WrongContext(Box::new(context)));
        }
        Ok(self
            .channel()
            .open(envelope, EnvelopePurpose::ContractInput)?)
    }
}
