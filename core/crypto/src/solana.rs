//! ed25519 keys in Solana's formats: the keypair file and base58 text.
//!
//! A Solana keypair file is a JSON array of 64 integers in `0..=255`: the 32-byte secret seed
//! followed by the 32-byte public key. [`SolanaKeypair::from_keypair_file`] accepts exactly that
//! (with any JSON whitespace), checks that the public half belongs to the secret half, and never
//! copies the secret into a growable buffer. Public keys and signatures are shown in base58.

use core::{fmt, str::FromStr};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::secret::SecretBytes;

/// Largest keypair file accepted: 64 three-digit numbers with generous whitespace.
pub const MAX_KEYPAIR_FILE_LEN: usize = 4096;

/// Why a keypair file was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum KeypairFileError {
    /// The file is larger than [`MAX_KEYPAIR_FILE_LEN`].
    #[error("keypair file is too large ({len} bytes, at most {MAX_KEYPAIR_FILE_LEN})")]
    TooLarge {
        /// The file's length.
        len: usize,
    },
    /// The text is not a JSON array of integers in `0..=255`.
    #[error("keypair file is not a JSON array of 64 numbers in 0..=255 (problem at byte {offset})")]
    Syntax {
        /// Byte offset of the first problem.
        offset: usize,
    },
    /// The array does not hold exactly 64 numbers.
    #[error("keypair file holds {count} numbers, expected 64")]
    WrongLength {
        /// How many numbers it holds.
        count: usize,
    },
    /// The last 32 bytes are not the public key of the first 32.
    #[error("keypair file's public key does not match its secret key")]
    PublicKeyMismatch,
}

/// Why a base58 public key or signature was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum Base58Error {
    /// Not base58, or the wrong number of bytes.
    #[error("expected base58 text of {expected} bytes")]
    Malformed {
        /// The expected decoded length.
        expected: usize,
    },
    /// 32 bytes that are not an ed25519 point.
    #[error("not a valid ed25519 public key")]
    NotAPoint,
}

/// An ed25519 keypair (a Solana identity or vote key).
///
/// Guarantees: the secret zeroizes on drop (ed25519-dalek's `SigningKey` with `zeroize`); `Debug`
/// shows only the public key; signing is deterministic (RFC 8032).
pub struct SolanaKeypair {
    signing: SigningKey,
}

impl SolanaKeypair {
    /// A fresh keypair from `rng`.
    pub fn generate(rng: &mut impl crate::Rng) -> Self {
        Self::from_seed(&SecretBytes::random(rng))
    }

    /// The keypair of a 32-byte secret seed.
    pub fn from_seed(seed: &SecretBytes<32>) -> Self {
        Self {
            signing: SigningKey::from_bytes(seed.expose()),
        }
    }

    /// Parses Solana's keypair-file text.
    ///
    /// # Errors
    /// A [`KeypairFileError`] naming the problem; nothing is retained from refused input.
    pub fn from_keypair_file(text: &str) -> Result<Self, KeypairFileError> {
        if text.len() > MAX_KEYPAIR_FILE_LEN {
            return Err(KeypairFileError::TooLarge { len: text.len() });
        }
        let bytes = parse_byte_array(text)?;
        let seed = SecretBytes::<32>::from_slice(&bytes[..32]).expect("32 of 64 bytes");
        let keypair = Self::from_seed(&seed);
        if keypair.pubkey().0 != bytes[32..] {
            return Err(KeypairFileError::PublicKeyMismatch);
        }
        Ok(keypair)
    }

    /// The keypair-file text: `[s0,s1,…,s31,p0,…,p31]`, as Solana's CLI writes it.
    pub fn to_keypair_file(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new([0u8; 64]);
        bytes[..32].copy_from_slice(self.signing.as_bytes());
        bytes[32..].copy_from_slice(self.signing.verifying_key().as_bytes());
        let mut out = Zeroizing::new(String::with_capacity(64 * 4 + 2));
        out.push('[');
        for (i, b) in bytes.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // At most 3 digits + 1 comma per byte: within the capacity reserved above, so the
            // string never reallocates and leaves no unzeroized copy behind.
            let mut digits = [0u8; 3];
            let mut n = *b;
            let mut len = 0;
            loop {
                digits[len] = b'0' + n % 10;
                len += 1;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            for d in digits[..len].iter().rev() {
                out.push(char::from(*d));
            }
            digits.fill(0);
        }
        out.push(']');
        out
    }

