//! A typed client for the ledger's JSON-RPC methods. It trusts nothing it receives: callers
//! verify entries with their own core ([`crate::follow::Follower`] does).

use std::time::Duration;

use jsonrpsee::core::client::{ClientT, Error as RpcError};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee_http_client::{HttpClient, HttpClientBuilder};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;

use keyward_ledger::Entry;

use crate::wire::{
    AppendParams, AppendResult, EntriesResult, HeadResult, HealthResult, MAX_WAIT_MS, ReadParams,
    to_base64,
};

/// Why a call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server refused, with its stable code, reason and data.
    #[error("refused ({reason}, code {code}): {message}")]
    Refused {
        /// The JSON-RPC error code.
        code: i32,
        /// The stable reason name.
        reason: String,
        /// The human-readable message.
        message: String,
        /// The error's `data` (for a refused append: `index`, `accepted`, `head`).
        data: serde_json::Value,
    },
    /// The server could not be reached or answered with an HTTP error.
    #[error("cannot reach the ledger: {0}")]
    Transport(String),
    /// The answer does not have the expected shape.
    #[error("unexpected answer from the ledger: {0}")]
    BadAnswer(String),
}

impl ClientError {
    /// The refusal's reason name, if the server refused.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Refused { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

impl From<RpcError> for ClientError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Call(obj) => {
                let data = obj
                    .data()
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d.get()).ok())
                    .unwrap_or(serde_json::Value::Null);
                Self::Refused {
                    code: obj.code(),
                    reason: data
                        .get("reason")
                        .and_then(|r| r.as_str())
                        .unwrap_or("unknown")
                        .to_owned(),
                    message: obj.message().to_owned(),
                    data,
                }
            }
            RpcError::ParseError(e) => Self::BadAnswer(e.to_string()),
            other => Self::Transport(other.to_string()),
        }
    }
}

/// A ledger server at one URL.
#[derive(Debug, Clone)]
pub struct LedgerClient {
    http: HttpClient,
}

fn object(params: &impl Serialize) -> Result<ObjectParams, ClientError> {
    let mut object = ObjectParams::new();
    if let serde_json::Value::Object(map) =
        serde_json::to_value(params).map_err(|e| ClientError::BadAnswer(e.to_string()))?
    {
        for (k, v) in map {
            object
                .insert(&k, v)
                .map_err(|e| ClientError::BadAnswer(e.to_string()))?;
        }
    }
    Ok(object)
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
        Ok(self.http.request(method, object(params)?).await?)
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
