//! The soft monotonic counter: a file holding one number that only goes up.
//!
//! A sealed blob carries the counter value it was sealed at, and the core refuses a blob sealed
//! below the counter's current value (`keyward_enclave::seal`). The host seals at `value() + 1`,
//! stores the blob durably, then [`FileCounter::advance`]s; after a crash between the two, the
//! blob is one ahead, still opens (as would the one before it, until the host catches up), and
//! the host advances to it on restore.
//!
//! **What the file protects against:** an older sealed blob put back on its own (from a backup,
//! by an operator or a script). **What it does not:** a host that restores the counter file
//! along with the blob, or edits it. That takes a counter outside the host's reach: a TPM NV
//! counter.
//!
//! An advance is one in-place write and one `fdatasync` (the vote signer advances once per
//! commit, so this is on its hot path): the file has two slots, each in its own 4 KiB page (so
//! neither page cache writeback nor a 4 KiB-sector disk rewrites one slot with the other), and
//! an advance overwrites the slot that does not hold the current value. A write torn by a crash
//! leaves that slot failing its check and the other slot intact, so the counter reads as the
//! last value whose advance completed.
//!
//! ```text
//! file  = slot(A) || zeros(4096 - 21) || slot(B) || zeros(4096 - 21)         8192 bytes
//! slot  = "KWCN" || 0x02 || u64(value) || SHA-256(the 13 bytes before)[..8]  21 bytes
//! value = the larger value of the slots that pass their check
//! ```
//!
//! Earlier files are read as they are: version 2 files of 1024 bytes (slots 512 bytes apart,
//! kept in that layout), and version 1 files (`"KWCN" || 0x01 || u64(value)`, 13 bytes),
//! rewritten in the current layout by their first advance.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;

const MAGIC: &[u8; 4] = b"KWCN";
const VERSION: u8 = 2;
const SLOT: usize = 21;
/// How far apart the slots are.
const PAGE: usize = 4096;
const LEN: usize = 2 * PAGE;
/// The first version 2 files' length: slots 512 bytes apart.
const NARROW_LEN: usize = 1024;
const V1_LEN: usize = 13;

