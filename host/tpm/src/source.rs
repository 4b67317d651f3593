//! The platform source of a data directory's sealing key and monotonic counter, one for every
//! keyward service (vote signer, gatekeeper, worker).
//!
//! | source | files in the data directory | the key | the counter |
//! |---|---|---|---|
//! | `soft` (default) | `sealing.key`, `sealing.counter` | a 0600 file: **insecure** | a file |
//! | `tpm` | `sealing.tpm` | sealed by the TPM under a PCR policy | a TPM NV counter |
//!
//! **What each protects against.** The soft source protects sealed state from nothing that can
//! read the directory, and its counter refuses an older sealed file put back on its own, not one
//! restored together with `sealing.counter`. The TPM source keeps the key useless off this
//! machine and after a change of the measured boot chain (the PCRs), and its counter lives in
//! the TPM, so restoring the **whole** directory from a backup is refused too. Neither protects
//! against anyone on the running machine who can use the TPM and read `sealing.tpm` (the
//! service's own user included): they can have the TPM unseal the key while the PCRs are
//! unchanged, seal it again with another counter base, or advance the counter (which makes the
//! service refuse to start).
//!
//! `sealing.tpm` is a [`TpmSealedKey`] whose secret is
//! `sealing key(32) || u64 base || u32 NV index` (big-endian). The counter's value as the core
//! sees it is the NV counter's value minus `base`, its value when the directory was created:
//! a new counter starts at the highest value any counter on that TPM has had, not at 0. Both
//! numbers are sealed, so a file edited without the TPM's help cannot point the core at another
//! counter or shift it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use thiserror::Error;

use keyward_crypto::SecretBytes;
use keyward_enclave::{AttestFailed, Attester, BoundKey, Evidence, SealingKey};
use keyward_host::counter::{CounterError, FileCounter, MonotonicCounter};

use crate::{NvCounter, Tpm, TpmError, TpmSealedKey};

const SOFT_KEY: &str = "sealing.key";
const SOFT_COUNTER: &str = "sealing.counter";
const TPM_KEY: &str = "sealing.tpm";

/// Where the sealing key and the monotonic counter come from. In TOML, a table with
/// `source = "soft"` or `source = "tpm"` and the TPM's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(tag = "source", rename_all = "kebab-case")]
pub enum SealingSource {
    /// A key file and a counter file. Insecure: see the module docs.
    #[default]
    Soft,
    /// A TPM 2.0.
    Tpm(TpmSource),
}

/// The TPM source's settings.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TpmSource {
    /// The TPM's TCTI (tpm2-tss syntax): `device:/dev/tpmrm0` (the default, the kernel's
    /// resource manager) or `swtpm:host=127.0.0.1,port=2321`.
    pub tcti: String,
    /// The PCRs (SHA-256 bank) the key is sealed to when the directory is created; later starts
    /// use the selection stored with the key. Default: 7 (the Secure Boot policy).
    pub pcrs: Vec<u8>,
    /// The owner NV index of the counter, defined when the directory is created (it must not
    /// exist yet); one per data directory. Later starts use the index sealed with the key.
    pub nv_index: u32,
}

impl Default for TpmSource {
    fn default() -> Self {
        Self {
            tcti: "device:/dev/tpmrm0".into(),
            pcrs: vec![7],
            nv_index: DEFAULT_NV_INDEX,
        }
    }
}

/// The default counter index: `0x01` (owner range) then "PKW".
pub const DEFAULT_NV_INDEX: u32 = 0x0150_4b57;

