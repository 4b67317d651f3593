//! AMD SEV-SNP attestation reports, verified with sev against AMD's built-in roots.
//!
//! The report is signed by the chip's VCEK, which AMD's KDS serves per chip and TCB; the VCEK
//! must chain to the ASK and ARK of a product generation (Milan, Genoa or Turin; the ones sev
//! embeds). The report carries no time: it is fresh only if its report data holds a verifier's
//! nonce. The chain is checked at a given time: the ARK, ASK and VCEK must each be valid then.
//! AMD's certificate revocation list is not checked. The reported TCB is not yet compared with
//! the VCEK's, so the TCB status is [`TcbStatus::Unrated`].

use sev::certs::snp::{Certificate, Chain, Verifiable, builtin, ca};
use sev::firmware::guest::AttestationReport;
use sev::parser::ByteParser;

use crate::{AttestError, Claims, Platform, TcbStatus};

/// Verifies an SEV-SNP attestation report (raw, or as hex text) signed by the VCEK `vcek`
/// (DER), with the chain checked at `now` (UNIX seconds), and returns what it claims.
/// Debug-enabled guests are refused.
///
/// # Errors
/// [`AttestError::Malformed`] for a report or VCEK that does not parse;
/// [`AttestError::Rejected`] when the VCEK does not chain to a built-in ARK and ASK, a
/// certificate of the chain is not valid at `now`, the VCEK does not sign the report, or the
/// report comes from a VMPL other than 0; [`AttestError::Debug`] for a guest whose policy allows
/// debugging.
pub fn verify(report: &[u8], vcek: &[u8], now: u64) -> Result<Claims, AttestError> {
    let malformed = |what, reason: String| AttestError::Malformed { what, reason };
    let rejected = |reason: String| AttestError::Rejected {
        platform: Platform::SevSnp,
        reason,
    };
    let raw = unhex(report).unwrap_or_else(|| report.to_vec());
    let parsed = AttestationReport::from_bytes(&raw)
        .map_err(|e| malformed("SEV-SNP report", e.to_string()))?;
    let vek = Certificate::from_der(vcek).map_err(|e| malformed("VCEK", e.to_string()))?;
    let generations = [
        (builtin::milan::ark(), builtin::milan::ask()),
        (builtin::genoa::ark(), builtin::genoa::ask()),
        (builtin::turin::ark(), builtin::turin::ask()),
    ];
    let chain = generations
        .into_iter()
        .filter_map(|(ark, ask)| Some((ark.ok()?, ask.ok()?)))
        .map(|(ark, ask)| Chain {
            ca: ca::Chain { ark, ask },
            vek: vek.clone(),
        })
        .find(|chain| chain.verify().is_ok())
        .ok_or_else(|| {
            rejected("the VCEK does not chain to AMD's Milan, Genoa or Turin roots".into())
        })?;
    for (name, cert) in [
        ("ARK", &chain.ca.ark),
        ("ASK", &chain.ca.ask),
        ("VCEK", &chain.vek),
    ] {
        let validity = x509_cert::Certificate::from(cert.clone())
            .tbs_certificate
            .validity;
        let from = validity.not_before.to_unix_duration().as_secs();
        let until = validity.not_after.to_unix_duration().as_secs();
        if !(from..=until).contains(&now) {
            return Err(rejected(format!(
                "the {name} certificate is not valid at {now}: it is valid from {from} to {until}"
            )));
        }
    }
    (&chain, &parsed)
        .verify()
        .map_err(|e| rejected(e.to_string()))?;
    if parsed.policy.debug_allowed() {
        return Err(AttestError::Debug(Platform::SevSnp));
    }
    // Only VMPL 0 is the measured guest itself; a report requested from a higher VMPL carries
    // report data the measured code never vouched for.
    if parsed.vmpl != 0 {
        return Err(rejected(format!(
            "the report was requested from VMPL {}, not 0",
            parsed.vmpl
        )));
    }
    Ok(Claims {
        platform: Platform::SevSnp,
        measurement: parsed.measurement.to_vec(),
        registers: Vec::new(),
        report_data: parsed.report_data.to_vec(),
        tcb_status: TcbStatus::Unrated,
        advisories: Vec::new(),
        issued_at: None,
        signed_at: None,
        tcb_evaluation: None,
    })
}

/// `bytes` decoded as hex text (surrounding whitespace allowed), if it is that.
fn unhex(bytes: &[u8]) -> Option<Vec<u8>> {
    let text = core::str::from_utf8(bytes).ok()?.trim();
    hex::decode(text).ok()
}
