//! Threshold evaluation of the RFC 9497 VOPRF: the secret key exists only as Shamir shares.
//!
//! A [`Committee`] is public: the threshold `t`, the public key `K = k·G`, and each member's
//! verification share `Y_i = k_i·G`, where `k_i = f(i)` for a polynomial `f` of degree `t − 1`
//! with `f(0) = k`. Member `i` answers a blinded element `B` with a [`PartialEvaluation`]
//! `Z_i = k_i·B` and an RFC 9497 DLEQ proof that `log_G(Y_i) = log_B(Z_i)`.
//! [`Committee::combine`] checks every partial, names each invalid one with its
//! [`PartialFault`], and interpolates any `t` valid partials in the exponent:
//! `Z = Σ λ_i·Z_i = k·B`, exactly the evaluation the whole key gives. Fewer than `t` shares
//! determine nothing about `k`.
//!
//! Classic mode (every holder has the whole key) is `t = 1`: `f` is the constant `k`, every
//! `Y_i = K`, and one partial is the whole evaluation. It runs through this same code.

use core::{fmt, num::NonZeroU16};
use std::collections::BTreeMap;

use curve25519_dalek::{
    RistrettoPoint, Scalar, constants::RISTRETTO_BASEPOINT_POINT as G, traits::Identity,
};
use thiserror::Error;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::{
    dleq::Proof,
    group::Element,
    poly::Polynomial,
    voprf::{BlindedRequest, Output, PublicKey, SecretKey},
};
use keyward_crypto::{DecodeError, Reader, SecretBytes, Writer};

/// Most members a committee may have.
pub const MAX_MEMBERS: usize = 1024;

/// A share's index: the nonzero x-coordinate of its holder's point on the sharing polynomial.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShareIndex(NonZeroU16);

impl ShareIndex {
    /// The index `i`, or `None` for zero (the secret itself sits at zero).
    pub fn new(i: u16) -> Option<Self> {
        NonZeroU16::new(i).map(Self)
    }

    /// The index as a number.
    pub fn get(self) -> u16 {
        self.0.get()
    }

    pub(crate) fn scalar(self) -> Scalar {
        Scalar::from(u64::from(self.get()))
    }
}

impl fmt::Debug for ShareIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.get())
    }
}

impl fmt::Display for ShareIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One member's share `k_i` of a VOPRF key.
///
/// Guarantees: the share zeroizes on drop and never prints.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct KeyShare {
    #[zeroize(skip)]
    index: ShareIndex,
    secret: Scalar,
}

impl KeyShare {
    /// The share at `index` with secret value `secret`. In classic mode `secret` is the whole key.
    pub fn new(index: ShareIndex, secret: &SecretKey) -> Self {
        Self {
            index,
            secret: secret.0,
        }
    }

    /// Decodes the 32-byte share value for `index`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a non-canonical or zero scalar.
    pub fn from_bytes(index: ShareIndex, bytes: &SecretBytes<32>) -> Result<Self, DecodeError> {
        let secret = SecretKey::from_bytes(bytes)?;
        Ok(Self::new(index, &secret))
    }

    /// The share value's 32-byte encoding, for sealing.
    pub fn secret_bytes(&self) -> SecretBytes<32> {
        SecretBytes::new(self.secret.to_bytes())
    }

    /// The share with value `secret`, or `None` for zero (no share may be zero).
    pub(crate) fn from_scalar(index: ShareIndex, secret: Scalar) -> Option<Self> {
        (secret != Scalar::ZERO).then_some(Self { index, secret })
    }

    pub(crate) fn scalar(&self) -> Scalar {
        self.secret
    }

    /// This share's index.
    pub fn index(&self) -> ShareIndex {
        self.index
    }

    /// The public verification share `Y_i = k_i·G`.
    pub fn verification_share(&self) -> Element {
        Element::new(self.secret * G).expect("shares are nonzero")
    }

