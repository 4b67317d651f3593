//! Distributed key generation: the committee's shared key is created by its members, and the
//! whole key never exists anywhere. This is FROST's Pedersen DKG (`frost-ristretto255`'s
//! `keys::dkg`), whose signing shares are exactly the [`KeyShare`]s of a [`Committee`], whose
//! verifying shares are the committee's verification shares and whose group key is its public
//! key. The same shares therefore evaluate the VOPRF ([`KeyShare::evaluate`]) and sign with FROST
//! ([`crate::sign`]).
//!
//! The run, for members `M` (share indices) and threshold `t ≥ 2`:
//!
//! 1. Each member `d` makes a [`Dealer`] from a fresh sealed seed and broadcasts its
//!    [`DkgCommitment`]: Feldman commitments to a random polynomial `f_d` of degree `t − 1` and a
//!    proof of knowledge of `f_d(0)`. Anyone checks the proof ([`DkgCommitment::verify`]).
//! 2. Once every member's commitment is known, each dealer sends every other member `j` its
//!    secret [`SharePart`] `f_d(j)` ([`Dealer::parts`]).
//! 3. Member `j` checks each part against its dealer's commitment
//!    ([`DkgCommitment::verify_part`], which anyone holding the revealed part can run, so a
//!    complaint is checkable) and sums them into its share ([`Dealer::finish`]). Anyone derives
//!    the resulting [`Committee`] from the commitments alone ([`committee`]).
//!
//! The dealer's randomness comes from its seed, so a dealer restarted from the same seed sends
//! exactly the same messages: a crash can never make it equivocate.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::{Scalar, constants::RISTRETTO_BASEPOINT_POINT as G};
use frost_ristretto255 as frost;
use frost_ristretto255::keys::dkg as frost_dkg;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use keyward_crypto::{DecodeError, Reader, SecretBytes, Writer};

use crate::{
    group::{Element, scalar_from_bytes},
    poly::{commitment_at, decode_elements, encode_elements, points, sum_of_sharings},
    threshold::{Committee, CommitteeError, KeyShare, ShareIndex, check_shape},
    voprf::PublicKey,
};

/// Why a DKG or resharing step failed. Errors that name a dealer are evidence against it that
/// anyone holding the public commitments can check.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SharingError {
    /// The threshold or the member set is not usable.
    #[error("bad DKG parameters: {0}")]
    Params(#[from] CommitteeError),
    /// A DKG needs `t ≥ 2`; threshold 1 is classic mode, where one gatekeeper creates the key.
    #[error("a DKG needs a threshold of at least 2 (threshold 1 is classic mode)")]
    ThresholdOne,
    /// The index is not a member (or, in resharing, not a dealer) of this run.
    #[error("{0} is not a member of this run")]
    NotAMember(ShareIndex),
    /// Resharing needs at least the old threshold of dealers.
    #[error("{dealers} dealers cannot reshare a key with threshold {needed}")]
    TooFewDealers {
        /// The dealers named.
        dealers: usize,
        /// The old committee's threshold.
        needed: u16,
    },
    /// The commitments do not come from exactly the run's members.
    #[error("the commitments do not match the members: {0} is missing or extra")]
    WrongCommitters(ShareIndex),
    /// A dealer's commitment has the wrong length or a proof of knowledge that does not verify.
    #[error("dealer {dealer}'s commitment is invalid: {reason}")]
    BadCommitment {
        /// The dealer.
        dealer: ShareIndex,
        /// What is wrong.
        reason: &'static str,
    },
    /// No part arrived from these dealers.
    #[error("no part from dealers {0:?}")]
    MissingParts(Vec<ShareIndex>),
    /// These dealers' parts do not match their commitments.
    #[error("the parts from dealers {0:?} do not match their commitments")]
    BadParts(Vec<ShareIndex>),
}