/// Why the sealing key or counter could not be had.
#[derive(Debug, Error)]
pub enum SourceError {
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
    /// A file is missing or wrong, or the directory belongs to the other source.
    #[error("{path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The monotonic counter failed.
    #[error(transparent)]
    Counter(#[from] CounterError),
    /// The TPM failed or refused.
    #[error(transparent)]
    Tpm(#[from] TpmError),
}

/// An opened source: the sealing key for the core, the counter the sealed state must not fall
/// behind, and the platform's attester if it has one.
pub struct Sealing {
    /// The sealing key.
    pub key: SealingKey,
    /// The monotonic counter.
    pub counter: Box<dyn MonotonicCounter>,
    /// `tpm-quote` evidence of the PCRs the key is sealed to (TPM source); `None` for the soft
    /// source, whose services attest with their `dev` platform key.
    pub attester: Option<Box<dyn Attester>>,
}

impl std::fmt::Debug for Sealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealing")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl SealingSource {
    /// The source's name, as logs and `getHealth` show it (`soft-insecure` or `tpm`).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Soft => "soft-insecure",
            Self::Tpm(_) => "tpm",
        }
    }

    /// Whether the source is a TPM reached over TCP (the `swtpm` and `mssim` TCTIs of simulators),
    /// whose connection opens new sockets for control commands.
    pub fn reached_over_tcp(&self) -> bool {
        matches!(self, Self::Tpm(tpm) if tpm.tcti.starts_with("swtpm") || tpm.tcti.starts_with("mssim"))
    }

    /// Opens the sealing key and counter of the data directory `dir`. When `create` is true
    /// (the directory holds no sealed state yet), missing ones are made; otherwise a missing key
    /// or counter is an error, never replaced: a new key cannot open the old state, and a new
    /// counter would let an older state back in. A directory made with the other source is
    /// refused.
    ///
    /// # Errors
    /// [`SourceError`].
    pub fn open(&self, dir: &Path, create: bool) -> Result<Sealing, SourceError> {
        let (mine, theirs) = match self {
            Self::Soft => (SOFT_KEY, TPM_KEY),
            Self::Tpm(_) => (TPM_KEY, SOFT_KEY),
        };
        if dir.join(theirs).exists() && !dir.join(mine).exists() {
            return Err(SourceError::Corrupt {
                path: dir.join(theirs),
                reason: format!(
                    "this directory's sealing key comes from the other source than the configured `{}`: configure the source it was made with",
                    self.name()
                ),
            });
        }
        match self {
            Self::Soft => open_soft(dir, create),
            Self::Tpm(tpm) => open_tpm(tpm, dir, create),
        }
    }
}

fn read(path: &Path) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, SourceError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(zeroize::Zeroizing::new(bytes))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SourceError::Io {
            action: "read",
            path: path.to_owned(),
            source,
        }),
    }
}

fn missing(path: PathBuf) -> SourceError {
    SourceError::Corrupt {
        path,
        reason: "the sealing key is missing, but a sealed state exists: it cannot be opened without it, and a new key would only hide that".into(),
    }
}

fn create_file(path: &Path, bytes: &[u8]) -> Result<(), SourceError> {
    keyward_host::files::create_new(path, bytes).map_err(|source| SourceError::Io {
        action: "create",
        path: path.to_owned(),
        source,
    })
}

fn open_soft(dir: &Path, create: bool) -> Result<Sealing, SourceError> {
    let key_path = dir.join(SOFT_KEY);
    let counter_path = dir.join(SOFT_COUNTER);
    let (key, counter) = match read(&key_path)? {
        Some(bytes) => {
            let key =
                SecretBytes::<32>::from_slice(&bytes).ok_or_else(|| SourceError::Corrupt {
                    path: key_path.clone(),
                    reason: "the sealing key is not 32 bytes".into(),
                })?;
            // The counter is made before the key, so beside a key it always exists: made afresh
            // at 0 it would let any older state back in.
            let counter = match FileCounter::open(&counter_path, false) {
                Err(CounterError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    return Err(SourceError::Corrupt {
                        path: counter_path,
                        reason: "the monotonic counter is missing beside the sealing key: without it an older sealed state could not be told apart".into(),
                    });
                }
                other => other?,
            };
            (SealingKey::from_bytes(key), counter)
        }
        None if !create => return Err(missing(key_path)),
        None => {
            // The counter first: a crash before the key is written leaves a counter that the
            // next start reuses, never a key without its counter.
            let counter = FileCounter::open(&counter_path, true)?;
            let key = SealingKey::generate(&mut rand_core::OsRng);
            create_file(&key_path, key.expose())?;
            (key, counter)
        }
    };
    Ok(Sealing {
        key,
        counter: Box::new(counter),
        attester: None,
    })
}

/// The sealed secret: key, counter base, NV index.
const TPM_SECRET: usize = 32 + 8 + 4;

