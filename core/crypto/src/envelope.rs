//! Encrypted, signed envelopes: every message between keyward entities travels in one.
//!
//! An envelope is HPKE (RFC 9180) base mode with the suite DHKEM(X25519, HKDF-SHA256) /
//! HKDF-SHA256 / ChaCha20-Poly1305, single-shot, to the recipient's channel key:
//!
//! - a fresh ephemeral sender key per envelope (HPKE base mode's `enc`), so nothing the sender
//!   held before or after can open it;
//! - `info = "keyward/v1/envelope/" || purpose`, so an envelope made for one purpose never opens
//!   as another;
//! - `aad` = the caller's context (epoch, cluster, recipient, …), authenticated but not secret;
//!   HPKE's AEAD authenticates `var32(aad) || sender identity key`, so the ciphertext is bound to
//!   its sender: HPKE base mode alone does not authenticate the sender, and without this anyone
//!   could re-sign someone else's envelope and pass its plaintext off as their own;
//! - the sender's identity signature (purpose [`SigningPurpose::Envelope`]) over
//!   `var8(purpose) || recipient || enc || var32(aad) || var32(ciphertext)`, so the recipient
//!   knows who sent it.
//!
//! Opening checks, in order: the format, the purpose, the recipient key, the signature, then the
//! AEAD. Any failure is a typed [`EnvelopeError`] and yields no plaintext.

use core::fmt;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::{
    channel::{ChannelKeypair, ChannelPublicKey},
    codec::{DecodeError, Reader, Writer},
    identity::{IdentityKeypair, IdentityPublicKey, IdentitySignature, SigningPurpose},
};

/// The raw RFC 9180 base mode of keyward's suite, on which envelopes are built. Public so the
/// RFC's test vectors can be checked against exactly the configuration envelopes use.
pub mod hpke_base {
    use hpke::{OpModeR, OpModeS};
    use zeroize::Zeroizing;

    use crate::channel::{ChannelKeypair, ChannelPublicKey, Kem};

    /// The KDF: HKDF-SHA256, RFC 9180 KDF id 0x0001.
    pub type Kdf = hpke::kdf::HkdfSha256;
    /// The AEAD: ChaCha20-Poly1305, RFC 9180 AEAD id 0x0003.
    pub type Aead = hpke::aead::ChaCha20Poly1305;

    /// HPKE failed (a degenerate recipient key, or a ciphertext that does not open).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct HpkeFailure;

    /// Single-shot base-mode seal: returns `(enc, ciphertext || tag)`. The ephemeral key is
    /// `DeriveKeyPair` of 32 bytes drawn from `rng`.
    pub fn seal(
        recipient: &ChannelPublicKey,
        info: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut impl crate::Rng,
    ) -> Result<([u8; 32], Vec<u8>), HpkeFailure> {
        let (enc, ct) = hpke::single_shot_seal::<Aead, Kdf, Kem, _>(
            &OpModeS::Base,
            recipient,
            info,
            plaintext,
            aad,
            rng,
        )
        .map_err(|_| HpkeFailure)?;
        Ok((enc.0, ct))
    }

    /// Single-shot base-mode open of `ciphertext || tag`.
    pub fn open(
        recipient: &ChannelKeypair,
        enc: &[u8; 32],
        info: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, HpkeFailure> {
        hpke::single_shot_open::<Aead, Kdf, Kem>(
            &OpModeR::Base,
            recipient.hpke_secret(),
            &ChannelPublicKey(*enc),
            info,
            ciphertext,
            aad,
        )
        .map(Zeroizing::new)
        .map_err(|_| HpkeFailure)
    }
}

/// Largest additional data an envelope carries.
pub const MAX_AAD_LEN: usize = 64 * 1024;
/// Largest plaintext an envelope carries (16 MiB).
pub const MAX_PLAINTEXT_LEN: usize = 16 * 1024 * 1024;
/// ChaCha20-Poly1305 tag length.
const TAG_LEN: usize = 16;

/// What an envelope is for; part of the HPKE `info` and of the signed transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EnvelopePurpose {
    /// A gatekeeper handing an epoch secret (or share) to another gatekeeper.
    EpochSecret,
    /// A gatekeeper provisioning a worker with its ClusterKey or a partial evaluation.
    ClusterKey,
    /// A user's input to a contract.
    ContractInput,
    /// A contract's reply to a user.
    ContractReply,
    /// A DKG or resharing dealer's secret part for one committee member.
    SharePart,
}

