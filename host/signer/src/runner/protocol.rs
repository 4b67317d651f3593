//! The isolated runner's protocol: one frame per message ([`keyward_isolation::frame`]), one
//! session per connection, the host asking and the enclave answering in order.
//!
//! ```text
//! host → enclave                                   enclave → host
//! 1 Open     version u8 || service[32]             0x81 Opened   opt(platform) || manifest
//!            || opt(platform) || opt(manifest)
//!            || u32 record count || u32 evidence count
//! 2 Records  stored (until both counts are reached; the enclave answers the last with Opened)
//! 3 Apply    u32 n || n × var32(signed request)    0x83 Applied  stored || u32 k || k × digest[32]
//!            (keyward_vote::wire; a batch, checked  (the changed validators' records, in order,
//!            and applied in order)                  the new vote keys' evidence, and the
//!                                                   digests of evidence no record names now)
//! 4 Seal                                           0x84 Sealed   manifest
//! 5 Release                                        0x85 Released u32 n || n × outcome
//! 6 Query    1 || identity[32]  |  2               0x86 Answered 1 || opt(vote_pubkey[32] || var16(evidence))
//!                                                                | 2 || u64 count
//!                                                  0xff Failed   u8 kind || var16(message)
//! stored   = u32 n || n × (identity[32] || var32(record)) || u32 m || m × var32(evidence)
//! opt(x)   = 0 | 1 || var32(x)
//! manifest = u64 counter || var32(blob)
//! outcome  = 0 || var32(answer) | 1 || var32(rejection)       (keyward_vote::wire)
//! ```
//!
//! After `Failed` the enclave closes the connection and drops the session; the host reconnects
//! and opens the store again.

use keyward_crypto::{DecodeError, Reader, SolanaPubkey, Writer};
use keyward_vote::signer::MAX_VOTE_KEY_EVIDENCE;
use keyward_vote::{
    Answer, CommitManifest, LockoutPolicy, Rejection, ServiceId, SignedRequest, VoteKeyInfo,
};

use super::{Changes, Opening, Outcome, Query, QueryAnswer, Record, RunnerError};

/// The protocol version `Open` names.
pub const VERSION: u8 = 3;

/// Most bytes of records, evidence or requests one `Records` or `Apply` frame carries (one item
/// alone may exceed it). An `Applied` or `Released` frame answers one `Apply` or batch whole:
/// the configuration's `max_batch` limit ([`crate::config::MAX_BATCH`]) keeps it under the
/// frame limit for the evidence that exists today (`dev`, about 200 bytes; a TPM quote, about
/// 1 KiB). Vendor evidence (up to 64 KiB a key) in a batch of many registrations would not fit:
/// a vendor attester must come with split answers.
pub const BYTES_PER_FRAME: usize = 16 * 1024 * 1024;

/// Frame tags.
pub mod tag {
    /// `Open`.
    pub const OPEN: u8 = 1;
    /// `Records`.
    pub const RECORDS: u8 = 2;
    /// `Apply`.
    pub const APPLY: u8 = 3;
    /// `Seal`.
    pub const SEAL: u8 = 4;
    /// `Release`.
    pub const RELEASE: u8 = 5;
    /// `Query`.
    pub const QUERY: u8 = 6;
    /// `Opened`.
    pub const OPENED: u8 = 0x81;
    /// `Applied`.
    pub const APPLIED: u8 = 0x83;
    /// `Sealed`.
    pub const SEALED: u8 = 0x84;
    /// `Released`.
    pub const RELEASED: u8 = 0x85;
    /// `Answered`.
    pub const ANSWERED: u8 = 0x86;
    /// `Failed`.
    pub const FAILED: u8 = 0xff;
}

const MAX_BLOB: usize = 1 << 20;

/// The header of `Open`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenHeader {
    /// The signer service's id.
    pub service: ServiceId,
    /// The sealed platform key, if the store has one.
    pub platform: Option<Vec<u8>>,
    /// The sealed manifest, if the store has one.
    pub manifest: Option<Vec<u8>>,
    /// How many records follow in `Records` frames.
    pub records: u32,
    /// How many vote key evidence blobs follow in `Records` frames.
    pub evidence: u32,
}

