//! The TPM source against a real TPM 2.0 implementation, swtpm: a sealing key sealed under a PCR
//! policy comes back only while the PCRs are unchanged and only from the same TPM; the NV
//! counter only goes up and survives a TPM restart; a sealed blob below it is refused; the
//! sealing source keeps key and counter in the TPM; a quote is evidence only under its pinned
//! attestation key, for its nonce, keys and PCRs.
//!
//! These tests need `swtpm` and `tpm2_pcrextend` (Debian: swtpm, tpm2-tools; `.ci/run` installs
//! them), and are built only with the `tpm` feature (`.ci/run` runs them with it). Without
//! swtpm they are skipped, except when `CI=true`, where they fail.
#![cfg(feature = "tpm")]
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use keyward_crypto::{ChainId, IdentityKeypair, SecretBytes};
use keyward_enclave::{
    BoundKey, Evidence, EvidenceError, EvidenceKind, EvidencePolicy, SealError, SealPurpose,
    Sealer, SealingKey,
};
use keyward_host::counter::CounterError;
use keyward_tpm::source::{SealingSource, SourceError, TpmSource};
use keyward_tpm::swtpm::Swtpm;
use keyward_tpm::{TpmError, TpmSealedKey};
use rand::{SeedableRng, rngs::StdRng};

/// Extends PCR `pcr` (SHA-256 bank) of `swtpm`, as a changed boot component would.
fn extend(swtpm: &Swtpm, pcr: u8) {
    let status = Command::new("tpm2_pcrextend")
        .args(["-T", &swtpm.tcti()])
        .arg(format!("{pcr}:sha256={}", "01".repeat(32)))
        .status()
        .expect("tpm2_pcrextend (Debian package tpm2-tools)");
    assert!(status.success());
}

fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyward-swtpm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_sealed_key_comes_back_only_with_the_same_pcrs_on_the_same_tpm() {
    let state = state_dir("seal");
    let Some(swtpm) = Swtpm::start_for_tests(&state) else {
        return;
    };
    let key = SecretBytes::<32>::random(&mut StdRng::seed_from_u64(1));
    let sealed = {
        let mut tpm = swtpm.connect().unwrap();
        let sealed = tpm.seal_key(&key, &[16, 23]).unwrap();
        assert_eq!(
            tpm.unseal_key::<32>(&sealed).unwrap().expose(),
            key.expose(),
            "round trip"
        );
        sealed
    };
    // The stored form round-trips, carries no key, and a damaged copy does not decode.
    let stored = sealed.to_bytes();
    assert_eq!(TpmSealedKey::from_bytes(&stored).unwrap(), sealed);
    assert!(!stored.windows(32).any(|w| w == key.expose()));
    assert!(matches!(
        TpmSealedKey::from_bytes(&stored[..stored.len() - 1]),
        Err(TpmError::Malformed(_))
    ));
    // An altered private part: the TPM refuses it.
    let mut altered = stored.clone();
    let last = altered.len() - 1;
    altered[last] ^= 0x01;
    let altered = TpmSealedKey::from_bytes(&altered).unwrap();
    assert!(matches!(
        swtpm.connect().unwrap().unseal_key::<32>(&altered),
        Err(TpmError::Unseal(_))
    ));

    // Another TPM cannot unseal it.
    let other_state = state_dir("seal-other");
    let other = Swtpm::start(&other_state).unwrap();
    assert!(matches!(
        other.connect().unwrap().unseal_key::<32>(&sealed),
        Err(TpmError::Unseal(_))
    ));
    drop(other);

    // A changed PCR: the key stays sealed.
    extend(&swtpm, 23);
    assert!(matches!(
        swtpm.connect().unwrap().unseal_key::<32>(&sealed),
        Err(TpmError::Unseal(_))
    ));
    assert!(matches!(
        swtpm.connect().unwrap().seal_key(&key, &[24]),
        Err(TpmError::NoSuchPcr(24))
    ));
    drop(swtpm);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&other_state);
}