    /// The public key.
    pub fn pubkey(&self) -> SolanaPubkey {
        SolanaPubkey(self.signing.verifying_key().to_bytes())
    }

    /// The 32-byte secret seed, for sealing.
    pub fn seed(&self) -> SecretBytes<32> {
        SecretBytes::new(self.signing.to_bytes())
    }

    /// Signs `message` (RFC 8032 Ed25519, deterministic).
    pub fn sign(&self, message: &[u8]) -> SolanaSignature {
        SolanaSignature(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for SolanaKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SolanaKeypair")
            .field("pubkey", &self.pubkey())
            .finish_non_exhaustive()
    }
}

/// Parses `[n0, n1, …, n63]` into 64 bytes without ever holding the secret in a growable buffer.
fn parse_byte_array(text: &str) -> Result<Zeroizing<[u8; 64]>, KeypairFileError> {
    let bytes = text.as_bytes();
    let mut out = Zeroizing::new([0u8; 64]);
    let mut count = 0usize;
    let mut i = 0usize;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && matches!(bytes[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    if bytes.get(i) != Some(&b'[') {
        return Err(KeypairFileError::Syntax { offset: i });
    }
    i += 1;
    skip_ws(&mut i);
    if bytes.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            skip_ws(&mut i);
            let start = i;
            let mut value: u16 = 0;
            while let Some(d @ b'0'..=b'9') = bytes.get(i) {
                value = value * 10 + u16::from(d - b'0');
                i += 1;
                // A leading zero is not JSON, and no byte has more than three digits.
                if value > 255 || (i - start > 1 && bytes[start] == b'0') {
                    return Err(KeypairFileError::Syntax { offset: start });
                }
            }
            if i == start {
                return Err(KeypairFileError::Syntax { offset: i });
            }
            if count < 64 {
                out[count] = value as u8; // value <= 255 checked above
            }
            count += 1;
            skip_ws(&mut i);
            match bytes.get(i) {
                Some(b',') => i += 1,
                Some(b']') => {
                    i += 1;
                    break;
                }
                _ => return Err(KeypairFileError::Syntax { offset: i }),
            }
        }
    }
    skip_ws(&mut i);
    if i != bytes.len() {
        return Err(KeypairFileError::Syntax { offset: i });
    }
    if count != 64 {
        return Err(KeypairFileError::WrongLength { count });
    }
    Ok(out)
}

/// Whether `bytes` is the one encoding of the point it decodes to (RFC 8032 §5.1.3): the
/// y-coordinate below p = 2^255 - 19, and no sign bit on a point whose x is 0 (y = ±1).
fn is_canonical_point_encoding(bytes: &[u8; 32]) -> bool {
    const P_LOW: u8 = 0xed;
    let y_at_least_p =
        bytes[31] & 0x7f == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= P_LOW;
    let sign = bytes[31] & 0x80 != 0;
    let mut y = *bytes;
    y[31] &= 0x7f;
    let one = {
        let mut b = [0u8; 32];
        b[0] = 1;
        b
    };
    let minus_one = {
        let mut b = [0xff; 32];
        b[0] = P_LOW - 1;
        b[31] = 0x7f;
        b
    };
    !y_at_least_p && !(sign && (y == one || y == minus_one))
}

/// The y-coordinates (sign bit clear) of the eight points of small order: 1 (the identity),
/// p - 1 (order 2), 0 (order 4, both signs of x) and two of order 8 (both signs each). With
/// [`is_canonical_point_encoding`], a point's encoding is one of these exactly when the point
/// has small order (checked against curve25519-dalek in the tests).
const SMALL_ORDER_Y: [[u8; 32]; 5] = [
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [0; 32],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
];

/// Whether a canonical encoding is that of a point of small order (a byte comparison, no
/// decoding).
fn is_small_order_encoding(bytes: &[u8; 32]) -> bool {
    let mut y = *bytes;
    y[31] &= 0x7f;
    SMALL_ORDER_Y.contains(&y)
}

/// An ed25519 public key, shown in base58 as Solana does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SolanaPubkey(pub [u8; 32]);

impl SolanaPubkey {
    /// Verifies an Ed25519 signature by this key (strict verification: no malleable or
    /// small-order encodings).
    ///
    /// # Errors
    /// [`crate::SignatureError`] if the key is not a point or the signature does not verify.
    pub fn verify(
        &self,
        message: &[u8],
        signature: &SolanaSignature,
    ) -> Result<(), crate::SignatureError> {
        self.verifier()?.verify(message, signature)
    }

