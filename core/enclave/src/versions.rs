//! Pinning many separately sealed blobs with one: a sealed manifest of their versions.
//!
//! A store that seals many items one by one (the vote signer's validator records) rewrites only
//! the items a commit changed, so no counter value can say which version of an item is current.
//! Instead every commit also writes one manifest, sealed at that commit's counter value, holding
//! a keyed set hash over every item's name and sealed bytes. The monotonic counter pins the
//! manifest; the manifest pins every item by content: an item put back from an older commit
//! (even one made at the same counter value), an item removed or an item added changes the set
//! hash, and the restore is refused.
//!
//! ```text
//! tag(name, blob) = HMAC-SHA256(version key, var8(purpose) || var16(name) || var32(sealed blob))
//! version key     = HKDF-SHA256(salt = "", ikm = sealing key,
//!                               info = var16("keyward/v2/seal-version") || measurement)
//! digest          = XOR of the tags of every item (all zeros for none)
//! manifest plaintext = "KWMF" || 0x01 || var8(purpose of the items) || u64(count) || digest(32)
//! manifest           = sealed blob, purpose "manifest", counter = the commit's counter value
//! ```
//!
//! The tags are keyed on purpose. With public hashes, anyone holding a few hundred old versions
//! could pick one version per item whose hashes XOR to the current digest (linear algebra over
//! GF(2)); without the key, the tags are unpredictable and no such choice can be computed. The
//! XOR makes a commit's update cost two tags, whatever the number of items.

use core::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use keyward_crypto::{Reader, Writer};

use crate::seal::{SealError, SealPurpose, SealedBlob, Sealer};

const MAGIC: &[u8; 4] = b"KWMF";
const VERSION: u8 = 1;
const FORMAT: &str = "keyward sealed manifest";

/// The keyed tag of one item's version: what a [`VersionSet`] accumulates.
#[derive(Clone, Copy)]
pub struct VersionTag([u8; 32]);

impl fmt::Debug for VersionTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VersionTag(..)")
    }
}

/// The versions of a set of items sealed for one purpose: how many there are and the XOR of their
/// [`VersionTag`]s. Two sets are equal only if they hold the same `(name, sealed blob)` pairs (up
/// to a 2^-256 chance, for anyone without the sealing key).
#[derive(Clone)]
pub struct VersionSet {
    purpose: SealPurpose,
    count: u64,
    digest: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for VersionSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionSet")
            .field("purpose", &self.purpose)
            .field("count", &self.count)
            .finish_non_exhaustive()
    }
}

impl VersionSet {
    /// An empty set of items sealed for `purpose`.
    pub fn new(purpose: SealPurpose) -> Self {
        Self {
            purpose,
            count: 0,
            digest: Zeroizing::new([0; 32]),
        }
    }

    /// How many items the set holds.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether the set holds no item.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Adds an item's version.
    pub fn insert(&mut self, tag: VersionTag) {
        self.xor(&tag);
        self.count += 1;
    }

    /// Replaces an item's version `old` (which the set holds) by `new`.
    pub fn replace(&mut self, old: VersionTag, new: VersionTag) {
        self.xor(&old);
        self.xor(&new);
    }

    fn xor(&mut self, tag: &VersionTag) {
        for (d, t) in self.digest.iter_mut().zip(tag.0) {
            *d ^= t;
        }
    }

    /// Whether both sets hold the same versions of the same items, in constant time.
    pub fn matches(&self, other: &Self) -> bool {
        self.purpose == other.purpose
            && self.count == other.count
            && bool::from(self.digest.ct_eq(&other.digest[..]))
    }
}

