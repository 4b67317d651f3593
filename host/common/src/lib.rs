//! What every keyward server and client on the host side shares: the writer thread's failure
//! flag, the handle of a running JSON-RPC server, the client's error for a JSON-RPC call,
//! crash-safe file writes, and the configuration form of a vendor attestation policy.

pub mod attestation;
pub mod counter;
pub mod files;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use jsonrpsee::core::client::Error as RpcError;
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::server::ServerHandle;
use serde::Serialize;
use thiserror::Error;

/// Set once, by a service's writer thread, when a commit fails or the writer stops; from then on
/// the service changes nothing until restarted. Cheap to clone; shared with the health checks.
#[derive(Clone, Default)]
pub struct Failure(Arc<OnceLock<String>>);

impl Failure {
    /// What failed, if anything has.
    pub fn get(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    /// Records `error`, unless a failure is already recorded.
    pub fn set(&self, error: String) {
        let _ = self.0.set(error);
    }

    /// A guard for the writer thread to hold: however the thread ends (shutdown or a panic), the
    /// failure "the writer has stopped" is recorded when it drops.
    pub fn stopped_guard(&self) -> StoppedGuard {
        StoppedGuard(self.clone())
    }
}

/// See [`Failure::stopped_guard`].
pub struct StoppedGuard(Failure);

impl Drop for StoppedGuard {
    fn drop(&mut self) {
        self.0.set("the writer has stopped".into());
    }
}

/// A running JSON-RPC server.
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    /// The server handle; dropping every handle stops the server.
    pub handle: ServerHandle,
}

impl Running {
    /// Serves `module` over HTTP only on `listen`, refusing request bodies over
    /// `max_request_bytes` before parsing them and capping responses at `max_response_bytes`.
    ///
    /// # Errors
    /// The bind error.
    pub async fn serve_http<Context: Send + Sync + 'static>(
        listen: SocketAddr,
        module: jsonrpsee::RpcModule<Context>,
        max_request_bytes: u32,
        max_response_bytes: u32,
    ) -> std::io::Result<Self> {
        let config = jsonrpsee::server::ServerConfig::builder()
            .max_request_body_size(max_request_bytes)
            .max_response_body_size(max_response_bytes)
            .http_only()
            .build();
        let server = jsonrpsee::server::Server::builder()
            .set_config(config)
            .build(listen)
            .await?;
        let addr = server.local_addr()?;
        Ok(Self {
            addr,
            handle: server.start(module),
        })
    }
}

/// Why a JSON-RPC call failed.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The server refused, with its stable code, reason and data.
    #[error("refused ({reason}, code {code}): {message}")]
    Refused {
        /// The JSON-RPC error code.
        code: i32,
        /// The stable reason name (`data.reason`), or `"unknown"`.
        reason: String,
        /// The human-readable message.
        message: String,
        /// The error's whole `data` object (`Null` if there is none).
        data: serde_json::Value,
    },
    /// The server could not be reached or answered with an HTTP error.
    #[error("cannot reach the server: {0}")]
    Transport(String),
    /// The answer does not have the expected shape.
    #[error("unexpected answer from the server: {0}")]
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

/// Standard base64 (RFC 4648, padded): how every keyward JSON-RPC API carries bytes.
pub fn to_base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes [`to_base64`]'s text; `None` if it is not standard padded base64.
pub fn from_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Calls `method` with named parameters `params` and decodes the result.
///
/// # Errors
/// [`ClientError`].
pub async fn call<R: serde::de::DeserializeOwned>(
    client: &impl jsonrpsee::core::client::ClientT,
    method: &str,
    params: &impl Serialize,
) -> Result<R, ClientError> {
    Ok(client.request(method, object_params(params)?).await?)
}

/// Named JSON-RPC parameters from a struct that serializes to a JSON object.
///
/// # Errors
/// [`ClientError::BadAnswer`] if it does not serialize.
pub fn object_params(params: &impl Serialize) -> Result<ObjectParams, ClientError> {
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