    /// The key decoded for verification: decoding costs about a fifth of a verification, so
    /// callers that verify many signatures by one key keep this instead.
    ///
    /// # Errors
    /// [`crate::SignatureError`] if the bytes are not a point.
    pub fn verifier(&self) -> Result<SolanaVerifier, crate::SignatureError> {
        VerifyingKey::from_bytes(&self.0)
            .map(SolanaVerifier)
            .map_err(|_| crate::SignatureError)
    }
}

/// A decoded Ed25519 public key; see [`SolanaPubkey::verifier`].
#[derive(Clone, Copy, Debug)]
pub struct SolanaVerifier(VerifyingKey);

impl SolanaVerifier {
    /// Verifies `signature` over `message`: RFC 8032 with a canonical R and s, and neither the
    /// key nor R of small order (no malleable or small-order encodings).
    ///
    /// # Errors
    /// [`crate::SignatureError`] if it does not verify.
    pub fn verify(
        &self,
        message: &[u8],
        signature: &SolanaSignature,
    ) -> Result<(), crate::SignatureError> {
        // `verify_strict` is RFC 8032's cofactorless check with a canonical `s`, refuses a
        // small-order key or R, and compares the recomputed R with the signature's R as bytes,
        // which already refuses a non-canonical R. The byte check here says so independently of
        // the dependency's version (defence in depth); it costs a comparison, not a decoding.
        if !is_canonical_point_encoding(signature.0[..32].try_into().expect("64-byte signature")) {
            return Err(crate::SignatureError);
        }
        let sig = ed25519_dalek::Signature::from_bytes(&signature.0);
        self.0
            .verify_strict(message, &sig)
            .map_err(|_| crate::SignatureError)
    }
}

/// Decoded keys of the signers a service has verified, shared across threads. Holds at most
/// [`VerifierCache::CAPACITY`] keys (about 20 MB) and empties itself when full, so anyone who
/// signs with many fresh keys can cost the service decodings (CPU), never memory beyond that
/// bound, and never a different verdict.
#[derive(Default)]
pub struct VerifierCache {
    keys: std::sync::RwLock<std::collections::HashMap<[u8; 32], SolanaVerifier>>,
}

impl VerifierCache {
    /// Most keys held at once.
    pub const CAPACITY: usize = 1 << 16;

    /// Verifies `signature` by `key` over `message`, as [`SolanaPubkey::verify`] does.
    ///
    /// # Errors
    /// [`crate::SignatureError`] if the key is not a point or the signature does not verify.
    pub fn verify(
        &self,
        key: &SolanaPubkey,
        message: &[u8],
        signature: &SolanaSignature,
    ) -> Result<(), crate::SignatureError> {
        let cached = self
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key.0)
            .copied();
        let verifier = match cached {
            Some(verifier) => verifier,
            None => {
                let verifier = key.verifier()?;
                // Only a key whose signature verifies is kept.
                verifier.verify(message, signature)?;
                let mut keys = self
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if keys.len() >= Self::CAPACITY {
                    keys.clear();
                }
                keys.insert(key.0, verifier);
                return Ok(());
            }
        };
        verifier.verify(message, signature)
    }

