//! The durable store: one redb file of validator records, beside the sealing source's files.
//!
//! Layout of the data directory:
//! - `signer.redb`: table `validators` (identity → record from [`keyward_vote::Signer::record`])
//!   and table `meta` (`service-id`, `platform-key` sealed for `PlatformKey`, and `manifest`,
//!   the sealed manifest of the last commit).
//! - the sealing source's files ([`keyward_tpm::source`]): `sealing.key` and `sealing.counter`
//!   for the soft source, `sealing.tpm` for a TPM (whose counter lives in the TPM). Vote keys are
//!   sealed by the core under the sealing key; the store never holds a plaintext key.
//!
//! Each commit is one value of the monotonic counter: its manifest is sealed at it (records at
//! counter 0, pinned by the manifest), and the counter advances to it once the commit is
//! durable, so the core refuses the store if it is later put back from an older copy (with the
//! soft source: an older copy without `sealing.counter`; with a TPM: any older copy).
//!
//! Every commit is `Durability::Immediate`: it returns after fsync. redb's single-writer lock
//! also makes a second signer on the same directory fail to start.

use std::fs;
use std::path::{Path, PathBuf};

use rand_core::{OsRng, RngCore};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use thiserror::Error;

use keyward_crypto::{ChainId, IdentityKeypair, SecretBytes, SolanaPubkey};
use keyward_enclave::{Attester, DevPlatformKey, SealPurpose, SealedBlob, Sealer};
use keyward_host::counter::{CounterError, MonotonicCounter};
use keyward_tpm::source::{SealingSource, SourceError};
use keyward_vote::{CommitManifest, ServiceId};

const VALIDATORS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("validators");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

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
    /// Stored data is damaged or belongs to another key.
    #[error("store {path}: {reason}")]
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

/// The open store.
pub struct Store {
    db: Database,
    path: PathBuf,
    counter: Box<dyn MonotonicCounter>,
}

/// What the store holds besides validator records.
pub struct Loaded {
    /// The service id.
    pub service: ServiceId,
    /// The sealer for vote keys.
    pub sealer: Sealer,
    /// What attests new vote keys: the sealing source's attester (a TPM's quotes), or else the
    /// store's `dev` platform key.
    pub attester: Box<dyn Attester>,
    /// Every validator record, with the identity it is stored under.
    pub records: Vec<(SolanaPubkey, Vec<u8>)>,
    /// The sealed manifest of the last commit, if any commit was made.
    pub manifest: Option<Vec<u8>>,
    /// The monotonic counter's value.
    pub counter: u64,
}

impl Store {
    /// Opens (or creates) the store in `dir` for `chain`, with its sealing key and counter from
    /// `source`, creating the service id, the sealing key and the platform key on first use.
    ///
    /// # Errors
    /// [`StoreError`]; a damaged store is never overwritten.
    pub fn open(
        dir: &Path,
        chain: &ChainId,
        source: &SealingSource,
    ) -> Result<(Self, Loaded), StoreError> {
        fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            action: "create",
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("signer.redb");
        let new = !path.exists();
        // A new counter and sealing key only for a new store: beside an existing store, a
        // missing counter would accept any older copy, and a missing key means its sealed keys
        // are lost; a fresh one would only hide either.
        let opened = source.open(dir, new)?;
        let (counter, attester) = (opened.counter, opened.attester);
        if new && counter.value() != 0 {
            // Commits were made, and their store is gone: refuse before making a new one.
            return Err(StoreError::Corrupt {
                path,
                reason: format!(
                    "the store is missing, but the monotonic counter is at {}: commits were made to a store that is gone",
                    counter.value()
                ),
            });
        }
        let sealer = Sealer::new(&opened.key, chain.clone(), crate::service::DEV_MEASUREMENT);
        let db = Database::create(&path).map_err(|e| db_error(&path, e))?;
        let store = Self { db, path, counter };
        let (service, platform) = store.meta(&sealer)?;
        let records = store.records()?;
        let manifest = store.manifest()?;
        let counter = store.counter.value();
        Ok((
            store,
            Loaded {
                service,
                sealer,
                attester: attester.unwrap_or_else(|| Box::new(platform)),
                records,
                manifest,
                counter,
            },
        ))
    }