fn opt(w: &mut Writer, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            w.u8(1).var32(b);
        }
        None => {
            w.u8(0);
        }
    }
}

fn read_opt(
    r: &mut Reader<'_>,
    field: &'static str,
    max: usize,
) -> Result<Option<Vec<u8>>, DecodeError> {
    match r.u8(field)? {
        0 => Ok(None),
        1 => Ok(Some(r.var32(field, max)?.to_vec())),
        _ => Err(DecodeError::Invalid {
            field,
            reason: "not 0 or 1",
        }),
    }
}

fn manifest(w: &mut Writer, m: &CommitManifest) {
    w.u64(m.counter).var32(&m.blob);
}

fn read_manifest(r: &mut Reader<'_>) -> Result<CommitManifest, DecodeError> {
    Ok(CommitManifest {
        counter: r.u64("manifest counter")?,
        blob: r.var32("manifest", MAX_BLOB)?.to_vec(),
    })
}

fn count(n: usize) -> u32 {
    u32::try_from(n).expect("fewer than 2^32 items in one frame")
}

impl OpenHeader {
    /// Its encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.u8(VERSION).raw(&self.service.0);
        opt(&mut w, self.platform.as_deref());
        opt(&mut w, self.manifest.as_deref());
        w.u32(self.records).u32(self.evidence);
        w.finish()
    }

    /// Reads it.
    ///
    /// # Errors
    /// [`DecodeError`], also for another protocol version.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        if r.u8("version")? != VERSION {
            return Err(DecodeError::Invalid {
                field: "version",
                reason: "another protocol version",
            });
        }
        let header = Self {
            service: ServiceId(r.array("service id")?),
            platform: read_opt(&mut r, "platform key", MAX_BLOB)?,
            manifest: read_opt(&mut r, "manifest", MAX_BLOB)?,
            records: r.u32("record count")?,
            evidence: r.u32("evidence count")?,
        };
        r.finish()?;
        Ok(header)
    }
}

/// Encodes `Records` frames for a store's `records` and `evidence`, each frame under
/// [`BYTES_PER_FRAME`] bytes (one item alone may exceed it): the records first, then the
/// evidence.
pub fn encode_records(records: &[Record], evidence: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let records = chunks(records, |(_, record)| record.len() + 36)
        .into_iter()
        .map(|records| encode_stored(records, &[]));
    let evidence = chunks(evidence, |blob| blob.len() + 4)
        .into_iter()
        .map(|evidence| encode_stored(&[], evidence));
    records.chain(evidence).collect()
}

/// Splits `items` into runs of at most [`BYTES_PER_FRAME`] bytes by `size` (one item alone
/// may exceed it).
pub fn chunks<T>(items: &[T], size: impl Fn(&T) -> usize) -> Vec<&[T]> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        if i > start && bytes + size(item) > BYTES_PER_FRAME {
            runs.push(&items[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size(item);
    }
    if start < items.len() {
        runs.push(&items[start..]);
    }
    runs
}

/// `Apply`: a batch of requests as the validators signed them, each in its wire form
/// ([`SignedRequest::to_bytes`]).
pub fn encode_apply(requests: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(count(requests.len()));
    for request in requests {
        w.var32(request);
    }
    w.finish()
}

/// Reads `Apply`.
///
/// # Errors
/// [`DecodeError`].
pub fn decode_apply(bytes: &[u8]) -> Result<Vec<SignedRequest>, DecodeError> {
    let mut r = Reader::new(bytes);
    let n = r.u32("request count")?;
    let mut requests = Vec::new();
    for _ in 0..n {
        requests.push(SignedRequest::from_bytes(r.var32("request", MAX_BLOB)?)?);
    }
    r.finish()?;
    Ok(requests)
}

/// Reads one `Records` frame: records and evidence (nothing retired).
///
/// # Errors
/// [`DecodeError`].
pub fn decode_records(bytes: &[u8]) -> Result<Changes, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut changes = Changes::default();
    read_stored(&mut r, &mut changes)?;
    r.finish()?;
    Ok(changes)
}

