//! # keyward-attest: vendor attestation evidence, verified offline, and attestation policy
//!
//! Part of keyward's **trusted core**: no I/O, no clock, no `unsafe`. Every verifier takes the
//! evidence as bytes, the endorsements it needs as bytes, and the time to verify at, so a
//! verdict can be reproduced later from the same inputs.
//!
//! - [`dcap`]: Intel SGX and TDX DCAP quotes with their collateral (dcap-qvl), chained to
//!   Intel's SGX root CA; debug enclaves and TDs are refused. A TD's measurement digests MRTD,
//!   RTMR0–3 and its configuration registers, not MRTD alone.
//! - [`nitro`]: AWS Nitro Enclaves attestation documents (nitro_attest), chained to the pinned
//!   AWS Nitro root, every certificate valid at the given time.
//! - [`snp`]: AMD SEV-SNP attestation reports with the chip's VCEK, chained to AMD's built-in
//!   ARK and ASK (sev); debug-enabled guests are refused. A report carries no time: freshness
//!   comes from a verifier nonce in its report data.
//! - [`policy`]: which platforms, measurements and TCB statuses a verifier accepts, how old
//!   evidence may be, and what its report data must be.
//!
//! Each verifier returns the same [`Claims`], so a policy is written once for every platform.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dcap;
pub mod nitro;
pub mod policy;
pub mod snp;

use core::fmt;

use thiserror::Error;

pub use policy::{AttestationPolicy, PolicyError};

/// The trusted execution environment a piece of evidence comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    /// An Intel SGX enclave (DCAP quote).
    Sgx,
    /// An Intel TDX trust domain (DCAP quote).
    Tdx,
    /// An AWS Nitro enclave (attestation document).
    Nitro,
    /// An AMD SEV-SNP guest (attestation report).
    SevSnp,
}

impl Platform {
    /// Every platform, in a fixed order (the bit order of an encoded platform set).
    pub const ALL: [Self; 4] = [Self::Sgx, Self::Tdx, Self::Nitro, Self::SevSnp];

    /// The platform named `name` ([`Platform::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Whether this platform's verifier rates its TCB: DCAP (SGX, TDX) does; the Nitro and
    /// SEV-SNP verifiers here give every piece of evidence [`TcbStatus::Unrated`]. A genesis rule
    /// depends on it (`GatekeeperVendorUnrated` in keyward-ledger), so changing it changes which
    /// ledgers load: a protocol change.
    pub const fn is_rated(self) -> bool {
        matches!(self, Self::Sgx | Self::Tdx)
    }

    /// The platform's name in JSON output and configuration.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Sgx => "sgx",
            Self::Tdx => "tdx",
            Self::Nitro => "nitro",
            Self::SevSnp => "sev-snp",
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How current the platform's trusted computing base is: Intel's DCAP statuses, in keyward's
/// order, best first (Intel ranks some of them only partly). Evidence whose verifier computes no
/// status is [`TcbStatus::Unrated`], which is not part of that order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcbStatus {
    /// Fully up to date.
    UpToDate,
    /// Up to date, but software hardening (for an advisory) is needed.
    SwHardeningNeeded,
    /// Up to date, but the platform's configuration needs changing.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSwHardeningNeeded,
    /// TDX: the TD runs on an up-to-date platform but was launched on an older TCB; relaunch it.
    TdRelaunchAdvised,
    /// TDX: as above, and the platform's configuration needs changing.
    TdRelaunchAdvisedConfigurationNeeded,
    /// An older TCB with known vulnerabilities.
    OutOfDate,
    /// Out of date, and the configuration needs changing.
    OutOfDateConfigurationNeeded,
    /// The TCB's keys are revoked.
    Revoked,
    /// No status computed: Nitro has no TCB levels, and SEV-SNP's are not yet compared with
    /// the VCEK's.
    Unrated,
}

impl TcbStatus {
    /// Every status, best first, then `Unrated` (an encoded status is its index here).
    pub const ALL: [Self; 10] = [
        Self::UpToDate,
        Self::SwHardeningNeeded,
        Self::ConfigurationNeeded,
        Self::ConfigurationAndSwHardeningNeeded,
        Self::TdRelaunchAdvised,
        Self::TdRelaunchAdvisedConfigurationNeeded,
        Self::OutOfDate,
        Self::OutOfDateConfigurationNeeded,
        Self::Revoked,
        Self::Unrated,
    ];

