//! `harden` and `Confinement::apply` cannot be undone, so they run in a child process (this
//! test binary, run again): afterwards it uses its state directory but nothing else on disk, and
//! cannot open a socket or run a program; it is not dumpable, and (where the process may lock memory, and
//! always in CI) its memory is locked.
#![allow(missing_docs, clippy::unwrap_used)]

use std::fs;
use std::io::ErrorKind;
use std::path::PathBuf;
use std::process::Command;

use keyward_isolation::{Confinement, harden};

const CHILD: &str = "KEYWARD_CONFINE_CHILD";
const TEST: &str = "a_confined_process_reaches_its_directory_and_nothing_else";

#[test]
fn a_confined_process_reaches_its_directory_and_nothing_else() {
    if let Ok(dir) = std::env::var(CHILD) {
        return child(PathBuf::from(dir));
    }
    let dir = std::env::temp_dir().join(format!("keyward-confine-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
        .env(CHILD, &dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("confined: ok"),
        "{text}"
    );
    let _ = fs::remove_dir_all(&dir);
}

fn child(dir: PathBuf) {
    // Memory locking needs CAP_IPC_LOCK or an unlimited limit: required in CI only.
    let strict = std::env::var("CI").as_deref() == Ok("true");
    let done = harden(!strict).unwrap();
    assert!(done.undumpable);
    assert!(!nix::sys::prctl::get_dumpable().unwrap());
    assert!(done.memory_locked || !strict);
    let confinement = Confinement {
        dirs: vec![dir.clone()],
        sockets: false,
        allow_weaker: false,
    };
    let done = confinement.apply(done).unwrap();
    assert!(done.landlock && done.seccomp);

    // Its own directory: write, replace, read, remove.
    fs::write(dir.join("a.tmp"), b"state").unwrap();
    fs::rename(dir.join("a.tmp"), dir.join("a")).unwrap();
    assert_eq!(fs::read(dir.join("a")).unwrap(), b"state");
    fs::remove_file(dir.join("a")).unwrap();

    // Nothing else on disk.
    assert_eq!(
        fs::read("/etc/passwd").unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    let outside = dir.with_extension("outside");
    assert_eq!(
        fs::write(&outside, b"x").unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    // No new socket, no program.
    let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap_err();
    assert_eq!(socket.raw_os_error(), Some(libc::EPERM));
    assert!(Command::new("/bin/true").status().is_err());
    println!("confined: ok");
}