    /// Verifies many signatures at once, each as [`VerifierCache::verify`] would, and returns
    /// each one's verdict in order. A batch that holds together is checked with one
    /// multi-scalar multiplication (ed25519-dalek's deterministic batch equation, about half the
    /// cost of checking each); if it does not, each signature is checked on its own, so one bad
    /// signature costs its batch a second pass but changes no other verdict.
    ///
    /// **What differs from one-by-one checks:** the batch equation is a random combination of
    /// the single ones, and accepts a signature whose single check fails only if its residue is
    /// of small order. Making such a signature takes the key's private scalar (it is how an
    /// honest signer would place a torsion component in R); nobody else can, so a signature the
    /// batch accepts was still made by the key's holder. Small-order keys and R, non-canonical R
    /// and s are refused before the batch, as [`SolanaVerifier::verify`] refuses them.
    pub fn verify_batch(
        &self,
        items: &[(SolanaPubkey, &[u8], SolanaSignature)],
    ) -> Vec<Result<(), crate::SignatureError>> {
        if items.len() < 2 {
            return items
                .iter()
                .map(|(key, message, signature)| self.verify(key, message, signature))
                .collect();
        }
        let known: Vec<Option<SolanaVerifier>> = {
            let keys = self
                .keys
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            items
                .iter()
                .map(|(key, ..)| keys.get(&key.0).copied())
                .collect()
        };
        // What the batch cannot refuse on its own is refused here; the rest go to the batch.
        let mut verdicts: Vec<Result<(), crate::SignatureError>> = Vec::with_capacity(items.len());
        let mut batch: Vec<(usize, VerifyingKey)> = Vec::with_capacity(items.len());
        for (i, ((key, _, signature), cached)) in items.iter().zip(known).enumerate() {
            let r: &[u8; 32] = signature.0[..32].try_into().expect("64-byte signature");
            let s: [u8; 32] = signature.0[32..].try_into().expect("64-byte signature");
            // A non-canonical s would fail the whole batch (ed25519-dalek refuses it there) and
            // send every other signature through the one-by-one pass.
            let canonical_s =
                bool::from(curve25519_dalek::Scalar::from_canonical_bytes(s).is_some());
            let verifier = match cached {
                Some(v) => Some(v),
                None => key.verifier().ok().filter(|v| !v.0.is_weak()),
            };
            match verifier {
                Some(v)
                    if canonical_s
                        && is_canonical_point_encoding(r)
                        && !is_small_order_encoding(r) =>
                {
                    batch.push((i, v.0));
                    verdicts.push(Ok(()));
                }
                _ => verdicts.push(Err(crate::SignatureError)),
            }
        }
        let messages: Vec<&[u8]> = batch.iter().map(|(i, _)| items[*i].1).collect();
        let signatures: Vec<ed25519_dalek::Signature> = batch
            .iter()
            .map(|(i, _)| ed25519_dalek::Signature::from_bytes(&items[*i].2.0))
            .collect();
        let keys: Vec<VerifyingKey> = batch.iter().map(|(_, k)| *k).collect();
        if ed25519_dalek::verify_batch(&messages, &signatures, &keys).is_err() {
            for (i, _) in &batch {
                let (key, message, signature) = &items[*i];
                verdicts[*i] = self.verify(key, message, signature);
            }
        } else {
            let mut cache = self
                .keys
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (i, key) in &batch {
                if !cache.contains_key(&items[*i].0.0) {
                    if cache.len() >= Self::CAPACITY {
                        cache.clear();
                    }
                    cache.insert(items[*i].0.0, SolanaVerifier(*key));
                }
            }
        }
        verdicts
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for VerifierCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierCache")
            .field("keys", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::is_canonical_point_encoding;
    use curve25519_dalek::edwards::CompressedEdwardsY;

    /// The reference: decode, re-encode, compare.
    fn reencodes(bytes: &[u8; 32]) -> Option<bool> {
        CompressedEdwardsY(*bytes)
            .decompress()
            .map(|point| point.compress().0 == *bytes)
    }

    fn with_y_and_sign(y_low: u8, high_ff: bool, sign: bool) -> [u8; 32] {
        let mut b = if high_ff { [0xff; 32] } else { [0; 32] };
        b[0] = y_low;
        b[31] = if high_ff { 0x7f } else { 0 } | if sign { 0x80 } else { 0 };
        b
    }

    #[test]
    fn agrees_with_decompress_and_compress_on_every_edge_encoding() {
        // y in 0..=255 and p-237..=2^255-1 (every y >= p among them), both sign bits.
        let mut decodable = 0;
        for y_low in 0..=255u8 {
            for high_ff in [false, true] {
                for sign in [false, true] {
                    let bytes = with_y_and_sign(y_low, high_ff, sign);
                    if let Some(canonical) = reencodes(&bytes) {
                        decodable += 1;
                        assert_eq!(
                            is_canonical_point_encoding(&bytes),
                            canonical,
                            "{bytes:02x?}"
                        );
                    }
                }
            }
        }
        assert!(decodable > 100, "the sweep must reach decodable points");
    }

    #[test]
    fn agrees_with_decompress_and_compress_on_random_points() {
        for _ in 0..2_000 {
            let bytes: [u8; 32] = rand::random();
            if let Some(canonical) = reencodes(&bytes) {
                assert_eq!(is_canonical_point_encoding(&bytes), canonical);
            }
        }
    }
}

impl fmt::Display for SolanaPubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; five8::BASE58_ENCODED_32_MAX_LEN];
        let len = five8::encode_32(&self.0, &mut out);
        write_base58(f, &out, len)
    }
}

