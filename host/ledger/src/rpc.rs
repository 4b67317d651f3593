//! The ledger's JSON-RPC 2.0 server (jsonrpsee, HTTP only).
//!
//! Methods: `appendEntries`, `getEntries`, `waitForEntries` (long-poll), `getHead`, `getHealth`.
//! A refused entry is a JSON-RPC error with the core's stable code (2001–2599, PROTOCOL §16.5)
//! and `data: {reason, index, accepted, head}`; the entries before `index` are on the ledger.
//! Host errors use 2601–2699.

use keyward_host::{from_base64, to_base64};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use jsonrpsee::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;
pub use keyward_host::Running;

use keyward_ledger::{Entry, Genesis};

use crate::engine::{AppendError, Chain, Engine, Head};
use crate::store::Store;
use crate::wire::{
    AppendParams, AppendResult, EntriesResult, EntryJson, HeadJson, HeadResult, HealthResult,
    MAX_APPEND, MAX_READ, MAX_WAIT_MS, ReadParams, hash_text,
};

/// Error code: the store could not commit; restart needed.
pub const STORAGE_UNAVAILABLE: i32 = 2601;
/// Error code: too many appends are waiting.
pub const BUSY: i32 = 2602;
/// Error code: the server is shutting down.
pub const STOPPED: i32 = 2603;
/// Error code: parameters out of range (entry count, limit, base64).
pub const BAD_PARAMS: i32 = 2604;

/// Most bytes of entries one read returns (before base64); a read stops early past it.
pub const MAX_READ_BYTES: usize = 4 << 20;

struct RpcContext {
    engine: Engine,
    genesis: Arc<Genesis>,
    store: Store,
    /// Appends being verified or waiting for the writer.
    in_flight: AtomicUsize,
    max_in_flight: usize,
}

