//! RFC 9497 §2.2 discrete-log-equality proofs (batched, with composites).
//!
//! A proof shows that `B = k·A` and `D[i] = k·C[i]` for every `i`, for one secret `k`, without
//! revealing `k`. keyward uses `A = G`, `B` = the evaluator's public key (or verification share),
//! `C` = blinded elements and `D` = evaluated elements.

use curve25519_dalek::{
    RistrettoPoint, Scalar,
    constants::RISTRETTO_BASEPOINT_POINT as G,
    traits::{Identity, VartimeMultiscalarMul},
};
use subtle::ConstantTimeEq;

use crate::group::{CONTEXT, Element, hash_to_scalar, scalar_from_bytes};
use keyward_crypto::{DecodeError, Writer};

/// A DLEQ proof `(c, s)`, encoded as `c || s`, each a 32-byte little-endian canonical scalar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Proof {
    c: Scalar,
    s: Scalar,
}

impl core::fmt::Debug for Proof {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Proof({})", keyward_crypto::hex::to_0x(&self.to_bytes()))
    }
}

impl Proof {
    /// Length of the encoding.
    pub const LEN: usize = 64;

    /// The 64-byte encoding `c || s`.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(self.c.as_bytes());
        out[32..].copy_from_slice(self.s.as_bytes());
        out
    }

    /// Decodes `c || s`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if either half is not a canonical scalar.
    pub fn from_bytes(bytes: &[u8; 64]) -> Result<Self, DecodeError> {
        let (c, s) = bytes.split_at(32);
        Ok(Self {
            c: scalar_from_bytes("proof challenge", c.try_into().expect("32 bytes"))?,
            s: scalar_from_bytes("proof response", s.try_into().expect("32 bytes"))?,
        })
    }

    /// RFC 9497 `GenerateProof(k, A, B, C, D)` with the proof nonce `r` (which must be uniformly
    /// random and used once). `A = G` for every keyward use.
    pub(crate) fn generate(
        k: &Scalar,
        b: &RistrettoPoint,
        c: &[Element],
        d: &[Element],
        r: &Scalar,
    ) -> Self {
        let m = composite_m(b, c, d);
        let z = k * m;
        let t2 = r * G;
        let t3 = r * m;
        let challenge = challenge(b, &m, &z, &t2, &t3);
        Self {
            c: challenge,
            s: r - challenge * k,
        }
    }

    /// RFC 9497 `VerifyProof(A = G, B, C, D, proof)`.
    pub(crate) fn verify(&self, b: &RistrettoPoint, c: &[Element], d: &[Element]) -> bool {
        if c.len() != d.len() || c.is_empty() || c.len() > crate::voprf::MAX_BATCH {
            return false;
        }
        // Everything here is public, so variable-time arithmetic leaks nothing (and saves two
        // thirds of a worker's proof-checking time).
        let (m, z) = composites(b, c, d);
        let t2 = RistrettoPoint::vartime_double_scalar_mul_basepoint(&self.c, b, &self.s);
        let t3 = RistrettoPoint::vartime_multiscalar_mul([self.s, self.c], [m, z]);
        challenge(b, &m, &z, &t2, &t3).ct_eq(&self.c).into()
    }
}

/// The composite seed and weights of RFC 9497 `ComputeComposites`.
fn composite_weights(b: &RistrettoPoint, c: &[Element], d: &[Element]) -> Vec<Scalar> {
    use sha2::Digest;
    let seed_dst = [b"Seed-".as_slice(), CONTEXT].concat();
    let mut t = Writer::new();
    t.var16(b.compress().as_bytes()).var16(&seed_dst);
    let seed = sha2::Sha512::digest(t.as_slice());
    c.iter()
        .zip(d)
        .enumerate()
        .map(|(i, (ci, di))| {
            let mut t = Writer::new();
            // Batches are bounded far below 2^16 by every caller (one request holds few elements).
            t.var16(&seed)
                .u16(u16::try_from(i).expect("batch below 2^16"))
                .var16(&ci.to_bytes())
                .var16(&di.to_bytes());
            t.raw(b"Composite");
            hash_to_scalar(&[t.as_slice()])
        })
        .collect()
}

fn composite_m(b: &RistrettoPoint, c: &[Element], d: &[Element]) -> RistrettoPoint {
    composite_weights(b, c, d)
        .iter()
        .zip(c)
        .fold(RistrettoPoint::identity(), |m, (w, ci)| m + w * ci.0)
}

/// RFC 9497 `ComputeComposites` (the verifier's, over public elements only: variable time).
fn composites(
    b: &RistrettoPoint,
    c: &[Element],
    d: &[Element],
) -> (RistrettoPoint, RistrettoPoint) {
    let w = composite_weights(b, c, d);
    let m = RistrettoPoint::vartime_multiscalar_mul(&w, c.iter().map(|e| e.0));
    let z = RistrettoPoint::vartime_multiscalar_mul(&w, d.iter().map(|e| e.0));
    (m, z)
}

fn challenge(
    b: &RistrettoPoint,
    m: &RistrettoPoint,
    z: &RistrettoPoint,
    t2: &RistrettoPoint,
    t3: &RistrettoPoint,
) -> Scalar {
    let mut t = Writer::new();
    for p in [b, m, z, t2, t3] {
        t.var16(p.compress().as_bytes());
    }
    t.raw(b"Challenge");
    hash_to_scalar(&[t.as_slice()])
}
