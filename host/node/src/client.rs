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
