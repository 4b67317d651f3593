//! `0x`-prefixed lowercase hex, the text form of sr25519, ristretto255 and X25519 keys.

use crate::codec::DecodeError;

/// Formats `bytes` as `0x` followed by lowercase hex.
pub fn to_0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Parses exactly `N` bytes from hex text, with or without a `0x` prefix.
///
/// # Errors
/// [`DecodeError::Invalid`] naming `field` when the text is not hex or not `N` bytes long.
pub fn from_hex<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], DecodeError> {
    let digits = text.trim();
    let digits = digits.strip_prefix("0x").unwrap_or(digits);
    let mut out = [0u8; N];
    hex::decode_to_slice(digits, &mut out).map_err(|_| DecodeError::Invalid {
        field,
        reason: "expected hex of the right length",
    })?;
    Ok(out)
}
