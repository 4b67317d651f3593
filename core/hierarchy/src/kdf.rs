//! The one key-derivation function of the hierarchy.

use hkdf::Hkdf;
use sha2::Sha256;

use keyward_crypto::{SecretBytes, Writer};

/// `HKDF-SHA256(salt = "", ikm = parent, info = var16(label) || context)`, 32 bytes.
///
/// Distinct labels give independent keys; HKDF is one-way, so a child reveals nothing about its
/// parent or its siblings.
pub fn derive(parent: &[u8], label: &str, context: &[u8]) -> SecretBytes<32> {
    let mut info = Writer::new();
    info.var16(label.as_bytes()).raw(context);
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(None, parent)
        .expand(info.as_slice(), &mut out)
        .expect("32 bytes is a valid HKDF-SHA256 length");
    SecretBytes::new(out)
}
