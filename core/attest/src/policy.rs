//! Attestation policy: what a verifier accepts beyond a valid signature chain.
//!
//! A policy names the platforms and measurements it trusts, the worst TCB status it accepts,
//! whether it accepts evidence with no TCB status at all, how old evidence that carries its own
//! time may be, and (per check) the report data the evidence must carry, which binds the keys
//! and the verifier's nonce. [`AttestationPolicy::strict`] is meant for gatekeepers, which hold
//! the MasterKey: Intel's top confidence level, `UpToDate` only. A policy is enforced as the
//! vendor part of keyward's `EvidencePolicy` (keyward-enclave), by the ledger on registrations
//! (and by the signer on its own evidence, which no signer runner makes yet).

use thiserror::Error;

use crate::{Claims, Platform, TcbStatus};

/// What a verifier accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttestationPolicy {
    /// The platforms accepted.
    pub platforms: Vec<Platform>,
    /// The measurements accepted; evidence with any other is refused.
    pub measurements: Vec<Vec<u8>>,
    /// The worst TCB status accepted (statuses are ordered best first). `Unrated` here accepts
    /// every rated status; unrated evidence is governed by `accept_unrated` alone.
    pub minimum_tcb: TcbStatus,
    /// Whether evidence whose verifier computes no TCB status (Nitro, SEV-SNP) is accepted.
    pub accept_unrated: bool,
    /// The oldest evidence accepted, in seconds, for evidence that says when it was made.
    pub max_age_secs: u64,
}

/// Why verified evidence fails a policy.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PolicyError {
    /// The platform is not accepted.
    #[error("{0} evidence is not accepted by this policy")]
    Platform(Platform),
    /// The measurement is not accepted.
    #[error("measurement {0} is not accepted by this policy")]
    Measurement(String),
    /// The TCB status is worse than the policy accepts.
    #[error("TCB status {found} is worse than the {minimum} this policy requires")]
    Tcb {
        /// The evidence's status.
        found: TcbStatus,
        /// The worst status accepted.
        minimum: TcbStatus,
    },
    /// The evidence has no TCB status and the policy requires one.
    #[error("{0} evidence carries no TCB status, and this policy requires one")]
    Unrated(Platform),
    /// The evidence is older than the policy accepts, or dated in the future.
    #[error("evidence made at {issued_at} is not fresh at {now} (at most {max_age_secs} s old)")]
    Stale {
        /// When the evidence was made, UNIX seconds.
        issued_at: u64,
        /// The time of the check.
        now: u64,
        /// The policy's limit.
        max_age_secs: u64,
    },
    /// The report data is not what the verifier expects: other keys or another nonce.
    #[error("the evidence's report data does not bind the expected keys and nonce")]
    ReportData,
}

/// How far in the future evidence may be dated (clock skew between platform and verifier).
const SKEW_SECS: u64 = 60;

impl AttestationPolicy {
    /// The strictest policy: `platforms` and `measurements` only, TCB status `UpToDate` only,
    /// no unrated evidence, and evidence that carries its own time at most 10 minutes old.
    pub fn strict(platforms: Vec<Platform>, measurements: Vec<Vec<u8>>) -> Self {
        Self {
            platforms,
            measurements,
            minimum_tcb: TcbStatus::UpToDate,
            accept_unrated: false,
            max_age_secs: 600,
        }
    }

