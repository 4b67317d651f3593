//! # keyward-tpm: a TPM 2.0 as the sealing-key source and the monotonic counter
//!
//! Part of keyward's **host**: it talks to a TPM through Debian's tpm2-tss (tss-esapi), over any
//! TCTI (`device:/dev/tpmrm0` on a machine with a TPM, `swtpm:host=127.0.0.1,port=2321` for the
//! software TPM the tests use). The core never sees the TPM: it gets the 32-byte sealing key the
//! TPM released, and the counter's value.
//!
//! - [`Tpm::seal_key`] seals a sealing key to the TPM under a PCR policy: the TPM releases it
//!   again ([`Tpm::unseal_key`]) only while the selected PCRs hold the values they held at
//!   sealing, and only on this TPM (the sealed object is bound to its storage root key). What the
//!   host stores, a [`TpmSealedKey`], is useless anywhere else.
//! - [`NvCounter`] is a TPM NV counter: it only goes up, and lives in the TPM, so a host that
//!   restores its whole disk cannot bring it back. A counter index that is deleted and defined
//!   again starts at the highest value any counter on that TPM has had (TPM 2.0 Part 1 §37.7.3),
//!   so deleting it does not wind it back either.
//!
//! - [`source`]: the sealing source every keyward service is configured with, `soft` (key and
//!   counter files) or `tpm` (the two above), and what each protects against.
//! - [`swtpm`]: a software TPM process for tests and dev networks.
//!
//! What a TPM does not protect against: anyone who can run commands on it (the host's root user)
//! can unseal the key while the PCRs are unchanged; PCRs measure the boot chain, not keyward's
//! process. swtpm keeps its state in a file, so under swtpm all of this is API parity, not
//! security.
//!
//! TPM support needs Debian's libtss2-dev at build time, so it is the cargo feature `tpm`
//! (`.ci/run` turns it on and installs the package); without it, [`Tpm::connect`] says so.
//!
//! ```text
//! TpmSealedKey = "KWTK" || 0x01 || var8(PCR indices, SHA-256 bank) || var16(TPM2B_PUBLIC)
//!                || var16(TPM2B_PRIVATE)
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use thiserror::Error;

use keyward_crypto::{DecodeError, Reader, Writer};

pub mod source;
pub mod swtpm;

#[cfg(feature = "tpm")]
mod tss;
#[cfg(feature = "tpm")]
pub use tss::{NvCounter, Tpm};

#[cfg(not(feature = "tpm"))]
mod absent;
#[cfg(not(feature = "tpm"))]
pub use absent::{NvCounter, Tpm};

const MAGIC: &[u8; 4] = b"KWTK";
const VERSION: u8 = 1;
const FORMAT: &str = "keyward TPM-sealed key";

/// What went wrong talking to the TPM.
#[derive(Debug, Error)]
pub enum TpmError {
    /// The TCTI string does not parse, or the TPM cannot be reached.
    #[error("cannot reach the TPM at {tcti}: {reason}")]
    Connect {
        /// The TCTI configuration.
        tcti: String,
        /// Why.
        reason: String,
    },
    /// A TPM command failed.
    #[error("TPM {command} failed: {reason}")]
    Command {
        /// The command.
        command: &'static str,
        /// The TSS error (its response code names the reason).
        reason: String,
    },
    /// The TPM refused to unseal: the PCRs have changed since sealing, or the sealed key belongs
    /// to another TPM or was altered.
    #[error(
        "the TPM refused to unseal the sealing key (PCRs changed, another TPM, or altered): {0}"
    )]
    Unseal(String),
    /// This build has no TPM support (build keyward with `--features keyward-tpm/tpm`).
    #[error(
        "this keyward was built without TPM support: build it with --features keyward-tpm/tpm (needs libtss2-dev)"
    )]
    NotBuilt,
    /// A stored sealed key does not decode.
    #[error("TPM-sealed key is malformed: {0}")]
    Malformed(#[from] DecodeError),
    /// The quote could not be made into evidence (keys or nonce over the report data's limits,
    /// or a quote keyward cannot read).
    #[error("TPM quote: {0}")]
    Evidence(#[from] keyward_enclave::EvidenceError),
    /// A PCR index outside 0–23.
    #[error("PCR {0} does not exist (0-23)")]
    NoSuchPcr(u8),
    /// A PCR selection keyward does not seal to or quote: empty, repeated or more than 8 PCRs,
    /// or one the TPM leaves out (its SHA-256 bank not allocated for them).
    #[error("PCR selection {pcrs:?}: {reason}")]
    PcrSelection {
        /// The PCRs asked for.
        pcrs: Vec<u8>,
        /// What is wrong.
        reason: &'static str,
    },
    /// The TPM started no session.
    #[error("the TPM started no session")]
    NoSession,
    /// An NV index outside the owner range, or one that is not a counter.
    #[error("NV index {index:#010x} cannot be used as a counter: {reason}")]
    NvIndex {
        /// The index.
        index: u32,
        /// Why.
        reason: &'static str,
    },
}

/// A sealing key sealed by a TPM under a PCR policy: what the host stores instead of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TpmSealedKey {
    pcrs: Vec<u8>,
    public: Vec<u8>,
    private: Vec<u8>,
}

