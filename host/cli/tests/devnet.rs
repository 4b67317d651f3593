//! `keyward devnet` end to end: real `keyward ledger`, `gatekeeper` and `worker` processes on
//! loopback, SIGKILL restarts, a worker removal and a MasterKey rotation, every check passing.
#![allow(clippy::unwrap_used)] // tests

use std::process::Command;

#[test]
fn the_devnet_story_passes_every_check() {
    let dir = std::env::temp_dir().join(format!("keyward-devnet-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(["devnet", "--dir"])
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "devnet failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("all 22 checks passed"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
