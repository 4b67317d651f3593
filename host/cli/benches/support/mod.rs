//! What the loopback benchmarks share: child `keyward` processes, free ports, and CPU time read
//! from `/proc`.
#![allow(dead_code, clippy::unwrap_used)] // each bench uses part of it

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// A child `keyward` process, killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `keyward args…` with stderr logged to `dir/name.log`, and stdout there too unless
/// `piped` (the caller then reads it).
pub fn spawn(dir: &Path, name: &str, args: &[&str], piped: bool) -> Proc {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let stdout = if piped {
        Stdio::piped()
    } else {
        Stdio::from(log.try_clone().unwrap())
    };
    let child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log)
        .spawn()
        .unwrap();
    Proc(child)
}

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process's user + system CPU time so far (`/proc/<pid>/stat`, in clock ticks).
pub fn process_cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_secs_f64(ticks as f64 / clock_ticks())
}

/// `getconf CLK_TCK`: the unit of /proc/<pid>/stat times (asked once).
pub fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    })
}
