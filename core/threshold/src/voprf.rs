//! RFC 9497 VOPRF, mode 0x01, suite ristretto255-SHA512.
//!
//! The evaluator holds a [`SecretKey`] `k` and publishes `K = k·G`. A client blinds its input
//! ([`BlindedRequest::new`]), the evaluator evaluates the blinded element and proves with a DLEQ
//! [`Proof`] that it used the key behind `K` ([`SecretKey::blind_evaluate`]), and the client
//! checks the proof, unblinds and hashes ([`BlindedRequest::finalize`]) into a 64-byte
//! [`Output`]. [`SecretKey::evaluate`] computes the same output directly from the input.
//!
//! Guarantees (RFC 9497 §7): the output is a pseudorandom function of the input under `k`; an
//! output reveals neither `k` nor the output on any other input; a client that accepts a proof
//! knows the output is the one `K` determines; the evaluator learns nothing about a blinded input.

use core::fmt;
use curve25519_dalek::{RistrettoPoint, Scalar, constants::RISTRETTO_BASEPOINT_POINT as G};
use sha2::{Digest, Sha512};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{
    dleq::Proof,
    group::{CONTEXT, Element, hash_to_group, hash_to_scalar_dst, scalar_from_bytes},
};
use keyward_crypto::{DecodeError, SecretBytes, Writer};

/// Longest input RFC 9497 accepts (its length is encoded in two bytes).
pub const MAX_INPUT_LEN: usize = u16::MAX as usize;
/// Most elements one evaluation (and its one batched proof) covers.
pub const MAX_BATCH: usize = 1024;

/// Why a VOPRF operation failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum VoprfError {
    /// The input hashes to the identity element (RFC 9497 `InvalidInputError`; probability 2^-252).
    #[error("input hashes to the identity element")]
    InvalidInput,
    /// The input is longer than [`MAX_INPUT_LEN`].
    #[error("input is {len} bytes, at most {MAX_INPUT_LEN} allowed")]
    InputTooLong {
        /// The input's length.
        len: usize,
    },
    /// `DeriveKeyPair` found no nonzero scalar in 256 tries (RFC 9497 `DeriveKeyPairError`).
    #[error("key derivation failed")]
    DeriveKeyPair,
    /// The evaluator's proof does not verify: the evaluation was not made with the key it claims.
    #[error("evaluation proof does not verify")]
    BadProof,
    /// A batch with no elements or more than [`MAX_BATCH`].
    #[error("a batch holds 1 to {MAX_BATCH} elements, not {len}")]
    BadBatch {
        /// The batch's length.
        len: usize,
    },
}

/// A VOPRF secret key: a nonzero ristretto255 scalar.
///
/// Guarantees: zeroized on drop; no `Debug` output of the scalar; equality in constant time.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey(pub(crate) Scalar);

impl SecretKey {
    /// A uniformly random key.
    pub fn random(rng: &mut impl keyward_crypto::Rng) -> Self {
        loop {
            let s = Scalar::random(rng);
            if s != Scalar::ZERO {
                return Self(s);
            }
        }
    }

    /// RFC 9497 `DeriveKeyPair(seed, info)`.
    ///
    /// # Errors
    /// [`VoprfError::InputTooLong`] if `info` exceeds 65535 bytes; [`VoprfError::DeriveKeyPair`]
    /// in the RFC's (never observed) failure case.
    pub fn derive(seed: &SecretBytes<32>, info: &[u8]) -> Result<Self, VoprfError> {
        if info.len() > MAX_INPUT_LEN {
            return Err(VoprfError::InputTooLong { len: info.len() });
        }
        let mut derive_input = Writer::new();
        derive_input.raw(seed.expose()).var16(info);
        let mut derive_input = zeroize::Zeroizing::new(derive_input.finish());
        for counter in 0..=255u8 {
            let sk = hash_to_scalar_dst(&[&derive_input, &[counter]], &[b"DeriveKeyPair", CONTEXT]);
            if sk != Scalar::ZERO {
                derive_input.zeroize();
                return Ok(Self(sk));
            }
        }
        Err(VoprfError::DeriveKeyPair)
    }

    /// Decodes a canonical, nonzero scalar.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] otherwise.
    pub fn from_bytes(bytes: &SecretBytes<32>) -> Result<Self, DecodeError> {
        let s = scalar_from_bytes("secret scalar", bytes.expose())?;
        if s == Scalar::ZERO {
            return Err(DecodeError::Invalid {
                field: "secret scalar",
                reason: "zero",
            });
        }
        Ok(Self(s))
    }

    /// The 32-byte little-endian encoding, for sealing.
    pub fn to_bytes(&self) -> SecretBytes<32> {
        SecretBytes::new(self.0.to_bytes())
    }

