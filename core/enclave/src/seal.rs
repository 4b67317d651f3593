//! Sealed blobs: secrets at rest, readable only by a core with the same measurement, on the same
//! chain, under the same sealing key, and no older than the host's monotonic counter allows.
//!
//! ```text
//! blob   = "KWSB" || 0x02 || var8(purpose) || var8(chain id) || measurement(32) || u64(counter)
//!          || nonce(24) || var32(ciphertext || tag)
//! key    = HKDF-SHA256(salt = "", ikm = sealing key, info = var16("keyward/v2/seal") || measurement)
//! aad    = every byte of the blob before the nonce
//! cipher = XChaCha20-Poly1305(key, nonce, aad, plaintext)
//! nonce  = random per blob (`seal`), or
//!          HMAC-SHA256(nonce key, var32(aad) || plaintext)[0..24] (`seal_synthetic`)
//! nonce key = HKDF-SHA256(salt = "", ikm = sealing key,
//!                         info = var16("keyward/v2/seal-nonce") || measurement)
//! ```
//!
//! The purpose, chain id, measurement and counter are in clear so a refusal can say what the
//! blob is; they are also authenticated, so changing them is detected like any other tampering.
//! The measurement also enters the key, so a core with another measurement derives another key
//! even from the same sealing key (what an enclave's hardware sealing key does by itself).
//!
//! **Rollback.** The counter is the value of the host's monotonic counter (a TPM NV counter, or a
//! pinned file for the soft source) that the blob was sealed at. [`Sealer::open`] takes the
//! counter's current value and refuses a blob sealed below it, so a host that kept an older blob
//! cannot hand it back once a newer one was made durable and the counter advanced.

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use core::fmt;
use hkdf::Hkdf;
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

use keyward_crypto::{ChainId, DecodeError, Reader, SecretBytes, Writer, synthetic_nonce};

const MAGIC: &[u8; 4] = b"KWSB";
const VERSION: u8 = 2;
const FORMAT: &str = "keyward sealed blob";
/// Largest plaintext a blob holds (64 MiB).
pub const MAX_SEALED_LEN: usize = 64 * 1024 * 1024;

/// What a sealed blob holds. Opening for one purpose refuses a blob sealed for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SealPurpose {
    /// An entity's sr25519 identity seed.
    IdentityKey,
    /// An entity's X25519 channel key.
    ChannelKey,
    /// A gatekeeper's MasterKey or MasterKey share.
    EpochSecret,
    /// A worker's ClusterKey seed.
    ClusterKey,
    /// A vote signer's record of one validator: its vote key, tower, nonce and recent answers.
    ValidatorRecord,
    /// A dev platform key.
    PlatformKey,
    /// A gatekeeper's or worker's whole key state (identity, channel key, epoch secrets or
    /// ClusterKeys).
    NodeState,
    /// A manifest pinning the versions of many blobs sealed one by one ([`crate::versions`]).
    Manifest,
}

impl SealPurpose {
    const ALL: [Self; 8] = [
        Self::IdentityKey,
        Self::ChannelKey,
        Self::EpochSecret,
        Self::ClusterKey,
        Self::ValidatorRecord,
        Self::PlatformKey,
        Self::NodeState,
        Self::Manifest,
    ];

    /// The label written into the blob.
    pub const fn label(self) -> &'static str {
        match self {
            Self::IdentityKey => "identity-key",
            Self::ChannelKey => "channel-key",
            Self::EpochSecret => "epoch-secret",
            Self::ClusterKey => "cluster-key",
            Self::ValidatorRecord => "validator-record",
            Self::PlatformKey => "platform-key",
            Self::NodeState => "node-state",
            Self::Manifest => "manifest",
        }
    }
}

