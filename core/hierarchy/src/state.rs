//! Contract-state encryption.
//!
//! Each state record is sealed with XChaCha20-Poly1305 under the contract's state key:
//!
//! ```text
//! aad    = var16("keyward/v1/contract-state") || var16(contract id) || var16(record key) || u64(version)
//! nonce  = HMAC-SHA256(state nonce key, var32(aad) || plaintext)[..24]
//! sealed = nonce || XChaCha20-Poly1305(state key, nonce, aad, plaintext)
//! ```
//!
//! **Nonce scheme.** The nonce is synthetic (SIV-style): a PRF of everything encrypted. Two
//! encryptions share a nonce only if they share aad *and* plaintext, and then they are the same
//! ciphertext, so a (key, nonce) pair never protects two different messages. This needs no
//! counter, so it survives crashes, restarts, rollback of the host's storage and several workers
//! encrypting the same state: every worker of a cluster produces byte-identical ciphertext,
//! which lets them compare result digests. The cost: equal (record, version, plaintext) triples
//! are visibly equal, which reveals nothing new since the version already identifies the write.

use chacha20poly1305::{
    KeyInit, XChaCha20Poly1305, XNonce,
    aead::{Aead, Payload},
};
use core::fmt;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::ids::ContractId;
use keyward_crypto::{SecretBytes, Writer, synthetic_nonce};

/// Nonce length (XChaCha20).
pub const NONCE_LEN: usize = 24;
/// Tag length (Poly1305).
pub const TAG_LEN: usize = 16;
/// Longest record key.
pub const MAX_RECORD_KEY_LEN: usize = 1024;
/// Largest record plaintext (16 MiB).
pub const MAX_RECORD_LEN: usize = 16 * 1024 * 1024;

/// Why a state record could not be sealed or opened.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum StateError {
    /// The record key or plaintext exceeds its limit.
    #[error("{what} is too large: {len} bytes, at most {max}")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Shorter than a nonce and a tag.
    #[error("sealed state record is truncated")]
    Truncated,
    /// Altered, or sealed under another key, record or version.
    #[error(
        "sealed state record does not open: altered, or written under another key, record or version"
    )]
    Decryption,
}

/// A contract's state cipher. Guarantees: keys zeroize on drop and never print.
pub struct StateCipher {
    contract: ContractId,
    key: SecretBytes<32>,
    nonce_key: SecretBytes<32>,
}

impl StateCipher {
    pub(crate) fn new(
        contract: ContractId,
        key: SecretBytes<32>,
        nonce_key: SecretBytes<32>,
    ) -> Self {
        Self {
            contract,
            key,
            nonce_key,
        }
    }

    fn aad(&self, record: &[u8], version: u64) -> Result<Vec<u8>, StateError> {
        if record.len() > MAX_RECORD_KEY_LEN {
            return Err(StateError::TooLarge {
                what: "record key",
                len: record.len(),
                max: MAX_RECORD_KEY_LEN,
            });
        }
        let mut w = Writer::new();
        w.var16(b"keyward/v1/contract-state")
            .var16(self.contract.as_str().as_bytes())
            .var16(record)
            .u64(version);
        Ok(w.finish())
    }

    /// Seals `plaintext` as version `version` of record `record`.
    ///
    /// # Errors
    /// [`StateError::TooLarge`] past the limits.
    pub fn encrypt(
        &self,
        record: &[u8],
        version: u64,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StateError> {
        if plaintext.len() > MAX_RECORD_LEN {
            return Err(StateError::TooLarge {
                what: "state record",
                len: plaintext.len(),
                max: MAX_RECORD_LEN,
            });
        }
        let aad = self.aad(record, version)?;
        let nonce = synthetic_nonce(self.nonce_key.expose(), &aad, plaintext);
        let nonce = XNonce::from_slice(&nonce);
        let ct = XChaCha20Poly1305::new(self.key.expose().into())
            .encrypt(
                nonce,
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any length below 2^38");
        Ok([nonce.as_slice(), &ct].concat())
    }

    /// Opens version `version` of record `record`.
    ///
    /// # Errors
    /// [`StateError::Truncated`] or [`StateError::Decryption`]; no plaintext on failure.
    pub fn decrypt(
        &self,
        record: &[u8],
        version: u64,
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, StateError> {
        let aad = self.aad(record, version)?;
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(StateError::Truncated);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        XChaCha20Poly1305::new(self.key.expose().into())
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| StateError::Decryption)
    }
}

impl fmt::Debug for StateCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateCipher")
            .field("contract", &self.contract)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cipher(k: u8) -> StateCipher {
        StateCipher::new(
            ContractId::new("kv").unwrap(),
            SecretBytes::new([k; 32]),
            SecretBytes::new([k ^ 0xff; 32]),
        )
    }

    #[test]
    fn deterministic_and_bound_to_record_and_version() {
        let c = cipher(1);
        let a = c.encrypt(b"balance/alice", 3, b"100").unwrap();
        assert_eq!(
            a,
            c.encrypt(b"balance/alice", 3, b"100").unwrap(),
            "workers agree byte for byte"
        );
        assert_ne!(
            a[..NONCE_LEN],
            c.encrypt(b"balance/alice", 3, b"101").unwrap()[..NONCE_LEN],
            "new plaintext, new nonce"
        );
        assert_ne!(
            a[..NONCE_LEN],
            c.encrypt(b"balance/alice", 4, b"100").unwrap()[..NONCE_LEN],
            "new version, new nonce"
        );
        assert_eq!(&c.decrypt(b"balance/alice", 3, &a).unwrap()[..], b"100");
        assert_eq!(
            c.decrypt(b"balance/bob", 3, &a).unwrap_err(),
            StateError::Decryption
        );
        assert_eq!(
            c.decrypt(b"balance/alice", 2, &a).unwrap_err(),
            StateError::Decryption
        );
        assert_eq!(
            cipher(2).decrypt(b"balance/alice", 3, &a).unwrap_err(),
            StateError::Decryption
        );
        assert_eq!(
            c.decrypt(b"balance/alice", 3, &a[..39]).unwrap_err(),
            StateError::Truncated
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn round_trip_and_tamper(pt in proptest::collection::vec(any::<u8>(), 0..200), version in any::<u64>(), pos in any::<usize>(), bit in 0u8..8) {
            let c = cipher(5);
            let mut sealed = c.encrypt(b"r", version, &pt).unwrap();
            prop_assert_eq!(&c.decrypt(b"r", version, &sealed).unwrap()[..], &pt[..]);
            let i = pos % sealed.len();
            sealed[i] ^= 1 << bit;
            prop_assert_eq!(c.decrypt(b"r", version, &sealed).unwrap_err(), StateError::Decryption);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = cipher(6).decrypt(b"r", 0, &bytes);
        }
    }
}
