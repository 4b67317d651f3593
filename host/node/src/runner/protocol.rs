//! The node enclave's protocol: one frame per message ([`keyward_isolation::frame`]), the host
//! asking and `keyward enclave --role` answering in order, over one connection at a time.
//!
//! ```text
//! host → enclave                               enclave → host
//!  1 Hello       u8 version || u8 role          0x81 Welcome   id[32] || u64 next height
//!                || var32(genesis entry)        (the enclave opens its core on the first Hello)
//!  2 NextHeight                                 0x82 Height    u64 next height
//!  3 Follow      u32 n || n × var32(entry)      0x82 Height    u64 next height
//!  4 Register    var8(endpoint) || opt(u64)     0x84 Produced  body
//!  5 Sign        u64 height || parent[32]       0x85 Signed    var32(entry)
//!                || u64 seq || body
//!  6 Step                                       0x86 Stepped   step
//!  7 Requests    request                        0x87 Round     0 || u64 ticket || u32 n ×
//!                                                              (id[32] || var16(request))
//!                                                              | 1 || refused
//!  8 Check       u64 ticket || var32(answer)    0x88 Checked   u8 enough
//!  9 Provisioned u64 ticket                     0x89 Outcome   0 | 1 || refused
//! 10 Audit       u64 ticket                     0x8a Audited   u32 n × refused
//! 11 Answer      u32 n × var16(request)         0x8b Answers   u32 n × (0 || var32(envelope)
//!                                                              | 1 || refused)
//! 12 Checkpoint  var8(contract)                 0x8c Saved
//! 13 Held                                       0x8d Count     u64
//!                                               0xff Failed    u8 kind || var16(message)
//! body    = u8 kind code || var32(body encoding)          (keyward_ledger::Body)
//! request = u64 epoch || var8(cluster) || u64 generation
//! refused = var8(reason) || var16(message)
//! step    = 0 (nothing) | 1 (sealed) | 2 || body | 3 || request
//!           | 4 || var8(contract) || command[32] || opt(var32(envelope)) || opt(body)
//! opt(x)  = 0 | 1 || x
//! ```
//!
//! `Failed` answers one message; the connection stays up unless the failure is a protocol
//! error, after which the enclave closes it.

use keyward_crypto::{DecodeError, Envelope, IdentityPublicKey, Reader, Writer};
use keyward_hierarchy::{ClusterId, ClusterKeyRequest, ContractId, Epoch, Generation};
use keyward_ledger::entry::MAX_BODY_LEN;
use keyward_ledger::{Body, Entry, EntryHash, Kind, Position};

use super::{NodeStep, Refused, Requests, RunnerError};
use crate::service::NodeRole;

/// The protocol version `Hello` names.
pub const VERSION: u8 = 1;

/// Frame tags.
pub mod tag {
    /// `Hello`.
    pub const HELLO: u8 = 1;
    /// `NextHeight`.
    pub const NEXT_HEIGHT: u8 = 2;
    /// `Follow`.
    pub const FOLLOW: u8 = 3;
    /// `Register`.
    pub const REGISTER: u8 = 4;
    /// `Sign`.
    pub const SIGN: u8 = 5;
    /// `Step`.
    pub const STEP: u8 = 6;
    /// `Requests`.
    pub const REQUESTS: u8 = 7;
    /// `Check`.
    pub const CHECK: u8 = 8;
    /// `Provisioned`.
    pub const PROVISIONED: u8 = 9;
    /// `Audit`.
    pub const AUDIT: u8 = 10;
    /// `Answer`.
    pub const ANSWER: u8 = 11;
    /// `Checkpoint`.
    pub const CHECKPOINT: u8 = 12;
    /// `Held`.
    pub const HELD: u8 = 13;
    /// `Welcome`.
    pub const WELCOME: u8 = 0x81;
    /// `Height`.
    pub const HEIGHT: u8 = 0x82;
    /// `Produced`.
    pub const PRODUCED: u8 = 0x84;
    /// `Signed`.
    pub const SIGNED: u8 = 0x85;
    /// `Stepped`.
    pub const STEPPED: u8 = 0x86;
    /// `Round`.
    pub const ROUND: u8 = 0x87;
    /// `Checked`.
    pub const CHECKED: u8 = 0x88;
    /// `Outcome`.
    pub const OUTCOME: u8 = 0x89;
    /// `Audited`.
    pub const AUDITED: u8 = 0x8a;
    /// `Answers`.
    pub const ANSWERS: u8 = 0x8b;
    /// `Saved`.
    pub const SAVED: u8 = 0x8c;
    /// `Count`.
    pub const COUNT: u8 = 0x8d;
    /// `Failed`.
    pub const FAILED: u8 = 0xff;
}

