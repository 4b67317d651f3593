//! The enclave process's hardening, in two steps (research/crates-and-tee.md §6):
//!
//! 1. [`harden`], first thing at start-up: no core dumps and no ptrace attach by same-user
//!    processes (`PR_SET_DUMPABLE = 0`, `RLIMIT_CORE = 0`), and every page locked in memory
//!    (`mlockall`), so keys never reach swap.
//! 2. [`Confinement::apply`], once the socket is bound and the sealing source is open: Landlock limits the
//!    file system to the enclave's own state directory, and a seccomp filter refuses (`EPERM`)
//!    the system calls an enclave never needs: running programs, tracing or reading other
//!    processes, opening network sockets, mounting, loading kernel code.
//!
//! A step the kernel or the limits refuse is an error, unless the caller accepts weaker
//! isolation (then it is reported, for the log).

use std::collections::BTreeMap;
use std::path::PathBuf;

use landlock::{
    ABI, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus,
    path_beneath_rules,
};
use nix::sys::mman::{MlockAllFlags, mlockall};
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch};
use thiserror::Error;

/// Why the process could not be hardened as asked.
#[derive(Debug, Error)]
pub enum HardenError {
    /// A system call failed.
    #[error("cannot {action}: {source}")]
    Os {
        /// What was attempted.
        action: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// Memory cannot be locked under the current limit.
    #[error(
        "cannot lock the enclave's memory: RLIMIT_MEMLOCK is {0} bytes; give the process CAP_IPC_LOCK or an unlimited memlock limit (systemd: LimitMEMLOCK=infinity)"
    )]
    MemlockLimit(u64),
    /// Landlock is not enforced by this kernel.
    #[error("the kernel does not enforce Landlock (status {0})")]
    Landlock(String),
    /// The seccomp filter could not be built or installed.
    #[error("seccomp: {0}")]
    Seccomp(String),
}

/// What [`harden`] and [`Confinement::apply`] achieved, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hardening {
    /// Core dumps and same-user ptrace are off.
    pub undumpable: bool,
    /// Every page, current and future, is locked in memory.
    pub memory_locked: bool,
    /// Landlock confines the file system to the state directories.
    pub landlock: bool,
    /// The seccomp filter is installed.
    pub seccomp: bool,
}

/// Step 1: no core dumps, no ptrace attach, memory locked. With `allow_weaker`, memory that
/// cannot be locked is reported instead of refused.
///
/// # Errors
/// [`HardenError`].
pub fn harden(allow_weaker: bool) -> Result<Hardening, HardenError> {
    let os = |action| move |source| HardenError::Os { action, source };
    nix::sys::prctl::set_dumpable(false).map_err(os("turn off PR_SET_DUMPABLE"))?;
    setrlimit(Resource::RLIMIT_CORE, 0, 0).map_err(os("set RLIMIT_CORE to 0"))?;
    let mut done = Hardening {
        undumpable: true,
        ..Hardening::default()
    };
    // Future pages are locked too, so the limit must not apply (CAP_IPC_LOCK) or be unlimited:
    // otherwise a later allocation would fail and abort the process.
    let unlimited = libc::RLIM_INFINITY;
    let _ = setrlimit(Resource::RLIMIT_MEMLOCK, unlimited, unlimited);
    let (soft, _) = getrlimit(Resource::RLIMIT_MEMLOCK).map_err(os("read RLIMIT_MEMLOCK"))?;
    let locked = if soft == unlimited || has_ipc_lock() {
        mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE)
            .map_err(os("lock the process's memory"))
    } else {
        Err(HardenError::MemlockLimit(soft))
    };
    match locked {
        Ok(()) => done.memory_locked = true,
        Err(e) if allow_weaker => tracing::warn!(error = %e, "memory is not locked"),
        Err(e) => return Err(e),
    }
    Ok(done)
}

/// Whether the process holds CAP_IPC_LOCK (bit 14 of `CapEff` in `/proc/self/status`), which
/// exempts it from RLIMIT_MEMLOCK.
fn has_ipc_lock() -> bool {
    const CAP_IPC_LOCK: u32 = 14;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
            u64::from_str_radix(hex.trim(), 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_IPC_LOCK) != 0)
}

