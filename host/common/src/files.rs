//! Crash-safe file writes: a reader after a crash sees the old file or the new one, never half.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

fn temp_for(path: &Path) -> PathBuf {
    path.with_extension(format!("tmp-{}", std::process::id()))
}

/// Writes `bytes` to a fresh temporary file beside `path` (mode 0600) and fsyncs it; on failure
/// the temporary file is removed, so no partial copy (of a key, say) is left behind.
fn write_temp(path: &Path, bytes: &[u8]) -> std::io::Result<PathBuf> {
    let tmp = temp_for(path);
    let _ = fs::remove_file(&tmp);
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        });
    match written {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => fs::File::open(dir)?.sync_all(),
        _ => fs::File::open(".")?.sync_all(),
    }
}

/// Creates `path` holding `bytes` (mode 0600), durably, and never replaces an existing file: a
/// hard link from an fsync'd temporary file, so two first starts cannot both win.
///
/// # Errors
/// The I/O error; `AlreadyExists` if `path` exists.
pub fn create_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = write_temp(path, bytes)?;
    let linked = fs::hard_link(&tmp, path).and_then(|()| sync_parent(path));
    let _ = fs::remove_file(&tmp);
    linked
}

/// Replaces `path` with `bytes` (mode 0600) atomically and durably: an fsync'd temporary file
/// renamed over it, then the directory fsync'd.
///
/// # Errors
/// The I/O error. `path` then holds its old contents, unless only the final directory fsync
/// failed: the new contents are then in place but may not survive a crash.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = write_temp(path, bytes)?;
    let renamed = fs::rename(&tmp, path).and_then(|()| sync_parent(path));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_new_never_replaces_and_replace_always_does() {
        let dir = std::env::temp_dir().join(format!("keyward-files-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let path = dir.join("key");
        create_new(&path, b"one").unwrap_or_else(|e| panic!("{e}"));
        let again = create_new(&path, b"two").err();
        assert_eq!(
            again.map(|e| e.kind()),
            Some(std::io::ErrorKind::AlreadyExists)
        );
        assert_eq!(fs::read(&path).ok().as_deref(), Some(&b"one"[..]));
        replace(&path, b"three").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(fs::read(&path).ok().as_deref(), Some(&b"three"[..]));
        let leftovers = fs::read_dir(&dir).map(Iterator::count).unwrap_or(0);
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        let _ = fs::remove_dir_all(&dir);
    }
}