fn write_base58(f: &mut fmt::Formatter<'_>, out: &[u8], len: u8) -> fmt::Result {
    f.write_str(std::str::from_utf8(&out[..usize::from(len)]).expect("base58 is ASCII"))
}

impl fmt::Debug for SolanaPubkey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SolanaPubkey({self})")
    }
}

impl SolanaPubkey {
    /// Parses any 32-byte base58 address, on the curve or not (program-derived addresses and
    /// program ids are not points). Use `FromStr` for keys that must verify signatures.
    ///
    /// # Errors
    /// [`Base58Error::Malformed`] unless `s` is 32 bytes of base58.
    pub fn parse_address(s: &str) -> Result<Self, Base58Error> {
        decode_base58_32(s).map(Self)
    }
}

impl FromStr for SolanaPubkey {
    type Err = Base58Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode_base58_32(s)?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| Base58Error::NotAPoint)?;
        Ok(Self(bytes))
    }
}

/// An Ed25519 signature, shown in base58 as Solana does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SolanaSignature(pub [u8; 64]);

impl fmt::Display for SolanaSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = [0u8; five8::BASE58_ENCODED_64_MAX_LEN];
        let len = five8::encode_64(&self.0, &mut out);
        write_base58(f, &out, len)
    }
}

impl fmt::Debug for SolanaSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SolanaSignature({self})")
    }
}

impl FromStr for SolanaSignature {
    type Err = Base58Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 64];
        five8::decode_64(s, &mut out).map_err(|_| Base58Error::Malformed { expected: 64 })?;
        Ok(Self(out))
    }
}

