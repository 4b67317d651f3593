//! Decoding helpers shared by the entry bodies: every set is strictly ascending and every text
//! is a valid id, so each body has exactly one encoding.

use std::collections::BTreeSet;

use keyward_crypto::{DecodeError, Envelope, EnvelopeError, IdentityPublicKey, Reader, Writer};

pub(crate) fn text<'a>(bytes: &'a [u8], field: &'static str) -> Result<&'a str, DecodeError> {
    core::str::from_utf8(bytes).map_err(|_| DecodeError::Invalid {
        field,
        reason: "not UTF-8",
    })
}

pub(crate) fn ascending<T: Ord>(
    set: &BTreeSet<T>,
    next: &T,
    field: &'static str,
) -> Result<(), DecodeError> {
    match set.last() {
        Some(last) if last >= next => Err(DecodeError::Invalid {
            field,
            reason: "not strictly ascending",
        }),
        _ => Ok(()),
    }
}

pub(crate) fn encode_id(w: &mut Writer, id: &str) {
    w.var8(id.as_bytes());
}

pub(crate) fn decode_id<T>(
    r: &mut Reader<'_>,
    field: &'static str,
    parse: impl Fn(&str) -> Result<T, keyward_crypto::IdError>,
) -> Result<T, DecodeError> {
    parse(text(
        r.var8(field, keyward_crypto::ids::MAX_ID_LEN)?,
        field,
    )?)
    .map_err(|_| DecodeError::Invalid {
        field,
        reason: "not a valid id",
    })
}

pub(crate) fn decode_identity(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<IdentityPublicKey, DecodeError> {
    IdentityPublicKey::from_bytes(&r.array(field)?)
}

/// An envelope in a `var32` of at most `max` bytes.
pub(crate) fn decode_envelope(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
) -> Result<Envelope, DecodeError> {
    Envelope::from_bytes(r.var32(field, max)?).map_err(|e| match e {
        EnvelopeError::Malformed(d) => d,
        _ => DecodeError::Invalid {
            field,
            reason: "malformed envelope",
        },
    })
}

/// `n` distinct identities in the order given (a committee: order is share-index order).
pub(crate) fn decode_committee(
    r: &mut Reader<'_>,
    n: usize,
) -> Result<Vec<IdentityPublicKey>, DecodeError> {
    let mut committee = Vec::with_capacity(n);
    let mut seen = BTreeSet::new();
    for _ in 0..n {
        let member = decode_identity(r, "committee member")?;
        if !seen.insert(member) {
            return Err(DecodeError::Invalid {
                field: "committee",
                reason: "a member appears twice",
            });
        }
        committee.push(member);
    }
    Ok(committee)
}
