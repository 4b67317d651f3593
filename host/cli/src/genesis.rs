//! `keyward genesis`: write a network's genesis entry from a TOML description, signed by a
//! council member.
//!
//! ```toml
//! chain = "mainnet-1"
//! council = ["0x…", "0x…", "0x…"]        # sr25519 identity public keys (`keyward keys show`)
//! threshold = 2                          # approvals a proposal needs; default: a majority
//! contract_codes = ["kv-store"]          # default: both built-in contracts
//!
//! [params]                               # every field optional; defaults as `keyward devnet`
//! min_gatekeeper_stake = 10000
//!
//! [gatekeeper_policy]                    # what gatekeepers' evidence must show
//! tpm_keys = ["…"]                       # attestation key fingerprints (`keyward attest tpm-key`)
//!
//! [worker_policy]                        # what workers' evidence must show
//! tpm_keys = ["…", "…"]
//!
//! [worker_policy.vendor]                 # vendor TEE evidence (dcap, nitro, sev-snp)
//! platforms = ["tdx"]                    # sgx, tdx, nitro, sev-snp
//! measurements = ["…"]                   # the vendor's own, as `keyward attest verify` prints
//! minimum_tcb = "SWHardeningNeeded"      # default "UpToDate"
//! ```
//!
//! A policy table takes `accept_insecure_dev` (default false), `measurements` (32-byte hex;
//! empty: any), `dev_platforms` (sr25519 keys whose `dev` evidence is accepted; empty: any),
//! `tpm_keys` (empty: no `tpm-quote` is accepted) and a `vendor` table (absent: no vendor
//! evidence is accepted; also `accept_unrated`, default false, and `max_age_secs`, default 600).
//! A missing table accepts nothing. The gatekeeper policy must be at least as strict as the
//! worker policy, and its vendor part must accept only `UpToDate` and no unrated evidence, so it
//! must name `sgx` or `tdx` (Nitro and SEV-SNP evidence is unrated); the genesis checks it, and
//! every other rule, before anything is written.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;
use serde::Deserialize;

use keyward_crypto::hex::from_hex;
use keyward_crypto::{ChainId, IdentityPublicKey};
use keyward_enclave::EvidencePolicy;
use keyward_ledger::{Body, CodeId, Entry, EntryHash, GenesisConfig, Params, Position};

use crate::error::{CliError, Result};
use crate::keyfile::{KeyFile, read_limited, write_file};

/// Largest genesis description read.
const MAX_CONFIG_FILE: u64 = 1 << 20;

