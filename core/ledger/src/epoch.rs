//! Epoch entries (kinds 5–7, PROTOCOL §16.6): a gatekeeper creates an epoch and hands its secret
//! to the rest of the founding committee; holders hand epoch secrets to other admitted
//! gatekeepers; a recipient accepts once its core has opened and sealed the secret.
//!
//! Secrets travel as `epoch-secret` envelopes inside the entries. Their framing, sender and
//! additional data are checked by every node ([`crate::Genesis::verify`]); only the recipient
//! can open one ([`open_epoch_secret`]).

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use keyward_crypto::{
    ChannelKeypair, ChannelPublicKey, DecodeError, Envelope, EnvelopeError, EnvelopePurpose,
    IdentityKeypair, IdentityPublicKey, Reader, SecretBytes, Writer,
};
use keyward_hierarchy::{Epoch, EpochRecord, MasterKey};
use keyward_threshold::{Committee, PublicKey, ShareIndex};

use crate::codec::{ascending, decode_committee, decode_envelope, decode_identity};
use crate::entry::EntryHash;
use crate::reject::Rejected;

/// Most gatekeepers in an epoch's founding committee.
pub const MAX_COMMITTEE: usize = 64;
/// Longest encoded envelope in an epoch entry (one carries a 32-byte secret in about 290).
pub const MAX_SECRET_ENVELOPE_LEN: usize = 1024;
/// Most epochs one handoff or accept entry lists.
pub const MAX_EPOCHS_PER_ENTRY: usize = 256;

/// The additional data an epoch-secret envelope binds:
/// `var16("keyward/v1/ledger/epoch-secret") || genesis hash || u64(epoch) || recipient identity`.
/// It ties the envelope to this ledger, this epoch and this recipient, so it cannot be replayed
/// into another handoff.
pub fn epoch_secret_aad(
    genesis: &EntryHash,
    epoch: Epoch,
    recipient: &IdentityPublicKey,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(b"keyward/v1/ledger/epoch-secret")
        .raw(&genesis.0)
        .u64(epoch.0)
        .raw(&recipient.to_bytes());
    w.finish()
}

fn seal_secret(
    author: &IdentityKeypair,
    genesis: &EntryHash,
    epoch: Epoch,
    master: &MasterKey,
    recipient: (IdentityPublicKey, ChannelPublicKey),
    rng: &mut impl keyward_crypto::Rng,
) -> Result<Envelope, EnvelopeError> {
    Envelope::seal(
        author,
        &recipient.1,
        EnvelopePurpose::EpochSecret,
        &epoch_secret_aad(genesis, epoch, &recipient.0),
        master.to_bytes().expose(),
        rng,
    )
}

/// The checks every node runs on an epoch-secret envelope: its purpose, that the entry's author
/// sent and signed it, and that it names this ledger, epoch and recipient.
fn check_envelope(
    envelope: &Envelope,
    author: &IdentityPublicKey,
    genesis: &EntryHash,
    epoch: Epoch,
    member: &IdentityPublicKey,
) -> Result<(), Rejected> {
    let bad = |reason| Rejected::BadSecretEnvelope {
        member: (*member).into(),
        reason,
    };
    if envelope.purpose() != EnvelopePurpose::EpochSecret {
        return Err(bad("not an epoch-secret envelope"));
    }
    if envelope.sender() != *author {
        return Err(bad("not sent by the entry's author"));
    }
    if envelope.aad() != epoch_secret_aad(genesis, epoch, member).as_slice() {
        return Err(bad(
            "additional data names another ledger, epoch or recipient",
        ));
    }
    envelope
        .verify_sender()
        .map_err(|_| bad("the sender's signature does not verify"))
}

fn encode_envelope(w: &mut Writer, envelope: &Envelope) {
    w.var32(&envelope.to_bytes());
}

/// Kind 5: a new epoch, its master public key, its founding committee and the secret sealed to
/// every member but the author, who is the first member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochCreate {
    /// The epoch's number: the next one.
    pub epoch: Epoch,
    /// The epoch's master public key `S_e`.
    pub master: PublicKey,
    /// The founding committee, in share-index order (member `i` is index `i + 1`); distinct, with
    /// the author first.
    pub committee: Vec<IdentityPublicKey>,
    /// The secret for `committee[1..]`, in the same order.
    pub envelopes: Vec<Envelope>,
    /// For every epoch after 0: the council's approved rotation proposal.
    pub proposal: Option<EntryHash>,
}

