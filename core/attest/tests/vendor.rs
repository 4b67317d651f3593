//! Every verifier on the vendor sample evidence (tests/data/README.md): it verifies at a fixed
//! time with the claims it holds; a tampered copy fails; and it fails at today's date where its
//! endorsements have expired by then (the DCAP and Nitro samples), or once they have (the
//! SEV-SNP sample's VCEK, valid until 2030).
#![allow(clippy::unwrap_used)]

use keyward_attest::{AttestError, Platform, TcbStatus, dcap, nitro, snp};

/// 2026-11-21T00:00:00Z, when these tests were written: the DCAP and Nitro samples' collateral
/// or certificates have expired by then.
const TODAY: u64 = 1_795_219_200;
/// When the SEV-SNP sample is verified: its report carries no time, and its VCEK is valid from
/// 2023-04-03T19:23:43Z ([`VCEK_FROM`]) to 2030-04-03T19:23:43Z ([`VCEK_UNTIL`]).
const SNP_TIME: u64 = 1_700_000_000;
const VCEK_FROM: u64 = 1_680_549_823;
const VCEK_UNTIL: u64 = 1_901_474_623;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The sample `name`, its collateral, and the time it verifies at.
fn dcap_sample(name: &str) -> (Vec<u8>, Vec<u8>) {
    (data(name), data(&format!("{name}_collateral.json")))
}

/// A TD's measurement covers what runs in it, not only its firmware: SHA-384 over the label and
/// the TD report's bytes from TDATTRIBUTES through RTMR3, then MRSERVICETD (zeros for TD 1.0),
/// taken here from the quote at Intel's offsets rather than from dcap-qvl's parse.
#[test]
fn a_td_measurement_digests_its_runtime_and_configuration_registers() {
    use sha2::{Digest, Sha384};
    for (name, at, body, service_td) in [
        ("tdx_quote", 1_750_332_747, 48, None),
        ("tdx_quote_td15ex", 1_791_421_786, 54, Some(600..648)),
    ] {
        let (quote, collateral) = dcap_sample(name);
        let report = &quote[body..];
        let claims = dcap::verify(&quote, &collateral, at).unwrap();
        let mut expected = Sha384::new_with_prefix(b"keyward/tdx-measurement/v1");
        expected.update(&report[120..520]);
        expected.update(service_td.map_or(&[0u8; 48][..], |r| &report[r]));
        assert_eq!(claims.measurement, expected.finalize().to_vec(), "{name}");
        assert_eq!(claims.report_data, &report[520..584], "{name}");
        let registers: Vec<&str> = claims.registers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            registers,
            [
                "tdAttributes",
                "xfam",
                "mrTd",
                "mrConfigId",
                "mrOwner",
                "mrOwnerConfig",
                "rtmr0",
                "rtmr1",
                "rtmr2",
                "rtmr3",
                "mrServiceTd"
            ],
            "{name}"
        );
        assert_eq!(claims.registers[2].1, &report[136..184], "{name}: MRTD");
        assert_eq!(claims.registers[9].1, &report[472..520], "{name}: RTMR3");
        // MRTD alone, which a TD's measurement was before, is no longer it.
        assert_ne!(claims.measurement, &report[136..184], "{name}");
        assert_eq!(
            claims.to_json()["registers"]["rtmr0"],
            hex::encode(&report[328..376]),
            "{name}"
        );
    }
    let (quote, collateral) = dcap_sample("sgx_quote");
    let sgx = dcap::verify(&quote, &collateral, 1_750_334_171).unwrap();
    assert!(
        sgx.registers.is_empty(),
        "MRENCLAVE is the measurement itself"
    );
}