    fn manifest(&self) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(META).map_err(|e| self.err(e))?;
        let manifest = table.get("manifest").map_err(|e| self.err(e))?;
        Ok(manifest.map(|g| g.value().to_vec()))
    }

    fn meta(&self, sealer: &Sealer) -> Result<(ServiceId, DevPlatformKey), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        let found = {
            let mut table = txn.open_table(META).map_err(|e| self.err(e))?;
            let service = table
                .get("service-id")
                .map_err(|e| self.err(e))?
                .map(|g| g.value().to_vec());
            let platform = table
                .get("platform-key")
                .map_err(|e| self.err(e))?
                .map(|g| g.value().to_vec());
            match (service, platform) {
                (Some(s), Some(p)) => Some((s, p)),
                (None, None) => {
                    let mut id = [0u8; 32];
                    OsRng.fill_bytes(&mut id);
                    let seed = SecretBytes::<32>::random(&mut OsRng);
                    let sealed = sealer
                        // The platform key never changes, so it has nothing to roll back to.
                        .seal(SealPurpose::PlatformKey, 0, seed.expose(), &mut OsRng)
                        .expect("32 bytes seal");
                    table
                        .insert("service-id", &id[..])
                        .map_err(|e| self.err(e))?;
                    table
                        .insert("platform-key", sealed.as_bytes())
                        .map_err(|e| self.err(e))?;
                    None
                }
                _ => return Err(self.corrupt("service id or platform key missing")),
            }
        };
        txn.commit().map_err(|e| self.err(e))?;
        let (service, platform) = match found {
            Some(found) => found,
            // Freshly written: read back through the same path as an existing store.
            None => return self.meta(sealer),
        };
        let service: [u8; 32] = service
            .try_into()
            .map_err(|_| self.corrupt("service id is not 32 bytes"))?;
        let seed = sealer
            .open(
                SealPurpose::PlatformKey,
                &SealedBlob::from_bytes(platform),
                0,
            )
            .map_err(|e| self.corrupt(&format!("platform key: {e}")))?;
        let seed = SecretBytes::<32>::from_slice(&seed.plaintext)
            .ok_or_else(|| self.corrupt("platform key is not 32 bytes"))?;
        Ok((
            ServiceId(service),
            DevPlatformKey::from_identity(IdentityKeypair::from_seed(seed)),
        ))
    }

    fn records(&self) -> Result<Vec<(SolanaPubkey, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = match txn.open_table(VALIDATORS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(self.err(e)),
        };
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.err(e))? {
            let (key, value) = entry.map_err(|e| self.err(e))?;
            let identity = <[u8; 32]>::try_from(key.value())
                .map_err(|_| self.corrupt("a validator key is not 32 bytes"))?;
            out.push((SolanaPubkey(identity), value.value().to_vec()));
        }
        Ok(out)
    }

    /// Writes `records` and the commit's `manifest` in one transaction, then advances the
    /// monotonic counter to the manifest's value, and returns once both are durable.
    ///
    /// # Errors
    /// [`StoreError::Db`], then nothing of this batch is durable; [`StoreError::Counter`], then
    /// the batch is durable but its answers must not be released (a restart catches the counter
    /// up).
    pub fn commit<'a>(
        &mut self,
        records: impl IntoIterator<Item = (&'a SolanaPubkey, &'a [u8])>,
        manifest: &CommitManifest,
    ) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(|e| self.err(e))?;
        // redb's default today; said explicitly because the whole safety argument rests on it.
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(VALIDATORS).map_err(|e| self.err(e))?;
            for (identity, record) in records {
                table
                    .insert(&identity.0[..], record)
                    .map_err(|e| self.err(e))?;
            }
            txn.open_table(META)
                .map_err(|e| self.err(e))?
                .insert("manifest", manifest.blob.as_slice())
                .map_err(|e| self.err(e))?;
        }
        txn.commit().map_err(|e| self.err(e))?;
        Ok(self.counter.advance(manifest.counter)?)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_reopens_with_its_ids_and_refuses_to_run_without_its_sealing_key() {
        let dir = std::env::temp_dir().join(format!("keyward-store-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let chain = ChainId::new("solana").expect("valid");
        let service = {
            let (_, loaded) = Store::open(&dir, &chain, &SealingSource::Soft).expect("creates");
            loaded.service
        };
        let (_, loaded) = Store::open(&dir, &chain, &SealingSource::Soft).expect("reopens");
        assert_eq!(loaded.service, service);
        drop(loaded);

        fs::remove_file(dir.join("sealing.key")).expect("exists");
        let err = Store::open(&dir, &chain, &SealingSource::Soft)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("sealing key is missing"), "{err}");
        assert!(!dir.join("sealing.key").exists(), "no new key was made");
        let _ = fs::remove_dir_all(&dir);
    }
}
