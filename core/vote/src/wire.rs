//! What crosses between the host and an enclave runner that holds the [`Signer`](crate::Signer)
//! in another process: requests as the validator signed them, answers, and refusals (see
//! `docs/SIGNER.md`, "Enclave runners").
//!
//! A request is carried whole, signature included, so that the enclave checks it again: a host
//! cannot make the enclave act on a request the validator did not sign.
//!
//! ```text
//! request   = var8(method) || service[32] || identity[32] || nonce: u64 BE || signature[64]
//!             || var32(payload)                     (payload as signed: Payload::encode)
//! answer    = 1 || vote_pubkey[32] || var16(evidence)
//!           | 2 || signature[64]
//!           | 3 || identity[32] || vote_account[32] || tower
//! rejection = i32 code BE || var8(name) || u8 alarm || var16(detail)
//! ```

use std::fmt;

use keyward_crypto::{DecodeError, Reader, SolanaPubkey, SolanaSignature, Writer};

use crate::signer::{MAX_VOTE_KEY_EVIDENCE, decode_tower, encode_tower};
use crate::{
    Answer, LockoutPolicy, Method, Payload, Refusal, SignedRequest, TowerExport, VoteKeyInfo,
};

/// Longest refusal message carried; longer ones are cut.
const MAX_DETAIL: usize = 1024;

fn invalid(field: &'static str, reason: &'static str) -> DecodeError {
    DecodeError::Invalid { field, reason }
}

impl SignedRequest {
    /// The request's wire form (module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.var8(self.payload.method().name().as_bytes())
            .raw(&self.service.0)
            .raw(&self.identity.0)
            .u64(self.nonce)
            .raw(&self.signature.0)
            .var32(&self.payload.encode());
        w.finish()
    }

    /// Reads a request's wire form; the signature is not checked here.
    ///
    /// # Errors
    /// [`DecodeError`] for anything but exactly one well-formed request.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let name = r.var8("method", 32)?;
        let method = Method::ALL
            .into_iter()
            .find(|m| m.name().as_bytes() == name)
            .ok_or_else(|| invalid("method", "unknown method"))?;
        let service = crate::ServiceId(r.array("service id")?);
        let identity = SolanaPubkey(r.array("identity")?);
        let nonce = r.u64("nonce")?;
        let signature = SolanaSignature(r.array("signature")?);
        let payload = decode_payload(method, r.var32("payload", usize::MAX)?)?;
        r.finish()?;
        Ok(Self {
            payload,
            service,
            identity,
            nonce,
            signature,
        })
    }
}

/// The inverse of [`Payload::encode`] for `method`.
fn decode_payload(method: Method, bytes: &[u8]) -> Result<Payload, DecodeError> {
    let mut r = Reader::new(bytes);
    let payload = match method {
        Method::RegisterNode => Payload::RegisterNode {
            vote_account: SolanaPubkey(r.array("vote account")?),
        },
        // Sizes are bounded here only by the frame: a message or evidence too long is the
        // core's refusal of that one request (`SignerConfig::prepare_all`), as in process, not a
        // frame the enclave cannot read, which would fail the whole batch.
        Method::SignVote => {
            let message = r.var32("message", usize::MAX)?.to_vec();
            let count = r.u32("evidence count")? as usize;
            // Each item takes at least its 4-byte length.
            if count > r.remaining() / 4 {
                return Err(DecodeError::Truncated { field: "evidence" });
            }
            let mut evidence = Vec::with_capacity(count);
            for _ in 0..count {
                evidence.push(r.var32("evidence transaction", usize::MAX)?.to_vec());
            }
            Payload::SignVote { message, evidence }
        }
        Method::DeregisterNode => Payload::DeregisterNode,
        Method::RotateVoteKey => Payload::RotateVoteKey,
    };
    r.finish()?;
    Ok(payload)
}

impl Answer {
    /// The answer's wire form (module docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        match self {
            Self::VoteKey(info) => {
                w.u8(1).raw(&info.vote_pubkey.0).var16(&info.evidence);
            }
            Self::Signature(signature) => {
                w.u8(2).raw(&signature.0);
            }
            Self::FinalTower(export) => {
                w.u8(3).raw(&export.identity.0).raw(&export.vote_account.0);
                encode_tower(&mut w, &export.tower);
            }
        }
        w.finish()
    }

    /// Reads an answer's wire form; a tower must be valid under `policy`.
    ///
    /// # Errors
    /// [`DecodeError`] for anything but exactly one well-formed answer.
    pub fn from_bytes(bytes: &[u8], policy: &LockoutPolicy) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let answer = match r.u8("answer kind")? {
            1 => Self::VoteKey(VoteKeyInfo {
                vote_pubkey: SolanaPubkey(r.array("vote pubkey")?),
                evidence: r.var16("evidence", MAX_VOTE_KEY_EVIDENCE)?.to_vec(),
            }),
            2 => Self::Signature(SolanaSignature(r.array("signature")?)),
            3 => Self::FinalTower(TowerExport {
                identity: SolanaPubkey(r.array("identity")?),
                vote_account: SolanaPubkey(r.array("vote account")?),
                tower: decode_tower(&mut r, policy)
                    .map_err(|_| invalid("tower", "not a valid tower"))?,
            }),
            _ => return Err(invalid("answer kind", "unknown kind")),
        };
        r.finish()?;
        Ok(answer)
    }
}

/// A refusal as the host sees it: its stable code and name (`docs/SIGNER.md`), whether it
/// raises an alarm, and its message. The same whichever runner holds the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The stable JSON-RPC error code ([`Refusal::code`]).
    pub code: i32,
    /// The stable snake_case name ([`Refusal::name`]).
    pub name: String,
    /// Whether it raises an alarm ([`Refusal::is_alarm`]).
    pub alarm: bool,
    /// The human-readable message.
    pub detail: String,
}

