//! ristretto255 with RFC 9497's encodings and hash functions for suite ristretto255-SHA512.

use core::fmt;
use curve25519_dalek::{RistrettoPoint, Scalar, ristretto::CompressedRistretto, traits::Identity};
use elliptic_curve::hash2curve::{ExpandMsg, ExpandMsgXmd, Expander};
use sha2::Sha512;

use keyward_crypto::DecodeError;

/// RFC 9497 `contextString` for mode VOPRF (0x01) and suite ristretto255-SHA512.
pub(crate) const CONTEXT: &[u8] = b"OPRFV1-\x01-ristretto255-SHA512";

/// `expand_message_xmd` (RFC 9380 §5.3.1) with SHA-512, 64 bytes, over the concatenation of
/// `msgs`, with the DST made of the concatenation of `dst`.
fn expand64(msgs: &[&[u8]], dst: &[&[u8]]) -> [u8; 64] {
    let mut out = [0u8; 64];
    // Fails only for an empty DST or an output over 255 blocks; both are constants here.
    ExpandMsgXmd::<Sha512>::expand_message(msgs, dst, 64)
        .expect("non-empty DST and 64-byte output are valid")
        .fill_bytes(&mut out);
    out
}

/// RFC 9497 `HashToGroup`: RFC 9380 `hash_to_ristretto255` with DST `"HashToGroup-" || contextString`.
pub(crate) fn hash_to_group(input: &[u8]) -> RistrettoPoint {
    RistrettoPoint::from_uniform_bytes(&expand64(&[input], &[b"HashToGroup-", CONTEXT]))
}

/// RFC 9497 `HashToScalar` with the given DST: 64 uniform bytes, little-endian, reduced mod ℓ.
pub(crate) fn hash_to_scalar_dst(msgs: &[&[u8]], dst: &[&[u8]]) -> Scalar {
    Scalar::from_bytes_mod_order_wide(&expand64(msgs, dst))
}

/// RFC 9497 `HashToScalar` with its default DST `"HashToScalar-" || contextString`.
pub(crate) fn hash_to_scalar(msgs: &[&[u8]]) -> Scalar {
    hash_to_scalar_dst(msgs, &[b"HashToScalar-", CONTEXT])
}

/// A ristretto255 group element other than the identity, the only kind RFC 9497 lets on the
/// wire. Encoded as its 32-byte canonical compression.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Element(pub(crate) RistrettoPoint);

impl Element {
    /// Length of the encoding.
    pub const LEN: usize = 32;

    /// RFC 9497 `DeserializeElement`: a canonical encoding of a point other than the identity.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a non-canonical encoding or the identity.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, DecodeError> {
        let point = CompressedRistretto(*bytes)
            .decompress()
            .ok_or(DecodeError::Invalid {
                field: "ristretto255 element",
                reason: "not a canonical encoding",
            })?;
        Self::new(point).ok_or(DecodeError::Invalid {
            field: "ristretto255 element",
            reason: "identity element",
        })
    }

    /// Wraps a point, refusing the identity.
    pub(crate) fn new(point: RistrettoPoint) -> Option<Self> {
        (point != RistrettoPoint::identity()).then_some(Self(point))
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.compress().to_bytes()
    }

    /// The point, for callers building on this crate (FROST verifying shares, for instance).
    pub fn point(&self) -> RistrettoPoint {
        self.0
    }
}

impl fmt::Debug for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Element({})",
            keyward_crypto::hex::to_0x(&self.to_bytes())
        )
    }
}

/// Decodes a canonical scalar (32 bytes, little-endian, below ℓ).
pub(crate) fn scalar_from_bytes(
    field: &'static str,
    bytes: &[u8; 32],
) -> Result<Scalar, DecodeError> {
    Option::from(Scalar::from_canonical_bytes(*bytes)).ok_or(DecodeError::Invalid {
        field,
        reason: "not a canonical scalar",
    })
}