fn open_tpm(config: &TpmSource, dir: &Path, create: bool) -> Result<Sealing, SourceError> {
    let path = dir.join(TPM_KEY);
    let mut tpm = Tpm::connect(&config.tcti)?;
    let (secret, pcrs) = match read(&path)? {
        Some(bytes) => {
            let sealed = TpmSealedKey::from_bytes(&bytes)?;
            (
                tpm.unseal_key::<TPM_SECRET>(&sealed)?,
                sealed.pcrs().to_vec(),
            )
        }
        None if !create => return Err(missing(path)),
        None => {
            // Everything that can be checked is checked first: a counter defined for a
            // directory that is then not made blocks its index.
            crate::check_pcrs(&config.pcrs)?;
            let counter = tpm.define_counter(config.nv_index)?;
            match seal_new(&mut tpm, &counter, config, &path) {
                Ok(secret) => (secret, config.pcrs.clone()),
                Err(e) => {
                    // Nothing sealed refers to the counter: free its index for the next attempt.
                    let _ = tpm.undefine_counter(counter);
                    return Err(e);
                }
            }
        }
    };
    let bytes = secret.expose();
    let key = SecretBytes::<32>::from_slice(&bytes[..32]).expect("32 bytes");
    let base = u64::from_be_bytes(bytes[32..40].try_into().expect("8 bytes"));
    let index = u32::from_be_bytes(bytes[40..].try_into().expect("4 bytes"));
    let nv = tpm.counter(index)?;
    // One connection for the counter and the quotes: a TPM reached directly (swtpm) serves one
    // client at a time.
    let tpm = Arc::new(Mutex::new(tpm));
    let counter = TpmCounter::new(tpm.clone(), nv, base)?;
    Ok(Sealing {
        key: SealingKey::from_bytes(key),
        counter: Box::new(counter),
        attester: Some(Box::new(TpmAttester { tpm, pcrs })),
    })
}

/// Seals a new sealing key with `counter`'s current value as its base, and stores it at `path`.
fn seal_new(
    tpm: &mut Tpm,
    counter: &NvCounter,
    config: &TpmSource,
    path: &Path,
) -> Result<SecretBytes<TPM_SECRET>, SourceError> {
    let base = counter.value(tpm)?;
    let mut secret = zeroize::Zeroizing::new([0u8; TPM_SECRET]);
    secret[..32].copy_from_slice(SecretBytes::<32>::random(&mut rand_core::OsRng).expose());
    secret[32..40].copy_from_slice(&base.to_be_bytes());
    secret[40..].copy_from_slice(&config.nv_index.to_be_bytes());
    let secret = SecretBytes::<TPM_SECRET>::from_slice(&secret[..]).expect("TPM_SECRET bytes");
    let sealed = tpm.seal_key(&secret, &config.pcrs)?;
    create_file(path, &sealed.to_bytes())?;
    Ok(secret)
}

fn lock(tpm: &Mutex<Tpm>) -> std::sync::MutexGuard<'_, Tpm> {
    // A panic while holding the TPM leaves nothing half-done on our side that matters.
    tpm.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `tpm-quote` evidence of the PCRs the sealing key is sealed to.
struct TpmAttester {
    tpm: Arc<Mutex<Tpm>>,
    pcrs: Vec<u8>,
}

impl Attester for TpmAttester {
    fn attest(
        &mut self,
        _measurement: [u8; 32],
        keys: &[BoundKey],
        nonce: &[u8],
        _rng: &mut dyn keyward_crypto::Rng,
    ) -> Result<Evidence, AttestFailed> {
        lock(&self.tpm)
            .quote(keys, nonce, &self.pcrs)
            .map_err(|e| AttestFailed(e.to_string()))
    }
}

/// A TPM NV counter, counted from the value it had when its directory was created.
#[derive(Debug)]
struct TpmCounter {
    tpm: Arc<Mutex<Tpm>>,
    nv: NvCounter,
    base: u64,
    value: u64,
}

impl TpmCounter {
    fn new(tpm: Arc<Mutex<Tpm>>, nv: NvCounter, base: u64) -> Result<Self, SourceError> {
        let raw = nv.value(&mut lock(&tpm))?;
        let value = raw.checked_sub(base).ok_or_else(|| {
            CounterError::Device {
                counter: name(&nv),
                reason: format!(
                    "it reads {raw}, below the {base} it had when this directory was made: it is not this directory's counter"
                ),
            }
        })?;
        Ok(Self {
            tpm,
            nv,
            base,
            value,
        })
    }
}

fn name(nv: &NvCounter) -> String {
    format!("TPM NV index {:#010x}", nv.index())
}