/// Reads `Applied`.
///
/// # Errors
/// [`DecodeError`].
pub fn decode_applied(bytes: &[u8]) -> Result<Changes, DecodeError> {
    let mut r = Reader::new(bytes);
    let mut changes = Changes::default();
    read_stored(&mut r, &mut changes)?;
    for _ in 0..r.u32("retired count")? {
        changes.retired.push(r.array("retired digest")?);
    }
    r.finish()?;
    Ok(changes)
}

fn read_stored(r: &mut Reader<'_>, changes: &mut Changes) -> Result<(), DecodeError> {
    for _ in 0..r.u32("record count")? {
        let identity = SolanaPubkey(r.array("identity")?);
        changes
            .records
            .push((identity, r.var32("record", MAX_BLOB)?.to_vec()));
    }
    for _ in 0..r.u32("evidence count")? {
        changes
            .evidence
            .push(r.var32("evidence", MAX_VOTE_KEY_EVIDENCE)?.to_vec());
    }
    Ok(())
}

/// `Opened`.
pub fn encode_opened(opening: &Opening) -> Vec<u8> {
    let mut w = Writer::new();
    opt(&mut w, opening.platform.as_deref());
    manifest(&mut w, &opening.startup);
    w.finish()
}

/// Reads `Opened`.
///
/// # Errors
/// [`DecodeError`].
pub fn decode_opened(bytes: &[u8]) -> Result<Opening, DecodeError> {
    let mut r = Reader::new(bytes);
    let opening = Opening {
        platform: read_opt(&mut r, "platform key", MAX_BLOB)?,
        startup: read_manifest(&mut r)?,
    };
    r.finish()?;
    Ok(opening)
}

/// `Applied`.
pub fn encode_applied(changes: &Changes) -> Vec<u8> {
    let mut w = Writer::new();
    write_stored(&mut w, &changes.records, &changes.evidence);
    w.u32(count(changes.retired.len()));
    for digest in &changes.retired {
        w.raw(digest);
    }
    w.finish()
}

fn encode_stored(records: &[Record], evidence: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::new();
    write_stored(&mut w, records, evidence);
    w.finish()
}

fn write_stored(w: &mut Writer, records: &[Record], evidence: &[Vec<u8>]) {
    w.u32(count(records.len()));
    for (identity, record) in records {
        w.raw(&identity.0).var32(record);
    }
    w.u32(count(evidence.len()));
    for blob in evidence {
        w.var32(blob);
    }
}

/// `Sealed`.
pub fn encode_sealed(m: &CommitManifest) -> Vec<u8> {
    let mut w = Writer::new();
    manifest(&mut w, m);
    w.finish()
}

/// Reads `Sealed`.
///
/// # Errors
/// [`DecodeError`].
pub fn decode_sealed(bytes: &[u8]) -> Result<CommitManifest, DecodeError> {
    let mut r = Reader::new(bytes);
    let m = read_manifest(&mut r)?;
    r.finish()?;
    Ok(m)
}

/// `Released`.
pub fn encode_released(outcomes: &[Outcome]) -> Vec<u8> {
    let mut w = Writer::new();
    w.u32(count(outcomes.len()));
    for outcome in outcomes {
        match outcome {
            Ok(answer) => w.u8(0).var32(&answer.to_bytes()),
            Err(rejection) => w.u8(1).var32(&rejection.to_bytes()),
        };
    }
    w.finish()
}

