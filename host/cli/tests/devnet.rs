//! `keyward devnet` end to end: real `keyward ledger`, `gatekeeper` and `worker` processes on
//! loopback, the whole story of issue 4 (both contracts, a faulty worker slashed, SIGKILL
//! restarts, refused and approved rotations, a re-key, old-epoch data), every check passing and
//! reported. The network then stays up (`--serve`) for `keyward user` to be driven against it,
//! as a user would from a shell.
#![allow(clippy::unwrap_used)] // tests

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One devnet at a time: each picks free ports by binding port 0 and releasing it before its
/// children bind, so two devnets started together can pick the same port.
static ONE_DEVNET: Mutex<()> = Mutex::new(());

/// The devnet process; stopped with SIGTERM (so it stops its children) however the test ends.
struct Devnet {
    child: Child,
    dir: PathBuf,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keyward(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// Runs `keyward user <args>` against the devnet; returns stdout, or stderr on failure.
fn user(net: &[&str], args: &[&str]) -> Result<String, String> {
    let mut all = vec!["user", args[0]];
    all.extend_from_slice(net);
    all.extend_from_slice(&args[1..]);
    let out = keyward(&all);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `keyward user send --key KEY --contract alice-notes CALL…`: (command hash, decoded reply).
fn send(net: &[&str], key: &str, call: &[&str]) -> Result<(String, String), String> {
    let mut args = vec!["send", "--key", key, "--contract", "alice-notes"];
    args.extend_from_slice(call);
    let out = user(net, &args)?;
    let mut lines = out.lines().map(str::to_owned);
    Ok((
        lines.next().unwrap_or_default(),
        lines.next().unwrap_or_default(),
    ))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn the_devnet_story_passes_every_check_and_serves_keyward_user() {
    let _one = ONE_DEVNET
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::env::temp_dir().join(format!("keyward-devnet-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args([
            "devnet",
            "--serve",
            "--data-dir",
            path(&dir),
            "--report",
            path(&dir.join("report.json")),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut devnet = Devnet { child, dir };
    let mut lines = BufReader::new(devnet.child.stdout.take().unwrap()).lines();
    let (mut story, mut genesis, mut ledger) = (String::new(), None, None);
    for line in lines.by_ref() {
        let line = line.unwrap();
        story.push_str(&line);
        story.push('\n');
        if let Some(hash) = line.strip_prefix("genesis ") {
            genesis = Some(hash.to_owned());
        }
        if let Some(rest) = line.strip_prefix("running; Ctrl-C to stop (ledger at ") {
            ledger = Some(rest.trim_end_matches(')').to_owned());
            break;
        }
    }
    let passed = story
        .lines()
        .find_map(|l| l.strip_prefix("keyward devnet: all "))
        .and_then(|l| l.strip_suffix(" checks passed"))
        .and_then(|n| n.parse::<usize>().ok());
    let passed = passed.unwrap_or_else(|| panic!("{story}"));
    // Every stage of the story ran, and the report says so check by check.
    for stage in [
        "register with evidence",
        "forms the clusters",
        "deploys both contracts",
        "encrypted commands",
        "reported and slashed",
        "SIGKILL",
        "without the council's approval are refused",
        "re-keyed",
        "Rotation",
        "old epoch",
        "same ledger",
        // The threshold story (the default, 2-of-3).
        "threshold mode, 2-of-3",
        "make epoch 0 by DKG",
        "g3 was down (SIGKILL) throughout",
        "reported g2's signed wrong partial on the ledger",
        "epoch 0 was reshared to the new set",
        "refreshes the shares",
    ] {
        assert!(story.contains(stage), "no stage '{stage}' in {story}");
    }
    let report = std::fs::read_to_string(devnet.dir.join("report.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["passed"], true);
    let checks = report["checks"].as_array().unwrap();
    assert_eq!(checks.len(), passed);
    assert!(checks.iter().all(|c| c["passed"] == true
        && c["name"].as_str().is_some_and(|n| !n.is_empty())
        && c["stage"].is_string()));
    let (genesis, ledger) = (genesis.unwrap(), ledger.unwrap());
    let net = ["--ledger", &ledger, "--genesis-hash", &genesis];

    // The devnet's contract, checked from the ledger alone.
    let shown = user(&net, &["contract", "--contract", "notes"]).unwrap();
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["code"], "kv-store");
    assert_eq!(
        shown["epoch"], 1,
        "the rotation moved the contract: {shown}"
    );
    assert!(shown["verified"].is_string());

    // A user with a key file of its own deploys, writes and reads back.
    let key = devnet.dir.join("alice.key");
    assert!(
        keyward(&["keys", "new", "--out", path(&key)])
            .status
            .success()
    );
    let key = path(&key);
    user(
        &net,
        &[
            "deploy",
            "--key",
            key,
            "--contract",
            "alice-notes",
            "--cluster",
            "c1",
            "--code",
            "kv-store",
        ],
    )
    .unwrap();
    let (command, stored) = send(&net, key, &["put", "greeting", "hello world"]).unwrap();
    assert_eq!(stored, "stored");
    let (_, value) = send(&net, key, &["get", "greeting"]).unwrap();
    assert_eq!(value, "hello world");

    // The earlier reply again, as JSON; a status of 0 and an empty body (a put).
    let reply = user(&net, &["reply", "--key", key, "--command", &command]).unwrap();
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(
        (reply["status"].as_u64(), reply["body"].as_str()),
        (Some(0), Some("0x"))
    );

    // Another user cannot open alice's reply, and reads nothing under alice's key.
    let mallory = devnet.dir.join("mallory.key");
    assert!(
        keyward(&["keys", "new", "--out", path(&mallory)])
            .status
            .success()
    );
    let mallory = path(&mallory);
    let refused = user(
        &net,
        &[
            "reply",
            "--key",
            mallory,
            "--command",
            &command,
            "--timeout",
            "1",
        ],
    )
    .unwrap_err();
    assert!(refused.contains("reply refused"), "{refused}");
    let (_, other) = send(&net, mallory, &["get", "greeting"]).unwrap();
    assert_eq!(other, "(no value)");

    // Clear refusals, nothing submitted.
    let wrong = send(&net, key, &["bid", "5"]).unwrap_err();
    assert!(wrong.contains("a kv-store call is one of"), "{wrong}");
    let unknown = user(&net, &["contract", "--contract", "nope"]).unwrap_err();
    assert!(unknown.contains("no contract nope"), "{unknown}");
    let other_ledger = [
        "--ledger",
        &ledger,
        "--genesis-hash",
        &format!("0x{}", "11".repeat(32)),
    ];
    let pinned = user(&other_ledger, &["contract", "--contract", "notes"]).unwrap_err();
    assert!(pinned.contains("genesis"), "{pinned}");
}

#[test]
fn devnet_sizes_out_of_range_are_refused_before_anything_starts() {
    let out = keyward(&["devnet", "--workers-per-cluster", "2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--workers-per-cluster"), "{err}");
    let out = keyward(&["devnet", "--gatekeepers", "0"]);
    assert!(!out.status.success());
}

#[test]
fn the_classic_devnet_runs_the_story_with_whole_master_keys() {
    let _one = ONE_DEVNET
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = std::env::temp_dir().join(format!("keyward-devnet-t-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = keyward(&[
        "devnet",
        "--threshold",
        "1",
        "--clusters",
        "1",
        "--data-dir",
        path(&dir),
        "--report",
        path(&dir.join("report.json")),
    ]);
    let story = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{story}");
    assert!(story.contains("classic mode"), "{story}");
    assert!(
        story.contains("all 3 gatekeepers hold its MasterKey"),
        "{story}"
    );
    assert!(story.contains("a gatekeeper published the key"), "{story}");
    assert!(!story.contains("refreshes"), "{story}");
    let report = std::fs::read_to_string(dir.join("report.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["sizes"]["threshold"], 1);
    let _ = std::fs::remove_dir_all(&dir);
    // A threshold above the gatekeeper count is refused before anything starts.
    let out = keyward(&["devnet", "--threshold", "4"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--threshold 4"));
}