/// Largest entry, envelope or request carried.
const MAX_ITEM: usize = 2 * MAX_BODY_LEN;
/// Most items one message lists.
const MAX_ITEMS: u32 = 1 << 16;

fn invalid(field: &'static str) -> DecodeError {
    DecodeError::Invalid {
        field,
        reason: "not a valid value",
    }
}

/// A decoded byte string of at most `max` bytes, as UTF-8.
fn text(r: &mut Reader<'_>, field: &'static str, max: usize) -> Result<String, DecodeError> {
    let bytes = if max <= 255 {
        r.var8(field, max)?
    } else {
        r.var16(field, max)?
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| invalid(field))
}

fn count(r: &mut Reader<'_>) -> Result<u32, DecodeError> {
    let n = r.u32("count")?;
    if n > MAX_ITEMS {
        return Err(invalid("count"));
    }
    Ok(n)
}

/// Writes a body.
pub fn put_body(w: &mut Writer, body: &Body) {
    w.u8(body.kind().code()).var32(&body.encode());
}

/// Reads a body.
///
/// # Errors
/// [`DecodeError`].
pub fn body(r: &mut Reader<'_>) -> Result<Body, DecodeError> {
    let kind = Kind::from_code(r.u8("kind")?).ok_or(invalid("kind"))?;
    Body::decode(kind, r.var32("body", MAX_BODY_LEN)?)
}

/// Writes a ClusterKey request (`Requests`' body, and in a step).
pub fn put_request(w: &mut Writer, request: &ClusterKeyRequest) {
    w.u64(request.epoch.0)
        .var8(request.cluster.as_str().as_bytes())
        .u64(request.generation.0);
}

/// Reads a ClusterKey request.
///
/// # Errors
/// [`DecodeError`].
pub fn request(r: &mut Reader<'_>) -> Result<ClusterKeyRequest, DecodeError> {
    let epoch = Epoch(r.u64("epoch")?);
    let cluster = ClusterId::new(&text(r, "cluster", 255)?).map_err(|_| invalid("cluster"))?;
    Ok(ClusterKeyRequest {
        epoch,
        cluster,
        generation: Generation(r.u64("generation")?),
    })
}

fn put_refused(w: &mut Writer, refused: &Refused) {
    let reason = &refused.reason[..refused.reason.floor_char_boundary(255)];
    let message = &refused.message[..refused.message.floor_char_boundary(4096)];
    w.var8(reason.as_bytes()).var16(message.as_bytes());
}

fn refused(r: &mut Reader<'_>) -> Result<Refused, DecodeError> {
    Ok(Refused {
        reason: text(r, "reason", 255)?,
        message: text(r, "message", 4096)?,
    })
}

fn contract(r: &mut Reader<'_>) -> Result<ContractId, DecodeError> {
    ContractId::new(&text(r, "contract", 255)?).map_err(|_| invalid("contract"))
}

fn envelope(r: &mut Reader<'_>) -> Result<Envelope, DecodeError> {
    Envelope::from_bytes(r.var32("envelope", MAX_ITEM)?).map_err(|_| invalid("envelope"))
}

fn entry(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    Entry::from_bytes(r.var32("entry", MAX_ITEM)?.to_vec()).map_err(|_| invalid("entry"))
}

/// Decodes a whole message with `read`, refusing trailing bytes.
///
/// # Errors
/// [`DecodeError`].
pub fn decode<T>(
    bytes: &[u8],
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let value = read(&mut r)?;
    r.finish()?;
    Ok(value)
}

/// Encodes a message with `write`.
pub fn encode(write: impl FnOnce(&mut Writer)) -> Vec<u8> {
    let mut w = Writer::new();
    write(&mut w);
    w.finish()
}

