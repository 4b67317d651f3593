//! The isolated runner's host side: the core runs in `keyward enclave`, reached over a Unix
//! socket ([`super::protocol`]).
//!
//! A lost connection (the enclave crashed or restarted) fails the call in progress with
//! [`RunnerError::Unavailable`] and drops the session; the next [`Runner::open`] connects again.
//! Nothing held in the lost session was released, so nothing it signed left the enclave, and
//! the store is as the last released commit left it.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use keyward_crypto::DecodeError;
use keyward_isolation::{Frame, read_frame, write_frame};
use keyward_vote::{CommitManifest, LockoutPolicy, ServiceId, SignedRequest};

use super::protocol::{self, OpenHeader, tag};
use super::{Changes, Opening, Outcome, Query, QueryAnswer, Runner, RunnerError, Stored};

/// How long one answer from the enclave may take before the connection is given up.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The host's end of the isolated runner.
#[derive(Debug)]
pub struct Isolated {
    socket: PathBuf,
    /// Towers in answers are checked against it.
    lockout: LockoutPolicy,
    stream: Option<UnixStream>,
}

impl Isolated {
    /// A runner that reaches `keyward enclave` at `socket`; it connects on [`Runner::open`].
    pub fn new(socket: PathBuf, lockout: LockoutPolicy) -> Self {
        Self {
            socket,
            lockout,
            stream: None,
        }
    }

    fn unavailable(&mut self, e: &io::Error) -> RunnerError {
        self.stream = None;
        RunnerError::Unavailable(format!("{}: {e}", self.socket.display()))
    }

    fn send(&mut self, tag: u8, body: &[u8]) -> Result<(), RunnerError> {
        let stream = self.stream.as_mut().ok_or(RunnerError::NotOpen)?;
        write_frame(stream, tag, body).map_err(|e| self.unavailable(&e))
    }

    /// Sends one message and reads its answer, which must carry `expect`.
    fn call(&mut self, tag: u8, body: &[u8], expect: u8) -> Result<Vec<u8>, RunnerError> {
        self.send(tag, body)?;
        let stream = self.stream.as_mut().ok_or(RunnerError::NotOpen)?;
        match read_frame(stream) {
            Ok(Some(Frame { tag, body })) if tag == expect => Ok(body),
            Ok(Some(Frame {
                tag: tag::FAILED,
                body,
            })) => {
                self.stream = None;
                Err(protocol::decode_failed(&body))
            }
            Ok(Some(Frame { tag, .. })) => {
                self.stream = None;
                Err(RunnerError::Protocol(format!(
                    "answer {tag:#04x} where {expect:#04x} was due"
                )))
            }
            Ok(None) => Err(self.unavailable(&io::ErrorKind::UnexpectedEof.into())),
            Err(e) => Err(self.unavailable(&e)),
        }
    }

    fn decoded<T>(&mut self, decoded: Result<T, DecodeError>) -> Result<T, RunnerError> {
        decoded.map_err(|e| {
            self.stream = None;
            RunnerError::Protocol(e.to_string())
        })
    }
}

impl Runner for Isolated {
    fn open(&mut self, service: ServiceId, stored: &Stored) -> Result<Opening, RunnerError> {
        // A new connection: the enclave drops whatever session an earlier one had.
        self.stream = None;
        let stream = UnixStream::connect(&self.socket).map_err(|e| self.unavailable(&e))?;
        stream
            .set_read_timeout(Some(ANSWER_TIMEOUT))
            .map_err(|e| self.unavailable(&e))?;
        self.stream = Some(stream);
        let count = |n: usize| {
            u32::try_from(n).map_err(|_| RunnerError::Open("more than 2^32 items to open".into()))
        };
        let header = OpenHeader {
            service,
            platform: stored.platform.clone(),
            manifest: stored.manifest.clone(),
            records: count(stored.records.len())?,
            evidence: count(stored.evidence.len())?,
        };
        let frames = protocol::encode_records(&stored.records, &stored.evidence);
        let Some((last, rest)) = frames.split_last() else {
            let body = self.call(tag::OPEN, &header.encode(), tag::OPENED)?;
            return self.decoded(protocol::decode_opened(&body));
        };
        self.send(tag::OPEN, &header.encode())?;
        for frame in rest {
            self.send(tag::RECORDS, frame)?;
        }
        let body = self.call(tag::RECORDS, last, tag::OPENED)?;
        self.decoded(protocol::decode_opened(&body))
    }

    fn apply(&mut self, requests: Vec<SignedRequest>) -> Result<Changes, RunnerError> {
        let mut changes = Changes::default();
        let encoded: Vec<Vec<u8>> = requests.iter().map(SignedRequest::to_bytes).collect();
        for chunk in protocol::chunks(&encoded, |request| request.len() + 4) {
            let body = self.call(tag::APPLY, &protocol::encode_apply(chunk), tag::APPLIED)?;
            changes.extend(self.decoded(protocol::decode_applied(&body))?);
        }
        Ok(changes)
    }

    fn seal(&mut self) -> Result<CommitManifest, RunnerError> {
        let body = self.call(tag::SEAL, &[], tag::SEALED)?;
        self.decoded(protocol::decode_sealed(&body))
    }

    fn release(&mut self) -> Result<Vec<Outcome>, RunnerError> {
        let body = self.call(tag::RELEASE, &[], tag::RELEASED)?;
        let lockout = self.lockout;
        self.decoded(protocol::decode_released(&body, &lockout))
    }

    fn query(&mut self, query: &Query) -> Result<QueryAnswer, RunnerError> {
        let body = self.call(tag::QUERY, &protocol::encode_query(query), tag::ANSWERED)?;
        self.decoded(protocol::decode_answered(&body))
    }

    fn close(&mut self) {
        self.stream = None;
    }
}