/// `keyward genesis`.
#[derive(Debug, Args)]
pub struct GenesisArgs {
    /// The network's description (TOML; see `docs/NODES.md`).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// The council member's identity key file that signs the genesis.
    #[arg(long, value_name = "KEY_FILE")]
    sign_with: PathBuf,
    /// Where to write the genesis entry (its raw bytes, as `keyward ledger --genesis` reads them).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Description {
    chain: String,
    council: Vec<String>,
    threshold: Option<u16>,
    contract_codes: Option<Vec<String>>,
    #[serde(default)]
    params: ParamsTable,
    #[serde(default)]
    gatekeeper_policy: PolicyTable,
    #[serde(default)]
    worker_policy: PolicyTable,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamsTable {
    bootstrap_gatekeepers: Option<u16>,
    min_gatekeeper_stake: Option<u64>,
    min_worker_stake: Option<u64>,
    slash_bps: Option<u16>,
    max_proposal_ttl: Option<u64>,
    max_cluster_size: Option<u16>,
    key_threshold: Option<u16>,
    refresh_interval: Option<u64>,
}

impl ParamsTable {
    fn params(&self) -> Params {
        let d = Params::default();
        Params {
            bootstrap_gatekeepers: self
                .bootstrap_gatekeepers
                .unwrap_or(d.bootstrap_gatekeepers),
            min_gatekeeper_stake: self.min_gatekeeper_stake.unwrap_or(d.min_gatekeeper_stake),
            min_worker_stake: self.min_worker_stake.unwrap_or(d.min_worker_stake),
            slash_bps: self.slash_bps.unwrap_or(d.slash_bps),
            max_proposal_ttl: self.max_proposal_ttl.unwrap_or(d.max_proposal_ttl),
            max_cluster_size: self.max_cluster_size.unwrap_or(d.max_cluster_size),
            key_threshold: self.key_threshold.unwrap_or(d.key_threshold),
            refresh_interval: self.refresh_interval.unwrap_or(d.refresh_interval),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyTable {
    #[serde(default)]
    accept_insecure_dev: bool,
    #[serde(default)]
    measurements: Vec<String>,
    #[serde(default)]
    dev_platforms: Vec<String>,
    #[serde(default)]
    tpm_keys: Vec<String>,
    #[serde(default)]
    vendor: Option<keyward_host::attestation::VendorPolicyConfig>,
}

impl PolicyTable {
    fn policy(&self, table: &str) -> Result<EvidencePolicy> {
        let hex32 = |field: &'static str, items: &[String]| {
            items
                .iter()
                .map(|text| {
                    from_hex::<32>(field, text)
                        .map_err(|e| CliError::refused(format!("[{table}] {field}: {e}")))
                })
                .collect::<Result<Vec<_>>>()
        };
        Ok(EvidencePolicy {
            accept_insecure_dev: self.accept_insecure_dev,
            allowed_measurements: hex32("measurements", &self.measurements)?,
            trusted_dev_platforms: hex32("dev_platforms", &self.dev_platforms)?
                .iter()
                .map(|bytes| identity_key(&format!("[{table}] dev_platforms"), bytes))
                .collect::<Result<_>>()?,
            trusted_tpm_keys: hex32("tpm_keys", &self.tpm_keys)?,
            vendor: self
                .vendor
                .as_ref()
                .map(|v| v.policy(&format!("{table}.vendor")))
                .transpose()
                .map_err(CliError::refused)?,
        })
    }
}

/// A TOML error as one line, with where it is but not the line itself (which, for a file
/// passed by mistake, could be a secret key).
fn toml_error(text: &str, e: &toml::de::Error) -> CliError {
    let message = e.message().lines().next().unwrap_or("invalid TOML");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            CliError::refused(format!("line {line}, column {column}: {message}"))
        }
        None => CliError::refused(message),
    }
}

fn identity_key(field: &str, bytes: &[u8; 32]) -> Result<IdentityPublicKey> {
    IdentityPublicKey::from_bytes(bytes).map_err(|e| CliError::refused(format!("{field}: {e}")))
}

/// Builds the genesis configuration `text` describes.
fn config(text: &str) -> Result<GenesisConfig> {
    let d: Description = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
    let chain = ChainId::new(&d.chain).map_err(|e| CliError::refused(format!("chain: {e}")))?;
    let mut council = BTreeSet::new();
    for text in &d.council {
        let bytes =
            from_hex::<32>("council", text).map_err(|e| CliError::refused(e.to_string()))?;
        // A repeated member would silently shrink the council and its default threshold.
        if !council.insert(identity_key("council", &bytes)?) {
            return Err(CliError::refused(format!(
                "council: {text} is listed twice"
            )));
        }
    }
    let contract_codes = d
        .contract_codes
        .unwrap_or_else(|| vec!["kv-store".into(), "sealed-auction".into()])
        .iter()
        .map(|code| {
            // The ledger takes any well-formed name, but no worker could run an unknown one.
            if keyward_contracts::Builtin::from_code(code).is_none() {
                return Err(CliError::refused(format!(
                    "contract_codes: {code:?} is not a built-in contract"
                )));
            }
            CodeId::new(code).map_err(|e| CliError::refused(format!("contract_codes: {e}")))
        })
        .collect::<Result<BTreeSet<_>>>()?;
    Ok(GenesisConfig {
        chain,
        threshold: d
            .threshold
            .unwrap_or_else(|| GenesisConfig::majority(council.len())),
        council,
        params: d.params.params(),
        contract_codes,
        gatekeeper_policy: d.gatekeeper_policy.policy("gatekeeper_policy")?,
        worker_policy: d.worker_policy.policy("worker_policy")?,
    })
}

/// Runs `keyward genesis`: prints the genesis hash that nodes and the ledger pin.
pub fn run(args: GenesisArgs) -> Result<()> {
    let bytes = read_limited(&args.config, MAX_CONFIG_FILE)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::bad_file(&args.config, "not UTF-8 text"))?;
    let config = config(text).map_err(|e| CliError::bad_file(&args.config, e))?;
    let author = KeyFile::read(&args.sign_with)?.into_identity(&args.sign_with)?;
    config
        .validate(&author.public())
        .map_err(|e| CliError::bad_file(&args.config, e))?;
    let position = Position {
        height: 0,
        parent: EntryHash::ZERO,
        seq: 0,
    };
    let entry = Entry::sign(
        &author,
        position,
        &Body::Genesis(Box::new(config)),
        &mut rand_core::OsRng,
    );
    write_file(&args.out, entry.as_bytes(), args.force, 0o644)?;
    println!(
        "{}",
        serde_json::json!({
            "genesis": keyward_crypto::hex::to_0x(&entry.hash().0),
            "out": args.out.display().to_string(),
        })
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_description_with_only_chain_and_council_gets_the_defaults_and_accepts_no_evidence() {
        let key =
            keyward_crypto::IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new([7; 32]));
        let text = format!(
            "chain = \"c\"\ncouncil = [\"{}\"]\n",
            keyward_crypto::hex::to_0x(&key.public().to_bytes())
        );
        let c = config(&text).unwrap();
        assert_eq!((c.threshold, c.params), (1, Params::default()));
        assert_eq!(c.contract_codes.len(), 2);
        assert_eq!(c.worker_policy, EvidencePolicy::default());
        c.validate(&key.public()).unwrap();
    }

