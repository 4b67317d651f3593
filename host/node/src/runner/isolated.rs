//! The isolated runner's host side: the node's core runs in `keyward enclave --role`, reached over
//! a Unix socket ([`super::protocol`]).
//!
//! One connection, used by one call at a time. A lost connection (the enclave crashed or
//! restarted) fails the call in progress with [`RunnerError::Unavailable`]; the next call
//! connects again and says `Hello`, and an enclave that restarted reopens the same sealed core.
//! Its registry starts again from the genesis: the node's loop hands it the entries it lacks
//! before its next step ([`NodeRunner::next_height`], [`NodeRunner::follow`]).

use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use keyward_crypto::{DecodeError, Envelope, IdentityPublicKey, Reader, Writer};
use keyward_hierarchy::{ClusterKeyRequest, ContractId};
use keyward_isolation::{Frame, read_frame, write_frame};
use keyward_ledger::{Body, Entry, Position};

use super::protocol::{self, tag};
use super::{NodeRunner, NodeStep, Refused, Requests, RunnerError, Ticket};
use crate::service::NodeRole;

/// How long one answer may take (a TPM quote, a gatekeeper's DKG step) before the connection is
/// given up.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The host's end of the isolated runner.
#[derive(Debug)]
pub struct Isolated {
    socket: PathBuf,
    role: NodeRole,
    genesis: Entry,
    id: IdentityPublicKey,
    stream: Mutex<Option<UnixStream>>,
}

impl Isolated {
    /// Connects to the enclave at `socket`, which opens (or makes) the node's core for `role`
    /// on the ledger whose genesis entry is `genesis`.
    ///
    /// # Errors
    /// [`RunnerError::Unavailable`] if it cannot be reached; [`RunnerError::Mismatch`] if it
    /// serves another role or ledger.
    pub fn connect(socket: PathBuf, role: NodeRole, genesis: Entry) -> Result<Self, RunnerError> {
        let (stream, id) = hello(&socket, role, &genesis)?;
        Ok(Self {
            socket,
            role,
            genesis,
            id,
            stream: Mutex::new(Some(stream)),
        })
    }

    /// Sends one message and decodes its answer, which must carry `expect`.
    fn call<T>(
        &self,
        tag: u8,
        write: impl FnOnce(&mut Writer),
        expect: u8,
        read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
    ) -> Result<T, RunnerError> {
        let mut guard = self
            .stream
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if guard.is_none() {
            let (stream, id) = hello(&self.socket, self.role, &self.genesis)?;
            if id != self.id {
                return Err(RunnerError::Mismatch(format!(
                    "its core is {id}, this node is {}",
                    self.id
                )));
            }
            *guard = Some(stream);
        }
        let stream = guard.as_mut().expect("connected above");
        let answer = exchange(stream, tag, &protocol::encode(write), expect, read);
        if let Err(RunnerError::Unavailable(_) | RunnerError::Protocol(_)) = &answer {
            *guard = None;
        }
        answer.map_err(|e| match e {
            RunnerError::Unavailable(m) => {
                RunnerError::Unavailable(format!("{}: {m}", self.socket.display()))
            }
            e => e,
        })
    }
}

/// Connects to `socket` and says `Hello`: the enclave's core's identity.
fn hello(
    socket: &std::path::Path,
    role: NodeRole,
    genesis: &Entry,
) -> Result<(UnixStream, IdentityPublicKey), RunnerError> {
    let unavailable =
        |e: std::io::Error| RunnerError::Unavailable(format!("{}: {e}", socket.display()));
    let mut stream = UnixStream::connect(socket).map_err(unavailable)?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .map_err(unavailable)?;
    let (id, _) = exchange(
        &mut stream,
        tag::HELLO,
        &protocol::encode(|w| protocol::put_hello(w, role, genesis)),
        tag::WELCOME,
        protocol::welcome,
    )?;
    Ok((stream, id))
}