/// Counts one append in flight; refuses before any verification work when too many are.
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(ctx: &'a RpcContext) -> Result<Self, ErrorObjectOwned> {
        if ctx.in_flight.fetch_add(1, Ordering::AcqRel) >= ctx.max_in_flight {
            ctx.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(append_error(AppendError::Busy(ctx.max_in_flight)));
        }
        Ok(Self(&ctx.in_flight))
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn error(
    code: i32,
    reason: &str,
    message: String,
    data: Option<serde_json::Value>,
) -> ErrorObjectOwned {
    let mut data = data.unwrap_or_else(|| serde_json::json!({}));
    data["reason"] = reason.into();
    ErrorObjectOwned::owned(code, message, Some(data))
}

fn bad_params(message: impl Into<String>) -> ErrorObjectOwned {
    error(BAD_PARAMS, "bad_params", message.into(), None)
}

/// The JSON-RPC error for a failed append.
pub fn append_error(e: AppendError) -> ErrorObjectOwned {
    let message = e.to_string();
    match e {
        AppendError::Refused {
            index,
            reason,
            accepted,
            head,
        } => {
            let data = AppendResult {
                accepted: accepted.into_iter().map(Into::into).collect(),
                head: head.into(),
            };
            let mut data = serde_json::to_value(data).expect("plain struct");
            data["index"] = index.into();
            error(reason.code(), reason.name(), message, Some(data))
        }
        AppendError::Storage(_) => error(STORAGE_UNAVAILABLE, "storage_unavailable", message, None),
        AppendError::Busy(_) => error(BUSY, "busy", message, None),
        AppendError::Stopped => error(STOPPED, "stopped", message, None),
    }
}

async fn append(ctx: &RpcContext, params: AppendParams) -> Result<AppendResult, ErrorObjectOwned> {
    let _in_flight = InFlight::enter(ctx)?;
    if params.entries.is_empty() || params.entries.len() > MAX_APPEND {
        return Err(bad_params(format!(
            "entries must hold 1 to {MAX_APPEND} entries"
        )));
    }
    let mut raw = Vec::with_capacity(params.entries.len());
    for (i, text) in params.entries.iter().enumerate() {
        raw.push(from_base64(text).ok_or_else(|| bad_params(format!("entry {i} is not base64")))?);
    }
    // The stateless checks (signatures, evidence, and the evidence's time against this server's
    // clock) run here, on the RPC threads, in parallel across calls; the writer only checks
    // positions and state.
    let genesis = ctx.genesis.clone();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let chain = tokio::task::spawn_blocking(move || {
        let mut verified = Vec::with_capacity(raw.len());
        for bytes in raw {
            let checked = Entry::from_bytes(bytes)
                .and_then(|e| genesis.verify(e))
                .and_then(|v| genesis.check_current(&v, now).map(|()| v));
            match checked {
                Ok(v) => verified.push(v),
                Err(reason) => {
                    return Chain {
                        verified,
                        refused: Some(reason),
                    };
                }
            }
        }
        Chain {
            verified,
            refused: None,
        }
    })
    .await
    .map_err(|_| append_error(AppendError::Stopped))?;
    let (accepted, head) = ctx.engine.append(chain).await.map_err(append_error)?;
    Ok(AppendResult {
        accepted: accepted.into_iter().map(Into::into).collect(),
        head: head.into(),
    })
}

/// The read's `limit`, checked before any waiting or reading.
fn limit(params: &ReadParams) -> Result<usize, ErrorObjectOwned> {
    let limit = params.limit.unwrap_or(MAX_READ);
    if limit == 0 || limit > MAX_READ {
        return Err(bad_params(format!("limit must be 1 to {MAX_READ}")));
    }
    Ok(limit)
}

fn read(
    ctx: &RpcContext,
    from: u64,
    limit: usize,
    head: Head,
) -> Result<EntriesResult, ErrorObjectOwned> {
    // Only what the head covers: the head is published after the commit that wrote it.
    let rows = if from > head.height {
        Ok(Vec::new())
    } else {
        ctx.store.read(from..=head.height, limit, MAX_READ_BYTES)
    }
    .map_err(|e| {
        error(
            STORAGE_UNAVAILABLE,
            "storage_unavailable",
            e.to_string(),
            None,
        )
    })?;
    let entries = rows
        .into_iter()
        .map(|(height, entry)| EntryJson {
            height,
            hash: hash_text(&keyward_ledger::EntryHash::of(&entry)),
            entry: to_base64(&entry),
        })
        .collect();
    Ok(EntriesResult {
        entries,
        head: head.into(),
    })
}

/// Starts the server on `listen`, refusing bodies over `max_body_bytes` before parsing and
/// appends beyond `max_in_flight` before verifying them.
///
/// # Errors
/// The bind error.
pub async fn serve(
    listen: SocketAddr,
    max_body_bytes: u32,
    max_in_flight: usize,
    engine: Engine,
    genesis: Arc<Genesis>,
    store: Store,
) -> std::io::Result<Running> {
    let mut module = RpcModule::new(RpcContext {
        engine,
        genesis,
        store,
        in_flight: AtomicUsize::new(0),
        max_in_flight,
    });
    module
        .register_async_method("appendEntries", |params, ctx, _| async move {
            append(&ctx, params.parse()?).await
        })
        .expect("method names are unique");
    module
        .register_async_method("getEntries", |params, ctx, _| async move {
            let p: ReadParams = params.parse()?;
            if p.wait_ms.is_some() {
                return Err(bad_params("waitMs belongs to waitForEntries"));
            }
            let limit = limit(&p)?;
            let head = *ctx.engine.head().borrow();
            read(&ctx, p.from, limit, head)
        })
        .expect("method names are unique");
    module
        .register_async_method("waitForEntries", |params, ctx, _| async move {
            let p: ReadParams = params.parse()?;
            let limit = limit(&p)?;
            let wait = Duration::from_millis(p.wait_ms.unwrap_or(MAX_WAIT_MS).min(MAX_WAIT_MS));
            let mut heads = ctx.engine.head();
            let reached = tokio::time::timeout(wait, heads.wait_for(|h| h.height >= p.from))
                .await
                .map(|r| r.map(|head| *head));
            let head = match reached {
                Ok(Ok(head)) => head,
                // The writer is gone: say so, or long-pollers would spin.
                Ok(Err(_)) => return Err(append_error(AppendError::Stopped)),
                Err(_) => *heads.borrow(),
            };
            read(&ctx, p.from, limit, head)
        })
        .expect("method names are unique");
    module
        .register_async_method("getHead", |_, ctx, _| async move {
            let head = *ctx.engine.head().borrow();
            Ok::<_, ErrorObjectOwned>(HeadResult {
                height: head.height,
                hash: hash_text(&head.hash),
                genesis_hash: hash_text(&ctx.genesis.hash()),
            })
        })
        .expect("method names are unique");
    module
        .register_async_method("getHealth", |_, ctx, _| async move {
            if let Some(e) = ctx.engine.failure().get() {
                return Err(error(
                    STORAGE_UNAVAILABLE,
                    "storage_unavailable",
                    format!("the ledger appends nothing more until restarted: {e}"),
                    None,
                ));
            }
            let head: HeadJson = (*ctx.engine.head().borrow()).into();
            Ok(HealthResult {
                status: "ok".into(),
                height: head.height,
                version: env!("CARGO_PKG_VERSION").into(),
            })
        })
        .expect("method names are unique");

    let max_response = u32::try_from(MAX_READ_BYTES * 2).expect("fits");
    Running::serve_http(listen, module, max_body_bytes, max_response).await
}
