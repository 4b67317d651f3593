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
//! ```text
//! file = "KWCN" || 0x01 || u64(value)      13 bytes, big-endian
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use thiserror::Error;

const MAGIC: &[u8; 4] = b"KWCN";
const VERSION: u8 = 1;
const LEN: usize = 13;

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

/// A monotonic counter kept in a 0600 file, written atomically and durably.
#[derive(Debug)]
pub struct FileCounter {
    path: PathBuf,
    value: u64,
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
        match fs::read(path) {
            Ok(bytes) => {
                if bytes.len() != LEN {
                    return Err(corrupt("not 13 bytes"));
                }
                if &bytes[..4] != MAGIC || bytes[4] != VERSION {
                    return Err(corrupt("not a keyward counter file of version 1"));
                }
                let value = u64::from_be_bytes(bytes[5..].try_into().expect("8 bytes"));
                Ok(Self {
                    path: path.to_owned(),
                    value,
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                crate::files::create_new(path, &encode(0)).map_err(io)?;
                Ok(Self {
                    path: path.to_owned(),
                    value: 0,
                })
            }
            Err(e) => Err(io(e)),
        }
    }
}

impl MonotonicCounter for FileCounter {
    fn value(&self) -> u64 {
        self.value
    }

    /// [`CounterError::Io`] leaves the counter at its old value (in memory and, but for a failed
    /// directory sync, on disk).
    fn advance(&mut self, to: u64) -> Result<(), CounterError> {
        if to < self.value {
            return Err(CounterError::Backwards {
                counter: self.path.display().to_string(),
                current: self.value,
                requested: to,
            });
        }
        if to > self.value {
            crate::files::replace(&self.path, &encode(to)).map_err(|source| CounterError::Io {
                path: self.path.clone(),
                source,
            })?;
            self.value = to;
        }
        Ok(())
    }
}

fn encode(value: u64) -> [u8; LEN] {
    let mut bytes = [0u8; LEN];
    bytes[..4].copy_from_slice(MAGIC);
    bytes[4] = VERSION;
    bytes[5..].copy_from_slice(&value.to_be_bytes());
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
    fn a_damaged_file_is_corrupt_not_zero() {
        let d = dir("bad");
        for (name, bytes) in [
            ("short", b"KWCN\x01".to_vec()),
            ("magic", b"XXXX\x01\0\0\0\0\0\0\0\x07".to_vec()),
            ("version", b"KWCN\x02\0\0\0\0\0\0\0\x07".to_vec()),
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
