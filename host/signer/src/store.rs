//! The durable store: one redb file of validator records and the evidence they name.
//!
//! Layout of the data directory:
//! - `signer.redb`: table `validators` (identity → sealed record from
//!   [`keyward_vote::Signer::record`]), table `evidence` (SHA-256 → vote key evidence, which
//!   the records name by that digest; public, so not sealed) and table `meta` (`service-id`;
//!   `platform-key`, the dev platform key sealed by the enclave; and `manifest`, the sealed
//!   manifest of the last commit).
//! - with the in-process runner, the sealing source's files ([`keyward_tpm::source`]):
//!   `sealing.key` and `sealing.counter` for the soft source, `sealing.tpm` for a TPM (whose
//!   counter lives in the TPM). With the isolated runner they are in the enclave's own state
//!   directory, out of the host's reach. The store never holds a plaintext key.
//!
//! Each commit is one value of the monotonic counter: its manifest is sealed at it (records at
//! counter 0, pinned by the manifest), and the enclave advances the counter to it once the
//! commit is durable ([`crate::runner`]), so the core refuses the store if it is later put back
//! from an older copy (with the soft source: an older copy without `sealing.counter`; with a
//! TPM: any older copy).
//!
//! Every commit is `Durability::Immediate`: it returns after fsync. redb's single-writer lock
//! also makes a second signer on the same directory fail to start.

use std::fs;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use thiserror::Error;

use keyward_crypto::SolanaPubkey;
use keyward_vote::signer::evidence_digest;
use keyward_vote::{CommitManifest, ServiceId};

use crate::runner::{Changes, Stored};

const VALIDATORS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("validators");
const EVIDENCE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("evidence");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// A table entry's key and value.
type Entry = (Vec<u8>, Vec<u8>);

/// Why the store failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A file or directory operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database failed (open, transaction, commit).
    #[error("store {path}: {source}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// redb's error.
        source: Box<redb::Error>,
    },
    /// Stored data is damaged.
    #[error("store {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The open store.
pub struct Store {
    db: Database,
    path: PathBuf,
    service: ServiceId,
}

impl Store {
    /// Opens (or creates) the store in `dir`, creating the service id on first use.
    ///
    /// # Errors
    /// [`StoreError`]; a damaged store is never overwritten.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            action: "create",
            path: dir.to_owned(),
            source,
        })?;
        let path = Self::path(dir);
        let db = Database::create(&path).map_err(|e| db_error(&path, e))?;
        let mut store = Self {
            db,
            path,
            service: ServiceId([0; 32]),
        };
        store.service = store.service_id()?;
        Ok(store)
    }

    /// The signer service's id.
    pub fn service(&self) -> ServiceId {
        self.service
    }

    /// Where the store of the data directory `dir` is (`signer.redb`).
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("signer.redb")
    }

    fn service_id(&self) -> Result<ServiceId, StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let id = {
            let mut table = txn.open_table(META).map_err(|e| self.err(e))?;
            let found = table
                .get("service-id")
                .map_err(|e| self.err(e))?
                .map(|g| g.value().to_vec());
            match found {
                Some(id) => id,
                None => {
                    let mut id = [0u8; 32];
                    OsRng.fill_bytes(&mut id);
                    table
                        .insert("service-id", &id[..])
                        .map_err(|e| self.err(e))?;
                    id.to_vec()
                }
            }
        };
        txn.commit().map_err(|e| self.err(e))?;
        let id: [u8; 32] = id
            .try_into()
            .map_err(|_| self.corrupt("service id is not 32 bytes"))?;
        Ok(ServiceId(id))
    }

    /// Everything the enclave needs to open the store.
    ///
    /// # Errors
    /// [`StoreError`].
    pub fn stored(&self) -> Result<Stored, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let meta = txn.open_table(META).map_err(|e| self.err(e))?;
        let get = |key| -> Result<Option<Vec<u8>>, StoreError> {
            Ok(meta
                .get(key)
                .map_err(|e| self.err(e))?
                .map(|g| g.value().to_vec()))
        };
        let (platform, manifest) = (get("platform-key")?, get("manifest")?);
        let mut records = Vec::new();
        for (key, value) in self.entries(&txn, VALIDATORS)? {
            let identity = <[u8; 32]>::try_from(key)
                .map_err(|_| self.corrupt("a validator key is not 32 bytes"))?;
            records.push((SolanaPubkey(identity), value));
        }
        // Keys are not checked here: the core looks evidence up by the digest of its bytes.
        let evidence = self
            .entries(&txn, EVIDENCE)?
            .into_iter()
            .map(|(_, blob)| blob)
            .collect();
        Ok(Stored {
            platform,
            records,
            evidence,
            manifest,
        })
    }

    /// Every entry of `table`; none if it was never written.
    fn entries(
        &self,
        txn: &redb::ReadTransaction,
        table: TableDefinition<&[u8], &[u8]>,
    ) -> Result<Vec<Entry>, StoreError> {
        let table = match txn.open_table(table) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut entries = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            entries.push((key.value().to_vec(), value.value().to_vec()));
        }
        Ok(entries)
    }

    /// Writes the `changes` (records, new evidence under its SHA-256, retired evidence
    /// removed), the commit's `manifest` and, when the enclave made one, the sealed `platform`
    /// key, in one transaction, and returns once it is durable.
    ///
    /// # Errors
    /// [`StoreError::Db`]; then nothing of this commit is durable.
    pub fn commit(
        &mut self,
        changes: &Changes,
        manifest: &CommitManifest,
        platform: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        // redb's default today; said explicitly because the whole safety argument rests on it.
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(VALIDATORS).map_err(|e| self.err(e))?;
            for (identity, record) in &changes.records {
                table
                    .insert(&identity.0[..], record.as_slice())
                    .map_err(|e| self.err(e))?;
            }
            if !(changes.evidence.is_empty() && changes.retired.is_empty()) {
                let mut table = txn.open_table(EVIDENCE).map_err(|e| self.err(e))?;
                for blob in &changes.evidence {
                    table
                        .insert(&evidence_digest(blob)[..], blob.as_slice())
                        .map_err(|e| self.err(e))?;
                }
                // After the inserts: a batch may store a key's evidence and retire it again.
                for digest in &changes.retired {
                    table.remove(&digest[..]).map_err(|e| self.err(e))?;
                }
            }
            let mut meta = txn.open_table(META).map_err(|e| self.err(e))?;
            meta.insert("manifest", manifest.blob.as_slice())
                .map_err(|e| self.err(e))?;
            if let Some(platform) = platform {
                meta.insert("platform-key", platform)
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }

    fn err(&self, e: impl Into<redb::Error>) -> StoreError {
        db_error(&self.path, e)
    }

    fn corrupt(&self, reason: &str) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            reason: reason.to_owned(),
        }
    }
}

fn db_error(path: &Path, e: impl Into<redb::Error>) -> StoreError {
    StoreError::Db {
        path: path.to_owned(),
        source: Box::new(e.into()),
    }
}
