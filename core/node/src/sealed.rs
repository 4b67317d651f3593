//! A node's own keys and the sealed form of its whole key state (PROTOCOL §18.3).
//!
//! The plaintext is `"KWNS" || u8(1) || u8(role) || genesis(32) || identity seed(32) || channel
//! seed(32) || role part`, sealed whole with purpose `node-state`; it is zeroized after sealing
//! and after opening. One blob per node, so the host replaces it atomically and a restart never
//! sees half a state.

use thiserror::Error;
use zeroize::Zeroizing;

use keyward_crypto::{
    ChannelKeypair, ChannelPublicKey, DecodeError, IdentityKeypair, IdentityPublicKey, Reader,
    SecretBytes, Writer,
};
use keyward_enclave::{BoundKey, SealError, SealPurpose, SealedBlob, Sealer};
use keyward_ledger::EntryHash;

const MAGIC: &[u8; 4] = b"KWNS";
const VERSION: u8 = 1;
const FORMAT: &str = "keyward node state";

/// Which node a sealed state belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleTag {
    Gatekeeper = 1,
    Worker = 2,
}

/// Why a sealed node state could not be restored.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StateError {
    /// The blob does not open under this sealing key and chain (or was tampered with).
    #[error("the sealed node state does not open: {0}")]
    Sealed(#[from] SealError),
    /// It opened but its contents are malformed.
    #[error("the sealed node state is malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// It is another role's state.
    #[error("the sealed state is a {found}'s, not a {expected}'s")]
    WrongRole {
        /// The role asked for.
        expected: &'static str,
        /// The role found.
        found: &'static str,
    },
    /// It belongs to a node of another ledger.
    #[error("the sealed state belongs to the ledger {found}, not {expected}")]
    WrongLedger {
        /// The ledger followed.
        expected: EntryHash,
        /// The ledger in the state.
        found: EntryHash,
    },
}

impl RoleTag {
    fn name(self) -> &'static str {
        match self {
            Self::Gatekeeper => "gatekeeper",
            Self::Worker => "worker",
        }
    }
}

/// A node's identity and channel keys and the ledger it belongs to.
///
/// Guarantees: both seeds zeroize on drop and never print.
pub(crate) struct Keys {
    pub(crate) genesis: EntryHash,
    pub(crate) identity: IdentityKeypair,
    channel_seed: SecretBytes<32>,
    pub(crate) channel: ChannelKeypair,
}

impl Keys {
    pub(crate) fn generate(genesis: EntryHash, rng: &mut impl keyward_crypto::Rng) -> Self {
        let channel_seed = SecretBytes::random(rng);
        Self {
            genesis,
            identity: IdentityKeypair::generate(rng),
            channel: ChannelKeypair::derive(channel_seed.expose()),
            channel_seed,
        }
    }

    /// A key one-way from the channel seed, for `label` and `context`. The channel seed never
    /// leaves the core (the host holds a copy of the identity key to sign entries; issue 6).
    pub(crate) fn derive(&self, label: &str, context: &[u8]) -> SecretBytes<32> {
        keyward_hierarchy::kdf::derive(self.channel_seed.expose(), label, context)
    }

    pub(crate) fn id(&self) -> IdentityPublicKey {
        self.identity.public()
    }

    pub(crate) fn channel_public(&self) -> ChannelPublicKey {
        self.channel.public()
    }

    /// The keys attestation evidence must bind.
    pub(crate) fn bound_keys(&self) -> [BoundKey; 2] {
        [
            BoundKey::Identity(self.identity.public()),
            BoundKey::Channel(self.channel.public()),
        ]
    }

    /// Seals the state whose role part `body` writes.
    pub(crate) fn seal(
        &self,
        role: RoleTag,
        sealer: &Sealer,
        counter: u64,
        body: impl FnOnce(&mut Writer),
        rng: &mut impl keyward_crypto::Rng,
    ) -> SealedBlob {
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.u8(role as u8)
            .raw(&self.genesis.0)
            .raw(self.identity.seed().expose())
            .raw(self.channel_seed.expose());
        body(&mut w);
        let plain = Zeroizing::new(w.finish());
        sealer
            .seal(SealPurpose::NodeState, counter, &plain, rng)
            .expect("a node state is far below the sealing limit")
    }

    /// Opens a sealed state of `role` for the ledger `genesis`; `body` reads the role part, and
    /// the whole plaintext must be consumed.
    pub(crate) fn open<T>(
        role: RoleTag,
        sealer: &Sealer,
        genesis: &EntryHash,
        blob: &SealedBlob,
        minimum: u64,
        body: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
    ) -> Result<(Self, T), StateError> {
        let plain = sealer
            .open(SealPurpose::NodeState, blob, minimum)?
            .plaintext;
        let mut r = Reader::new(&plain);
        r.header(FORMAT, MAGIC, VERSION)?;
        let found = match r.u8("role")? {
            1 => RoleTag::Gatekeeper,
            2 => RoleTag::Worker,
            _ => {
                return Err(DecodeError::Invalid {
                    field: "role",
                    reason: "not 1 (gatekeeper) or 2 (worker)",
                }
                .into());
            }
        };
        if found != role {
            return Err(StateError::WrongRole {
                expected: role.name(),
                found: found.name(),
            });
        }
        let ledger = EntryHash(r.array("genesis")?);
        if ledger != *genesis {
            return Err(StateError::WrongLedger {
                expected: *genesis,
                found: ledger,
            });
        }
        let identity = IdentityKeypair::from_seed(secret(&mut r, "identity seed")?);
        let channel_seed = secret(&mut r, "channel seed")?;
        let keys = Self {
            genesis: ledger,
            identity,
            channel: ChannelKeypair::derive(channel_seed.expose()),
            channel_seed,
        };
        let rest = body(&mut r)?;
        r.finish()?;
        Ok((keys, rest))
    }
}

/// Reads a 32-byte secret without leaving a copy on the stack.
pub(crate) fn secret(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<SecretBytes<32>, DecodeError> {
    Ok(SecretBytes::from_slice(r.take(field, 32)?).expect("took 32 bytes"))
}

/// Reads a `u16` count and refuses one above `max`.
pub(crate) fn count(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
) -> Result<usize, DecodeError> {
    let n = usize::from(r.u16(field)?);
    if n > max {
        return Err(DecodeError::Invalid {
            field,
            reason: "too many",
        });
    }
    Ok(n)
}
