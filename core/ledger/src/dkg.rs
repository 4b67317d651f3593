//! DKG entries (kinds 18–20, PROTOCOL §16.10): in threshold mode (genesis `key_threshold ≥ 2`) an
//! epoch's committee creates its MasterKey with `keyward_threshold::dkg` on the ledger, so the
//! key never exists in one place.
//!
//! 1. Each member posts a [`DkgCommit`]: its public commitment, checked by every node.
//! 2. Once every member has committed, each posts a [`DkgDeal`]: one `share-part` envelope per
//!    other member, sealed to that member's registered channel key. Inside is the part and the
//!    dealer's signature over it ([`part_message`]), so that the recipient can reveal it.
//! 3. When every deal is in, the registry derives the epoch's committee from the commitments and
//!    the epoch is created, pending. Each member opens its parts, checks them against the
//!    commitments and accepts the epoch (`EpochAccept`) once its share is sealed; or, for a part
//!    that does not match, posts a [`Complaint`] revealing the part and the dealer's signature.
//!    Every node checks the complaint; a valid one abandons the attempt, and the next attempt runs
//!    without the dealer it names.

use keyward_crypto::{
    ChannelKeypair, ChannelPublicKey, DecodeError, Envelope, EnvelopeError, EnvelopePurpose,
    IdentityKeypair, IdentityPublicKey, IdentitySignature, Reader, SecretBytes, SigningPurpose,
    Writer,
};
use keyward_hierarchy::Epoch;
use keyward_threshold::{DkgCommitment, ReshareCommitment, ShareIndex, SharePart};
use thiserror::Error;

use crate::codec::decode_envelope;
use crate::entry::EntryHash;
use crate::epoch::{MAX_COMMITTEE, MAX_SECRET_ENVELOPE_LEN};

/// Longest encoded commitment: `u16 t || t·32 || 64` for `t ≤ MAX_COMMITTEE`.
pub const MAX_COMMITMENT_LEN: usize = 2 + MAX_COMMITTEE * 32 + 64;
/// Longest encoded resharing commitment: `u16 t' || t'·32` for `t' ≤ MAX_COMMITTEE`.
pub const MAX_RESHARE_COMMITMENT_LEN: usize = 2 + MAX_COMMITTEE * 32;

/// What a run shares: a new epoch's MasterKey (a DKG), or an existing epoch's, moved to a new
/// committee or refreshed (a resharing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Sharing {
    /// A DKG creating an epoch (kinds 18–20).
    Dkg,
    /// A resharing of an epoch (kinds 21–22).
    Reshare,
}

impl Sharing {
    /// The label that domain-separates its parts, so that a part signed for one kind of run is
    /// never evidence in the other.
    fn label(self) -> &'static [u8] {
        match self {
            Self::Dkg => b"keyward/v1/ledger/share-part",
            Self::Reshare => b"keyward/v1/ledger/reshare-part",
        }
    }
}

/// Which run an entry belongs to: what it shares, the epoch, and the attempt. A DKG's attempts
/// count from 0 and go up after each upheld complaint; an epoch's resharings share one counter,
/// so no two runs ever have the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId {
    /// DKG or resharing (implied by the entry's kind; not encoded).
    pub sharing: Sharing,
    /// The epoch being created or reshared.
    pub epoch: Epoch,
    /// The attempt.
    pub attempt: u16,
}

impl RunId {
    fn encode(self, w: &mut Writer) {
        w.u64(self.epoch.0).u16(self.attempt);
    }

    fn decode(r: &mut Reader<'_>, sharing: Sharing) -> Result<Self, DecodeError> {
        Ok(Self {
            sharing,
            epoch: Epoch(r.u64("epoch")?),
            attempt: r.u16("attempt")?,
        })
    }
}

/// The additional data a part envelope binds: `var16(label) || genesis || u64(epoch) ||
/// u16(attempt) || u16(dealer) || recipient identity`, where the label is
/// `keyward/v1/ledger/share-part` in a DKG and `keyward/v1/ledger/reshare-part` in a resharing.
pub fn part_aad(
    genesis: &EntryHash,
    run: RunId,
    dealer: ShareIndex,
    recipient: &IdentityPublicKey,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(run.sharing.label()).raw(&genesis.0);
    run.encode(&mut w);
    w.u16(dealer.get()).raw(&recipient.to_bytes());
    w.finish()
}

/// What a dealer signs for each part (purpose `share-part`): `var16(label) || genesis ||
/// u64(epoch) || u16(attempt) || u16(dealer) || u16(recipient) || part`, the label as in
/// [`part_aad`]. Anyone can check the signature on a part revealed in a complaint.
pub fn part_message(
    genesis: &EntryHash,
    run: RunId,
    dealer: ShareIndex,
    recipient: ShareIndex,
    part: &[u8; 32],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(run.sharing.label()).raw(&genesis.0);
    run.encode(&mut w);
    w.u16(dealer.get()).u16(recipient.get()).raw(part);
    w.finish()
}

