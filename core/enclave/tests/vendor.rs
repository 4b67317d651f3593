//! Vendor evidence inside keyward's envelope, on the samples of `core/attest/tests/data` (real,
//! vendor-signed): each wraps at its time and round-trips; the policy's vendor part decides
//! platform, measurement and TCB status; a tampered envelope, another time, other keys or a
//! policy without a vendor part are refused.
#![allow(clippy::unwrap_used)]

use keyward_attest::{AttestError, AttestationPolicy, Platform, PolicyError, TcbStatus};
use keyward_crypto::{ChannelKeypair, DecodeError, Reader};
use keyward_enclave::vendor::measurement_digest;
use keyward_enclave::{BoundKey, Evidence, EvidenceError, EvidenceKind, EvidencePolicy};
use rand::{SeedableRng, rngs::StdRng};

/// 2026-11-21T00:00:00Z: the DCAP and Nitro samples' collateral or certificates have expired
/// by then; the SEV-SNP sample's VCEK is valid until 2030.
const TODAY: u64 = 1_795_219_200;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../attest/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// Each sample wrapped at a time it verifies at.
fn sgx() -> Evidence {
    let (quote, collateral) = (data("sgx_quote"), data("sgx_quote_collateral.json"));
    Evidence::vendor(EvidenceKind::Dcap, quote, collateral, 1_750_334_171).unwrap()
}

fn tdx() -> Evidence {
    let (quote, collateral) = (data("tdx_quote"), data("tdx_quote_collateral.json"));
    Evidence::vendor(EvidenceKind::Dcap, quote, collateral, 1_750_332_747).unwrap()
}

fn snp() -> Evidence {
    let (report, vcek) = (data("report_milan.hex"), data("vcek_milan.der"));
    Evidence::vendor(EvidenceKind::SevSnp, report, vcek, TODAY).unwrap()
}

/// A policy accepting `evidence`'s platform and measurement, strictly.
fn strict_for(evidence: &Evidence) -> EvidencePolicy {
    let claims = evidence.vendor_claims().unwrap().unwrap();
    EvidencePolicy {
        vendor: Some(AttestationPolicy::strict(
            vec![claims.platform],
            vec![claims.measurement],
        )),
        ..EvidencePolicy::default()
    }
}

fn with(policy: &EvidencePolicy, change: impl FnOnce(&mut AttestationPolicy)) -> EvidencePolicy {
    let mut policy = policy.clone();
    change(policy.vendor.as_mut().unwrap());
    policy
}

#[test]
fn samples_wrap_round_trip_and_carry_the_vendors_claims() {
    for (evidence, kind, platform) in [
        (sgx(), EvidenceKind::Dcap, Platform::Sgx),
        (tdx(), EvidenceKind::Dcap, Platform::Tdx),
        (snp(), EvidenceKind::SevSnp, Platform::SevSnp),
    ] {
        let back = Evidence::from_bytes(&evidence.to_bytes()).unwrap();
        assert_eq!(back, evidence);
        assert_eq!(back.kind(), kind);
        back.check_signature().unwrap();
        let claims = back.vendor_claims().unwrap().unwrap();
        assert_eq!(claims.platform, platform);
        assert_eq!(
            back.measurement(),
            measurement_digest(platform, &claims.measurement)
        );
        assert_eq!(back.report_data().as_slice(), claims.report_data.as_slice());
    }
    // The same bytes under another platform's name are another measurement.
    assert_ne!(
        measurement_digest(Platform::Tdx, &[1; 48]),
        measurement_digest(Platform::SevSnp, &[1; 48])
    );
}