    /// The public key `K = k·G`.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(Element::new(self.0 * G).expect("nonzero scalar times G is not the identity"))
    }

    /// RFC 9497 `BlindEvaluate` (batched): evaluates each blinded element and proves, with one
    /// DLEQ proof, that all were evaluated under this key.
    ///
    /// # Errors
    /// [`VoprfError::BadBatch`] for an empty batch or one larger than [`MAX_BATCH`].
    pub fn blind_evaluate(
        &self,
        blinded: &[Element],
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<(Vec<Element>, Proof), VoprfError> {
        if blinded.is_empty() || blinded.len() > MAX_BATCH {
            return Err(VoprfError::BadBatch { len: blinded.len() });
        }
        Ok(self.blind_evaluate_with_nonce(blinded, &Scalar::random(rng)))
    }

    pub(crate) fn blind_evaluate_with_nonce(
        &self,
        blinded: &[Element],
        r: &Scalar,
    ) -> (Vec<Element>, Proof) {
        let evaluated: Vec<Element> = blinded
            .iter()
            .map(|b| Element::new(self.0 * b.0).expect("nonzero scalar keeps a non-identity point"))
            .collect();
        let proof = Proof::generate(&self.0, &(self.0 * G), blinded, &evaluated, r);
        (evaluated, proof)
    }

    /// RFC 9497 `Evaluate`: the output on `input`, computed directly by the key holder. Equal to
    /// what a client obtains through blinding, evaluation and finalization.
    ///
    /// # Errors
    /// [`VoprfError::InputTooLong`] or [`VoprfError::InvalidInput`].
    pub fn evaluate(&self, input: &[u8]) -> Result<Output, VoprfError> {
        let point = Element::from_input(input)?;
        Ok(finalize_hash(input, &(self.0 * point.0)))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(redacted, public {})", self.public_key())
    }
}

