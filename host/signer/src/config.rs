//! The signer's TOML configuration. Every field has a default that works on loopback, so
//! `keyward signer` starts with no configuration file at all.
//!
//! ```toml
//! listen = "127.0.0.1:8989"       # the old Solana vote-signer's port
//! data_dir = "/home/me/.keyward/signer"  # default: $HOME/.keyward/signer (no ~ expansion)
//! chain_id = "solana"             # sealed blobs are bound to it
//! max_body_bytes = 524288         # bodies over this are refused before parsing
//! max_batch = 512                 # most requests sharing one commit (fsync)
//! queue_depth = 8192              # requests waiting for the writer; more are refused as busy
//!
//! [sealing]                       # where the sealing key and monotonic counter come from
//! source = "soft"                 # "soft" (key and counter files: insecure) or "tpm"
//! # tcti = "device:/dev/tpmrm0"   # the TPM's fields (keyward_tpm::source), read only with "tpm"
//! # pcrs = [7]
//! # nv_index = 0x01504b57
//!
//! [runner]                        # where the trusted core runs (docs/SIGNER.md, "Enclave runners")
//! kind = "in-process"             # or "isolated": in `keyward enclave --config FILE`
//! # socket = "/run/keyward/enclave.sock"  # isolated: default <data_dir>/enclave.sock
//! # state_dir = "/var/lib/keyward-enclave" # isolated: the enclave's sealing files;
//! #                                        # default <data_dir>/enclave
//! # allow_weaker_isolation = false # isolated: start even if memory cannot be locked or the
//! #                                # kernel has no Landlock (logged)
//!
//! [attestation]                   # optional: the policy the signer's own evidence must meet;
//! accept_insecure_dev = false     # without it, nothing is checked
//! trusted_tpm_keys = ["…hex…"]    # TPM attestation key fingerprints (keyward attest tpm-key)
//! measurements = ["…hex…"]        # if non-empty, only these measurements
//! # [attestation.vendor]          # optional: vendor TEE evidence (dcap, nitro, sev-snp)
//! # platforms = ["tdx"]           # sgx, tdx, nitro, sev-snp
//! # measurements = ["…hex…"]      # the vendor's own, as keyward attest verify prints
//! # minimum_tcb = "UpToDate"      # the worst TCB status accepted
//! # accept_unrated = false        # evidence with no TCB status (Nitro, SEV-SNP)
//! # max_age_secs = 600            # Nitro documents: the oldest accepted
//!
//! [lockout]                       # the RFC's N, F and cap (Solana's values)
//! initial_lockout = 2
//! factor = 2
//! cap = 31
//!
//! [ancestry]                      # optional: ancestor verification and N_vote at N_depth
//! verify_ancestors = true
//! threshold_depth = 8             # N_depth (omit for no threshold rule)
//! threshold_share = "2/3"         # N_vote: more than this share of stake
//! [[ancestry.active_set]]         # N_active: the active set's vote authorities
//! authority = "…base58…"
//! stake = 1000                    # optional; 1 when omitted
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use keyward_crypto::{ChainId, SolanaPubkey};
use keyward_enclave::EvidencePolicy;
use keyward_enclave::evidence::MAX_POLICY_ENTRIES;
use keyward_tpm::source::SealingSource;
use keyward_vote::LockoutPolicy;
use keyward_vote::ancestry::{AncestryPolicy, Fraction, Member, Threshold};

/// Why a configuration was refused.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The configuration file's schema.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address of the JSON-RPC server (also `/metrics` and `/health`).
    pub listen: SocketAddr,
    /// Directory of the store and the sealing key.
    pub data_dir: PathBuf,
    /// Chain id sealed blobs are bound to.
    pub chain_id: String,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u32,
    /// Most requests committed together.
    pub max_batch: usize,
    /// Most requests waiting for the writer.
    pub queue_depth: usize,
    /// The lockout rules.
    pub lockout: LockoutConfig,
    /// The sealing key's and monotonic counter's source.
    pub sealing: SealingSource,
    /// Where the trusted core runs.
    pub runner: RunnerConfig,
    /// The policy the signer's own evidence must meet, when configured.
    pub attestation: Option<AttestationConfig>,
    /// Ancestor verification, when configured.
    pub ancestry: Option<AncestryConfig>,
}

/// The largest `max_batch`: the isolated enclave answers a batch's records, and releases its
/// answers, in one frame each, which must stay under the frame limit (64 MiB) with room to spare
/// (a record is a few KiB).
pub const MAX_BATCH: usize = 8192;

/// `[runner]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunnerConfig {
    /// In-process or isolated.
    pub kind: RunnerKind,
    /// The isolated enclave's socket; default `<data_dir>/enclave.sock`.
    pub socket: Option<PathBuf>,
    /// The isolated enclave's state directory (its sealing files); default
    /// `<data_dir>/enclave`.
    pub state_dir: Option<PathBuf>,
    /// Start the isolated enclave even when its memory cannot be locked or the kernel does not
    /// enforce Landlock.
    pub allow_weaker_isolation: bool,
}

