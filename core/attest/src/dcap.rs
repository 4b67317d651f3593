//! Intel SGX and TDX DCAP quotes, verified with dcap-qvl against Intel's SGX root CA.
//!
//! The collateral (PCK CRL and its chain, TCB info, QE identity, and for quotes that do not
//! embed it the PCK chain) is the JSON form of dcap-qvl's `QuoteCollateralV3`, as a PCCS or
//! Intel's PCS serves it. It is stored beside the quote, so a verdict can be checked again
//! offline. Verification fails once any CRL, the TCB info or the QE identity has passed its
//! `nextUpdate`, about 30 days after it was issued.

use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::configs::DefaultConfig;
use dcap_qvl::policy::{Policy, QuoteClaims};
use dcap_qvl::quote::Report;
use dcap_qvl::verify::QuoteVerifier;

use sha2::{Digest, Sha384};

use crate::{AttestError, Claims, Platform, TcbStatus};

/// dcap-qvl's policy hook, left empty: keyward's own policy judges the claims.
struct NoPolicy;

impl Policy for NoPolicy {
    fn validate(&self, _: &QuoteClaims) -> anyhow::Result<()> {
        Ok(())
    }
}

/// Domain label of a TD's measurement ([`td_identity`]).
const TD_MEASUREMENT_LABEL: &[u8] = b"keyward/tdx-measurement/v1";

/// A TD's measurement and the registers it digests, with the report data.
type TdIdentity = (Platform, Vec<u8>, Vec<(&'static str, Vec<u8>)>, [u8; 64]);

/// A TD's measurement: SHA-384 over a label and every register that decides what runs in the TD
/// and how it is configured (PROTOCOL.md §13.5). MRTD alone covers only the TD's firmware; the
/// kernel, its command line and the application are measured into RTMR0–3 at boot, and the host
/// chooses MRCONFIGID, MROWNER, MROWNERCONFIG, the attributes and the service TD binding, so a
/// policy that pins the measurement pins all of them. MRSERVICETD is zeros in every quote
/// accepted here (dcap-qvl refuses a TD with a bound service TD) and for TD 1.0, which has none;
/// it is in the digest so that accepting service TDs later changes the measurement.
fn td_identity(r: &dcap_qvl::quote::TDReport10, service_td: Option<&[u8; 48]>) -> TdIdentity {
    let registers: Vec<(&'static str, Vec<u8>)> = vec![
        ("tdAttributes", r.td_attributes.to_vec()),
        ("xfam", r.xfam.to_vec()),
        ("mrTd", r.mr_td.to_vec()),
        ("mrConfigId", r.mr_config_id.to_vec()),
        ("mrOwner", r.mr_owner.to_vec()),
        ("mrOwnerConfig", r.mr_owner_config.to_vec()),
        ("rtmr0", r.rt_mr0.to_vec()),
        ("rtmr1", r.rt_mr1.to_vec()),
        ("rtmr2", r.rt_mr2.to_vec()),
        ("rtmr3", r.rt_mr3.to_vec()),
        (
            "mrServiceTd",
            service_td.copied().unwrap_or([0; 48]).to_vec(),
        ),
    ];
    let mut digest = Sha384::new_with_prefix(TD_MEASUREMENT_LABEL);
    for (_, value) in &registers {
        digest.update(value);
    }
    (
        Platform::Tdx,
        digest.finalize().to_vec(),
        registers,
        r.report_data,
    )
}

/// A TD 1.5 "Ex" report names the VM it was made for: 0 for the TD itself, 1–3 for a VM that a
/// partitioned TD runs. Such a VM's code is not in the TD's registers (its L1 VMM is), yet its
/// report data is what the VM asked for, so a report for it says nothing about the keys it binds.
/// Refused, as dcap-qvl refuses debug TDs.
fn require_the_td_itself(vmid: u8) -> Result<(), AttestError> {
    if vmid == 0 {
        Ok(())
    } else {
        Err(AttestError::Rejected {
            platform: Platform::Tdx,
            reason: format!(
                "the report was made for VM {vmid} of a partitioned TD, which the TD's registers \
                 do not measure"
            ),
        })
    }
}

/// Verifies a DCAP quote (SGX v3, TDX v4 or v5) against `collateral` (JSON) at `now` (UNIX
/// seconds) and returns what it claims. Debug enclaves and TDs, and reports a partitioned TD made
/// for one of its VMs, are refused.
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
    // dcap-qvl's claims API runs the same verification as its one-shot `verify` (same root,
    // debug and service TDs refused) and adds the collateral's dates; building them re-parses
    // the CRLs and certificates, all signed by Intel. keyward applies its own policy afterwards
    // (`AttestationPolicy`). `signed_at` is part of the ledger's rules, so changing dcap-qvl's
    // version is a protocol change.
    let verified = QuoteVerifier::<DefaultConfig>::new_prod()
        .verify_with_policy(quote, collateral, now, &NoPolicy)
        .map_err(|e| AttestError::Rejected {
            platform: claimed,
            reason: format!("{e:#}"),
        })?;
    let (platform, measurement, registers, report_data) = match &verified.report {
        Report::SgxEnclave(r) => (
            Platform::Sgx,
            r.mr_enclave.to_vec(),
            Vec::new(),
            r.report_data,
        ),
        Report::TD10(r) => td_identity(r, None),
        Report::TD15(r) => td_identity(&r.base, Some(&r.mr_service_td)),
        Report::TD15Ex(r) => {
            require_the_td_itself(r.vmid)?;
            td_identity(&r.base.base, Some(&r.base.mr_service_td))
        }
    };
    let status = verified.tcb.status.to_string();
    let tcb_status = TcbStatus::from_name(&status).ok_or_else(|| AttestError::Rejected {
        platform,
        reason: format!("unknown TCB status {status:?}"),
    })?;
    Ok(Claims {
        platform,
        measurement,
        registers,
        report_data: report_data.to_vec(),
        tcb_status,
        advisories: verified.tcb.advisory_ids,
        issued_at: None,
        signed_at: Some(verified.latest_issue_date),
        tcb_evaluation: Some(verified.tcb.eval_data_number),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_report_for_the_td_itself_is_accepted() {
        assert!(require_the_td_itself(0).is_ok());
        for vmid in [1, 2, 3, 255] {
            let error = require_the_td_itself(vmid).unwrap_err();
            assert!(
                matches!(&error, AttestError::Rejected { platform: Platform::Tdx, reason }
                    if reason.contains(&format!("VM {vmid}"))),
                "{error}"
            );
        }
    }
}