impl EpochCreate {
    /// The entry body that creates `epoch` with `master`, sealing it to each of `others`
    /// (identity and attested channel key) as the author.
    ///
    /// # Errors
    /// [`EnvelopeError::DegenerateRecipient`] for a degenerate channel key.
    pub fn new(
        author: &IdentityKeypair,
        genesis: &EntryHash,
        epoch: Epoch,
        master: &MasterKey,
        others: &[(IdentityPublicKey, ChannelPublicKey)],
        proposal: Option<EntryHash>,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Self, EnvelopeError> {
        let envelopes = others
            .iter()
            .map(|&member| seal_secret(author, genesis, epoch, master, member, rng))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            epoch,
            master: master.public_key(),
            committee: std::iter::once(author.public())
                .chain(others.iter().map(|m| m.0))
                .collect(),
            envelopes,
            proposal,
        })
    }

    /// The classic-mode public record: a threshold-1 committee in which member `i` holds share
    /// index `i + 1`, every verification share being `S_e`.
    pub fn record(&self) -> EpochRecord {
        let members: BTreeMap<ShareIndex, IdentityPublicKey> = (1..)
            .map(|i| ShareIndex::new(i).expect("indices start at 1"))
            .zip(self.committee.iter().copied())
            .collect();
        let committee = Committee::classic(self.master, members.keys().copied())
            .expect("decoding bounds the committee to 1..=MAX_COMMITTEE");
        EpochRecord::new(self.epoch, committee, members)
            .expect("the record lists the committee's members")
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u64(self.epoch.0)
            .raw(&self.master.to_bytes())
            .u16(u16::try_from(self.committee.len()).expect("committee bounded by MAX_COMMITTEE"));
        for member in &self.committee {
            w.raw(&member.to_bytes());
        }
        for envelope in &self.envelopes {
            encode_envelope(w, envelope);
        }
        match &self.proposal {
            None => w.u8(0),
            Some(p) => w.u8(1).raw(&p.0),
        };
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let epoch = Epoch(r.u64("epoch")?);
        let master = PublicKey::from_bytes(&r.array("master public key")?)?;
        let n = usize::from(r.u16("committee size")?);
        if n == 0 || n > MAX_COMMITTEE {
            return Err(DecodeError::Invalid {
                field: "committee size",
                reason: "a committee has 1..=64 members",
            });
        }
        let committee = decode_committee(r, n)?;
        let envelopes = (1..n)
            .map(|_| decode_envelope(r, "envelope", MAX_SECRET_ENVELOPE_LEN))
            .collect::<Result<_, _>>()?;
        let proposal = match r.u8("proposal flag")? {
            0 => None,
            1 => Some(EntryHash(r.array("proposal")?)),
            _ => {
                return Err(DecodeError::Invalid {
                    field: "proposal flag",
                    reason: "not 0 or 1",
                });
            }
        };
        if proposal.is_some() != (epoch.0 > 0) {
            return Err(DecodeError::Invalid {
                field: "proposal",
                reason: "epoch 0 names no proposal; every later epoch names its rotation",
            });
        }
        Ok(Self {
            epoch,
            master,
            committee,
            envelopes,
            proposal,
        })
    }

    /// The stateless rules: the author is the first member, and every envelope is for its
    /// member, from the author, for this ledger and epoch.
    pub(crate) fn check(
        &self,
        author: &IdentityPublicKey,
        genesis: &EntryHash,
    ) -> Result<(), Rejected> {
        if self.committee.first() != Some(author) {
            return Err(Rejected::WrongAuthor {
                kind: crate::Kind::EpochCreate,
                needs: "the committee's first member",
            });
        }
        for (envelope, member) in self.envelopes.iter().zip(&self.committee[1..]) {
            check_envelope(envelope, author, genesis, self.epoch, member)?;
        }
        Ok(())
    }
}

/// Kind 6: a holder hands the secrets of one or more epochs to another admitted gatekeeper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochHandoff {
    /// The gatekeeper receiving the secrets.
    pub recipient: IdentityPublicKey,
    /// One envelope per epoch (1..=[`MAX_EPOCHS_PER_ENTRY`]).
    pub secrets: BTreeMap<Epoch, Envelope>,
}

