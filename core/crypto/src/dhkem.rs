//! RFC 9180's DHKEM(X25519, HKDF-SHA256), KEM id `0x0020`, for the `hpke` crate.
//!
//! `hpke` runs the key schedule and the AEAD of every envelope; this module is only its KEM, plugged
//! in through `hpke::Kem`. It computes exactly what `hpke`'s own `X25519HkdfSha256` computes (the
//! tests check both against RFC 9180 Appendix A.2 and against each other), with less work:
//!
//! - `Encap` derives the ephemeral keypair once; `hpke`'s derives its public key twice.
//! - `Decap` takes the recipient's public key from the keypair; `hpke`'s recomputes it.
//! - `DH` (RFC 7748's X25519) runs on the Edwards form of the curve for a public key on the
//!   curve: the point is mapped to Edwards form, multiplied by the clamped scalar with
//!   curve25519-dalek's vectorised variable-base multiplication, and mapped back. The Montgomery
//!   ladder (x25519-dalek) runs on the serial backend and is slower (docs/BENCHMARKS.md). Inputs off the
//!   curve (on its twist) still go to the ladder, so every 32-byte input gets RFC 7748's answer.
//!
//! The branch between the two depends only on the public key. Both multiplications run in
//! constant time in the secret scalar.

use core::fmt;

use curve25519_dalek::montgomery::MontgomeryPoint;
use hpke::{
    Deserializable, HpkeError, Serializable,
    generic_array::typenum::U32,
    kdf::{HkdfSha256, LabeledExpand, labeled_extract},
    kem::SharedSecret,
};
use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::channel::ChannelPublicKey;

/// keyward's HPKE KEM: DHKEM(X25519, HKDF-SHA256), RFC 9180 KEM id `0x0020`.
pub enum X25519Kem {}

/// `"KEM" || I2OSP(0x0020, 2)`, RFC 9180 §4.1's `suite_id` for this KEM.
const SUITE_ID: &[u8; 5] = b"KEM\x00\x20";

/// An X25519 private key with its public key, so decapsulation needs no scalar multiplication
/// beyond the Diffie-Hellman itself.
///
/// Guarantees: the private key zeroizes on drop (x25519-dalek `StaticSecret`), is never printed
/// and compares in constant time. `Clone` exists because `hpke::Kem` requires it.
#[derive(Clone)]
pub struct ChannelSecret {
    secret: x25519_dalek::StaticSecret,
    public: ChannelPublicKey,
}

impl ChannelSecret {
    /// The public key.
    pub fn public(&self) -> ChannelPublicKey {
        self.public
    }

    /// The private key's 32 bytes as RFC 9180 serializes them (`skRm`, unclamped).
    pub(crate) fn to_secret_bytes(&self) -> crate::SecretBytes<32> {
        crate::SecretBytes::new(self.secret.to_bytes())
    }

    fn from_secret(secret: x25519_dalek::StaticSecret) -> Self {
        let public = ChannelPublicKey(*x25519_dalek::PublicKey::from(&secret).as_bytes());
        Self { secret, public }
    }

    /// RFC 7748's `X25519(sk, public)`, or `None` when it is all zeros (a low-order `public`),
    /// which RFC 9180 §7.1.4 says to refuse.
    fn diffie_hellman(&self, public: &ChannelPublicKey) -> Option<Zeroizing<[u8; 32]>> {
        let point = MontgomeryPoint(public.0);
        let shared = Zeroizing::new(match point.to_edwards(0) {
            Some(edwards) => {
                let scalar = Zeroizing::new(self.secret.to_bytes());
                // The product is the shared secret in another form: wiped like the result.
                let mut product = edwards.mul_clamped(*scalar);
                let mut shared = product.to_montgomery();
                let bytes = shared.to_bytes();
                product.zeroize();
                shared.zeroize();
                bytes
            }
            None => self
                .secret
                .diffie_hellman(&x25519_dalek::PublicKey::from(public.0))
                .to_bytes(),
        });
        (!bool::from(shared.ct_eq(&[0u8; 32]))).then_some(shared)
    }

