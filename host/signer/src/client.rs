//! The reference client: signs requests with the validator's identity and calls the signer.
//!
//! Nonces are the current time in microseconds, bumped past the last one this client used, so
//! separate client processes for one identity stay increasing without shared state (as long as
//! the clock does not step back).

use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonrpsee::core::client::ClientT;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use serde::de::DeserializeOwned;

use keyward_crypto::{SolanaKeypair, SolanaPubkey, SolanaSignature};
use keyward_vote::{Method, Payload, ServiceId, SignedRequest};

use crate::interchange::Interchange;
use crate::wire::{HealthResult, SignatureResult, SignedParams, VoteKeyResult};

pub use keyward_host::ClientError;

/// A client for one validator identity.
pub struct Client {
    http: HttpClient,
    identity: SolanaKeypair,
    service: ServiceId,
    last_nonce: Mutex<u64>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("identity", &self.identity.pubkey())
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// An HTTP client for `url` with a 30 s timeout.
///
/// # Errors
/// [`ClientError::Transport`] for a bad URL.
pub fn http(url: &str) -> Result<HttpClient, ClientError> {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(30))
        .build(url)
        .map_err(|e| ClientError::Transport(e.to_string()))
}

/// Calls `getHealth`.
///
/// # Errors
/// [`ClientError`].
pub async fn health(http: &HttpClient) -> Result<HealthResult, ClientError> {
    Ok(http.request("getHealth", ObjectParams::new()).await?)
}

impl Client {
    /// A client for `identity` at `url`; asks the signer for its service id.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn connect(url: &str, identity: SolanaKeypair) -> Result<Self, ClientError> {
        let http = http(url)?;
        let service = health(&http)
            .await?
            .service_id
            .parse()
            .map_err(|_| ClientError::BadAnswer("service id is not base58".into()))?;
        Ok(Self::new(http, identity, service))
    }

    /// A client for `identity` on `http`, addressing requests to `service`.
    pub fn new(http: HttpClient, identity: SolanaKeypair, service: ServiceId) -> Self {
        Self {
            http,
            identity,
            service,
            last_nonce: Mutex::new(0),
        }
    }

    /// The identity's public key.
    pub fn identity(&self) -> SolanaPubkey {
        self.identity.pubkey()
    }

    /// The next nonce: now in microseconds, above every nonce this client has used.
    pub fn next_nonce(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let mut last = self.last_nonce.lock().unwrap_or_else(|p| p.into_inner());
        *last = now.max(last.saturating_add(1));
        *last
    }

    /// Signs `payload` with a fresh nonce.
    pub fn sign(&self, payload: Payload) -> SignedRequest {
        SignedRequest::sign(payload, self.service, &self.identity, self.next_nonce())
    }

    /// Sends a signed request and decodes its result.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn send<R: DeserializeOwned>(
        &self,
        request: &SignedRequest,
    ) -> Result<R, ClientError> {
        let method: Method = request.payload.method();
        keyward_host::call(
            &self.http,
            method.name(),
            &SignedParams::from_request(request),
        )
        .await
    }

    /// `registerNode`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn register(&self, vote_account: SolanaPubkey) -> Result<VoteKeyResult, ClientError> {
        self.send(&self.sign(Payload::RegisterNode { vote_account }))
            .await
    }

    /// `signVote`: the vote key's signature over `message`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn sign_vote(
        &self,
        message: Vec<u8>,
        evidence: Vec<Vec<u8>>,
    ) -> Result<SolanaSignature, ClientError> {
        let result: SignatureResult = self
            .send(&self.sign(Payload::SignVote { message, evidence }))
            .await?;
        result
            .signature
            .parse()
            .map_err(|_| ClientError::BadAnswer("signature is not base58".into()))
    }

    /// `deregisterNode`: the final tower, as an interchange document.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn deregister(&self) -> Result<Interchange, ClientError> {
        self.send(&self.sign(Payload::DeregisterNode)).await
    }

    /// `rotateVoteKey`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn rotate(&self) -> Result<VoteKeyResult, ClientError> {
        self.send(&self.sign(Payload::RotateVoteKey)).await
    }
}