#[test]
fn the_vendor_policy_decides_platform_measurement_and_tcb() {
    // TDX sample: UpToDate, so the strictest policy accepts it.
    let tdx = tdx();
    let policy = strict_for(&tdx);
    let verified = tdx.verify_bound(&policy, &tdx.report_data()).unwrap();
    assert_eq!(verified.kind, EvidenceKind::Dcap);
    assert!(!verified.insecure);
    assert_eq!(verified.vendor.unwrap().tcb_status, TcbStatus::UpToDate);
    assert_eq!(tdx.verified_at(), Some(1_750_332_747));

    assert_eq!(
        tdx.verify_bound(&EvidencePolicy::default(), &tdx.report_data()),
        Err(EvidenceError::VendorNotAccepted(EvidenceKind::Dcap))
    );
    let other_measurement = with(&policy, |v| v.measurements = vec![vec![0; 48]]);
    assert!(matches!(
        tdx.verify_bound(&other_measurement, &tdx.report_data()),
        Err(EvidenceError::VendorPolicy(PolicyError::Measurement(_)))
    ));
    let no_measurement = with(&policy, |v| v.measurements.clear());
    assert!(matches!(
        tdx.verify_bound(&no_measurement, &tdx.report_data()),
        Err(EvidenceError::VendorPolicy(PolicyError::Measurement(_)))
    ));
    let sgx_only = with(&policy, |v| v.platforms = vec![Platform::Sgx]);
    assert_eq!(
        tdx.verify_bound(&sgx_only, &tdx.report_data()),
        Err(EvidenceError::VendorPolicy(PolicyError::Platform(
            Platform::Tdx
        )))
    );
    // keyward's own allow-list applies too, to the envelope's measurement.
    let pinned = EvidencePolicy {
        allowed_measurements: vec![[9; 32]],
        ..policy.clone()
    };
    assert_eq!(
        tdx.verify_bound(&pinned, &tdx.report_data()),
        Err(EvidenceError::MeasurementNotAllowed(tdx.measurement()))
    );

    // SGX sample: ConfigurationAndSWHardeningNeeded, refused by the strict policy, accepted
    // by one whose minimum is that status.
    let sgx = sgx();
    let strict = strict_for(&sgx);
    assert_eq!(
        sgx.verify_bound(&strict, &sgx.report_data()),
        Err(EvidenceError::VendorPolicy(PolicyError::Tcb {
            found: TcbStatus::ConfigurationAndSwHardeningNeeded,
            minimum: TcbStatus::UpToDate
        }))
    );
    let looser = with(&strict, |v| {
        v.minimum_tcb = TcbStatus::ConfigurationAndSwHardeningNeeded;
    });
    let claims = sgx
        .verify_bound(&looser, &sgx.report_data())
        .unwrap()
        .vendor
        .unwrap();
    assert_eq!(claims.advisories, ["INTEL-SA-00289", "INTEL-SA-00615"]);

    // SEV-SNP: no TCB status, so only a policy that accepts unrated evidence takes it.
    let snp = snp();
    let strict = strict_for(&snp);
    assert_eq!(
        snp.verify_bound(&strict, &snp.report_data()),
        Err(EvidenceError::VendorPolicy(PolicyError::Unrated(
            Platform::SevSnp
        )))
    );
    let unrated = with(&strict, |v| v.accept_unrated = true);
    snp.verify_bound(&unrated, &snp.report_data()).unwrap();
    // Its chain is checked at the envelope's time, as every vendor kind's: the same envelope
    // dated after the VCEK expired (2030-04-03T19:23:43Z) is refused.
    assert_eq!(snp.verified_at(), Some(TODAY));
    let expired = 1_901_474_624u64;
    let mut bytes = snp.to_bytes();
    bytes[6 + 32 + 64..6 + 32 + 64 + 8].copy_from_slice(&expired.to_be_bytes());
    let late = Evidence::from_bytes(&bytes).unwrap();
    assert_eq!(late.verified_at(), Some(expired));
    assert!(matches!(
        late.verify_bound(&unrated, &late.report_data()),
        Err(EvidenceError::Vendor(AttestError::Rejected { .. }))
    ));
    let (report, vcek) = (data("report_milan.hex"), data("vcek_milan.der"));
    assert!(Evidence::vendor(EvidenceKind::SevSnp, report, vcek, expired).is_err());
}