impl fmt::Display for SealPurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why a blob could not be opened.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SealError {
    /// Not a well-formed sealed blob.
    #[error("malformed sealed blob: {0}")]
    Malformed(#[from] DecodeError),
    /// Sealed for another purpose.
    #[error("sealed blob holds {found}, expected {expected}")]
    WrongPurpose {
        /// What the caller asked for.
        expected: SealPurpose,
        /// The blob's purpose label.
        found: String,
    },
    /// Sealed for another chain.
    #[error("sealed blob belongs to chain {found}, this is chain {expected}")]
    WrongChain {
        /// This sealer's chain.
        expected: ChainId,
        /// The blob's chain label.
        found: String,
    },
    /// Sealed by a core with another measurement.
    #[error("sealed blob belongs to measurement {found}, this core is {expected}")]
    WrongMeasurement {
        /// This sealer's measurement, `0x`-hex.
        expected: String,
        /// The blob's measurement, `0x`-hex.
        found: String,
    },
    /// Sealed at a counter value below the monotonic counter: an older blob handed back.
    #[error(
        "sealed blob is from counter {found}, older than the monotonic counter {minimum}: rolled back"
    )]
    RolledBack {
        /// The blob's counter.
        found: u64,
        /// The monotonic counter's value.
        minimum: u64,
    },
    /// Altered, or sealed under another sealing key.
    #[error("sealed blob does not open: altered, or sealed under another sealing key")]
    Tampered,
    /// The plaintext is larger than [`MAX_SEALED_LEN`].
    #[error("{len} bytes is too large to seal (at most {MAX_SEALED_LEN})")]
    TooLarge {
        /// The plaintext's length.
        len: usize,
    },
}

/// The sealing key: 32 bytes the host hands the core from its platform source, either the soft
/// source (a 0600 file: **insecure**, anyone who can read that file can open every blob) or a
/// TPM that releases the key only under its PCR policy (`keyward_tpm::source`). Zeroized on
/// drop, never printed.
pub struct SealingKey(SecretBytes<32>);

impl SealingKey {
    /// A fresh random key.
    pub fn generate(rng: &mut impl keyward_crypto::Rng) -> Self {
        Self(SecretBytes::random(rng))
    }

    /// Wraps key bytes read by the host.
    pub fn from_bytes(bytes: SecretBytes<32>) -> Self {
        Self(bytes)
    }

    /// The key bytes, for the host to store.
    pub fn expose(&self) -> &[u8; 32] {
        self.0.expose()
    }
}

impl fmt::Debug for SealingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealingKey(redacted)")
    }
}

/// A sealed blob as stored by the host: opaque bytes, decodable only through [`Sealer::open`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlob(Vec<u8>);

impl SealedBlob {
    /// Wraps bytes read from storage (checked when opened).
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The blob's bytes, taken without a copy.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The blob's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The counter value in the blob's clear header, or `None` if the header is malformed. Not
    /// authenticated until [`Sealer::open`] accepts the blob: a host uses it only after that, to
    /// advance its monotonic counter to a restored blob's value.
    pub fn counter(&self) -> Option<u64> {
        self.parts().ok().map(|p| p.counter)
    }

    /// The blob's fields, framing checked (see the module layout).
    fn parts(&self) -> Result<Parts<'_>, DecodeError> {
        let mut r = Reader::new(&self.0);
        r.header(FORMAT, MAGIC, VERSION)?;
        let purpose = r.var8("seal purpose", 255)?;
        let chain = r.var8("seal chain id", 255)?;
        let measurement = r.array("seal measurement")?;
        let counter = r.u64("seal counter")?;
        let aad = &self.0[..self.0.len() - r.remaining()];
        let nonce = r.array("seal nonce")?;
        let ciphertext = r.var32("sealed ciphertext", MAX_SEALED_LEN + 16)?;
        r.finish()?;
        Ok(Parts {
            purpose,
            chain,
            measurement,
            counter,
            aad,
            nonce,
            ciphertext,
        })
    }
}

/// A sealed blob's fields, borrowed from its bytes.
struct Parts<'a> {
    purpose: &'a [u8],
    chain: &'a [u8],
    measurement: [u8; 32],
    counter: u64,
    /// Every byte before the nonce.
    aad: &'a [u8],
    nonce: [u8; 24],
    ciphertext: &'a [u8],
}