/// Where the core runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunnerKind {
    /// In the signer's own process.
    #[default]
    InProcess,
    /// In a separate, hardened `keyward enclave` process.
    Isolated,
}

/// `[attestation]`: what the signer's own evidence must prove. Checked when the store opens
/// (the signer does not start otherwise) and for every new vote key (`attestation_failed`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttestationConfig {
    /// Accept `dev` evidence (insecure by construction).
    pub accept_insecure_dev: bool,
    /// The TPM attestation keys (SHA-256 fingerprints, hex) whose quotes are accepted.
    pub trusted_tpm_keys: Vec<String>,
    /// If non-empty, only these measurements (hex).
    pub measurements: Vec<String>,
    /// `[attestation.vendor]`: what vendor TEE evidence must show; absent, none is accepted.
    pub vendor: Option<keyward_host::attestation::VendorPolicyConfig>,
}

/// `[lockout]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LockoutConfig {
    /// `N`, in slots.
    pub initial_lockout: u64,
    /// `F`.
    pub factor: u64,
    /// The cap (`MAX_LOCKOUT_HISTORY`).
    pub cap: u32,
}

/// `[ancestry]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AncestryConfig {
    /// Ancestor verification on or off.
    #[serde(default = "yes")]
    pub verify_ancestors: bool,
    /// `N_depth`.
    pub threshold_depth: Option<usize>,
    /// `N_vote`, as `"num/den"`.
    pub threshold_share: Option<String>,
    /// `N_active`.
    pub active_set: Vec<MemberConfig>,
}

/// One `[[ancestry.active_set]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// The member's vote authority, base58.
    pub authority: String,
    /// Its stake; 1 when omitted.
    #[serde(default = "one")]
    pub stake: u64,
}

fn yes() -> bool {
    true
}

fn one() -> u64 {
    1
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8989)),
            data_dir: default_data_dir(),
            chain_id: "solana".into(),
            max_body_bytes: 512 * 1024,
            max_batch: 512,
            queue_depth: 8192,
            lockout: LockoutConfig::default(),
            sealing: SealingSource::default(),
            runner: RunnerConfig::default(),
            attestation: None,
            ancestry: None,
        }
    }
}

impl Default for LockoutConfig {
    fn default() -> Self {
        let p = LockoutPolicy::SOLANA;
        Self {
            initial_lockout: p.initial_lockout(),
            factor: p.factor(),
            cap: p.max_history(),
        }
    }
}

/// `$HOME/.keyward/signer`, or `.keyward/signer` without a home directory.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default()
        .join(".keyward")
        .join("signer")
}