    /// The status's name, as Intel spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Self::UpToDate => "UpToDate",
            Self::SwHardeningNeeded => "SWHardeningNeeded",
            Self::ConfigurationNeeded => "ConfigurationNeeded",
            Self::ConfigurationAndSwHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            Self::TdRelaunchAdvised => "TDRelaunchAdvised",
            Self::TdRelaunchAdvisedConfigurationNeeded => "TDRelaunchAdvisedConfigurationNeeded",
            Self::OutOfDate => "OutOfDate",
            Self::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            Self::Revoked => "Revoked",
            Self::Unrated => "Unrated",
        }
    }

    /// The status named `name` ([`TcbStatus::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What verified evidence says. Every field is covered by the vendor's signature chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// Where the evidence comes from.
    pub platform: Platform,
    /// The code identity: SGX MRENCLAVE (32 bytes), for TDX a SHA-384 digest of MRTD, RTMR0–3
    /// and the TD's configuration registers (48, [`dcap`]), Nitro PCR0 (48), SEV-SNP MEASUREMENT
    /// (48).
    pub measurement: Vec<u8>,
    /// The registers `measurement` digests, by name, where it is a digest (TDX); empty where it
    /// is the vendor's register itself. Shown so an operator can see what a policy pins.
    pub registers: Vec<(&'static str, Vec<u8>)>,
    /// The data the enclave bound into the evidence: SGX, TDX and SEV-SNP report data (64
    /// bytes), Nitro `user_data` (empty when absent).
    pub report_data: Vec<u8>,
    /// The TCB status.
    pub tcb_status: TcbStatus,
    /// Security advisories that apply to the platform (DCAP).
    pub advisories: Vec<String>,
    /// When the evidence was made, UNIX seconds, if it says (Nitro).
    pub issued_at: Option<u64>,
    /// The latest time the vendor signed into the evidence or its endorsements, UNIX seconds:
    /// for DCAP the latest issue date of the collateral (TCB info, QE identity, CRLs and
    /// certificates), for Nitro the document's time; none for SEV-SNP. Unlike the time a
    /// verifier chooses to check at, it cannot lie ahead of when the vendor signed it.
    pub signed_at: Option<u64>,
    /// The TCB evaluation data number the TCB status was computed under (DCAP: the lower of the
    /// TCB info's and the QE identity's `tcbEvaluationDataNumber`); none for Nitro and SEV-SNP.
    /// Intel raises it, per platform (SGX, TDX), at each TCB recovery, so collateral from
    /// before a recovery carries a lower one.
    pub tcb_evaluation: Option<u32>,
}

impl Claims {
    /// The claims as JSON: byte strings as lowercase hex.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "platform": self.platform.name(),
            "measurement": hex::encode(&self.measurement),
            "registers": self
                .registers
                .iter()
                .map(|(name, value)| (name.to_string(), hex::encode(value).into()))
                .collect::<serde_json::Map<_, _>>(),
            "reportData": hex::encode(&self.report_data),
            "tcbStatus": self.tcb_status.name(),
            "advisories": self.advisories,
            "issuedAt": self.issued_at,
            "signedAt": self.signed_at,
            "tcbEvaluation": self.tcb_evaluation,
        })
    }
}

/// Why evidence was not verified.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AttestError {
    /// The evidence or an endorsement is not in the expected format.
    #[error("{what} is malformed: {reason}")]
    Malformed {
        /// Which input.
        what: &'static str,
        /// What is wrong, as the parser says.
        reason: String,
    },
    /// The evidence parsed but does not verify: a broken signature or chain, an expired or
    /// revoked certificate or collateral, an unknown TCB.
    #[error("{platform} evidence does not verify: {reason}")]
    Rejected {
        /// The platform.
        platform: Platform,
        /// What failed, as the vendor's verifier says.
        reason: String,
    },
    /// The evidence comes from a debug enclave or guest, whose memory the host can read.
    #[error("{0} evidence is from a debug enclave or guest")]
    Debug(Platform),
}