/// The public parameters of one run: its members and threshold. Valid by construction:
/// `2 ≤ t ≤ n ≤ MAX_MEMBERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgParams {
    threshold: u16,
    members: BTreeSet<ShareIndex>,
}

impl DkgParams {
    /// Checks and builds the parameters.
    ///
    /// # Errors
    /// [`SharingError::ThresholdOne`] for `t = 1`; [`SharingError::Params`] for any other bad `t` or `n`.
    pub fn new(threshold: u16, members: BTreeSet<ShareIndex>) -> Result<Self, SharingError> {
        check_shape(threshold, members.len())?;
        if threshold == 1 {
            return Err(SharingError::ThresholdOne);
        }
        Ok(Self { threshold, members })
    }

    /// The threshold `t`.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The members, ascending.
    pub fn members(&self) -> &BTreeSet<ShareIndex> {
        &self.members
    }

    fn n(&self) -> u16 {
        u16::try_from(self.members.len()).expect("at most MAX_MEMBERS")
    }

    fn check_member(&self, index: ShareIndex) -> Result<(), SharingError> {
        if self.members.contains(&index) {
            Ok(())
        } else {
            Err(SharingError::NotAMember(index))
        }
    }

    /// Checks that `commitments` holds exactly one commitment per member.
    fn check_committers<T>(
        &self,
        commitments: &BTreeMap<ShareIndex, T>,
    ) -> Result<(), SharingError> {
        if let Some(extra) = commitments.keys().find(|i| !self.members.contains(i)) {
            return Err(SharingError::WrongCommitters(*extra));
        }
        if let Some(missing) = self.members.iter().find(|i| !commitments.contains_key(i)) {
            return Err(SharingError::WrongCommitters(*missing));
        }
        Ok(())
    }
}

/// Checks every part a recipient got against its dealer's commitment (`verify`), naming every
/// dealer whose part is missing or wrong.
pub(crate) fn check_parts<C>(
    commitments: &BTreeMap<ShareIndex, C>,
    parts: &BTreeMap<ShareIndex, SharePart>,
    verify: impl Fn(&C, &SharePart) -> bool,
) -> Result<(), SharingError> {
    let missing: Vec<ShareIndex> = commitments
        .keys()
        .filter(|i| !parts.contains_key(i))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(SharingError::MissingParts(missing));
    }
    let bad: Vec<ShareIndex> = commitments
        .iter()
        .filter(|(i, c)| !verify(c, &parts[i]))
        .map(|(i, _)| *i)
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(SharingError::BadParts(bad))
    }
}

/// One dealer's secret part for one recipient: `f_d(j)`. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct SharePart(Scalar);

impl SharePart {
    /// Encoded length.
    pub const LEN: usize = 32;

    /// The 32-byte encoding, for an envelope to the recipient or a complaint that reveals it.
    pub fn to_bytes(&self) -> SecretBytes<32> {
        SecretBytes::new(self.0.to_bytes())
    }

    /// Decodes [`SharePart::to_bytes`].
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a non-canonical scalar.
    pub fn from_bytes(bytes: &SecretBytes<32>) -> Result<Self, DecodeError> {
        scalar_from_bytes("share part", bytes.expose()).map(Self)
    }

    pub(crate) fn new(scalar: Scalar) -> Self {
        Self(scalar)
    }

    pub(crate) fn scalar(&self) -> Scalar {
        self.0
    }
}

impl core::fmt::Debug for SharePart {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SharePart(<secret>)")
    }
}

/// A dealer's public round-1 message: Feldman commitments `C_k = a_k·G` to its polynomial and a
/// Schnorr proof of knowledge of `a_0` (FROST's, bound to the dealer's index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgCommitment {
    coefficients: Vec<Element>,
    proof_r: Element,
    proof_z: Scalar,
}