impl Config {
    /// Reads `path`, or the defaults when `path` is `None`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, line and field.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Self = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        config.check()?;
        Ok(config)
    }

    /// Checks every value that the schema alone cannot.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`].
    pub fn check(&self) -> Result<(), ConfigError> {
        self.chain()?;
        self.lockout_policy()?;
        self.ancestry_policy()?;
        self.evidence_policy()?;
        if self.max_batch == 0 || self.queue_depth == 0 {
            return Err(ConfigError::Invalid(
                "max_batch and queue_depth must be at least 1".into(),
            ));
        }
        if self.max_batch > MAX_BATCH {
            return Err(ConfigError::Invalid(format!(
                "max_batch is at most {MAX_BATCH}"
            )));
        }
        let r = &self.runner;
        if r.kind == RunnerKind::InProcess
            && (r.socket.is_some() || r.state_dir.is_some() || r.allow_weaker_isolation)
        {
            return Err(ConfigError::Invalid(
                "[runner]: socket, state_dir and allow_weaker_isolation are for kind = \"isolated\""
                    .into(),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be at least 1024".into(),
            ));
        }
        Ok(())
    }

    /// The isolated enclave's socket.
    pub fn enclave_socket(&self) -> PathBuf {
        self.runner
            .socket
            .clone()
            .unwrap_or_else(|| self.data_dir.join("enclave.sock"))
    }

    /// The isolated enclave's state directory.
    pub fn enclave_state_dir(&self) -> PathBuf {
        self.runner
            .state_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("enclave"))
    }

    /// The rules the enclave enforces.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`].
    pub fn policy(&self) -> Result<crate::runner::Policy, ConfigError> {
        Ok(crate::runner::Policy {
            lockout: self.lockout_policy()?,
            ancestry: self.ancestry_policy()?,
            evidence: self.evidence_policy()?,
        })
    }

    /// The attestation policy, if configured.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a value that is not 32 bytes of hex, or a list over 64.
    pub fn evidence_policy(&self) -> Result<Option<EvidencePolicy>, ConfigError> {
        let Some(a) = &self.attestation else {
            return Ok(None);
        };
        let list = |field: &'static str, items: &[String]| {
            if items.len() > MAX_POLICY_ENTRIES {
                return Err(ConfigError::Invalid(format!(
                    "[attestation] {field}: at most {MAX_POLICY_ENTRIES} entries"
                )));
            }
            items
                .iter()
                .map(|item| {
                    keyward_crypto::hex::from_hex::<32>(field, item)
                        .map_err(|e| ConfigError::Invalid(format!("[attestation] {e}")))
                })
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(Some(EvidencePolicy {
            accept_insecure_dev: a.accept_insecure_dev,
            allowed_measurements: list("measurements", &a.measurements)?,
            trusted_dev_platforms: Vec::new(),
            trusted_tpm_keys: list("trusted_tpm_keys", &a.trusted_tpm_keys)?,
            vendor: a
                .vendor
                .as_ref()
                .map(|v| v.policy("attestation.vendor"))
                .transpose()
                .map_err(ConfigError::Invalid)?,
        }))
    }

    /// The chain id.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for an invalid id.
    pub fn chain(&self) -> Result<ChainId, ConfigError> {
        ChainId::new(&self.chain_id).map_err(|e| ConfigError::Invalid(format!("chain_id: {e}")))
    }

    /// The lockout policy.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for values out of range.
    pub fn lockout_policy(&self) -> Result<LockoutPolicy, ConfigError> {
        let l = &self.lockout;
        LockoutPolicy::new(l.initial_lockout, l.factor, l.cap)
            .map_err(|e| ConfigError::Invalid(format!("[lockout]: {e}")))
    }

    /// The ancestry policy, if configured.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for a bad key, share or set.
    pub fn ancestry_policy(&self) -> Result<Option<AncestryPolicy>, ConfigError> {
        let Some(a) = &self.ancestry else {
            return Ok(None);
        };
        let invalid = |m: String| ConfigError::Invalid(format!("[ancestry]: {m}"));
        let members = a
            .active_set
            .iter()
            .map(|m| {
                m.authority
                    .parse::<SolanaPubkey>()
                    .map(|authority| Member {
                        authority,
                        stake: m.stake,
                    })
                    .map_err(|e| invalid(format!("authority {:?}: {e}", m.authority)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let threshold = match (a.threshold_depth, &a.threshold_share) {
            (None, None) => None,
            (Some(depth), Some(share)) => Some(Threshold {
                depth,
                share: parse_share(share).ok_or_else(|| {
                    invalid(format!(
                        "threshold_share {share:?} is not a fraction \"num/den\" below 1"
                    ))
                })?,
            }),
            _ => {
                return Err(invalid(
                    "threshold_depth and threshold_share go together".into(),
                ));
            }
        };
        AncestryPolicy::new(members, a.verify_ancestors, threshold)
            .map(Some)
            .map_err(|e| invalid(e.to_string()))
    }
}

fn parse_share(s: &str) -> Option<Fraction> {
    let (num, den) = s.split_once('/')?;
    Fraction::new(num.trim().parse().ok()?, den.trim().parse().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_listen_on_the_old_vote_signer_port() {
        let c = Config::default();
        c.check().expect("defaults are valid");
        assert_eq!(c.listen.to_string(), "127.0.0.1:8989");
        assert_eq!(c.lockout_policy().expect("valid"), LockoutPolicy::SOLANA);
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(toml::from_str::<Config>("lisen = \"x\"").is_err());
        let c: Config = toml::from_str("[lockout]\nfactor = 1").expect("parses");
        assert!(c.check().is_err());
        let c: Config = toml::from_str(
            "[ancestry]\nthreshold_depth = 8\nthreshold_share = \"3/2\"\n[[ancestry.active_set]]\nauthority = \"11111111111111111111111111111111\"",
        )
        .expect("parses");
        assert!(c.check().is_err());
        let c: Config = toml::from_str("[runner]\nsocket = \"/tmp/s\"").expect("parses");
        assert!(
            c.check().is_err(),
            "isolated-only fields need kind = isolated"
        );
        let c: Config =
            toml::from_str("[runner]\nkind = \"isolated\"\nsocket = \"/tmp/s\"").expect("parses");
        c.check().expect("valid");
        assert_eq!(c.enclave_socket(), PathBuf::from("/tmp/s"));
        assert!(toml::from_str::<Config>("[runner]\nkind = \"sgx\"").is_err());
        let c: Config =
            toml::from_str("[attestation]\ntrusted_tpm_keys = [\"00ff\"]").expect("parses");
        assert!(c.check().is_err(), "a fingerprint is 32 bytes");
        let c: Config = toml::from_str(&format!(
            "[attestation]\ntrusted_tpm_keys = [\"{}\"]",
            "ab".repeat(32)
        ))
        .expect("parses");
        let policy = c.evidence_policy().expect("valid").expect("configured");
        assert_eq!(policy.trusted_tpm_keys, vec![[0xab; 32]]);
        assert!(!policy.accept_insecure_dev);
        let c: Config = toml::from_str(&format!("max_batch = {}", MAX_BATCH + 1)).expect("parses");
        assert!(c.check().is_err(), "a batch must fit one enclave frame");
    }

    #[test]
    fn shares_parse_exactly() {
        assert_eq!(parse_share("2/3"), Fraction::new(2, 3));
        assert_eq!(parse_share(" 1 / 2 "), Fraction::new(1, 2));
        assert!(parse_share("1/0").is_none());
        assert!(parse_share("0.66").is_none());
    }
}
