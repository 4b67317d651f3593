//! The MasterKey of an epoch: a ristretto255 scalar `s_e` with public key `S_e = s_e·G`.
//!
//! In classic mode every gatekeeper holds `s_e` whole, as a [`KeyShare`] of a threshold-1
//! [`Committee`]; in threshold mode it exists only as shares. Either way gatekeepers answer
//! ClusterKey requests through [`crate::ClusterKeyRequest::evaluate`] with their [`KeyShare`], and
//! workers finish them through the same [`crate::ClusterKeyRequest::finish`].

use core::fmt;
use keyward_crypto::{DecodeError, SecretBytes};
use keyward_threshold::{Committee, CommitteeError, KeyShare, PublicKey, SecretKey, ShareIndex};

/// The MasterKey of one epoch.
///
/// Guarantees: zeroized on drop, never printed, compared in constant time. A fresh MasterKey is
/// independent of every earlier one, so nothing derived from an old epoch reveals a new one.
#[derive(PartialEq, Eq)]
pub struct MasterKey(SecretKey);

impl MasterKey {
    /// A fresh, uniformly random MasterKey.
    pub fn generate(rng: &mut impl keyward_crypto::Rng) -> Self {
        Self(SecretKey::random(rng))
    }

    /// Decodes a 32-byte little-endian canonical nonzero scalar.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] otherwise.
    pub fn from_bytes(bytes: &SecretBytes<32>) -> Result<Self, DecodeError> {
        SecretKey::from_bytes(bytes).map(Self)
    }

    /// The 32-byte encoding, for sealing.
    pub fn to_bytes(&self) -> SecretBytes<32> {
        self.0.to_bytes()
    }

    /// The master public key `S_e`.
    pub fn public_key(&self) -> PublicKey {
        self.0.public_key()
    }

    /// Classic mode: the committee in which each of `members` holds the whole key (threshold 1).
    ///
    /// # Errors
    /// [`CommitteeError::BadSize`] for no members or too many.
    pub fn classic_committee(
        &self,
        members: impl IntoIterator<Item = ShareIndex>,
    ) -> Result<Committee, CommitteeError> {
        Committee::classic(self.public_key(), members)
    }

    /// Classic mode: the whole key as gatekeeper `index`'s share.
    pub fn classic_share(&self, index: ShareIndex) -> KeyShare {
        KeyShare::new(index, &self.0)
    }

    /// Threshold mode by trusted dealer (tests, development, offline backup): `n` shares, any
    /// `t` of which evaluate like the whole key.
    ///
    /// # Errors
    /// [`CommitteeError`] for a bad `t` or `n`.
    pub fn deal(
        &self,
        threshold: u16,
        members: u16,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<(Committee, Vec<KeyShare>), CommitteeError> {
        Committee::deal(&self.0, threshold, members, rng)
    }

    /// The VOPRF key, for evaluation by its holder.
    pub(crate) fn secret(&self) -> &SecretKey {
        &self.0
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MasterKey(redacted, public {})", self.public_key())
    }
}
