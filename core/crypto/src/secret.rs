//! Secret bytes: zeroized on drop, redacted in `Debug`, compared in constant time.

use core::fmt;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// `N` secret bytes (a seed, a symmetric key, a secret scalar's encoding).
///
/// Guarantees: the bytes are overwritten with zeros when the value is dropped; `Debug` prints
/// only the length; equality runs in constant time; there is no `Display`, `Clone` or `Copy`,
/// so a copy exists only where code asks for [`SecretBytes::expose`] explicitly.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes<const N: usize>([u8; N]);

impl<const N: usize> SecretBytes<N> {
    /// Takes ownership of `bytes`. The caller's copy is the caller's to zeroize.
    pub fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// Fresh random bytes from `rng`.
    pub fn random(rng: &mut impl crate::Rng) -> Self {
        let mut bytes = [0u8; N];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Copies exactly `N` bytes out of `slice`, or `None` when the length differs.
    pub fn from_slice(slice: &[u8]) -> Option<Self> {
        let mut bytes = [0u8; N];
        if slice.len() != N {
            return None;
        }
        bytes.copy_from_slice(slice);
        Some(Self(bytes))
    }

    /// The secret bytes. Every call site is a place where the secret leaves this wrapper.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for SecretBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes<{N}>(redacted)")
    }
}

impl<const N: usize> ConstantTimeEq for SecretBytes<N> {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl<const N: usize> PartialEq for SecretBytes<N> {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl<const N: usize> Eq for SecretBytes<N> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_bytes() {
        let s = SecretBytes::new([0xab; 32]);
        let shown = format!("{s:?}");
        assert_eq!(shown, "SecretBytes<32>(redacted)");
        assert!(!shown.contains("ab") && !shown.contains("171"));
    }

    #[test]
    fn equality_is_by_value() {
        assert_eq!(SecretBytes::new([1u8; 4]), SecretBytes::new([1u8; 4]));
        assert_ne!(SecretBytes::new([1u8; 4]), SecretBytes::new([1, 1, 1, 2]));
        assert!(SecretBytes::<4>::from_slice(&[0; 3]).is_none());
    }
}