/// `Hello`'s body.
pub fn put_hello(w: &mut Writer, role: NodeRole, genesis: &Entry) {
    w.u8(VERSION)
        .u8(match role {
            NodeRole::Gatekeeper => 1,
            NodeRole::Worker => 2,
        })
        .var32(genesis.as_bytes());
}

/// Reads `Hello`: the role and the genesis entry.
///
/// # Errors
/// [`DecodeError`], also for another protocol version.
pub fn hello(r: &mut Reader<'_>) -> Result<(NodeRole, Entry), DecodeError> {
    if r.u8("version")? != VERSION {
        return Err(invalid("version"));
    }
    let role = match r.u8("role")? {
        1 => NodeRole::Gatekeeper,
        2 => NodeRole::Worker,
        _ => return Err(invalid("role")),
    };
    Ok((role, entry(r)?))
}

/// `Welcome`'s body.
pub fn put_welcome(w: &mut Writer, id: &IdentityPublicKey, next_height: u64) {
    w.raw(&id.to_bytes()).u64(next_height);
}

/// Reads `Welcome`.
///
/// # Errors
/// [`DecodeError`].
pub fn welcome(r: &mut Reader<'_>) -> Result<(IdentityPublicKey, u64), DecodeError> {
    let id = IdentityPublicKey::from_bytes(&r.array("id")?).map_err(|_| invalid("id"))?;
    Ok((id, r.u64("next height")?))
}

/// `Follow`'s body.
pub fn put_entries(w: &mut Writer, entries: &[Entry]) {
    w.u32(u32::try_from(entries.len()).expect("at most one ledger page"));
    for entry in entries {
        w.var32(entry.as_bytes());
    }
}

/// Reads `Follow`.
///
/// # Errors
/// [`DecodeError`].
pub fn entries(r: &mut Reader<'_>) -> Result<Vec<Entry>, DecodeError> {
    (0..count(r)?).map(|_| entry(r)).collect()
}

/// `Register`'s body.
pub fn put_register(w: &mut Writer, endpoint: &std::net::SocketAddr, stake: Option<u64>) {
    w.var8(endpoint.to_string().as_bytes());
    match stake {
        None => w.u8(0),
        Some(stake) => w.u8(1).u64(stake),
    };
}

/// Reads `Register`.
///
/// # Errors
/// [`DecodeError`].
pub fn register(r: &mut Reader<'_>) -> Result<(std::net::SocketAddr, Option<u64>), DecodeError> {
    let text = text(r, "endpoint", 255)?;
    let endpoint: std::net::SocketAddr = text.parse().map_err(|_| invalid("endpoint"))?;
    // One address, one encoding (no leading zeros in the port, say).
    if endpoint.to_string() != text {
        return Err(invalid("endpoint"));
    }
    let stake = match r.u8("stake")? {
        0 => None,
        1 => Some(r.u64("stake")?),
        _ => return Err(invalid("stake")),
    };
    Ok((endpoint, stake))
}

/// `Sign`'s body.
pub fn put_sign(w: &mut Writer, position: Position, body: &Body) {
    w.u64(position.height)
        .raw(&position.parent.0)
        .u64(position.seq);
    put_body(w, body);
}

/// Reads `Sign`.
///
/// # Errors
/// [`DecodeError`].
pub fn sign(r: &mut Reader<'_>) -> Result<(Position, Body), DecodeError> {
    let position = Position {
        height: r.u64("height")?,
        parent: EntryHash(r.array("parent")?),
        seq: r.u64("seq")?,
    };
    Ok((position, body(r)?))
}

/// `Signed`'s body.
pub fn put_entry(w: &mut Writer, entry: &Entry) {
    w.var32(entry.as_bytes());
}

/// Reads `Signed`.
///
/// # Errors
/// [`DecodeError`].
pub fn signed(r: &mut Reader<'_>) -> Result<Entry, DecodeError> {
    entry(r)
}