    /// This member's partial evaluation of `blinded`, with its DLEQ proof against `Y_i`.
    pub fn evaluate(
        &self,
        blinded: &Element,
        rng: &mut impl keyward_crypto::Rng,
    ) -> PartialEvaluation {
        let share = SecretKey(self.secret);
        let (evaluated, proof) = share.blind_evaluate_with_nonce(&[*blinded], &Scalar::random(rng));
        PartialEvaluation {
            index: self.index,
            evaluated: evaluated[0],
            proof,
        }
    }
}

impl fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// A member's answer to an element `B`: `Z_i = k_i·B` and the proof that `k_i` is behind `Y_i`.
///
/// When `B` is a public input's element (ClusterKey provisioning), `Z_i` is secret: `t` of them
/// give the key. `Debug` therefore shows only the index and proof.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PartialEvaluation {
    /// The answering member.
    pub index: ShareIndex,
    /// `Z_i`.
    pub evaluated: Element,
    /// DLEQ proof that `log_G(Y_i) = log_B(Z_i)`.
    pub proof: Proof,
}

impl fmt::Debug for PartialEvaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PartialEvaluation")
            .field("index", &self.index)
            .field("proof", &self.proof)
            .finish_non_exhaustive()
    }
}

impl PartialEvaluation {
    /// Encoded length: `index(2) || evaluated(32) || proof(64)`.
    pub const LEN: usize = 98;

    /// The encoding `u16 index || evaluated || proof`.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut w = Writer::new();
        w.u16(self.index.get())
            .raw(&self.evaluated.to_bytes())
            .raw(&self.proof.to_bytes());
        w.finish().try_into().expect("fixed length")
    }

    /// Decodes [`PartialEvaluation::to_bytes`].
    ///
    /// # Errors
    /// A [`DecodeError`] for any malformed field.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let index = ShareIndex::new(r.u16("share index")?).ok_or(DecodeError::Invalid {
            field: "share index",
            reason: "zero",
        })?;
        let evaluated = Element::from_bytes(&r.array("partial evaluation")?)?;
        let proof = Proof::from_bytes(&r.array("partial proof")?)?;
        r.finish()?;
        Ok(Self {
            index,
            evaluated,
            proof,
        })
    }
}

/// Why a committee description was refused.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum CommitteeError {
    /// The threshold is zero or exceeds the number of members.
    #[error("threshold {threshold} is not within 1..={members}")]
    BadThreshold {
        /// The requested threshold.
        threshold: u16,
        /// The number of members.
        members: usize,
    },
    /// No members, or more than [`MAX_MEMBERS`].
    #[error("a committee has 1..={MAX_MEMBERS} members, not {0}")]
    BadSize(usize),
    /// A verification share does not lie on the polynomial the first `t` shares define.
    #[error("verification share {0} is inconsistent with the other shares and the threshold")]
    Inconsistent(ShareIndex),
    /// The first `t` verification shares interpolate to another public key.
    #[error("the verification shares do not interpolate to the committee's public key")]
    PublicKeyMismatch,
}

/// The public description of a shared key, verified on construction: a `Committee` exists only
/// if its verification shares lie on one polynomial of degree `t − 1` whose value at zero is the
/// public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committee {
    threshold: u16,
    public_key: PublicKey,
    shares: BTreeMap<ShareIndex, Element>,
}

impl Committee {
    /// Builds and verifies a committee.
    ///
    /// # Errors
    /// A [`CommitteeError`] naming the problem.
    pub fn new(
        threshold: u16,
        public_key: PublicKey,
        shares: BTreeMap<ShareIndex, Element>,
    ) -> Result<Self, CommitteeError> {
        check_shape(threshold, shares.len())?;
        let basis: Vec<ShareIndex> = shares.keys().copied().take(threshold.into()).collect();
        let interpolate = |x: Scalar| -> RistrettoPoint {
            basis
                .iter()
                .map(|i| lagrange(x, *i, &basis) * shares[i].0)
                .fold(RistrettoPoint::identity(), |a, b| a + b)
        };
        if interpolate(Scalar::ZERO) != public_key.0.0 {
            return Err(CommitteeError::PublicKeyMismatch);
        }
        for (index, share) in shares.iter().skip(threshold.into()) {
            if interpolate(index.scalar()) != share.0 {
                return Err(CommitteeError::Inconsistent(*index));
            }
        }
        Ok(Self {
            threshold,
            public_key,
            shares,
        })
    }

