//! A node's data directories. Everything in them is either sealed or public. The core's side
//! ([`NodeDir`]: the node's own data directory in-process, the enclave's state directory with the
//! isolated runner) holds
//!
//! ```text
//! sealing.key              the soft source's sealing key (0600; insecure) and its
//! sealing.counter          monotonic counter the sealed state must not fall behind,
//! sealing.tpm              or the TPM source's sealed key (its counter is in the TPM);
//!                          keyward_tpm::source
//! node.sealed              the core's whole key state, sealed (replaced atomically)
//! contracts/<id>.state     a worker's contract checkpoint: u64 epoch, u64 generation,
//!                          u64 version, then the state sealed under the contract's state key
//! ```
//!
//! and the host's side ([`Replies`], in the node's data directory) holds
//!
//! ```text
//! replies/<command>.reply  a worker's reply envelope to a command's sender
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use thiserror::Error;

use keyward_crypto::{ChainId, Envelope};
use keyward_enclave::{Attester, SealedBlob, Sealer};
use keyward_hierarchy::{ContractId, Epoch, Generation};
use keyward_host::counter::{CounterError, MonotonicCounter};
use keyward_ledger::{EntryHash, KeyContext};
use keyward_node::worker::Checkpoint;
use keyward_tpm::source::{Sealing, SealingSource, SourceError};

/// Largest sealed node state read.
const MAX_STATE_FILE: u64 = 16 << 20;

/// Why the data directory could not be used.
#[derive(Debug, Error)]
pub enum DirError {
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A file's contents are wrong.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The monotonic counter could not be advanced.
    #[error(transparent)]
    Counter(#[from] CounterError),
    /// The sealing source could not give the sealing key or the counter.
    #[error(transparent)]
    Sealing(#[from] SourceError),
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DirError {
    let path = path.to_owned();
    move |source| DirError::Io {
        action,
        path,
        source,
    }
}

/// An open node directory.
#[derive(Debug)]
pub struct NodeDir {
    root: PathBuf,
    /// Seals and opens the node's state for its ledger's chain and its core's measurement.
    pub sealer: Sealer,
    counter: Mutex<Counter>,
    attester: SourceAttester,
}

/// The sealing source's attester, until the node takes it ([`NodeDir::take_attester`]).
/// (In a mutex only so the directory can be shared between threads.)
struct SourceAttester(Mutex<Option<Box<dyn Attester>>>);

impl std::fmt::Debug for SourceAttester {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.0.lock().is_ok_and(|a| a.is_some());
        f.write_str(if held { "Some(tpm)" } else { "None" })
    }
}

/// The monotonic counter and the highest value any blob was sealed at: a save that failed
/// after sealing may have left its blob on disk, so its value is never used again.
#[derive(Debug)]
struct Counter {
    file: Box<dyn MonotonicCounter>,
    sealed_up_to: u64,
}

impl NodeDir {
    /// Opens (or creates) `root` for the chain `chain` and a core with `measurement`, with its
    /// sealing key and counter from `source`. A sealing key and a counter are made only for a
    /// directory with no sealed state: a state whose key is gone cannot be opened, and is not
    /// silently replaced, and a counter reset to zero would let an older state back in.
    ///
    /// # Errors
    /// [`DirError`].
    pub fn open(
        root: &Path,
        chain: ChainId,
        measurement: [u8; 32],
        source: &SealingSource,
    ) -> Result<Self, DirError> {
        Self::create(root)?;
        let sealing = source.open(root, Self::fresh(root))?;
        Ok(Self::with_sealing(root, chain, measurement, sealing))
    }

    /// Makes `root` and its `contracts` directory if they are missing.
    ///
    /// # Errors
    /// [`DirError::Io`].
    pub fn create(root: &Path) -> Result<(), DirError> {
        for dir in [root.to_owned(), root.join("contracts")] {
            fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        }
        Ok(())
    }

    /// Whether `root` holds no sealed state, so its sealing source may make a new key and
    /// counter.
    pub fn fresh(root: &Path) -> bool {
        !root.join("node.sealed").exists()
    }

    /// As [`NodeDir::open`], with the sealing source already opened on `root` (made by
    /// [`NodeDir::create`]): the enclave process opens it before it confines itself, and learns
    /// the chain only when its host connects.
    pub fn with_sealing(
        root: &Path,
        chain: ChainId,
        measurement: [u8; 32],
        sealing: Sealing,
    ) -> Self {
        let counter = sealing.counter;
        Self {
            root: root.to_owned(),
            sealer: Sealer::new(&sealing.key, chain, measurement),
            counter: Mutex::new(Counter {
                sealed_up_to: counter.value(),
                file: counter,
            }),
            attester: SourceAttester(Mutex::new(sealing.attester)),
        }
    }

    /// The sealing source's attester (a TPM's `tpm-quote` evidence), once; `None` for the soft
    /// source, whose node attests with its `dev` platform key.
    pub fn take_attester(&mut self) -> Option<Box<dyn Attester>> {
        self.attester
            .0
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
    }

    /// The monotonic counter's value: the least counter a sealed state must carry to be
    /// restored.
    pub fn counter(&self) -> u64 {
        self.counter.lock().expect("counter lock").file.value()
    }

    /// Records that `blob` was restored: advances the counter to the blob's value if a crash
    /// left it behind (the blob was stored, the counter not yet advanced).
    ///
    /// # Errors
    /// [`DirError::Counter`].
    pub fn restored(&self, blob: &SealedBlob) -> Result<(), DirError> {
        let mut counter = self.counter.lock().expect("counter lock");
        let at = blob.counter().unwrap_or(0).max(counter.file.value());
        counter.sealed_up_to = counter.sealed_up_to.max(at);
        Ok(counter.file.advance(at)?)
    }

    /// The sealed state's file.
    pub fn state_file(&self) -> PathBuf {
        self.root.join("node.sealed")
    }

    /// The sealed node state, if there is one.
    ///
    /// # Errors
    /// [`DirError`].
    pub fn load_state(&self) -> Result<Option<SealedBlob>, DirError> {
        let path = self.state_file();
        match fs::metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("read", &path)(e)),
            Ok(m) if m.len() > MAX_STATE_FILE => {
                return Err(DirError::Corrupt {
                    path,
                    reason: format!("larger than {MAX_STATE_FILE} bytes"),
                });
            }
            Ok(_) => {}
        }
        let bytes = fs::read(&path).map_err(io("read", &path))?;
        Ok(Some(SealedBlob::from_bytes(bytes)))
    }

