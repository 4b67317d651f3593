//! Resharing: a committee's key moves to a new committee (members added or removed, threshold
//! changed) while the key and its public key stay the same. Refresh is resharing to the same
//! members and threshold: the same key under new shares, which do not combine with the old ones.
//!
//! The dealers are a set `D` of at least `t` old members. Dealer `i` draws a polynomial `g_i` of
//! degree `t' − 1` with `g_i(0) = λ_i·k_i`, where `λ_i` is its Lagrange coefficient at zero within
//! `D`; it publishes Feldman commitments to `g_i` and sends `g_i(j)` to each new member `j`.
//! Anyone checks that `C_{i,0} = λ_i·Y_i` ([`Resharing::verify_commitment`]), so no dealer can
//! change the key. New member `j`'s share is `k'_j = Σ_i g_i(j)`, and `Σ_i g_i(0) = Σ_i λ_i·k_i
//! = k`. After a resharing, old shares are useless to the new committee: they lie on another
//! polynomial.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::{Scalar, constants::RISTRETTO_BASEPOINT_POINT as G};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use keyward_crypto::{DecodeError, Reader, SecretBytes, Writer};

use crate::{
    dkg::{SharePart, SharingError, check_committers, check_parts},
    group::Element,
    poly::{Polynomial, commitment_at, decode_elements, encode_elements, points, sum_of_sharings},
    threshold::{Committee, CommitteeError, KeyShare, MAX_MEMBERS, ShareIndex, lagrange},
};

/// A dealer's public commitments `C_k` to its resharing polynomial; `C_0` must be `λ_i·Y_i`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshareCommitment(Vec<Element>);

impl ReshareCommitment {
    /// The encoding: `u16 t' || C_0 .. C_{t'−1}` (32 bytes each).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        encode_elements(&mut w, &self.0);
        w.finish()
    }

    /// Decodes [`ReshareCommitment::to_bytes`].
    ///
    /// # Errors
    /// A [`DecodeError`] for a malformed field or trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let coefficients = decode_elements(
            &mut r,
            1,
            "a resharing commitment has 1..=1024 coefficients",
        )?;
        r.finish()?;
        Ok(Self(coefficients))
    }

    /// Whether `part` is this polynomial's value at `recipient`. Anyone can run this on a
    /// revealed part.
    pub fn verify_part(&self, recipient: ShareIndex, part: &SharePart) -> bool {
        part.scalar() * G == commitment_at(&points(&self.0), recipient)
    }
}

/// One resharing of an old committee's key to a new member set and threshold. Valid by
/// construction: the dealers are at least `t` old members, and `1 ≤ t' ≤ n' ≤ MAX_MEMBERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resharing {
    old: Committee,
    dealers: Vec<ShareIndex>,
    threshold: u16,
    members: BTreeSet<ShareIndex>,
}

impl Resharing {
    /// Checks and builds a resharing of `old`'s key by `dealers` to `members` with `threshold`.
    /// The new threshold may be 1 (every new member then holds the whole key: classic mode).
    ///
    /// # Errors
    /// [`SharingError::NotAMember`] for a dealer outside `old`; [`SharingError::TooFewDealers`];
    /// [`SharingError::Params`] for a bad new threshold or member count.
    pub fn new(
        old: Committee,
        dealers: BTreeSet<ShareIndex>,
        threshold: u16,
        members: BTreeSet<ShareIndex>,
    ) -> Result<Self, SharingError> {
        if let Some(stranger) = dealers
            .iter()
            .find(|d| old.verification_share(**d).is_none())
        {
            return Err(SharingError::NotAMember(*stranger));
        }
        if dealers.len() < usize::from(old.threshold()) {
            return Err(SharingError::TooFewDealers {
                dealers: dealers.len(),
                needed: old.threshold(),
            });
        }
        if members.is_empty() || members.len() > MAX_MEMBERS {
            return Err(CommitteeError::BadSize(members.len()).into());
        }
        if threshold == 0 || usize::from(threshold) > members.len() {
            return Err(CommitteeError::BadThreshold {
                threshold,
                members: members.len(),
            }
            .into());
        }
        Ok(Self {
            old,
            dealers: dealers.into_iter().collect(),
            threshold,
            members,
        })
    }

    /// A refresh: the same members and threshold, all of them dealing.
    pub fn refresh(committee: Committee) -> Self {
        let members: BTreeSet<ShareIndex> = committee.members().collect();
        let threshold = committee.threshold();
        Self::new(committee, members.clone(), threshold, members)
            .expect("a committee is a valid resharing of itself")
    }