    /// Checks verified `claims` at `now` (UNIX seconds). The evidence must carry exactly
    /// `report_data` (the hash of the bound keys and the verifier's nonce): for evidence that
    /// carries no time (DCAP quotes, SEV-SNP reports) that nonce is the only freshness there is.
    ///
    /// # Errors
    /// The first [`PolicyError`], in the order of the fields above, then report data.
    pub fn check(&self, claims: &Claims, now: u64, report_data: &[u8]) -> Result<(), PolicyError> {
        if !self.platforms.contains(&claims.platform) {
            return Err(PolicyError::Platform(claims.platform));
        }
        if !self.measurements.contains(&claims.measurement) {
            return Err(PolicyError::Measurement(hex::encode(&claims.measurement)));
        }
        match claims.tcb_status {
            TcbStatus::Unrated if !self.accept_unrated => {
                return Err(PolicyError::Unrated(claims.platform));
            }
            TcbStatus::Unrated => {}
            found if found > self.minimum_tcb => {
                return Err(PolicyError::Tcb {
                    found,
                    minimum: self.minimum_tcb,
                });
            }
            _ => {}
        }
        if let Some(issued_at) = claims.issued_at {
            let fresh = issued_at <= now.saturating_add(SKEW_SECS)
                && now.saturating_sub(issued_at) <= self.max_age_secs;
            if !fresh {
                return Err(PolicyError::Stale {
                    issued_at,
                    now,
                    max_age_secs: self.max_age_secs,
                });
            }
        }
        if report_data != claims.report_data.as_slice() {
            return Err(PolicyError::ReportData);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(tcb_status: TcbStatus, issued_at: Option<u64>) -> Claims {
        Claims {
            platform: Platform::Tdx,
            measurement: vec![7; 48],
            registers: Vec::new(),
            report_data: vec![1; 64],
            tcb_status,
            advisories: Vec::new(),
            issued_at,
            signed_at: issued_at,
            tcb_evaluation: None,
        }
    }

    #[test]
    fn strict_accepts_only_up_to_date_evidence_of_a_known_measurement() {
        let policy = AttestationPolicy::strict(vec![Platform::Tdx], vec![vec![7; 48]]);
        let now = 1_000_000;
        assert_eq!(
            policy.check(&claims(TcbStatus::UpToDate, None), now, &[1; 64]),
            Ok(())
        );
        for worse in [
            TcbStatus::SwHardeningNeeded,
            TcbStatus::ConfigurationAndSwHardeningNeeded,
            TcbStatus::OutOfDate,
            TcbStatus::Revoked,
        ] {
            assert_eq!(
                policy.check(&claims(worse, None), now, &[1; 64]),
                Err(PolicyError::Tcb {
                    found: worse,
                    minimum: TcbStatus::UpToDate
                })
            );
        }
        assert_eq!(
            policy.check(&claims(TcbStatus::Unrated, None), now, &[1; 64]),
            Err(PolicyError::Unrated(Platform::Tdx))
        );
        let mut other = claims(TcbStatus::UpToDate, None);
        other.measurement = vec![8; 48];
        assert!(matches!(
            policy.check(&other, now, &[1; 64]),
            Err(PolicyError::Measurement(_))
        ));
        other.platform = Platform::Sgx;
        assert_eq!(
            policy.check(&other, now, &[1; 64]),
            Err(PolicyError::Platform(Platform::Sgx))
        );
        assert_eq!(
            policy.check(&claims(TcbStatus::UpToDate, None), now, &[2; 64]),
            Err(PolicyError::ReportData)
        );
    }

    #[test]
    fn a_looser_policy_accepts_down_to_its_minimum_and_checks_age() {
        let policy = AttestationPolicy {
            minimum_tcb: TcbStatus::ConfigurationAndSwHardeningNeeded,
            accept_unrated: true,
            ..AttestationPolicy::strict(vec![Platform::Tdx], vec![vec![7; 48]])
        };
        let now = 1_000_000;
        for ok in [
            TcbStatus::SwHardeningNeeded,
            TcbStatus::ConfigurationAndSwHardeningNeeded,
            TcbStatus::Unrated,
        ] {
            assert_eq!(policy.check(&claims(ok, None), now, &[1; 64]), Ok(()));
        }
        assert!(
            policy
                .check(&claims(TcbStatus::OutOfDate, None), now, &[1; 64])
                .is_err()
        );
        assert_eq!(
            policy.check(&claims(TcbStatus::UpToDate, Some(now - 600)), now, &[1; 64]),
            Ok(())
        );
        for stale in [now - 601, now + SKEW_SECS + 1] {
            assert!(matches!(
                policy.check(&claims(TcbStatus::UpToDate, Some(stale)), now, &[1; 64]),
                Err(PolicyError::Stale { .. })
            ));
        }
    }
}