    /// The classic-mode committee: threshold 1, every member holding the whole key, so every
    /// verification share is the public key.
    ///
    /// # Errors
    /// [`CommitteeError::BadSize`] for no members or too many.
    pub fn classic(
        public_key: PublicKey,
        members: impl IntoIterator<Item = ShareIndex>,
    ) -> Result<Self, CommitteeError> {
        Self::new(
            1,
            public_key,
            members.into_iter().map(|i| (i, public_key.0)).collect(),
        )
    }

    /// A trusted dealer's Shamir sharing of `secret` among members `1..=n` with threshold `t`.
    /// For tests, development and offline backup; live epochs are shared by a DKG.
    ///
    /// # Errors
    /// [`CommitteeError`] for a bad `t` or `n`.
    pub fn deal(
        secret_key: &SecretKey,
        threshold: u16,
        members: u16,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<(Self, Vec<KeyShare>), CommitteeError> {
        check_shape(threshold, members.into())?;
        let polynomial = Polynomial::random(secret_key.0, threshold, rng);
        let mut shares = Vec::with_capacity(members.into());
        for i in 1..=members {
            let index = ShareIndex::new(i).expect("i >= 1");
            let secret = polynomial.at(index);
            if secret == Scalar::ZERO {
                // Probability 2^-252; a zero share cannot be a key.
                return Self::deal(secret_key, threshold, members, rng);
            }
            shares.push(KeyShare { index, secret });
        }
        let verification = shares
            .iter()
            .map(|s| (s.index, s.verification_share()))
            .collect();
        let committee = Self::new(threshold, secret_key.public_key(), verification)?;
        Ok((committee, shares))
    }

    /// The threshold `t`.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The public key `K`.
    pub fn public_key(&self) -> PublicKey {
        self.public_key
    }

    /// The verification share of `index`, if it is a member.
    pub fn verification_share(&self, index: ShareIndex) -> Option<Element> {
        self.shares.get(&index).copied()
    }

    /// The members' indices, ascending.
    pub fn members(&self) -> impl Iterator<Item = ShareIndex> + '_ {
        self.shares.keys().copied()
    }

    /// Checks one partial evaluation of `blinded`. Anyone holding the committee can run this, so
    /// a [`PartialFault::BadProof`] on a partial that arrived signed by its member (inside an
    /// envelope from that member's identity) is evidence against that member.
    ///
    /// # Errors
    /// A [`PartialFault`]: the sender is not a member, or the proof does not verify.
    pub fn check_partial(
        &self,
        blinded: &Element,
        partial: &PartialEvaluation,
    ) -> Result<CheckedPartial, PartialFault> {
        let share = self
            .shares
            .get(&partial.index)
            .ok_or(PartialFault::UnknownIndex)?;
        if partial
            .proof
            .verify(&share.0, &[*blinded], &[partial.evaluated])
        {
            Ok(CheckedPartial {
                index: partial.index,
                evaluated: partial.evaluated,
                blinded: *blinded,
                key: self.public_key,
                share: *share,
            })
        } else {
            Err(PartialFault::BadProof)
        }
    }

    /// Checks every partial and interpolates `t` valid ones (lowest indices first) into `k·B`.
    /// A second valid partial from the same member is ignored (it carries the same `Z_i`), so a
    /// forged partial cannot crowd out the genuine one, wherever it sits in `partials`.
    ///
    /// # Errors
    /// [`CombineError::NotEnough`] when fewer than `t` members sent a valid partial; it lists the
    /// invalid ones.
    pub fn combine(
        &self,
        blinded: &Element,
        partials: &[PartialEvaluation],
    ) -> Result<Combined, CombineError> {
        let mut checked = Vec::with_capacity(partials.len());
        let mut invalid = Vec::new();
        for p in partials {
            match self.check_partial(blinded, p) {
                Ok(c) => checked.push(c),
                Err(fault) => invalid.push(InvalidPartial {
                    index: p.index,
                    fault,
                }),
            }
        }
        match self.combine_checked(blinded, &checked) {
            Ok(combined) => Ok(Combined {
                invalid,
                ..combined
            }),
            Err(CombineError::NotEnough { valid, needed, .. }) => Err(CombineError::NotEnough {
                valid,
                needed,
                invalid,
            }),
            Err(e) => Err(e),
        }
    }