/// Reads `Released`; towers are checked against `policy`.
///
/// # Errors
/// [`DecodeError`].
pub fn decode_released(bytes: &[u8], policy: &LockoutPolicy) -> Result<Vec<Outcome>, DecodeError> {
    let mut r = Reader::new(bytes);
    let n = r.u32("outcome count")?;
    let mut outcomes = Vec::new();
    for _ in 0..n {
        outcomes.push(match r.u8("outcome kind")? {
            0 => Ok(Answer::from_bytes(r.var32("answer", MAX_BLOB)?, policy)?),
            1 => Err(Rejection::from_bytes(r.var32("rejection", MAX_BLOB)?)?),
            _ => {
                return Err(DecodeError::Invalid {
                    field: "outcome kind",
                    reason: "not 0 or 1",
                });
            }
        });
    }
    r.finish()?;
    Ok(outcomes)
}

/// `Query`.
pub fn encode_query(query: &Query) -> Vec<u8> {
    let mut w = Writer::new();
    match query {
        Query::VoteKey(identity) => {
            w.u8(1).raw(&identity.0);
        }
        Query::Registered => {
            w.u8(2);
        }
    }
    w.finish()
}

/// Reads `Query`.
///
/// # Errors
/// [`DecodeError`].
pub fn decode_query(bytes: &[u8]) -> Result<Query, DecodeError> {
    let mut r = Reader::new(bytes);
    let query = match r.u8("query kind")? {
        1 => Query::VoteKey(SolanaPubkey(r.array("identity")?)),
        2 => Query::Registered,
        _ => {
            return Err(DecodeError::Invalid {
                field: "query kind",
                reason: "unknown kind",
            });
        }
    };
    r.finish()?;
    Ok(query)
}

/// `Answered`.
pub fn encode_answered(answer: &QueryAnswer) -> Vec<u8> {
    let mut w = Writer::new();
    match answer {
        QueryAnswer::VoteKey(info) => {
            w.u8(1);
            match info {
                Some(info) => {
                    w.u8(1).raw(&info.vote_pubkey.0).var16(&info.evidence);
                }
                None => {
                    w.u8(0);
                }
            }
        }
        QueryAnswer::Registered(n) => {
            w.u8(2).u64(*n as u64);
        }
    }
    w.finish()
}

/// Reads `Answered`.
///
/// # Errors
/// [`DecodeError`].
pub fn decode_answered(bytes: &[u8]) -> Result<QueryAnswer, DecodeError> {
    let mut r = Reader::new(bytes);
    let answer = match r.u8("answer kind")? {
        1 => QueryAnswer::VoteKey(match r.u8("vote key flag")? {
            0 => None,
            1 => Some(VoteKeyInfo {
                vote_pubkey: SolanaPubkey(r.array("vote pubkey")?),
                evidence: r.var16("evidence", MAX_VOTE_KEY_EVIDENCE)?.to_vec(),
            }),
            _ => {
                return Err(DecodeError::Invalid {
                    field: "vote key flag",
                    reason: "not 0 or 1",
                });
            }
        }),
        2 => QueryAnswer::Registered(usize::try_from(r.u64("count")?).map_err(|_| {
            DecodeError::Invalid {
                field: "count",
                reason: "too large",
            }
        })?),
        _ => {
            return Err(DecodeError::Invalid {
                field: "answer kind",
                reason: "unknown kind",
            });
        }
    };
    r.finish()?;
    Ok(answer)
}

/// `Failed`: the error's kind and message.
pub fn encode_failed(error: &RunnerError) -> Vec<u8> {
    let (kind, message) = match error {
        RunnerError::NotOpen => (1, String::new()),
        RunnerError::Open(m) => (2, m.clone()),
        RunnerError::Counter(m) => (3, m.clone()),
        RunnerError::Unavailable(m) => (4, m.clone()),
        RunnerError::Protocol(m) => (5, m.clone()),
    };
    let end = message.floor_char_boundary(4096);
    let mut w = Writer::new();
    w.u8(kind).var16(&message.as_bytes()[..end]);
    w.finish()
}