/// `Stepped`'s body.
pub fn put_step(w: &mut Writer, step: Option<&NodeStep>) {
    match step {
        None => {
            w.u8(0);
        }
        Some(NodeStep::Sealed) => {
            w.u8(1);
        }
        Some(NodeStep::Submit(body)) => {
            w.u8(2);
            put_body(w, body);
        }
        Some(NodeStep::Provision(request)) => {
            w.u8(3);
            put_request(w, request);
        }
        Some(NodeStep::Executed {
            contract,
            command,
            reply,
            digest,
        }) => {
            w.u8(4).var8(contract.as_str().as_bytes()).raw(&command.0);
            match reply {
                None => w.u8(0),
                Some(reply) => w.u8(1).var32(&reply.to_bytes()),
            };
            match digest {
                None => {
                    w.u8(0);
                }
                Some(body) => {
                    w.u8(1);
                    put_body(w, body);
                }
            }
        }
    }
}

/// Reads `Stepped`.
///
/// # Errors
/// [`DecodeError`].
pub fn step(r: &mut Reader<'_>) -> Result<Option<NodeStep>, DecodeError> {
    Ok(Some(match r.u8("step")? {
        0 => return Ok(None),
        1 => NodeStep::Sealed,
        2 => NodeStep::Submit(body(r)?),
        3 => NodeStep::Provision(request(r)?),
        4 => NodeStep::Executed {
            contract: contract(r)?,
            command: EntryHash(r.array("command")?),
            reply: match r.u8("reply")? {
                0 => None,
                1 => Some(envelope(r)?),
                _ => return Err(invalid("reply")),
            },
            digest: match r.u8("digest")? {
                0 => None,
                1 => Some(body(r)?),
                _ => return Err(invalid("digest")),
            },
        },
        _ => return Err(invalid("step")),
    }))
}

/// `Round`'s body.
pub fn put_round(w: &mut Writer, round: &Result<Requests, Refused>) {
    match round {
        Ok(requests) => {
            w.u8(0)
                .u64(requests.ticket)
                .u32(u32::try_from(requests.signed.len()).expect("one request per holder"));
            for (id, request) in &requests.signed {
                w.raw(&id.to_bytes()).var16(request);
            }
        }
        Err(e) => {
            w.u8(1);
            put_refused(w, e);
        }
    }
}

/// Reads `Round`.
///
/// # Errors
/// [`DecodeError`].
pub fn round(r: &mut Reader<'_>) -> Result<Result<Requests, Refused>, DecodeError> {
    match r.u8("round")? {
        0 => {
            let ticket = r.u64("ticket")?;
            let signed = (0..count(r)?)
                .map(|_| {
                    let id = IdentityPublicKey::from_bytes(&r.array("holder")?)
                        .map_err(|_| invalid("holder"))?;
                    Ok((id, r.var16("request", u16::MAX.into())?.to_vec()))
                })
                .collect::<Result<_, DecodeError>>()?;
            Ok(Ok(Requests { ticket, signed }))
        }
        1 => Ok(Err(refused(r)?)),
        _ => Err(invalid("round")),
    }
}

/// `Check`'s body.
pub fn put_check(w: &mut Writer, ticket: u64, answer: &Envelope) {
    w.u64(ticket).var32(&answer.to_bytes());
}

/// Reads `Check`.
///
/// # Errors
/// [`DecodeError`].
pub fn check(r: &mut Reader<'_>) -> Result<(u64, Envelope), DecodeError> {
    Ok((r.u64("ticket")?, envelope(r)?))
}

/// `Outcome`'s body.
pub fn put_outcome(w: &mut Writer, outcome: &Result<(), Refused>) {
    match outcome {
        Ok(()) => {
            w.u8(0);
        }
        Err(e) => {
            w.u8(1);
            put_refused(w, e);
        }
    }
}

/// Reads `Outcome`.
///
/// # Errors
/// [`DecodeError`].
pub fn outcome(r: &mut Reader<'_>) -> Result<Result<(), Refused>, DecodeError> {
    match r.u8("outcome")? {
        0 => Ok(Ok(())),
        1 => Ok(Err(refused(r)?)),
        _ => Err(invalid("outcome")),
    }
}

/// `Audited`'s body.
pub fn put_refusals(w: &mut Writer, refusals: &[Refused]) {
    w.u32(u32::try_from(refusals.len()).expect("one per answer"));
    for refused in refusals {
        put_refused(w, refused);
    }
}

/// Reads `Audited`.
///
/// # Errors
/// [`DecodeError`].
pub fn refusals(r: &mut Reader<'_>) -> Result<Vec<Refused>, DecodeError> {
    (0..count(r)?).map(|_| refused(r)).collect()
}