    /// Replaces the sealed node state, durably: `seal` seals it at a counter value never used
    /// before, the blob is stored, then the counter advances to it, so no older state opens any
    /// more.
    ///
    /// # Errors
    /// [`DirError`]. The stored state is then the old one or the new one; either may open until
    /// the next successful save (the value sealed at is not reused, so the next save's blob
    /// supersedes both).
    pub fn save_state(&self, seal: impl FnOnce(u64) -> SealedBlob) -> Result<(), DirError> {
        let mut counter = self.counter.lock().expect("counter lock");
        let path = self.state_file();
        let next = counter
            .sealed_up_to
            .max(counter.file.value())
            .checked_add(1)
            .ok_or_else(|| DirError::Corrupt {
                path: path.clone(),
                reason: "the monotonic counter is exhausted".into(),
            })?;
        counter.sealed_up_to = next;
        let blob = seal(next);
        keyward_host::files::replace(&path, blob.as_bytes()).map_err(io("write", &path))?;
        Ok(counter.file.advance(next)?)
    }

    fn checkpoint_path(&self, contract: &ContractId) -> PathBuf {
        // Ids are `A-Z a-z 0-9 . _ -` and never `.` or `..` alone after the suffix: safe names.
        self.root
            .join("contracts")
            .join(format!("{}.state", contract.as_str()))
    }

    /// Stores a contract's checkpoint, replacing the previous one.
    ///
    /// # Errors
    /// [`DirError`].
    pub fn save_checkpoint(
        &self,
        contract: &ContractId,
        checkpoint: &Checkpoint,
    ) -> Result<(), DirError> {
        let mut bytes = Vec::with_capacity(24 + checkpoint.sealed.len());
        bytes.extend_from_slice(&checkpoint.context.epoch.0.to_be_bytes());
        bytes.extend_from_slice(&checkpoint.context.generation.0.to_be_bytes());
        bytes.extend_from_slice(&checkpoint.version.to_be_bytes());
        bytes.extend_from_slice(&checkpoint.sealed);
        let path = self.checkpoint_path(contract);
        keyward_host::files::replace(&path, &bytes).map_err(io("write", &path))
    }