impl DkgCommitment {
    /// The encoding: `u16 t || C_0 .. C_{t−1} (32 bytes each) || R (32) || z (32)`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        encode_elements(&mut w, &self.coefficients);
        w.raw(&self.proof_r.to_bytes())
            .raw(&self.proof_z.to_bytes());
        w.finish()
    }

    /// Decodes [`DkgCommitment::to_bytes`]. Whether the commitment suits a run and its proof
    /// holds is [`DkgCommitment::verify`]'s job.
    ///
    /// # Errors
    /// A [`DecodeError`] for a malformed field or trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let coefficients =
            decode_elements(&mut r, 2, "a DKG commitment has 2..=1024 coefficients")?;
        let proof_r = Element::from_bytes(&r.array("proof commitment")?)?;
        let proof_z = scalar_from_bytes("proof response", &r.array("proof response")?)?;
        r.finish()?;
        Ok(Self {
            coefficients,
            proof_r,
            proof_z,
        })
    }

    /// The dealer's contribution to the public key, `C_0 = f_d(0)·G`.
    pub fn constant(&self) -> Element {
        self.coefficients[0]
    }

    /// Checks that this is a valid commitment from `dealer` for a run with `params`: one
    /// coefficient per degree and a proof of knowledge that verifies for `dealer`'s index.
    ///
    /// # Errors
    /// [`SharingError::NotAMember`] or [`SharingError::BadCommitment`].
    pub fn verify(&self, dealer: ShareIndex, params: &DkgParams) -> Result<(), SharingError> {
        self.check_length(dealer, params)?;
        let package = self.to_frost();
        frost_core::keys::dkg::verify_proof_of_knowledge(
            identifier(dealer),
            package.commitment(),
            package.proof_of_knowledge(),
        )
        .map_err(|_| SharingError::BadCommitment {
            dealer,
            reason: "its proof of knowledge does not verify",
        })
    }

    /// A member's commitment with one coefficient per degree.
    fn check_length(&self, dealer: ShareIndex, params: &DkgParams) -> Result<(), SharingError> {
        params.check_member(dealer)?;
        if self.coefficients.len() == usize::from(params.threshold) {
            Ok(())
        } else {
            Err(SharingError::BadCommitment {
                dealer,
                reason: "its length is not the threshold",
            })
        }
    }

    /// Whether `part` is the value at `recipient` of the polynomial this commits to:
    /// `part·G = Σ_k recipient^k·C_k`. Anyone can run this on a revealed part.
    pub fn verify_part(&self, recipient: ShareIndex, part: &SharePart) -> bool {
        part.scalar() * G == commitment_at(&points(&self.coefficients), recipient)
    }

    fn to_frost(&self) -> frost_dkg::round1::Package {
        let commitment = frost::keys::VerifiableSecretSharingCommitment::deserialize(
            self.coefficients.iter().map(Element::to_bytes),
        )
        .expect("valid elements");
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(&self.proof_r.to_bytes());
        signature[32..].copy_from_slice(&self.proof_z.to_bytes());
        let proof = frost::Signature::deserialize(&signature).expect("valid R and z");
        frost_dkg::round1::Package::new(commitment, proof)
    }

    fn from_frost(package: &frost_dkg::round1::Package) -> Self {
        let element = |bytes: &[u8]| {
            Element::from_bytes(&bytes.try_into().expect("32-byte element"))
                .expect("FROST produced a valid element")
        };
        let coefficients = package
            .commitment()
            .serialize()
            .expect("valid commitment")
            .iter()
            .map(|c| element(c))
            .collect();
        let proof = package
            .proof_of_knowledge()
            .serialize()
            .expect("valid proof");
        Self {
            coefficients,
            proof_r: element(&proof[..32]),
            proof_z: scalar_from_bytes("proof response", &proof[32..].try_into().expect("64"))
                .expect("FROST produced a canonical scalar"),
        }
    }
}

/// The FROST identifier of a share index: the same scalar, so FROST's shares are ours.
pub(crate) fn identifier(index: ShareIndex) -> frost::Identifier {
    frost::Identifier::try_from(index.get()).expect("a nonzero index is an identifier")
}