impl TpmSealedKey {
    /// The PCRs (SHA-256 bank) whose values the key is sealed to.
    pub fn pcrs(&self) -> &[u8] {
        &self.pcrs
    }

    /// The stored form (module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.var8(&self.pcrs).var16(&self.public).var16(&self.private);
        w.finish()
    }

    /// Decodes the stored form; the TPM checks the rest when it loads the object.
    ///
    /// # Errors
    /// [`TpmError::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TpmError> {
        let mut r = Reader::new(bytes);
        r.header(FORMAT, MAGIC, VERSION)?;
        let pcrs = r.var8("PCR selection", 24)?.to_vec();
        let public = r.var16("TPM2B_PUBLIC", 4096)?.to_vec();
        let private = r.var16("TPM2B_PRIVATE", 4096)?.to_vec();
        r.finish()?;
        Ok(Self {
            pcrs,
            public,
            private,
        })
    }
}

/// Most PCRs one selection holds: what one PCR_Read returns, so the TPM's answer can be checked.
pub const MAX_PCRS: usize = 8;

/// Checks a PCR selection before anything is made from it: 1 to [`MAX_PCRS`] distinct PCRs,
/// each 0–23. An empty selection would seal to nothing and quote nothing.
///
/// # Errors
/// [`TpmError::NoSuchPcr`] or [`TpmError::PcrSelection`].
pub fn check_pcrs(pcrs: &[u8]) -> Result<(), TpmError> {
    let bad = |reason| TpmError::PcrSelection {
        pcrs: pcrs.to_vec(),
        reason,
    };
    if pcrs.is_empty() {
        return Err(bad("it is empty: the key would open in any boot state"));
    }
    if pcrs.len() > MAX_PCRS {
        return Err(bad("more than 8 PCRs"));
    }
    if let Some(&pcr) = pcrs.iter().find(|&&p| p > 23) {
        return Err(TpmError::NoSuchPcr(pcr));
    }
    let mut sorted = pcrs.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != pcrs.len() {
        return Err(bad("a PCR is listed twice"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_key_s_stored_form_round_trips_and_refuses_damage() {
        let sealed = TpmSealedKey {
            pcrs: vec![0, 7],
            public: vec![1; 50],
            private: vec![2; 120],
        };
        let bytes = sealed.to_bytes();
        assert_eq!(TpmSealedKey::from_bytes(&bytes).unwrap(), sealed);
        for len in 0..bytes.len() {
            assert!(TpmSealedKey::from_bytes(&bytes[..len]).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(TpmSealedKey::from_bytes(&longer).is_err());
    }

    #[test]
    fn a_pcr_selection_is_one_to_eight_distinct_pcrs() {
        check_pcrs(&[7]).unwrap();
        check_pcrs(&[0, 2, 4, 7, 8, 9, 14, 23]).unwrap();
        assert!(matches!(
            check_pcrs(&[]),
            Err(TpmError::PcrSelection { .. })
        ));
        assert!(matches!(
            check_pcrs(&[7, 7]),
            Err(TpmError::PcrSelection { .. })
        ));
        assert!(matches!(check_pcrs(&[24]), Err(TpmError::NoSuchPcr(24))));
        assert!(matches!(
            check_pcrs(&[0, 1, 2, 3, 4, 5, 6, 7, 8]),
            Err(TpmError::PcrSelection { .. })
        ));
    }

    #[cfg(not(feature = "tpm"))]
    #[test]
    fn without_the_feature_connecting_says_how_to_get_tpm_support() {
        let error = Tpm::connect("swtpm:host=127.0.0.1,port=2321").unwrap_err();
        assert!(matches!(error, TpmError::NotBuilt));
        assert!(error.to_string().contains("--features keyward-tpm/tpm"));
    }
}
