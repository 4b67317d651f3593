//! A deployed contract inside a worker: its code, its ContractKey and its state, and the
//! deterministic execution of commands.
//!
//! ```text
//! sealed state   = StateCipher.encrypt(record "state", version, state encoding)      SIV: same state, same bytes
//! sealed reply   = StateCipher.encrypt(record "reply" || command id, version, reply)
//! command digest = SHA-256(var16("keyward/v1/contract/command-digest") || command id || u8(outcome)
//!                          || var32(sealed state) || var32(sealed reply))
//! state digest   = SHA-256(var16("keyward/v1/contract/state-digest") || var32(sealed state))
//! ```
//!
//! The digests cover ciphertexts, never plaintexts: publishing them on the ledger reveals nothing
//! about the state or the reply.

use sha2::{Digest, Sha256};
use thiserror::Error;

use keyward_crypto::{Envelope, EnvelopePurpose, Writer};
use keyward_hierarchy::{ContractKey, StateError};

use crate::call::{Call, Reply, reply_aad};
use crate::code::{Builtin, ContractError};
use crate::state::State;

/// What happened to a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The call ran; the state may have changed.
    Ran,
    /// The contract refused the call; the state did not change.
    Refused(ContractError),
    /// The envelope did not open under this contract's key, or held no call; nothing ran and no
    /// reply is possible.
    Unreadable,
}

impl Outcome {
    fn code(self) -> u8 {
        match self {
            Self::Ran => 0,
            Self::Refused(e) => e.status(),
            Self::Unreadable => 0xff,
        }
    }
}

/// The result of one command.
#[derive(Debug)]
pub struct Executed {
    /// What happened.
    pub outcome: Outcome,
    /// The reply to the sender, sealed by the contract's sr25519 key (none if unreadable).
    pub reply: Option<Envelope>,
    /// What the worker publishes on the ledger: equal on every honest worker.
    pub digest: [u8; 32],
}

/// Why a sealed state could not be restored.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum RestoreError {
    /// The ciphertext does not open under this key, record and version.
    #[error("sealed state does not open: {0}")]
    Sealed(#[from] StateError),
    /// It opened but is not a state.
    #[error("sealed state is malformed")]
    Malformed,
}

/// A contract deployed in a worker.
///
/// Guarantees: the state changes only through [`Instance::execute`], which is deterministic in
/// (state, version, command id, input envelope); the state and key never print.
pub struct Instance {
    code: Builtin,
    key: ContractKey,
    state: State,
    version: u64,
}

impl core::fmt::Debug for Instance {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Instance")
            .field("code", &self.code)
            .field("context", self.key.context())
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn sha256(label: &[u8], parts: impl FnOnce(&mut Writer)) -> [u8; 32] {
    let mut w = Writer::new();
    w.var16(label);
    parts(&mut w);
    Sha256::digest(w.as_slice()).into()
}

impl Instance {
    /// Deploys `code` with `init` under `key`.
    ///
    /// # Errors
    /// [`ContractError::Malformed`] for an argument the code refuses.
    pub fn deploy(code: Builtin, key: ContractKey, init: &[u8]) -> Result<Self, ContractError> {
        Ok(Self {
            state: code.init(init)?,
            code,
            key,
            version: 0,
        })
    }

    /// Restores an instance from its sealed state.
    ///
    /// # Errors
    /// A [`RestoreError`] if the bytes were not sealed under `key` at `version`.
    pub fn restore(
        code: Builtin,
        key: ContractKey,
        version: u64,
        sealed: &[u8],
    ) -> Result<Self, RestoreError> {
        let plain = key.state().decrypt(b"state", version, sealed)?;
        let state = State::decode(&plain).map_err(|_| RestoreError::Malformed)?;
        Ok(Self {
            code,
            key,
            state,
            version,
        })
    }

    /// The number of commands that ran (the sealed state's version).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The key it runs under.
    pub fn key(&self) -> &ContractKey {
        &self.key
    }

    /// The state sealed under the contract's state key: what a worker stores.
    pub fn sealed_state(&self) -> Vec<u8> {
        self.key
            .state()
            .encrypt(
                b"state",
                self.version,
                &zeroize::Zeroizing::new(self.state.encode()),
            )
            .expect("a state encodes to at most MAX_STATE_LEN, what one record holds")
    }

    /// A digest of the sealed state: what workers publish for a migration.
    pub fn state_digest(&self) -> [u8; 32] {
        let sealed = self.sealed_state();
        sha256(b"keyward/v1/contract/state-digest", |w| {
            w.var32(&sealed);
        })
    }

    /// Moves the contract to a new key context (after a rotation or re-key): the same state,
    /// sealed from now on under `key` only.
    pub fn migrate(self, key: ContractKey) -> Self {
        Self { key, ..self }
    }

    /// Runs the command `command` (its ledger id) whose input is `input`.
    pub fn execute(
        &mut self,
        command: &[u8; 32],
        input: &Envelope,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Executed {
        let opened = self.key.open_input(input).ok();
        let call = opened
            .as_ref()
            .and_then(|o| Call::from_bytes(&o.plaintext).ok());
        let (Some(opened), Some(call)) = (opened, call) else {
            let sealed = self.sealed_state();
            let digest = sha256(b"keyward/v1/contract/command-digest", |w| {
                w.raw(command)
                    .u8(Outcome::Unreadable.code())
                    .var32(&sealed)
                    .var32(&[]);
            });
            return Executed {
                outcome: Outcome::Unreadable,
                reply: None,
                digest,
            };
        };
        let (outcome, reply) = match self.code.call(&mut self.state, &opened.sender, &call.call) {
            Ok(body) => (
                Outcome::Ran,
                Reply {
                    status: 0,
                    body: body.into(),
                },
            ),
            Err(e) => (
                Outcome::Refused(e),
                Reply {
                    status: e.status(),
                    body: Vec::new().into(),
                },
            ),
        };
        self.version += 1;
        let reply_bytes = reply.to_bytes();
        let record = [&b"reply"[..], command].concat();
        let sealed_reply = self
            .key
            .state()
            .encrypt(&record, self.version, &reply_bytes)
            .expect("replies are bounded");
        let sealed = self.sealed_state();
        let digest = sha256(b"keyward/v1/contract/command-digest", |w| {
            w.raw(command)
                .u8(outcome.code())
                .var32(&sealed)
                .var32(&sealed_reply);
        });
        // The recipient key is the user's choice: a degenerate one gets no reply.
        let envelope = Envelope::seal(
            self.key.identity(),
            &call.reply_to,
            EnvelopePurpose::ContractReply,
            &reply_aad(command, self.key.context()),
            &reply_bytes,
            rng,
        )
        .ok();
        Executed {
            outcome,
            reply: envelope,
            digest,
        }
    }
}
