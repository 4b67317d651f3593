//! JSON shapes of the ledger's JSON-RPC methods (camelCase; entries in base64, hashes in 0x-hex).

use serde::{Deserialize, Serialize};

use keyward_ledger::EntryHash;

use crate::engine::{Accepted, Head};

/// Most entries one `appendEntries` call carries.
pub const MAX_APPEND: usize = 256;
/// Most entries one read returns.
pub const MAX_READ: usize = 1000;
/// Longest `waitForEntries` wait, in milliseconds; longer requests are clamped.
pub const MAX_WAIT_MS: u64 = 30_000;

/// A hash in `0x`-hex.
pub fn hash_text(hash: &EntryHash) -> String {
    keyward_crypto::hex::to_0x(&hash.0)
}

/// Parses a `0x`-hex hash.
pub fn parse_hash(text: &str) -> Option<EntryHash> {
    keyward_crypto::hex::from_hex::<32>("hash", text)
        .ok()
        .map(EntryHash)
}

/// `appendEntries` parameters: a chain of entries, each signed on the one before.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AppendParams {
    /// 1 to [`MAX_APPEND`] entries in base64.
    pub entries: Vec<String>,
}

/// `getEntries` and `waitForEntries` parameters.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReadParams {
    /// The first height wanted.
    pub from: u64,
    /// Most entries wanted (1 to [`MAX_READ`]; default [`MAX_READ`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// `waitForEntries` only: how long to wait for `from` to exist, in milliseconds (clamped
    /// to [`MAX_WAIT_MS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_ms: Option<u64>,
}

/// A head: the last entry's height and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeadJson {
    /// The height.
    pub height: u64,
    /// The hash.
    pub hash: String,
}

impl From<Head> for HeadJson {
    fn from(h: Head) -> Self {
        Self {
            height: h.height,
            hash: hash_text(&h.hash),
        }
    }
}

/// One appended entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AcceptedJson {
    /// Its height.
    pub height: u64,
    /// Its hash.
    pub hash: String,
    /// It was already on the ledger.
    pub duplicate: bool,
}

impl From<Accepted> for AcceptedJson {
    fn from(a: Accepted) -> Self {
        Self {
            height: a.height,
            hash: hash_text(&a.hash),
            duplicate: a.duplicate,
        }
    }
}

/// `appendEntries` result; also the `data` of a refusal, with `reason` and `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppendResult {
    /// The entries now on the ledger, in order.
    pub accepted: Vec<AcceptedJson>,
    /// The head after the commit that made them durable (it may include other callers'
    /// entries).
    pub head: HeadJson,
}

/// One stored entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntryJson {
    /// Its height.
    pub height: u64,
    /// Its hash, as the server computed it (followers recompute it).
    pub hash: String,
    /// The entry, base64.
    pub entry: String,
}

/// `getEntries` / `waitForEntries` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EntriesResult {
    /// Entries from `from` on, consecutive; possibly empty.
    pub entries: Vec<EntryJson>,
    /// The head when they were read.
    pub head: HeadJson,
}

/// `getHead` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeadResult {
    /// The last entry's height.
    pub height: u64,
    /// The last entry's hash.
    pub hash: String,
    /// The genesis hash: the ledger's name.
    pub genesis_hash: String,
}

/// `getHealth` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthResult {
    /// `"ok"`.
    pub status: String,
    /// The last entry's height.
    pub height: u64,
    /// The server's version.
    pub version: String,
}