/// One member's dealer state for one run, rebuilt from its seed whenever needed.
///
/// Guarantees: the same seed and parameters always give the same commitment and parts.
pub struct Dealer {
    params: DkgParams,
    me: ShareIndex,
    secret: frost_dkg::round1::SecretPackage,
    commitment: DkgCommitment,
}

impl core::fmt::Debug for Dealer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Dealer")
            .field("me", &self.me)
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl Dealer {
    /// The dealer for member `me` of the run `params`, its polynomial drawn from `seed`. The
    /// seed must be fresh for every run (sealed by the caller, never reused).
    ///
    /// # Errors
    /// [`SharingError::NotAMember`].
    pub fn new(
        params: DkgParams,
        me: ShareIndex,
        seed: &SecretBytes<32>,
    ) -> Result<Self, SharingError> {
        params.check_member(me)?;
        let rng = ChaCha20Rng::from_seed(*seed.expose());
        let (secret, package) = frost_dkg::part1(identifier(me), params.n(), params.threshold, rng)
            .expect("parameters checked by DkgParams");
        Ok(Self {
            commitment: DkgCommitment::from_frost(&package),
            params,
            me,
            secret,
        })
    }

    /// This dealer's public commitment, to broadcast.
    pub fn commitment(&self) -> &DkgCommitment {
        &self.commitment
    }

    /// The secret part for every other member, once every member's commitment is known (each
    /// must already have passed [`DkgCommitment::verify`]).
    ///
    /// # Errors
    /// [`SharingError::WrongCommitters`], or [`SharingError::BadCommitment`] for a commitment that does
    /// not verify.
    pub fn parts(
        &self,
        commitments: &BTreeMap<ShareIndex, DkgCommitment>,
    ) -> Result<BTreeMap<ShareIndex, SharePart>, SharingError> {
        let (_, packages) = self.round2(commitments)?;
        Ok(packages
            .into_iter()
            .map(|(index, (_, package))| {
                (
                    index,
                    SharePart::new(signing_scalar(package.signing_share())),
                )
            })
            .collect())
    }

    /// This member's share and the run's committee, from every member's commitment and the part
    /// each other member sent. Every part is checked; all bad ones are named.
    ///
    /// # Errors
    /// [`SharingError::MissingParts`] or [`SharingError::BadParts`] naming the dealers; the errors of
    /// [`Dealer::parts`].
    pub fn finish(
        &self,
        commitments: &BTreeMap<ShareIndex, DkgCommitment>,
        parts: &BTreeMap<ShareIndex, SharePart>,
    ) -> Result<(KeyShare, Committee), SharingError> {
        let (round2, _) = self.round2(commitments)?;
        let others: BTreeMap<ShareIndex, &DkgCommitment> = commitments
            .iter()
            .filter(|(i, _)| **i != self.me)
            .map(|(i, c)| (*i, c))
            .collect();
        check_parts(&others, parts, |c, part| c.verify_part(self.me, part))?;
        let round1: BTreeMap<_, _> = others
            .iter()
            .map(|(i, c)| (identifier(*i), c.to_frost()))
            .collect();
        let round2_packages: BTreeMap<_, _> = others
            .keys()
            .map(|i| {
                let share = frost::keys::SigningShare::deserialize(&parts[i].0.to_bytes())
                    .expect("a canonical scalar");
                (identifier(*i), frost_dkg::round2::Package::new(share))
            })
            .collect();
        let (key_package, _) = frost_dkg::part3(&round2, &round1, &round2_packages)
            .map_err(|e| SharingError::BadParts(culprits(&e)))?;
        // Probability 2^-252: the parts sum to zero. No member may hold a zero share.
        let share = KeyShare::from_scalar(self.me, signing_scalar(key_package.signing_share()))
            .ok_or(SharingError::BadParts(Vec::new()))?;
        // `round2` checked every commitment.
        Ok((share, committee_of_verified(&self.params, commitments)?))
    }

    #[allow(clippy::type_complexity)]
    fn round2(
        &self,
        commitments: &BTreeMap<ShareIndex, DkgCommitment>,
    ) -> Result<
        (
            frost_dkg::round2::SecretPackage,
            BTreeMap<ShareIndex, (frost::Identifier, frost_dkg::round2::Package)>,
        ),
        SharingError,
    > {
        self.params.check_committers(commitments)?;
        for (dealer, c) in commitments {
            c.check_length(*dealer, &self.params)?;
        }
        let round1: BTreeMap<_, _> = commitments
            .iter()
            .filter(|(i, _)| **i != self.me)
            .map(|(i, c)| (identifier(*i), c.to_frost()))
            .collect();
        // FROST's part 2 checks every other member's proof of knowledge, as `verify` does.
        let (secret, packages) = frost_dkg::part2(self.secret.clone(), &round1).map_err(|e| {
            match culprits(&e).first() {
                Some(dealer) => SharingError::BadCommitment {
                    dealer: *dealer,
                    reason: "its proof of knowledge does not verify",
                },
                None => SharingError::WrongCommitters(self.me),
            }
        })?;
        let by_index = packages
            .into_iter()
            .map(|(id, package)| {
                let index = share_index(&id).expect("FROST answers the identifiers it was given");
                (index, (id, package))
            })
            .collect();
        Ok((secret, by_index))
    }
}

