//! The byte codec every keyward wire format is built from.
//!
//! Integers are big-endian. Variable-length fields carry a length prefix of one, two or four
//! bytes (`var8`, `var16`, `var32`). Formats that travel on their own start with a four-byte
//! magic and a one-byte format version.
//!
//! The [`Reader`] is the only decoder: it checks every length against both a per-field maximum
//! and the bytes actually present before it slices, so malformed, truncated or oversized input
//! yields a [`DecodeError`] and never a panic or a large allocation.

use thiserror::Error;

/// Why bytes could not be decoded. Each variant names the field that failed.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The input ended inside `field`.
    #[error("input is truncated: it ends inside {field}")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// A length prefix announced more than `field` may hold.
    #[error("{field} is too long: {len} bytes, at most {max} allowed")]
    TooLong {
        /// The field being read.
        field: &'static str,
        /// The announced length.
        len: usize,
        /// The field's maximum.
        max: usize,
    },
    /// Bytes remain after the last field.
    #[error("{count} unexpected trailing bytes after the last field")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// The input does not start with this format's magic.
    #[error("not a {format}: wrong magic bytes")]
    BadMagic {
        /// The format that was expected.
        format: &'static str,
    },
    /// The format version is one this build does not read.
    #[error("{format} version {found} is not supported (this build reads version {supported})")]
    UnsupportedVersion {
        /// The format being read.
        format: &'static str,
        /// The version found in the input.
        found: u8,
        /// The version this build reads.
        supported: u8,
    },
    /// A field is well-framed but its value is not acceptable.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field being read.
        field: &'static str,
        /// Why the value was refused.
        reason: &'static str,
    },
}

/// Appends fields to a byte buffer. Infallible: the types that own the data bound its lengths.
#[derive(Debug, Default, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer that starts with a format's magic and version byte.
    pub fn with_header(magic: &[u8; 4], version: u8) -> Self {
        let mut w = Self::new();
        w.raw(magic);
        w.u8(version);
        w
    }

    /// Appends bytes with no prefix.
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.raw(&v.to_be_bytes())
    }

    /// Appends bytes behind a one-byte length.
    ///
    /// # Panics
    /// If `bytes` is longer than 255: callers pass only data whose type bounds its length.
    pub fn var8(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u8::try_from(bytes.len()).expect("var8 field bounded by its type");
        self.u8(len).raw(bytes)
    }

    /// Appends bytes behind a two-byte length (RFC 9497's `I2OSP(len, 2) || bytes`).
    ///
    /// # Panics
    /// If `bytes` is longer than 65535: callers pass only data whose type bounds its length.
    pub fn var16(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u16::try_from(bytes.len()).expect("var16 field bounded by its type");
        self.u16(len).raw(bytes)
    }

    /// Appends bytes behind a four-byte length.
    ///
    /// # Panics
    /// If `bytes` is longer than `u32::MAX`: callers pass only data whose type bounds its length.
    pub fn var32(&mut self, bytes: &[u8]) -> &mut Self {
        let len = u32::try_from(bytes.len()).expect("var32 field bounded by its type");
        self.u32(len).raw(bytes)
    }

    /// The bytes written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// The finished buffer.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads fields from a byte slice, refusing anything malformed with a [`DecodeError`].
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Checks the magic and version written by [`Writer::with_header`].
    pub fn header(
        &mut self,
        format: &'static str,
        magic: &[u8; 4],
        version: u8,
    ) -> Result<(), DecodeError> {
        if self.rest.len() < 4 || &self.rest[..4] != magic {
            return Err(DecodeError::BadMagic { format });
        }
        self.rest = &self.rest[4..];
        let found = self.u8(format)?;
        if found != version {
            return Err(DecodeError::UnsupportedVersion {
                format,
                found,
                supported: version,
            });
        }
        Ok(())
    }

    /// Takes exactly `n` bytes.
    pub fn take(&mut self, field: &'static str, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated { field });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// Takes a fixed-size array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(field, N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn bounded(
        &mut self,
        field: &'static str,
        len: usize,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        self.take(field, len)
    }

    /// Reads bytes behind a one-byte length, at most `max` of them.
    pub fn var8(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u8(field)?;
        self.bounded(field, len.into(), max)
    }

    /// Reads bytes behind a two-byte length, at most `max` of them.
    pub fn var16(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u16(field)?;
        self.bounded(field, len.into(), max)
    }

    /// Reads bytes behind a four-byte length, at most `max` of them.
    pub fn var32(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32(field)?;
        self.bounded(field, usize::try_from(len).unwrap_or(usize::MAX), max)
    }

    /// How many bytes are left.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Succeeds only if every byte was consumed.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            count => Err(DecodeError::TrailingBytes { count }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_errors_are_precise() {
        let bytes = Writer::with_header(b"TEST", 1).finish();
        assert_eq!(Reader::new(&bytes).header("test", b"TEST", 1), Ok(()));
        assert_eq!(
            Reader::new(&bytes).header("test", b"TEST", 2),
            Err(DecodeError::UnsupportedVersion {
                format: "test",
                found: 1,
                supported: 2
            })
        );
        assert_eq!(
            Reader::new(b"TE").header("test", b"TEST", 1),
            Err(DecodeError::BadMagic { format: "test" })
        );
    }

    #[test]
    fn oversized_length_is_refused_before_reading() {
        let mut w = Writer::new();
        w.u32(u32::MAX);
        assert_eq!(
            Reader::new(w.as_slice()).var32("blob", 1024),
            Err(DecodeError::TooLong {
                field: "blob",
                len: u32::MAX as usize,
                max: 1024
            })
        );
    }

    proptest! {
        #[test]
        fn fields_round_trip(a in any::<u8>(), b in any::<u16>(), c in any::<u64>(),
                             v8 in proptest::collection::vec(any::<u8>(), 0..=255),
                             v32 in proptest::collection::vec(any::<u8>(), 0..1000)) {
            let mut w = Writer::with_header(b"PROP", 3);
            w.u8(a).u16(b).u64(c).var8(&v8).var32(&v32);
            let bytes = w.finish();
            let mut r = Reader::new(&bytes);
            r.header("prop", b"PROP", 3).unwrap();
            prop_assert_eq!(r.u8("a").unwrap(), a);
            prop_assert_eq!(r.u16("b").unwrap(), b);
            prop_assert_eq!(r.u64("c").unwrap(), c);
            prop_assert_eq!(r.var8("v8", 255).unwrap(), &v8[..]);
            prop_assert_eq!(r.var32("v32", 1000).unwrap(), &v32[..]);
            prop_assert!(r.finish().is_ok());
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            let _ = r.header("prop", b"PROP", 3).and_then(|_| r.var32("v", 16)).map(|_| ());
        }
    }
}