    /// The new members, ascending.
    pub fn members(&self) -> &BTreeSet<ShareIndex> {
        &self.members
    }

    /// The dealers, ascending.
    pub fn dealers(&self) -> &[ShareIndex] {
        &self.dealers
    }

    fn lambda(&self, dealer: ShareIndex) -> Scalar {
        lagrange(Scalar::ZERO, dealer, &self.dealers)
    }

    fn check_dealer(&self, dealer: ShareIndex) -> Result<(), SharingError> {
        if self.dealers.contains(&dealer) {
            Ok(())
        } else {
            Err(SharingError::NotAMember(dealer))
        }
    }

    /// Dealer `share.index()`'s commitment and its part for every new member, its polynomial
    /// drawn from `seed`: the same seed always gives the same messages.
    ///
    /// # Errors
    /// [`SharingError::NotAMember`] if the share's holder is not a dealer.
    pub fn deal(
        &self,
        share: &KeyShare,
        seed: &SecretBytes<32>,
    ) -> Result<(ReshareCommitment, BTreeMap<ShareIndex, SharePart>), SharingError> {
        self.check_dealer(share.index())?;
        let mut rng = ChaCha20Rng::from_seed(*seed.expose());
        let polynomial = Polynomial::random(
            self.lambda(share.index()) * share.scalar(),
            self.threshold,
            &mut rng,
        );
        let commitments = polynomial
            .commitments()
            .expect("λ_i·k_i is nonzero for a nonzero share");
        let parts = self
            .members
            .iter()
            .map(|j| (*j, SharePart::new(polynomial.at(*j))))
            .collect();
        Ok((ReshareCommitment(commitments), parts))
    }

    /// Checks that `commitment` is a valid one from `dealer`: `t'` coefficients, and
    /// `C_0 = λ_dealer·Y_dealer`, so the dealer passes on exactly its share of the key.
    ///
    /// # Errors
    /// [`SharingError::NotAMember`] or [`SharingError::BadCommitment`].
    pub fn verify_commitment(
        &self,
        dealer: ShareIndex,
        commitment: &ReshareCommitment,
    ) -> Result<(), SharingError> {
        self.check_dealer(dealer)?;
        let bad = |reason| Err(SharingError::BadCommitment { dealer, reason });
        if commitment.0.len() != usize::from(self.threshold) {
            return bad("its length is not the new threshold");
        }
        let y = self
            .old
            .verification_share(dealer)
            .expect("dealers are old members");
        if commitment.0[0].0 != self.lambda(dealer) * y.0 {
            return bad("it does not commit to the dealer's share of the key");
        }
        Ok(())
    }

    /// The new committee, from every dealer's commitment: the old public key, threshold `t'`,
    /// and `Y'_j = Σ_i Σ_k j^k·C_{i,k}`. Every node derives it from public data.
    ///
    /// # Errors
    /// [`SharingError::WrongCommitters`], [`SharingError::BadCommitment`], or
    /// [`SharingError::Params`] for a degenerate result.
    pub fn committee(
        &self,
        commitments: &BTreeMap<ShareIndex, ReshareCommitment>,
    ) -> Result<Committee, SharingError> {
        check_committers(&self.dealers.iter().copied().collect(), commitments)?;
        for (dealer, c) in commitments {
            self.verify_commitment(*dealer, c)?;
        }
        let (_, shares) = sum_of_sharings(
            self.threshold,
            commitments.values().map(|c| &c.0[..]),
            &self.members,
        )?;
        Ok(Committee::new(
            self.threshold,
            self.old.public_key(),
            shares,
        )?)
    }

    /// New member `me`'s share and the new committee, from every dealer's commitment and part.
    /// Every part is checked; all bad ones are named.
    ///
    /// # Errors
    /// [`SharingError::NotAMember`] if `me` is not a new member; [`SharingError::MissingParts`] or
    /// [`SharingError::BadParts`]; the errors of [`Resharing::committee`].
    pub fn finish(
        &self,
        me: ShareIndex,
        commitments: &BTreeMap<ShareIndex, ReshareCommitment>,
        parts: &BTreeMap<ShareIndex, SharePart>,
    ) -> Result<(KeyShare, Committee), SharingError> {
        if !self.members.contains(&me) {
            return Err(SharingError::NotAMember(me));
        }
        let committee = self.committee(commitments)?;
        check_parts(commitments, parts, |c, part| c.verify_part(me, part))?;
        let sum: Scalar = commitments.keys().map(|d| parts[d].scalar()).sum();
        let share = KeyShare::from_scalar(me, sum).ok_or(SharingError::BadParts(Vec::new()))?;
        Ok((share, committee))
    }
}