    /// RFC 9180 §4.1 `ExtractAndExpand(DH(self, peer), enc || recipient)`.
    fn shared_secret(
        &self,
        peer: &ChannelPublicKey,
        enc: &ChannelPublicKey,
        recipient: &ChannelPublicKey,
    ) -> Option<SharedSecret<X25519Kem>> {
        let dh = self.diffie_hellman(peer)?;
        let mut kem_context = [0u8; 64];
        kem_context[..32].copy_from_slice(&enc.0);
        kem_context[32..].copy_from_slice(&recipient.0);
        let mut out = SharedSecret::<X25519Kem>::default();
        hpke::kdf::extract_and_expand::<HkdfSha256>(&*dh, SUITE_ID, &kem_context, &mut out.0)
            .ok()?;
        Some(out)
    }
}

impl PartialEq for ChannelSecret {
    fn eq(&self, other: &Self) -> bool {
        self.secret.as_bytes().ct_eq(other.secret.as_bytes()).into()
    }
}

impl Eq for ChannelSecret {}

impl fmt::Debug for ChannelSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSecret")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl Serializable for ChannelSecret {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(self.secret.as_bytes());
    }
}

impl Deserializable for ChannelSecret {
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        let bytes = Zeroizing::new(
            <[u8; 32]>::try_from(encoded)
                .map_err(|_| HpkeError::IncorrectInputLength(32, encoded.len()))?,
        );
        Ok(Self::from_secret(x25519_dalek::StaticSecret::from(*bytes)))
    }
}

impl Serializable for ChannelPublicKey {
    type OutputSize = U32;

    fn write_exact(&self, buf: &mut [u8]) {
        buf.copy_from_slice(&self.0);
    }
}

impl Deserializable for ChannelPublicKey {
    /// Every 32 bytes are an X25519 public key (RFC 7748).
    fn from_bytes(encoded: &[u8]) -> Result<Self, HpkeError> {
        <[u8; 32]>::try_from(encoded)
            .map(Self)
            .map_err(|_| HpkeError::IncorrectInputLength(32, encoded.len()))
    }
}

impl hpke::Kem for X25519Kem {
    type PublicKey = ChannelPublicKey;
    type PrivateKey = ChannelSecret;
    type EncappedKey = ChannelPublicKey;
    type NSecret = U32;
    const KEM_ID: u16 = 0x0020;

    fn sk_to_pk(sk: &ChannelSecret) -> ChannelPublicKey {
        sk.public
    }

    /// RFC 9180 §7.1.3 `DeriveKeyPair`: `sk = LabeledExpand(LabeledExtract("", "dkp_prk", ikm),
    /// "sk", "", 32)`, and its public key.
    fn derive_keypair(ikm: &[u8]) -> (ChannelSecret, ChannelPublicKey) {
        let (_, prk) = labeled_extract::<HkdfSha256>(&[], SUITE_ID, b"dkp_prk", ikm);
        let mut sk = Zeroizing::new([0u8; 32]);
        prk.labeled_expand(SUITE_ID, b"sk", &[], &mut *sk)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let secret = ChannelSecret::from_secret(x25519_dalek::StaticSecret::from(*sk));
        let public = secret.public;
        (secret, public)
    }

    fn encap<R: CryptoRng + RngCore>(
        pk_recip: &ChannelPublicKey,
        sender_id_keypair: Option<(&ChannelSecret, &ChannelPublicKey)>,
        csprng: &mut R,
    ) -> Result<(SharedSecret<Self>, ChannelPublicKey), HpkeError> {
        // keyward uses base mode only; the sender is authenticated by its signature instead.
        if sender_id_keypair.is_some() {
            return Err(HpkeError::EncapError);
        }
        let (ephemeral, enc) = Self::gen_keypair(csprng);
        let shared = ephemeral
            .shared_secret(pk_recip, &enc, pk_recip)
            .ok_or(HpkeError::EncapError)?;
        Ok((shared, enc))
    }

