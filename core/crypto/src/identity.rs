//! sr25519 identity keys (schnorrkel), with one signing context per purpose.
//!
//! Every entity of the key hierarchy (user, worker, gatekeeper, council member) has an identity
//! keypair made inside its enclave. A signature is always made under a [`SigningPurpose`], whose
//! schnorrkel signing context is `keyward/v1/<purpose>`; a signature made for one purpose never
//! verifies for another, so a signed envelope cannot be replayed as a ledger entry, and so on.
//!
//! Keys are created from a 32-byte seed (schnorrkel's `MiniSecretKey`) expanded in
//! `ExpansionMode::Ed25519`, the same expansion Substrate uses, so a seed gives the same public
//! key here as in polkadot.js. Public keys and signatures are shown as `0x`-hex.

use core::fmt;
use schnorrkel::{ExpansionMode, MiniSecretKey, context::attach_rng, signing_context};
use thiserror::Error;

use crate::{codec::DecodeError, secret::SecretBytes};

/// What a signature is for. Each purpose is a distinct schnorrkel signing context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SigningPurpose {
    /// The sender's signature over an encrypted envelope.
    Envelope,
    /// An entity certifying its own X25519 channel key.
    ChannelKey,
    /// A platform key signing attestation evidence.
    Evidence,
    /// A cluster or contract key certifying a contract's public keys.
    ContractKeys,
    /// A worker signing the digest of a contract execution result.
    ContractResult,
    /// An author signing a ledger entry.
    LedgerEntry,
    /// A worker asking a gatekeeper for its ClusterKey.
    ProvisionRequest,
    /// A DKG or resharing dealer vouching for the secret part it sent one member, so that the
    /// member can reveal a wrong part in a complaint anyone can check.
    SharePart,
    /// A gatekeeper vouching for the partial evaluation it answered, so that a worker can
    /// reveal a wrong one in a report anyone can check.
    PartialEvaluation,
}

impl SigningPurpose {
    /// The schnorrkel signing context: `keyward/v1/<purpose>`.
    pub const fn context(self) -> &'static [u8] {
        match self {
            Self::Envelope => b"keyward/v1/envelope",
            Self::ChannelKey => b"keyward/v1/channel-key",
            Self::Evidence => b"keyward/v1/evidence",
            Self::ContractKeys => b"keyward/v1/contract-keys",
            Self::ContractResult => b"keyward/v1/contract-result",
            Self::LedgerEntry => b"keyward/v1/ledger-entry",
            Self::ProvisionRequest => b"keyward/v1/provision-request",
            Self::SharePart => b"keyward/v1/share-part",
            Self::PartialEvaluation => b"keyward/v1/partial-evaluation",
        }
    }
}

/// A signature did not verify.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("signature does not verify for this key, purpose and message")]
pub struct SignatureError;

/// An sr25519 identity keypair.
///
/// Guarantees: the seed and the expanded secret zeroize on drop (schnorrkel's `SecretKey` does so
/// itself); `Debug` shows only the public key; signing needs a caller-supplied RNG, which
/// schnorrkel mixes with the secret nonce, so a weak RNG does not leak the key.
pub struct IdentityKeypair {
    seed: SecretBytes<32>,
    keypair: schnorrkel::Keypair,
}

impl IdentityKeypair {
    /// A fresh keypair from `rng`.
    pub fn generate(rng: &mut impl crate::Rng) -> Self {
        Self::from_seed(SecretBytes::random(rng))
    }

    /// The keypair of a 32-byte seed (Substrate-compatible expansion).
    pub fn from_seed(seed: SecretBytes<32>) -> Self {
        // Any 32 bytes are a valid mini secret key.
        let mini = MiniSecretKey::from_bytes(seed.expose())
            .expect("32 bytes are always a mini secret key");
        let keypair = mini.expand_to_keypair(ExpansionMode::Ed25519);
        Self { seed, keypair }
    }

    /// The seed this keypair was expanded from, for sealing or writing to a key file.
    pub fn seed(&self) -> &SecretBytes<32> {
        &self.seed
    }

    /// The public key.
    pub fn public(&self) -> IdentityPublicKey {
        IdentityPublicKey(self.keypair.public)
    }

    /// Signs `message` for `purpose`.
    pub fn sign(
        &self,
        purpose: SigningPurpose,
        message: &[u8],
        rng: &mut impl crate::Rng,
    ) -> IdentitySignature {
        let transcript = attach_rng(signing_context(purpose.context()).bytes(message), rng);
        IdentitySignature(self.keypair.sign(transcript))
    }
}

impl fmt::Debug for IdentityKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdentityKeypair")
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

/// An sr25519 public key: a compressed ristretto255 point, 32 bytes, shown as `0x`-hex.
///
/// Equality, order and hashing all follow the 32-byte encoding, so a map keyed by keys can be
/// searched by encoding (`Borrow<[u8; 32]>`) without decompressing a point.
#[derive(Clone, Copy)]
pub struct IdentityPublicKey(schnorrkel::PublicKey);

impl IdentityPublicKey {
    /// Length of the encoding.
    pub const LEN: usize = 32;

