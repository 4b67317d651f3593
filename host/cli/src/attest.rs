//! `keyward attest`: `verify` verifies attestation evidence offline and prints what it claims;
//! `wrap` puts vendor evidence into keyward's envelope; `tpm-key` and `tpm-quote` read this
//! machine's TPM (built with the `tpm` feature): the attestation key's fingerprint, which
//! verifiers pin, and a quote of its PCRs.
//!
//! One kind of input per call: keyward's own evidence envelope (`--evidence`), or vendor
//! evidence as the platform produced it: a DCAP quote with its collateral, a Nitro attestation
//! document, or an SEV-SNP report with its VCEK. The verdict goes to stdout as one JSON object,
//! and the exit status is non-zero when verification fails.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use keyward_attest::{dcap, nitro, snp};
use keyward_enclave::{Evidence, EvidenceKind};
use keyward_tpm::source::TpmSource;

use crate::error::{CliError, Result};
use crate::keyfile::read_limited;

/// Largest evidence or endorsement file read (collateral JSON is the largest, tens of KiB).
const MAX_FILE: u64 = 4 * 1024 * 1024;

/// `keyward attest`.
#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Verify evidence offline; print the verdict, measurement and report data as JSON.
    Verify(VerifyArgs),
    /// Put vendor evidence (DCAP, Nitro, SEV-SNP) into keyward's envelope, verified as of a
    /// time that the envelope keeps.
    Wrap(WrapArgs),
    /// Print this machine's TPM attestation key and its fingerprint (what a policy's
    /// `trusted_tpm_keys` pins) as JSON.
    TpmKey(TpmArgs),
    /// Write `tpm-quote` evidence of this machine's PCRs, fresh for a nonce, to a file.
    TpmQuote(QuoteArgs),
}

/// Which TPM.
#[derive(Debug, Args)]
pub struct TpmArgs {
    /// The TPM's TCTI [default: device:/dev/tpmrm0].
    #[arg(long, value_name = "TCTI")]
    tcti: Option<String>,
}

impl TpmArgs {
    fn connect(&self) -> std::result::Result<keyward_tpm::Tpm, keyward_tpm::TpmError> {
        let default = TpmSource::default().tcti;
        keyward_tpm::Tpm::connect(self.tcti.as_deref().unwrap_or(&default))
    }
}

/// `keyward attest tpm-quote`.
#[derive(Debug, Args)]
pub struct QuoteArgs {
    #[command(flatten)]
    tpm: TpmArgs,
    /// The PCRs (SHA-256 bank) to quote, comma-separated [default: 7, as the TPM sealing
    /// source seals to].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pcrs: Option<Vec<u8>>,
    /// The verifier's nonce (its UTF-8 bytes).
    #[arg(long, value_name = "TEXT")]
    nonce: String,
    /// Where to write the evidence.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// `keyward attest verify`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["evidence", "dcap_quote", "nitro_doc", "snp_report"])))]
pub struct VerifyArgs {
    /// keyward evidence (`KWAT`): only its signature, or a vendor's chain as of the envelope's
    /// time (and, with --now, as of that time too), is checked; `dev` evidence is insecure.
    #[arg(long, value_name = "FILE")]
    evidence: Option<PathBuf>,
    #[command(flatten)]
    vendor: VendorArgs,
    /// Verify a vendor's chain as of this time (UNIX seconds) [default: now; for --evidence,
    /// the envelope's own time].
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<u64>,
}

/// `keyward attest wrap`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["dcap_quote", "nitro_doc", "snp_report"])))]
pub struct WrapArgs {
    #[command(flatten)]
    vendor: VendorArgs,
    /// The time its chain is verified at, kept in the envelope (UNIX seconds) [default: now].
    #[arg(long, value_name = "UNIX_SECONDS")]
    now: Option<u64>,
    /// Where to write the envelope.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// Vendor evidence as the platform produced it.
#[derive(Debug, Args)]
pub struct VendorArgs {
    /// An Intel SGX or TDX DCAP quote (binary); needs --collateral.
    #[arg(long, value_name = "FILE", requires = "collateral")]
    dcap_quote: Option<PathBuf>,
    /// The quote's collateral, as PCCS JSON (dcap-qvl's QuoteCollateralV3).
    #[arg(long, value_name = "FILE", requires = "dcap_quote")]
    collateral: Option<PathBuf>,
    /// An AWS Nitro Enclaves attestation document (COSE_Sign1).
    #[arg(long, value_name = "FILE")]
    nitro_doc: Option<PathBuf>,
    /// An AMD SEV-SNP attestation report (binary or hex text); needs --vcek.
    #[arg(long, value_name = "FILE", requires = "vcek")]
    snp_report: Option<PathBuf>,
    /// The VCEK certificate (DER) of the chip that signed the report.
    #[arg(long, value_name = "FILE", requires = "snp_report")]
    vcek: Option<PathBuf>,
}

/// Vendor evidence read from its files.
struct VendorInput {
    kind: EvidenceKind,
    evidence: Vec<u8>,
    endorsement: Vec<u8>,
}

impl VendorArgs {
    /// The vendor evidence given (clap requires one input and its companion).
    fn read(&self) -> Result<VendorInput> {
        let read = |path: &Path| read_limited(path, MAX_FILE).map(|bytes| bytes.to_vec());
        let (kind, evidence, endorsement) =
            if let (Some(quote), Some(collateral)) = (&self.dcap_quote, &self.collateral) {
                (EvidenceKind::Dcap, read(quote)?, read(collateral)?)
            } else if let Some(doc) = &self.nitro_doc {
                (EvidenceKind::Nitro, read(doc)?, Vec::new())
            } else if let (Some(report), Some(vcek)) = (&self.snp_report, &self.vcek) {
                (EvidenceKind::SevSnp, read(report)?, read(vcek)?)
            } else {
                unreachable!("clap requires one input and its companion")
            };
        Ok(VendorInput {
            kind,
            evidence,
            endorsement,
        })
    }
}

/// Writes `evidence` to `out`, replacing it atomically.
fn write_evidence(out: &Path, evidence: &Evidence) -> Result<()> {
    keyward_host::files::replace(out, &evidence.to_bytes())
        .map_err(|e| CliError::refused(format!("cannot write {}: {e}", out.display())))
}

fn now_or(given: Option<u64>) -> u64 {
    given.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    })
}

