//! A typed client for a node's JSON-RPC methods. It trusts nothing it receives: a provisioning
//! answer is checked by the worker's core, a reply by the user's.

use keyward_host::{from_base64, to_base64};
use std::time::Duration;

use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use keyward_ledger::EntryHash;
use keyward_ledger_service::wire::hash_text;

use crate::wire::{NodeHealth, ProvisionParams, ProvisionResult, ReplyParams, ReplyResult};

pub use keyward_host::ClientError;

/// A node at one URL.
#[derive(Debug, Clone)]
pub struct NodeClient {
    http: HttpClient,
}

fn base64(text: &str) -> Result<Vec<u8>, ClientError> {
    from_base64(text).ok_or_else(|| ClientError::BadAnswer("not base64".into()))
}

impl NodeClient {
    /// A client for `url` (`http://host:port`) with a 10 s timeout.
    ///
    /// # Errors
    /// [`ClientError::Transport`] for a bad URL.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let http = HttpClientBuilder::default()
            .request_timeout(Duration::from_secs(10))
            .build(url)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(Self { http })
    }

    async fn call<R: DeserializeOwned>(
        &self,
        method: &str,
        params: &impl Serialize,
    ) -> Result<R, ClientError> {
        keyward_host::call(&self.http, method, params).await
    }

    /// `provisionClusterKey`: sends a signed request's bytes; returns the answer envelope's.
    ///
    /// # Errors
    /// [`ClientError`]; a refusal's `reason` names why.
    pub async fn provision(&self, request: &[u8]) -> Result<Vec<u8>, ClientError> {
        let params = ProvisionParams {
            request: to_base64(request),
        };
        let result: ProvisionResult = self.call("provisionClusterKey", &params).await?;
        base64(&result.answer)
    }

    /// `getReply`: the reply envelope's bytes for `command`, or `None` if the worker has none.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn reply(&self, command: &EntryHash) -> Result<Option<Vec<u8>>, ClientError> {
        let params = ReplyParams {
            command: hash_text(command),
        };
        match self.call::<ReplyResult>("getReply", &params).await {
            Ok(result) => base64(&result.reply).map(Some),
            Err(e) if e.reason() == Some("not_found") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `getHealth`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn health(&self) -> Result<NodeHealth, ClientError> {
        self.call("getHealth", &serde_json::json!({})).await
    }
}

/// Kept-alive clients, one per gatekeeper endpoint, so that asking for a key costs no new
/// connection.
#[derive(Debug, Default)]
pub struct Clients(std::collections::BTreeMap<std::net::SocketAddr, NodeClient>);

impl Clients {
    /// The client for `endpoint`, made on first use.
    ///
    /// # Errors
    /// As [`NodeClient::new`].
    pub fn get(&mut self, endpoint: std::net::SocketAddr) -> Result<NodeClient, ClientError> {
        if let Some(client) = self.0.get(&endpoint) {
            return Ok(client.clone());
        }
        let client = NodeClient::new(&format!("http://{endpoint}"))?;
        self.0.insert(endpoint, client.clone());
        Ok(client)
    }
}

/// A worker asks every holder of the request's epoch for its answer, all at once, each with its
/// own signed request (`signed`: gatekeeper, endpoint, signed request bytes). The answers come
/// out of [`Asks::next`] as they arrive, for the worker's core to check one by one.
pub fn ask_holders(
    clients: &mut Clients,
    signed: Vec<(
        keyward_crypto::IdentityPublicKey,
        std::net::SocketAddr,
        Vec<u8>,
    )>,
) -> Asks {
    let mut asks = tokio::task::JoinSet::new();
    for (gatekeeper, endpoint, request) in signed {
        match clients.get(endpoint) {
            Ok(client) => {
                asks.spawn(async move { (gatekeeper, client.provision(&request).await) });
            }
            Err(e) => tracing::info!(%gatekeeper, error = %e, "no provisioning answer"),
        }
    }
    Asks(asks)
}

/// A worker's provisioning requests in flight ([`ask_holders`]). Dropping it abandons the ones
/// still unanswered.
#[derive(Debug)]
pub struct Asks(
    tokio::task::JoinSet<(
        keyward_crypto::IdentityPublicKey,
        Result<Vec<u8>, ClientError>,
    )>,
);

impl Asks {
    /// The next answer to arrive, or `None` once every holder has answered or failed (each
    /// request times out after 10 s). Failures and malformed answers are logged and skipped: the
    /// worker's core decides what the answers are worth.
    pub async fn next(&mut self) -> Option<keyward_crypto::Envelope> {
        loop {
            let Ok((gatekeeper, answer)) = self.0.join_next().await? else {
                continue;
            };
            match answer.map(|bytes| keyward_crypto::Envelope::from_bytes(&bytes)) {
                Ok(Ok(envelope)) if envelope.sender() == gatekeeper => return Some(envelope),
                Ok(Ok(_)) => {
                    tracing::warn!(%gatekeeper, "provisioning answer claims another sender");
                }
                Ok(Err(e)) => {
                    tracing::warn!(%gatekeeper, error = %e, "malformed provisioning answer");
                }
                Err(e) => tracing::info!(%gatekeeper, error = %e, "no provisioning answer"),
            }
        }
    }
}
