//! # keyward-isolation: what the isolated enclave runner's two processes share
//!
//! Host code, used on both sides of the Unix socket between a service and its `keyward enclave`
//! process:
//!
//! - [`frame`]: length-prefixed frames, refused over their limit before they are read;
//! - [`socket`]: the enclave's listening socket;
//! - [`harden`]: the enclave process's own hardening (no core dumps or ptrace, locked memory,
//!   Landlock and seccomp).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod frame;
pub mod harden;
pub mod socket;

pub use frame::{Frame, MAX_FRAME, read_frame, write_frame};
pub use harden::{Confinement, HardenError, Hardening, harden};