/// Step 2: what to confine the process to.
#[derive(Debug, Clone, Default)]
pub struct Confinement {
    /// The directories it may use (everything beneath them); nothing else on disk.
    pub dirs: Vec<PathBuf>,
    /// Whether it may still open network connections: only for a TPM reached over TCP (swtpm,
    /// the simulator), whose TCTI connects again for control commands.
    pub sockets: bool,
    /// Report, instead of refusing, a kernel that does not enforce Landlock.
    pub allow_weaker: bool,
}

impl Confinement {
    /// Confines the file system to [`Confinement::dirs`] and installs the seccomp filter, for
    /// every thread. `done` is what [`harden`] achieved; the result adds to it.
    /// An allowance of sockets ([`Confinement::sockets`]) is logged as a warning.
    ///
    /// # Errors
    /// [`HardenError`].
    pub fn apply(&self, mut done: Hardening) -> Result<Hardening, HardenError> {
        if self.sockets {
            tracing::warn!(
                "the TPM is reached over TCP (a simulator): the enclave may still open connections"
            );
        }
        let abi = ABI::V5;
        let landlock = || -> Result<RulesetStatus, String> {
            let status = Ruleset::default()
                .handle_access(AccessFs::from_all(abi))
                .map_err(|e| e.to_string())?
                .create()
                .map_err(|e| e.to_string())?
                .add_rules(path_beneath_rules(&self.dirs, AccessFs::from_all(abi)))
                .map_err(|e| e.to_string())?
                .restrict_self()
                .map_err(|e| e.to_string())?;
            Ok(status.ruleset)
        };
        match landlock() {
            Ok(RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced) => {
                done.landlock = true;
            }
            Ok(status) if self.allow_weaker => {
                tracing::warn!(?status, "Landlock is not enforced");
            }
            Ok(status) => return Err(HardenError::Landlock(format!("{status:?}"))),
            Err(e) if self.allow_weaker => tracing::warn!(error = %e, "Landlock is not enforced"),
            Err(e) => return Err(HardenError::Landlock(e)),
        }
        install_seccomp(self.sockets).map_err(HardenError::Seccomp)?;
        done.seccomp = true;
        Ok(done)
    }
}

/// The system calls refused with `EPERM`. Everything else is allowed: the enclave's own work
/// (reading and writing its socket and state files, allocating, fsync, randomness) needs no
/// list, and an allow-list would break on the next libc or kernel that picks another call.
fn refused(sockets: bool) -> Vec<libc::c_long> {
    let mut calls = vec![
        // Running another program.
        libc::SYS_execve,
        libc::SYS_execveat,
        // Reading or controlling other processes.
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_getfd,
        // Listening: the enclave serves only the socket it has.
        libc::SYS_bind,
        libc::SYS_listen,
        // io_uring runs operations outside this filter.
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        // The mount table, namespaces and the kernel itself.
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_kexec_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_personality,
    ];
    // New connections, unless a TPM over TCP needs them.
    if !sockets {
        calls.extend([libc::SYS_socket, libc::SYS_socketpair, libc::SYS_connect]);
    }
    #[cfg(target_arch = "x86_64")]
    {
        calls.extend([libc::SYS_fork, libc::SYS_vfork]);
        // The x32 ABI passes the same architecture check with the x32 bit set in the number:
        // every call above by its x32 number too, and all of x32's own entries (512..=547, its
        // execve, ptrace and process_vm_* among them), which the enclave never makes.
        const X32: libc::c_long = 0x4000_0000;
        let x32: Vec<libc::c_long> = calls
            .iter()
            .map(|call| call | X32)
            .chain((512..=547).map(|call| call | X32))
            .collect();
        calls.extend(x32);
    }
    calls
}

fn install_seccomp(sockets: bool) -> Result<(), String> {
    let rules: BTreeMap<i64, Vec<SeccompRule>> = refused(sockets)
        .into_iter()
        .map(|call| (call, Vec::new()))
        .collect();
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    seccompiler::apply_filter_all_threads(&program).map_err(|e| e.to_string())
}
