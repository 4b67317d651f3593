//! The sealing-source options every node command shares (`keyward_tpm::source`).

use clap::{Args, ValueEnum};

use keyward_tpm::source::{SealingSource, TpmSource};

use crate::error::CliError;

/// Where the sealing key and the monotonic counter come from.
#[derive(Debug, Args)]
pub struct SealingArgs {
    /// The sealing source: `soft` (a key file and a counter file in the data directory;
    /// insecure) or `tpm` (a TPM 2.0 seals the key under a PCR policy and keeps the counter).
    #[arg(long, value_enum, default_value_t = Source::Soft)]
    sealing: Source,
    /// With `--sealing tpm`: the TPM's TCTI [default: device:/dev/tpmrm0].
    #[arg(long, value_name = "TCTI")]
    tpm_tcti: Option<String>,
    /// With `--sealing tpm`: the PCRs (SHA-256 bank) to seal to when the directory is created,
    /// comma-separated [default: 7].
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    tpm_pcrs: Option<Vec<u8>>,
    /// With `--sealing tpm`: the counter's owner NV index, defined when the directory is created
    /// (it must be free) [default: 0x01504b57].
    #[arg(long, value_name = "INDEX", value_parser = nv_index)]
    tpm_nv_index: Option<u32>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Source {
    Soft,
    Tpm,
}

impl SealingArgs {
    /// The source these options describe.
    ///
    /// # Errors
    /// A TPM option without `--sealing tpm`: it would otherwise be ignored, and the node would
    /// seal with the insecure soft source while its operator thinks it uses the TPM.
    pub fn source(self) -> Result<SealingSource, CliError> {
        Ok(match self.sealing {
            Source::Soft => {
                if self.tpm_tcti.is_some() || self.tpm_pcrs.is_some() || self.tpm_nv_index.is_some()
                {
                    return Err(CliError::refused(
                        "--tpm-tcti, --tpm-pcrs and --tpm-nv-index need --sealing tpm",
                    ));
                }
                SealingSource::Soft
            }
            Source::Tpm => {
                let default = TpmSource::default();
                SealingSource::Tpm(TpmSource {
                    tcti: self.tpm_tcti.unwrap_or(default.tcti),
                    pcrs: self.tpm_pcrs.unwrap_or(default.pcrs),
                    nv_index: self.tpm_nv_index.unwrap_or(default.nv_index),
                })
            }
        })
    }
}

/// An NV index in hex (`0x01504b57`) or decimal.
fn nv_index(text: &str) -> Result<u32, String> {
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => text.parse(),
    }
    .map_err(|e| format!("{text:?} is not an NV index: {e}"))
}
