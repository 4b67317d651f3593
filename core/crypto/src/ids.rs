//! Validated identifiers: chain, cluster and contract ids share one alphabet and length.

use thiserror::Error;

/// Longest id, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why an id was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum IdError {
    /// Empty or longer than [`MAX_ID_LEN`].
    #[error("{kind} must be 1 to {MAX_ID_LEN} bytes long")]
    Length {
        /// Which kind of id.
        kind: &'static str,
    },
    /// A character outside `A-Z a-z 0-9 . _ -`.
    #[error("{kind} may only hold A-Z, a-z, 0-9, '.', '_' and '-'")]
    Character {
        /// Which kind of id.
        kind: &'static str,
    },
}

/// Checks `s` is 1 to 64 bytes of `A-Z a-z 0-9 . _ -`.
///
/// # Errors
/// An [`IdError`] naming the problem.
pub fn check(kind: &'static str, s: &str) -> Result<(), IdError> {
    if s.is_empty() || s.len() > MAX_ID_LEN {
        return Err(IdError::Length { kind });
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(IdError::Character { kind });
    }
    Ok(())
}

/// Declares a validated id type (a `String` newtype that only [`check`]ed text can become).
#[macro_export]
macro_rules! id_type {
    ($name:ident, $kind:literal, $doc:literal) => {
        #[doc = $doc]
        ///
        /// Guarantees: 1 to 64 bytes of `A-Z a-z 0-9 . _ -`, so it prints safely and fits every
        /// length prefix.
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates `s`.
            ///
            /// # Errors
            /// An [`IdError`] naming the problem.
            pub fn new(s: &str) -> Result<Self, $crate::ids::IdError> {
                $crate::ids::check($kind, s).map(|()| Self(s.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl core::str::FromStr for $name {
            type Err = $crate::ids::IdError;
            fn from_str(s: &str) -> Result<Self, $crate::ids::IdError> {
                Self::new(s)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    ChainId,
    "chain id",
    "The id of the network a key, sealed blob or epoch chain belongs to."
);