/// Why the counter could not be read or advanced.
#[derive(Debug, Error)]
pub enum CounterError {
    /// Reading, writing or syncing the file failed.
    #[error("monotonic counter {path}: {source}")]
    Io {
        /// The counter file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a counter.
    #[error("monotonic counter {path} is corrupt: {reason}")]
    Corrupt {
        /// The counter file.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// A counter kept in a device (a TPM) failed.
    #[error("monotonic counter {counter}: {reason}")]
    Device {
        /// The counter, for example `TPM NV index 0x01504b57`.
        counter: String,
        /// What failed.
        reason: String,
    },
    /// Asked to go down.
    #[error("monotonic counter {counter} is at {current}; it cannot go back to {requested}")]
    Backwards {
        /// The counter (its file, or its device and index).
        counter: String,
        /// Its value.
        current: u64,
        /// The value asked for.
        requested: u64,
    },
}

/// A counter that only goes up, kept where the sealed state's host cannot wind it back: the soft
/// [`FileCounter`], or a TPM NV counter (`keyward_tpm`).
pub trait MonotonicCounter: std::fmt::Debug + Send {
    /// The counter's value.
    fn value(&self) -> u64;

    /// Raises the counter to `to`, durably; nothing to do if it is there already.
    ///
    /// # Errors
    /// [`CounterError::Backwards`] below the current value. After any other error, [`value`]
    /// says where the counter is (a device may have taken some increments before failing), so a
    /// retry counts from there.
    ///
    /// [`value`]: MonotonicCounter::value
    fn advance(&mut self, to: u64) -> Result<(), CounterError>;
}

/// A monotonic counter kept in a 0600 file (module docs: two slots, advanced in place).
#[derive(Debug)]
pub struct FileCounter {
    path: PathBuf,
    /// The open file, or `None` while it is still a version 1 file.
    file: Option<fs::File>,
    value: u64,
    /// The slot (0 or 1) the next advance overwrites: the one not holding `value`.
    next: usize,
    /// How far apart the slots are: half the file's length.
    stride: usize,
}

impl FileCounter {
    /// Opens the counter at `path`, or creates it at 0 when `create` is true and there is no
    /// file. A missing counter is not created silently where a sealed state already exists: the
    /// caller passes `create = false` then, since a counter reset to 0 would accept any blob.
    ///
    /// # Errors
    /// [`CounterError::Io`] (`NotFound` if the file is missing and `create` is false) or
    /// [`CounterError::Corrupt`].
    pub fn open(path: &Path, create: bool) -> Result<Self, CounterError> {
        let io = |source| CounterError::Io {
            path: path.to_owned(),
            source,
        };
        let corrupt = |reason| CounterError::Corrupt {
            path: path.to_owned(),
            reason,
        };
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                crate::files::create_new(path, &image(0)).map_err(io)?;
                image(0).to_vec()
            }
            Err(e) => return Err(io(e)),
        };
        let stride = bytes.len() / 2;
        let (value, next, file) = match bytes.len() {
            V1_LEN => {
                if &bytes[..4] != MAGIC || bytes[4] != 1 {
                    return Err(corrupt("not a keyward counter file"));
                }
                let value = u64::from_be_bytes(bytes[5..].try_into().expect("8 bytes"));
                (value, 0, None)
            }
            LEN | NARROW_LEN => {
                let slots = [
                    decode_slot(&bytes[..SLOT]),
                    decode_slot(&bytes[stride..][..SLOT]),
                ];
                let (value, next) = match slots {
                    [Some(a), Some(b)] if b > a => (b, 0),
                    [Some(a), _] => (a, 1),
                    [None, Some(b)] => (b, 0),
                    [None, None] => return Err(corrupt("neither slot holds a counter value")),
                };
                let file = fs::OpenOptions::new().write(true).open(path).map_err(io)?;
                (value, next, Some(file))
            }
            _ => return Err(corrupt("not a keyward counter file (wrong length)")),
        };
        Ok(Self {
            path: path.to_owned(),
            file,
            value,
            next,
            stride,
        })
    }

    /// Writes `to` durably: into the free slot, or (for a version 1 file) as a new file.
    fn write(&mut self, to: u64) -> std::io::Result<()> {
        match &self.file {
            Some(file) => {
                file.write_all_at(&slot(to), (self.next * self.stride) as u64)?;
                file.sync_data()?;
                self.next = 1 - self.next;
            }
            None => {
                crate::files::replace(&self.path, &image(to))?;
                self.file = Some(fs::OpenOptions::new().write(true).open(&self.path)?);
                self.next = 1;
                self.stride = PAGE;
            }
        }
        Ok(())
    }
}

impl MonotonicCounter for FileCounter {
    fn value(&self) -> u64 {
        self.value
    }

    /// [`CounterError::Io`] leaves the counter at its old value: in memory, and on disk but for
    /// a write that completed and then failed to sync (the next advance writes the same slot).
    fn advance(&mut self, to: u64) -> Result<(), CounterError> {
        if to < self.value {
            return Err(CounterError::Backwards {
                counter: self.path.display().to_string(),
                current: self.value,
                requested: to,
            });
        }
        if to > self.value {
            self.write(to).map_err(|source| CounterError::Io {
                path: self.path.clone(),
                source,
            })?;
            self.value = to;
        }
        Ok(())
    }
}

fn slot(value: u64) -> [u8; SLOT] {
    let mut bytes = [0u8; SLOT];
    bytes[..4].copy_from_slice(MAGIC);
    bytes[4] = VERSION;
    bytes[5..13].copy_from_slice(&value.to_be_bytes());
    let check = Sha256::digest(&bytes[..13]);
    bytes[13..].copy_from_slice(&check[..8]);
    bytes
}

fn decode_slot(bytes: &[u8]) -> Option<u64> {
    let value = u64::from_be_bytes(bytes.get(5..13)?.try_into().ok()?);
    (bytes == slot(value).as_slice()).then_some(value)
}

