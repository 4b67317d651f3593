//! A user's side: encrypt a command to a contract and open its reply, trusting only the verified
//! registry.

use thiserror::Error;

use keyward_contracts::{Call, Reply, ReplyError, open_reply};
use keyward_crypto::{ChannelKeypair, Envelope, IdentityKeypair, IdentityPublicKey};
use keyward_hierarchy::{ContractId, InputError};
use keyward_ledger::{ContractCommand, EntryHash, KeyContext, Registry, Rejected};

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
/// Guarantees: it encrypts only to contract keys certified by the cluster key a gatekeeper
/// published on the ledger, and accepts a reply only from the contract's key, for its own
/// command; secrets never print.
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

impl User {
    /// A user with these keys.
    pub fn new(identity: IdentityKeypair, channel: ChannelKeypair) -> Self {
        Self { identity, channel }
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
        let keys = registry.contract_keys(contract)?;
        let context = KeyContext::from(&keys.context);
        let trusted = registry
            .cluster(&keys.context.cluster)
            .and_then(|c| c.key(context))
            .ok_or(UserError::NoClusterKey)?;
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
