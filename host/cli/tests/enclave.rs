//! The isolated runner as processes: `keyward enclave` hardens and confines itself, the signer
//! reaches it over its socket, either side can be SIGKILLed and restarted without losing a vote
//! or signing a conflicting one, and no secret key ever appears in the host process's memory or
//! in either process's log (while, as a control, the in-process runner's host does hold them).
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::StdRng;

use keyward_crypto::{ChainId, SecretBytes, SolanaKeypair, SolanaPubkey, SolanaSignature};
use keyward_enclave::{SealPurpose, SealedBlob, Sealer, SealingKey};
use keyward_signer::client::{Client, ClientError};
use keyward_signer::store::Store;
use keyward_signer::votes::slots_message;
use keyward_vote::Payload;

mod common;
use common::{BIN, Proc, assert_hardened, contains, memory, printed};

fn tempdir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("keyward-enclave-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A signer configuration in `dir` with the given runner kind (and more TOML after it).
fn config_with(dir: &Path, runner: &str, more: &str) -> PathBuf {
    let path = dir.join("signer.toml");
    fs::write(
        &path,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n[runner]\nkind = \"{runner}\"\n{more}",
            dir.join("data").display()
        ),
    )
    .unwrap();
    path
}

fn config(dir: &Path, runner: &str) -> PathBuf {
    config_with(dir, runner, "")
}

fn start_enclave(config: &Path) -> Proc {
    Proc::start(
        &["enclave", "--config", config.to_str().unwrap()],
        "keyward enclave started",
    )
    .0
}

