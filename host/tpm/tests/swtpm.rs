//! The TPM source against a real TPM 2.0 implementation, swtpm: a sealing key sealed under a PCR
//! policy comes back only while the PCRs are unchanged and only from the same TPM; the NV
//! counter only goes up and survives a TPM restart; a sealed blob below it is refused.
//!
//! These tests need `swtpm` and `tpm2_pcrextend` (Debian: swtpm, tpm2-tools; `.ci/run` installs
//! them), and are built only with the `tpm` feature (`.ci/run` runs them with it). Without
//! swtpm they are skipped, except when `CI=true`, where they fail.
#![cfg(feature = "tpm")]
#![allow(missing_docs, clippy::unwrap_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyward_crypto::{ChainId, SecretBytes};
use keyward_enclave::{SealError, SealPurpose, Sealer, SoftSealingKey};
use keyward_tpm::{Tpm, TpmError, TpmSealedKey};
use rand::{SeedableRng, rngs::StdRng};

/// A running swtpm, stopped on drop; its state directory outlives it (for restarts).
struct Swtpm {
    child: Child,
    port: u16,
}

impl Swtpm {
    /// Starts swtpm on `state`, or returns `None` (skip) when swtpm is not installed outside CI.
    fn start(state: &Path) -> Option<Self> {
        if Command::new("swtpm").arg("--version").output().is_err() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "swtpm is not installed, and CI=true: .ci/run must install it"
            );
            eprintln!("skipped: swtpm is not installed (Debian package swtpm)");
            return None;
        }
        std::fs::create_dir_all(state).unwrap();
        let port = free_port_pair();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", state.display()))
            .args([
                "--server",
                &format!("type=tcp,port={port},bindaddr=127.0.0.1"),
            ])
            .args([
                "--ctrl",
                &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1),
            ])
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "swtpm did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { child, port })
    }

    fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    fn connect(&self) -> Tpm {
        Tpm::connect(&self.tcti()).unwrap()
    }

    /// Extends PCR `pcr` (SHA-256 bank), as a changed boot component would.
    fn extend(&self, pcr: u8) {
        let status = Command::new("tpm2_pcrextend")
            .args(["-T", &self.tcti()])
            .arg(format!("{pcr}:sha256={}", "01".repeat(32)))
            .status()
            .expect("tpm2_pcrextend (Debian package tpm2-tools)");
        assert!(status.success());
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        // SIGTERM lets swtpm write its state out.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// Two consecutive free loopback ports (server and control).
fn free_port_pair() -> u16 {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
}

fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyward-swtpm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn a_sealed_key_comes_back_only_with_the_same_pcrs_on_the_same_tpm() {
    let state = state_dir("seal");
    let Some(swtpm) = Swtpm::start(&state) else {
        return;
    };
    let key = SecretBytes::<32>::random(&mut StdRng::seed_from_u64(1));
    let sealed = {
        let mut tpm = swtpm.connect();
        let sealed = tpm.seal_key(&key, &[16, 23]).unwrap();
        assert_eq!(
            tpm.unseal_key(&sealed).unwrap().expose(),
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
        swtpm.connect().unseal_key(&altered),
        Err(TpmError::Unseal(_))
    ));

    // Another TPM cannot unseal it.
    let other_state = state_dir("seal-other");
    let other = Swtpm::start(&other_state).unwrap();
    assert!(matches!(
        other.connect().unseal_key(&sealed),
        Err(TpmError::Unseal(_))
    ));
    drop(other);

    // A changed PCR: the key stays sealed.
    swtpm.extend(23);
    assert!(matches!(
        swtpm.connect().unseal_key(&sealed),
        Err(TpmError::Unseal(_))
    ));
    assert!(matches!(
        swtpm.connect().seal_key(&key, &[24]),
        Err(TpmError::NoSuchPcr(24))
    ));
    drop(swtpm);
    let _ = std::fs::remove_dir_all(&state);
    let _ = std::fs::remove_dir_all(&other_state);
}

#[test]
fn the_nv_counter_only_goes_up_survives_a_restart_and_refuses_an_older_blob() {
    let state = state_dir("counter");
    let Some(swtpm) = Swtpm::start(&state) else {
        return;
    };
    const INDEX: u32 = 0x0150_4b57;
    let sealer = Sealer::new(
        &SoftSealingKey::generate(&mut StdRng::seed_from_u64(2)),
        ChainId::new("test").unwrap(),
        [7; 32],
    );
    let (first, old_blob) = {
        let mut tpm = swtpm.connect();
        let counter = tpm.counter(INDEX).unwrap();
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
    let mut tpm = swtpm.connect();
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