#[test]
fn the_binding_the_time_and_the_bytes_are_enforced() {
    let tdx = tdx();
    let policy = strict_for(&tdx);
    // Registration-style verification: the sample binds no keys of ours.
    let mut rng = StdRng::seed_from_u64(1);
    let keys = [BoundKey::Channel(
        ChannelKeypair::generate(&mut rng).public(),
    )];
    assert_eq!(
        tdx.verify(&policy, &keys, b"nonce"),
        Err(EvidenceError::ReportDataMismatch)
    );

    let bytes = tdx.to_bytes();
    // Layout: KWAT, version, kind, measurement(32), report data(64), u64 verified_at, ...
    let (measurement, report, time) = (6, 6 + 32, 6 + 32 + 64);
    let mut other = bytes.clone();
    other[measurement] ^= 1;
    assert_eq!(
        Evidence::from_bytes(&other).unwrap().check_signature(),
        Err(EvidenceError::VendorMismatch("measurement"))
    );
    let mut other = bytes.clone();
    other[report] ^= 1;
    let other = Evidence::from_bytes(&other).unwrap();
    assert_eq!(
        other.verify_bound(&policy, &other.report_data()),
        Err(EvidenceError::VendorMismatch("report data"))
    );
    // Today the collateral has expired: the same quote is refused.
    let mut other = bytes.clone();
    other[time..time + 8].copy_from_slice(&TODAY.to_be_bytes());
    let other = Evidence::from_bytes(&other).unwrap();
    assert_eq!(other.verified_at(), Some(TODAY));
    assert!(matches!(
        other.verify_bound(&policy, &tdx.report_data()),
        Err(EvidenceError::Vendor(AttestError::Rejected { .. }))
    ));
    assert!(
        Evidence::vendor(
            EvidenceKind::Dcap,
            data("tdx_quote"),
            data("tdx_quote_collateral.json"),
            TODAY
        )
        .is_err()
    );
    // A flipped bit in the quote itself.
    let mut other = bytes.clone();
    let last = other.len() - data("tdx_quote_collateral.json").len() - 100;
    other[last] ^= 0x10;
    let verdict =
        Evidence::from_bytes(&other).and_then(|e| e.verify_bound(&policy, &tdx.report_data()));
    assert!(verdict.is_err(), "{verdict:?}");
    // Every truncation is refused by the decoder.
    for len in (0..bytes.len()).step_by(97) {
        assert!(Evidence::from_bytes(&bytes[..len]).is_err(), "{len}");
    }
    // Oversized inputs are errors before anything is encoded.
    let huge = vec![0; 70_000];
    for (evidence, endorsement) in [(huge.clone(), Vec::new()), (Vec::new(), huge)] {
        assert!(matches!(
            Evidence::vendor(EvidenceKind::Dcap, evidence, endorsement, TODAY),
            Err(EvidenceError::Malformed(DecodeError::TooLong { .. }))
        ));
    }
}

#[test]
fn nitro_documents_must_carry_report_data_and_no_endorsement() {
    // The sample's `user_data` is not 64 bytes, so it binds no keyward report data. (Its age
    // check is `AttestationPolicy::check`'s, tested in keyward-attest.)
    let doc = data("nitro_attestation.cose");
    let at = 1_736_179_625;
    assert!(matches!(
        Evidence::vendor(EvidenceKind::Nitro, doc.clone(), Vec::new(), at),
        Err(EvidenceError::Malformed(DecodeError::Invalid {
            field: "vendor report data",
            ..
        }))
    ));
    // A Nitro document carries its own chain: an endorsement is refused.
    assert!(matches!(
        Evidence::vendor(EvidenceKind::Nitro, doc, vec![1], at),
        Err(EvidenceError::Malformed(DecodeError::Invalid {
            field: "endorsement",
            ..
        }))
    ));
    assert!(matches!(
        Evidence::vendor(EvidenceKind::Dev, Vec::new(), Vec::new(), at),
        Err(EvidenceError::Malformed(_))
    ));
}

#[test]
fn a_policy_with_a_vendor_part_round_trips_through_its_encoding() {
    let policy = strict_for(&tdx());
    let mut w = keyward_crypto::Writer::new();
    policy.encode(&mut w);
    let bytes = w.finish();
    let mut r = Reader::new(&bytes);
    assert_eq!(EvidencePolicy::decode(&mut r).unwrap(), policy);
    r.finish().unwrap();
    assert!(policy.is_at_least_as_strict_as(&with(&policy, |v| v.accept_unrated = true)));
    // No vendor part is stricter than any.
    assert!(EvidencePolicy::default().is_at_least_as_strict_as(&policy));
    assert!(!policy.is_at_least_as_strict_as(&EvidencePolicy::default()));
}
