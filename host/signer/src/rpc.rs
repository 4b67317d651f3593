//! The JSON-RPC 2.0 server (jsonrpsee, HTTP only) and the `GET /metrics` and `GET /health`
//! routes on the same port.
//!
//! Methods: `registerNode`, `signVote`, `deregisterNode`, `rotateVoteKey` (signed, see
//! [`crate::wire::SignedParams`]), `getVotePubkey` and `getHealth`. Every refusal is a JSON-RPC
//! error whose code is stable per reason and whose `data` is `{"reason": "<name>"}`; the table is
//! in `docs/SIGNER.md`.

use keyward_host::to_base64;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use jsonrpsee::RpcModule;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse, Server, ServerConfig};
use jsonrpsee::types::ErrorObjectOwned;
pub use keyward_host::Running;
use tower::{Layer, Service};

use keyward_vote::{Answer, Method, Refusal, Rejection, ServiceId};

use crate::engine::{Engine, Failure, Query, QueryAnswer, Reachability, ServiceError};
use crate::interchange;
use crate::metrics::{MethodLabel, Metrics};
use crate::wire::{HealthResult, IdentityParams, SignatureResult, SignedParams, VoteKeyResult};

/// Most concurrent connections; more are answered with HTTP 429.
pub const MAX_CONNECTIONS: u32 = 4096;

/// Error code: the store could not commit.
pub const STORAGE_UNAVAILABLE: i32 = 1501;
/// Error code: too many requests are waiting.
pub const BUSY: i32 = 1502;
/// Error code: the service is shutting down.
pub const STOPPED: i32 = 1503;
/// Error code: `getVotePubkey` for an identity with no vote key.
pub const NO_VOTE_KEY: i32 = 1504;
/// Error code: the enclave cannot be reached or lost its session, or its counter could not
/// advance; nothing of the batch was released.
pub const ENCLAVE_UNAVAILABLE: i32 = 1505;

struct RpcContext {
    engine: Engine,
    metrics: Arc<Metrics>,
}

/// The JSON-RPC error for a service error.
pub fn error_object(e: &ServiceError) -> ErrorObjectOwned {
    let (code, reason) = match e {
        ServiceError::Refused(r) => (r.code, r.name.as_str()),
        ServiceError::Storage(_) => (STORAGE_UNAVAILABLE, "storage_unavailable"),
        ServiceError::Unavailable(_) => (ENCLAVE_UNAVAILABLE, "enclave_unavailable"),
        ServiceError::Busy(_) => (BUSY, "busy"),
        ServiceError::Stopped => (STOPPED, "stopped"),
    };
    ErrorObjectOwned::owned(
        code,
        e.to_string(),
        Some(serde_json::json!({ "reason": reason })),
    )
}

fn answer_json(answer: Answer) -> serde_json::Value {
    let value = match answer {
        Answer::VoteKey(info) => serde_json::to_value(VoteKeyResult {
            vote_pubkey: info.vote_pubkey.to_string(),
            evidence: to_base64(&info.evidence),
        }),
        Answer::Signature(signature) => serde_json::to_value(SignatureResult {
            signature: signature.to_string(),
        }),
        // A whole interchange document, ready for `signer-tower import` elsewhere.
        Answer::FinalTower(export) => serde_json::to_value(interchange::document(&[export])),
    };
    value.expect("plain structs serialize")
}

async fn handle(
    ctx: &RpcContext,
    method: Method,
    params: jsonrpsee::types::Params<'static>,
) -> Result<serde_json::Value, ErrorObjectOwned> {
    let started = Instant::now();
    let label = MethodLabel {
        method: method.name(),
    };
    ctx.metrics.requests.get_or_create(&label).inc();
    let result = async {
        let params: SignedParams = params.parse()?;
        let request = params
            .into_request(method)
            .map_err(|e| malformed(ctx, method, Refusal::from(e)))?;
        // The enclave checks the signature, with the rest of its batch (engine docs).
        let answer = ctx
            .engine
            .apply(request)
            .await
            .map_err(|e| error_object(&e))?;
        Ok(answer_json(answer))
    }
    .await;
    ctx.metrics
        .latency
        .get_or_create(&label)
        .observe(started.elapsed().as_secs_f64());
    result
}

/// A request refused before it reaches the enclave: its parameters do not parse.
fn malformed(ctx: &RpcContext, method: Method, refusal: Refusal) -> ErrorObjectOwned {
    let rejection = Rejection::from(&refusal);
    ctx.metrics.refused(method, &rejection);
    tracing::info!(
        target: "keyward::audit", event = "refused", method = method.name(),
        reason = refusal.name(), detail = %refusal
    );
    error_object(&ServiceError::Refused(rejection))
}