/// `Answer`'s body.
pub fn put_answer(w: &mut Writer, requests: &[&[u8]]) {
    w.u32(u32::try_from(requests.len()).expect("one batch"));
    for request in requests {
        w.var32(request);
    }
}

/// Reads `Answer`.
///
/// # Errors
/// [`DecodeError`].
pub fn answer(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, DecodeError> {
    (0..count(r)?)
        .map(|_| Ok(r.var32("request", MAX_ITEM)?.to_vec()))
        .collect()
}

/// `Answers`' body.
pub fn put_answers(w: &mut Writer, answers: &[Result<Envelope, Refused>]) {
    w.u32(u32::try_from(answers.len()).expect("one per request"));
    for answer in answers {
        match answer {
            Ok(envelope) => {
                w.u8(0).var32(&envelope.to_bytes());
            }
            Err(e) => {
                w.u8(1);
                put_refused(w, e);
            }
        }
    }
}

/// Reads `Answers`.
///
/// # Errors
/// [`DecodeError`].
pub fn answers(r: &mut Reader<'_>) -> Result<Vec<Result<Envelope, Refused>>, DecodeError> {
    (0..count(r)?)
        .map(|_| match r.u8("answer")? {
            0 => Ok(Ok(envelope(r)?)),
            1 => Ok(Err(refused(r)?)),
            _ => Err(invalid("answer")),
        })
        .collect()
}

/// `Checkpoint`'s body.
pub fn put_contract(w: &mut Writer, contract: &ContractId) {
    w.var8(contract.as_str().as_bytes());
}

/// Reads `Checkpoint`.
///
/// # Errors
/// [`DecodeError`].
pub fn checkpoint(r: &mut Reader<'_>) -> Result<ContractId, DecodeError> {
    contract(r)
}

/// `Failed`'s body.
pub fn put_failed(w: &mut Writer, error: &RunnerError) {
    let (kind, message) = match error {
        RunnerError::Unavailable(m) => (1, m.clone()),
        RunnerError::Protocol(m) => (2, m.clone()),
        RunnerError::Attest(m) => (3, m.clone()),
        RunnerError::Storage(m) => (4, m.clone()),
        RunnerError::NotProduced(kind) => (5, (*kind).to_owned()),
        RunnerError::UnknownTicket(ticket) => (6, ticket.to_string()),
        RunnerError::Mismatch(m) => (7, m.clone()),
    };
    let end = message.floor_char_boundary(4096);
    w.u8(kind).var16(&message.as_bytes()[..end]);
}

/// Reads `Failed`: the enclave's error, as near as the host can name it.
pub fn failed(bytes: &[u8]) -> RunnerError {
    let mut r = Reader::new(bytes);
    let (Ok(kind), Ok(message)) = (r.u8("kind"), r.var16("message", 4096)) else {
        return RunnerError::Protocol("a malformed failure".into());
    };
    let message = String::from_utf8_lossy(message).into_owned();
    match kind {
        1 => RunnerError::Unavailable(message),
        3 => RunnerError::Attest(message),
        4 => RunnerError::Storage(message),
        5 => RunnerError::NotProduced(
            Kind::ALL
                .iter()
                .map(|k| k.name())
                .find(|name| *name == message)
                .unwrap_or("unknown"),
        ),
        6 => message
            .parse()
            .map_or(RunnerError::Protocol(message), RunnerError::UnknownTicket),
        7 => RunnerError::Mismatch(message),
        _ => RunnerError::Protocol(message),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use keyward_crypto::{ChannelKeypair, EnvelopePurpose, IdentityKeypair};
    use keyward_hierarchy::ClusterId;
    use keyward_ledger::ClusterCreate;
    use rand_core::OsRng;

    fn body() -> Body {
        Body::ClusterCreate(ClusterCreate {
            cluster: ClusterId::new("c1").unwrap(),
            members: [IdentityKeypair::generate(&mut OsRng).public()]
                .into_iter()
                .collect(),
        })
    }

    fn envelope() -> Envelope {
        let sender = IdentityKeypair::generate(&mut OsRng);
        let to = ChannelKeypair::generate(&mut OsRng).public();
        Envelope::seal(
            &sender,
            &to,
            EnvelopePurpose::ClusterKey,
            b"aad",
            b"plaintext",
            &mut OsRng,
        )
        .unwrap()
    }

    fn refused() -> Refused {
        Refused {
            reason: "not_member".into(),
            message: "refused: not a member".into(),
        }
    }

    /// Encodes `value`, decodes it back equal, and checks that every truncation is refused
    /// without a panic.
    fn round_trip<T: PartialEq + std::fmt::Debug>(
        value: &T,
        write: impl Fn(&mut Writer, &T),
        read: impl Fn(&mut Reader<'_>) -> Result<T, DecodeError>,
    ) {
        let bytes = encode(|w| write(w, value));
        assert_eq!(&decode(&bytes, &read).unwrap(), value);
        for end in 0..bytes.len() {
            assert!(
                decode(&bytes[..end], &read).is_err(),
                "a truncation at {end} decodes"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(
            decode(&longer, &read).is_err(),
            "a trailing byte is accepted"
        );
    }

    #[test]
    fn every_message_round_trips_and_refuses_truncation() {
        let request = ClusterKeyRequest {
            epoch: Epoch(3),
            cluster: ClusterId::new("c1").unwrap(),
            generation: Generation(2),
        };
        for value in [
            None,
            Some(NodeStep::Sealed),
            Some(NodeStep::Submit(body())),
            Some(NodeStep::Provision(request.clone())),
            Some(NodeStep::Executed {
                contract: ContractId::new("notes").unwrap(),
                command: EntryHash([7; 32]),
                reply: Some(envelope()),
                digest: Some(body()),
            }),
            Some(NodeStep::Executed {
                contract: ContractId::new("notes").unwrap(),
                command: EntryHash([7; 32]),
                reply: None,
                digest: None,
            }),
        ] {
            round_trip(&value, |w, s| put_step(w, s.as_ref()), step);
        }
        let holder = IdentityKeypair::generate(&mut OsRng).public();
        round_trip(
            &Ok(Requests {
                ticket: 9,
                signed: vec![(holder, vec![1, 2, 3])],
            }),
            put_round,
            round,
        );
        round_trip(&Err(refused()), put_round, round);
        round_trip(&Ok(()), put_outcome, outcome);
        round_trip(&Err(refused()), put_outcome, outcome);
        round_trip(
            &vec![refused(), refused()],
            |w, r| put_refusals(w, r),
            refusals,
        );
        round_trip(
            &vec![Ok(envelope()), Err(refused())],
            |w, a| put_answers(w, a),
            answers,
        );
        let position = Position {
            height: 5,
            parent: EntryHash([1; 32]),
            seq: 2,
        };
        round_trip(&(position, body()), |w, (p, b)| put_sign(w, *p, b), sign);
        round_trip(
            &("127.0.0.1:8991".parse().unwrap(), Some(40)),
            |w, (e, s)| put_register(w, e, *s),
            register,
        );
        round_trip(&(holder, 12), |w, (id, h)| put_welcome(w, id, *h), welcome);
    }

    #[test]
    fn failures_keep_their_kind() {
        for error in [
            RunnerError::Unavailable("gone".into()),
            RunnerError::Protocol("bad".into()),
            RunnerError::Attest("tpm".into()),
            RunnerError::Storage("disk".into()),
            RunnerError::NotProduced("cluster_create"),
            RunnerError::UnknownTicket(4),
            RunnerError::Mismatch("other".into()),
        ] {
            assert_eq!(failed(&encode(|w| put_failed(w, &error))), error);
        }
        assert!(matches!(failed(&[9]), RunnerError::Protocol(_)));
    }

    #[test]
    fn an_unknown_role_version_or_step_is_refused() {
        assert!(decode(&[VERSION + 1, 1, 0, 0, 0, 0], hello).is_err());
        assert!(decode(&[VERSION, 3, 0, 0, 0, 0], hello).is_err());
        assert!(decode(&[5], step).is_err());
        assert!(decode(&[2], round).is_err());
        let padded = encode(|w| {
            w.var8(b"127.0.0.1:080").u8(0);
        });
        assert!(
            decode(&padded, register).is_err(),
            "a port with a leading zero"
        );
    }
}