    fn decap(
        sk_recip: &ChannelSecret,
        pk_sender_id: Option<&ChannelPublicKey>,
        encapped_key: &ChannelPublicKey,
    ) -> Result<SharedSecret<Self>, HpkeError> {
        if pk_sender_id.is_some() {
            return Err(HpkeError::DecapError);
        }
        sk_recip
            .shared_secret(encapped_key, encapped_key, &sk_recip.public)
            .ok_or(HpkeError::DecapError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hpke::Kem as _;
    use proptest::prelude::*;

    /// RFC 7748 §5.2's two X25519 vectors (the second with bit 255 of u set), §6.1's
    /// Diffie-Hellman, and §5.2's first iteration.
    #[test]
    fn x25519_matches_rfc7748() {
        let cases = [
            (
                "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
                "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
                "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
            ),
            (
                "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
                "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
                "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
            ),
            (
                "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
                "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f",
                "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742",
            ),
            // §5.2's iteration, once: k = u = 9.
            (
                "0900000000000000000000000000000000000000000000000000000000000000",
                "0900000000000000000000000000000000000000000000000000000000000000",
                "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079",
            ),
        ];
        for (k, u, out) in cases {
            let secret = ChannelSecret::from_bytes(&hex::decode(k).unwrap()).unwrap();
            let u = ChannelPublicKey::from_bytes(&hex::decode(u).unwrap()).unwrap();
            assert_eq!(
                hex::encode(*secret.diffie_hellman(&u).unwrap()),
                out,
                "X25519({k}, ..)"
            );
        }
    }

    #[test]
    fn low_order_points_are_refused() {
        let secret = ChannelSecret::from_bytes(&[7u8; 32]).unwrap();
        let mut one = [0u8; 32];
        one[0] = 1;
        for u in [[0u8; 32], one] {
            assert!(secret.diffie_hellman(&ChannelPublicKey(u)).is_none());
        }
    }

    #[test]
    fn derive_keypair_matches_hpke() {
        let (sk, pk) = X25519Kem::derive_keypair(&[3u8; 32]);
        let (hsk, hpk) = hpke::kem::X25519HkdfSha256::derive_keypair(&[3u8; 32]);
        assert_eq!(pk.0.as_slice(), hpk.to_bytes().as_slice());
        assert_eq!(
            sk.to_secret_bytes().expose().as_slice(),
            hsk.to_bytes().as_slice()
        );
        assert!(!format!("{sk:?}").contains(&hex::encode(sk.to_secret_bytes().expose())));
    }

    proptest! {
        /// Every scalar and every 32-byte input, on the curve or its twist, gives x25519-dalek's
        /// ladder's answer.
        #[test]
        fn x25519_matches_the_ladder(k in any::<[u8; 32]>(), u in any::<[u8; 32]>()) {
            let ours = ChannelSecret::from_bytes(&k).unwrap().diffie_hellman(&ChannelPublicKey(u));
            let ladder = x25519_dalek::StaticSecret::from(k)
                .diffie_hellman(&x25519_dalek::PublicKey::from(u))
                .to_bytes();
            match ours {
                Some(ours) => prop_assert_eq!(*ours, ladder),
                None => prop_assert_eq!(ladder, [0u8; 32]),
            }
        }

        /// The ladder agrees on points that are on the curve (half of random inputs are not).
        #[test]
        fn x25519_matches_the_ladder_on_the_curve(k in any::<[u8; 32]>(), e in any::<[u8; 32]>()) {
            let u = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(e));
            let ours = ChannelSecret::from_bytes(&k).unwrap().diffie_hellman(&ChannelPublicKey(*u.as_bytes()));
            let ladder = x25519_dalek::StaticSecret::from(k).diffie_hellman(&u).to_bytes();
            prop_assert_eq!(*ours.unwrap(), ladder);
        }
    }
}
