//! Synthetic (SIV-style) nonces for XChaCha20-Poly1305: a PRF of everything encrypted.
//!
//! ```text
//! nonce = HMAC-SHA256(key = nonce key, msg = var32(aad) || plaintext)[0..24]
//! ```
//!
//! Two encryptions share a nonce only if they share aad *and* plaintext, and then they are the
//! same ciphertext, so a (key, nonce) pair never protects two different messages. No counter is
//! needed, so the scheme survives crashes, restarts and rollback of the host's storage, and equal
//! inputs give byte-identical ciphertexts. The nonce key must be independent of the encryption
//! key (derive them under different labels). Used by contract state (PROTOCOL.md §9) and sealed
//! blobs (§12).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Writer;

/// The 24-byte synthetic nonce of `plaintext` under `aad`; see the module docs.
pub fn synthetic_nonce(nonce_key: &[u8; 32], aad: &[u8], plaintext: &[u8]) -> [u8; 24] {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(nonce_key).expect("HMAC takes any key length");
    let mut prefix = Writer::new();
    prefix.var32(aad);
    mac.update(prefix.as_slice());
    mac.update(plaintext);
    let tag = mac.finalize().into_bytes();
    tag[..24].try_into().expect("HMAC-SHA256 gives 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::synthetic_nonce;

    #[test]
    fn the_nonce_depends_on_key_aad_plaintext_and_their_boundary() {
        let n = synthetic_nonce(&[1; 32], b"ab", b"c");
        assert_eq!(n, synthetic_nonce(&[1; 32], b"ab", b"c"));
        assert_ne!(n, synthetic_nonce(&[2; 32], b"ab", b"c"));
        assert_ne!(n, synthetic_nonce(&[1; 32], b"ab", b"d"));
        // The length prefix keeps the aad/plaintext boundary: "ab"+"c" is not "a"+"bc".
        assert_ne!(n, synthetic_nonce(&[1; 32], b"a", b"bc"));
    }
}