#[test]
fn sgx_and_tdx_quotes_verify_at_their_time_and_report_their_claims() {
    let (quote, collateral) = dcap_sample("sgx_quote");
    let claims = dcap::verify(&quote, &collateral, 1_750_334_171).unwrap();
    assert_eq!(claims.platform, Platform::Sgx);
    assert_eq!(claims.measurement.len(), 32);
    assert_eq!(claims.report_data.len(), 64);
    assert_eq!(
        claims.tcb_status,
        TcbStatus::ConfigurationAndSwHardeningNeeded
    );
    assert_eq!(claims.advisories, ["INTEL-SA-00289", "INTEL-SA-00615"]);
    // The collateral's `tcbEvaluationDataNumber` (TCB info and QE identity agree).
    assert_eq!(claims.tcb_evaluation, Some(17));

    for (name, at, evaluation) in [
        ("tdx_quote", 1_750_332_747, 17),
        ("tdx_quote_td15ex", 1_791_421_786, 20),
    ] {
        let (quote, collateral) = dcap_sample(name);
        let claims = dcap::verify(&quote, &collateral, at).unwrap();
        assert_eq!(claims.platform, Platform::Tdx, "{name}");
        assert_eq!(claims.tcb_evaluation, Some(evaluation), "{name}");
        assert_eq!(claims.measurement.len(), 48, "{name}");
        assert_eq!(claims.tcb_status, TcbStatus::UpToDate, "{name}");
        // The report data is the quote's own bytes, at the TD report's offset.
        assert!(
            quote
                .windows(64)
                .any(|w| w == claims.report_data.as_slice()),
            "{name}"
        );
    }
}

#[test]
fn a_tampered_or_expired_dcap_quote_is_rejected() {
    for (name, at) in [
        ("sgx_quote", 1_750_334_171),
        ("tdx_quote", 1_750_332_747),
        ("tdx_quote_td15ex", 1_791_421_786),
    ] {
        let (quote, collateral) = dcap_sample(name);
        // One bit of the signed report body (the measurement region).
        let mut tampered = quote.clone();
        tampered[200] ^= 0x01;
        assert!(
            matches!(
                dcap::verify(&tampered, &collateral, at),
                Err(AttestError::Rejected { .. })
            ),
            "{name} tampered"
        );
        let error = dcap::verify(&quote, &collateral, TODAY).unwrap_err();
        assert!(
            matches!(&error, AttestError::Rejected { reason, .. } if reason.to_lowercase().contains("expired")),
            "{name} today: {error}"
        );
    }
    let (quote, _) = dcap_sample("sgx_quote");
    assert!(matches!(
        dcap::verify(&quote, b"{}", 1_750_334_171),
        Err(AttestError::Malformed { .. })
    ));
    // Another quote's collateral does not vouch for this one.
    let (_, tdx_collateral) = dcap_sample("tdx_quote");
    assert!(dcap::verify(&quote, &tdx_collateral, 1_750_334_171).is_err());
}

#[test]
fn a_nitro_document_verifies_at_its_time_and_not_tampered_or_today() {
    let doc = data("nitro_attestation.cose");
    let at = 1_736_179_625;
    let claims = nitro::verify(&doc, at).unwrap();
    assert_eq!(claims.platform, Platform::Nitro);
    assert_eq!(claims.measurement.len(), 48);
    assert_eq!(claims.tcb_status, TcbStatus::Unrated);
    assert_eq!(claims.tcb_evaluation, None);
    let issued = claims.issued_at.unwrap();
    assert!(issued <= at && at - issued < 3600, "{issued}");

    let mut tampered = doc.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 0x01;
    assert!(matches!(
        nitro::verify(&tampered, at),
        Err(AttestError::Rejected { .. })
    ));
    let error = nitro::verify(&doc, TODAY).unwrap_err();
    assert!(error.to_string().contains("expired"), "{error}");
}

