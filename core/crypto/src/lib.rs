//! # keyward-crypto: the trusted core's keys, envelopes and codec
//!
//! This crate is part of keyward's **trusted core**. It is deterministic and sans-IO: it opens
//! no files or sockets, reads no clock, spawns no threads and never gathers randomness itself.
//! Every function that needs randomness takes a caller-supplied [`rand_core::CryptoRngCore`];
//! the host hands in the operating system's generator, tests hand in a seeded one.
//!
//! What it provides:
//!
//! - [`identity`]: sr25519 identity keys, with a signing context per purpose
//!   (`keyward/v1/<purpose>`), so that a signature made for one purpose never verifies for another.
//! - [`solana`]: ed25519 keys in Solana's keypair-file format (a JSON array of 64 bytes), shown in
//!   base58.
//! - [`channel`]: X25519 channel keys (the HPKE recipient keys every entity holds beside its
//!   identity key) and the identity's certificate over them.
//! - [`dhkem`]: RFC 9180's DHKEM(X25519, HKDF-SHA256), the KEM the `hpke` crate runs envelopes
//!   with.
//! - [`envelope`]: HPKE (RFC 9180) base-mode envelopes, DHKEM(X25519, HKDF-SHA256) /
//!   HKDF-SHA256 / ChaCha20-Poly1305, signed by the sender's identity.
//! - [`codec`]: the length-prefixed byte codec every keyward wire format uses; its decoder never
//!   panics and never allocates more than the input can back.
//! - [`secret`]: fixed-size secret bytes that zeroize on drop, never print, and compare in
//!   constant time.
//! - [`synthetic`]: synthetic (SIV-style) nonces, so deterministic encryption needs no counter.
//!
//! Byte layouts and labels are specified in `docs/PROTOCOL.md`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod channel;
pub mod codec;
pub mod dhkem;
pub mod envelope;
pub mod hex;
pub mod identity;
pub mod ids;
pub mod secret;
pub mod solana;
pub mod synthetic;

pub use channel::{ChannelKeyCertificate, ChannelKeypair, ChannelPublicKey};
pub use codec::{DecodeError, Reader, Writer};
pub use envelope::{Envelope, EnvelopeError, EnvelopePurpose, Opened};
pub use identity::{
    IdentityKeypair, IdentityPublicKey, IdentitySignature, SignatureError, SignedMessage,
    SigningPurpose, verify_batch,
};
pub use ids::{ChainId, IdError};
pub use secret::SecretBytes;
pub use solana::{
    KeypairFileError, SolanaKeypair, SolanaPubkey, SolanaSignature, SolanaVerifier, VerifierCache,
};
pub use synthetic::synthetic_nonce;

/// The random source every randomized function in the core takes from its caller.
pub use rand_core::CryptoRngCore as Rng;