#[test]
fn the_nv_counter_only_goes_up_survives_a_restart_and_refuses_an_older_blob() {
    let state = state_dir("counter");
    let Some(swtpm) = Swtpm::start_for_tests(&state) else {
        return;
    };
    const INDEX: u32 = 0x0150_4b57;
    let sealer = Sealer::new(
        &SealingKey::generate(&mut StdRng::seed_from_u64(2)),
        ChainId::new("test").unwrap(),
        [7; 32],
    );
    let (first, old_blob) = {
        let mut tpm = swtpm.connect().unwrap();
        let counter = tpm.define_counter(INDEX).unwrap();
        let first = counter.value(&mut tpm).unwrap();
        // Seal at the next value, store, advance: the host's order.
        let old_blob = sealer
            .seal_synthetic(SealPurpose::NodeState, first + 1, b"state 1")
            .unwrap();
        assert_eq!(counter.advance(&mut tpm, first + 1).unwrap(), first + 1);
        // Nothing to do below or at the value.
        assert_eq!(counter.advance(&mut tpm, first).unwrap(), first + 1);
        (first, old_blob)
    };
    let new_blob = sealer
        .seal_synthetic(SealPurpose::NodeState, first + 2, b"state 2")
        .unwrap();

    // The TPM restarts (state kept); the counter is where it was, and opening the same index
    // again does not reset it.
    drop(swtpm);
    let swtpm = Swtpm::start(&state).unwrap();
    let mut tpm = swtpm.connect().unwrap();
    let counter = tpm.counter(INDEX).unwrap();
    assert_eq!(counter.value(&mut tpm).unwrap(), first + 1);
    counter.advance(&mut tpm, first + 2).unwrap();
    let minimum = counter.value(&mut tpm).unwrap();
    assert_eq!(
        sealer
            .open(SealPurpose::NodeState, &new_blob, minimum)
            .unwrap()
            .plaintext
            .as_slice(),
        b"state 2"
    );
    assert_eq!(
        sealer
            .open(SealPurpose::NodeState, &old_blob, minimum)
            .unwrap_err(),
        SealError::RolledBack {
            found: first + 1,
            minimum
        }
    );
    drop(tpm);
    drop(swtpm);
    let _ = std::fs::remove_dir_all(&state);
}

fn tpm_source(swtpm: &Swtpm, nv_index: u32) -> SealingSource {
    SealingSource::Tpm(TpmSource {
        tcti: swtpm.tcti(),
        pcrs: vec![16],
        nv_index,
    })
}