    /// Interpolates `t` partials already checked by [`Committee::check_partial`] (lowest indices
    /// first) into `k·B`, without checking their proofs again. A partial checked for another
    /// element, another key or another verification share (a committee before or after a
    /// resharing, say) does not count; nor does a second one from the same member.
    ///
    /// # Errors
    /// [`CombineError::NotEnough`] when fewer than `t` members' partials count.
    pub fn combine_checked(
        &self,
        blinded: &Element,
        partials: &[CheckedPartial],
    ) -> Result<Combined, CombineError> {
        let mut valid: BTreeMap<ShareIndex, Element> = BTreeMap::new();
        for p in partials {
            let same_share = self.shares.get(&p.index) == Some(&p.share);
            if p.blinded == *blinded && p.key == self.public_key && same_share {
                valid.entry(p.index).or_insert(p.evaluated);
            }
        }
        if valid.len() < usize::from(self.threshold) {
            return Err(CombineError::NotEnough {
                valid: valid.len(),
                needed: self.threshold,
                invalid: Vec::new(),
            });
        }
        let used: Vec<ShareIndex> = valid.keys().copied().take(self.threshold.into()).collect();
        let z = used
            .iter()
            .map(|i| lagrange(Scalar::ZERO, *i, &used) * valid[i].0)
            .fold(RistrettoPoint::identity(), |a, b| a + b);
        let evaluated =
            Element::new(z).expect("k·B is not the identity for nonzero k and non-identity B");
        Ok(Combined {
            evaluated,
            used,
            invalid: Vec::new(),
        })
    }

    /// Threshold evaluation of a **public** input: combines partials of
    /// [`Element::from_input`]`(input)` and finalizes, giving exactly the single-key output
    /// `SecretKey::evaluate(input)` of the shared secret. Used where each evaluator must see, and
    /// authorize, what it evaluates.
    ///
    /// # Errors
    /// [`CombineError::BadInput`] for an input RFC 9497 refuses; [`CombineError::NotEnough`] when
    /// fewer than `t` partials are valid.
    pub fn evaluate_input(
        &self,
        input: &[u8],
        partials: &[PartialEvaluation],
    ) -> Result<(Output, Combined), CombineError> {
        let element = Element::from_input(input).map_err(CombineError::BadInput)?;
        let combined = self.combine(&element, partials)?;
        Ok((
            crate::voprf::finalize_hash(input, &combined.evaluated.0),
            combined,
        ))
    }

    /// [`Committee::evaluate_input`] over partials already checked by
    /// [`Committee::check_partial`] against `Element::from_input(input)`.
    ///
    /// # Errors
    /// As [`Committee::evaluate_input`].
    pub fn evaluate_input_checked(
        &self,
        input: &[u8],
        partials: &[CheckedPartial],
    ) -> Result<(Output, Combined), CombineError> {
        let element = Element::from_input(input).map_err(CombineError::BadInput)?;
        let combined = self.combine_checked(&element, partials)?;
        Ok((
            crate::voprf::finalize_hash(input, &combined.evaluated.0),
            combined,
        ))
    }
}

/// A partial evaluation whose proof [`Committee::check_partial`] verified, for the element, the
/// committee key and the member's verification share it was checked against (only
/// [`Committee::check_partial`] makes one). `Z_i` may
/// be secret, so `Debug` shows only the index.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CheckedPartial {
    index: ShareIndex,
    evaluated: Element,
    blinded: Element,
    key: PublicKey,
    share: Element,
}

impl CheckedPartial {
    /// The member it came from.
    pub fn index(&self) -> ShareIndex {
        self.index
    }
}

impl fmt::Debug for CheckedPartial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckedPartial")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Checks a committee's shape: 1 to [`MAX_MEMBERS`] members and a threshold of 1 to their
/// number.
pub(crate) fn check_shape(threshold: u16, members: usize) -> Result<(), CommitteeError> {
    if members == 0 || members > MAX_MEMBERS {
        return Err(CommitteeError::BadSize(members));
    }
    if threshold == 0 || usize::from(threshold) > members {
        return Err(CommitteeError::BadThreshold { threshold, members });
    }
    Ok(())
}

