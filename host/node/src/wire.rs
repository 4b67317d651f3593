//! JSON shapes of the node's JSON-RPC methods (camelCase; bytes in base64, hashes and keys in
//! 0x-hex). Error codes: 2701–2799 (docs/NODES.md).

use serde::{Deserialize, Serialize};

/// Error code: parameters malformed.
pub const BAD_PARAMS: i32 = 2701;
/// Error code: a provisioning request was refused (`data.reason` says why).
pub const PROVISION_REFUSED: i32 = 2702;
/// Error code: no such reply (yet).
pub const NOT_FOUND: i32 = 2703;
/// Error code: the method is not this node's role's.
pub const WRONG_ROLE: i32 = 2704;
/// Error code: no answer, because the node is stopping or answering failed (logged).
pub const UNAVAILABLE: i32 = 2705;

/// `provisionClusterKey` parameters.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProvisionParams {
    /// A signed provisioning request (PROTOCOL §18.1), base64.
    pub request: String,
}

/// `provisionClusterKey` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProvisionResult {
    /// The `cluster-key` envelope holding the partial evaluation, base64.
    pub answer: String,
}

/// `getReply` parameters.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplyParams {
    /// The command id (its entry hash), 0x-hex.
    pub command: String,
}

/// `getReply` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReplyResult {
    /// The `contract-reply` envelope, base64.
    pub reply: String,
}

/// `getHealth` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeHealth {
    /// `gatekeeper` or `worker`.
    pub role: String,
    /// The node's identity, 0x-hex.
    pub id: String,
    /// `unregistered`, `active`, `deregistered`, `removed` or `slashed`.
    pub status: String,
    /// The height of the ledger this node has verified.
    pub height: u64,
    /// Its head's hash, 0x-hex: nodes on one ledger agree at equal heights.
    pub head: String,
    /// A gatekeeper: epochs held. A worker: ClusterKeys held.
    pub keys: usize,
    /// While unregistered: why the last registration failed (the ledger's refusal, such as
    /// evidence its genesis policy does not accept, or the platform could not attest).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}