    /// Parses a compressed ristretto255 point.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if the bytes are not a canonical point encoding.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, DecodeError> {
        schnorrkel::PublicKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| DecodeError::Invalid {
                field: "sr25519 public key",
                reason: "not a ristretto255 point",
            })
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The 32-byte encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_compressed().as_bytes()
    }

    /// Verifies `signature` over `message` for `purpose`.
    pub fn verify(
        &self,
        purpose: SigningPurpose,
        message: &[u8],
        signature: &IdentitySignature,
    ) -> Result<(), SignatureError> {
        self.0
            .verify(
                signing_context(purpose.context()).bytes(message),
                &signature.0,
            )
            .map_err(|_| SignatureError)
    }
}

/// One signature to check in [`verify_batch`].
#[derive(Debug, Clone, Copy)]
pub struct SignedMessage<'a> {
    /// The claimed signer.
    pub signer: &'a IdentityPublicKey,
    /// The purpose it was signed under.
    pub purpose: SigningPurpose,
    /// The signed bytes.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a IdentitySignature,
}

/// Checks many signatures at once with schnorrkel's batch verification (one multiscalar
/// multiplication with random weights from `rng`): about 40 % cheaper per signature than
/// [`IdentityPublicKey::verify`] at 64 signatures (docs/BENCHMARKS.md).
///
/// Guarantees: `Ok` only if every signature is valid, with overwhelming probability over the
/// weights, which is why `rng` must be unpredictable to whoever made the signatures (the OS
/// generator); an empty batch is `Ok`. On `Err`, check them one by one to learn which failed.
///
/// # Errors
/// [`SignatureError`] if any signature is invalid.
pub fn verify_batch(
    batch: &[SignedMessage<'_>],
    rng: &mut impl crate::Rng,
) -> Result<(), SignatureError> {
    let transcripts = batch
        .iter()
        .map(|m| signing_context(m.purpose.context()).bytes(m.message));
    let signatures: Vec<schnorrkel::Signature> = batch.iter().map(|m| m.signature.0).collect();
    let keys: Vec<schnorrkel::PublicKey> = batch.iter().map(|m| m.signer.0).collect();
    schnorrkel::verify_batch_rng(transcripts, &signatures, &keys, false, rng)
        .map_err(|_| SignatureError)
}

impl fmt::Display for IdentityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::to_0x(&self.to_bytes()))
    }
}

/// Keys order by their 32-byte encodings, so maps keyed by identity iterate the same way on
/// every node.
impl Ord for IdentityPublicKey {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialEq for IdentityPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for IdentityPublicKey {}

impl core::hash::Hash for IdentityPublicKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl core::borrow::Borrow<[u8; 32]> for IdentityPublicKey {
    fn borrow(&self) -> &[u8; 32] {
        self.as_bytes()
    }
}

impl PartialOrd for IdentityPublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for IdentityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdentityPublicKey({self})")
    }
}

/// An sr25519 signature, 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct IdentitySignature(schnorrkel::Signature);

impl IdentitySignature {
    /// Length of the encoding.
    pub const LEN: usize = 64;

    /// Parses a signature encoding.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] if the bytes are not a well-formed sr25519 signature.
    pub fn from_bytes(bytes: &[u8; 64]) -> Result<Self, DecodeError> {
        schnorrkel::Signature::from_bytes(bytes)
            .map(Self)
            .map_err(|_| DecodeError::Invalid {
                field: "sr25519 signature",
                reason: "malformed signature",
            })
    }

    /// The 64-byte encoding.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }
}