/// The Lagrange coefficient of member `i` within `set`, evaluated at `x`:
/// `Π_{j ≠ i} (x − j) / (i − j)`.
pub(crate) fn lagrange(x: Scalar, i: ShareIndex, set: &[ShareIndex]) -> Scalar {
    let xi = i.scalar();
    let (num, den) =
        set.iter()
            .filter(|j| **j != i)
            .fold((Scalar::ONE, Scalar::ONE), |(num, den), j| {
                let xj = j.scalar();
                (num * (x - xj), den * (xi - xj))
            });
    num * den.invert()
}

/// What is wrong with a partial evaluation.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum PartialFault {
    /// The sender is not a member of the committee.
    #[error("sender is not a committee member")]
    UnknownIndex,
    /// The DLEQ proof does not verify against the member's verification share.
    #[error("DLEQ proof does not verify against the member's verification share")]
    BadProof,
}

/// A refused partial, with the member it came from.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
#[error("partial from member {index}: {fault}")]
pub struct InvalidPartial {
    /// The member the partial claims to come from.
    pub index: ShareIndex,
    /// What is wrong with it.
    pub fault: PartialFault,
}

/// The result of combining partials. `evaluated` is `k·B`: secret when `B` is a public input's
/// element, so `Debug` omits it.
#[derive(Clone, PartialEq, Eq)]
pub struct Combined {
    /// `k·B`.
    pub evaluated: Element,
    /// The `t` members whose partials were interpolated.
    pub used: Vec<ShareIndex>,
    /// Every refused partial, to be reported.
    pub invalid: Vec<InvalidPartial>,
}

impl fmt::Debug for Combined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Combined")
            .field("used", &self.used)
            .field("invalid", &self.invalid)
            .finish_non_exhaustive()
    }
}

/// Combining failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CombineError {
    /// Fewer than `t` valid partials.
    #[error("{valid} valid partials, {needed} needed ({} refused)", invalid.len())]
    NotEnough {
        /// Valid partials received.
        valid: usize,
        /// The threshold.
        needed: u16,
        /// The refused partials.
        invalid: Vec<InvalidPartial>,
    },
    /// The input cannot be evaluated.
    #[error("input cannot be evaluated: {0}")]
    BadInput(crate::VoprfError),
}