#[test]
fn an_sev_snp_report_verifies_against_its_vcek_and_not_tampered_or_expired() {
    let (report, vcek) = (data("report_milan.hex"), data("vcek_milan.der"));
    let claims = snp::verify(&report, &vcek, SNP_TIME).unwrap();
    assert_eq!(claims.platform, Platform::SevSnp);
    assert_eq!(claims.measurement.len(), 48);
    assert!(hex::encode(&claims.measurement).starts_with("7a1e5c26"));
    assert_eq!(claims.report_data.len(), 64);
    assert_eq!(claims.tcb_status, TcbStatus::Unrated);
    // Raw bytes verify the same as hex text.
    let raw = hex::decode(std::str::from_utf8(&report).unwrap().trim()).unwrap();
    assert_eq!(snp::verify(&raw, &vcek, SNP_TIME).unwrap(), claims);

    // The chain is checked at the time given: the VCEK's validity bounds it (the ARK and ASK
    // are valid longer), today included.
    for at in [VCEK_FROM, TODAY, VCEK_UNTIL] {
        assert_eq!(snp::verify(&raw, &vcek, at).unwrap(), claims, "{at}");
    }
    for (at, cert) in [
        (VCEK_FROM - 1, "VCEK"),
        (VCEK_UNTIL + 1, "VCEK"),
        (0, "ARK"),
    ] {
        let error = snp::verify(&raw, &vcek, at).unwrap_err();
        assert!(
            matches!(&error, AttestError::Rejected { reason, .. }
                if reason.contains(&format!("the {cert} certificate is not valid"))),
            "{at}: {error}"
        );
    }

    // A flipped bit in the report data; a damaged VCEK.
    let mut tampered = raw.clone();
    tampered[0x50] ^= 0x01;
    assert!(matches!(
        snp::verify(&tampered, &vcek, SNP_TIME),
        Err(AttestError::Rejected { .. })
    ));
    let mut bad_vcek = vcek.clone();
    bad_vcek[40] ^= 0xff;
    assert!(snp::verify(&raw, &bad_vcek, SNP_TIME).is_err());
    assert!(matches!(
        snp::verify(&raw[..100], &vcek, SNP_TIME),
        Err(AttestError::Malformed { .. })
    ));
}

#[test]
fn truncated_evidence_is_an_error_never_a_panic() {
    let (quote, collateral) = dcap_sample("tdx_quote");
    let doc = data("nitro_attestation.cose");
    let (report, vcek) = (data("report_milan.hex"), data("vcek_milan.der"));
    let report = hex::decode(std::str::from_utf8(&report).unwrap().trim()).unwrap();
    // The sample ends in zero padding after the PCK chain's PEM, which dcap-qvl ignores (so
    // those bytes are malleable; the claims are not). Every cut inside the signed structures and
    // the chain is refused.
    let end = quote.iter().rposition(|b| *b != 0).unwrap() - "-----END CERTIFICATE-----".len();
    for len in (0..end).step_by(7) {
        assert!(
            dcap::verify(&quote[..len], &collateral, 1_750_332_747).is_err(),
            "{len}"
        );
    }
    for len in (0..collateral.len()).step_by(97) {
        assert!(dcap::verify(&quote, &collateral[..len], 1_750_332_747).is_err());
    }
    for len in (0..doc.len()).step_by(7) {
        assert!(nitro::verify(&doc[..len], 1_736_179_625).is_err());
    }
    for len in (0..report.len()).step_by(3) {
        assert!(snp::verify(&report[..len], &vcek, SNP_TIME).is_err());
    }
    for len in (0..vcek.len()).step_by(5) {
        assert!(snp::verify(&report, &vcek[..len], SNP_TIME).is_err());
    }
}

proptest::proptest! {
    #[test]
    fn random_bytes_are_an_error_never_a_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
        let (_, collateral) = dcap_sample("tdx_quote");
        proptest::prop_assert!(dcap::verify(&bytes, &collateral, 1_750_332_747).is_err());
        proptest::prop_assert!(dcap::verify(&bytes, &bytes, 1_750_332_747).is_err());
        proptest::prop_assert!(nitro::verify(&bytes, 1_736_179_625).is_err());
        proptest::prop_assert!(snp::verify(&bytes, &bytes, SNP_TIME).is_err());
    }
}
