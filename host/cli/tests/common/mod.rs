//! What the process tests share: a `keyward` child process with its log, and a scan of a
//! process's memory.
#![allow(clippy::unwrap_used, dead_code)]

use std::fs;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The `keyward` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_keyward");

/// A `keyward` process whose stderr is collected.
pub struct Proc {
    child: Child,
    /// Its stderr so far.
    pub log: Arc<Mutex<String>>,
}

impl Proc {
    /// Starts `keyward args…` and waits for a log line containing `ready`; returns the process
    /// and that line.
    pub fn start(args: &[&str], ready: &str) -> (Self, String) {
        let mut child = Command::new(BIN)
            .args(args)
            // Everything either process logs is searched for secrets: log all of it.
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let ready = ready.to_owned();
        std::thread::spawn({
            let log = log.clone();
            move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if line.contains(&ready) {
                        let _ = tx.send(line.clone());
                    }
                    log.lock().unwrap().push_str(&line);
                    log.lock().unwrap().push('\n');
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{args:?} did not start: {}", log.lock().unwrap()));
        (Self { child, log }, line)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILLs it; its log.
    pub fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        // The reader thread sees the pipe close.
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of `/proc/PID/status`, trimmed.
fn status(pid: u32, field: &str) -> String {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap()
        .trim()
        .to_owned()
}

/// Process `pid` hardened itself as an isolated enclave does: no new privileges, a seccomp
/// filter, locked memory.
pub fn assert_hardened(pid: u32) {
    assert_eq!(status(pid, "NoNewPrivs:"), "1");
    assert_eq!(status(pid, "Seccomp:"), "2");
    assert_ne!(status(pid, "VmLck:"), "0 kB");
}

/// The forms a 32-byte secret could take in a log.
pub fn printed(secret: &[u8; 32]) -> Vec<String> {
    vec![
        secret.iter().map(|b| format!("{b:02x}")).collect(),
        keyward_crypto::SolanaPubkey(*secret).to_string(),
        keyward_host::to_base64(secret),
        format!("{secret:?}"),
    ]
}

/// Every readable byte of process `pid`'s memory.
pub fn memory(pid: u32) -> Vec<u8> {
    let maps = fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    let mem = fs::File::open(format!("/proc/{pid}/mem")).unwrap();
    let mut out = Vec::new();
    for line in maps.lines() {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            continue;
        };
        if !perms.starts_with('r') {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut region = vec![0u8; usize::try_from(end - start).unwrap()];
        // Some special mappings ([vvar], guard pages) do not read: skip them.
        if mem.read_exact_at(&mut region, start).is_ok() {
            out.extend_from_slice(&region);
        }
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
