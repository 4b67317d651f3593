//! The entry framing (PROTOCOL §16.1): what an author signs, how an entry is hashed and chained.
//!
//! ```text
//! entry  = "KWLE" || 0x01 || u64(height) || parent(32) || author(32) || u64(seq) || u8(kind)
//!          || var32(body) || signature(64)
//! signed = every byte before the signature, sr25519 under "keyward/v1/ledger-entry"
//! hash   = SHA-256(var16("keyward/v1/ledger/entry-hash") || entry)
//! ```
//!
//! The author signs the entry's position (height and parent hash), so the ledger operator cannot
//! reorder or move it, and its own sequence number, so a retry that already landed is a replay.

use core::fmt;
use core::ops::Range;

use sha2::{Digest, Sha256};

use keyward_crypto::{
    DecodeError, IdentityKeypair, IdentityPublicKey, IdentitySignature, Reader, SigningPurpose,
    Writer,
};

use keyward_enclave::{Claims, Platform};

use crate::body::{Body, Kind};
use crate::reject::Rejected;

const MAGIC: &[u8; 4] = b"KWLE";
const VERSION: u8 = 1;
const FORMAT: &str = "keyward ledger entry";
const HASH_LABEL: &[u8] = b"keyward/v1/ledger/entry-hash";

/// Longest entry body.
pub const MAX_BODY_LEN: usize = 1 << 20;

/// The SHA-256 hash of an entry, signature included. Shown as `0x`-hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryHash(pub [u8; 32]);

impl EntryHash {
    /// The parent of the genesis entry.
    pub const ZERO: Self = Self([0; 32]);

    /// The hash of an entry's wire bytes.
    pub fn of(entry: &[u8]) -> Self {
        let mut label = Writer::new();
        label.var16(HASH_LABEL);
        let mut h = Sha256::new();
        h.update(label.as_slice());
        h.update(entry);
        Self(h.finalize().into())
    }
}

impl fmt::Display for EntryHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&keyward_crypto::hex::to_0x(&self.0))
    }
}

impl fmt::Debug for EntryHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryHash({self})")
    }
}

/// Where an entry goes: the ledger height, the hash of the entry before it, and the author's
/// own sequence number (0, 1, 2, … without gaps). All three are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// The entry's height; genesis is 0.
    pub height: u64,
    /// The hash of the entry at `height - 1`; [`EntryHash::ZERO`] for genesis.
    pub parent: EntryHash,
    /// The author's sequence number.
    pub seq: u64,
}

/// A well-framed entry with a known kind. Its signature and body are not checked yet: only
/// [`crate::Genesis::verify`] turns it into a [`VerifiedEntry`].
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    bytes: Vec<u8>,
    position: Position,
    author: IdentityPublicKey,
    kind: Kind,
    body: Range<usize>,
    signature: IdentitySignature,
    hash: EntryHash,
}

