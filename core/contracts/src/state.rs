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
/// Longest encoded state: what one sealed record holds, so a state always seals.
pub const MAX_STATE_LEN: usize = keyward_hierarchy::state::MAX_RECORD_LEN;

/// Bytes one entry adds to the encoding: `var16(key) || var32(value)`.
fn entry_len(key: &[u8], value: &[u8]) -> usize {
    2 + key.len() + 4 + value.len()
}

/// A contract's state.
///
/// Guarantees: keys and values are zeroized when dropped, replaced or deleted, and never
/// printed; the encoding never exceeds [`MAX_STATE_LEN`].
#[derive(Clone)]
pub struct State {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    /// `encode().len()`, kept so that `put` can refuse a state that would not seal.
    encoded_len: usize,
}

impl Default for State {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            encoded_len: 4,
        }
    }
}

impl State {
    /// The value at `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.get(key).map(Vec::as_slice)
    }

    /// Entries whose key starts with `prefix`, in key order.
    pub fn scan<'a>(&'a self, prefix: &'a [u8]) -> impl Iterator<Item = (&'a [u8], &'a [u8])> {
        self.entries
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
        let old = self.entries.get(&key).map(|v| entry_len(&key, v));
        if old.is_none() && self.entries.len() >= MAX_ENTRIES {
            return Err("state full");
        }
        let encoded_len = self.encoded_len - old.unwrap_or(0) + entry_len(&key, &value);
        if encoded_len > MAX_STATE_LEN {
            return Err("state full");
        }
        self.encoded_len = encoded_len;
        match self.entries.get_mut(&key) {
            Some(slot) => {
                std::mem::replace(slot, value).zeroize();
                drop(Zeroizing::new(key));
            }
            None => {
                self.entries.insert(key, value);
            }
        }
        Ok(())
    }

    /// Removes `key`; whether it was there.
    pub fn delete(&mut self, key: &[u8]) -> bool {
        let Some((mut k, mut v)) = self.entries.remove_entry(key) else {
            return false;
        };
        self.encoded_len -= entry_len(&k, &v);
        k.zeroize();
        v.zeroize();
        true
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `u32(n) || n × (var16(key) || var32(value))`, keys ascending. The caller holds secret
    /// bytes: wrap them in `Zeroizing` or seal them.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u32(u32::try_from(self.entries.len()).expect("bounded by MAX_ENTRIES"));
        for (k, v) in &self.entries {
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
                .entries
                .last_key_value()
                .is_some_and(|(last, _)| *last >= key)
            {
                return Err(DecodeError::Invalid {
                    field: "state",
                    reason: "keys not strictly ascending",
                });
            }
            state.encoded_len += entry_len(&key, &value);
            state.entries.insert(key, value);
        }
        if state.encoded_len > MAX_STATE_LEN {
            return Err(DecodeError::TooLong {
                field: "state",
                len: state.encoded_len,
                max: MAX_STATE_LEN,
            });
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
        for (mut k, mut v) in std::mem::take(&mut self.entries) {
            k.zeroize();
            v.zeroize();
        }
    }
}

impl core::fmt::Debug for State {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("State")
            .field("entries", &self.entries.len())
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
    fn a_state_too_large_to_seal_is_refused_and_unchanged() {
        let mut s = State::default();
        let value = vec![7u8; MAX_VALUE_LEN];
        let mut i = 0u32;
        let err = loop {
            match s.put(i.to_be_bytes().to_vec(), value.clone()) {
                Ok(()) => i += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(err, "state full");
        let encoded = s.encode();
        assert!(encoded.len() <= MAX_STATE_LEN);
        assert_eq!(s.encoded_len, encoded.len());
        // Replacing and deleting keep the count exact; a smaller value still fits.
        s.put(0u32.to_be_bytes().to_vec(), vec![1]).unwrap();
        assert!(s.delete(&1u32.to_be_bytes()));
        assert_eq!(s.encoded_len, s.encode().len());
        assert_eq!(State::decode(&s.encode()).unwrap(), s);
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