/// Runs `keyward attest`.
pub fn run(cmd: AttestCommand) -> Result<()> {
    match cmd {
        AttestCommand::Verify(args) => verify(&args),
        AttestCommand::Wrap(args) => {
            let input = args.vendor.read()?;
            let evidence = Evidence::vendor(
                input.kind,
                input.evidence,
                input.endorsement,
                now_or(args.now),
            )
            .map_err(|e| CliError::refused(format!("evidence rejected: {e}")))?;
            write_evidence(&args.out, &evidence)?;
            println!(
                "{}",
                json!({
                    "kind": evidence.kind().name(),
                    "measurement": hex::encode(evidence.measurement()),
                    "reportData": hex::encode(evidence.report_data()),
                    "verifiedAt": evidence.verified_at(),
                    "out": args.out.display().to_string(),
                })
            );
            Ok(())
        }
        AttestCommand::TpmKey(args) => {
            let key = args
                .connect()
                .and_then(|mut tpm| tpm.attestation_key())
                .map_err(CliError::refused)?;
            println!(
                "{}",
                json!({
                    "fingerprint": hex::encode(key.fingerprint()),
                    "sec1": hex::encode(key.to_sec1()),
                })
            );
            Ok(())
        }
        AttestCommand::TpmQuote(args) => {
            let pcrs = args.pcrs.unwrap_or_else(|| TpmSource::default().pcrs);
            let evidence = args
                .tpm
                .connect()
                .and_then(|mut tpm| tpm.quote(&[], args.nonce.as_bytes(), &pcrs))
                .map_err(CliError::refused)?;
            write_evidence(&args.out, &evidence)?;
            println!(
                "{}",
                json!({
                    "measurement": hex::encode(evidence.measurement()),
                    "out": args.out.display().to_string(),
                })
            );
            Ok(())
        }
    }
}

fn verify(args: &VerifyArgs) -> Result<()> {
    // What the verdict is as of: `verifiedAt`, the time the vendor's chain is checked at (for an
    // envelope its own, none for `dev` and `tpm-quote`); `checkedAt`, `--now` for an envelope
    // whose vendor chain is checked then as well.
    let mut times = serde_json::Map::new();
    let verdict: std::result::Result<Value, String> = if let Some(path) = &args.evidence {
        let bytes = read_limited(path, MAX_FILE)?;
        Evidence::from_bytes(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|evidence| {
                let own = evidence.verified_at();
                times.insert("verifiedAt".into(), json!(own));
                // Good when it was made, and (with --now) still good then.
                let also = own.and(args.now);
                if let Some(at) = also {
                    times.insert("checkedAt".into(), json!(at));
                }
                own_evidence(&evidence, also)
            })
    } else {
        let now = now_or(args.now);
        times.insert("verifiedAt".into(), json!(now));
        let input = args.vendor.read()?;
        let (evidence, endorsement) = (&input.evidence, &input.endorsement);
        match input.kind {
            EvidenceKind::Dcap => dcap::verify(evidence, endorsement, now),
            EvidenceKind::Nitro => nitro::verify(evidence, now),
            _ => snp::verify(evidence, endorsement, now),
        }
        .map(|claims| claims.to_json())
        .map_err(|e| e.to_string())
    };
    let (mut out, result) = match verdict {
        Ok(mut claims) => {
            claims["verdict"] = json!("verified");
            (claims, Ok(()))
        }
        Err(reason) => {
            let refused = CliError::Refused(format!("evidence rejected: {reason}"));
            (
                json!({ "verdict": "rejected", "reason": reason }),
                Err(refused),
            )
        }
    };
    for (name, time) in times {
        out[name] = time;
    }
    println!("{out}");
    result
}

/// keyward's envelope: its signature (for vendor evidence, the vendor's chain at the envelope's
/// time), then, given `also`, the vendor's chain at that time too.
fn own_evidence(evidence: &Evidence, also: Option<u64>) -> std::result::Result<Value, String> {
    evidence.check_signature().map_err(|e| e.to_string())?;
    let mut out = json!({
        "platform": evidence.kind().name(),
        "insecure": evidence.kind() == EvidenceKind::Dev,
        "measurement": hex::encode(evidence.measurement()),
        "reportData": hex::encode(evidence.report_data()),
    });
    // Who vouches for it: trust in that key is the verifier's policy, not this command's.
    if let Some(platform) = evidence.platform() {
        out["platformKey"] = json!(platform.to_string());
    }
    if let Some(key) = evidence.tpm_key() {
        out["tpmKeyFingerprint"] = json!(hex::encode(key.fingerprint()));
    }
    // What the vendor signed: its own measurement (what a vendor policy pins), TCB status.
    let claims = match also {
        Some(at) => evidence.vendor_claims_at(at),
        None => evidence.vendor_claims(),
    };
    if let Some(claims) = claims {
        out["vendor"] = claims.map_err(|e| e.to_string())?.to_json();
    }
    Ok(out)
}
