//! The isolated runner's enclave side: `keyward enclave` serves one host connection at a time
//! over its Unix socket ([`super::protocol`]), with the [`Enclave`] behind it.
//!
//! One session per connection, and one connection at a time: a host that connects again (after
//! its own crash, or after a failure) starts a new session from its store, and the old one's
//! held answers are dropped unreleased. Two hosts can never hold sessions over the same counter
//! at once, so neither can sign from a state the other has moved past.

use std::io;
use std::os::unix::net::{UnixListener, UnixStream};

use keyward_crypto::DecodeError;
use keyward_isolation::{Frame, read_frame, write_frame};

use super::protocol::{self, OpenHeader, tag};
use super::{Changes, Enclave, Runner, RunnerError, Stored};

/// Serves host connections on `listener`, one after another, until accepting fails
/// ([`keyward_isolation::socket::accept`]).
///
/// # Errors
/// The listener's error.
pub fn serve(listener: &UnixListener, enclave: &mut Enclave) -> io::Result<()> {
    loop {
        let stream = keyward_isolation::socket::accept(listener)?;
        tracing::info!("a host connected");
        match session(stream, enclave) {
            Ok(()) => tracing::info!("the host disconnected"),
            Err(e) => tracing::warn!(error = %e, "the host connection ended"),
        }
        // Whatever the session held unreleased is dropped.
        enclave.close();
    }
}

/// Why a session ended early.
#[derive(Debug, thiserror::Error)]
enum SessionError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("{0}")]
    Failed(RunnerError),
}

fn session(mut stream: UnixStream, enclave: &mut Enclave) -> Result<(), SessionError> {
    let mut opening: Option<(OpenHeader, Changes)> = None;
    while let Some(Frame { tag, body }) = read_frame(&mut stream)? {
        let reply = match handle(tag, &body, enclave, &mut opening) {
            Ok(Some(reply)) => reply,
            Ok(None) => continue,
            Err(e) => {
                write_frame(&mut stream, tag::FAILED, &protocol::encode_failed(&e))?;
                return Err(SessionError::Failed(e));
            }
        };
        write_frame(&mut stream, reply.0, &reply.1)?;
    }
    Ok(())
}

fn malformed(e: DecodeError) -> RunnerError {
    RunnerError::Protocol(e.to_string())
}

/// One message's reply, or `None` for a `Records` frame that is not the last.
fn handle(
    tag: u8,
    body: &[u8],
    enclave: &mut Enclave,
    opening: &mut Option<(OpenHeader, Changes)>,
) -> Result<Option<(u8, Vec<u8>)>, RunnerError> {
    let reply = match tag {
        tag::OPEN => {
            let header = OpenHeader::decode(body).map_err(malformed)?;
            *opening = Some((header, Changes::default()));
            return open_if_complete(enclave, opening);
        }
        tag::RECORDS => {
            let Some((header, stored)) = opening.as_mut() else {
                return Err(RunnerError::Protocol("records without an open".into()));
            };
            stored.extend(protocol::decode_records(body).map_err(malformed)?);
            if stored.records.len() > header.records as usize
                || stored.evidence.len() > header.evidence as usize
            {
                return Err(RunnerError::Protocol(
                    "more records or evidence than announced".into(),
                ));
            }
            return open_if_complete(enclave, opening);
        }
        tag::APPLY => {
            let requests = protocol::decode_apply(body).map_err(malformed)?;
            (
                tag::APPLIED,
                protocol::encode_applied(&enclave.apply(requests)?),
            )
        }
        tag::SEAL => (tag::SEALED, protocol::encode_sealed(&enclave.seal()?)),
        tag::RELEASE => (
            tag::RELEASED,
            protocol::encode_released(&enclave.release()?),
        ),
        tag::QUERY => {
            let query = protocol::decode_query(body).map_err(malformed)?;
            (
                tag::ANSWERED,
                protocol::encode_answered(&enclave.query(&query)?),
            )
        }
        other => {
            return Err(RunnerError::Protocol(format!(
                "unknown message {other:#04x}"
            )));
        }
    };
    Ok(Some(reply))
}

/// Opens the store once every announced record and evidence blob is in.
fn open_if_complete(
    enclave: &mut Enclave,
    opening: &mut Option<(OpenHeader, Changes)>,
) -> Result<Option<(u8, Vec<u8>)>, RunnerError> {
    let complete = opening.as_ref().is_some_and(|(header, stored)| {
        stored.records.len() == header.records as usize
            && stored.evidence.len() == header.evidence as usize
    });
    if !complete {
        return Ok(None);
    }
    let (header, stored) = opening.take().expect("complete");
    let stored = Stored {
        platform: header.platform,
        records: stored.records,
        evidence: stored.evidence,
        manifest: header.manifest,
    };
    let opened = enclave.open(header.service, &stored)?;
    tracing::info!(
        validators = stored.records.len(),
        counter = opened.startup.counter,
        "store opened"
    );
    Ok(Some((tag::OPENED, protocol::encode_opened(&opened))))
}
