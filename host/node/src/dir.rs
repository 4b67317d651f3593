//! A node's data directory. Everything in it is either sealed or public:
//!
//! ```text
//! sealing.key              the dev sealing key (0600; a TEE derives it instead)
//! node.sealed              the core's whole key state, sealed (replaced atomically)
//! contracts/<id>.state     a worker's contract checkpoint: u64 epoch, u64 generation,
//!                          u64 version, then the state sealed under the contract's state key
//! replies/<command>.reply  a worker's reply envelope to a command's sender
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use thiserror::Error;

use keyward_crypto::{ChainId, Envelope, SecretBytes};
use keyward_enclave::{SealedBlob, Sealer, SoftSealingKey};
use keyward_hierarchy::{ContractId, Epoch, Generation};
use keyward_ledger::{EntryHash, KeyContext};
use keyward_node::worker::Checkpoint;

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
    /// Seals and opens the node's state for its ledger's chain.
    pub sealer: Sealer,
}

impl NodeDir {
    /// Opens (or creates) `root` for the chain `chain`. A sealing key is made only for a
    /// directory with no sealed state: a state whose key is gone cannot be opened, and is not
    /// silently replaced.
    ///
    /// # Errors
    /// [`DirError`].
    pub fn open(root: &Path, chain: ChainId) -> Result<Self, DirError> {
        for dir in [
            root.to_owned(),
            root.join("contracts"),
            root.join("replies"),
        ] {
            fs::create_dir_all(&dir).map_err(io("create", &dir))?;
        }
        let key_path = root.join("sealing.key");
        let key = match fs::read(&key_path) {
            Ok(bytes) => {
                let bytes = zeroize::Zeroizing::new(bytes);
                SecretBytes::<32>::from_slice(&bytes).ok_or_else(|| DirError::Corrupt {
                    path: key_path.clone(),
                    reason: "the sealing key is not 32 bytes".into(),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if root.join("node.sealed").exists() {
                    return Err(DirError::Corrupt {
                        path: key_path,
                        reason: "the sealing key is missing, but a sealed state exists".into(),
                    });
                }
                let key = SecretBytes::<32>::random(&mut rand_core::OsRng);
                keyward_host::files::create_new(&key_path, key.expose())
                    .map_err(io("create", &key_path))?;
                key
            }
            Err(e) => return Err(io("read", &key_path)(e)),
        };
        Ok(Self {
            root: root.to_owned(),
            sealer: Sealer::new(&SoftSealingKey::from_bytes(key), chain),
        })
    }

    fn state_path(&self) -> PathBuf {
        self.root.join("node.sealed")
    }

    /// The sealed node state, if there is one.
    ///
    /// # Errors
    /// [`DirError`].
    pub fn load_state(&self) -> Result<Option<SealedBlob>, DirError> {
        let path = self.state_path();
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

    /// Replaces the sealed node state, durably.
    ///
    /// # Errors
    /// [`DirError`]; the old state is then still in place.
    pub fn save_state(&self, blob: &SealedBlob) -> Result<(), DirError> {
        let path = self.state_path();
        keyward_host::files::replace(&path, blob.as_bytes()).map_err(io("write", &path))
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

    fn reply_path(&self, command: &EntryHash) -> PathBuf {
        self.root
            .join("replies")
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