impl BlindedRequest {
    /// Finishes a threshold evaluation: combines the partials under `committee`, unblinds and
    /// hashes. The output equals the single-key VOPRF output of the shared secret on this input.
    ///
    /// # Errors
    /// [`CombineError::NotEnough`] when fewer than `t` partials are valid.
    pub fn finalize_threshold(
        &self,
        committee: &Committee,
        partials: &[PartialEvaluation],
    ) -> Result<(Output, Combined), CombineError> {
        let combined = committee.combine(&self.blinded(), partials)?;
        Ok((self.unblind(&combined.evaluated), combined))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn subsets(n: u16, t: u16) -> Vec<Vec<u16>> {
        (0u32..(1 << n))
            .filter(|m| m.count_ones() == u32::from(t))
            .map(|m| (1..=n).filter(|i| m & (1 << (i - 1)) != 0).collect())
            .collect()
    }

    #[test]
    fn every_t_subset_gives_the_single_key_output() {
        let mut rng = StdRng::seed_from_u64(11);
        for (t, n) in [(1u16, 3u16), (2, 3), (3, 5), (5, 5)] {
            let secret = SecretKey::random(&mut rng);
            let expected = secret.evaluate(b"epoch 0 / cluster a / gen 0").unwrap();
            let (committee, shares) = Committee::deal(&secret, t, n, &mut rng).unwrap();
            let req = BlindedRequest::new(b"epoch 0 / cluster a / gen 0", &mut rng).unwrap();
            for subset in subsets(n, t) {
                let partials: Vec<_> = subset
                    .iter()
                    .map(|i| shares[usize::from(*i) - 1].evaluate(&req.blinded(), &mut rng))
                    .collect();
                let (out, combined) = req.finalize_threshold(&committee, &partials).unwrap();
                assert_eq!(out, expected, "t={t} n={n} subset {subset:?}");
                assert!(combined.invalid.is_empty());
            }
        }
    }

    #[test]
    fn fewer_than_t_shares_fail_and_give_nothing_useful() {
        let mut rng = StdRng::seed_from_u64(12);
        let secret = SecretKey::random(&mut rng);
        let (committee, shares) = Committee::deal(&secret, 3, 5, &mut rng).unwrap();
        let req = BlindedRequest::new(b"x", &mut rng).unwrap();
        let partials: Vec<_> = shares[..2]
            .iter()
            .map(|s| s.evaluate(&req.blinded(), &mut rng))
            .collect();
        assert_eq!(
            req.finalize_threshold(&committee, &partials).unwrap_err(),
            CombineError::NotEnough {
                valid: 2,
                needed: 3,
                invalid: vec![]
            }
        );
        // Interpolating t − 1 shares as if they were enough yields a useless value.
        let two = Committee::deal(&secret, 2, 2, &mut rng).unwrap().0;
        let forced = Committee {
            threshold: 2,
            public_key: two.public_key,
            shares: (1..=2)
                .map(|i| {
                    (
                        ShareIndex::new(i).unwrap(),
                        shares[usize::from(i) - 1].verification_share(),
                    )
                })
                .collect(),
        };
        let (wrong, _) = req.finalize_threshold(&forced, &partials).unwrap();
        assert_ne!(wrong, secret.evaluate(b"x").unwrap());
    }

    #[test]
    fn a_wrong_partial_is_named_and_skipped() {
        let mut rng = StdRng::seed_from_u64(13);
        let secret = SecretKey::random(&mut rng);
        let (committee, shares) = Committee::deal(&secret, 2, 3, &mut rng).unwrap();
        let req = BlindedRequest::new(b"x", &mut rng).unwrap();
        let mut bad = shares[0].evaluate(&req.blinded(), &mut rng);
        bad.evaluated = shares[1].evaluate(&req.blinded(), &mut rng).evaluated;
        let good: Vec<_> = shares[1..]
            .iter()
            .map(|s| s.evaluate(&req.blinded(), &mut rng))
            .collect();
        let (out, combined) = req
            .finalize_threshold(&committee, &[bad, good[0], good[1], good[0]])
            .unwrap();
        assert_eq!(out, secret.evaluate(b"x").unwrap());
        assert_eq!(
            combined.invalid,
            vec![InvalidPartial {
                index: ShareIndex::new(1).unwrap(),
                fault: PartialFault::BadProof
            }]
        );
        // A forged partial sent first under member 2's index does not crowd out member 2's own.
        let mut forged = good[0];
        forged.evaluated = shares[0].evaluate(&req.blinded(), &mut rng).evaluated;
        let (out, combined) = req
            .finalize_threshold(&committee, &[forged, good[0], good[1]])
            .unwrap();
        assert_eq!(out, secret.evaluate(b"x").unwrap());
        assert_eq!(
            combined.invalid,
            vec![InvalidPartial {
                index: ShareIndex::new(2).unwrap(),
                fault: PartialFault::BadProof
            }]
        );
        let stranger =
            KeyShare::new(ShareIndex::new(9).unwrap(), &secret).evaluate(&req.blinded(), &mut rng);
        assert_eq!(
            committee.check_partial(&req.blinded(), &stranger),
            Err(PartialFault::UnknownIndex)
        );
    }

    #[test]
    fn public_input_evaluation_equals_single_key_output() {
        let mut rng = StdRng::seed_from_u64(16);
        let secret = SecretKey::random(&mut rng);
        let (committee, shares) = Committee::deal(&secret, 3, 5, &mut rng).unwrap();
        let element = Element::from_input(b"public").unwrap();
        let partials: Vec<_> = shares[1..4]
            .iter()
            .map(|s| s.evaluate(&element, &mut rng))
            .collect();
        let (out, _) = committee.evaluate_input(b"public", &partials).unwrap();
        assert_eq!(out, secret.evaluate(b"public").unwrap());
        // Partials of another input do not verify for this one.
        assert!(matches!(
            committee.evaluate_input(b"other", &partials),
            Err(CombineError::NotEnough { valid: 0, .. })
        ));
    }

    #[test]
    fn checked_partials_count_only_for_their_element_and_committee() {
        let mut rng = StdRng::seed_from_u64(17);
        let secret = SecretKey::random(&mut rng);
        let (committee, shares) = Committee::deal(&secret, 2, 3, &mut rng).unwrap();
        let element = Element::from_input(b"public").unwrap();
        let checked: Vec<_> = shares
            .iter()
            .map(|s| {
                committee
                    .check_partial(&element, &s.evaluate(&element, &mut rng))
                    .unwrap()
            })
            .collect();
        let (out, combined) = committee
            .evaluate_input_checked(b"public", &checked)
            .unwrap();
        assert_eq!(out, secret.evaluate(b"public").unwrap());
        assert_eq!(combined.used.len(), 2);
        // A repeated member counts once.
        assert!(matches!(
            committee.combine_checked(&element, &[checked[0], checked[0]]),
            Err(CombineError::NotEnough { valid: 1, .. })
        ));
        // Checked for another input: nothing counts.
        assert!(matches!(
            committee.evaluate_input_checked(b"other", &checked),
            Err(CombineError::NotEnough { valid: 0, .. })
        ));
        // Checked under another committee (same indices, another key): nothing counts.
        let (other, _) = Committee::deal(&SecretKey::random(&mut rng), 2, 3, &mut rng).unwrap();
        assert!(matches!(
            other.combine_checked(&element, &checked),
            Err(CombineError::NotEnough { valid: 0, .. })
        ));
    }

    #[test]
    fn classic_mode_is_threshold_one() {
        let mut rng = StdRng::seed_from_u64(14);
        let secret = SecretKey::random(&mut rng);
        let members: Vec<_> = (1..=3).map(|i| ShareIndex::new(i).unwrap()).collect();
        let committee = Committee::classic(secret.public_key(), members.clone()).unwrap();
        let req = BlindedRequest::new(b"x", &mut rng).unwrap();
        for m in members {
            let partial = KeyShare::new(m, &secret).evaluate(&req.blinded(), &mut rng);
            let (out, _) = req.finalize_threshold(&committee, &[partial]).unwrap();
            assert_eq!(out, secret.evaluate(b"x").unwrap());
        }
    }

    #[test]
    fn inconsistent_committees_are_refused() {
        let mut rng = StdRng::seed_from_u64(15);
        let secret = SecretKey::random(&mut rng);
        let (committee, _) = Committee::deal(&secret, 2, 4, &mut rng).unwrap();
        let mut shares = committee.shares.clone();
        let four = ShareIndex::new(4).unwrap();
        shares.insert(four, secret.public_key().element());
        assert_eq!(
            Committee::new(2, committee.public_key(), shares.clone()),
            Err(CommitteeError::Inconsistent(four))
        );
        let other = SecretKey::random(&mut rng).public_key();
        assert_eq!(
            Committee::new(2, other, committee.shares.clone()),
            Err(CommitteeError::PublicKeyMismatch)
        );
        assert!(matches!(
            Committee::new(5, committee.public_key(), committee.shares.clone()),
            Err(CommitteeError::BadThreshold { .. })
        ));
        assert!(matches!(
            Committee::new(1, committee.public_key(), BTreeMap::new()),
            Err(CommitteeError::BadSize(0))
        ));
    }

    proptest! {
        #[test]
        fn partial_decoder_round_trips_and_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120), seed in any::<u64>()) {
            let _ = PartialEvaluation::from_bytes(&bytes);
            let mut rng = StdRng::seed_from_u64(seed);
            let share = KeyShare::new(ShareIndex::new(3).unwrap(), &SecretKey::random(&mut rng));
            let blinded = BlindedRequest::new(b"p", &mut rng).unwrap().blinded();
            let p = share.evaluate(&blinded, &mut rng);
            prop_assert_eq!(PartialEvaluation::from_bytes(&p.to_bytes()).unwrap(), p);
        }
    }
}