impl EnvelopePurpose {
    const ALL: [Self; 5] = [
        Self::EpochSecret,
        Self::ClusterKey,
        Self::ContractInput,
        Self::ContractReply,
        Self::SharePart,
    ];

    /// The purpose's label, as it appears in `info` and on the wire.
    pub const fn label(self) -> &'static str {
        match self {
            Self::EpochSecret => "epoch-secret",
            Self::ClusterKey => "cluster-key",
            Self::ContractInput => "contract-input",
            Self::ContractReply => "contract-reply",
            Self::SharePart => "share-part",
        }
    }

    fn from_label(label: &[u8]) -> Result<Self, DecodeError> {
        Self::ALL
            .into_iter()
            .find(|p| p.label().as_bytes() == label)
            .ok_or(DecodeError::Invalid {
                field: "envelope purpose",
                reason: "unknown purpose",
            })
    }

    fn info(self) -> Vec<u8> {
        [b"keyward/v1/envelope/".as_slice(), self.label().as_bytes()].concat()
    }
}

impl fmt::Display for EnvelopePurpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Why an envelope could not be made or opened.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The bytes are not a well-formed envelope.
    #[error("malformed envelope: {0}")]
    Malformed(#[from] DecodeError),
    /// The plaintext or additional data is larger than an envelope carries.
    #[error("{what} is too large: {len} bytes, at most {max}")]
    TooLarge {
        /// Which input.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The envelope is for another purpose.
    #[error("envelope is for purpose {found}, expected {expected}")]
    WrongPurpose {
        /// The purpose the caller expected.
        expected: EnvelopePurpose,
        /// The envelope's purpose.
        found: EnvelopePurpose,
    },
    /// The envelope is addressed to another channel key.
    #[error("envelope is addressed to another channel key ({0})")]
    WrongRecipient(ChannelPublicKey),
    /// The sender's signature does not verify.
    #[error("envelope's sender signature does not verify")]
    BadSignature,
    /// HPKE refused: the ciphertext, additional data or sender was altered.
    #[error("envelope does not decrypt: ciphertext, additional data or sender altered")]
    Decryption,
    /// The recipient key is a low-order X25519 point: no shared secret can be agreed with it.
    #[error("recipient channel key is degenerate (a low-order X25519 point)")]
    DegenerateRecipient,
}

/// An encrypted, signed message. Construct with [`Envelope::seal`], read with
/// [`ChannelKeypair::open`], transport with [`Envelope::to_bytes`] / [`Envelope::from_bytes`].
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope {
    purpose: EnvelopePurpose,
    sender: IdentityPublicKey,
    recipient: ChannelPublicKey,
    enc: [u8; 32],
    aad: Vec<u8>,
    ciphertext: Vec<u8>,
    signature: IdentitySignature,
}

const MAGIC: &[u8; 4] = b"KWEV";
const VERSION: u8 = 1;
const FORMAT: &str = "keyward envelope";

impl Envelope {
    /// Encrypts `plaintext` to `recipient` for `purpose`, binding `aad`, signed by `sender`.
    ///
    /// # Errors
    /// [`EnvelopeError::TooLarge`] past the size limits; [`EnvelopeError::DegenerateRecipient`]
    /// for a low-order recipient key.
    pub fn seal(
        sender: &IdentityKeypair,
        recipient: &ChannelPublicKey,
        purpose: EnvelopePurpose,
        aad: &[u8],
        plaintext: &[u8],
        rng: &mut impl crate::Rng,
    ) -> Result<Self, EnvelopeError> {
        if aad.len() > MAX_AAD_LEN {
            return Err(EnvelopeError::TooLarge {
                what: "additional data",
                len: aad.len(),
                max: MAX_AAD_LEN,
            });
        }
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(EnvelopeError::TooLarge {
                what: "plaintext",
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let (enc, ciphertext) = hpke_base::seal(
            recipient,
            &purpose.info(),
            &hpke_aad(aad, &sender.public()),
            plaintext,
            rng,
        )
        .map_err(|_| EnvelopeError::DegenerateRecipient)?;
        let transcript = signed_transcript(purpose, recipient, &enc, aad, &ciphertext);
        let signature = sender.sign(SigningPurpose::Envelope, &transcript, rng);
        Ok(Self {
            purpose,
            sender: sender.public(),
            recipient: *recipient,
            enc,
            aad: aad.to_vec(),
            ciphertext,
            signature,
        })
    }

    /// The purpose.
    pub fn purpose(&self) -> EnvelopePurpose {
        self.purpose
    }

    /// The claimed sender; trustworthy only after [`ChannelKeypair::open`] or [`Envelope::verify_sender`].
    pub fn sender(&self) -> IdentityPublicKey {
        self.sender
    }

    /// The recipient channel key.
    pub fn recipient(&self) -> ChannelPublicKey {
        self.recipient
    }

    /// The authenticated additional data (not secret).
    pub fn aad(&self) -> &[u8] {
        &self.aad
    }

    /// Checks the sender's signature without decrypting (anyone can do this).
    pub fn verify_sender(&self) -> Result<(), EnvelopeError> {
        let transcript = signed_transcript(
            self.purpose,
            &self.recipient,
            &self.enc,
            &self.aad,
            &self.ciphertext,
        );
        self.sender
            .verify(SigningPurpose::Envelope, &transcript, &self.signature)
            .map_err(|_| EnvelopeError::BadSignature)
    }

    /// The wire encoding: `"KWEV" || 0x01 || var8(purpose) || sender(32) || recipient(32) ||
    /// enc(32) || var32(aad) || var32(ciphertext) || signature(64)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.var8(self.purpose.label().as_bytes())
            .raw(&self.sender.to_bytes())
            .raw(&self.recipient.0)
            .raw(&self.enc)
            .var32(&self.aad)
            .var32(&self.ciphertext)
            .raw(&self.signature.to_bytes());
        w.finish()
    }

    /// Decodes the wire encoding. Checks framing and sizes only; [`ChannelKeypair::open`]
    /// checks signature and ciphertext.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let mut r = Reader::new(bytes);
        r.header(FORMAT, MAGIC, VERSION)?;
        let purpose = EnvelopePurpose::from_label(r.var8("envelope purpose", 32)?)?;
        let sender = IdentityPublicKey::from_bytes(&r.array("envelope sender")?)?;
        let recipient = ChannelPublicKey(r.array("envelope recipient")?);
        let enc = r.array("envelope enc")?;
        let aad = r.var32("envelope aad", MAX_AAD_LEN)?.to_vec();
        let ciphertext = r.var32("envelope ciphertext", MAX_PLAINTEXT_LEN + TAG_LEN)?;
        if ciphertext.len() < TAG_LEN {
            return Err(DecodeError::Invalid {
                field: "envelope ciphertext",
                reason: "shorter than the AEAD tag",
            }
            .into());
        }
        let ciphertext = ciphertext.to_vec();
        let signature = IdentitySignature::from_bytes(&r.array("envelope signature")?)?;
        r.finish()?;
        Ok(Self {
            purpose,
            sender,
            recipient,
            enc,
            aad,
            ciphertext,
            signature,
        })
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("purpose", &self.purpose)
            .field("sender", &self.sender)
            .field("recipient", &self.recipient)
            .field("aad_len", &self.aad.len())
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

fn signed_transcript(
    purpose: EnvelopePurpose,
    recipient: &ChannelPublicKey,
    enc: &[u8; 32],
    aad: &[u8],
    ct: &[u8],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.var8(purpose.label().as_bytes())
        .raw(&recipient.0)
        .raw(enc)
        .var32(aad)
        .var32(ct);
    w.finish()
}

/// The AEAD's additional data: the caller's `aad` and the sender, so the ciphertext is bound to
/// the identity that signs it.
fn hpke_aad(aad: &[u8], sender: &IdentityPublicKey) -> Vec<u8> {
    let mut w = Writer::new();
    w.var32(aad).raw(&sender.to_bytes());
    w.finish()
}

/// A successfully opened envelope.
pub struct Opened {
    /// The sender, whose signature verified. The caller decides whether this sender is allowed.
    pub sender: IdentityPublicKey,
    /// The authenticated additional data.
    pub aad: Vec<u8>,
    /// The plaintext, zeroized on drop.
    pub plaintext: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opened")
            .field("sender", &self.sender)
            .field("plaintext_len", &self.plaintext.len())
            .finish_non_exhaustive()
    }
}

impl ChannelKeypair {
    /// Opens an envelope addressed to this key for `purpose`.
    ///
    /// # Errors
    /// [`EnvelopeError::WrongPurpose`], [`EnvelopeError::WrongRecipient`],
    /// [`EnvelopeError::BadSignature`] or [`EnvelopeError::Decryption`]; no plaintext is released
    /// unless every check passes.
    pub fn open(
        &self,
        envelope: &Envelope,
        purpose: EnvelopePurpose,
    ) -> Result<Opened, EnvelopeError> {
        if envelope.purpose != purpose {
            return Err(EnvelopeError::WrongPurpose {
                expected: purpose,
                found: envelope.purpose,
            });
        }
        if envelope.recipient != self.public() {
            return Err(EnvelopeError::WrongRecipient(envelope.recipient));
        }
        envelope.verify_sender()?;
        let plaintext = hpke_base::open(
            self,
            &envelope.enc,
            &purpose.info(),
            &hpke_aad(&envelope.aad, &envelope.sender),
            &envelope.ciphertext,
        )
        .map_err(|_| EnvelopeError::Decryption)?;
        Ok(Opened {
            sender: envelope.sender,
            aad: envelope.aad.clone(),
            plaintext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn parties(seed: u64) -> (StdRng, IdentityKeypair, ChannelKeypair) {
        let mut rng = StdRng::seed_from_u64(seed);
        let sender = IdentityKeypair::generate(&mut rng);
        let recipient = ChannelKeypair::generate(&mut rng);
        (rng, sender, recipient)
    }

    #[test]
    fn round_trip_and_fresh_ephemeral_per_message() {
        let (mut rng, sender, recipient) = parties(1);
        let a = Envelope::seal(
            &sender,
            &recipient.public(),
            EnvelopePurpose::ContractInput,
            b"ctx",
            b"hi",
            &mut rng,
        )
        .unwrap();
        let b = Envelope::seal(
            &sender,
            &recipient.public(),
            EnvelopePurpose::ContractInput,
            b"ctx",
            b"hi",
            &mut rng,
        )
        .unwrap();
        assert_ne!(a.enc, b.enc, "each envelope has its own ephemeral key");
        let wire = Envelope::from_bytes(&a.to_bytes()).unwrap();
        let opened = recipient
            .open(&wire, EnvelopePurpose::ContractInput)
            .unwrap();
        assert_eq!(&opened.plaintext[..], b"hi");
        assert_eq!(opened.sender, sender.public());
        assert_eq!(opened.aad, b"ctx");
    }

    #[test]
    fn refusals_are_specific() {
        let (mut rng, sender, recipient) = parties(2);
        let env = Envelope::seal(
            &sender,
            &recipient.public(),
            EnvelopePurpose::ClusterKey,
            b"ctx",
            b"k",
            &mut rng,
        )
        .unwrap();
        assert_eq!(
            recipient
                .open(&env, EnvelopePurpose::EpochSecret)
                .unwrap_err(),
            EnvelopeError::WrongPurpose {
                expected: EnvelopePurpose::EpochSecret,
                found: EnvelopePurpose::ClusterKey
            }
        );
        let other = ChannelKeypair::generate(&mut rng);
        assert!(matches!(
            other.open(&env, EnvelopePurpose::ClusterKey),
            Err(EnvelopeError::WrongRecipient(_))
        ));

        // Another sender claiming the envelope: signature fails.
        let mut forged = env.clone();
        forged.sender = IdentityKeypair::generate(&mut rng).public();
        assert_eq!(
            recipient
                .open(&forged, EnvelopePurpose::ClusterKey)
                .unwrap_err(),
            EnvelopeError::BadSignature
        );

        // Mallory re-signs Alice's untouched ciphertext as her own: HPKE refuses, because the
        // AEAD binds the sender.
        let mallory = IdentityKeypair::generate(&mut rng);
        let mut stolen = env.clone();
        stolen.sender = mallory.public();
        let t = signed_transcript(
            stolen.purpose,
            &stolen.recipient,
            &stolen.enc,
            &stolen.aad,
            &stolen.ciphertext,
        );
        stolen.signature = mallory.sign(SigningPurpose::Envelope, &t, &mut rng);
        assert!(stolen.verify_sender().is_ok());
        assert_eq!(
            recipient
                .open(&stolen, EnvelopePurpose::ClusterKey)
                .unwrap_err(),
            EnvelopeError::Decryption
        );

        // Someone re-signing an altered aad: the signature verifies, HPKE refuses.
        let mut resigned = env.clone();
        resigned.aad = b"CTX".to_vec();
        resigned.sender = mallory.public();
        let t = signed_transcript(
            resigned.purpose,
            &resigned.recipient,
            &resigned.enc,
            &resigned.aad,
            &resigned.ciphertext,
        );
        resigned.signature = mallory.sign(SigningPurpose::Envelope, &t, &mut rng);
        assert_eq!(
            recipient
                .open(&resigned, EnvelopePurpose::ClusterKey)
                .unwrap_err(),
            EnvelopeError::Decryption
        );
    }

    #[test]
    fn low_order_recipient_is_refused_at_seal() {
        let (mut rng, sender, _) = parties(4);
        for low_order in [[0u8; 32], {
            let mut one = [0u8; 32];
            one[0] = 1;
            one
        }] {
            let r = Envelope::seal(
                &sender,
                &ChannelPublicKey(low_order),
                EnvelopePurpose::ClusterKey,
                b"",
                b"k",
                &mut rng,
            );
            assert_eq!(r.unwrap_err(), EnvelopeError::DegenerateRecipient);
        }
    }

    #[test]
    fn size_limits() {
        let (mut rng, sender, recipient) = parties(3);
        let big = vec![0u8; MAX_AAD_LEN + 1];
        assert!(matches!(
            Envelope::seal(
                &sender,
                &recipient.public(),
                EnvelopePurpose::ClusterKey,
                &big,
                b"",
                &mut rng
            ),
            Err(EnvelopeError::TooLarge { .. })
        ));
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.var8(b"cluster-key")
            .raw(&sender.public().to_bytes())
            .raw(&[0; 64])
            .u32(u32::MAX);
        assert!(matches!(
            Envelope::from_bytes(w.as_slice()),
            Err(EnvelopeError::Malformed(DecodeError::TooLong { .. }))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_single_byte_change_is_refused(pt in proptest::collection::vec(any::<u8>(), 0..64),
                                             aad in proptest::collection::vec(any::<u8>(), 0..16),
                                             pos in any::<usize>(), bit in 0u8..8, seed in any::<u64>()) {
            let (mut rng, sender, recipient) = parties(seed);
            let env = Envelope::seal(&sender, &recipient.public(), EnvelopePurpose::ContractInput, &aad, &pt, &mut rng).unwrap();
            let mut bytes = env.to_bytes();
            let i = pos % bytes.len();
            bytes[i] ^= 1 << bit;
            let result = Envelope::from_bytes(&bytes).and_then(|e| recipient.open(&e, EnvelopePurpose::ContractInput));
            prop_assert!(result.is_err());
        }

        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Envelope::from_bytes(&bytes);
            let mut prefixed = b"KWEV\x01".to_vec();
            prefixed.extend_from_slice(&bytes);
            let _ = Envelope::from_bytes(&prefixed);
        }
    }
}