impl PartialEq for SecretKey {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for SecretKey {}

/// A VOPRF public key `K = k·G`; shown as `0x`-hex of its encoding.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(pub(crate) Element);

impl PublicKey {
    /// Decodes a public key.
    ///
    /// # Errors
    /// As [`Element::from_bytes`].
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, DecodeError> {
        Element::from_bytes(bytes).map(Self)
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The key as a group element.
    pub fn element(&self) -> Element {
        self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&keyward_crypto::hex::to_0x(&self.to_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A client's blinded input, kept until the evaluation comes back.
///
/// Guarantees: the blind zeroizes on drop and never prints.
#[derive(ZeroizeOnDrop)]
pub struct BlindedRequest {
    #[zeroize(skip)]
    input: Vec<u8>,
    blind: Scalar,
    #[zeroize(skip)]
    blinded: Element,
}

impl BlindedRequest {
    /// RFC 9497 `Blind`: a fresh random blind `r` and the blinded element `r·HashToGroup(input)`.
    ///
    /// # Errors
    /// [`VoprfError::InputTooLong`] or [`VoprfError::InvalidInput`].
    pub fn new(input: &[u8], rng: &mut impl keyward_crypto::Rng) -> Result<Self, VoprfError> {
        let blind = loop {
            let r = Scalar::random(rng);
            if r != Scalar::ZERO {
                break r;
            }
        };
        Self::with_blind(input, blind)
    }

    pub(crate) fn with_blind(input: &[u8], blind: Scalar) -> Result<Self, VoprfError> {
        let point = Element::from_input(input)?;
        let blinded = Element::new(blind * point.0).ok_or(VoprfError::InvalidInput)?;
        Ok(Self {
            input: input.to_vec(),
            blind,
            blinded,
        })
    }

    /// The element to send to the evaluator(s).
    pub fn blinded(&self) -> Element {
        self.blinded
    }

    /// The input being evaluated.
    pub fn input(&self) -> &[u8] {
        &self.input
    }

    /// RFC 9497 `Finalize`: checks `proof` against `public_key`, unblinds and hashes.
    ///
    /// # Errors
    /// [`VoprfError::BadProof`] if the evaluation was not made with the key behind `public_key`.
    pub fn finalize(
        &self,
        public_key: &PublicKey,
        evaluated: &Element,
        proof: &Proof,
    ) -> Result<Output, VoprfError> {
        if !proof.verify(&public_key.0.0, &[self.blinded], &[*evaluated]) {
            return Err(VoprfError::BadProof);
        }
        Ok(self.unblind(evaluated))
    }

    /// Unblinds an evaluation whose correctness the caller has established (a verified proof, or
    /// verified partials combined by [`crate::Committee::combine`]).
    pub(crate) fn unblind(&self, evaluated: &Element) -> Output {
        finalize_hash(&self.input, &(self.blind.invert() * evaluated.0))
    }
}

impl fmt::Debug for BlindedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlindedRequest")
            .field("blinded", &self.blinded)
            .finish_non_exhaustive()
    }
}

/// A 64-byte VOPRF output. Secret: zeroized on drop, never printed, compared in constant time.
#[derive(Debug, PartialEq, Eq)]
pub struct Output(SecretBytes<64>);

impl Output {
    /// The output bytes.
    pub fn expose(&self) -> &[u8; 64] {
        self.0.expose()
    }
}

impl Element {
    /// RFC 9497 `HashToGroup(input)`: the element a public input is evaluated on. Evaluating it
    /// directly (no blind) and finalizing gives the same output as the blinded protocol; keyward
    /// does this when the input is public and the evaluator must see what it evaluates.
    ///
    /// # Errors
    /// [`VoprfError::InputTooLong`] or [`VoprfError::InvalidInput`].
    pub fn from_input(input: &[u8]) -> Result<Self, VoprfError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(VoprfError::InputTooLong { len: input.len() });
        }
        Element::new(hash_to_group(input)).ok_or(VoprfError::InvalidInput)
    }
}

/// `Hash(I2OSP(len(input), 2) || input || I2OSP(32, 2) || SerializeElement(N) || "Finalize")`.
pub(crate) fn finalize_hash(input: &[u8], unblinded: &RistrettoPoint) -> Output {
    let mut t = Writer::new();
    t.var16(input)
        .var16(unblinded.compress().as_bytes())
        .raw(b"Finalize");
    let digest: [u8; 64] = Sha512::digest(t.as_slice()).into();
    Output(SecretBytes::new(digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn blinded_protocol_equals_direct_evaluation() {
        let mut rng = StdRng::seed_from_u64(1);
        let sk = SecretKey::random(&mut rng);
        let req = BlindedRequest::new(b"cluster", &mut rng).unwrap();
        let (eval, proof) = sk.blind_evaluate(&[req.blinded()], &mut rng).unwrap();
        let out = req.finalize(&sk.public_key(), &eval[0], &proof).unwrap();
        assert_eq!(out, sk.evaluate(b"cluster").unwrap());
        assert_ne!(out, sk.evaluate(b"cluster2").unwrap());
    }

    #[test]
    fn proof_under_another_key_is_refused() {
        let mut rng = StdRng::seed_from_u64(2);
        let sk = SecretKey::random(&mut rng);
        let other = SecretKey::random(&mut rng);
        let req = BlindedRequest::new(b"x", &mut rng).unwrap();
        let (eval, proof) = other.blind_evaluate(&[req.blinded()], &mut rng).unwrap();
        assert_eq!(
            req.finalize(&sk.public_key(), &eval[0], &proof),
            Err(VoprfError::BadProof)
        );
    }

    #[test]
    fn batch_limits_are_errors_not_panics() {
        let mut rng = StdRng::seed_from_u64(4);
        let sk = SecretKey::random(&mut rng);
        assert_eq!(
            sk.blind_evaluate(&[], &mut rng).unwrap_err(),
            VoprfError::BadBatch { len: 0 }
        );
        let e = sk.public_key().element();
        assert_eq!(
            sk.blind_evaluate(&vec![e; MAX_BATCH + 1], &mut rng)
                .unwrap_err(),
            VoprfError::BadBatch { len: MAX_BATCH + 1 }
        );
        assert_eq!(
            SecretKey::derive(&SecretBytes::new([0; 32]), &vec![0; MAX_INPUT_LEN + 1]).unwrap_err(),
            VoprfError::InputTooLong {
                len: MAX_INPUT_LEN + 1
            }
        );
        assert!(matches!(
            Element::from_input(&vec![0; MAX_INPUT_LEN + 1]),
            Err(VoprfError::InputTooLong { .. })
        ));
    }

    #[test]
    fn secrets_do_not_print() {
        let sk = SecretKey::random(&mut StdRng::seed_from_u64(3));
        let hex = hex::encode(sk.0.as_bytes());
        assert!(!format!("{sk:?}").contains(&hex[..12]));
        let out = sk.evaluate(b"a").unwrap();
        assert!(!format!("{out:?}").contains(&hex::encode(&out.expose()[..6])));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn tampered_evaluation_or_proof_is_refused(seed in any::<u64>(), byte in 0usize..96, bit in 0u8..8) {
            let mut rng = StdRng::seed_from_u64(seed);
            let sk = SecretKey::random(&mut rng);
            let req = BlindedRequest::new(b"input", &mut rng).unwrap();
            let (eval, proof) = sk.blind_evaluate(&[req.blinded()], &mut rng).unwrap();
            let mut bytes = [eval[0].to_bytes().as_slice(), proof.to_bytes().as_slice()].concat();
            bytes[byte] ^= 1 << bit;
            let eval = Element::from_bytes(bytes[..32].try_into().unwrap());
            let proof = Proof::from_bytes(bytes[32..].try_into().unwrap());
            if let (Ok(e), Ok(p)) = (eval, proof) {
                prop_assert_eq!(req.finalize(&sk.public_key(), &e, &p), Err(VoprfError::BadProof));
            }
        }

        #[test]
        fn element_and_proof_decoders_never_panic(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let _ = Element::from_bytes(&a);
            let _ = PublicKey::from_bytes(&a);
            let _ = SecretKey::from_bytes(&SecretBytes::new(a));
            let _ = Proof::from_bytes(&[a, b].concat().try_into().unwrap());
        }

        #[test]
        fn element_round_trip(seed in any::<u64>()) {
            let e = SecretKey::random(&mut StdRng::seed_from_u64(seed)).public_key().element();
            prop_assert_eq!(Element::from_bytes(&e.to_bytes()).unwrap(), e);
        }
    }
}