    #[test]
    fn a_vendor_table_becomes_the_policys_vendor_part() {
        let key =
            keyward_crypto::IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new([7; 32]));
        let head = format!(
            "chain = \"c\"\ncouncil = [\"{}\"]\n",
            keyward_crypto::hex::to_0x(&key.public().to_bytes())
        );
        let vendor = "platforms = [\"tdx\", \"sgx\"]\nmeasurements = [\"0a0b\"]\n";
        let c = config(&format!(
            "{head}[gatekeeper_policy.vendor]\n{vendor}[worker_policy.vendor]\n{vendor}\
             minimum_tcb = \"SWHardeningNeeded\"\n"
        ))
        .unwrap();
        let worker = c.worker_policy.vendor.as_ref().unwrap();
        assert_eq!(worker.measurements, vec![vec![10, 11]]);
        assert_eq!(
            worker.minimum_tcb,
            keyward_attest::TcbStatus::SwHardeningNeeded
        );
        c.validate(&key.public()).unwrap();
        // Gatekeepers need UpToDate.
        let c = config(&format!(
            "{head}[gatekeeper_policy.vendor]\n{vendor}minimum_tcb = \"OutOfDate\"\n\
             [worker_policy.vendor]\n{vendor}minimum_tcb = \"OutOfDate\"\n"
        ))
        .unwrap();
        assert_eq!(
            c.validate(&key.public()),
            Err(keyward_ledger::GenesisError::GatekeeperVendorNotStrict)
        );
        // Nitro and SEV-SNP evidence is unrated: a gatekeeper part naming only them is refused,
        // one that also names a DCAP platform is not.
        let unrated = Err(keyward_ledger::GenesisError::GatekeeperVendorUnrated);
        for (platforms, verdict) in [
            ("\"nitro\"", unrated.clone()),
            ("\"nitro\", \"sev-snp\"", unrated),
            ("\"nitro\", \"tdx\"", Ok(())),
        ] {
            let vendor = format!("platforms = [{platforms}]\nmeasurements = [\"0a0b\"]\n");
            let c = config(&format!(
                "{head}[gatekeeper_policy.vendor]\n{vendor}[worker_policy.vendor]\n{vendor}"
            ))
            .unwrap();
            assert_eq!(c.validate(&key.public()), verdict, "{platforms}");
        }
        let e = config(&format!(
            "{head}[worker_policy.vendor]\nplatforms = [\"sev\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("[worker_policy.vendor] platforms"), "{e}");
    }

    #[test]
    fn unknown_fields_and_bad_keys_are_refused_by_name() {
        for (text, needle) in [
            (
                "chain = \"c\"\ncouncil = []\nthreshhold = 1\n",
                "threshhold",
            ),
            ("chain = \"c\"\ncouncil = [\"0x12\"]\n", "council"),
            (
                "chain = \"c\"\ncouncil = []\n[worker_policy]\ntpm_keys = [\"zz\"]\n",
                "[worker_policy] tpm_keys",
            ),
            (
                "chain = \"c\"\ncouncil = []\ncontract_codes = [\"kvstore\"]\n",
                "not a built-in contract",
            ),
        ] {
            let e = config(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let key = keyward_crypto::hex::to_0x(
            &keyward_crypto::IdentityKeypair::from_seed(keyward_crypto::SecretBytes::new([7; 32]))
                .public()
                .to_bytes(),
        );
        let e = config(&format!(
            "chain = \"c\"\ncouncil = [\"{key}\", \"{key}\"]\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("listed twice"), "{e}");
    }

    /// A file passed as the description by mistake (a Solana keypair is one line of numbers)
    /// gets a one-line error that does not echo it.
    #[test]
    fn a_toml_error_is_one_line_and_does_not_echo_the_file() {
        let secret = "[12,34,56,78,90,12,34,56]";
        let e = config(secret).unwrap_err().to_string();
        assert_eq!(e.lines().count(), 1, "{e}");
        assert!(!e.contains("12,34"), "{e}");
        assert!(e.contains("line 1"), "{e}");
    }
}