/// A blob's plaintext, with the counter value it was sealed at. The plaintext is wiped on drop.
pub struct Unsealed {
    /// The plaintext.
    pub plaintext: Zeroizing<Vec<u8>>,
    /// The monotonic counter value the blob was sealed at.
    pub counter: u64,
}

impl fmt::Debug for Unsealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unsealed")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

/// Seals and opens blobs for one chain and one measurement under one sealing key.
pub struct Sealer {
    key: Zeroizing<[u8; 32]>,
    nonce_key: Zeroizing<[u8; 32]>,
    pub(crate) version_key: Zeroizing<[u8; 32]>,
    chain: ChainId,
    measurement: [u8; 32],
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealer")
            .field("chain", &self.chain)
            .field(
                "measurement",
                &keyward_crypto::hex::to_0x(&self.measurement),
            )
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer for `chain` and the core `measurement` under `key`.
    pub fn new(key: &SealingKey, chain: ChainId, measurement: [u8; 32]) -> Self {
        let hkdf = Hkdf::<Sha256>::new(None, key.expose());
        let derive = |label: &[u8]| {
            let mut info = Writer::new();
            info.var16(label).raw(&measurement);
            let mut derived = Zeroizing::new([0u8; 32]);
            hkdf.expand(info.as_slice(), derived.as_mut())
                .expect("32 bytes is a valid HKDF length");
            derived
        };
        Self {
            key: derive(b"keyward/v2/seal"),
            nonce_key: derive(b"keyward/v2/seal-nonce"),
            version_key: derive(b"keyward/v2/seal-version"),
            chain,
            measurement,
        }
    }

    /// The measurement this sealer binds blobs to.
    pub fn measurement(&self) -> [u8; 32] {
        self.measurement
    }

    fn header(&self, purpose: &str, counter: u64) -> Writer {
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.var8(purpose.as_bytes())
            .var8(self.chain.as_str().as_bytes())
            .raw(&self.measurement)
            .u64(counter);
        w
    }

