//! Resharing: a committee's key moves to a new committee (members added or removed, threshold
//! changed) while the key and its public key stay the same. Refresh is resharing to the same
//! members and threshold: the same key under new shares, which do not combine with the old ones.
//!
//! Each dealer `i` (an old member) draws a polynomial `g_i` of degree `t' − 1` with
//! `g_i(0) = k_i`, its own share; it publishes Feldman commitments to `g_i` and sends `g_i(j)` to
//! each new member `j`. Anyone checks that `C_{i,0} = Y_i` ([`Resharing::verify_commitment`]),
//! so no dealer can change the key. The dealers are chosen *after* dealing: any set `D` of at
//! least `t` valid dealings will do, so old members that are down do not stall the resharing.
//! New member `j`'s share is `k'_j = Σ_{i∈D} λ_i·g_i(j)` with `λ_i` the Lagrange coefficient at
//! zero within `D`, and `Σ λ_i·g_i(0) = Σ λ_i·k_i = k`. After a resharing, old shares are useless
//! to the new committee: they lie on another polynomial.

use std::collections::{BTreeMap, BTreeSet};

use curve25519_dalek::{Scalar, constants::RISTRETTO_BASEPOINT_POINT as G};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use keyward_crypto::{DecodeError, Reader, SecretBytes, Writer};

use crate::{
    dkg::{SharePart, SharingError, check_parts},
    group::Element,
    poly::{Polynomial, commitment_at, decode_elements, encode_elements, points, sum_of_sharings},
    threshold::{Committee, KeyShare, ShareIndex, check_shape, lagrange},
};

/// A dealer's public commitments `C_k` to its resharing polynomial; `C_0` must be its
/// verification share `Y_i`.
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
/// construction: `1 ≤ t' ≤ n' ≤ MAX_MEMBERS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resharing {
    old: Committee,
    threshold: u16,
    members: BTreeSet<ShareIndex>,
}

impl Resharing {
    /// Checks and builds a resharing of `old`'s key to `members` with `threshold`. The new
    /// threshold may be 1 (every new member then holds the whole key: classic mode).
    ///
    /// # Errors
    /// [`SharingError::Params`] for a bad new threshold or member count.
    pub fn new(
        old: Committee,
        threshold: u16,
        members: BTreeSet<ShareIndex>,
    ) -> Result<Self, SharingError> {
        check_shape(threshold, members.len())?;
        Ok(Self {
            old,
            threshold,
            members,
        })
    }

    /// A refresh: the same members and threshold.
    pub fn refresh(committee: Committee) -> Self {
        let members: BTreeSet<ShareIndex> = committee.members().collect();
        let threshold = committee.threshold();
        Self::new(committee, threshold, members)
            .expect("a committee is a valid resharing of itself")
    }

    /// The old committee.
    pub fn old(&self) -> &Committee {
        &self.old
    }

    /// The new members, ascending.
    pub fn members(&self) -> &BTreeSet<ShareIndex> {
        &self.members
    }

    /// The new threshold.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// Dealer `share.index()`'s commitment and its part for every new member, its polynomial
    /// drawn from `seed`: the same seed always gives the same messages.
    ///
    /// # Errors
    /// [`SharingError::NotAMember`] if the share is not one of the old committee's.
    pub fn deal(
        &self,
        share: &KeyShare,
        seed: &SecretBytes<32>,
    ) -> Result<(ReshareCommitment, BTreeMap<ShareIndex, SharePart>), SharingError> {
        if self.old.verification_share(share.index()) != Some(share.verification_share()) {
            return Err(SharingError::NotAMember(share.index()));
        }
        let mut rng = ChaCha20Rng::from_seed(*seed.expose());
        let polynomial = Polynomial::random(share.scalar(), self.threshold, &mut rng);
        let commitments = polynomial.commitments().expect("a key share is nonzero");
        let parts = self
            .members
            .iter()
            .map(|j| (*j, SharePart::new(polynomial.at(*j))))
            .collect();
        Ok((ReshareCommitment(commitments), parts))
    }

    /// Checks that `commitment` is a valid one from `dealer`: `t'` coefficients, and
    /// `C_0 = Y_dealer`, so the dealer passes on exactly its share of the key.
    ///
    /// # Errors
    /// [`SharingError::NotAMember`] or [`SharingError::BadCommitment`].
    pub fn verify_commitment(
        &self,
        dealer: ShareIndex,
        commitment: &ReshareCommitment,
    ) -> Result<(), SharingError> {
        let y = self
            .old
            .verification_share(dealer)
            .ok_or(SharingError::NotAMember(dealer))?;
        let bad = |reason| Err(SharingError::BadCommitment { dealer, reason });
        if commitment.0.len() != usize::from(self.threshold) {
            return bad("its length is not the new threshold");
        }
        if commitment.0[0] != y {
            return bad("it does not commit to the dealer's share of the key");
        }
        Ok(())
    }

    /// Each chosen dealer's Lagrange coefficient at zero within the chosen set (the keys of
    /// `commitments`), which must hold at least the old threshold of dealers.
    fn weights<T>(
        &self,
        commitments: &BTreeMap<ShareIndex, T>,
    ) -> Result<BTreeMap<ShareIndex, Scalar>, SharingError> {
        if commitments.len() < usize::from(self.old.threshold()) {
            return Err(SharingError::TooFewDealers {
                dealers: commitments.len(),
                needed: self.old.threshold(),
            });
        }
        let dealers: Vec<ShareIndex> = commitments.keys().copied().collect();
        Ok(dealers
            .iter()
            .map(|d| (*d, lagrange(Scalar::ZERO, *d, &dealers)))
            .collect())
    }

    /// The new committee, from the chosen dealers' commitments (at least `t` of them): the old
    /// public key, threshold `t'`, and `Y'_j = Σ_i λ_i·Σ_k j^k·C_{i,k}`. Every node derives it
    /// from public data.
    ///
    /// # Errors
    /// [`SharingError::TooFewDealers`], [`SharingError::NotAMember`],
    /// [`SharingError::BadCommitment`], or [`SharingError::Params`] for a degenerate result.
    pub fn committee(
        &self,
        commitments: &BTreeMap<ShareIndex, ReshareCommitment>,
    ) -> Result<Committee, SharingError> {
        let weights = self.weights(commitments)?;
        for (dealer, c) in commitments {
            self.verify_commitment(*dealer, c)?;
        }
        let weighted: Vec<Vec<Element>> = commitments
            .iter()
            .map(|(d, c)| c.0.iter().map(|e| Element(weights[d] * e.0)).collect())
            .collect();
        let (_, shares) = sum_of_sharings(
            self.threshold,
            weighted.iter().map(Vec::as_slice),
            &self.members,
        )?;
        Ok(Committee::new(
            self.threshold,
            self.old.public_key(),
            shares,
        )?)
    }

    /// New member `me`'s share and the new committee, from the chosen dealers' commitments and
    /// parts. Every part is checked; all bad ones are named.
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
        let weights = self.weights(commitments)?;
        let sum: Scalar = commitments
            .keys()
            .map(|d| weights[d] * parts[d].scalar())
            .sum();
        let share = KeyShare::from_scalar(me, sum).ok_or(SharingError::BadParts(Vec::new()))?;
        Ok((share, committee))
    }
}