impl From<&Refusal> for Rejection {
    fn from(refusal: &Refusal) -> Self {
        Self {
            code: refusal.code(),
            name: refusal.name().to_owned(),
            alarm: refusal.is_alarm(),
            detail: refusal.to_string(),
        }
    }
}

impl From<Refusal> for Rejection {
    fn from(refusal: Refusal) -> Self {
        Self::from(&refusal)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for Rejection {}

impl Rejection {
    /// The rejection's wire form (module docs); a message over 1024 bytes is cut.
    pub fn to_bytes(&self) -> Vec<u8> {
        let end = self.detail.floor_char_boundary(MAX_DETAIL);
        let mut w = Writer::new();
        w.raw(&self.code.to_be_bytes())
            .var8(self.name.as_bytes())
            .u8(u8::from(self.alarm))
            .var16(&self.detail.as_bytes()[..end]);
        w.finish()
    }

    /// Reads a rejection's wire form.
    ///
    /// # Errors
    /// [`DecodeError`] for anything but exactly one well-formed rejection.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let code = i32::from_be_bytes(r.array("code")?);
        let text = |bytes: &[u8], field| {
            String::from_utf8(bytes.to_vec()).map_err(|_| invalid(field, "not UTF-8"))
        };
        let name = text(r.var8("name", 64)?, "name")?;
        let alarm = match r.u8("alarm")? {
            0 => false,
            1 => true,
            _ => return Err(invalid("alarm", "not 0 or 1")),
        };
        let detail = text(r.var16("detail", MAX_DETAIL)?, "detail")?;
        r.finish()?;
        Ok(Self {
            code,
            name,
            alarm,
            detail,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{ServiceId, Tower};
    use keyward_crypto::SolanaKeypair;
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn payloads() -> impl Strategy<Value = Payload> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(|k| Payload::RegisterNode {
                vote_account: SolanaPubkey(k)
            }),
            (
                proptest::collection::vec(any::<u8>(), 0..crate::request::MAX_TRANSACTION_LEN),
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..4)
            )
                .prop_map(|(message, evidence)| Payload::SignVote { message, evidence }),
            Just(Payload::DeregisterNode),
            Just(Payload::RotateVoteKey),
        ]
    }

    proptest! {
        #[test]
        fn requests_round_trip(payload in payloads(), nonce in any::<u64>(), seed in any::<u64>()) {
            let identity = SolanaKeypair::generate(&mut StdRng::seed_from_u64(seed));
            let request = SignedRequest::sign(payload, ServiceId([3; 32]), &identity, nonce);
            let bytes = request.to_bytes();
            prop_assert_eq!(SignedRequest::from_bytes(&bytes).unwrap(), request);
            // Cut anywhere, or with a byte added, it is refused.
            for end in 0..bytes.len() {
                prop_assert!(SignedRequest::from_bytes(&bytes[..end]).is_err());
            }
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(SignedRequest::from_bytes(&longer).is_err());
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = SignedRequest::from_bytes(&bytes);
            let _ = Answer::from_bytes(&bytes, &LockoutPolicy::SOLANA);
            let _ = Rejection::from_bytes(&bytes);
        }
    }

    /// A request over the core's size limits still crosses the wire, so the enclave refuses it
    /// alone (`message_too_long`, malformed evidence), as the in-process runner does, instead of
    /// failing to read the frame and with it the batch.
    #[test]
    fn oversized_requests_cross_the_wire_for_the_core_to_refuse() {
        let identity = SolanaKeypair::generate(&mut StdRng::seed_from_u64(5));
        let payload = Payload::SignVote {
            message: vec![7; crate::request::MAX_TRANSACTION_LEN + 1],
            evidence: vec![vec![1; 4]; crate::request::MAX_EVIDENCE + 1],
        };
        let request = SignedRequest::sign(payload, ServiceId([3; 32]), &identity, 1);
        assert_eq!(
            SignedRequest::from_bytes(&request.to_bytes()).unwrap(),
            request
        );
    }

    #[test]
    fn answers_and_rejections_round_trip() {
        let policy = LockoutPolicy::SOLANA;
        let tower = Tower::from_parts(
            vec![
                crate::Lockout {
                    slot: 3,
                    confirmation_count: 2,
                },
                crate::Lockout {
                    slot: 4,
                    confirmation_count: 1,
                },
            ],
            Some(1),
            &policy,
        )
        .unwrap();
        for answer in [
            Answer::VoteKey(VoteKeyInfo {
                vote_pubkey: SolanaPubkey([1; 32]),
                evidence: vec![7; 300],
            }),
            Answer::Signature(SolanaSignature([2; 64])),
            Answer::FinalTower(TowerExport {
                identity: SolanaPubkey([3; 32]),
                vote_account: SolanaPubkey([4; 32]),
                tower,
            }),
        ] {
            assert_eq!(
                Answer::from_bytes(&answer.to_bytes(), &policy).unwrap(),
                answer
            );
        }
        let rejection = Rejection::from(Refusal::StaleNonce { nonce: 3, last: 9 });
        assert_eq!(
            (rejection.code, rejection.name.as_str()),
            (1006, "stale_nonce")
        );
        assert_eq!(
            Rejection::from_bytes(&rejection.to_bytes()).unwrap(),
            rejection
        );
        // A long message is cut at a character boundary, and still decodes.
        let long = Rejection {
            detail: "é".repeat(700),
            ..rejection
        };
        let cut = Rejection::from_bytes(&long.to_bytes()).unwrap();
        assert_eq!(cut.detail, "é".repeat(512));
    }
}
