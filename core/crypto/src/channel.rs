//! X25519 channel keys: the key every entity is encrypted to.
//!
//! Each entity holds a channel keypair beside its identity keypair. The identity certifies the
//! channel public key with a [`ChannelKeyCertificate`], and attestation evidence binds both, so
//! a sender that trusts an identity also knows which channel key reaches that identity's enclave.
//! Channel keys are HPKE (RFC 9180) DHKEM(X25519, HKDF-SHA256) keys; [`ChannelKeypair::derive`]
//! is RFC 9180's `DeriveKeyPair`.

use core::fmt;
use hpke::Kem as _;

use crate::dhkem::ChannelSecret;
use crate::identity::{
    IdentityKeypair, IdentityPublicKey, IdentitySignature, SignatureError, SigningPurpose,
};

/// The HPKE KEM of every keyward envelope: DHKEM(X25519, HKDF-SHA256), RFC 9180 KEM id 0x0020.
pub type Kem = crate::dhkem::X25519Kem;

/// An X25519 channel keypair.
///
/// Guarantees: the private key zeroizes on drop (x25519-dalek `StaticSecret` with `zeroize`), is
/// never printed (`Debug` shows the public key only) and compares in constant time.
pub struct ChannelKeypair {
    secret: ChannelSecret,
}

impl ChannelKeypair {
    /// A fresh keypair: RFC 9180 `GenerateKeyPair`, `DeriveKeyPair` of 32 bytes from `rng`.
    pub fn generate(rng: &mut impl crate::Rng) -> Self {
        let (secret, _) = Kem::gen_keypair(rng);
        Self { secret }
    }

    /// RFC 9180 `DeriveKeyPair(ikm)` for DHKEM(X25519, HKDF-SHA256): the same `ikm` always gives
    /// the same keypair, and `ikm` must hold at least 32 bytes of entropy.
    pub fn derive(ikm: &[u8]) -> Self {
        let (secret, _) = Kem::derive_keypair(ikm);
        Self { secret }
    }

    /// The public key.
    pub fn public(&self) -> ChannelPublicKey {
        self.secret.public()
    }

    /// The HPKE private key, for [`crate::envelope`].
    pub(crate) fn hpke_secret(&self) -> &ChannelSecret {
        &self.secret
    }

    /// The 32-byte private key as RFC 9180 serializes it (`skRm`; X25519 clamps it on use), for
    /// sealing. Handle as a secret.
    pub fn secret_bytes(&self) -> crate::SecretBytes<32> {
        self.secret.to_secret_bytes()
    }
}

impl fmt::Debug for ChannelKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelKeypair")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// An X25519 public key, 32 bytes, shown as `0x`-hex. Ordered by its bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelPublicKey(pub [u8; 32]);

impl fmt::Display for ChannelPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::to_0x(&self.0))
    }
}

impl fmt::Debug for ChannelPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChannelPublicKey({self})")
    }
}

/// An identity's signature binding a channel public key to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelKeyCertificate {
    /// The certifying identity.
    pub identity: IdentityPublicKey,
    /// The certified channel key.
    pub channel: ChannelPublicKey,
    /// The identity's signature (purpose [`SigningPurpose::ChannelKey`]) over the channel key.
    pub signature: IdentitySignature,
}

impl ChannelKeyCertificate {
    /// `identity` certifies `channel`.
    pub fn issue(
        identity: &IdentityKeypair,
        channel: ChannelPublicKey,
        rng: &mut impl crate::Rng,
    ) -> Self {
        let signature = identity.sign(SigningPurpose::ChannelKey, &channel.0, rng);
        Self {
            identity: identity.public(),
            channel,
            signature,
        }
    }

    /// Checks the signature.
    pub fn verify(&self) -> Result<(), SignatureError> {
        self.identity
            .verify(SigningPurpose::ChannelKey, &self.channel.0, &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn certificate_binds_key_to_identity() {
        let mut rng = StdRng::seed_from_u64(3);
        let id = IdentityKeypair::generate(&mut rng);
        let ch = ChannelKeypair::generate(&mut rng);
        let mut cert = ChannelKeyCertificate::issue(&id, ch.public(), &mut rng);
        assert!(cert.verify().is_ok());
        cert.channel = ChannelKeypair::generate(&mut rng).public();
        assert!(cert.verify().is_err());
    }

    #[test]
    fn derive_is_deterministic_and_debug_is_redacted() {
        let a = ChannelKeypair::derive(&[9u8; 32]);
        let b = ChannelKeypair::derive(&[9u8; 32]);
        assert_eq!(a.public(), b.public());
        assert_eq!(a.secret_bytes(), b.secret_bytes());
        let secret_hex = hex::encode(a.secret_bytes().expose());
        assert!(!format!("{a:?}").contains(&secret_hex[..16]));
    }
}
