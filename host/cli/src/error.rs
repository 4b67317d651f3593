//! The CLI's errors: each prints as one line that says what failed and on which file.

use std::{io, path::PathBuf};

use thiserror::Error;

/// A failed command.
#[derive(Debug, Error)]
pub enum CliError {
    /// A file could not be read or written.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// "read", "write", …
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file exists where a new one would be written.
    #[error("{0} already exists; pass --force to replace it")]
    Exists(PathBuf),
    /// A file's content was refused.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The core refused an operation.
    #[error("{0}")]
    Refused(String),
    /// A demo check failed.
    #[error("{failed} of {total} demo checks failed")]
    DemoFailed {
        /// Checks that failed.
        failed: usize,
        /// Checks run.
        total: usize,
    },
}

impl CliError {
    /// A file's content was refused for `reason`.
    pub fn bad_file(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        Self::BadFile {
            path: path.to_owned(),
            reason: reason.to_string(),
        }
    }

    /// The core refused, for `reason`.
    pub fn refused(reason: impl std::fmt::Display) -> Self {
        Self::Refused(reason.to_string())
    }
}

/// The CLI's result type.
pub type Result<T, E = CliError> = std::result::Result<T, E>;