impl EpochHandoff {
    /// The entry body that hands `secrets` to `recipient` (identity and attested channel key).
    ///
    /// # Errors
    /// [`EnvelopeError::DegenerateRecipient`] for a degenerate channel key.
    pub fn new(
        author: &IdentityKeypair,
        genesis: &EntryHash,
        recipient: (IdentityPublicKey, ChannelPublicKey),
        secrets: &[(Epoch, &MasterKey)],
        rng: &mut impl keyward_crypto::Rng,
    ) -> Result<Self, EnvelopeError> {
        let secrets = secrets
            .iter()
            .map(|&(epoch, master)| {
                seal_secret(author, genesis, epoch, master, recipient, rng).map(|e| (epoch, e))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            recipient: recipient.0,
            secrets,
        })
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        w.raw(&self.recipient.to_bytes())
            .u16(u16::try_from(self.secrets.len()).expect("bounded by MAX_EPOCHS_PER_ENTRY"));
        for (epoch, envelope) in &self.secrets {
            w.u64(epoch.0);
            encode_envelope(w, envelope);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let recipient = decode_identity(r, "recipient")?;
        let k = epoch_count(r)?;
        let mut secrets = BTreeMap::new();
        let mut epochs = BTreeSet::new();
        for _ in 0..k {
            let epoch = Epoch(r.u64("epoch")?);
            ascending(&epochs, &epoch, "epochs")?;
            epochs.insert(epoch);
            secrets.insert(
                epoch,
                decode_envelope(r, "envelope", MAX_SECRET_ENVELOPE_LEN)?,
            );
        }
        Ok(Self { recipient, secrets })
    }

    pub(crate) fn check(
        &self,
        author: &IdentityPublicKey,
        genesis: &EntryHash,
    ) -> Result<(), Rejected> {
        self.secrets.iter().try_for_each(|(&epoch, envelope)| {
            check_envelope(envelope, author, genesis, epoch, &self.recipient)
        })
    }
}

/// Kind 7: a gatekeeper states it opened and sealed the secrets of these epochs, and now holds
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochAccept {
    /// The epochs (1..=[`MAX_EPOCHS_PER_ENTRY`]).
    pub epochs: BTreeSet<Epoch>,
}

impl EpochAccept {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u16(u16::try_from(self.epochs.len()).expect("bounded by MAX_EPOCHS_PER_ENTRY"));
        for epoch in &self.epochs {
            w.u64(epoch.0);
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let k = epoch_count(r)?;
        let mut epochs = BTreeSet::new();
        for _ in 0..k {
            let epoch = Epoch(r.u64("epoch")?);
            ascending(&epochs, &epoch, "epochs")?;
            epochs.insert(epoch);
        }
        Ok(Self { epochs })
    }
}

fn epoch_count(r: &mut Reader<'_>) -> Result<usize, DecodeError> {
    let k = usize::from(r.u16("epoch count")?);
    if k == 0 || k > MAX_EPOCHS_PER_ENTRY {
        return Err(DecodeError::Invalid {
            field: "epoch count",
            reason: "an entry lists 1..=256 epochs",
        });
    }
    Ok(k)
}

/// Why a recipient's core would not accept an epoch secret.
#[derive(Debug, Error, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    /// The envelope does not open with this channel key.
    #[error("the epoch-secret envelope does not open: {0}")]
    Envelope(#[from] EnvelopeError),
    /// The envelope names another ledger, epoch or recipient.
    #[error("the envelope is for another ledger, epoch or recipient")]
    WrongContext,
    /// The plaintext is not a MasterKey.
    #[error("the envelope does not hold a MasterKey")]
    NotAKey,
    /// The key is not the epoch's: its public key differs from the ledger's `S_e`.
    #[error("the secret does not match the epoch's master public key")]
    WrongKey,
}

/// Opens an epoch-secret envelope addressed to `me` (identity and channel key) and returns the
/// MasterKey only if its public key is `master`, the epoch's `S_e` on the ledger. A recipient
/// writes [`EpochAccept`] only after this succeeded and the key is sealed.
///
/// # Errors
/// A [`SecretError`].
pub fn open_epoch_secret(
    channel: &ChannelKeypair,
    me: &IdentityPublicKey,
    genesis: &EntryHash,
    epoch: Epoch,
    master: &PublicKey,
    envelope: &Envelope,
) -> Result<MasterKey, SecretError> {
    let opened = channel.open(envelope, EnvelopePurpose::EpochSecret)?;
    if opened.aad != epoch_secret_aad(genesis, epoch, me) {
        return Err(SecretError::WrongContext);
    }
    let bytes = SecretBytes::<32>::from_slice(&opened.plaintext).ok_or(SecretError::NotAKey)?;
    let key = MasterKey::from_bytes(&bytes).map_err(|_| SecretError::NotAKey)?;
    if key.public_key() != *master {
        return Err(SecretError::WrongKey);
    }
    Ok(key)
}
