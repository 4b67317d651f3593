//! Committee signatures: FROST(ristretto255, SHA-512) (RFC 9591, `frost-ristretto255`) under the
//! committee's public key, made by any `t` members with the same shares that evaluate the VOPRF.
//! The result is an ordinary Schnorr signature: [`CommitteeSignature::verify`] needs only the
//! public key, so every node and user checks it from public data.
//!
//! Two rounds: each signer [`commit`]s to fresh nonces and publishes the [`NonceCommitment`];
//! once `t` or more commitments are fixed, each of those signers [`sign`]s the message, and
//! anyone [`aggregate`]s the shares, which names every member whose share is wrong.

use std::collections::BTreeMap;

use curve25519_dalek::Scalar;
use frost_ristretto255 as frost;
use thiserror::Error;

use keyward_crypto::{DecodeError, SecretBytes};
use rand_core::SeedableRng;

use crate::{
    dkg::{culprits, identifier},
    group::{Element, scalar_from_bytes},
    threshold::{Committee, KeyShare, ShareIndex},
    voprf::PublicKey,
};

/// Why a committee signature could not be made.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SignError {
    /// Fewer than `t` signers.
    #[error("{got} signers, but the committee's threshold is {needed}")]
    NotEnoughSigners {
        /// The number of signers.
        got: usize,
        /// The threshold.
        needed: u16,
    },
    /// A signer is not a member of the committee.
    #[error("{0} is not a member of the committee")]
    NotAMember(ShareIndex),
    /// The signing member did not commit in this session, or its nonces are not the ones
    /// committed.
    #[error("{0}'s nonces are not among the session's commitments")]
    NotCommitted(ShareIndex),
    /// The shares do not come from exactly the committed signers.
    #[error("the signature shares do not match the committed signers")]
    WrongSigners,
    /// These members' signature shares do not verify: evidence against them.
    #[error("the signature shares of {0:?} do not verify")]
    BadShares(Vec<ShareIndex>),
}

/// A signer's secret nonces for one session. Used once: [`sign`] consumes them.
pub struct SigningNonces(frost::round1::SigningNonces);

impl core::fmt::Debug for SigningNonces {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SigningNonces(<secret>)")
    }
}

/// A signer's public commitment to its nonces: hiding and binding elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonceCommitment {
    hiding: Element,
    binding: Element,
}

impl NonceCommitment {
    /// Encoded length.
    pub const LEN: usize = 64;

    /// `hiding || binding`.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut out = [0u8; 64];
        out[..32].copy_from_slice(&self.hiding.to_bytes());
        out[32..].copy_from_slice(&self.binding.to_bytes());
        out
    }

    /// Decodes [`NonceCommitment::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a non-canonical element or the identity.
    pub fn from_bytes(bytes: &[u8; 64]) -> Result<Self, DecodeError> {
        let half = |range: core::ops::Range<usize>| {
            Element::from_bytes(&bytes[range].try_into().expect("32 bytes"))
        };
        Ok(Self {
            hiding: half(0..32)?,
            binding: half(32..64)?,
        })
    }

    fn to_frost(self) -> frost::round1::SigningCommitments {
        let nonce = |e: Element| {
            frost::round1::NonceCommitment::deserialize(&e.to_bytes()).expect("a valid element")
        };
        frost::round1::SigningCommitments::new(nonce(self.hiding), nonce(self.binding))
    }
}

/// One signer's share of a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignatureShare(Scalar);

impl SignatureShare {
    /// Encoded length.
    pub const LEN: usize = 32;

    /// The 32-byte scalar.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Decodes [`SignatureShare::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a non-canonical scalar.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, DecodeError> {
        scalar_from_bytes("signature share", bytes).map(Self)
    }

    fn to_frost(self) -> frost::round2::SignatureShare {
        frost::round2::SignatureShare::deserialize(&self.0.to_bytes()).expect("a canonical scalar")
    }
}

/// A Schnorr signature `R || z` under a committee's public key (RFC 9591's FROST(ristretto255,
/// SHA-512) encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitteeSignature([u8; 64]);

impl CommitteeSignature {
    /// Encoded length.
    pub const LEN: usize = 64;

    /// `R || z`.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0
    }

    /// Decodes [`CommitteeSignature::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a non-canonical `R` or `z`.
    pub fn from_bytes(bytes: &[u8; 64]) -> Result<Self, DecodeError> {
        frost::Signature::deserialize(bytes).map_err(|_| DecodeError::Invalid {
            field: "committee signature",
            reason: "not a canonical R || z",
        })?;
        Ok(Self(*bytes))
    }

    /// Whether this is a valid signature of `message` under `public_key`.
    pub fn verify(&self, public_key: &PublicKey, message: &[u8]) -> bool {
        let Ok(key) = frost::VerifyingKey::deserialize(&public_key.to_bytes()) else {
            return false;
        };
        let Ok(signature) = frost::Signature::deserialize(&self.0) else {
            return false;
        };
        key.verify(message, &signature).is_ok()
    }
}

fn verifying_share(element: Element) -> frost::keys::VerifyingShare {
    frost::keys::VerifyingShare::deserialize(&element.to_bytes()).expect("a valid element")
}