/// Starts the server on `listen`, refusing bodies over `max_body_bytes` before parsing.
///
/// # Errors
/// The bind error.
pub async fn serve(
    listen: SocketAddr,
    max_body_bytes: u32,
    engine: Engine,
    service: ServiceId,
    metrics: Arc<Metrics>,
) -> std::io::Result<Running> {
    let service_id = service.to_string();
    let failure = engine.failure().clone();
    let reachability = engine.reachability().clone();
    let ctx = RpcContext {
        engine,
        metrics: metrics.clone(),
    };
    let mut module = RpcModule::new(ctx);
    for method in Method::ALL {
        module
            .register_async_method(method.name(), move |params, ctx, _| async move {
                handle(&ctx, method, params).await
            })
            .expect("method names are unique");
    }
    module
        .register_async_method("getVotePubkey", |params, ctx, _| async move {
            let p: IdentityParams = params.parse()?;
            let identity = p.identity.parse().map_err(|_| {
                error_object(&ServiceError::Refused(Rejection::from(Refusal::Request(
                    keyward_vote::request::RequestError::Malformed("identity"),
                ))))
            })?;
            match ctx.engine.query(Query::VoteKey(identity)).await {
                Ok(QueryAnswer::VoteKey(Some(info))) => Ok(VoteKeyResult {
                    vote_pubkey: info.vote_pubkey.to_string(),
                    evidence: to_base64(&info.evidence),
                }),
                Ok(_) => Err(ErrorObjectOwned::owned(
                    NO_VOTE_KEY,
                    format!("validator {identity} has no vote key"),
                    Some(serde_json::json!({ "reason": "no_vote_key" })),
                )),
                Err(e) => Err(error_object(&e)),
            }
        })
        .expect("method names are unique");
    module
        .register_async_method("getHealth", move |_, ctx, _| {
            let service_id = service_id.clone();
            async move {
                match ctx.engine.query(Query::Registered).await {
                    Ok(QueryAnswer::Registered(validators)) => Ok(HealthResult {
                        status: "ok".into(),
                        service_id,
                        validators,
                        version: env!("CARGO_PKG_VERSION").into(),
                    }),
                    Ok(_) => Err(error_object(&ServiceError::Stopped)),
                    Err(e) => Err(error_object(&e)),
                }
            }
        })
        .expect("method names are unique");

    let server_config = ServerConfig::builder()
        .max_request_body_size(max_body_bytes)
        .max_response_body_size(1 << 20)
        .max_connections(MAX_CONNECTIONS)
        .http_only()
        .build();
    let server = Server::builder()
        .set_config(server_config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(OpsLayer {
            metrics,
            failure,
            reachability,
        }))
        .build(listen)
        .await?;
    let addr = server.local_addr()?;
    Ok(Running {
        addr,
        handle: server.start(module),
    })
}

/// Answers `GET /metrics` and `GET /health`; passes everything else to JSON-RPC.
#[derive(Clone)]
struct OpsLayer {
    metrics: Arc<Metrics>,
    failure: Failure,
    reachability: Reachability,
}

impl<S> Layer<S> for OpsLayer {
    type Service = OpsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        OpsService {
            inner,
            metrics: self.metrics.clone(),
            failure: self.failure.clone(),
            reachability: self.reachability.clone(),
        }
    }
}

#[derive(Clone)]
struct OpsService<S> {
    inner: S,
    metrics: Arc<Metrics>,
    failure: Failure,
    reachability: Reachability,
}

fn plain(status: http::StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(HttpBody::from(body))
        .expect("static parts are valid")
}

impl<S> OpsService<S> {
    /// 200 while requests can be answered; 503 with the reason after a failed commit (until a
    /// restart) or while there is no enclave session (until one reopens).
    fn health(&self) -> HttpResponse {
        let text = "text/plain; charset=utf-8";
        if let Some(e) = self.failure.get() {
            return plain(
                http::StatusCode::SERVICE_UNAVAILABLE,
                text,
                format!("storage failed, restart needed: {e}\n"),
            );
        }
        match self.reachability.lost() {
            Some(e) => plain(
                http::StatusCode::SERVICE_UNAVAILABLE,
                text,
                format!("no enclave session: {e}\n"),
            ),
            None => plain(http::StatusCode::OK, text, "ok\n".into()),
        }
    }
}

impl<S> Service<HttpRequest> for OpsService<S>
where
    S: Service<HttpRequest, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest) -> Self::Future {
        if req.method() == http::Method::GET {
            let response = match req.uri().path() {
                "/metrics" => Some(plain(
                    http::StatusCode::OK,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    self.metrics.render(),
                )),
                "/health" => Some(self.health()),
                _ => None,
            };
            if let Some(response) = response {
                return Box::pin(async move { Ok(response) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}
