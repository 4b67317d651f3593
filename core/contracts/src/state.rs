//! A contract's state: an ordered map of byte strings with one canonical encoding, so that every
//! worker that ran the same calls holds byte-identical state.

use std::collections::BTreeMap;

use keyward_crypto::{DecodeError, Reader, Writer};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// Longest key.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest value.
pub const MAX_VALUE_LEN: usize = 64 * 1024;
/// Most entries.
pub const MAX_ENTRIES: usize = 65_536;

/// A contract's state.
///
/// Guarantees: keys and values are zeroized on drop and never printed.
#[derive(Clone, Default)]
pub struct State(BTreeMap<Vec<u8>, Vec<u8>>);

impl State {
    /// The value at `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.0.get(key).map(Vec::as_slice)
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn scan<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.0
            .range(prefix.to_vec()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_slice(), v.as_slice()))
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// `"key too long"`, `"value too long"` or `"state full"`; the state is unchanged.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), &'static str> {
        if key.len() > MAX_KEY_LEN {
            return Err("key too long");
        }
        if value.len() > MAX_VALUE_LEN {
            return Err("value too long");
        }
        if self.0.len() >= MAX_ENTRIES && !self.0.contains_key(&key) {
            return Err("state full");
        }
        if let Some(mut old) = self.0.insert(key, value) {
            old.zeroize();
        }
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        self.0.remove(key).map(|mut v| v.zeroize()).is_some()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `u32(n) || n × (var16(key) || var32(value))`, keys ascending. The caller holds secret
    /// bytes: wrap them in `Zeroizing` or seal them.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(u32::try_from(self.0.len()).expect("bounded by MAX_ENTRIES"));
        for (k, v) in &self.0 {
            w.var16(k).var32(v);
        }
        w.finish()
    }

    /// Decodes [`State::encode`]: keys strictly ascending, nothing after.
    ///
    /// # Errors
    /// A [`DecodeError`] naming the field.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let n = r.u32("entry count")? as usize;
        if n > MAX_ENTRIES {
            return Err(DecodeError::TooLong {
                field: "state",
                len: n,
                max: MAX_ENTRIES,
            });
        }
        let mut state = Self::default();
        for _ in 0..n {
            let key = r.var16("state key", MAX_KEY_LEN)?.to_vec();
            let value = r.var32("state value", MAX_VALUE_LEN)?.to_vec();
            if state
                .0
                .last_key_value()
                .is_some_and(|(last, _)| *last >= key)
            {
                return Err(DecodeError::Invalid {
                    field: "state",
                    reason: "keys not strictly ascending",
                });
            }
            state.0.insert(key, value);
        }
        r.finish()?;
        Ok(state)
    }
}

/// Compares the encodings in constant time.
impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (
            Zeroizing::new(self.encode()),
            Zeroizing::new(other.encode()),
        );
        bool::from(a.as_slice().ct_eq(b.as_slice()))
    }
}

impl Eq for State {}

impl Drop for State {
    fn drop(&mut self) {
        for (mut k, mut v) in std::mem::take(&mut self.0) {
            k.zeroize();
            v.zeroize();
        }
    }
}

impl core::fmt::Debug for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("State")
            .field("entries", &self.0.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn decoding_never_panics_and_is_canonical(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            if let Ok(state) = State::decode(&bytes) {
                prop_assert_eq!(state.encode(), bytes);
            }
        }

        #[test]
        fn any_state_round_trips(entries in proptest::collection::btree_map(
            proptest::collection::vec(any::<u8>(), 0..8),
            proptest::collection::vec(any::<u8>(), 0..8),
            0..8,
        )) {
            let mut state = State::default();
            for (k, v) in entries {
                state.put(k, v).unwrap();
            }
            prop_assert_eq!(State::decode(&state.encode()).unwrap(), state);
        }
    }

    #[test]
    fn scan_stops_at_the_prefix() {
        let mut s = State::default();
        for k in [&b"a/1"[..], b"a/2", b"b/1", b"a"] {
            s.put(k.to_vec(), k.to_vec()).unwrap();
        }
        let keys: Vec<_> = s.scan(b"a/").map(|(k, _)| k.to_vec()).collect();
        assert_eq!(keys, vec![b"a/1".to_vec(), b"a/2".to_vec()]);
        assert_eq!(format!("{s:?}"), "State { entries: 4, .. }");
    }
}