impl Entry {
    /// Signs `body` at `position` as `author`.
    pub fn sign(
        author: &IdentityKeypair,
        position: Position,
        body: &Body,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Self {
        let bytes = Self::sign_raw(author, position, body.kind().code(), &body.encode(), rng);
        Self::from_bytes(bytes).expect("every Body encodes to a well-framed entry")
    }

    /// The wire bytes of an entry with any kind code and body bytes, signed by `author`. For
    /// tests and tools that need entries the typed API refuses to build; the result may not
    /// parse.
    pub fn sign_raw(
        author: &IdentityKeypair,
        position: Position,
        kind: u8,
        body: &[u8],
        rng: &mut impl keyward_crypto::Rng,
    ) -> Vec<u8> {
        let mut w = Writer::with_header(MAGIC, VERSION);
        w.u64(position.height)
            .raw(&position.parent.0)
            .raw(&author.public().to_bytes())
            .u64(position.seq)
            .u8(kind)
            .var32(body);
        let signature = author.sign(SigningPurpose::LedgerEntry, w.as_slice(), rng);
        w.raw(&signature.to_bytes());
        w.finish()
    }

    /// Parses the framing: magic and version, a canonical author key, a known kind, a body of at
    /// most [`MAX_BODY_LEN`] bytes, a well-formed signature and nothing after it.
    ///
    /// # Errors
    /// [`Rejected::MalformedEntry`] or [`Rejected::UnknownKind`].
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self, Rejected> {
        let mut r = Reader::new(&bytes);
        r.header(FORMAT, MAGIC, VERSION)?;
        let height = r.u64("height")?;
        let parent = EntryHash(r.array("parent")?);
        let author = IdentityPublicKey::from_bytes(&r.array("author")?)?;
        let seq = r.u64("seq")?;
        let code = r.u8("kind")?;
        let kind = Kind::from_code(code).ok_or(Rejected::UnknownKind(code))?;
        let body_len = r.var32("body", MAX_BODY_LEN)?.len();
        let signature = IdentitySignature::from_bytes(&r.array("signature")?)?;
        r.finish()?;
        let body_end = bytes.len() - IdentitySignature::LEN;
        let hash = EntryHash::of(&bytes);
        Ok(Self {
            position: Position {
                height,
                parent,
                seq,
            },
            author,
            kind,
            body: body_end - body_len..body_end,
            signature,
            hash,
            bytes,
        })
    }

    /// The wire bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The wire bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// Height, parent and sequence number.
    pub fn position(&self) -> Position {
        self.position
    }

    /// Who signed it (not verified yet).
    pub fn author(&self) -> IdentityPublicKey {
        self.author
    }

    /// The kind.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The body bytes (not decoded yet).
    pub fn body_bytes(&self) -> &[u8] {
        &self.bytes[self.body.clone()]
    }

    /// The entry's hash.
    pub fn hash(&self) -> EntryHash {
        self.hash
    }

    /// Checks the author's signature over every byte before it.
    pub(crate) fn verify_signature(&self) -> Result<(), Rejected> {
        let signed = &self.bytes[..self.bytes.len() - IdentitySignature::LEN];
        self.author
            .verify(SigningPurpose::LedgerEntry, signed, &self.signature)
            .map_err(|_| Rejected::BadSignature)
    }
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("height", &self.position.height)
            .field("kind", &self.kind)
            .field("author", &self.author)
            .field("seq", &self.position.seq)
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl From<DecodeError> for Rejected {
    fn from(e: DecodeError) -> Self {
        Self::MalformedEntry(e)
    }
}

/// An entry whose signature verified and whose body decoded and passed every check that needs
/// no registry state, for the ledger named by [`VerifiedEntry::genesis`]. Only
/// [`crate::Genesis::verify`] constructs one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEntry {
    entry: Entry,
    body: Body,
    genesis: EntryHash,
    vendor: VendorStamp,
}

/// What a registration's vendor evidence says that the registry's rules track, taken from the
/// vendor verifier's claims. Every field is something the vendor signed, never the envelope
/// maker's word. Empty for `dev` and `tpm-quote` evidence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VendorStamp {
    /// The latest time the vendor signed into the evidence or its endorsements, UNIX seconds
    /// ([`Claims::signed_at`]): what moves the ledger's clock.
    pub signed_at: Option<u64>,
    /// The platform and the TCB evaluation data number its TCB status was computed under
    /// ([`Claims::tcb_evaluation`], DCAP only): the registry refuses evidence evaluated under a
    /// lower number than accepted evidence of the same platform.
    pub tcb_evaluation: Option<(Platform, u32)>,
}

impl VendorStamp {
    /// The stamp of verified vendor claims.
    pub fn of(claims: &Claims) -> Self {
        Self {
            signed_at: claims.signed_at,
            tcb_evaluation: claims.tcb_evaluation.map(|n| (claims.platform, n)),
        }
    }
}

impl VerifiedEntry {
    pub(crate) fn new(entry: Entry, body: Body, genesis: EntryHash, vendor: VendorStamp) -> Self {
        Self {
            entry,
            body,
            genesis,
            vendor,
        }
    }

    /// For a registration with vendor evidence, what the vendor signed into it that the
    /// registry's rules track, found while verifying it, so applying the entry need not check
    /// the vendor's chain again.
    pub fn vendor(&self) -> VendorStamp {
        self.vendor
    }

    /// The entry.
    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    /// The decoded body.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The genesis hash of the ledger it was verified for.
    pub fn genesis(&self) -> EntryHash {
        self.genesis
    }

    /// The entry, by value.
    pub fn into_entry(self) -> Entry {
        self.entry
    }
}
