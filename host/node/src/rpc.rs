//! The node's JSON-RPC server (jsonrpsee, HTTP only): `provisionClusterKey` (gatekeepers),
//! `getReply` (workers), `getHealth` (both).

use keyward_host::{from_base64, to_base64};
use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::RpcModule;
use jsonrpsee::types::ErrorObjectOwned;

use keyward_host::Running;
use keyward_ledger_service::wire::{hash_text, parse_hash};

use crate::provisioner::Provisioner;
use crate::service::{NodeRole, Shared};
use crate::wire::{
    BAD_PARAMS, NOT_FOUND, NodeHealth, PROVISION_REFUSED, ProvisionParams, ProvisionResult,
    ReplyParams, ReplyResult, UNAVAILABLE, WRONG_ROLE,
};

/// Largest request body: a provisioning request is under 300 bytes.
const MAX_BODY_BYTES: u32 = 64 << 10;
/// Largest response: a reply envelope (a contract value is at most 64 KiB) in base64.
const MAX_RESPONSE_BYTES: u32 = 1 << 20;

fn error(code: i32, reason: &str, message: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message, Some(serde_json::json!({ "reason": reason })))
}

fn wrong_role(role: NodeRole) -> ErrorObjectOwned {
    error(
        WRONG_ROLE,
        "wrong_role",
        format!("this node is a {}", role.name()),
    )
}

async fn provision(
    context: &Context,
    params: &ProvisionParams,
) -> Result<ProvisionResult, ErrorObjectOwned> {
    let Some(provisioner) = &context.provisioner else {
        return Err(wrong_role(context.shared.role));
    };
    let bytes = from_base64(&params.request)
        .ok_or_else(|| error(BAD_PARAMS, "bad_params", "request is not base64".into()))?;
    match provisioner.answer(bytes).await {
        Some(Ok(envelope)) => Ok(ProvisionResult {
            answer: to_base64(&envelope.to_bytes()),
        }),
        Some(Err(e)) => {
            tracing::info!(reason = e.reason, error = %e, "provisioning request refused");
            Err(error(PROVISION_REFUSED, &e.reason, e.message))
        }
        None => Err(error(
            UNAVAILABLE,
            "unavailable",
            "no answer: the node is stopping, or answering failed (see its log)".into(),
        )),
    }
}

fn reply(shared: &Shared, params: &ReplyParams) -> Result<ReplyResult, ErrorObjectOwned> {
    if shared.role != NodeRole::Worker {
        return Err(wrong_role(shared.role));
    }
    let command = parse_hash(&params.command).ok_or_else(|| {
        error(
            BAD_PARAMS,
            "bad_params",
            "command is not a 0x-hex hash".into(),
        )
    })?;
    match shared.replies.reply(&command) {
        Ok(Some(bytes)) => Ok(ReplyResult {
            reply: to_base64(&bytes),
        }),
        Ok(None) => Err(error(
            NOT_FOUND,
            "not_found",
            format!("no reply to {} (yet)", params.command),
        )),
        Err(e) => {
            // A storage fault is not "no reply": say so, and keep the path in the node's log.
            tracing::error!(error = %e, "cannot read a stored reply");
            Err(error(
                UNAVAILABLE,
                "unavailable",
                "the reply store cannot be read".into(),
            ))
        }
    }
}

fn health(shared: &Shared) -> NodeHealth {
    let registry = shared.registry.read().expect("registry lock");
    let keys = usize::try_from(shared.keys.load(std::sync::atomic::Ordering::Relaxed))
        .unwrap_or(usize::MAX);
    let status = match registry.node(&shared.id) {
        None => "unregistered",
        Some(n) if n.slashed => "slashed",
        Some(n) => match n.status {
            keyward_ledger::Status::Active => "active",
            keyward_ledger::Status::Deregistered { .. } => "deregistered",
            keyward_ledger::Status::Removed { .. } => "removed",
        },
    };
    NodeHealth {
        role: shared.role.name().into(),
        id: shared.id.to_string(),
        status: status.into(),
        height: registry.next_height() - 1,
        head: hash_text(&registry.head()),
        keys,
        refused: if status == "unregistered" {
            shared.refused.lock().expect("refused lock").clone()
        } else {
            None
        },
    }
}

/// What the RPC methods share: the node, and a gatekeeper's provisioning queue.
struct Context {
    shared: Arc<Shared>,
    provisioner: Option<Provisioner>,
}

/// Starts the server on `listen`.
///
/// # Errors
/// The bind error.
pub(crate) async fn serve(listen: SocketAddr, shared: Arc<Shared>) -> std::io::Result<Running> {
    let provisioner = (shared.role == NodeRole::Gatekeeper).then(|| Provisioner::start(&shared));
    let mut module = RpcModule::new(Context {
        shared,
        provisioner,
    });
    module
        .register_async_method("provisionClusterKey", |params, context, _| async move {
            provision(&context, &params.parse()?).await
        })
        .expect("method names are unique");
    module
        .register_method("getReply", |params, context, _| {
            reply(&context.shared, &params.parse()?)
        })
        .expect("method names are unique");
    module
        .register_method("getHealth", |_, context, _| {
            Ok::<_, ErrorObjectOwned>(health(&context.shared))
        })
        .expect("method names are unique");
    Running::serve_http(listen, module, MAX_BODY_BYTES, MAX_RESPONSE_BYTES).await
}