fn verifying_key(committee: &Committee) -> frost::VerifyingKey {
    frost::VerifyingKey::deserialize(&committee.public_key().to_bytes()).expect("a valid element")
}

/// Nonces for one signing session and their public commitment, drawn from `seed` (a ChaCha20
/// stream) mixed with the share (RFC 9591 §4.1), so a weak seed alone does not leak the share.
/// The same seed always gives the same nonces, so a signer can keep the 32-byte seed sealed
/// between the rounds. The seed must be fresh for the session and erased once its share is made:
/// two shares from one nonce reveal the key share.
pub fn commit(share: &KeyShare, seed: &SecretBytes<32>) -> (SigningNonces, NonceCommitment) {
    let signing_share = signing_share(share);
    let mut rng = rand_chacha::ChaCha20Rng::from_seed(*seed.expose());
    let (nonces, commitments) = frost::round1::commit(&signing_share, &mut rng);
    let element = |c: &frost::round1::NonceCommitment| {
        let bytes: [u8; 32] = c
            .serialize()
            .expect("a valid element")
            .try_into()
            .expect("32 bytes");
        Element::from_bytes(&bytes).expect("FROST produced a valid element")
    };
    let commitment = NonceCommitment {
        hiding: element(commitments.hiding()),
        binding: element(commitments.binding()),
    };
    (SigningNonces(nonces), commitment)
}

fn signing_share(share: &KeyShare) -> frost::keys::SigningShare {
    frost::keys::SigningShare::deserialize(share.secret_bytes().expose())
        .expect("a canonical scalar")
}

fn signing_package(
    committee: &Committee,
    message: &[u8],
    commitments: &BTreeMap<ShareIndex, NonceCommitment>,
) -> Result<frost::SigningPackage, SignError> {
    if commitments.len() < usize::from(committee.threshold()) {
        return Err(SignError::NotEnoughSigners {
            got: commitments.len(),
            needed: committee.threshold(),
        });
    }
    if let Some(stranger) = commitments
        .keys()
        .find(|i| committee.verification_share(**i).is_none())
    {
        return Err(SignError::NotAMember(*stranger));
    }
    let commitments = commitments
        .iter()
        .map(|(i, c)| (identifier(*i), c.to_frost()))
        .collect();
    Ok(frost::SigningPackage::new(commitments, message))
}

/// This member's signature share of `message`, for the session whose signers committed
/// `commitments` (its own among them, made with `nonces`).
///
/// # Errors
/// [`SignError::NotEnoughSigners`], [`SignError::NotAMember`], or [`SignError::NotCommitted`].
pub fn sign(
    share: &KeyShare,
    committee: &Committee,
    message: &[u8],
    commitments: &BTreeMap<ShareIndex, NonceCommitment>,
    nonces: SigningNonces,
) -> Result<SignatureShare, SignError> {
    let me = share.index();
    let verifying = committee
        .verification_share(me)
        .ok_or(SignError::NotAMember(me))?;
    let package = signing_package(committee, message, commitments)?;
    let key_package = frost::keys::KeyPackage::new(
        identifier(me),
        signing_share(share),
        verifying_share(verifying),
        verifying_key(committee),
        committee.threshold(),
    );
    let share = frost::round2::sign(&package, &nonces.0, &key_package)
        .map_err(|_| SignError::NotCommitted(me))?;
    let bytes: [u8; 32] = share.serialize().try_into().expect("32-byte scalar");
    Ok(SignatureShare(
        scalar_from_bytes("signature share", &bytes).expect("FROST keeps scalars canonical"),
    ))
}

/// Combines the committed signers' shares into the committee's signature of `message`. Every
/// share is checked when the result does not verify, and all wrong ones are named.
///
/// # Errors
/// [`SignError::WrongSigners`] if `shares` and `commitments` name different members;
/// [`SignError::BadShares`]; the errors of [`sign`] for the session itself.
pub fn aggregate(
    committee: &Committee,
    message: &[u8],
    commitments: &BTreeMap<ShareIndex, NonceCommitment>,
    shares: &BTreeMap<ShareIndex, SignatureShare>,
) -> Result<CommitteeSignature, SignError> {
    if !shares.keys().eq(commitments.keys()) {
        return Err(SignError::WrongSigners);
    }
    let package = signing_package(committee, message, commitments)?;
    let public = frost::keys::PublicKeyPackage::new(
        committee
            .members()
            .map(|i| {
                let y = committee.verification_share(i).expect("a member");
                (identifier(i), verifying_share(y))
            })
            .collect(),
        verifying_key(committee),
        Some(committee.threshold()),
    );
    let shares = shares
        .iter()
        .map(|(i, s)| (identifier(*i), s.to_frost()))
        .collect();
    let signature = frost::aggregate_custom(
        &package,
        &shares,
        &public,
        frost::CheaterDetection::AllCheaters,
    )
    .map_err(|e| SignError::BadShares(culprits(&e)))?;
    let bytes: [u8; 64] = signature
        .serialize()
        .expect("a valid signature")
        .try_into()
        .expect("64 bytes");
    Ok(CommitteeSignature(bytes))
}
