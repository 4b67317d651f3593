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
//! - [`dkg`]: the committee creates its shared key with FROST's Pedersen DKG; a dealer whose
//!   part does not match its public commitment is named, checkably by anyone.
//! - [`reshare`]: the key moves to a new member set or threshold, or is refreshed, without
//!   changing the key or its public key.
//! - [`sign`]: the committee signs with FROST under the same public key.
//!
//! Byte layouts are specified in `docs/PROTOCOL.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod dkg;
mod dleq;
mod group;
mod poly;
pub mod reshare;
pub mod sign;
pub mod threshold;
pub mod voprf;

pub use dkg::{Dealer, DkgCommitment, DkgParams, SharePart, SharingError};
pub use dleq::Proof;
pub use group::Element;
pub use reshare::{ReshareCommitment, Resharing};
pub use sign::{CommitteeSignature, NonceCommitment, SignError, SignatureShare, SigningNonces};
pub use threshold::{
    CheckedPartial, CombineError, Combined, Committee, CommitteeError, InvalidPartial, KeyShare,
    PartialEvaluation, PartialFault, ShareIndex,
};
pub use voprf::{BlindedRequest, Output, PublicKey, SecretKey, VoprfError};

#[cfg(test)]
mod rfc9497_vectors;