fn decode_base58_32(s: &str) -> Result<[u8; 32], Base58Error> {
    let mut out = [0u8; 32];
    five8::decode_32(s, &mut out).map_err(|_| Base58Error::Malformed { expected: 32 })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn keypair_file_round_trips_and_matches_solana_layout() {
        let kp = SolanaKeypair::generate(&mut StdRng::seed_from_u64(7));
        let text = kp.to_keypair_file();
        let parsed: Vec<u8> = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.len(), 64);
        assert_eq!(&parsed[32..], &kp.pubkey().0);
        let back = SolanaKeypair::from_keypair_file(&text).unwrap();
        assert_eq!(back.pubkey(), kp.pubkey());
        assert_eq!(back.sign(b"m"), kp.sign(b"m"));
        assert!(!format!("{kp:?}").contains(&text[1..10]));
    }

    const SEED: [u8; 32] = [0x5a; 32];
    const MESSAGE: &[u8] = b"vote";

    /// Signatures over [`MESSAGE`] that strict verification refuses, by the key of [`SEED`]
    /// unless the form needs another key; each but the non-point key satisfies the cofactorless
    /// equation or is a re-encoding of one that does.
    fn refused_forms() -> Vec<(&'static str, SolanaPubkey, SolanaSignature)> {
        use curve25519_dalek::{EdwardsPoint, Scalar};
        use sha2::{Digest, Sha512};
        let kp = SolanaKeypair::from_seed(&SecretBytes::new(SEED));
        let good = kp.sign(MESSAGE);
        let mut forms = Vec::new();

        // s + ℓ: the same equation holds, but s is not below ℓ.
        const ELL: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut malleated = good;
        let mut carry = 0u16;
        for (byte, l) in malleated.0[32..].iter_mut().zip(ELL) {
            let sum = u16::from(*byte) + u16::from(l) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        assert_eq!(carry, 0);
        forms.push(("s + ℓ", kp.pubkey(), malleated));

        // A small-order key (the identity point): [s]B = R + [k]A holds for R = [s]B.
        let s_any = Scalar::from(7u64);
        let mut forged = [0u8; 64];
        forged[..32].copy_from_slice(&EdwardsPoint::mul_base(&s_any).compress().0);
        forged[32..].copy_from_slice(&s_any.to_bytes());
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        forms.push((
            "small-order key",
            SolanaPubkey(identity_point),
            SolanaSignature(forged),
        ));

        // A small-order R (the identity) on a real key: s = k·a satisfies the equation.
        let a = ed25519_dalek::SigningKey::from_bytes(&SEED).to_scalar();
        let challenge = |r: &[u8; 32]| {
            let mut h = Sha512::new();
            h.update(r);
            h.update(kp.pubkey().0);
            h.update(MESSAGE);
            Scalar::from_hash(h)
        };
        let mut small_r = [0u8; 64];
        small_r[..32].copy_from_slice(&identity_point);
        small_r[32..].copy_from_slice(&(challenge(&identity_point) * a).to_bytes());
        forms.push(("small-order R", kp.pubkey(), SolanaSignature(small_r)));

        // The same R non-canonically encoded (sign bit set on x = 0).
        let mut non_canonical = identity_point;
        non_canonical[31] |= 0x80;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&non_canonical);
        sig[32..].copy_from_slice(&(challenge(&non_canonical) * a).to_bytes());
        forms.push(("non-canonical R", kp.pubkey(), SolanaSignature(sig)));

        // A key that is not a point (y = 2 has no x).
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        forms.push(("key not a point", SolanaPubkey(not_a_point), good));
        forms
    }

    #[test]
    fn strict_verification_refuses_malleable_forms() {
        use ed25519_dalek::Verifier as _;
        let kp = SolanaKeypair::from_seed(&SecretBytes::new(SEED));
        let verdicts = |key: &SolanaPubkey, sig: &SolanaSignature| {
            let cache = VerifierCache::default();
            [
                key.verify(MESSAGE, sig).is_ok(),
                cache.verify(key, MESSAGE, sig).is_ok(),
                cache.verify(key, MESSAGE, sig).is_ok(), // now from the cache, if it was kept
            ]
        };
        assert_eq!(verdicts(&kp.pubkey(), &kp.sign(MESSAGE)), [true; 3]);
        for (name, key, sig) in refused_forms() {
            if matches!(name, "small-order key" | "small-order R") {
                let lax = ed25519_dalek::VerifyingKey::from_bytes(&key.0)
                    .unwrap()
                    .verify(MESSAGE, &ed25519_dalek::Signature::from_bytes(&sig.0));
                assert!(lax.is_ok(), "{name}: the forgery satisfies the equation");
            }
            assert_eq!(verdicts(&key, &sig), [false; 3], "{name}");
        }
    }

    #[test]
    fn small_order_encodings_are_exactly_the_eight_torsion_points() {
        use curve25519_dalek::Scalar;
        use curve25519_dalek::edwards::CompressedEdwardsY;
        use sha2::{Digest, Sha256};
        // The torsion part of random points: Q - [8]([8⁻¹ mod ℓ]Q).
        let eighth = Scalar::from(8u64).invert();
        let mut torsion = std::collections::BTreeSet::new();
        for i in 0u32..400 {
            let bytes: [u8; 32] = Sha256::digest(i.to_be_bytes()).into();
            if let Some(q) = CompressedEdwardsY(bytes).decompress() {
                torsion.insert((q - (q * eighth).mul_by_cofactor()).compress().0);
            }
        }
        assert_eq!(torsion.len(), 8, "all eight found");
        for t in &torsion {
            assert!(is_canonical_point_encoding(t) && is_small_order_encoding(t));
        }
        // And no canonical encoding outside them is of small order: each listed y with either
        // sign is one of the eight, or not canonical.
        for y in SMALL_ORDER_Y {
            for sign in [0, 0x80] {
                let mut e = y;
                e[31] |= sign;
                assert_eq!(
                    torsion.contains(&e),
                    is_canonical_point_encoding(&e),
                    "{e:02x?}"
                );
            }
        }
        let kp = SolanaKeypair::from_seed(&SecretBytes::new(SEED));
        assert!(!is_small_order_encoding(&kp.pubkey().0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// The batch gives each signature the verdict a one-by-one check gives it, whatever the
        /// mix: good ones, wrong messages, other keys, and every refused form.
        #[test]
        fn batch_verdicts_match_single_ones(picks in prop::collection::vec(0usize..12, 0..24)) {
            let keys: Vec<SolanaKeypair> =
                (0u8..3).map(|i| SolanaKeypair::from_seed(&SecretBytes::new([i; 32]))).collect();
            let refused = refused_forms();
            let items: Vec<(SolanaPubkey, &[u8], SolanaSignature)> = picks
                .iter()
                .map(|&p| match p {
                    0..=3 => (keys[p % 3].pubkey(), MESSAGE, keys[p % 3].sign(MESSAGE)),
                    4..=5 => (keys[0].pubkey(), b"other".as_slice(), keys[0].sign(MESSAGE)),
                    6 => (keys[1].pubkey(), MESSAGE, keys[2].sign(MESSAGE)),
                    _ => {
                        let (_, key, sig) = refused[p - 7];
                        (key, MESSAGE, sig)
                    }
                })
                .collect();
            let single = VerifierCache::default();
            let expected: Vec<bool> = items
                .iter()
                .map(|(k, m, s)| single.verify(k, m, s).is_ok())
                .collect();
            let cache = VerifierCache::default();
            for _ in 0..2 {
                // The second pass runs with the keys the first one kept.
                let got: Vec<bool> =
                    cache.verify_batch(&items).iter().map(Result::is_ok).collect();
                prop_assert_eq!(&got, &expected);
            }
        }
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1 TEST 1 (empty message).
        let seed = crate::hex::from_hex::<32>(
            "seed",
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        )
        .unwrap();
        let kp = SolanaKeypair::from_seed(&SecretBytes::new(seed));
        assert_eq!(
            hex::encode(kp.pubkey().0),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        let sig = kp.sign(b"");
        assert_eq!(
            hex::encode(sig.0),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
        assert!(kp.pubkey().verify(b"", &sig).is_ok());
        assert!(kp.pubkey().verify(b"x", &sig).is_err());
    }

    #[test]
    fn malformed_files_get_precise_errors() {
        let kp = SolanaKeypair::generate(&mut StdRng::seed_from_u64(8));
        let good = kp.to_keypair_file();
        let mut numbers: Vec<u8> = serde_json::from_str(&good).unwrap();
        numbers[40] ^= 1;
        let mismatched = serde_json::to_string(&numbers).unwrap();
        assert_eq!(
            SolanaKeypair::from_keypair_file(&mismatched).unwrap_err(),
            KeypairFileError::PublicKeyMismatch
        );
        assert_eq!(
            SolanaKeypair::from_keypair_file("[1,2,3]").unwrap_err(),
            KeypairFileError::WrongLength { count: 3 }
        );
        assert_eq!(
            SolanaKeypair::from_keypair_file("[]").unwrap_err(),
            KeypairFileError::WrongLength { count: 0 }
        );
        assert!(matches!(
            SolanaKeypair::from_keypair_file("[256]"),
            Err(KeypairFileError::Syntax { .. })
        ));
        assert!(matches!(
            SolanaKeypair::from_keypair_file("[01]"),
            Err(KeypairFileError::Syntax { .. })
        ));
        assert!(matches!(
            SolanaKeypair::from_keypair_file("[1,]"),
            Err(KeypairFileError::Syntax { .. })
        ));
        assert!(matches!(
            SolanaKeypair::from_keypair_file("{}"),
            Err(KeypairFileError::Syntax { .. })
        ));
        assert!(matches!(
            SolanaKeypair::from_keypair_file(&" ".repeat(5000)),
            Err(KeypairFileError::TooLarge { .. })
        ));
        let with_ws = format!(" \n{}\n", good.replace(',', ", "));
        assert_eq!(
            SolanaKeypair::from_keypair_file(&with_ws).unwrap().pubkey(),
            kp.pubkey()
        );
    }

    #[test]
    fn base58_round_trip_and_refusals() {
        let pk = SolanaKeypair::generate(&mut StdRng::seed_from_u64(9)).pubkey();
        assert_eq!(pk.to_string().parse::<SolanaPubkey>().unwrap(), pk);
        assert!("0OIl".parse::<SolanaPubkey>().is_err());
        assert!("1".repeat(100).parse::<SolanaPubkey>().is_err());
        assert!("11111111".parse::<SolanaPubkey>().is_err());
    }

    #[test]
    fn verifier_cache_gives_the_same_verdicts_and_keeps_only_keys_that_verified() {
        let kp = SolanaKeypair::generate(&mut StdRng::seed_from_u64(11));
        let other = SolanaKeypair::generate(&mut StdRng::seed_from_u64(12));
        let cache = VerifierCache::default();
        let sig = kp.sign(b"m");
        assert!(cache.verify(&kp.pubkey(), b"x", &sig).is_err());
        assert!(cache.verify(&other.pubkey(), b"m", &sig).is_err());
        assert!(cache.is_empty(), "a failed verification keeps no key");
        for _ in 0..2 {
            // First from a decoded key, then from the cached one.
            assert!(cache.verify(&kp.pubkey(), b"m", &sig).is_ok());
            assert!(cache.verify(&kp.pubkey(), b"x", &sig).is_err());
            let mut bad = sig;
            bad.0[63] ^= 0x10;
            assert!(cache.verify(&kp.pubkey(), b"m", &bad).is_err());
            assert_eq!(cache.len(), 1);
        }
        assert!(cache.verify(&SolanaPubkey([0xff; 32]), b"m", &sig).is_err());
    }

    proptest! {
        #[test]
        fn keypair_file_parser_never_panics(text in "\\PC{0,300}") {
            let _ = SolanaKeypair::from_keypair_file(&text);
        }

        #[test]
        fn keypair_file_parser_handles_number_lists(nums in proptest::collection::vec(0u16..300, 0..70)) {
            let text = serde_json::to_string(&nums).unwrap();
            let r = SolanaKeypair::from_keypair_file(&text);
            if nums.iter().any(|n| *n > 255) {
                prop_assert!(matches!(r, Err(KeypairFileError::Syntax { .. })), "expected a syntax error");
            } else if nums.len() != 64 {
                prop_assert_eq!(r.unwrap_err(), KeypairFileError::WrongLength { count: nums.len() });
            }
        }

        #[test]
        fn any_seed_round_trips(seed in any::<[u8; 32]>()) {
            let kp = SolanaKeypair::from_seed(&SecretBytes::new(seed));
            let back = SolanaKeypair::from_keypair_file(&kp.to_keypair_file()).unwrap();
            prop_assert_eq!(back.pubkey(), kp.pubkey());
        }

        // five8 is checked against bs58, an independent base58 implementation.
        #[test]
        fn base58_agrees_with_bs58_on_keys_and_signatures(
            key in any::<[u8; 32]>(),
            zeros in 0usize..32,
            sig in proptest::collection::vec(any::<u8>(), 64),
        ) {
            let mut key = key;
            key[..zeros].fill(0); // leading zero bytes are the leading '1's of base58
            let text = SolanaPubkey(key).to_string();
            prop_assert_eq!(&text, &bs58::encode(key).into_string());
            prop_assert_eq!(SolanaPubkey::parse_address(&text).unwrap().0, key);
            let sig: [u8; 64] = sig.try_into().unwrap();
            let text = SolanaSignature(sig).to_string();
            prop_assert_eq!(&text, &bs58::encode(sig).into_string());
            prop_assert_eq!(text.parse::<SolanaSignature>().unwrap().0, sig);
        }

        #[test]
        fn base58_decoding_agrees_with_bs58_on_any_text(
            // Lengths around 32 and 64 bytes (43-44 and 87-88 characters) are where a decoder
            // must tell a fit from an overflow.
            text in "[1-9A-HJ-NP-Za-km-z]{42,45}|[1-9A-HJ-NP-Za-km-z]{86,89}|[1]{0,40}[1-9A-HJ-NP-Za-km-z]{0,60}|[1-9A-HJ-NP-Za-km-z]{0,100}|\\PC{0,100}",
        ) {
            let reference = |n: usize| bs58::decode(&text).into_vec().ok().filter(|v| v.len() == n);
            prop_assert_eq!(
                SolanaPubkey::parse_address(&text).ok().map(|k| k.0.to_vec()),
                reference(32)
            );
            prop_assert_eq!(
                text.parse::<SolanaSignature>().ok().map(|s| s.0.to_vec()),
                reference(64)
            );
        }
    }
}