/// One member as a dealer or recipient sees it: share index, identity and channel key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its share index.
    pub index: ShareIndex,
    /// Its identity.
    pub id: IdentityPublicKey,
    /// Its registered channel key.
    pub channel: ChannelPublicKey,
}

/// Seals `part` for `recipient` as `dealer` (the author's index), with the dealer's signature
/// inside.
///
/// # Errors
/// [`EnvelopeError::DegenerateRecipient`] for a degenerate channel key.
pub fn seal_part(
    author: &IdentityKeypair,
    genesis: &EntryHash,
    run: RunId,
    dealer: ShareIndex,
    recipient: &Member,
    part: &SharePart,
    rng: &mut impl keyward_crypto::Rng,
) -> Result<Envelope, EnvelopeError> {
    let bytes = part.to_bytes();
    let signature = author.sign(
        SigningPurpose::SharePart,
        &part_message(genesis, run, dealer, recipient.index, bytes.expose()),
        rng,
    );
    let mut plaintext = zeroize::Zeroizing::new([0u8; 96]);
    plaintext[..32].copy_from_slice(bytes.expose());
    plaintext[32..].copy_from_slice(&signature.to_bytes());
    Envelope::seal(
        author,
        &recipient.channel,
        EnvelopePurpose::SharePart,
        &part_aad(genesis, run, dealer, &recipient.id),
        plaintext.as_slice(),
        rng,
    )
}

/// Why a member could not use the part a dealer sent it.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum PartError {
    /// The envelope does not open with this member's channel key, or is not from the dealer.
    #[error("the part envelope does not open: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The envelope names another ledger, run, dealer or recipient.
    #[error("the part envelope is for another run, dealer or recipient")]
    WrongContext,
    /// The plaintext is not a part with the dealer's valid signature. Not provable to others
    /// (PROTOCOL §16.10 lists this limit).
    #[error("the envelope does not hold a part signed by its dealer")]
    Unsigned,
}

/// A part opened by its recipient, with the dealer's signature that makes it revealable.
#[derive(Debug)]
pub struct OpenedPart {
    /// The part.
    pub part: SharePart,
    /// The dealer's signature over [`part_message`].
    pub signature: IdentitySignature,
}

/// Opens the part `dealer` sealed to `me` in `run`, checking its context and the dealer's
/// signature. Whether the part matches the dealer's commitment is the caller's next check.
///
/// # Errors
/// A [`PartError`].
pub fn open_part(
    channel: &ChannelKeypair,
    genesis: &EntryHash,
    run: RunId,
    dealer: (ShareIndex, &IdentityPublicKey),
    me: (ShareIndex, &IdentityPublicKey),
    envelope: &Envelope,
) -> Result<OpenedPart, PartError> {
    if envelope.sender() != *dealer.1 {
        return Err(PartError::WrongContext);
    }
    let opened = channel.open(envelope, EnvelopePurpose::SharePart)?;
    if opened.aad != part_aad(genesis, run, dealer.0, me.1) {
        return Err(PartError::WrongContext);
    }
    let plaintext: &[u8] = &opened.plaintext;
    if plaintext.len() != 96 {
        return Err(PartError::Unsigned);
    }
    let bytes = SecretBytes::<32>::from_slice(&plaintext[..32]).ok_or(PartError::Unsigned)?;
    let part = SharePart::from_bytes(&bytes).map_err(|_| PartError::Unsigned)?;
    let signature = IdentitySignature::from_bytes(
        &plaintext[32..].try_into().expect("64 bytes after the part"),
    )
    .map_err(|_| PartError::Unsigned)?;
    dealer
        .1
        .verify(
            SigningPurpose::SharePart,
            &part_message(genesis, run, dealer.0, me.0, bytes.expose()),
            &signature,
        )
        .map_err(|_| PartError::Unsigned)?;
    Ok(OpenedPart { part, signature })
}

/// Kind 18: a member's DKG commitment for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgCommit {
    /// The run.
    pub run: RunId,
    /// The commitment.
    pub commitment: DkgCommitment,
}

impl DkgCommit {
    pub(crate) fn encode(&self, w: &mut Writer) {
        self.run.encode(w);
        w.var16(&self.commitment.to_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            run: RunId::decode(r, Sharing::Dkg)?,
            commitment: DkgCommitment::from_bytes(r.var16("commitment", MAX_COMMITMENT_LEN)?)?,
        })
    }
}

