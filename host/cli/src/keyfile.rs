//! Key files on disk.
//!
//! - ed25519 keys: Solana's keypair file, a JSON array of 64 numbers.
//! - sr25519 identity keys and MasterKeys: a JSON object
//!   `{"kind": "sr25519" | "master", "secret": "0x…", "public": "0x…"}`; on reading, the public
//!   key is recomputed and must match.
//!
//! Files are written atomically (temporary file, fsync, rename, fsync of the directory) with mode
//! 0600, and never replace an existing file unless asked to.

use std::{
    fs,
    io::{Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::Path,
};

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{CliError, Result};
use keyward_crypto::{IdentityKeypair, SecretBytes, SolanaKeypair, hex::from_hex};
use keyward_hierarchy::MasterKey;

/// Largest key file read.
const MAX_KEY_FILE: u64 = 64 * 1024;

/// A key read from a file.
pub enum KeyFile {
    /// An sr25519 identity key.
    Sr25519(IdentityKeypair),
    /// A Solana ed25519 keypair.
    Ed25519(SolanaKeypair),
    /// A MasterKey.
    Master(MasterKey),
}

#[derive(Serialize, Deserialize)]
struct JsonKey {
    kind: String,
    secret: String,
    public: String,
}

impl Drop for JsonKey {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// Reads at most `limit` bytes of `path`.
pub fn read_limited(path: &Path, limit: u64) -> Result<Zeroizing<Vec<u8>>> {
    let io = |source| CliError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let file = fs::File::open(path).map_err(io)?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(limit + 1).read_to_end(&mut buf).map_err(io)?;
    if buf.len() as u64 > limit {
        return Err(CliError::bad_file(
            path,
            format!("file is larger than {limit} bytes"),
        ));
    }
    Ok(buf)
}

impl KeyFile {
    /// Reads and checks a key file of any supported kind.
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = read_limited(path, MAX_KEY_FILE)?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| CliError::bad_file(path, "key file is not UTF-8 text"))?;
        let bad = |reason: &dyn std::fmt::Display| CliError::bad_file(path, reason);
        if text.trim_start().starts_with('[') {
            return SolanaKeypair::from_keypair_file(text)
                .map(Self::Ed25519)
                .map_err(|e| bad(&e));
        }
        let json: JsonKey = serde_json::from_str(text).map_err(|_| bad(&"not a keyward key file (expected a Solana keypair array or {\"kind\", \"secret\", \"public\"})"))?;
        let secret = SecretBytes::new(from_hex::<32>("secret", &json.secret).map_err(|e| bad(&e))?);
        let (key, public) = match json.kind.as_str() {
            "sr25519" => {
                let k = IdentityKeypair::from_seed(secret);
                let p = k.public().to_string();
                (Self::Sr25519(k), p)
            }
            "master" => {
                let k = MasterKey::from_bytes(&secret).map_err(|e| bad(&e))?;
                let p = k.public_key().to_string();
                (Self::Master(k), p)
            }
            other => {
                return Err(bad(&format!(
                    "unknown key kind {other:?} (expected \"sr25519\" or \"master\")"
                )));
            }
        };
        if public != json.public.trim().to_ascii_lowercase() {
            return Err(bad(&"public key does not match the secret key"));
        }
        Ok(key)
    }

    /// The file's kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sr25519(_) => "sr25519",
            Self::Ed25519(_) => "ed25519",
            Self::Master(_) => "master",
        }
    }

    /// The public key as text (0x-hex; base58 for ed25519).
    pub fn public(&self) -> String {
        match self {
            Self::Sr25519(k) => k.public().to_string(),
            Self::Ed25519(k) => k.pubkey().to_string(),
            Self::Master(k) => k.public_key().to_string(),
        }
    }

    /// The file's text.
    fn render(&self) -> Zeroizing<String> {
        let json = |kind: &str, secret: &[u8; 32]| {
            let key = JsonKey {
                kind: kind.into(),
                secret: keyward_crypto::hex::to_0x(secret),
                public: self.public(),
            };
            Zeroizing::new(
                serde_json::to_string_pretty(&key).expect("plain strings serialize") + "\n",
            )
        };
        match self {
            Self::Sr25519(k) => json("sr25519", k.seed().expose()),
            Self::Master(k) => json("master", k.to_bytes().expose()),
            Self::Ed25519(k) => {
                let mut text = k.to_keypair_file();
                text.push('\n');
                text
            }
        }
    }

    /// Writes the key to `path` (mode 0600), refusing to replace a file unless `force`.
    pub fn write(&self, path: &Path, force: bool) -> Result<()> {
        write_file(path, self.render().as_bytes(), force, 0o600)
    }

    /// The MasterKey, or a clear error naming the file.
    pub fn into_master(self, path: &Path) -> Result<MasterKey> {
        match self {
            Self::Master(k) => Ok(k),
            other => Err(CliError::bad_file(
                path,
                format!("expected a master key file, found an {} key", other.kind()),
            )),
        }
    }

    /// The sr25519 identity, or a clear error naming the file.
    pub fn into_identity(self, path: &Path) -> Result<IdentityKeypair> {
        match self {
            Self::Sr25519(k) => Ok(k),
            other => Err(CliError::bad_file(
                path,
                format!(
                    "expected an sr25519 identity key file, found a {} key",
                    other.kind()
                ),
            )),
        }
    }
}

/// Writes `bytes` to `path` atomically with `mode`: a temporary file beside it, fsync, rename,
/// fsync of the directory. Refuses to replace an existing file unless `force`.
pub fn write_file(path: &Path, bytes: &[u8], force: bool, mode: u32) -> Result<()> {
    if !force && path.exists() {
        return Err(CliError::Exists(path.to_owned()));
    }
    let io = |source| CliError::Io {
        action: "write",
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => Path::new(".").to_owned(),
    };
    let name = path
        .file_name()
        .ok_or_else(|| CliError::bad_file(path, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if force {
            fs::rename(&tmp, path)?;
        } else {
            // A hard link never replaces an existing file, so two writers cannot race past the
            // check above.
            fs::hard_link(&tmp, path)?;
            fs::remove_file(&tmp)?;
        }
        fs::File::open(&dir)?.sync_all()
    })();
    let _ = fs::remove_file(&tmp);
    result.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            CliError::Exists(path.to_owned())
        } else {
            io(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn read_text(text: &[u8]) -> Result<KeyFile> {
        let path = std::env::temp_dir().join(format!(
            "keyward-keyfile-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        fs::write(&path, text).unwrap();
        let result = KeyFile::read(&path);
        let _ = fs::remove_file(&path);
        result
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn arbitrary_files_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = read_text(&bytes);
        }

        #[test]
        fn json_shaped_files_never_panic(kind in "(sr25519|master|ed25519|x)", secret in "(0x)?[0-9a-f]{0,70}", public in "(0x)?[0-9a-f]{0,70}") {
            let text = format!("{{\"kind\":\"{kind}\",\"secret\":\"{secret}\",\"public\":\"{public}\"}}");
            let _ = read_text(text.as_bytes());
        }

        #[test]
        fn written_keys_read_back(seed in any::<[u8; 32]>()) {
            let key = KeyFile::Sr25519(IdentityKeypair::from_seed(SecretBytes::new(seed)));
            let back = read_text(key.render().as_bytes()).unwrap();
            prop_assert_eq!(back.public(), key.public());
        }
    }
}
