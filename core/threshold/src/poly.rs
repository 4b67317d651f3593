//! Secret polynomials and their Feldman commitments, shared by the trusted dealer
//! ([`crate::Committee::deal`]) and resharing ([`crate::reshare`]).

use curve25519_dalek::{
    RistrettoPoint, Scalar, constants::RISTRETTO_BASEPOINT_POINT as G, traits::Identity,
};
use zeroize::{Zeroize, ZeroizeOnDrop};

use keyward_crypto::{DecodeError, Reader, Writer};

use std::collections::{BTreeMap, BTreeSet};

use crate::{
    group::Element,
    threshold::{CommitteeError, MAX_MEMBERS, ShareIndex},
};

/// A secret polynomial `f(x) = c_0 + c_1·x + … + c_{t−1}·x^{t−1}`. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct Polynomial(Vec<Scalar>);

impl Polynomial {
    /// A random polynomial of degree `threshold − 1` with `f(0) = constant`. Every other
    /// coefficient is nonzero, so each commitment is a valid (non-identity) [`Element`].
    pub(crate) fn random(
        constant: Scalar,
        threshold: u16,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Self {
        let mut coefficients = vec![constant];
        while coefficients.len() < usize::from(threshold) {
            let c = Scalar::random(rng);
            if c != Scalar::ZERO {
                coefficients.push(c);
            }
        }
        Self(coefficients)
    }

    /// `f(i)`, by Horner's rule.
    pub(crate) fn at(&self, i: ShareIndex) -> Scalar {
        let x = i.scalar();
        self.0.iter().rev().fold(Scalar::ZERO, |acc, c| acc * x + c)
    }

    /// The Feldman commitments `c_k·G`, or `None` if `f(0) = 0` (the identity is no element).
    pub(crate) fn commitments(&self) -> Option<Vec<Element>> {
        self.0.iter().map(|c| Element::new(c * G)).collect()
    }
}

/// `Σ_k i^k·C_k`: the commitment to `f(i)` that the commitments `C_k = c_k·G` determine.
pub(crate) fn commitment_at(commitments: &[RistrettoPoint], i: ShareIndex) -> RistrettoPoint {
    let x = i.scalar();
    commitments
        .iter()
        .rev()
        .fold(RistrettoPoint::identity(), |acc, c| acc * x + c)
}

/// Writes `u16(count) || count × 32-byte element`.
pub(crate) fn encode_elements(w: &mut Writer, elements: &[Element]) {
    w.u16(u16::try_from(elements.len()).expect("at most MAX_MEMBERS"));
    for e in elements {
        w.raw(&e.to_bytes());
    }
}

/// Reads [`encode_elements`]'s encoding of `min..=MAX_MEMBERS` elements.
pub(crate) fn decode_elements(
    r: &mut Reader<'_>,
    min: usize,
    reason: &'static str,
) -> Result<Vec<Element>, DecodeError> {
    let n = usize::from(r.u16("commitment length")?);
    if !(min..=MAX_MEMBERS).contains(&n) {
        return Err(DecodeError::Invalid {
            field: "commitment length",
            reason,
        });
    }
    (0..n)
        .map(|_| Element::from_bytes(&r.array("coefficient commitment")?))
        .collect()
}

/// For a sum of sharings, each given by its `threshold` Feldman commitments: the commitment to
/// the sum's constant term, and each member's verification share `Σ_d Σ_k j^k·C_{d,k}`. The
/// commitments are summed first, so each share costs one evaluation.
///
/// # Errors
/// [`CommitteeError::Inconsistent`] for a share at the identity (probability 2^-252 for honest
/// dealers).
pub(crate) fn sum_of_sharings<'a>(
    threshold: u16,
    sharings: impl IntoIterator<Item = &'a [Element]>,
    members: &BTreeSet<ShareIndex>,
) -> Result<(RistrettoPoint, BTreeMap<ShareIndex, Element>), CommitteeError> {
    let mut group = vec![RistrettoPoint::identity(); usize::from(threshold)];
    for commitments in sharings {
        for (g, c) in group.iter_mut().zip(commitments) {
            *g += c.0;
        }
    }
    let shares = members
        .iter()
        .map(|j| {
            Element::new(commitment_at(&group, *j))
                .map(|y| (*j, y))
                .ok_or(CommitteeError::Inconsistent(*j))
        })
        .collect::<Result<_, _>>()?;
    Ok((group[0], shares))
}

/// The points of a list of commitments.
pub(crate) fn points(commitments: &[Element]) -> Vec<RistrettoPoint> {
    commitments.iter().map(|c| c.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::OsRng;

    #[test]
    fn commitments_open_every_point() {
        let f = Polynomial::random(Scalar::from(7u64), 4, &mut OsRng);
        let c = f.commitments().expect("nonzero constant");
        assert_eq!(c.len(), 4);
        for i in 1..=9 {
            let i = ShareIndex::new(i).expect("nonzero");
            assert_eq!(commitment_at(&points(&c), i), f.at(i) * G);
        }
        assert_eq!(c[0].0, Scalar::from(7u64) * G);
    }
}