/// Kind 19: a member's parts for every other member of the run, in share-index order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DkgDeal {
    /// The run.
    pub run: RunId,
    /// One `share-part` envelope per other member, ascending by share index.
    pub parts: Vec<Envelope>,
}

impl DkgDeal {
    pub(crate) fn encode(&self, w: &mut Writer) {
        self.run.encode(w);
        encode_parts(w, &self.parts);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let run = RunId::decode(r, Sharing::Dkg)?;
        let parts = decode_parts(r, MAX_COMMITTEE - 1)?;
        Ok(Self { run, parts })
    }

    /// The stateless rules: every part is a `share-part` envelope sent and signed by the author.
    /// Which member each is sealed to, and for what, needs the registry.
    pub(crate) fn check(&self, author: &IdentityPublicKey) -> Result<(), crate::Rejected> {
        check_parts(&self.parts, author)
    }
}

fn encode_parts(w: &mut Writer, parts: &[Envelope]) {
    w.u16(u16::try_from(parts.len()).expect("bounded by MAX_COMMITTEE"));
    for envelope in parts {
        w.var32(&envelope.to_bytes());
    }
}

fn decode_parts(r: &mut Reader<'_>, max: usize) -> Result<Vec<Envelope>, DecodeError> {
    let n = usize::from(r.u16("part count")?);
    if n == 0 || n > max {
        return Err(DecodeError::Invalid {
            field: "part count",
            reason: "a deal has one part per recipient (1..=63 in a DKG, 1..=64 in a resharing)",
        });
    }
    (0..n)
        .map(|_| decode_envelope(r, "part", MAX_SECRET_ENVELOPE_LEN))
        .collect()
}

/// Every part is a `share-part` envelope sent and signed by the author.
fn check_parts(parts: &[Envelope], author: &IdentityPublicKey) -> Result<(), crate::Rejected> {
    for envelope in parts {
        let fine = envelope.purpose() == EnvelopePurpose::SharePart
            && envelope.sender() == *author
            && envelope.verify_sender().is_ok();
        if !fine {
            return Err(crate::Rejected::BadSharePart {
                member: (*author).into(),
                reason: "not a share-part envelope sent and signed by the dealer",
            });
        }
    }
    Ok(())
}

/// Kind 21: an old member of an epoch's committee reshares its share to the resharing's new
/// members: its public commitment (`C_0` must be its verification share) and one `share-part`
/// envelope per new member, in share-index order (itself included when it is one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReshareDeal {
    /// The run (its `sharing` is [`Sharing::Reshare`]).
    pub run: RunId,
    /// The commitment to its resharing polynomial.
    pub commitment: ReshareCommitment,
    /// One part per new member, ascending by share index.
    pub parts: Vec<Envelope>,
}

impl ReshareDeal {
    pub(crate) fn encode(&self, w: &mut Writer) {
        self.run.encode(w);
        w.var16(&self.commitment.to_bytes());
        encode_parts(w, &self.parts);
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            run: RunId::decode(r, Sharing::Reshare)?,
            commitment: ReshareCommitment::from_bytes(
                r.var16("commitment", MAX_RESHARE_COMMITMENT_LEN)?,
            )?,
            parts: decode_parts(r, MAX_COMMITTEE)?,
        })
    }

    /// The stateless rules, as for a DKG deal.
    pub(crate) fn check(&self, author: &IdentityPublicKey) -> Result<(), crate::Rejected> {
        check_parts(&self.parts, author)
    }
}

/// Kinds 20 (DKG) and 22 (resharing): a member reveals the part a dealer sent it, with the
/// dealer's signature, because the part does not match the dealer's commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Complaint {
    /// The run (its `sharing` is implied by the entry's kind).
    pub run: RunId,
    /// The accused dealer (in a resharing, its index in the old committee).
    pub dealer: ShareIndex,
    /// The revealed part.
    pub part: [u8; 32],
    /// The dealer's signature over [`part_message`] for the author's index.
    pub signature: IdentitySignature,
}

impl Complaint {
    pub(crate) fn encode(&self, w: &mut Writer) {
        self.run.encode(w);
        w.u16(self.dealer.get())
            .raw(&self.part)
            .raw(&self.signature.to_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>, sharing: Sharing) -> Result<Self, DecodeError> {
        let run = RunId::decode(r, sharing)?;
        let dealer = ShareIndex::new(r.u16("dealer")?).ok_or(DecodeError::Invalid {
            field: "dealer",
            reason: "zero",
        })?;
        Ok(Self {
            run,
            dealer,
            part: r.array("part")?,
            signature: IdentitySignature::from_bytes(&r.array("signature")?)?,
        })
    }
}