fn start_signer(config: &Path) -> (Proc, String) {
    let (proc, line) = Proc::start(
        &["signer", "--config", config.to_str().unwrap()],
        "keyward signer started",
    );
    let addr = line
        .split("listen=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    (proc, format!("http://{addr}"))
}

/// The secrets a signer's store and sealing key hold: every vote key seed and the platform key
/// seed, opened with the sealing key in `sealing_dir`.
fn secrets(data_dir: &Path, sealing_dir: &Path) -> (Vec<[u8; 32]>, [u8; 32]) {
    let key = fs::read(sealing_dir.join("sealing.key")).unwrap();
    let key = SealingKey::from_bytes(SecretBytes::from_slice(&key).unwrap());
    let sealer = Sealer::new(&key, ChainId::new("solana").unwrap(), [0; 32]);
    let stored = Store::open(data_dir).unwrap().stored().unwrap();
    let seeds = stored
        .records
        .iter()
        .map(|(_, record)| {
            let opened = sealer
                .open(
                    SealPurpose::ValidatorRecord,
                    &SealedBlob::from_bytes(record.clone()),
                    0,
                )
                .unwrap();
            // A registered validator's record ends with its vote key's seed.
            opened.plaintext[opened.plaintext.len() - 32..]
                .try_into()
                .unwrap()
        })
        .collect();
    let platform = sealer
        .open(
            SealPurpose::PlatformKey,
            &SealedBlob::from_bytes(stored.platform.unwrap()),
            0,
        )
        .unwrap();
    (seeds, platform.plaintext[..].try_into().unwrap())
}

struct Validator {
    identity: SolanaKeypair,
    vote_account: SolanaPubkey,
}

impl Validator {
    fn new(seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        Self {
            identity: SolanaKeypair::generate(&mut rng),
            vote_account: SolanaKeypair::generate(&mut rng).pubkey(),
        }
    }

    async fn client(&self, url: &str) -> Client {
        Client::connect(url, SolanaKeypair::from_seed(&self.identity.seed()))
            .await
            .unwrap()
    }

    /// A `TowerSync` vote message for the tower `slots` make.
    fn message(&self, vote_key: &SolanaPubkey, slots: &[u64]) -> Vec<u8> {
        slots_message(&self.identity.pubkey(), &self.vote_account, vote_key, slots).unwrap()
    }

    fn vote(&self, vote_key: &SolanaPubkey, slots: &[u64]) -> Payload {
        Payload::SignVote {
            message: self.message(vote_key, slots),
            evidence: Vec::new(),
        }
    }
}

/// Sends `payload`, retrying while the enclave is being reconnected (code 1505).
async fn send_retrying(client: &Client, payload: Payload) -> Result<SolanaSignature, ClientError> {
    for _ in 0..50 {
        let request = client.sign(payload.clone());
        let result: Result<keyward_signer::wire::SignatureResult, _> = client.send(&request).await;
        match result {
            Err(ClientError::Refused { code: 1505, .. }) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => return other.map(|r| r.signature.parse().unwrap()),
        }
    }
    panic!("the enclave never came back")
}

/// The status line and body of `GET /health` at `url` (`http://host:port`).
async fn get_health(url: &str) -> String {
    let addr = url.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_isolated_runner_survives_crashes_of_either_side_and_keeps_every_key_out_of_the_host() {
    let dir = tempdir("isolated");
    let config = config(&dir, "isolated");
    let enclave = start_enclave(&config);
    assert_hardened(enclave.pid());
    // A second enclave on the same state directory is refused (two would keep two counters).
    let second = Command::new(BIN)
        .args(["enclave", "--config", config.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = second.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another keyward enclave"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (signer, url) = start_signer(&config);

    let v = Validator::new(1);
    let client = v.client(&url).await;
    let vote_key: SolanaPubkey = client
        .register(v.vote_account)
        .await
        .unwrap()
        .vote_pubkey
        .parse()
        .unwrap();
    client
        .sign_vote(v.message(&vote_key, &[1]), Vec::new())
        .await
        .unwrap();
    let slot2 = client.sign(v.vote(&vote_key, &[1, 2]));
    let sig2: keyward_signer::wire::SignatureResult = client.send(&slot2).await.unwrap();

    // The enclave dies: the next request finds it gone, and health says so until it is back.
    assert!(get_health(&url).await.starts_with("HTTP/1.1 200"));
    let enclave_log = enclave.kill();
    let unreachable = client.sign(v.vote(&vote_key, &[1, 2, 3]));
    let refused: Result<keyward_signer::wire::SignatureResult, _> = client.send(&unreachable).await;
    assert!(matches!(
        refused,
        Err(ClientError::Refused { code: 1505, .. })
    ));
    let health = get_health(&url).await;
    assert!(health.starts_with("HTTP/1.1 503"), "{health}");
    assert!(health.contains("no enclave session"), "{health}");
    // It comes back: the host reconnects without waiting for a request, and nothing was lost.
    let enclave = start_enclave(&config);
    let mut health = String::new();
    for _ in 0..100 {
        health = get_health(&url).await;
        if health.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    send_retrying(&client, v.vote(&vote_key, &[1, 2, 3]))
        .await
        .unwrap();
    let again: keyward_signer::wire::SignatureResult = client.send(&slot2).await.unwrap();
    assert_eq!(
        again.signature, sig2.signature,
        "a retry gets the same answer"
    );
    // Slot 4 on a fork without 3 breaks 3's lockout.
    let conflicting = send_retrying(&client, v.vote(&vote_key, &[1, 2, 4])).await;
    assert_eq!(conflicting.unwrap_err().reason(), Some("lockout_conflict"));

    // The host's memory, while it runs: taken now, searched once the keys are known.
    let host_memory = memory(signer.pid());

    // The host dies and comes back: it reconnects to the same enclave.
    let signer_log = signer.kill();
    let (signer, url) = start_signer(&config);
    let client = v.client(&url).await;
    let refused = client
        .sign_vote(v.message(&vote_key, &[1, 2, 4]), Vec::new())
        .await;
    assert_eq!(refused.unwrap_err().reason(), Some("lockout_conflict"));
    client
        .sign_vote(v.message(&vote_key, &[1, 2, 3, 5]), Vec::new())
        .await
        .unwrap();
    let logs = [enclave_log, signer_log, signer.kill(), enclave.kill()].concat();

    let (seeds, platform) = secrets(&dir.join("data"), &dir.join("data/enclave"));
    assert_eq!(seeds.len(), 1);
    let sealing_key: [u8; 32] = fs::read(dir.join("data/enclave/sealing.key"))
        .unwrap()
        .try_into()
        .unwrap();
    // The scan sees the host's heap: the public vote key it answered with is there.
    assert!(contains(&host_memory, &vote_key.0));
    for secret in seeds.iter().chain([&platform, &sealing_key]) {
        assert!(
            !contains(&host_memory, secret),
            "a secret is in the host's memory"
        );
        for form in printed(secret) {
            assert!(!logs.contains(&form), "a secret is in a log");
        }
    }
    assert!(logs.contains("a host connected"), "the logs were read");
    let _ = fs::remove_dir_all(&dir);
}

/// The control: with the in-process runner the host holds the vote keys, and the scan finds
/// them, so the isolated runner's clean scan means something.
#[tokio::test(flavor = "multi_thread")]
async fn with_the_in_process_runner_the_scan_finds_the_vote_key_in_the_host() {
    let dir = tempdir("in-process");
    let config = config(&dir, "in-process");
    let (signer, url) = start_signer(&config);
    let v = Validator::new(2);
    v.client(&url).await.register(v.vote_account).await.unwrap();
    let host_memory = memory(signer.pid());
    drop(signer.kill());
    let (seeds, _) = secrets(&dir.join("data"), &dir.join("data"));
    assert!(contains(&host_memory, &seeds[0]));
    let _ = fs::remove_dir_all(&dir);
}

/// With the TPM source the isolated enclave, hardened and confined (Landlock, seccomp), still
/// reaches the TPM: it seals its key there, answers a registration with a quote by the TPM's
/// attestation key, and after both sides restart unseals its key and keeps the tower.
#[cfg(feature = "tpm")]
#[tokio::test(flavor = "multi_thread")]
async fn the_isolated_runner_seals_and_quotes_with_a_tpm_and_keeps_the_tower() {
    use keyward_enclave::{Evidence, EvidenceKind};
    use keyward_tpm::swtpm::Swtpm;

    let dir = tempdir("isolated-tpm");
    let state = dir.join("swtpm");
    fs::create_dir_all(&state).unwrap();
    let Some(swtpm) = Swtpm::start_for_tests(&state) else {
        return;
    };
    let config = config_with(
        &dir,
        "isolated",
        &format!(
            "[sealing]\nsource = \"tpm\"\ntcti = \"{}\"\npcrs = [16]\nnv_index = 0x01500030\n",
            swtpm.tcti()
        ),
    );
    let enclave = start_enclave(&config);
    assert_hardened(enclave.pid());
    let (signer, url) = start_signer(&config);

    let v = Validator::new(3);
    let client = v.client(&url).await;
    let registered = client.register(v.vote_account).await.unwrap();
    let vote_key: SolanaPubkey = registered.vote_pubkey.parse().unwrap();
    let evidence =
        Evidence::from_bytes(&keyward_host::from_base64(&registered.evidence).unwrap()).unwrap();
    assert_eq!(evidence.kind(), EvidenceKind::TpmQuote);
    evidence.check_signature().unwrap();
    let files: Vec<_> = fs::read_dir(dir.join("data").join("enclave"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(files.iter().any(|f| f == "sealing.tpm"), "{files:?}");
    assert!(!files.iter().any(|f| f == "sealing.key"), "{files:?}");
    client
        .sign_vote(v.message(&vote_key, &[1]), Vec::new())
        .await
        .unwrap();
    send_retrying(&client, v.vote(&vote_key, &[1, 2]))
        .await
        .unwrap();

    // Both sides stop; the TPM's attestation key is the one that quoted.
    drop(signer.kill());
    drop(enclave.kill());
    let ak = swtpm.connect().unwrap().attestation_key().unwrap();
    assert_eq!(evidence.tpm_key().unwrap().fingerprint(), ak.fingerprint());

    // Both come back: the key unseals under the confinement and the tower is as it was.
    let enclave = start_enclave(&config);
    let (signer, url) = start_signer(&config);
    let client = v.client(&url).await;
    // Slot 3 on a fork without 2 breaks 2's lockout, which only the restored tower knows.
    let conflicting = send_retrying(&client, v.vote(&vote_key, &[1, 3])).await;
    assert_eq!(conflicting.unwrap_err().reason(), Some("lockout_conflict"));
    send_retrying(&client, v.vote(&vote_key, &[1, 2, 3]))
        .await
        .unwrap();
    drop(signer.kill());
    drop(enclave.kill());
    drop(swtpm);
    let _ = fs::remove_dir_all(&dir);
}
