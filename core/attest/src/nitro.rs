//! AWS Nitro Enclaves attestation documents, verified with nitro_attest.
//!
//! A document is a COSE_Sign1 signed by a certificate that chains to the AWS Nitro Enclaves
//! root (pinned by nitro_attest by its SHA-256 fingerprint); every certificate must be valid at
//! the time given. The measurement is PCR0, the hash of the enclave image file.

use time::OffsetDateTime;

use crate::{AttestError, Claims, Platform, TcbStatus};

/// Verifies a Nitro attestation document at `now` (UNIX seconds) and returns what it claims.
///
/// # Errors
/// [`AttestError::Rejected`] when the document does not parse or verify (nitro_attest's reason),
/// or has no 48-byte PCR0.
pub fn verify(document: &[u8], now: u64) -> Result<Claims, AttestError> {
    let rejected = |reason: String| AttestError::Rejected {
        platform: Platform::Nitro,
        reason,
    };
    let now = i64::try_from(now)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .ok_or_else(|| rejected(format!("{now} is not a representable time")))?;
    let doc = nitro_attest::UnparsedAttestationDoc::from(document)
        .parse_and_verify(now)
        .map_err(|e| rejected(e.to_string()))?;
    let pcr0 = doc
        .pcrs
        .get(&0)
        .filter(|d| d.value.len() == 48)
        .ok_or_else(|| rejected("no 48-byte PCR0".into()))?;
    let issued_at = u64::try_from(doc.timestamp.unix_timestamp()).ok();
    Ok(Claims {
        platform: Platform::Nitro,
        measurement: pcr0.value.clone(),
        registers: Vec::new(),
        report_data: doc.user_data.map(|b| b.into_vec()).unwrap_or_default(),
        tcb_status: TcbStatus::Unrated,
        advisories: Vec::new(),
        issued_at,
        signed_at: issued_at,
        tcb_evaluation: None,
    })
}