impl fmt::Debug for IdentitySignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IdentitySignature({})",
            crate::hex::to_0x(&self.to_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn a_batch_verifies_only_if_every_signature_does() {
        let mut rng = StdRng::seed_from_u64(3);
        let keys: Vec<_> = (0..8)
            .map(|_| IdentityKeypair::generate(&mut rng))
            .collect();
        let publics: Vec<_> = keys.iter().map(IdentityKeypair::public).collect();
        let messages: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; usize::from(i) * 7]).collect();
        let mut sigs: Vec<_> = keys
            .iter()
            .zip(&messages)
            .map(|(k, m)| k.sign(SigningPurpose::ProvisionRequest, m, &mut rng))
            .collect();
        fn batch<'a>(
            (publics, messages): (&'a [IdentityPublicKey], &'a [Vec<u8>]),
            sigs: &'a [IdentitySignature],
            purpose: SigningPurpose,
        ) -> Vec<SignedMessage<'a>> {
            (0..8)
                .map(|i| SignedMessage {
                    signer: &publics[i],
                    purpose,
                    message: &messages[i],
                    signature: &sigs[i],
                })
                .collect()
        }
        let signed = (publics.as_slice(), messages.as_slice());
        assert_eq!(verify_batch(&[], &mut rng), Ok(()));
        assert_eq!(
            verify_batch(
                &batch(signed, &sigs, SigningPurpose::ProvisionRequest),
                &mut rng
            ),
            Ok(())
        );
        // Another purpose, or one signature swapped for another message's, fails the batch.
        assert_eq!(
            verify_batch(&batch(signed, &sigs, SigningPurpose::Envelope), &mut rng),
            Err(SignatureError)
        );
        sigs.swap(2, 5);
        assert_eq!(
            verify_batch(
                &batch(signed, &sigs, SigningPurpose::ProvisionRequest),
                &mut rng
            ),
            Err(SignatureError)
        );
    }

    #[test]
    fn keys_order_compare_and_hash_by_their_encoding() {
        use std::collections::{BTreeMap, HashMap};
        use std::hash::BuildHasher;
        let mut rng = StdRng::seed_from_u64(7);
        let keys: Vec<_> = (0..32)
            .map(|_| IdentityKeypair::generate(&mut rng).public())
            .collect();
        let hasher = std::collections::hash_map::RandomState::new();
        for a in &keys {
            assert_eq!(hasher.hash_one(a), hasher.hash_one(a.to_bytes()));
            for b in &keys {
                assert_eq!(a.cmp(b), a.to_bytes().cmp(&b.to_bytes()));
                assert_eq!(a == b, a.to_bytes() == b.to_bytes());
            }
        }
        // So maps keyed by keys are searched by encoding.
        let tree: BTreeMap<_, usize> = keys.iter().copied().zip(0..).collect();
        let hash: HashMap<_, usize> = keys.iter().copied().zip(0..).collect();
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(tree.get(key.as_bytes()), Some(&i));
            assert_eq!(hash.get(key.as_bytes()), Some(&i));
        }
        assert_eq!(tree.get(&[0; 32]), None);
    }

    #[test]
    fn signature_is_bound_to_its_purpose_and_key() {
        let mut rng = StdRng::seed_from_u64(1);
        let alice = IdentityKeypair::generate(&mut rng);
        let bob = IdentityKeypair::generate(&mut rng);
        let sig = alice.sign(SigningPurpose::Envelope, b"hello", &mut rng);
        assert_eq!(
            alice
                .public()
                .verify(SigningPurpose::Envelope, b"hello", &sig),
            Ok(())
        );
        assert_eq!(
            alice
                .public()
                .verify(SigningPurpose::LedgerEntry, b"hello", &sig),
            Err(SignatureError)
        );
        assert_eq!(
            alice
                .public()
                .verify(SigningPurpose::Envelope, b"hellO", &sig),
            Err(SignatureError)
        );
        assert_eq!(
            bob.public()
                .verify(SigningPurpose::Envelope, b"hello", &sig),
            Err(SignatureError)
        );
    }

    #[test]
    fn seed_expansion_is_substrate_compatible() {
        // `subkey inspect //Alice`: the dev account every Substrate chain ships.
        let seed = crate::hex::from_hex::<32>(
            "seed",
            "0xe5be9a5092b81bca64be81d212e7f2f9eba183bb7a90954f7b76361f6edb5c0a",
        )
        .unwrap();
        let kp = IdentityKeypair::from_seed(SecretBytes::new(seed));
        assert_eq!(
            kp.public().to_string(),
            "0xd43593c715fdd31c61141abd04a99fd6822c8558854ccde39a5684e7a56da27d"
        );
        assert!(!format!("{kp:?}").contains("e5be9a50"));
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic_and_round_trip(key in proptest::prelude::any::<[u8; 32]>(), a in proptest::prelude::any::<[u8; 32]>(), b in proptest::prelude::any::<[u8; 32]>()) {
            if let Ok(pk) = IdentityPublicKey::from_bytes(&key) {
                proptest::prop_assert_eq!(pk.to_bytes(), key);
            }
            let sig: [u8; 64] = [a, b].concat().try_into().unwrap();
            if let Ok(s) = IdentitySignature::from_bytes(&sig) {
                proptest::prop_assert_eq!(s.to_bytes(), sig);
            }
        }

        #[test]
        fn signatures_round_trip_and_any_bit_flip_fails(seed in proptest::prelude::any::<u64>(), pos in 0usize..64, bit in 0u8..8) {
            let mut rng = StdRng::seed_from_u64(seed);
            let kp = IdentityKeypair::generate(&mut rng);
            let sig = kp.sign(SigningPurpose::LedgerEntry, b"m", &mut rng);
            let decoded = IdentitySignature::from_bytes(&sig.to_bytes()).unwrap();
            proptest::prop_assert!(kp.public().verify(SigningPurpose::LedgerEntry, b"m", &decoded).is_ok());
            let mut bytes = sig.to_bytes();
            bytes[pos] ^= 1 << bit;
            let verdict = IdentitySignature::from_bytes(&bytes).map(|s| kp.public().verify(SigningPurpose::LedgerEntry, b"m", &s));
            proptest::prop_assert!(!matches!(verdict, Ok(Ok(()))));
        }
    }

    #[test]
    fn contexts_are_distinct() {
        use SigningPurpose::*;
        let all = [
            Envelope,
            ChannelKey,
            Evidence,
            ContractKeys,
            ContractResult,
            LedgerEntry,
        ];
        let set: std::collections::HashSet<_> = all.iter().map(|p| p.context()).collect();
        assert_eq!(set.len(), all.len());
    }
}
