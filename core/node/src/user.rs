//! A user's side: encrypt a command to a contract and open its reply, trusting only the verified
//! registry.

use thiserror::Error;

use keyward_contracts::{Call, Reply, ReplyError, open_reply};
use keyward_crypto::{ChannelKeypair, Envelope, IdentityKeypair, IdentityPublicKey};
use keyward_hierarchy::{ContractId, ContractPublicKeys, InputError};
use keyward_ledger::{ContractCommand, EntryHash, KeyContext, Registry, Rejected, Statement};

/// Why a user could not encrypt a command or accept a reply.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum UserError {
    /// The ledger has no keys to encrypt to (unknown contract, no active epoch, keys not
    /// published yet).
    #[error(transparent)]
    NoKeys(#[from] Rejected),
    /// The cluster that runs the contract has no published key for the keys' context.
    #[error("no cluster key is published for the contract's key context")]
    NoClusterKey,
    /// Threshold mode: the committee has not certified the cluster key yet (or its certificate
    /// does not verify under the epoch's master public key).
    #[error("the committee has not certified the cluster key for the contract's key context")]
    NoCommitteeCertificate,
    /// The contract's keys are not certified by the published cluster key.
    #[error(transparent)]
    Uncertified(#[from] InputError),
    /// The ledger has no such command.
    #[error("the ledger has no command {0}")]
    UnknownCommand(EntryHash),
    /// The reply is not the contract's answer to this user's command.
    #[error(transparent)]
    Reply(#[from] ReplyError),
}

/// A user: an identity and a channel key for replies.
///
/// Guarantees: it encrypts only to contract keys certified by the cluster key published on the
/// ledger (in threshold mode, a cluster key the committee certified under the epoch's master
/// public key), and accepts a reply only from the contract's key, for its own command; secrets
/// never print.
pub struct User {
    identity: IdentityKeypair,
    channel: ChannelKeypair,
}

impl core::fmt::Debug for User {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("User")
            .field("identity", &self.identity.public())
            .finish_non_exhaustive()
    }
}

/// The label of a user's derived reply channel key (PROTOCOL §18.4).
const USER_CHANNEL_LABEL: &[u8] = b"keyward/v1/user-channel";

impl User {
    /// A user with these keys.
    pub fn new(identity: IdentityKeypair, channel: ChannelKeypair) -> Self {
        Self { identity, channel }
    }

    /// A user whose reply channel key is derived from its identity seed, so that one identity
    /// key file is all a user keeps: `ChannelKeypair::derive(var16("keyward/v1/user-channel") ||
    /// seed)` (PROTOCOL §18.4). The same identity always gives the same channel key, and the
    /// channel key reveals nothing about the identity key.
    pub fn from_identity(identity: IdentityKeypair) -> Self {
        let mut ikm =
            zeroize::Zeroizing::new(Vec::with_capacity(2 + USER_CHANNEL_LABEL.len() + 32));
        ikm.extend_from_slice(&(USER_CHANNEL_LABEL.len() as u16).to_be_bytes());
        ikm.extend_from_slice(USER_CHANNEL_LABEL);
        ikm.extend_from_slice(identity.seed().expose());
        let channel = ChannelKeypair::derive(&ikm);
        Self { identity, channel }
    }

    /// Its reply channel key.
    pub fn channel(&self) -> keyward_crypto::ChannelPublicKey {
        self.channel.public()
    }

    /// Its identity.
    pub fn id(&self) -> IdentityPublicKey {
        self.identity.public()
    }

    /// The identity keypair, for signing this user's ledger entries.
    pub fn signer(&self) -> &IdentityKeypair {
        &self.identity
    }

    /// The entry body of a command: `call` (in the contract code's format) sealed to the
    /// contract's current keys, with this user's channel key to reply to.
    ///
    /// # Errors
    /// A [`UserError`]: no keys on the ledger, or keys the published cluster key did not certify.
    pub fn command(
        &self,
        registry: &Registry,
        contract: &ContractId,
        call: &[u8],
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<ContractCommand, UserError> {
        let (keys, trusted) = Self::trusted_keys(registry, contract)?;
        let plaintext = Call {
            reply_to: self.channel.public(),
            call: call.to_vec().into(),
        }
        .to_bytes();
        let input = keys.encrypt_input(trusted, &self.identity, &plaintext, rng)?;
        Ok(ContractCommand {
            contract: contract.clone(),
            input,
        })
    }

    /// The contract's current public keys and the cluster key to check their certificate with:
    /// the one published for their key context, and in threshold mode certified by the
    /// committee's signature, which this checks itself under the epoch's master public key.
    ///
    /// # Errors
    /// [`UserError::NoKeys`], [`UserError::NoClusterKey`] or
    /// [`UserError::NoCommitteeCertificate`]: not yet usable.
    pub fn trusted_keys<'r>(
        registry: &'r Registry,
        contract: &ContractId,
    ) -> Result<(&'r ContractPublicKeys, &'r IdentityPublicKey), UserError> {
        let keys = registry.contract_keys(contract)?;
        let context = KeyContext::from(&keys.context);
        let cluster = keys.context.cluster.clone();
        let trusted = registry
            .cluster(&cluster)
            .and_then(|c| c.key(context))
            .ok_or(UserError::NoClusterKey)?;
        if registry.key_threshold() > 1
            && !registry.is_certified(&Statement::ClusterKey(cluster, context))
        {
            return Err(UserError::NoCommitteeCertificate);
        }
        Ok((keys, trusted))
    }

    /// Opens the reply to `command` (its entry hash), checking it is sealed by the contract's key
    /// in the command's context, for this command.
    ///
    /// # Errors
    /// A [`UserError`].
    pub fn open_reply(
        &self,
        registry: &Registry,
        command: &EntryHash,
        reply: &Envelope,
    ) -> Result<Reply, UserError> {
        let queued = registry
            .command(command)
            .ok_or(UserError::UnknownCommand(*command))?;
        let context = KeyContext::from(&queued.context);
        let keys = registry
            .contract(&queued.context.contract)
            .and_then(|c| c.keys(context))
            .ok_or(UserError::UnknownCommand(*command))?;
        Ok(open_reply(&self.channel, keys, &command.0, reply)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use keyward_crypto::SecretBytes;

    fn user(seed: u8) -> User {
        User::from_identity(IdentityKeypair::from_seed(SecretBytes::new([seed; 32])))
    }

    #[test]
    fn the_reply_channel_is_derived_from_the_identity_as_specified() {
        // Computed independently from PROTOCOL §18.4 with Python's `cryptography` (RFC 9180
        // DeriveKeyPair written out, as in tools/spec-check).
        let expected = keyward_crypto::hex::from_hex::<32>(
            "channel",
            "0xdb9924f915450b6fb0f3545b7f661881101a983ecad8526f0b060b4ff7ee6f35",
        )
        .unwrap();
        assert_eq!(user(7).channel().0, expected);
        assert_eq!(user(7).channel(), user(7).channel());
        assert_ne!(user(7).channel(), user(8).channel());
    }
}
