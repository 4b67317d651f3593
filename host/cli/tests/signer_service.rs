//! The vote signer as a process: crash safety under SIGKILL, races, and bad input over HTTP.
#![allow(clippy::unwrap_used)]

use keyward_host::to_base64;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use keyward_crypto::{SecretBytes, SolanaKeypair, SolanaPubkey, SolanaSignature};
use keyward_signer::client::{Client, ClientError};
use keyward_signer::votes::tower_sync_message;
use keyward_vote::{LockoutPolicy, Tower};

const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// A signer process on an ephemeral port.
struct Signer {
    child: Child,
    addr: SocketAddr,
}

impl Signer {
    fn start(data_dir: &Path) -> Self {
        let mut child = Command::new(BIN)
            .args(["signer", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listen=").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let addr = rest.split_whitespace().next().unwrap().to_owned();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the signer starts")
            .parse()
            .unwrap();
        Self { child, addr }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGKILL: no destructor, no flush, no goodbye.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clone_kp(k: &SolanaKeypair) -> SolanaKeypair {
    SolanaKeypair::from_seed(&k.seed())
}

fn keypair(rng: &mut StdRng) -> SolanaKeypair {
    SolanaKeypair::from_seed(&SecretBytes::random(rng))
}

/// Registers a fresh validator: its identity, vote account, client and vote key.
async fn register(
    url: &str,
    rng: &mut StdRng,
) -> (SolanaKeypair, SolanaPubkey, Client, SolanaPubkey) {
    let identity = keypair(rng);
    let vote_account = keypair(rng).pubkey();
    let client = Client::connect(url, clone_kp(&identity)).await.unwrap();
    let vote_key = client
        .register(vote_account)
        .await
        .unwrap()
        .vote_pubkey
        .parse()
        .unwrap();
    (identity, vote_account, client, vote_key)
}

/// Every tower stored in a stopped signer's data directory, by identity.
fn exported_towers(data_dir: &Path) -> BTreeMap<String, Option<u64>> {
    let out = Command::new(BIN)
        .args(["signer-tower", "export", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let last = e["lockouts"]
                .as_array()
                .unwrap()
                .last()
                .map(|l| l["slot"].as_str().unwrap().parse().unwrap());
            (e["identity"].as_str().unwrap().to_owned(), last)
        })
        .collect()
}

/// One acknowledged vote.
#[derive(Clone)]
struct Acked {
    tower: Tower,
    message: Vec<u8>,
    signature: SolanaSignature,
}

/// Two signed towers definitely conflict when a vote of the older one is still locked out at
/// the newer one's last slot, yet the newer one's fork (its votes and root) leaves it out.
fn conflicts(older: &Tower, newer: &Tower) -> bool {
    let policy = LockoutPolicy::SOLANA;
    let slot = newer.last_voted_slot().unwrap();
    older.votes().iter().any(|v| {
        policy.last_locked_out_slot(v) >= slot
            && !newer.votes().iter().any(|n| n.slot == v.slot)
            && newer.root().is_none_or(|r| v.slot > r)
    })
}

struct Validator {
    identity: SolanaKeypair,
    vote_account: SolanaPubkey,
    vote_key: SolanaPubkey,
    acked: Mutex<Vec<Acked>>,
}

/// One of two competing voters for a validator: it only knows its own accepted votes, so
/// whenever the other has a vote still locked out, the signer must refuse it.
async fn voter(url: String, v: Arc<Validator>, seed: u64, hash: u8) {
    let mut rng = StdRng::seed_from_u64(seed);
    let client = match Client::connect(&url, clone_kp(&v.identity)).await {
        Ok(c) => c,
        Err(_) => return,
    };
    let policy = LockoutPolicy::SOLANA;
    let mut mine = Tower::new();
    let mut gap = 1u64;
    let mut slot = 1_000u64 + seed % 7;
    loop {
        slot += rng.gen_range(1..=gap);
        let Ok(proposal) = mine.apply_slots(&[slot], &policy) else {
            continue;
        };
        let message = tower_sync_message(
            &v.identity.pubkey(),
            &v.vote_account,
            &v.vote_key,
            &proposal,
            [hash; 32],
            [0xbb; 32],
        );
        match client.sign_vote(message.clone(), Vec::new()).await {
            Ok(signature) => {
                v.acked.lock().unwrap().push(Acked {
                    tower: proposal.clone(),
                    message,
                    signature,
                });
                mine = proposal;
                gap = 3;
            }
            // Locked out by the other voter's votes, or behind them: wait longer.
            Err(ClientError::Refused { .. }) => gap = (gap * 2).min(64),
            // The signer was killed.
            Err(ClientError::Transport(_) | ClientError::BadAnswer(_)) => return,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_never_signs_conflicting_votes_nor_forgets_an_acknowledged_one() {
    let dir = tempdir("crash");
    let mut rng = StdRng::seed_from_u64(0xc4a5);
    let mut validators = Vec::new();
    {
        let signer = Signer::start(&dir);
        for _ in 0..3 {
            let (identity, vote_account, _, vote_key) = register(&signer.url(), &mut rng).await;
            validators.push(Arc::new(Validator {
                identity,
                vote_account,
                vote_key,
                acked: Mutex::new(Vec::new()),
            }));
        }
        signer.kill();
    }
    for round in 0..5u64 {
        let signer = Signer::start(&dir);
        let mut tasks = Vec::new();
        for (i, v) in validators.iter().enumerate() {
            for (j, hash) in [(0u64, 0xa0), (1, 0xb0)] {
                let seed = round * 100 + i as u64 * 10 + j;
                tasks.push(tokio::spawn(voter(signer.url(), v.clone(), seed, hash)));
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..900))).await;
        signer.kill();
        for t in tasks {
            t.await.unwrap();
        }
        // Nothing acknowledged is forgotten: every stored tower reaches the newest vote the
        // signer acknowledged before it died.
        let stored = exported_towers(&dir);
        for v in &validators {
            let newest = v
                .acked
                .lock()
                .unwrap()
                .iter()
                .filter_map(|a| a.tower.last_voted_slot())
                .max();
            let last = stored[&v.identity.pubkey().to_string()];
            assert!(
                last >= newest,
                "round {round}: stored {last:?} < acknowledged {newest:?}"
            );
        }
    }
    let mut total = 0;
    for v in &validators {
        let mut acked = v.acked.lock().unwrap().clone();
        acked.sort_by_key(|a| a.tower.last_voted_slot());
        total += acked.len();
        for (i, a) in acked.iter().enumerate() {
            assert!(v.vote_key.verify(&a.message, &a.signature).is_ok());
            for newer in &acked[i + 1..] {
                assert!(
                    !conflicts(&a.tower, &newer.tower),
                    "conflicting votes signed: {} then {}",
                    a.tower,
                    newer.tower
                );
            }
        }
    }
    assert!(
        total > 20,
        "too few votes acknowledged ({total}) to mean anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_conflicting_votes_at_most_one_signed() {
    let dir = tempdir("race");
    let signer = Signer::start(&dir);
    let mut rng = StdRng::seed_from_u64(0x7ace);
    let (identity, vote_account, client, vote_key) = register(&signer.url(), &mut rng).await;
    let client = Arc::new(client);
    // Votes on slots 100..=102, each on its own fork (its own bank hash): any one locks out
    // every other (a vote on s is locked out until s + 2).
    let policy = LockoutPolicy::SOLANA;
    let mut tasks = Vec::new();
    for i in 0..30u8 {
        let tower = Tower::new()
            .apply_slots(&[100 + u64::from(i % 3)], &policy)
            .unwrap();
        let message = tower_sync_message(
            &identity.pubkey(),
            &vote_account,
            &vote_key,
            &tower,
            [i; 32],
            [0xbb; 32],
        );
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.sign_vote(message, Vec::new()).await
        }));
    }
    let mut signed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => signed += 1,
            Err(ClientError::Refused { reason, .. }) => assert!(
                ["vote_too_old", "lockout_conflict", "stale_nonce"].contains(&reason.as_str()),
                "{reason}"
            ),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(signed, 1);
}

/// Sends raw HTTP and returns (status, body).
fn raw_post(addr: SocketAddr, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let _ = s.write_all(body);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_error_and_changes_nothing() {
    let dir = tempdir("bad-input");
    let signer = Signer::start(&dir);
    let mut rng = StdRng::seed_from_u64(0xbad);
    let (identity, vote_account, client, vote_key) = register(&signer.url(), &mut rng).await;
    let policy = LockoutPolicy::SOLANA;
    let first = Tower::new().apply_slots(&[10], &policy).unwrap();
    let msg = |tower: &Tower, account: &SolanaPubkey| {
        tower_sync_message(
            &identity.pubkey(),
            account,
            &vote_key,
            tower,
            [1; 32],
            [2; 32],
        )
    };
    client
        .sign_vote(msg(&first, &vote_account), Vec::new())
        .await
        .unwrap();

    let refusal = |r: Result<SolanaSignature, ClientError>| match r {
        Err(ClientError::Refused { code, reason, .. }) => (code, reason),
        other => panic!("expected a refusal, got {other:?}"),
    };
    // Garbage, truncated, wrong account, a conflicting vote.
    let good_next = first.apply_slots(&[11], &policy).unwrap();
    let next_msg = msg(&good_next, &vote_account);
    for (message, code, reason) in [
        (vec![0xff; 40], 1202, "malformed_message"),
        (
            next_msg[..next_msg.len() - 3].to_vec(),
            1202,
            "malformed_message",
        ),
        (
            msg(&good_next, &keypair(&mut rng).pubkey()),
            1213,
            "wrong_account",
        ),
        (
            msg(
                &Tower::new().apply_slots(&[11], &policy).unwrap(),
                &vote_account,
            ),
            1311,
            "lockout_conflict",
        ),
        (
            msg(
                &Tower::new().apply_slots(&[9], &policy).unwrap(),
                &vote_account,
            ),
            1302,
            "vote_too_old",
        ),
    ] {
        let got = refusal(client.sign_vote(message, Vec::new()).await);
        assert_eq!(got, (code, reason.to_owned()));
    }
    // A bad signature, a replayed nonce, an unknown validator.
    let mut request = client.sign(keyward_vote::Payload::SignVote {
        message: next_msg.clone(),
        evidence: Vec::new(),
    });
    let good = request.clone();
    request.signature.0[0] ^= 1;
    assert_eq!(
        refusal(
            client
                .send::<serde_json::Value>(&request)
                .await
                .map(|_| unreachable!())
        ),
        (1001, "bad_signature".into())
    );
    // An identity that is not a curve point cannot have signed anything.
    let not_a_point = (0..=255u8)
        .map(|b| SolanaPubkey([b; 32]))
        .find(|k| k.to_string().parse::<SolanaPubkey>().is_err())
        .unwrap();
    let mut pointless = good.clone();
    pointless.identity = not_a_point;
    assert_eq!(
        refusal(
            client
                .send::<serde_json::Value>(&pointless)
                .await
                .map(|_| unreachable!())
        ),
        (1001, "bad_signature".into())
    );
    let stranger = Client::connect(&signer.url(), keypair(&mut rng))
        .await
        .unwrap();
    assert_eq!(
        refusal(stranger.sign_vote(next_msg.clone(), Vec::new()).await),
        (1101, "unknown_validator".into())
    );
    // Malformed JSON, an unknown method, an oversized body.
    let (status, body) = raw_post(signer.addr, b"{\"jsonrpc\":\"2.0\",");
    assert!(body.contains("-32700"), "{status} {body}");
    let (_, body) = raw_post(
        signer.addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"signAnything","params":{}}"#,
    );
    assert!(body.contains("-32601"), "{body}");
    let (_, body) = raw_post(
        signer.addr,
        br#"{"jsonrpc":"2.0","id":1,"method":"signVote","params":{"identity":"x"}}"#,
    );
    assert!(body.contains("-32602"), "{body}");
    let big = vec![b' '; 600 * 1024];
    let (status, _) = raw_post(signer.addr, &big);
    assert_eq!(status, 413);

    // Nothing changed: the honest next vote is signed, then its byte-identical retry gets the
    // same answer, and a replay of its nonce with other bytes is refused.
    let sig: serde_json::Value = client.send(&good).await.unwrap();
    let again: serde_json::Value = client.send(&good).await.unwrap();
    assert_eq!(sig, again);
    let signature: SolanaSignature = sig["signature"].as_str().unwrap().parse().unwrap();
    assert!(vote_key.verify(&next_msg, &signature).is_ok());
    let mut replay = good.clone();
    replay.payload = keyward_vote::Payload::SignVote {
        message: msg(
            &good_next.apply_slots(&[12], &policy).unwrap(),
            &vote_account,
        ),
        evidence: Vec::new(),
    };
    let replay =
        keyward_vote::SignedRequest::sign(replay.payload, replay.service, &identity, replay.nonce);
    assert_eq!(
        refusal(
            client
                .send::<serde_json::Value>(&replay)
                .await
                .map(|_| unreachable!())
        ),
        (1005, "replayed_nonce".into())
    );

    // Metrics count the refusals by reason.
    let (_, metrics) = get(signer.addr, "/metrics");
    assert!(metrics.contains("reason=\"lockout_conflict\""), "{metrics}");
    assert!(metrics.contains("keyward_signer_commit_batch_size"));
}

fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, out)
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keyward-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn the_reference_client_registers_signs_rotates_and_deregisters() {
    let dir = tempdir("client");
    let signer = Signer::start(&dir);
    let mut rng = StdRng::seed_from_u64(0xc11);
    let identity = keypair(&mut rng);
    let id_file = dir.join("id.json");
    std::fs::write(&id_file, identity.to_keypair_file().as_bytes()).unwrap();
    let vote_account = keypair(&mut rng).pubkey();
    let client = |args: &[&str]| {
        let out = Command::new(BIN)
            .args(["signer-client", "--url", &signer.url()])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap().trim().to_owned(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let id = id_file.to_str().unwrap();
    let (ok, vote_key, _) = client(&[
        "register",
        "--identity",
        id,
        "--vote-account",
        &vote_account.to_string(),
    ]);
    assert!(ok);
    let vote_key: SolanaPubkey = vote_key.parse().unwrap();
    let (ok, again, _) = client(&[
        "register",
        "--identity",
        id,
        "--vote-account",
        &vote_account.to_string(),
    ]);
    assert!(ok);
    assert_eq!(again, vote_key.to_string(), "a retry returns the same key");

    let policy = LockoutPolicy::SOLANA;
    let tower = Tower::new().apply_slots(&[5], &policy).unwrap();
    let message = tower_sync_message(
        &identity.pubkey(),
        &vote_account,
        &vote_key,
        &tower,
        [3; 32],
        [4; 32],
    );
    let b64 = to_base64(&message);
    let (ok, sig, _) = client(&["sign-vote", "--identity", id, "--message-base64", &b64]);
    assert!(ok);
    let sig: SolanaSignature = sig.parse().unwrap();
    assert!(vote_key.verify(&message, &sig).is_ok());

    // Rotation: a new key; a message for the old key is refused, with its reason, exit 1.
    let (ok, new_key, _) = client(&["rotate", "--identity", id]);
    assert!(ok);
    assert_ne!(new_key, vote_key.to_string());
    let next = tower.apply_slots(&[6], &policy).unwrap();
    let old_key_msg = tower_sync_message(
        &identity.pubkey(),
        &vote_account,
        &vote_key,
        &next,
        [3; 32],
        [4; 32],
    );
    let (ok, _, err) = client(&[
        "sign-vote",
        "--identity",
        id,
        "--message-base64",
        &to_base64(&old_key_msg),
    ]);
    assert!(!ok);
    assert!(err.contains("vote_key_not_signer"), "{err}");

    // Deregistration returns the final tower as an interchange document.
    let (ok, doc, _) = client(&["deregister", "--identity", id]);
    assert!(ok);
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(
        doc["metadata"]["interchange_format"],
        "keyward-solana-tower"
    );
    assert_eq!(doc["data"][0]["lockouts"][0]["slot"], "5");
    let (ok, _, err) = client(&["sign-vote", "--identity", id, "--message-base64", &b64]);
    assert!(!ok);
    assert!(err.contains("not_registered"), "{err}");
}
