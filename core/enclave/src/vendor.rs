//! Vendor TEE evidence inside keyward's envelope (kinds 3 to 5), and the encoding of the vendor
//! attestation policy a verifier applies to it.
//!
//! ```text
//! proof       = measurement(32) || report data(64) || u64(verified_at)
//!               || var16(vendor evidence) || var16(endorsement)
//! measurement = SHA-256(var16("keyward/v1/vendor-measurement") || var8(platform name)
//!                       || var16(the vendor's measurement))
//! ```
//!
//! | kind | code | vendor evidence | endorsement |
//! |------|------|-----------------|-------------|
//! | `dcap` | 3 | an SGX (v3) or TDX (v4, v5) DCAP quote | its collateral, `QuoteCollateralV3` JSON |
//! | `nitro` | 4 | an AWS Nitro attestation document | empty |
//! | `sev-snp` | 5 | an AMD SEV-SNP attestation report | the chip's VCEK (DER) |
//!
//! `verified_at` (UNIX seconds) is the time the vendor chain is checked at: certificates (an
//! SEV-SNP report's ARK, ASK and VCEK included), CRLs, TCB info and a Nitro document's own
//! timestamp. It travels in the envelope, so every verifier (every node replaying the ledger,
//! years later) reaches the same verdict from the same bytes; a verifier with a clock checks
//! separately that `verified_at` is recent ([`crate::Evidence::verified_at`]).
//!
//! The measurement and report data are carried beside the vendor evidence, like every kind's,
//! so a registry can read them without running the vendor's verifier; [`VendorProof::claims`]
//! checks that they are the ones the vendor signed.

use sha2::{Digest, Sha256};

use keyward_attest::{AttestationPolicy, Claims, Platform, TcbStatus};
use keyward_crypto::{DecodeError, Reader, Writer};

use crate::evidence::{EvidenceError, MAX_POLICY_ENTRIES};

/// Longest vendor evidence (a quote with its certificate chain, a document, a report).
pub const MAX_VENDOR_EVIDENCE: usize = 12 * 1024;
/// Longest endorsement (DCAP collateral with its CRLs and chains, a VCEK).
pub const MAX_ENDORSEMENT: usize = 50 * 1024;
/// Longest vendor envelope: header, kind, measurement, report data, time, both lengths and the
/// longest evidence and endorsement. It fits a ledger registration's `var16`.
pub const MAX_ENVELOPE_LEN: usize =
    4 + 1 + 1 + 32 + 64 + 8 + 2 + MAX_VENDOR_EVIDENCE + 2 + MAX_ENDORSEMENT;
const _: () = assert!(MAX_ENVELOPE_LEN <= u16::MAX as usize);
/// Longest measurement a vendor policy lists (TDX, Nitro and SEV-SNP use 48 bytes).
const MAX_MEASUREMENT: usize = 64;

/// Which vendor verifier a proof needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// Intel SGX or TDX: a DCAP quote and its collateral.
    Dcap,
    /// AWS Nitro Enclaves: an attestation document.
    Nitro,
    /// AMD SEV-SNP: a report and the VCEK.
    SevSnp,
}

/// What vouches for vendor evidence's measurement and report data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VendorProof {
    pub source: Source,
    pub verified_at: u64,
    pub evidence: Vec<u8>,
    pub endorsement: Vec<u8>,
}

impl VendorProof {
    /// Runs the vendor's verifier at `verified_at` and checks the claims match the envelope's
    /// `measurement` and `report_data`.
    pub fn claims(
        &self,
        measurement: &[u8; 32],
        report_data: &[u8; 64],
    ) -> Result<Claims, EvidenceError> {
        self.claims_at(self.verified_at, measurement, report_data)
    }

    /// [`VendorProof::claims`] with the chain checked at `at` instead.
    pub fn claims_at(
        &self,
        at: u64,
        measurement: &[u8; 32],
        report_data: &[u8; 64],
    ) -> Result<Claims, EvidenceError> {
        let claims = self.verify_at(at)?;
        if measurement_digest(claims.platform, &claims.measurement) != *measurement {
            return Err(EvidenceError::VendorMismatch("measurement"));
        }
        if claims.report_data != report_data {
            return Err(EvidenceError::VendorMismatch("report data"));
        }
        Ok(claims)
    }

    /// The vendor's verdict at `verified_at`, with no comparison.
    pub fn verify(&self) -> Result<Claims, EvidenceError> {
        self.verify_at(self.verified_at)
    }

    /// The vendor's verdict at `at`, with no comparison.
    fn verify_at(&self, at: u64) -> Result<Claims, EvidenceError> {
        let claims = match self.source {
            Source::Dcap => keyward_attest::dcap::verify(&self.evidence, &self.endorsement, at),
            Source::Nitro => keyward_attest::nitro::verify(&self.evidence, at),
            Source::SevSnp => keyward_attest::snp::verify(&self.evidence, &self.endorsement, at),
        }
        .map_err(EvidenceError::Vendor)?;
        Ok(claims)
    }

