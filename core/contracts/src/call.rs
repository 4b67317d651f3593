//! What a user sends a contract and what comes back.
//!
//! ```text
//! call plaintext = reply channel key(32) || var32(call bytes)        inside a contract-input envelope
//! reply          = u8(status) || var32(body)                          status 0 = ok, else ContractError::status
//! reply aad      = var16("keyward/v1/contract-reply") || command id(32) || contract context bytes
//! ```

use thiserror::Error;
use zeroize::Zeroizing;

use keyward_crypto::{
    ChannelKeypair, ChannelPublicKey, DecodeError, Envelope, EnvelopeError, EnvelopePurpose,
    Reader, Writer,
};
use keyward_hierarchy::{ContractContext, ContractPublicKeys};

/// Longest call.
pub const MAX_CALL_LEN: usize = 128 * 1024;

/// A user's call: the channel key to reply to, and the call bytes for the contract's code.
#[derive(Clone)]
pub struct Call {
    /// Where the reply is sealed to.
    pub reply_to: ChannelPublicKey,
    /// The call, in the contract code's format.
    pub call: Zeroizing<Vec<u8>>,
}

impl Call {
    /// The plaintext a user seals to the contract.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.raw(&self.reply_to.0).var32(&self.call);
        Zeroizing::new(w.finish())
    }

    /// Decodes [`Call::to_bytes`].
    ///
    /// # Errors
    /// A [`DecodeError`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let reply_to = ChannelPublicKey(r.array("reply channel key")?);
        let call = Zeroizing::new(r.var32("call", MAX_CALL_LEN)?.to_vec());
        r.finish()?;
        Ok(Self { reply_to, call })
    }
}

impl core::fmt::Debug for Call {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Call")
            .field("reply_to", &self.reply_to)
            .field("call_len", &self.call.len())
            .finish()
    }
}

/// A contract's answer to one call.
#[derive(Clone)]
pub struct Reply {
    /// 0 for success, else the [`crate::ContractError::status`] of the refusal.
    pub status: u8,
    /// The contract's answer (empty on refusal).
    pub body: Zeroizing<Vec<u8>>,
}

impl Reply {
    pub(crate) fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new();
        w.u8(self.status).var32(&self.body);
        Zeroizing::new(w.finish())
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let status = r.u8("status")?;
        let body = Zeroizing::new(r.var32("body", crate::state::MAX_VALUE_LEN + 64)?.to_vec());
        r.finish()?;
        Ok(Self { status, body })
    }
}

impl core::fmt::Debug for Reply {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The additional data of the reply to `command` from the contract in `context`.
pub fn reply_aad(command: &[u8; 32], context: &ContractContext) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(b"keyward/v1/contract-reply")
        .raw(command)
        .raw(&context.to_bytes());
    w.finish()
}

/// Why a user refused a reply.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum ReplyError {
    /// The envelope does not open, or was not sent by the contract's key.
    #[error("the reply does not open: {0}")]
    Envelope(#[from] EnvelopeError),
    /// Sent by another key than the contract's.
    #[error("the reply is not from the contract's key")]
    WrongSender,
    /// For another command or contract.
    #[error("the reply is for another command or contract")]
    WrongContext,
    /// Not a reply.
    #[error("malformed reply: {0}")]
    Malformed(DecodeError),
}

/// A user opens the reply to its `command` with its channel key, checking it comes from the
/// contract's sr25519 key in `keys` (the certificate the user encrypted to, taken from the
/// ledger).
///
/// # Errors
/// A [`ReplyError`].
pub fn open_reply(
    channel: &ChannelKeypair,
    keys: &ContractPublicKeys,
    command: &[u8; 32],
    envelope: &Envelope,
) -> Result<Reply, ReplyError> {
    if envelope.sender() != keys.sr25519 {
        return Err(ReplyError::WrongSender);
    }
    let opened = channel.open(envelope, EnvelopePurpose::ContractReply)?;
    if opened.aad != reply_aad(command, &keys.context) {
        return Err(ReplyError::WrongContext);
    }
    Reply::from_bytes(&opened.plaintext).map_err(ReplyError::Malformed)
}