/// The share index of a FROST identifier made by [`identifier`].
fn share_index(id: &frost::Identifier) -> Option<ShareIndex> {
    let bytes = id.serialize();
    if bytes[2..].iter().any(|b| *b != 0) {
        return None;
    }
    ShareIndex::new(u16::from_le_bytes([bytes[0], bytes[1]]))
}

/// The members a FROST error names.
pub(crate) fn culprits(e: &frost::Error) -> Vec<ShareIndex> {
    e.culprits().iter().filter_map(share_index).collect()
}

fn signing_scalar(share: &frost::keys::SigningShare) -> Scalar {
    let bytes: [u8; 32] = share.serialize().try_into().expect("32-byte scalar");
    scalar_from_bytes("signing share", &bytes).expect("FROST keeps scalars canonical")
}

/// The committee a run produced, from its members' commitments alone: public key `Σ_d C_{d,0}`
/// and verification shares `Y_j = Σ_d Σ_k j^k·C_{d,k}`. Every node derives it from the ledger;
/// [`Committee::new`] checks its consistency.
///
/// # Errors
/// [`SharingError::WrongCommitters`], [`SharingError::BadCommitment`], or [`SharingError::Params`] if the
/// sum is degenerate (the identity, which honest dealers reach with probability 2^-252).
pub fn committee(
    params: &DkgParams,
    commitments: &BTreeMap<ShareIndex, DkgCommitment>,
) -> Result<Committee, SharingError> {
    params.check_committers(commitments)?;
    for (dealer, c) in commitments {
        c.verify(*dealer, params)?;
    }
    committee_of_verified(params, commitments)
}

/// [`committee`] for commitments the caller already checked, one by one, with
/// [`DkgCommitment::verify`] (the ledger does as each lands): it skips the proofs.
///
/// # Errors
/// As [`committee`], less the proof checks.
pub fn committee_of_verified(
    params: &DkgParams,
    commitments: &BTreeMap<ShareIndex, DkgCommitment>,
) -> Result<Committee, SharingError> {
    params.check_committers(commitments)?;
    let (constant, shares) = sum_of_sharings(
        params.threshold,
        commitments.values().map(|c| &c.coefficients[..]),
        &params.members,
    )?;
    let public_key = Element::new(constant).ok_or(CommitteeError::PublicKeyMismatch)?;
    Ok(Committee::new(
        params.threshold,
        PublicKey(public_key),
        shares,
    )?)
}