    /// Seals `plaintext` for `purpose` on this chain at monotonic counter value `counter`, under
    /// a random nonce.
    ///
    /// # Errors
    /// [`SealError::TooLarge`] past [`MAX_SEALED_LEN`].
    pub fn seal(
        &self,
        purpose: SealPurpose,
        counter: u64,
        plaintext: &[u8],
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<SealedBlob, SealError> {
        let mut nonce = [0u8; 24];
        rng.fill_bytes(&mut nonce);
        self.seal_with_nonce(purpose, counter, plaintext, |_| nonce)
    }

    /// Seals `plaintext` for `purpose` on this chain at counter value `counter` under a
    /// synthetic nonce, a PRF of the header and the plaintext: the same plaintext and counter
    /// always give the same blob, and different ones never share a nonce (so there is no nonce
    /// to track across crashes). Equal blobs reveal equal plaintexts, and nothing else.
    ///
    /// # Errors
    /// [`SealError::TooLarge`] past [`MAX_SEALED_LEN`].
    pub fn seal_synthetic(
        &self,
        purpose: SealPurpose,
        counter: u64,
        plaintext: &[u8],
    ) -> Result<SealedBlob, SealError> {
        self.seal_with_nonce(purpose, counter, plaintext, |aad| {
            synthetic_nonce(&self.nonce_key, aad, plaintext)
        })
    }

    fn seal_with_nonce(
        &self,
        purpose: SealPurpose,
        counter: u64,
        plaintext: &[u8],
        nonce: impl FnOnce(&[u8]) -> [u8; 24],
    ) -> Result<SealedBlob, SealError> {
        if plaintext.len() > MAX_SEALED_LEN {
            return Err(SealError::TooLarge {
                len: plaintext.len(),
            });
        }
        let mut w = self.header(purpose.label(), counter);
        let aad = w.as_slice().to_vec();
        let nonce = nonce(&aad);
        let ct = XChaCha20Poly1305::new(self.key.as_ref().into())
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any length below 2^38");
        w.raw(&nonce).var32(&ct);
        Ok(SealedBlob(w.finish()))
    }

    /// Opens a blob sealed for `purpose` on this chain by a core with this measurement, at a
    /// counter value of at least `minimum` (the monotonic counter's current value).
    ///
    /// # Errors
    /// [`SealError::Malformed`], [`SealError::WrongPurpose`], [`SealError::WrongChain`],
    /// [`SealError::WrongMeasurement`], [`SealError::Tampered`] or [`SealError::RolledBack`] (only
    /// for an authentic blob); no plaintext unless every check passes.
    pub fn open(
        &self,
        purpose: SealPurpose,
        blob: &SealedBlob,
        minimum: u64,
    ) -> Result<Unsealed, SealError> {
        let Parts {
            purpose: found_purpose,
            chain: found_chain,
            measurement: found_measurement,
            counter,
            aad,
            nonce,
            ciphertext,
        } = blob.parts()?;
        if found_purpose != purpose.label().as_bytes() {
            if !SealPurpose::ALL
                .iter()
                .any(|p| p.label().as_bytes() == found_purpose)
            {
                return Err(SealError::Tampered);
            }
            return Err(SealError::WrongPurpose {
                expected: purpose,
                found: String::from_utf8_lossy(found_purpose).into_owned(),
            });
        }
        if found_chain != self.chain.as_str().as_bytes() {
            // Only a valid chain id can have been sealed; anything else is tampering, and is
            // never echoed into an error message.
            let found = core::str::from_utf8(found_chain)
                .ok()
                .and_then(|s| ChainId::new(s).ok())
                .ok_or(SealError::Tampered)?;
            return Err(SealError::WrongChain {
                expected: self.chain.clone(),
                found: found.to_string(),
            });
        }
        if found_measurement != self.measurement {
            return Err(SealError::WrongMeasurement {
                expected: keyward_crypto::hex::to_0x(&self.measurement),
                found: keyward_crypto::hex::to_0x(&found_measurement),
            });
        }
        let plaintext = XChaCha20Poly1305::new(self.key.as_ref().into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: ciphertext,
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| SealError::Tampered)?;
        // Checked only once the counter is known to be authentic.
        if counter < minimum {
            return Err(SealError::RolledBack {
                found: counter,
                minimum,
            });
        }
        Ok(Unsealed { plaintext, counter })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    const M: [u8; 32] = [0x4d; 32];

    fn sealer(seed: u64, chain: &str) -> (StdRng, Sealer) {
        let mut rng = StdRng::seed_from_u64(seed);
        let key = SealingKey::generate(&mut rng);
        (rng, Sealer::new(&key, ChainId::new(chain).unwrap(), M))
    }

    #[test]
    fn round_trip_and_bindings() {
        let (mut rng, s) = sealer(1, "devnet");
        let blob = s
            .seal(SealPurpose::ValidatorRecord, 0, b"vote key seed", &mut rng)
            .unwrap();
        assert_eq!(
            &s.open(SealPurpose::ValidatorRecord, &blob, 0)
                .unwrap()
                .plaintext[..],
            b"vote key seed"
        );
        assert_eq!(
            s.open(SealPurpose::IdentityKey, &blob, 0).unwrap_err(),
            SealError::WrongPurpose {
                expected: SealPurpose::IdentityKey,
                found: "validator-record".into()
            }
        );
        let same_key_other_chain = {
            let mut rng = StdRng::seed_from_u64(1);
            Sealer::new(
                &SealingKey::generate(&mut rng),
                ChainId::new("mainnet").unwrap(),
                M,
            )
        };
        assert!(matches!(
            same_key_other_chain.open(SealPurpose::ValidatorRecord, &blob, 0),
            Err(SealError::WrongChain { .. })
        ));
        let (_, other_key) = sealer(2, "devnet");
        assert_eq!(
            other_key
                .open(SealPurpose::ValidatorRecord, &blob, 0)
                .unwrap_err(),
            SealError::Tampered
        );
    }

    #[test]
    fn another_measurement_is_refused_by_name_and_cannot_open_by_relabelling() {
        let (mut rng, s) = sealer(9, "devnet");
        let blob = s
            .seal(SealPurpose::NodeState, 0, b"state", &mut rng)
            .unwrap();
        let key = {
            let mut rng = StdRng::seed_from_u64(9);
            SealingKey::generate(&mut rng)
        };
        let other = Sealer::new(&key, ChainId::new("devnet").unwrap(), [0x4e; 32]);
        assert!(matches!(
            other.open(SealPurpose::NodeState, &blob, 0),
            Err(SealError::WrongMeasurement { .. })
        ));
        // Rewriting the clear measurement does not help: the key differs too.
        let mut bytes = blob.as_bytes().to_vec();
        let at = bytes.windows(32).position(|w| w == M).unwrap();
        bytes[at..at + 32].copy_from_slice(&[0x4e; 32]);
        assert_eq!(
            other
                .open(SealPurpose::NodeState, &SealedBlob::from_bytes(bytes), 0)
                .unwrap_err(),
            SealError::Tampered
        );
    }

    #[test]
    fn a_blob_older_than_the_counter_is_rolled_back_and_the_counter_cannot_be_rewritten() {
        let (mut rng, s) = sealer(10, "devnet");
        let old = s.seal(SealPurpose::NodeState, 6, b"old", &mut rng).unwrap();
        let new = s.seal(SealPurpose::NodeState, 7, b"new", &mut rng).unwrap();
        assert_eq!(s.open(SealPurpose::NodeState, &old, 6).unwrap().counter, 6);
        assert_eq!((old.counter(), new.counter()), (Some(6), Some(7)));
        let opened = s.open(SealPurpose::NodeState, &new, 7).unwrap();
        assert_eq!((&opened.plaintext[..], opened.counter), (&b"new"[..], 7));
        assert_eq!(
            s.open(SealPurpose::NodeState, &old, 7).unwrap_err(),
            SealError::RolledBack {
                found: 6,
                minimum: 7
            }
        );
        // Raising the old blob's clear counter breaks its tag.
        let counter_at = |blob: &SealedBlob| blob.as_bytes().len() - 4 - (3 + 16) - 24 - 8;
        let mut bytes = old.as_bytes().to_vec();
        let at = counter_at(&old);
        assert_eq!(bytes[at..at + 8], 6u64.to_be_bytes());
        bytes[at..at + 8].copy_from_slice(&7u64.to_be_bytes());
        assert_eq!(
            s.open(SealPurpose::NodeState, &SealedBlob::from_bytes(bytes), 7)
                .unwrap_err(),
            SealError::Tampered
        );
        // Lowering a current blob's counter below the minimum: still tampering, so the counter
        // is checked only once the tag has vouched for it.
        let mut bytes = new.as_bytes().to_vec();
        let at = counter_at(&new);
        bytes[at..at + 8].copy_from_slice(&6u64.to_be_bytes());
        assert_eq!(
            s.open(SealPurpose::NodeState, &SealedBlob::from_bytes(bytes), 7)
                .unwrap_err(),
            SealError::Tampered
        );
    }

    #[test]
    fn synthetic_nonce_is_deterministic_per_plaintext_and_opens_like_any_blob() {
        let (_, s) = sealer(7, "devnet");
        let a = s
            .seal_synthetic(SealPurpose::ValidatorRecord, 0, b"record 1")
            .unwrap();
        assert_eq!(
            a.as_bytes(),
            s.seal_synthetic(SealPurpose::ValidatorRecord, 0, b"record 1")
                .unwrap()
                .as_bytes()
        );
        assert_eq!(
            &s.open(SealPurpose::ValidatorRecord, &a, 0)
                .unwrap()
                .plaintext[..],
            b"record 1"
        );
        let nonce = |blob: &SealedBlob| {
            let at = blob.as_bytes().len() - 4 - (8 + 16) - 24;
            blob.as_bytes()[at..at + 24].to_vec()
        };
        let b = s
            .seal_synthetic(SealPurpose::ValidatorRecord, 0, b"record 2")
            .unwrap();
        assert_ne!(nonce(&a), nonce(&b), "another plaintext, another nonce");
        let c = s
            .seal_synthetic(SealPurpose::ClusterKey, 0, b"record 1")
            .unwrap();
        assert_ne!(
            nonce(&a),
            nonce(&c),
            "the header is part of the nonce's input"
        );
        let (_, other) = sealer(8, "devnet");
        let d = other
            .seal_synthetic(SealPurpose::ValidatorRecord, 0, b"record 1")
            .unwrap();
        assert_ne!(nonce(&a), nonce(&d), "another sealing key, another nonce");
        assert_eq!(
            other.open(SealPurpose::ValidatorRecord, &a, 0).unwrap_err(),
            SealError::Tampered
        );
    }

    #[test]
    fn invalid_chain_label_is_tampering_not_echoed() {
        let (mut rng, s) = sealer(6, "devnet");
        let mut bytes = s
            .seal(SealPurpose::ValidatorRecord, 0, b"k", &mut rng)
            .unwrap()
            .as_bytes()
            .to_vec();
        let at = bytes.windows(6).position(|w| w == b"devnet").unwrap();
        bytes[at..at + 6].copy_from_slice(b"dev\net");
        assert_eq!(
            s.open(
                SealPurpose::ValidatorRecord,
                &SealedBlob::from_bytes(bytes),
                0
            )
            .unwrap_err(),
            SealError::Tampered
        );
    }

    #[test]
    fn relabelled_blob_is_tampered() {
        // Rewriting the clear header to another purpose of the same length still fails the AEAD.
        let (mut rng, s) = sealer(3, "devnet");
        let blob = s
            .seal(SealPurpose::ClusterKey, 0, b"seed", &mut rng)
            .unwrap();
        let relabelled = String::from_utf8_lossy(blob.as_bytes()).contains("cluster-key");
        assert!(relabelled);
        let mut bytes = blob.as_bytes().to_vec();
        let at = bytes.windows(11).position(|w| w == b"cluster-key").unwrap();
        bytes[at..at + 11].copy_from_slice(b"channel-key");
        assert_eq!(
            s.open(SealPurpose::ChannelKey, &SealedBlob::from_bytes(bytes), 0)
                .unwrap_err(),
            SealError::Tampered
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_bit_flip_is_refused(pt in proptest::collection::vec(any::<u8>(), 0..100), pos in any::<usize>(), bit in 0u8..8) {
            let (mut rng, s) = sealer(4, "devnet");
            let blob = s.seal(SealPurpose::EpochSecret, 0, &pt, &mut rng).unwrap();
            prop_assert_eq!(&s.open(SealPurpose::EpochSecret, &blob, 0).unwrap().plaintext[..], &pt[..]);
            let mut bytes = blob.as_bytes().to_vec();
            let i = pos % bytes.len();
            bytes[i] ^= 1 << bit;
            prop_assert!(s.open(SealPurpose::EpochSecret, &SealedBlob::from_bytes(bytes), 0).is_err());
        }

        #[test]
        fn truncation_and_garbage_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), cut in any::<usize>()) {
            let (mut rng, s) = sealer(5, "devnet");
            let _ = s.open(SealPurpose::EpochSecret, &SealedBlob::from_bytes(bytes), 0);
            let blob = s.seal(SealPurpose::EpochSecret, 0, b"x", &mut rng).unwrap();
            let cut = cut % blob.as_bytes().len();
            prop_assert!(s.open(SealPurpose::EpochSecret, &SealedBlob::from_bytes(blob.as_bytes()[..cut].to_vec()), 0).is_err());
        }
    }
}