impl Sealer {
    /// The tag of item `name` whose sealed blob (for `purpose`) is `blob`.
    pub fn version_tag(&self, purpose: SealPurpose, name: &[u8], blob: &[u8]) -> VersionTag {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.version_key.as_ref())
            .expect("HMAC takes any key length");
        let mut input = Writer::new();
        input.var8(purpose.label().as_bytes()).var16(name);
        mac.update(input.as_slice());
        let len = u32::try_from(blob.len()).expect("a sealed blob is below 4 GiB");
        mac.update(&len.to_be_bytes());
        mac.update(blob);
        VersionTag(mac.finalize().into_bytes().into())
    }

    /// Seals `set` as the manifest of the commit made at counter value `counter`. The same set
    /// and counter always give the same blob.
    pub fn seal_manifest(&self, set: &VersionSet, counter: u64) -> SealedBlob {
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.var8(set.purpose.label().as_bytes())
            .u64(set.count)
            .raw(set.digest.as_ref());
        let plain = Zeroizing::new(w.finish());
        self.seal_synthetic(SealPurpose::Manifest, counter, &plain)
            .expect("a manifest is far below the sealing limit")
    }

    /// Opens a manifest of items sealed for `purpose`, at a counter value of at least `minimum`
    /// (the monotonic counter's), and returns the set it pins and the counter it was sealed at.
    ///
    /// # Errors
    /// Those of [`Sealer::open`]; [`SealError::WrongPurpose`] for a manifest of other items.
    pub fn open_manifest(
        &self,
        purpose: SealPurpose,
        blob: &SealedBlob,
        minimum: u64,
    ) -> Result<(VersionSet, u64), SealError> {
        let opened = self.open(SealPurpose::Manifest, blob, minimum)?;
        let mut r = Reader::new(&opened.plaintext);
        r.header(FORMAT, MAGIC, VERSION)?;
        if r.var8("purpose", 32)? != purpose.label().as_bytes() {
            return Err(SealError::WrongPurpose {
                expected: purpose,
                found: "a manifest of other items".into(),
            });
        }
        let count = r.u64("count")?;
        let digest = Zeroizing::new(r.array::<32>("digest")?);
        r.finish()?;
        Ok((
            VersionSet {
                purpose,
                count,
                digest,
            },
            opened.counter,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SealingKey;
    use keyward_crypto::ChainId;
    use rand::{SeedableRng, rngs::StdRng};

    fn sealer(seed: u64) -> Sealer {
        let key = SealingKey::generate(&mut StdRng::seed_from_u64(seed));
        Sealer::new(&key, ChainId::new("test").unwrap(), [7; 32])
    }

    fn set_of(sealer: &Sealer, items: &[(&[u8], &[u8])]) -> VersionSet {
        let mut set = VersionSet::new(SealPurpose::ValidatorRecord);
        for (name, blob) in items {
            set.insert(sealer.version_tag(SealPurpose::ValidatorRecord, name, blob));
        }
        set
    }

    #[test]
    fn a_set_matches_only_the_same_versions_in_any_order() {
        let s = sealer(1);
        let current = set_of(&s, &[(b"a", b"v3"), (b"b", b"v5"), (b"c", b"v5")]);
        assert!(current.matches(&set_of(&s, &[(b"c", b"v5"), (b"a", b"v3"), (b"b", b"v5")])));
        // One item from an older commit, one missing, one added, names swapped.
        for other in [
            set_of(&s, &[(b"a", b"v2"), (b"b", b"v5"), (b"c", b"v5")]),
            set_of(&s, &[(b"a", b"v3"), (b"b", b"v5")]),
            set_of(
                &s,
                &[(b"a", b"v3"), (b"b", b"v5"), (b"c", b"v5"), (b"d", b"v1")],
            ),
            set_of(&s, &[(b"a", b"v5"), (b"b", b"v3"), (b"c", b"v5")]),
        ] {
            assert!(!current.matches(&other));
        }
        // Another sealing key tags differently.
        assert!(!current.matches(&set_of(
            &sealer(2),
            &[(b"a", b"v3"), (b"b", b"v5"), (b"c", b"v5")]
        )));
    }

    #[test]
    fn replace_is_the_same_as_building_the_new_set() {
        let s = sealer(1);
        let mut set = set_of(&s, &[(b"a", b"v3"), (b"b", b"v5")]);
        set.replace(
            s.version_tag(SealPurpose::ValidatorRecord, b"a", b"v3"),
            s.version_tag(SealPurpose::ValidatorRecord, b"a", b"v6"),
        );
        assert!(set.matches(&set_of(&s, &[(b"a", b"v6"), (b"b", b"v5")])));
    }

    #[test]
    fn a_manifest_round_trips_and_is_pinned_by_the_counter() {
        let s = sealer(1);
        let set = set_of(&s, &[(b"a", b"v3"), (b"b", b"v9")]);
        let blob = s.seal_manifest(&set, 9);
        assert_eq!(blob.as_bytes(), s.seal_manifest(&set, 9).as_bytes());
        let (opened, counter) = s
            .open_manifest(SealPurpose::ValidatorRecord, &blob, 9)
            .unwrap();
        assert!(opened.matches(&set));
        assert_eq!(counter, 9);
        assert_eq!(
            s.open_manifest(SealPurpose::ValidatorRecord, &blob, 10)
                .unwrap_err(),
            SealError::RolledBack {
                found: 9,
                minimum: 10
            }
        );
        assert!(matches!(
            s.open_manifest(SealPurpose::NodeState, &blob, 0),
            Err(SealError::WrongPurpose { .. })
        ));
        let mut tampered = blob.into_bytes();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(
            s.open_manifest(
                SealPurpose::ValidatorRecord,
                &SealedBlob::from_bytes(tampered),
                0
            )
            .unwrap_err(),
            SealError::Tampered
        );
    }
}