/// A whole file with both slots at `value`.
fn image(value: u64) -> [u8; LEN] {
    let mut bytes = [0u8; LEN];
    bytes[..SLOT].copy_from_slice(&slot(value));
    bytes[PAGE..][..SLOT].copy_from_slice(&slot(value));
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("keyward-counter-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn it_only_goes_up_and_survives_reopening() {
        let path = dir("up").join("counter");
        assert!(matches!(
            FileCounter::open(&path, false),
            Err(CounterError::Io { ref source, .. }) if source.kind() == std::io::ErrorKind::NotFound
        ));
        let mut c = FileCounter::open(&path, true).unwrap();
        assert_eq!(c.value(), 0);
        c.advance(5).unwrap();
        c.advance(5).unwrap();
        assert!(matches!(
            c.advance(4),
            Err(CounterError::Backwards {
                current: 5,
                requested: 4,
                ..
            })
        ));
        let reopened = FileCounter::open(&path, true).unwrap();
        assert_eq!(reopened.value(), 5);
    }

    #[test]
    fn advances_alternate_slots_and_a_torn_slot_falls_back() {
        let path = dir("slots").join("counter");
        let mut c = FileCounter::open(&path, true).unwrap();
        for to in 1..=4 {
            c.advance(to).unwrap();
            assert_eq!(FileCounter::open(&path, false).unwrap().value(), to);
        }
        // A new file holds 0 in both slots; 1 went to slot B, 2 to A, 3 to B, 4 to A. Tear
        // slot A, and the counter reads 3.
        let mut bytes = fs::read(&path).unwrap();
        assert_eq!(decode_slot(&bytes[..SLOT]), Some(4));
        bytes[7] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let mut c = FileCounter::open(&path, false).unwrap();
        assert_eq!(c.value(), 3);
        // The next advance overwrites the torn slot, never the good one.
        c.advance(9).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(decode_slot(&bytes[PAGE..][..SLOT]), Some(3));
        assert_eq!(FileCounter::open(&path, false).unwrap().value(), 9);
    }

    #[test]
    fn a_version_1_file_is_read_and_rewritten_by_its_first_advance() {
        let path = dir("v1").join("counter");
        fs::write(&path, b"KWCN\x01\0\0\0\0\0\0\0\x07").unwrap();
        let mut c = FileCounter::open(&path, false).unwrap();
        assert_eq!(c.value(), 7);
        c.advance(8).unwrap();
        c.advance(9).unwrap();
        assert_eq!(fs::read(&path).unwrap().len(), LEN);
        assert_eq!(FileCounter::open(&path, false).unwrap().value(), 9);
    }

    #[test]
    fn a_narrow_version_2_file_is_read_and_advanced_in_its_own_layout() {
        let path = dir("narrow").join("counter");
        let mut bytes = [0u8; NARROW_LEN];
        bytes[..SLOT].copy_from_slice(&slot(5));
        bytes[NARROW_LEN / 2..][..SLOT].copy_from_slice(&slot(6));
        fs::write(&path, bytes).unwrap();
        let mut c = FileCounter::open(&path, false).unwrap();
        assert_eq!(c.value(), 6);
        c.advance(7).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), NARROW_LEN);
        assert_eq!(decode_slot(&bytes[..SLOT]), Some(7));
        assert_eq!(FileCounter::open(&path, false).unwrap().value(), 7);
    }

    #[test]
    fn a_damaged_file_is_corrupt_not_zero() {
        let d = dir("bad");
        for (name, bytes) in [
            ("short", b"KWCN\x01".to_vec()),
            ("magic", b"XXXX\x01\0\0\0\0\0\0\0\x07".to_vec()),
            ("version", b"KWCN\x02\0\0\0\0\0\0\0\x07".to_vec()),
            ("both slots torn", {
                let mut bytes = image(7).to_vec();
                bytes[20] ^= 1;
                bytes[PAGE + 20] ^= 1;
                bytes
            }),
            ("long", [image(7).as_slice(), &[0]].concat()),
        ] {
            let path = d.join(name);
            fs::write(&path, bytes).unwrap();
            assert!(
                matches!(
                    FileCounter::open(&path, true),
                    Err(CounterError::Corrupt { .. })
                ),
                "{name}"
            );
        }
    }
}