impl MonotonicCounter for TpmCounter {
    fn value(&self) -> u64 {
        self.value
    }

    /// [`CounterError::Device`] also when the counter moved past `to` behind this process's
    /// back (someone else increments this index): the state sealed at `to` would then be refused
    /// at the next start, so the host must know now.
    fn advance(&mut self, to: u64) -> Result<(), CounterError> {
        if to < self.value {
            return Err(CounterError::Backwards {
                counter: name(&self.nv),
                current: self.value,
                requested: to,
            });
        }
        let device = |reason: String| CounterError::Device {
            counter: name(&self.nv),
            reason,
        };
        let target = self
            .base
            .checked_add(to)
            .ok_or_else(|| device("the counter is exhausted".into()))?;
        if to == self.value {
            return Ok(());
        }
        // The value is known: increments and one read, no read before.
        let error = match self.nv.increment(&mut lock(&self.tpm), to - self.value) {
            Ok(raw) if raw == target => {
                self.value = to;
                return Ok(());
            }
            Ok(raw) => device(format!(
                "it moved to {} behind this process's back (expected {to}): another user of this index?",
                raw.saturating_sub(self.base)
            )),
            Err(e) => device(e.to_string()),
        };
        // Some increments may have landed (or their answer was lost): learn where the counter
        // is, so a retry does not overshoot past the state it is meant to pin.
        if let Some(value) = self
            .nv
            .value(&mut lock(&self.tpm))
            .ok()
            .and_then(|raw| raw.checked_sub(self.base))
        {
            self.value = value;
        }
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_reads_from_toml_with_defaults() {
        #[derive(Deserialize)]
        struct File {
            sealing: SealingSource,
        }
        let soft: File = toml::from_str("[sealing]\nsource = \"soft\"").unwrap();
        assert_eq!(soft.sealing, SealingSource::Soft);
        let tpm: File = toml::from_str("[sealing]\nsource = \"tpm\"").unwrap();
        assert_eq!(tpm.sealing, SealingSource::Tpm(TpmSource::default()));
        let tpm: File = toml::from_str(
            "[sealing]\nsource = \"tpm\"\ntcti = \"swtpm:port=2321\"\npcrs = [0, 7]\nnv_index = 0x01000001",
        )
        .unwrap();
        assert_eq!(
            tpm.sealing,
            SealingSource::Tpm(TpmSource {
                tcti: "swtpm:port=2321".into(),
                pcrs: vec![0, 7],
                nv_index: 0x0100_0001,
            })
        );
        for bad in [
            "[sealing]\nsource = \"file\"",
            "[sealing]\nsource = \"tpm\"\npcr = [7]",
        ] {
            assert!(toml::from_str::<File>(bad).is_err(), "{bad}");
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("keyward-source-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn the_soft_source_keeps_its_key_and_never_remakes_a_missing_piece() {
        let dir = temp("soft");
        assert!(matches!(
            SealingSource::Soft.open(&dir, false),
            Err(SourceError::Corrupt { .. })
        ));
        let mut first = SealingSource::Soft.open(&dir, true).unwrap();
        first.counter.advance(3).unwrap();
        let again = SealingSource::Soft.open(&dir, false).unwrap();
        assert_eq!(again.key.expose(), first.key.expose());
        assert_eq!(again.counter.value(), 3);

        std::fs::remove_file(dir.join(SOFT_COUNTER)).unwrap();
        for create in [false, true] {
            let e = SealingSource::Soft.open(&dir, create).unwrap_err();
            assert!(e.to_string().contains("counter is missing"), "{e}");
        }
        std::fs::remove_file(dir.join(SOFT_KEY)).unwrap();
        let e = SealingSource::Soft.open(&dir, false).unwrap_err();
        assert!(e.to_string().contains("sealing key is missing"), "{e}");
        std::fs::write(dir.join(SOFT_KEY), [1; 31]).unwrap();
        let e = SealingSource::Soft.open(&dir, true).unwrap_err();
        assert!(e.to_string().contains("not 32 bytes"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_made_with_one_source_is_refused_under_the_other() {
        let dir = temp("other");
        SealingSource::Soft.open(&dir, true).unwrap();
        let e = SealingSource::Tpm(TpmSource::default())
            .open(&dir, true)
            .unwrap_err();
        assert!(e.to_string().contains("other source"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
