//! The ledger store: one redb file, `ledger.redb`, with table `entries` (height → entry bytes).
//!
//! The server holds no secret, so nothing here is sealed. Every commit is
//! `Durability::Immediate`: it returns after fsync. redb's single-writer lock makes a second
//! server on the same directory fail to start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{Database, ReadableDatabase, TableDefinition};
use thiserror::Error;

use keyward_ledger::Entry;

const ENTRIES: TableDefinition<u64, &[u8]> = TableDefinition::new("entries");

/// Why the store failed.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create {path}: {source}")]
    Io {
        /// The directory.
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
    /// A stored entry is damaged or out of place.
    #[error("store {path}: entry at height {height} is corrupt: {reason}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The height.
        height: u64,
        /// What is wrong.
        reason: String,
    },
}

/// The open store. Cheap to clone; reads run on any thread beside the one writer.
#[derive(Clone)]
pub struct Store {
    db: Arc<Database>,
    path: Arc<PathBuf>,
}

impl Store {
    /// Whether this is the last handle: dropping it closes the database.
    pub fn is_last_handle(&self) -> bool {
        Arc::strong_count(&self.db) == 1
    }

    /// Opens (or creates) the store in `dir` and returns every stored entry, in height order.
    ///
    /// # Errors
    /// [`StoreError`]; a gap in the heights or an entry that does not parse is
    /// [`StoreError::Corrupt`].
    pub fn open(dir: &Path) -> Result<(Self, Vec<Entry>), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let path = dir.join("ledger.redb");
        let db = Database::create(&path).map_err(|e| db_error(&path, e))?;
        let store = Self {
            db: Arc::new(db),
            path: Arc::new(path),
        };
        let entries = store
            .read(0..=u64::MAX, usize::MAX, usize::MAX)?
            .into_iter()
            .enumerate()
            .map(|(i, (height, bytes))| {
                let corrupt = |reason: String| store.corrupt(height, reason);
                if height != i as u64 {
                    return Err(corrupt(format!("expected height {i}")));
                }
                let entry = Entry::from_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
                if entry.position().height != height {
                    return Err(corrupt("stored under another height".into()));
                }
                Ok(entry)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok((store, entries))
    }

    /// Writes `entries` (consecutive heights) in one transaction and returns once it is durable.
    ///
    /// # Errors
    /// [`StoreError::Db`]; then none of them may be assumed durable.
    pub fn append<'a>(
        &self,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<(), StoreError> {
        let e = |err: redb::Error| db_error(&self.path, err);
        let mut txn = self.db.begin_write().map_err(|x| e(x.into()))?;
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|x| e(x.into()))?;
        {
            let mut table = txn.open_table(ENTRIES).map_err(|x| e(x.into()))?;
            for entry in entries {
                table
                    .insert(entry.position().height, entry.as_bytes())
                    .map_err(|x| e(x.into()))?;
            }
        }
        txn.commit().map_err(|x| e(x.into()))
    }

    /// Up to `limit` entries at the heights `heights`, as stored: (height, bytes). It stops
    /// before an entry that would take the total past `max_bytes` (but returns at least one), so
    /// a read never copies more than it will serve.
    ///
    /// # Errors
    /// [`StoreError::Db`].
    pub fn read(
        &self,
        heights: std::ops::RangeInclusive<u64>,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let e = |err: redb::Error| db_error(&self.path, err);
        let txn = self.db.begin_read().map_err(|x| e(x.into()))?;
        let table = match txn.open_table(ENTRIES) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(x) => return Err(e(x.into())),
        };
        let mut rows = Vec::new();
        let mut bytes = 0;
        for item in table.range(heights).map_err(|x| e(x.into()))?.take(limit) {
            let (k, v) = item.map_err(|x| e(x.into()))?;
            let len = v.value().len();
            if !rows.is_empty() && bytes + len > max_bytes {
                break;
            }
            bytes += len;
            rows.push((k.value(), v.value().to_vec()));
        }
        Ok(rows)
    }

    fn corrupt(&self, height: u64, reason: String) -> StoreError {
        StoreError::Corrupt {
            path: self.path.to_path_buf(),
            height,
            reason,
        }
    }
}

fn db_error(path: &Path, source: impl Into<redb::Error>) -> StoreError {
    StoreError::Db {
        path: path.to_owned(),
        source: Box::new(source.into()),
    }
}