/// Reads `Failed`.
pub fn decode_failed(bytes: &[u8]) -> RunnerError {
    let mut r = Reader::new(bytes);
    let (Ok(kind), Ok(message)) = (r.u8("kind"), r.var16("message", 4096)) else {
        return RunnerError::Protocol("a malformed failure".into());
    };
    let message = String::from_utf8_lossy(message).into_owned();
    match kind {
        1 => RunnerError::NotOpen,
        2 => RunnerError::Open(message),
        3 => RunnerError::Counter(message),
        4 => RunnerError::Unavailable(message),
        _ => RunnerError::Protocol(message),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use keyward_crypto::SolanaSignature;

    #[test]
    fn messages_round_trip() {
        let header = OpenHeader {
            service: ServiceId([1; 32]),
            platform: Some(vec![2; 80]),
            manifest: None,
            records: 3,
            evidence: 2,
        };
        assert_eq!(OpenHeader::decode(&header.encode()).unwrap(), header);
        let mut other = header.encode();
        other[0] = VERSION + 1;
        assert!(OpenHeader::decode(&other).is_err());

        let records: Vec<Record> = (0..3u8)
            .map(|i| (SolanaPubkey([i; 32]), vec![i; 100]))
            .collect();
        let evidence = vec![vec![1; 200], vec![2; 40_000]];
        let frames = encode_records(&records, &evidence);
        assert_eq!(frames.len(), 2, "records, then evidence");
        let mut back = Changes::default();
        for frame in &frames {
            back.extend(decode_records(frame).unwrap());
        }
        assert_eq!(
            (back.records, back.evidence),
            (records.clone(), evidence.clone())
        );

        let opening = Opening {
            platform: None,
            startup: CommitManifest {
                counter: 9,
                blob: vec![4; 60],
            },
        };
        let back = decode_opened(&encode_opened(&opening)).unwrap();
        assert_eq!((back.platform, back.startup), (None, opening.startup));

        for changes in [
            Changes::default(),
            Changes {
                records: records[1..].to_vec(),
                evidence: evidence[..1].to_vec(),
                retired: vec![[3; 32], [4; 32]],
            },
        ] {
            assert_eq!(decode_applied(&encode_applied(&changes)).unwrap(), changes);
        }
        let too_long = encode_applied(&Changes {
            evidence: vec![vec![0; MAX_VOTE_KEY_EVIDENCE + 1]],
            ..Changes::default()
        });
        assert!(decode_applied(&too_long).is_err());
        let many: Vec<Record> = (0..48u8)
            .map(|i| (SolanaPubkey([i; 32]), vec![i; 1 << 19]))
            .collect();
        let frames = encode_records(&many, &[]);
        assert!(frames.len() > 1 && frames.iter().all(|f| f.len() <= BYTES_PER_FRAME));
        let back: Vec<Record> = frames
            .iter()
            .flat_map(|f| decode_records(f).unwrap().records)
            .collect();
        assert_eq!(back, many);
        let outcomes: Vec<Outcome> = vec![
            Ok(Answer::Signature(SolanaSignature([5; 64]))),
            Err(Rejection::from(keyward_vote::Refusal::UnknownValidator(
                SolanaPubkey([6; 32]),
            ))),
        ];
        assert_eq!(
            decode_released(&encode_released(&outcomes), &LockoutPolicy::SOLANA).unwrap(),
            outcomes
        );
        for query in [Query::VoteKey(SolanaPubkey([7; 32])), Query::Registered] {
            let back = decode_query(&encode_query(&query)).unwrap();
            assert_eq!(format!("{back:?}"), format!("{query:?}"));
        }
        for answer in [
            QueryAnswer::Registered(12),
            QueryAnswer::VoteKey(None),
            QueryAnswer::VoteKey(Some(VoteKeyInfo {
                vote_pubkey: SolanaPubkey([8; 32]),
                evidence: vec![9; 10],
            })),
        ] {
            assert_eq!(decode_answered(&encode_answered(&answer)).unwrap(), answer);
        }
        for error in [
            RunnerError::NotOpen,
            RunnerError::Open("rolled back".into()),
            RunnerError::Counter("disk".into()),
        ] {
            assert_eq!(decode_failed(&encode_failed(&error)), error);
        }
    }
}
