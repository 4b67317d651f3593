//! Signed requests: every call a validator makes is signed by its ed25519 identity over a
//! domain-separated encoding of (method, signer service id, validator identity, nonce, payload).
//!
//! The signed bytes are (see `docs/PROTOCOL.md`, "Vote signer requests"):
//!
//! ```text
//! var16("keyward/v1/signer-request") || var8(method) || service_id[32] || identity[32]
//!   || nonce: u64 BE || var32(payload)
//! ```
//!
//! so a request signed for one method, one signer service or one validator never verifies as
//! another, unlike the old Solana `vote-signer`, which signed only the payload.

use std::fmt;
use std::str::FromStr;

use keyward_crypto::{SolanaKeypair, SolanaPubkey, SolanaSignature, VerifierCache, Writer};
use sha2::{Digest, Sha256};
use thiserror::Error;

const LABEL: &[u8] = b"keyward/v1/signer-request";

/// Most evidence transactions one `signVote` may carry.
pub const MAX_EVIDENCE: usize = 256;

/// A transaction is at most Solana's packet size.
pub const MAX_TRANSACTION_LEN: usize = 1232;

/// The signer service's 32-byte id, shown in base58. Requests name the service they are for.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServiceId(pub [u8; 32]);

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Same base58 text as an address.
        fmt::Display::fmt(&SolanaPubkey(self.0), f)
    }
}

impl fmt::Debug for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServiceId({self})")
    }
}

impl FromStr for ServiceId {
    type Err = RequestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SolanaPubkey::parse_address(s)
            .map(|k| Self(k.0))
            .map_err(|_| RequestError::Malformed("service id is not 32 bytes of base58"))
    }
}

/// The authenticated methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Create (or return) the validator's vote key.
    RegisterNode,
    /// Sign a vote transaction message.
    SignVote,
    /// Stop signing for the validator and return its final tower.
    DeregisterNode,
    /// Replace the vote key; the tower carries over.
    RotateVoteKey,
}

impl Method {
    /// Every method, in a fixed order.
    pub const ALL: [Self; 4] = [
        Self::RegisterNode,
        Self::SignVote,
        Self::DeregisterNode,
        Self::RotateVoteKey,
    ];

    /// The JSON-RPC method name, which is also the name in the signed bytes.
    pub const fn name(self) -> &'static str {
        match self {
            Self::RegisterNode => "registerNode",
            Self::SignVote => "signVote",
            Self::DeregisterNode => "deregisterNode",
            Self::RotateVoteKey => "rotateVoteKey",
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// `registerNode`: the validator's vote account.
    RegisterNode {
        /// The vote account the key will vote for.
        vote_account: SolanaPubkey,
    },
    /// `signVote`: the message to sign and, for ancestor verification, the active set's votes.
    SignVote {
        /// The serialized transaction message (legacy or v0).
        message: Vec<u8>,
        /// Signed vote transactions of the active set from the previous voting period.
        evidence: Vec<Vec<u8>>,
    },
    /// `deregisterNode`.
    DeregisterNode,
    /// `rotateVoteKey`.
    RotateVoteKey,
}

impl Payload {
    /// The method this payload belongs to.
    pub fn method(&self) -> Method {
        match self {
            Self::RegisterNode { .. } => Method::RegisterNode,
            Self::SignVote { .. } => Method::SignVote,
            Self::DeregisterNode => Method::DeregisterNode,
            Self::RotateVoteKey => Method::RotateVoteKey,
        }
    }

    /// The canonical payload bytes that are signed.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::RegisterNode { vote_account } => {
                w.raw(&vote_account.0);
            }
            // Four-byte lengths: encoding never fails, whatever a caller holds; the sizes are
            // checked where requests are accepted (`SignerConfig::prepare`).
            Self::SignVote { message, evidence } => {
                w.var32(message);
                w.u32(
                    u32::try_from(evidence.len()).expect("fewer than 2^32 transactions in memory"),
                );
                for tx in evidence {
                    w.var32(tx);
                }
            }
            Self::DeregisterNode | Self::RotateVoteKey => {}
        }
        w.finish()
    }
}

/// A request as it travels: the payload, who sends it, for which service, with which nonce, and
/// the identity's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedRequest {
    /// What is asked.
    pub payload: Payload,
    /// The service it is addressed to.
    pub service: ServiceId,
    /// The validator's identity key.
    pub identity: SolanaPubkey,
    /// A number the validator never reuses; each must exceed the last one accepted.
    pub nonce: u64,
    /// The identity's signature over [`signing_bytes`].
    pub signature: SolanaSignature,
}

