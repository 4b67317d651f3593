//! The enclave's listening socket.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Binds the enclave's socket at `path`, mode 0660 (its group may connect: the host's user,
/// when the host runs as another user). A socket file left by an earlier enclave is replaced;
/// any other file is not.
///
/// # Errors
/// The step that failed, and its OS error.
pub fn bind(path: &Path) -> Result<UnixListener, (&'static str, io::Error)> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|e| ("replace", e))?;
        }
        _ => {}
    }
    let listener = UnixListener::bind(path).map_err(|e| ("bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| ("restrict", e))?;
    Ok(listener)
}

/// The next host connection; a connection that went away before it was accepted is skipped.
///
/// # Errors
/// The listener's error.
pub fn accept(listener: &UnixListener) -> io::Result<UnixStream> {
    loop {
        match listener.accept() {
            Ok((stream, _)) => return Ok(stream),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}
