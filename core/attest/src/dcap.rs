//! Intel SGX and TDX DCAP quotes, verified with dcap-qvl against Intel's SGX root CA.
//!
//! The collateral (PCK CRL and its chain, TCB info, QE identity, and for quotes that do not
//! embed it the PCK chain) is the JSON form of dcap-qvl's `QuoteCollateralV3`, as a PCCS or
//! Intel's PCS serves it. It is stored beside the quote, so a verdict can be checked again
//! offline. Verification fails once any CRL, the TCB info or the QE identity has passed its
//! `nextUpdate`, about 30 days after it was issued.

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::quote::Report;

use crate::{AttestError, Claims, Platform, TcbStatus};

/// Verifies a DCAP quote (SGX v3, TDX v4 or v5) against `collateral` (JSON) at `now` (UNIX
/// seconds) and returns what it claims. Debug enclaves and TDs are refused.
///
/// # Errors
/// [`AttestError::Malformed`] for collateral that is not `QuoteCollateralV3` JSON;
/// [`AttestError::Rejected`] when the quote does not verify (dcap-qvl's reason); an unknown TCB
/// status is also rejected.
pub fn verify(quote: &[u8], collateral: &[u8], now: u64) -> Result<Claims, AttestError> {
    let collateral: QuoteCollateralV3 =
        serde_json::from_slice(collateral).map_err(|e| AttestError::Malformed {
            what: "DCAP collateral",
            reason: e.to_string(),
        })?;
    // The platform is known only once the quote parses; a quote that does not is reported as
    // the kind its header claims, or SGX.
    let claimed = match quote.get(4..8) {
        Some([0x81, 0, 0, 0]) => Platform::Tdx,
        _ => Platform::Sgx,
    };
    let verified =
        dcap_qvl::verify::verify(quote, &collateral, now).map_err(|e| AttestError::Rejected {
            platform: claimed,
            reason: format!("{e:#}"),
        })?;
    let (platform, measurement, report_data) = match &verified.report {
        Report::SgxEnclave(r) => (Platform::Sgx, r.mr_enclave.to_vec(), r.report_data),
        Report::TD10(r) => (Platform::Tdx, r.mr_td.to_vec(), r.report_data),
        Report::TD15(r) => (Platform::Tdx, r.base.mr_td.to_vec(), r.base.report_data),
        Report::TD15Ex(r) => (
            Platform::Tdx,
            r.base.base.mr_td.to_vec(),
            r.base.base.report_data,
        ),
    };
    let tcb_status =
        TcbStatus::from_name(&verified.status).ok_or_else(|| AttestError::Rejected {
            platform,
            reason: format!("unknown TCB status {:?}", verified.status),
        })?;
    Ok(Claims {
        platform,
        measurement,
        report_data: report_data.to_vec(),
        tcb_status,
        advisories: verified.advisory_ids,
        issued_at: None,
    })
}
