//! Kind 23 (PROTOCOL §16.12): a worker reveals a wrong partial evaluation a gatekeeper answered,
//! with the gatekeeper's signature over it, so that every node can check the misbehaviour.
//!
//! With each partial evaluation, a gatekeeper signs [`partial_message`]: the request, the
//! verification share it evaluated with, and the partial. A partial whose DLEQ proof fails
//! against the epoch's current committee (or that is malformed, or claims another member's
//! index) convicts the gatekeeper that signed it. Threshold mode only: a classic-mode partial is
//! the whole evaluation, and revealing it would reveal the ClusterKey.

use keyward_crypto::{DecodeError, IdentityPublicKey, IdentitySignature, Reader, Writer};
use keyward_hierarchy::{ClusterId, ClusterKeyRequest, Epoch, Generation};
use keyward_threshold::{Element, PartialEvaluation};

use crate::codec::{decode_id, decode_identity, encode_id};
use crate::entry::EntryHash;

/// What a gatekeeper signs with each partial evaluation (purpose `partial-evaluation`):
/// `var16("keyward/v1/ledger/partial") || genesis || u64(epoch) || var8(cluster) ||
/// u64(generation) || verification share (32) || partial (98)`.
pub fn partial_message(
    genesis: &EntryHash,
    request: &ClusterKeyRequest,
    verification: &Element,
    partial: &[u8; PartialEvaluation::LEN],
) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(b"keyward/v1/ledger/partial")
        .raw(&genesis.0)
        .u64(request.epoch.0);
    encode_id(&mut w, request.cluster.as_str());
    w.u64(request.generation.0)
        .raw(&verification.to_bytes())
        .raw(partial);
    w.finish()
}

/// Kind 23: a signed partial evaluation that does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialReport {
    /// The gatekeeper that answered it.
    pub gatekeeper: IdentityPublicKey,
    /// The request it answered.
    pub request: ClusterKeyRequest,
    /// The verification share it said it evaluated with.
    pub verification: Element,
    /// The partial evaluation, as answered.
    pub partial: [u8; PartialEvaluation::LEN],
    /// The gatekeeper's signature over [`partial_message`].
    pub signature: IdentitySignature,
}

impl PartialReport {
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.raw(&self.gatekeeper.to_bytes()).u64(self.request.epoch.0);
        encode_id(w, self.request.cluster.as_str());
        w.u64(self.request.generation.0)
            .raw(&self.verification.to_bytes())
            .raw(&self.partial)
            .raw(&self.signature.to_bytes());
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            gatekeeper: decode_identity(r, "gatekeeper")?,
            request: ClusterKeyRequest {
                epoch: Epoch(r.u64("epoch")?),
                cluster: decode_id(r, "cluster id", ClusterId::new)?,
                generation: Generation(r.u64("generation")?),
            },
            verification: Element::from_bytes(&r.array("verification share")?)?,
            partial: r.array("partial")?,
            signature: IdentitySignature::from_bytes(&r.array("signature")?)?,
        })
    }
}