    /// Every stored checkpoint that parses, by contract; the rest are skipped with a warning
    /// (the worker then rebuilds those contracts from the ledger).
    pub fn checkpoints(&self) -> Vec<(ContractId, Checkpoint)> {
        let dir = self.root.join("contracts");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let parsed = (|| {
                let name = path.file_name()?.to_str()?.strip_suffix(".state")?;
                let contract = ContractId::new(name).ok()?;
                let bytes = fs::read(&path).ok()?;
                let word = |i: usize| -> Option<u64> {
                    Some(u64::from_be_bytes(
                        bytes.get(8 * i..8 * i + 8)?.try_into().ok()?,
                    ))
                };
                let checkpoint = Checkpoint {
                    context: KeyContext {
                        epoch: Epoch(word(0)?),
                        generation: Generation(word(1)?),
                    },
                    version: word(2)?,
                    sealed: bytes.get(24..)?.to_vec(),
                };
                Some((contract, checkpoint))
            })();
            match parsed {
                Some(c) => found.push(c),
                None => tracing::warn!(path = %path.display(), "skipping an unreadable checkpoint"),
            }
        }
        found
    }
}

/// A worker's replies to users' commands, stored for `getReply`.
#[derive(Debug)]
pub struct Replies {
    dir: PathBuf,
}

impl Replies {
    /// Opens (or creates) `root/replies`.
    ///
    /// # Errors
    /// [`DirError::Io`].
    pub fn open(root: &Path) -> Result<Self, DirError> {
        let dir = root.join("replies");
        fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        Ok(Self { dir })
    }

    fn reply_path(&self, command: &EntryHash) -> PathBuf {
        self.dir
            .join(format!("{}.reply", keyward_crypto::hex::to_0x(&command.0)))
    }

    /// Stores the reply to `command`.
    ///
    /// # Errors
    /// [`DirError`].
    pub fn save_reply(&self, command: &EntryHash, reply: &Envelope) -> Result<(), DirError> {
        let path = self.reply_path(command);
        keyward_host::files::replace(&path, &reply.to_bytes()).map_err(io("write", &path))
    }

