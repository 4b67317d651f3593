//! # keyward-threshold: verifiable, threshold key derivation
//!
//! Part of keyward's **trusted core**: deterministic, sans-IO, no `unsafe`. Randomness comes from
//! the caller.
//!
//! - [`voprf`]: RFC 9497 VOPRF, suite ristretto255-SHA512: hash-to-group (RFC 9380), blinded
//!   evaluation with a DLEQ proof, verification and finalization. Checked against the RFC's test
//!   vectors and, as an independent implementation, the `voprf` crate.
//! - [`threshold`]: the same evaluation when the secret key exists only as Shamir shares. Each
//!   share holder returns a partial evaluation with a DLEQ proof against its public verification
//!   share; any `t` valid partials combine, by Lagrange interpolation in the exponent, into
//!   exactly the evaluation the whole key would give; an invalid partial is identified by index.
//!   Threshold `t = 1`, where every holder has the whole key, is keyward's classic mode.
//!
//! Byte layouts are specified in `docs/PROTOCOL.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod dleq;
mod group;
pub mod threshold;
pub mod voprf;

pub use dleq::Proof;
pub use group::Element;
pub use threshold::{
    CombineError, Combined, Committee, CommitteeError, InvalidPartial, KeyShare, PartialEvaluation,
    PartialFault, ShareIndex,
};
pub use voprf::{BlindedRequest, Output, PublicKey, SecretKey, VoprfError};

#[cfg(test)]
mod rfc9497_vectors;
