//! A typed client for the ledger's JSON-RPC methods. It trusts nothing it receives: callers
//! verify entries with their own core ([`crate::follow::Follower`] does).

use keyward_host::to_base64;
use std::time::Duration;

use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;

use keyward_ledger::Entry;

use crate::wire::{
    AppendParams, AppendResult, EntriesResult, HeadResult, HealthResult, MAX_WAIT_MS, ReadParams,
};

pub use keyward_host::ClientError;

/// A ledger server at one URL.
#[derive(Debug, Clone)]
pub struct LedgerClient {
    http: HttpClient,
}

impl LedgerClient {
    /// A client for `url` (`http://host:port`); requests time out after the longest long-poll
    /// plus 30 s.
    ///
    /// # Errors
    /// [`ClientError::Transport`] for a bad URL.
    pub fn new(url: &str) -> Result<Self, ClientError> {
        let http = HttpClientBuilder::default()
            .request_timeout(Duration::from_millis(MAX_WAIT_MS) + Duration::from_secs(30))
            .max_response_size(16 << 20)
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

    /// `appendEntries`: appends a chain of entries.
    ///
    /// # Errors
    /// [`ClientError`]; a refusal's `data` says which entries landed.
    pub async fn append(&self, entries: &[Entry]) -> Result<AppendResult, ClientError> {
        let params = AppendParams {
            entries: entries.iter().map(|e| to_base64(e.as_bytes())).collect(),
        };
        self.call("appendEntries", &params).await
    }

    /// `getEntries`: up to `limit` entries from height `from`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn entries(
        &self,
        from: u64,
        limit: Option<usize>,
    ) -> Result<EntriesResult, ClientError> {
        let params = ReadParams {
            from,
            limit,
            wait_ms: None,
        };
        self.call("getEntries", &params).await
    }

    /// `waitForEntries`: as [`LedgerClient::entries`], but waits up to `wait_ms` for height
    /// `from` to exist.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn wait(
        &self,
        from: u64,
        limit: Option<usize>,
        wait_ms: u64,
    ) -> Result<EntriesResult, ClientError> {
        let params = ReadParams {
            from,
            limit,
            wait_ms: Some(wait_ms),
        };
        self.call("waitForEntries", &params).await
    }

    /// `getHead`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn head(&self) -> Result<HeadResult, ClientError> {
        self.call("getHead", &serde_json::json!({})).await
    }

    /// `getHealth`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn health(&self) -> Result<HealthResult, ClientError> {
        self.call("getHealth", &serde_json::json!({})).await
    }
}
