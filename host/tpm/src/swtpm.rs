//! A software TPM (swtpm) process on loopback, for tests and dev networks: the TPM source's
//! code paths against a real TPM 2.0 implementation. swtpm keeps its state in a directory, so
//! what it seals protects nothing; it is API parity, not security.

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::{Tpm, TpmError};

/// A running swtpm, stopped (with SIGTERM, so it writes its state out) on drop. Its state
/// directory outlives it, so a new [`Swtpm`] on the same directory is the same TPM restarted.
#[derive(Debug)]
pub struct Swtpm {
    child: Child,
    port: u16,
    /// Held by a test's swtpm for its lifetime: see [`Swtpm::start_for_tests`].
    serial: Option<MutexGuard<'static, ()>>,
}

impl Swtpm {
    /// Whether the `swtpm` program is installed (Debian package swtpm).
    pub fn installed() -> bool {
        Command::new("swtpm").arg("--version").output().is_ok()
    }

    /// Starts swtpm with its state in `state` (created if missing), listening on two free
    /// loopback ports (TCP: tss-esapi's TCTI parser knows no Unix socket path), and waits until
    /// it accepts connections on both.
    ///
    /// # Errors
    /// [`TpmError::Connect`] if swtpm cannot be started or does not listen within 10 s.
    pub fn start(state: &Path) -> Result<Self, TpmError> {
        let fail = |reason: String| TpmError::Connect {
            tcti: format!("swtpm on {}", state.display()),
            reason,
        };
        std::fs::create_dir_all(state).map_err(|e| fail(e.to_string()))?;
        // One start at a time in this process: a port pair is picked only once every earlier
        // swtpm holds its own, so two never pick the same.
        let _starting = STARTING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let port = free_port_pair().map_err(|e| fail(e.to_string()))?;
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", state.display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| fail(format!("cannot run swtpm (Debian package swtpm): {e}")))?;
        let swtpm = Self {
            child,
            port,
            serial: None,
        };
        let started = Instant::now();
        while [port, port + 1]
            .iter()
            .any(|&p| TcpStream::connect(("127.0.0.1", p)).is_err())
        {
            if started.elapsed() > Duration::from_secs(10) {
                return Err(fail("swtpm did not listen within 10 s".into()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(swtpm)
    }

    /// For tests: [`Swtpm::start`], or `None` (the test skips) when swtpm is not installed,
    /// except under `CI=true`, where a missing swtpm is a failure, never a skip.
    ///
    /// Tests holding one run one at a time in a process. tpm2-tss opens its sockets without
    /// close-on-exec, so a child (a second swtpm, `tpm2_pcrextend`) spawned by one test while
    /// another holds a TPM connection inherits that connection, and with it the other swtpm's
    /// only client slot: the other test's next connection then waits forever.
    ///
    /// # Panics
    /// When swtpm is missing under `CI=true`, or does not start.
    pub fn start_for_tests(state: &Path) -> Option<Self> {
        if !Self::installed() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "swtpm is not installed, and CI=true: .ci/run must install it"
            );
            eprintln!("skipped: swtpm is not installed (Debian package swtpm)");
            return None;
        }
        let serial = ONE_TEST_AT_A_TIME
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut swtpm = Self::start(state).unwrap_or_else(|e| panic!("{e}"));
        swtpm.serial = Some(serial);
        Some(swtpm)
    }

    /// The TCTI string that reaches this TPM.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }

    /// A connection to this TPM.
    ///
    /// # Errors
    /// [`TpmError::Connect`], or [`TpmError::NotBuilt`] without the `tpm` feature.
    pub fn connect(&self) -> Result<Tpm, TpmError> {
        Tpm::connect(&self.tcti())
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: swtpm writes its state out.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

static STARTING: Mutex<()> = Mutex::new(());
static ONE_TEST_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Two consecutive free loopback ports (server and control).
fn free_port_pair() -> std::io::Result<u16> {
    loop {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
}