    /// The stored reply to `command`, if any.
    ///
    /// # Errors
    /// [`DirError`].
    pub fn reply(&self, command: &EntryHash) -> Result<Option<Vec<u8>>, DirError> {
        let path = self.reply_path(command);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("read", &path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyward_enclave::{SealError, SealPurpose};
    use rand_core::OsRng;

    const M: [u8; 32] = [0x4d; 32];

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("keyward-dir-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn chain() -> ChainId {
        ChainId::new("dir-test").unwrap()
    }

    fn save(dir: &NodeDir, plaintext: &[u8]) {
        dir.save_state(|counter| {
            dir.sealer
                .seal(SealPurpose::NodeState, counter, plaintext, &mut OsRng)
                .unwrap()
        })
        .unwrap();
    }

    fn open(dir: &NodeDir) -> Result<Vec<u8>, SealError> {
        let blob = dir.load_state().unwrap().unwrap();
        let opened = dir
            .sealer
            .open(SealPurpose::NodeState, &blob, dir.counter())?;
        dir.restored(&blob).unwrap();
        Ok(opened.plaintext.to_vec())
    }

    #[test]
    fn an_older_state_put_back_is_refused_as_rolled_back() {
        let root = temp("rollback");
        let dir = NodeDir::open(&root, chain(), M, &SealingSource::Soft).unwrap();
        save(&dir, b"one");
        let old = fs::read(root.join("node.sealed")).unwrap();
        save(&dir, b"two");
        assert_eq!(dir.counter(), 2);
        drop(dir);
        fs::write(root.join("node.sealed"), &old).unwrap();
        let dir = NodeDir::open(&root, chain(), M, &SealingSource::Soft).unwrap();
        assert_eq!(
            open(&dir),
            Err(SealError::RolledBack {
                found: 1,
                minimum: 2
            })
        );
        // Another measurement's core cannot open the current state either.
        save(&dir, b"three");
        let other = NodeDir::open(&root, chain(), [0x4e; 32], &SealingSource::Soft).unwrap();
        assert!(matches!(
            open(&other),
            Err(SealError::WrongMeasurement { .. })
        ));
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_state_stored_before_a_crash_advanced_the_counter_still_opens_and_catches_it_up() {
        let root = temp("crash");
        let dir = NodeDir::open(&root, chain(), M, &SealingSource::Soft).unwrap();
        save(&dir, b"one");
        // The blob of the next save is stored, then the process dies before the counter moves.
        let ahead = dir
            .sealer
            .seal(SealPurpose::NodeState, 2, b"two", &mut OsRng)
            .unwrap();
        fs::write(root.join("node.sealed"), ahead.as_bytes()).unwrap();
        drop(dir);
        let dir = NodeDir::open(&root, chain(), M, &SealingSource::Soft).unwrap();
        assert_eq!(dir.counter(), 1);
        assert_eq!(open(&dir).as_deref(), Ok(&b"two"[..]));
        assert_eq!(dir.counter(), 2, "restoring caught the counter up");
        save(&dir, b"three");
        assert_eq!(dir.counter(), 3);
        let _ = fs::remove_dir_all(&root);
    }

    /// With a TPM, the counter is not in the directory: the whole directory put back from a
    /// copy (what the soft source cannot refuse) is refused.
    #[cfg(feature = "tpm")]
    #[test]
    fn with_a_tpm_a_whole_directory_put_back_is_refused() {
        use keyward_tpm::source::TpmSource;
        use keyward_tpm::swtpm::Swtpm;

        let state = temp("swtpm");
        let Some(swtpm) = Swtpm::start_for_tests(&state) else {
            return;
        };
        let source = SealingSource::Tpm(TpmSource {
            tcti: swtpm.tcti(),
            pcrs: vec![16],
            nv_index: 0x0150_0020,
        });
        let root = temp("tpm");
        let dir = NodeDir::open(&root, chain(), M, &source).unwrap();
        save(&dir, b"one");
        drop(dir);
        let copy = temp("tpm-copy");
        fs::create_dir_all(&copy).unwrap();
        for file in ["node.sealed", "sealing.tpm"] {
            fs::copy(root.join(file), copy.join(file)).unwrap();
        }
        let dir = NodeDir::open(&root, chain(), M, &source).unwrap();
        save(&dir, b"two");
        drop(dir);
        fs::remove_dir_all(&root).unwrap();
        fs::rename(&copy, &root).unwrap();
        let dir = NodeDir::open(&root, chain(), M, &source).unwrap();
        assert!(matches!(open(&dir), Err(SealError::RolledBack { .. })));
        drop(dir);
        drop(swtpm);
        let _ = fs::remove_dir_all(&root);
        let _ = fs::remove_dir_all(&state);
    }

    #[test]
    fn a_missing_counter_beside_the_sealing_key_is_not_reset() {
        let root = temp("missing");
        let dir = NodeDir::open(&root, chain(), M, &SealingSource::Soft).unwrap();
        save(&dir, b"one");
        let old = fs::read(root.join("node.sealed")).unwrap();
        save(&dir, b"two");
        drop(dir);
        // Removing the counter, with or without the current state, does not reset it.
        fs::remove_file(root.join("sealing.counter")).unwrap();
        fs::remove_file(root.join("node.sealed")).unwrap();
        let e = NodeDir::open(&root, chain(), M, &SealingSource::Soft).unwrap_err();
        assert!(e.to_string().contains("counter is missing"), "{e}");
        fs::write(root.join("node.sealed"), old).unwrap();
        assert!(NodeDir::open(&root, chain(), M, &SealingSource::Soft).is_err());
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn a_failed_save_never_lets_its_counter_value_be_used_twice() {
        let root = temp("failed");
        let dir = NodeDir::open(&root, chain(), M, &SealingSource::Soft).unwrap();
        save(&dir, b"one");
        // The state file cannot be replaced (a directory stands in its way): the save fails
        // after sealing at 2.
        fs::remove_file(root.join("node.sealed")).unwrap();
        fs::create_dir(root.join("node.sealed")).unwrap();
        let mut sealed_at = 0;
        let failed = dir.save_state(|counter| {
            sealed_at = counter;
            dir.sealer
                .seal(SealPurpose::NodeState, counter, b"lost", &mut OsRng)
                .unwrap()
        });
        assert!(failed.is_err());
        assert_eq!((sealed_at, dir.counter()), (2, 1));
        fs::remove_dir(root.join("node.sealed")).unwrap();
        save(&dir, b"three");
        assert_eq!(
            dir.counter(),
            3,
            "the next save skips the value the failed one used"
        );
        assert_eq!(open(&dir).as_deref(), Ok(&b"three"[..]));
        let _ = fs::remove_dir_all(&root);
    }
}