/// Writes one message and reads its answer.
fn exchange<T>(
    stream: &mut UnixStream,
    tag: u8,
    body: &[u8],
    expect: u8,
    read: impl FnOnce(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<T, RunnerError> {
    let unavailable = |e: std::io::Error| RunnerError::Unavailable(e.to_string());
    write_frame(stream, tag, body).map_err(unavailable)?;
    match read_frame(stream).map_err(unavailable)? {
        Some(Frame { tag, body }) if tag == expect => {
            protocol::decode(&body, read).map_err(|e| RunnerError::Protocol(e.to_string()))
        }
        Some(Frame {
            tag: tag::FAILED,
            body,
        }) => Err(protocol::failed(&body)),
        Some(Frame { tag, .. }) => Err(RunnerError::Protocol(format!(
            "answer {tag:#04x} where {expect:#04x} was due"
        ))),
        None => Err(RunnerError::Unavailable(
            "the enclave closed the connection".into(),
        )),
    }
}

impl NodeRunner for Isolated {
    fn id(&self) -> IdentityPublicKey {
        self.id
    }

    fn next_height(&self) -> Result<u64, RunnerError> {
        self.call(tag::NEXT_HEIGHT, |_| {}, tag::HEIGHT, |r| r.u64("height"))
    }

    fn follow(&self, entries: Vec<Entry>) -> Result<u64, RunnerError> {
        self.call(
            tag::FOLLOW,
            |w| protocol::put_entries(w, &entries),
            tag::HEIGHT,
            |r| r.u64("height"),
        )
    }

    fn registration(&self, endpoint: SocketAddr, stake: Option<u64>) -> Result<Body, RunnerError> {
        self.call(
            tag::REGISTER,
            |w| protocol::put_register(w, &endpoint, stake),
            tag::PRODUCED,
            protocol::body,
        )
    }

    fn sign(&self, position: Position, body: &Body) -> Result<Entry, RunnerError> {
        self.call(
            tag::SIGN,
            |w| protocol::put_sign(w, position, body),
            tag::SIGNED,
            protocol::signed,
        )
    }

    fn step(&self) -> Result<Option<NodeStep>, RunnerError> {
        self.call(tag::STEP, |_| {}, tag::STEPPED, protocol::step)
    }

    fn requests(
        &self,
        request: &ClusterKeyRequest,
    ) -> Result<Result<Requests, Refused>, RunnerError> {
        self.call(
            tag::REQUESTS,
            |w| protocol::put_request(w, request),
            tag::ROUND,
            protocol::round,
        )
    }

    fn check_answer(&self, ticket: Ticket, answer: &Envelope) -> Result<bool, RunnerError> {
        self.call(
            tag::CHECK,
            |w| protocol::put_check(w, ticket, answer),
            tag::CHECKED,
            |r| Ok(r.u8("enough")? != 0),
        )
    }

    fn provisioned(&self, ticket: Ticket) -> Result<Result<(), Refused>, RunnerError> {
        self.call(
            tag::PROVISIONED,
            |w| {
                w.u64(ticket);
            },
            tag::OUTCOME,
            protocol::outcome,
        )
    }

    fn audit(&self, ticket: Ticket) -> Result<Vec<Refused>, RunnerError> {
        self.call(
            tag::AUDIT,
            |w| {
                w.u64(ticket);
            },
            tag::AUDITED,
            protocol::refusals,
        )
    }

    fn answer_all(
        &self,
        requests: &[&[u8]],
    ) -> Result<Vec<Result<Envelope, Refused>>, RunnerError> {
        self.call(
            tag::ANSWER,
            |w| protocol::put_answer(w, requests),
            tag::ANSWERS,
            protocol::answers,
        )
    }

    fn save_checkpoint(&self, contract: &ContractId) -> Result<(), RunnerError> {
        self.call(
            tag::CHECKPOINT,
            |w| protocol::put_contract(w, contract),
            tag::SAVED,
            |_| Ok(()),
        )
    }

    fn held(&self) -> Result<u64, RunnerError> {
        self.call(tag::HELD, |_| {}, tag::COUNT, |r| r.u64("count"))
    }
}