    pub fn encode(&self, w: &mut Writer) {
        w.u64(self.verified_at)
            .var16(&self.evidence)
            .var16(&self.endorsement);
    }

    /// A proof, if it keeps every rule of the encoding: sizes, and no Nitro endorsement.
    pub fn new(
        source: Source,
        verified_at: u64,
        evidence: Vec<u8>,
        endorsement: Vec<u8>,
    ) -> Result<Self, DecodeError> {
        for (field, bytes, max) in [
            ("vendor evidence", &evidence, MAX_VENDOR_EVIDENCE),
            ("endorsement", &endorsement, MAX_ENDORSEMENT),
        ] {
            if bytes.len() > max {
                return Err(DecodeError::TooLong {
                    field,
                    len: bytes.len(),
                    max,
                });
            }
        }
        if source == Source::Nitro && !endorsement.is_empty() {
            return Err(DecodeError::Invalid {
                field: "endorsement",
                reason: "a Nitro document carries its own certificates",
            });
        }
        Ok(Self {
            source,
            verified_at,
            evidence,
            endorsement,
        })
    }

    pub fn decode(source: Source, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let verified_at = r.u64("verified at")?;
        let evidence = r.var16("vendor evidence", MAX_VENDOR_EVIDENCE)?.to_vec();
        let endorsement = r.var16("endorsement", MAX_ENDORSEMENT)?.to_vec();
        Self::new(source, verified_at, evidence, endorsement)
    }
}

/// keyward's 32-byte measurement for vendor evidence: the vendor's measurement (SGX MRENCLAVE,
/// a TD's register digest, Nitro PCR0, SEV-SNP MEASUREMENT) hashed with its platform's name, so
/// equal bytes from two platforms are two measurements.
pub fn measurement_digest(platform: Platform, measurement: &[u8]) -> [u8; 32] {
    let mut w = Writer::new();
    w.var16(b"keyward/v1/vendor-measurement")
        .var8(platform.name().as_bytes())
        .var16(measurement);
    Sha256::digest(w.as_slice()).into()
}

/// Appends the canonical encoding of a vendor policy (PROTOCOL §13.3): `u8(platform bits) ||
/// u8(minimum TCB) || u8(accept_unrated) || u64(max_age_secs) || u16(m) || m ×
/// var8(measurement)`, the measurements strictly ascending.
///
/// # Panics
/// If it lists more than [`MAX_POLICY_ENTRIES`] distinct measurements or one over 64 bytes
/// ([`within_limits`]).
pub(crate) fn encode_policy(p: &AttestationPolicy, w: &mut Writer) {
    assert!(within_limits(p), "a vendor policy over its limits");
    let bits = Platform::ALL
        .iter()
        .enumerate()
        .filter(|(_, platform)| p.platforms.contains(platform))
        .fold(0u8, |bits, (i, _)| bits | 1 << i);
    let tcb = TcbStatus::ALL
        .iter()
        .position(|s| *s == p.minimum_tcb)
        .expect("ALL lists every status");
    let mut measurements = p.measurements.clone();
    measurements.sort_unstable();
    measurements.dedup();
    w.u8(bits)
        .u8(u8::try_from(tcb).expect("ten statuses"))
        .u8(u8::from(p.accept_unrated))
        .u64(p.max_age_secs)
        .u16(u16::try_from(measurements.len()).expect("bounded above"));
    for m in &measurements {
        w.var8(m);
    }
}

/// Reads [`encode_policy`]'s encoding; refuses unknown platform bits, an empty platform set, an
/// unknown status and measurements that are not strictly ascending.
pub(crate) fn decode_policy(r: &mut Reader<'_>) -> Result<AttestationPolicy, DecodeError> {
    let bits = r.u8("vendor platforms")?;
    if bits == 0 || bits >> Platform::ALL.len() != 0 {
        return Err(DecodeError::Invalid {
            field: "vendor platforms",
            reason: "empty, or an unknown platform bit",
        });
    }
    let platforms = Platform::ALL
        .into_iter()
        .enumerate()
        .filter(|(i, _)| bits & (1 << i) != 0)
        .map(|(_, p)| p)
        .collect();
    let minimum_tcb = *TcbStatus::ALL
        .get(usize::from(r.u8("minimum TCB status")?))
        .ok_or(DecodeError::Invalid {
            field: "minimum TCB status",
            reason: "unknown status",
        })?;
    let accept_unrated = match r.u8("accept unrated")? {
        0 => false,
        1 => true,
        _ => {
            return Err(DecodeError::Invalid {
                field: "accept unrated",
                reason: "not 0 or 1",
            });
        }
    };
    let max_age_secs = r.u64("max age")?;
    let count = usize::from(r.u16("vendor measurements")?);
    if count > MAX_POLICY_ENTRIES {
        return Err(DecodeError::TooLong {
            field: "vendor measurements",
            len: count,
            max: MAX_POLICY_ENTRIES,
        });
    }
    let mut measurements: Vec<Vec<u8>> = Vec::with_capacity(count);
    for _ in 0..count {
        let m = r.var8("vendor measurement", MAX_MEASUREMENT)?.to_vec();
        if measurements.last().is_some_and(|last| *last >= m) {
            return Err(DecodeError::Invalid {
                field: "vendor measurements",
                reason: "not strictly ascending",
            });
        }
        measurements.push(m);
    }
    Ok(AttestationPolicy {
        platforms,
        measurements,
        minimum_tcb,
        accept_unrated,
        max_age_secs,
    })
}