#[test]
fn the_tpm_source_keeps_its_key_and_counter_in_the_tpm() {
    let state = state_dir("source");
    let Some(swtpm) = Swtpm::start_for_tests(&state) else {
        return;
    };
    let dir = state_dir("source-data");
    std::fs::create_dir_all(&dir).unwrap();
    let source = tpm_source(&swtpm, 0x0150_0001);
    assert!(
        source.open(&dir, false).is_err(),
        "nothing is made for a directory that should have sealed state"
    );
    // A selection that seals to nothing, or to a PCR that does not exist, is refused before
    // the counter's index is taken.
    for pcrs in [vec![], vec![24], vec![7, 7]] {
        let bad = SealingSource::Tpm(TpmSource {
            tcti: swtpm.tcti(),
            pcrs,
            nv_index: 0x0150_0001,
        });
        assert!(bad.open(&dir, true).is_err());
        assert!(!dir.join("sealing.tpm").exists());
    }
    let key = {
        let mut sealing = source.open(&dir, true).unwrap();
        assert_eq!(sealing.counter.value(), 0, "counted from its creation");
        sealing.counter.advance(2).unwrap();
        *sealing.key.expose()
    };
    let stored = std::fs::read(dir.join("sealing.tpm")).unwrap();
    assert!(!stored.windows(32).any(|w| w == key), "no key on disk");
    assert!(!dir.join("sealing.key").exists());

    // A restart of the service and of the TPM: the same key, the counter where it was; another
    // index or PCR selection in the configuration changes nothing (both are sealed).
    drop(swtpm);
    let swtpm = Swtpm::start(&state).unwrap();
    let source = tpm_source(&swtpm, 0x0150_0001);
    let mut reopened = tpm_source(&swtpm, 0x0150_0099).open(&dir, false).unwrap();
    assert_eq!(reopened.key.expose(), &key);
    assert_eq!(reopened.counter.value(), 2);
    assert!(matches!(
        reopened.counter.advance(1),
        Err(CounterError::Backwards { .. })
    ));

    drop(reopened);

    // Someone else increments the index (swtpm takes one client at a time): the counter as the
    // core sees it moved too, so every state sealed before is refused as older.
    let mut tpm = swtpm.connect().unwrap();
    let nv = tpm.counter(0x0150_0001).unwrap();
    let raw = nv.value(&mut tpm).unwrap();
    nv.advance(&mut tpm, raw + 2).unwrap();
    drop(tpm);
    assert_eq!(source.open(&dir, false).unwrap().counter.value(), 4);

    // A second directory cannot share the index; with its own index it gets its own key.
    let second = state_dir("source-second");
    std::fs::create_dir_all(&second).unwrap();
    let e = source.open(&second, true).unwrap_err();
    assert!(e.to_string().contains("already defined"), "{e}");
    let other = tpm_source(&swtpm, 0x0150_0002).open(&second, true).unwrap();
    assert_ne!(other.key.expose(), &key);
    drop(other);

    // The directory under another TPM, or after a PCR change: the key is not released.
    let other_state = state_dir("source-other");
    let other_tpm = Swtpm::start(&other_state).unwrap();
    assert!(matches!(
        tpm_source(&other_tpm, 0x0150_0001).open(&dir, false),
        Err(SourceError::Tpm(TpmError::Unseal(_)))
    ));
    drop(other_tpm);
    extend(&swtpm, 16);
    assert!(matches!(
        source.open(&dir, false),
        Err(SourceError::Tpm(TpmError::Unseal(_)))
    ));
    drop(swtpm);
    for d in [&state, &dir, &second, &other_state] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_quote_binds_keys_nonce_and_pcrs_under_the_pinned_attestation_key() {
    let state = state_dir("quote");
    let Some(swtpm) = Swtpm::start_for_tests(&state) else {
        return;
    };
    let mut rng = StdRng::seed_from_u64(5);
    let keys = [BoundKey::Identity(
        IdentityKeypair::generate(&mut rng).public(),
    )];
    let mut tpm = swtpm.connect().unwrap();
    let ak = tpm.attestation_key().unwrap();
    assert_eq!(
        tpm.attestation_key().unwrap(),
        ak,
        "the same key every time"
    );
    let evidence = tpm.quote(&keys, b"nonce-1", &[7, 16]).unwrap();
    assert_eq!(evidence.kind(), EvidenceKind::TpmQuote);
    assert_eq!(evidence.tpm_key(), Some(ak));
    // Through the wire encoding, as a verifier receives it.
    let evidence = Evidence::from_bytes(&evidence.to_bytes()).unwrap();
    let pinned = EvidencePolicy {
        trusted_tpm_keys: vec![ak.fingerprint()],
        ..Default::default()
    };
    let verified = evidence.verify(&pinned, &keys, b"nonce-1").unwrap();
    assert!(!verified.insecure);

    // Another nonce or key set, an unpinned key, an altered byte: refused.
    assert_eq!(
        evidence.verify(&pinned, &keys, b"nonce-2"),
        Err(EvidenceError::ReportDataMismatch)
    );
    assert_eq!(
        evidence.verify(&pinned, &[], b"nonce-1"),
        Err(EvidenceError::ReportDataMismatch)
    );
    assert_eq!(
        evidence.verify(&EvidencePolicy::default(), &keys, b"nonce-1"),
        Err(EvidenceError::UntrustedTpmKey(ak.fingerprint()))
    );
    let bytes = evidence.to_bytes();
    for i in [10, 80, 150, bytes.len() - 40, bytes.len() - 1] {
        let mut altered = bytes.clone();
        altered[i] ^= 0x01;
        assert!(
            Evidence::from_bytes(&altered)
                .and_then(|e| e.verify(&pinned, &keys, b"nonce-1"))
                .is_err(),
            "byte {i}"
        );
    }

    // The measurement is the PCRs': pinned, it refuses the machine once a PCR changes.
    let measured = EvidencePolicy {
        allowed_measurements: vec![evidence.measurement()],
        ..pinned.clone()
    };
    assert!(evidence.verify(&measured, &keys, b"nonce-1").is_ok());
    drop(tpm);
    extend(&swtpm, 16);
    let after = swtpm
        .connect()
        .unwrap()
        .quote(&keys, b"nonce-1", &[7, 16])
        .unwrap();
    assert!(matches!(
        after.verify(&measured, &keys, b"nonce-1"),
        Err(EvidenceError::MeasurementNotAllowed(_))
    ));
    drop(swtpm);
    let _ = std::fs::remove_dir_all(&state);
}
