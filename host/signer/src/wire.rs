//! JSON shapes of the JSON-RPC methods (see `docs/SIGNER.md`): named parameters, camelCase,
//! ed25519 keys and signatures in base58, bytes in base64, integers as JSON numbers.

use keyward_host::{from_base64, to_base64};
use serde::{Deserialize, Serialize};

use keyward_crypto::{SolanaPubkey, SolanaSignature};
use keyward_vote::request::RequestError;
use keyward_vote::{Payload, ServiceId, SignedRequest};

/// Parameters of an authenticated method.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignedParams {
    /// The service the request is for.
    pub service_id: String,
    /// The validator identity.
    pub identity: String,
    /// The request nonce.
    pub nonce: u64,
    /// `registerNode`: the vote account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vote_account: Option<String>,
    /// `signVote`: the message, base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `signVote`: evidence transactions, base64.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
    /// The identity's signature over the request, base58.
    pub signature: String,
}

/// Parameters of `getVotePubkey`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IdentityParams {
    /// The validator identity.
    pub identity: String,
}

/// Result of `registerNode`, `rotateVoteKey` and `getVotePubkey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoteKeyResult {
    /// The vote public key, base58.
    pub vote_pubkey: String,
    /// The attestation evidence binding it, base64.
    pub evidence: String,
}

/// Result of `signVote`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignatureResult {
    /// The vote key's signature over the message, base58.
    pub signature: String,
}

/// Result of `getHealth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthResult {
    /// Always `"ok"` when the service answers.
    pub status: String,
    /// The service id, base58.
    pub service_id: String,
    /// Registered validators.
    pub validators: usize,
    /// The keyward version.
    pub version: String,
}

/// Decodes a base64 field.
pub fn base64(field: &'static str, s: &str) -> Result<Vec<u8>, RequestError> {
    from_base64(s).ok_or(RequestError::Malformed(field))
}

impl SignedParams {
    /// The core request these parameters carry for `method`.
    ///
    /// # Errors
    /// [`RequestError::Malformed`] naming the field that does not decode, or a field that does
    /// not belong to the method.
    pub fn into_request(self, method: keyward_vote::Method) -> Result<SignedRequest, RequestError> {
        use keyward_vote::Method as M;
        let extra = match method {
            M::RegisterNode => self.message.is_some() || !self.evidence.is_empty(),
            M::SignVote => self.vote_account.is_some(),
            M::DeregisterNode | M::RotateVoteKey => {
                self.vote_account.is_some() || self.message.is_some() || !self.evidence.is_empty()
            }
        };
        if extra {
            return Err(RequestError::Malformed(
                "a parameter that this method does not take",
            ));
        }
        let payload = match method {
            M::RegisterNode => Payload::RegisterNode {
                vote_account: SolanaPubkey::parse_address(
                    self.vote_account
                        .as_deref()
                        .ok_or(RequestError::Malformed("voteAccount is missing"))?,
                )
                .map_err(|_| RequestError::Malformed("voteAccount"))?,
            },
            M::SignVote => Payload::SignVote {
                message: base64(
                    "message",
                    self.message
                        .as_deref()
                        .ok_or(RequestError::Malformed("message is missing"))?,
                )?,
                evidence: self
                    .evidence
                    .iter()
                    .map(|e| base64("evidence", e))
                    .collect::<Result<_, _>>()?,
            },
            M::DeregisterNode => Payload::DeregisterNode,
            M::RotateVoteKey => Payload::RotateVoteKey,
        };
        Ok(SignedRequest {
            payload,
            service: self
                .service_id
                .parse::<ServiceId>()
                .map_err(|_| RequestError::Malformed("serviceId"))?,
            // Only the bytes: the signature check decodes the point (a second decoding here
            // would cost as much as a fifth of the verification), and refuses a non-point.
            identity: SolanaPubkey::parse_address(&self.identity)
                .map_err(|_| RequestError::Malformed("identity"))?,
            nonce: self.nonce,
            signature: self
                .signature
                .parse::<SolanaSignature>()
                .map_err(|_| RequestError::Malformed("signature"))?,
        })
    }

    /// The parameters of a signed core request.
    pub fn from_request(request: &SignedRequest) -> Self {
        let mut params = Self {
            service_id: request.service.to_string(),
            identity: request.identity.to_string(),
            nonce: request.nonce,
            vote_account: None,
            message: None,
            evidence: Vec::new(),
            signature: request.signature.to_string(),
        };
        match &request.payload {
            Payload::RegisterNode { vote_account } => {
                params.vote_account = Some(vote_account.to_string());
            }
            Payload::SignVote { message, evidence } => {
                params.message = Some(to_base64(message));
                params.evidence = evidence.iter().map(|e| to_base64(e)).collect();
            }
            Payload::DeregisterNode | Payload::RotateVoteKey => {}
        }
        params
    }
}