/// Why a request was refused before it reached any validator state.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// A field does not decode.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    /// The identity's signature does not verify.
    #[error("the request signature does not verify for identity {0}")]
    BadSignature(SolanaPubkey),
    /// Addressed to another signer service.
    #[error("the request is addressed to signer service {found}, this is {expected}")]
    WrongService {
        /// The service named in the request.
        found: ServiceId,
        /// This service.
        expected: ServiceId,
    },
}

/// The bytes an identity signs for a request.
pub fn signing_bytes(
    payload: &Payload,
    service: &ServiceId,
    identity: &SolanaPubkey,
    nonce: u64,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(LABEL)
        .var8(payload.method().name().as_bytes())
        .raw(&service.0)
        .raw(&identity.0)
        .u64(nonce)
        .var32(&payload.encode());
    w.finish()
}

impl SignedRequest {
    /// Signs `payload` as `identity` for `service` with `nonce` (what a client does).
    pub fn sign(
        payload: Payload,
        service: ServiceId,
        identity: &SolanaKeypair,
        nonce: u64,
    ) -> Self {
        let pubkey = identity.pubkey();
        let signature = identity.sign(&signing_bytes(&payload, &service, &pubkey, nonce));
        Self {
            payload,
            service,
            identity: pubkey,
            nonce,
            signature,
        }
    }

    /// Checks the service id and the signature of each request, and returns each one's verdict
    /// in order. Needs no state. The signatures are checked together
    /// ([`VerifierCache::verify_batch`]: about half the cost of one-by-one checks, and a
    /// signature the batch accepts was made by its identity's key).
    ///
    /// # Errors
    /// Per request: [`RequestError::Malformed`] (evidence over its limits),
    /// [`RequestError::WrongService`] or [`RequestError::BadSignature`].
    ///
    /// `keys` keeps decoded identity keys between requests; it changes no outcome.
    pub fn authenticate_all(
        requests: Vec<Self>,
        service: &ServiceId,
        keys: &VerifierCache,
    ) -> Vec<Result<Authenticated, RequestError>> {
        let checked: Vec<Result<(Self, Vec<u8>), RequestError>> = requests
            .into_iter()
            .map(|request| {
                let bytes = request.check(service)?;
                Ok((request, bytes))
            })
            .collect();
        let items: Vec<(SolanaPubkey, &[u8], SolanaSignature)> = checked
            .iter()
            .filter_map(|c| c.as_ref().ok())
            .map(|(request, bytes)| (request.identity, bytes.as_slice(), request.signature))
            .collect();
        let mut verdicts = keys.verify_batch(&items).into_iter();
        checked
            .into_iter()
            .map(|c| {
                let (request, bytes) = c?;
                match verdicts.next() {
                    Some(Ok(())) => Ok(Authenticated {
                        digest: Sha256::digest(&bytes).into(),
                        request,
                    }),
                    _ => Err(RequestError::BadSignature(request.identity)),
                }
            })
            .collect()
    }

    /// The checks before the signature's, and the bytes it signs.
    fn check(&self, service: &ServiceId) -> Result<Vec<u8>, RequestError> {
        if let Payload::SignVote { evidence, .. } = &self.payload
            && (evidence.len() > MAX_EVIDENCE
                || evidence.iter().any(|tx| tx.len() > MAX_TRANSACTION_LEN))
        {
            return Err(RequestError::Malformed(
                "the evidence is over its size limit",
            ));
        }
        if self.service != *service {
            return Err(RequestError::WrongService {
                found: self.service,
                expected: *service,
            });
        }
        Ok(signing_bytes(
            &self.payload,
            &self.service,
            &self.identity,
            self.nonce,
        ))
    }
}

/// A request whose signature and service id have been checked.
#[derive(Debug, Clone)]
pub struct Authenticated {
    request: SignedRequest,
    digest: [u8; 32],
}

impl Authenticated {
    /// The request.
    pub fn request(&self) -> &SignedRequest {
        &self.request
    }

    /// SHA-256 of the signed bytes: equal digests mean byte-identical requests.
    pub fn digest(&self) -> [u8; 32] {
        self.digest
    }
}
