//! # keyward-enclave: what an enclave adds to the core: sealing and attestation evidence
//!
//! Part of keyward's **trusted core**: deterministic, sans-IO, no `unsafe`. The host reads and
//! writes sealed blobs and carries evidence; only this crate makes and opens them.
//!
//! - [`seal`]: sealed blobs: XChaCha20-Poly1305 under a sealing key, bound to a purpose, the chain
//!   id and the core's measurement, tamper-evident, and refused when older than the host's
//!   monotonic counter. The sealing key comes from the host's platform source: the soft source
//!   (bytes in a 0600 file, which protects against nothing that can read that file) or a TPM
//!   that releases it only under a PCR policy (`keyward_tpm::source`).
//! - [`versions`]: one sealed manifest pinning the versions of many separately sealed blobs, so a
//!   store that rewrites only what changed still has every item pinned by the counter.
//! - [`evidence`]: attestation evidence binding an entity's public keys and a verifier's nonce.
//!   Kinds: `dev`, signed by a local platform key, **insecure by construction** and refused by
//!   every verifier unless its policy explicitly accepts insecure evidence; and `tpm-quote`, a
//!   TPM 2.0 quote ([`tpm_quote`]) by an attestation key the verifier's policy pins; and the TEE
//!   vendors' own evidence ([`vendor`]: Intel SGX and TDX DCAP quotes, AWS Nitro documents, AMD
//!   SEV-SNP reports), verified by `keyward_attest` under the policy's vendor part.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod evidence;
pub mod seal;
pub mod tpm_quote;
pub mod vendor;
pub mod versions;

pub use evidence::{
    AttestFailed, Attester, BoundKey, DevPlatformKey, Evidence, EvidenceError, EvidenceKind,
    EvidencePolicy, MAX_POLICY_ENTRIES, Verified,
};
pub use keyward_attest::{AttestationPolicy, Claims, Platform, PolicyError, TcbStatus};
pub use seal::{SealError, SealPurpose, SealedBlob, Sealer, SealingKey, Unsealed};
pub use tpm_quote::TpmAttestationKey;
pub use versions::{VersionSet, VersionTag};
