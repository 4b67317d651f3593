//! Contract entries (kinds 11–13, PROTOCOL §16.7): a user deploys a contract to a cluster; the
//! cluster's workers publish its certified public keys; users send it encrypted commands, which
//! every worker of the cluster executes in ledger order.

use keyward_crypto::{DecodeError, Envelope, EnvelopePurpose, IdentityPublicKey, Reader, Writer};
use keyward_hierarchy::{ClusterId, ContractId, ContractPublicKeys};

use crate::codec::{decode_envelope, decode_id, encode_id};
use crate::genesis::CodeId;
use crate::reject::Rejected;

/// Largest deployment argument.
pub const MAX_INIT_LEN: usize = 64 * 1024;
/// Largest command envelope.
pub const MAX_COMMAND_LEN: usize = 256 * 1024;
/// Largest encoded contract key certificate.
pub const MAX_CERTIFICATE_LEN: usize = 1024;

/// Kind 11: deploy a built-in contract to a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractDeploy {
    /// The new contract's id.
    pub contract: ContractId,
    /// The cluster that runs it.
    pub cluster: ClusterId,
    /// Which built-in contract (one of the genesis's codes).
    pub code: CodeId,
    /// Its public deployment argument (at most [`MAX_INIT_LEN`] bytes).
    pub init: Vec<u8>,
}

impl ContractDeploy {
    pub(crate) fn encode(&self, w: &mut Writer) {
        encode_id(w, self.contract.as_str());
        encode_id(w, self.cluster.as_str());
        encode_id(w, self.code.as_str());
        w.var32(&self.init);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            contract: decode_id(r, "contract id", ContractId::new)?,
            cluster: decode_id(r, "cluster id", ClusterId::new)?,
            code: decode_id(r, "contract code", CodeId::new)?,
            init: r.var32("init", MAX_INIT_LEN)?.to_vec(),
        })
    }
}

pub(crate) fn encode_keys(w: &mut Writer, keys: &ContractPublicKeys) {
    w.var16(&keys.to_bytes());
}

pub(crate) fn decode_keys(r: &mut Reader<'_>) -> Result<ContractPublicKeys, DecodeError> {
    ContractPublicKeys::from_bytes(r.var16("contract keys", MAX_CERTIFICATE_LEN)?)
}

/// The stateless rule of kind 12: the certificate's signature verifies under its own cluster
/// key (the registry then checks that key is the cluster's published one).
pub(crate) fn check_keys(keys: &ContractPublicKeys) -> Result<(), Rejected> {
    keys.verify().map_err(|_| Rejected::BadCertificate)
}

/// Kind 13: a user's encrypted command to a contract, addressed to the contract's current X25519
/// key with its context as additional data, sent and signed by the entry's author.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractCommand {
    /// The contract.
    pub contract: ContractId,
    /// The encrypted command (at most [`MAX_COMMAND_LEN`] bytes encoded).
    pub input: Envelope,
}

impl ContractCommand {
    pub(crate) fn encode(&self, w: &mut Writer) {
        encode_id(w, self.contract.as_str());
        w.var32(&self.input.to_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let contract = decode_id(r, "contract id", ContractId::new)?;
        let input = decode_envelope(r, "command", MAX_COMMAND_LEN)?;
        Ok(Self { contract, input })
    }

    /// The stateless rules: a `contract-input` envelope, sent and signed by the author.
    pub(crate) fn check(&self, author: &IdentityPublicKey) -> Result<(), Rejected> {
        let bad = |reason| Rejected::BadInputEnvelope { reason };
        if self.input.purpose() != EnvelopePurpose::ContractInput {
            return Err(bad("not a contract-input envelope"));
        }
        if self.input.sender() != *author {
            return Err(bad("not sent by the entry's author"));
        }
        self.input
            .verify_sender()
            .map_err(|_| bad("the sender's signature does not verify"))
    }
}