/// Whether `p` fits its encoding: a platform, at most [`MAX_POLICY_ENTRIES`] distinct
/// measurements, none over 64 bytes.
pub(crate) fn within_limits(p: &AttestationPolicy) -> bool {
    let distinct = p
        .measurements
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    !p.platforms.is_empty()
        && distinct <= MAX_POLICY_ENTRIES
        && p.measurements.iter().all(|m| m.len() <= MAX_MEASUREMENT)
}

/// Whether everything `strict` accepts, `weak` accepts too.
pub(crate) fn at_least_as_strict(strict: &AttestationPolicy, weak: &AttestationPolicy) -> bool {
    strict.platforms.iter().all(|p| weak.platforms.contains(p))
        && strict
            .measurements
            .iter()
            .all(|m| weak.measurements.contains(m))
        && strict.minimum_tcb <= weak.minimum_tcb
        && (!strict.accept_unrated || weak.accept_unrated)
        && strict.max_age_secs <= weak.max_age_secs
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn policy() -> AttestationPolicy {
        AttestationPolicy {
            minimum_tcb: TcbStatus::SwHardeningNeeded,
            accept_unrated: true,
            ..AttestationPolicy::strict(
                vec![Platform::Tdx, Platform::Sgx],
                vec![vec![2; 48], vec![1; 32], vec![2; 48]],
            )
        }
    }

    fn encoded(p: &AttestationPolicy) -> Vec<u8> {
        let mut w = Writer::new();
        encode_policy(p, &mut w);
        w.finish()
    }

    #[test]
    fn policy_encoding_is_canonical_and_round_trips() {
        let bytes = encoded(&policy());
        let mut r = Reader::new(&bytes);
        let back = decode_policy(&mut r).unwrap();
        r.finish().unwrap();
        assert_eq!(back.platforms, vec![Platform::Sgx, Platform::Tdx]);
        assert_eq!(back.measurements, vec![vec![1; 32], vec![2; 48]]);
        assert_eq!(back.minimum_tcb, TcbStatus::SwHardeningNeeded);
        assert!(back.accept_unrated);
        assert_eq!(encoded(&back), bytes);
    }

    #[test]
    fn policy_decoder_refuses_what_has_no_canonical_form() {
        let bytes = encoded(&policy());
        for (at, value) in [(0, 0u8), (0, 0x10), (1, 10), (2, 2)] {
            let mut bad = bytes.clone();
            bad[at] = value;
            assert!(
                decode_policy(&mut Reader::new(&bad)).is_err(),
                "byte {at} = {value}"
            );
        }
        // The two measurements swapped.
        let mut w = Writer::new();
        w.u8(1).u8(0).u8(0).u64(0).u16(2).var8(&[2]).var8(&[1]);
        assert!(decode_policy(&mut Reader::new(&w.finish())).is_err());
    }

    #[test]
    fn strictness_compares_every_field() {
        let weak = policy();
        let strict = AttestationPolicy::strict(vec![Platform::Tdx], vec![vec![2; 48]]);
        assert!(at_least_as_strict(&strict, &weak));
        assert!(!at_least_as_strict(&weak, &strict));
        for looser in [
            AttestationPolicy {
                platforms: vec![Platform::Nitro],
                ..strict.clone()
            },
            AttestationPolicy {
                measurements: vec![vec![3; 48]],
                ..strict.clone()
            },
            AttestationPolicy {
                minimum_tcb: TcbStatus::OutOfDate,
                ..strict.clone()
            },
            AttestationPolicy {
                max_age_secs: weak.max_age_secs + 1,
                ..strict.clone()
            },
        ] {
            assert!(!at_least_as_strict(&looser, &weak));
        }
    }

    proptest! {
        #[test]
        fn policy_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_policy(&mut Reader::new(&bytes));
        }
    }
}
