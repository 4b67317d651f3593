//! ContractKeys: one per contract, derived from its cluster's seed.
//!
//! ```text
//! contract root  = KDF(cluster seed,  "keyward/v1/contract",          var16(contract id))
//! sr25519 seed   = KDF(contract root, "keyward/v1/contract/sr25519",  "")
//! X25519 ikm     = KDF(contract root, "keyward/v1/contract/x25519",   "")  → RFC 9180 DeriveKeyPair
//! state key      = KDF(contract root, "keyward/v1/contract/state",    "")
//! state nonce key= KDF(contract root, "keyward/v1/contract/state-nonce", "")
//! ```
//!
//! Every worker of the cluster derives the same ContractKey. The cluster's sr25519 key certifies
//! each contract's public keys ([`ContractPublicKeys`]), so users can check them against the
//! cluster's key alone.

use core::fmt;

use crate::{
    cluster::ClusterKey, ids::ContractId, input::ContractContext, kdf, state::StateCipher,
};
use keyward_crypto::{
    ChannelKeypair, ChannelPublicKey, DecodeError, IdentityKeypair, IdentityPublicKey,
    IdentitySignature, Reader, SecretBytes, SignatureError, SigningPurpose, Writer,
};

/// The keys of one contract in one (epoch, cluster, generation).
///
/// Guarantees: every secret zeroizes on drop and never prints. It opens this contract's inputs
/// and state and nothing else: not its cluster's key, not a sibling contract's.
pub struct ContractKey {
    context: ContractContext,
    identity: IdentityKeypair,
    channel: ChannelKeypair,
    state: StateCipher,
}

impl ContractKey {
    /// Derives the ContractKey of `contract` from its cluster's key.
    pub fn derive(cluster: &ClusterKey, contract: ContractId) -> Self {
        let root = kdf::derive(
            cluster.seed().expose(),
            "keyward/v1/contract",
            &var16(contract.as_str().as_bytes()),
        );
        let context = ContractContext {
            epoch: cluster.epoch(),
            cluster: cluster.cluster().clone(),
            generation: cluster.generation(),
            contract,
        };
        Self::from_root(context, &root)
    }

    fn from_root(context: ContractContext, root: &SecretBytes<32>) -> Self {
        let root = root.expose();
        let identity =
            IdentityKeypair::from_seed(kdf::derive(root, "keyward/v1/contract/sr25519", b""));
        let channel =
            ChannelKeypair::derive(kdf::derive(root, "keyward/v1/contract/x25519", b"").expose());
        let state = StateCipher::new(
            context.contract.clone(),
            kdf::derive(root, "keyward/v1/contract/state", b""),
            kdf::derive(root, "keyward/v1/contract/state-nonce", b""),
        );
        Self {
            context,
            identity,
            channel,
            state,
        }
    }

    /// Where this contract lives: epoch, cluster, generation and contract id.
    pub fn context(&self) -> &ContractContext {
        &self.context
    }

    /// The contract's sr25519 keypair (signs its results).
    pub fn identity(&self) -> &IdentityKeypair {
        &self.identity
    }

    /// The contract's X25519 keypair (users encrypt inputs to it).
    pub fn channel(&self) -> &ChannelKeypair {
        &self.channel
    }

    /// The contract's state cipher.
    pub fn state(&self) -> &StateCipher {
        &self.state
    }

    /// The contract's public keys, unsigned.
    pub fn public_keys(&self) -> (IdentityPublicKey, ChannelPublicKey) {
        (self.identity.public(), self.channel.public())
    }
}

impl fmt::Debug for ContractKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContractKey")
            .field("context", &self.context)
            .field("sr25519", &self.identity.public())
            .field("x25519", &self.channel.public())
            .finish_non_exhaustive()
    }
}

fn var16(bytes: &[u8]) -> Vec<u8> {
    let mut w = Writer::new();
    w.var16(bytes);
    w.finish()
}

/// A contract's public keys, certified by its cluster's sr25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractPublicKeys {
    /// Where the contract lives.
    pub context: ContractContext,
    /// The contract's sr25519 public key.
    pub sr25519: IdentityPublicKey,
    /// The contract's X25519 public key.
    pub x25519: ChannelPublicKey,
    /// The cluster's sr25519 public key.
    pub cluster_key: IdentityPublicKey,
    /// The cluster key's signature (purpose [`SigningPurpose::ContractKeys`]) over
    /// [`ContractPublicKeys::signed_bytes`].
    pub signature: IdentitySignature,
}

impl ContractPublicKeys {
    /// The cluster certifies `contract`'s public keys.
    pub fn certify(
        cluster: &ClusterKey,
        contract: &ContractKey,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Self {
        let (sr25519, x25519) = contract.public_keys();
        let context = contract.context.clone();
        let signature = cluster.identity().sign(
            SigningPurpose::ContractKeys,
            &signed_bytes(&context, &sr25519, &x25519),
            rng,
        );
        Self {
            context,
            sr25519,
            x25519,
            cluster_key: cluster.identity().public(),
            signature,
        }
    }

    /// `context bytes || sr25519 || x25519`, the bytes the cluster signs.
    pub fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes(&self.context, &self.sr25519, &self.x25519)
    }

    /// `var16(context bytes) || sr25519(32) || x25519(32) || cluster_key(32) || signature(64)`
    /// (PROTOCOL §8.7).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.var16(&self.context.to_bytes())
            .raw(&self.sr25519.to_bytes())
            .raw(&self.x25519.0)
            .raw(&self.cluster_key.to_bytes())
            .raw(&self.signature.to_bytes());
        w.finish()
    }

    /// Decodes [`ContractPublicKeys::to_bytes`]; the signature is not checked.
    ///
    /// # Errors
    /// A [`DecodeError`] for anything else, trailing bytes included.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let context = ContractContext::from_bytes(r.var16("contract context", 512)?)?;
        let sr25519 = IdentityPublicKey::from_bytes(&r.array("contract sr25519 key")?)?;
        let x25519 = ChannelPublicKey(r.array("contract x25519 key")?);
        let cluster_key = IdentityPublicKey::from_bytes(&r.array("cluster key")?)?;
        let signature = IdentitySignature::from_bytes(&r.array("signature")?)?;
        r.finish()?;
        Ok(Self {
            context,
            sr25519,
            x25519,
            cluster_key,
            signature,
        })
    }

    /// Checks the cluster's signature. The caller checks `cluster_key` is the cluster's key.
    pub fn verify(&self) -> Result<(), SignatureError> {
        self.cluster_key.verify(
            SigningPurpose::ContractKeys,
            &self.signed_bytes(),
            &self.signature,
        )
    }
}

fn signed_bytes(
    context: &ContractContext,
    sr: &IdentityPublicKey,
    x: &ChannelPublicKey,
) -> Vec<u8> {
    let mut w = Writer::new();
    w.raw(&context.to_bytes()).raw(&sr.to_bytes()).raw(&x.0);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClusterId, ClusterKey, Epoch, Generation, MasterKey};
    use proptest::prelude::*;
    use rand::{SeedableRng, rngs::StdRng};

    fn certificate() -> ContractPublicKeys {
        let mut rng = StdRng::seed_from_u64(8);
        let master = MasterKey::generate(&mut rng);
        let cluster = ClusterKey::derive(
            &master,
            Epoch(2),
            ClusterId::new("c").unwrap(),
            Generation(1),
        );
        let contract = ContractKey::derive(&cluster, ContractId::new("kv").unwrap());
        ContractPublicKeys::certify(&cluster, &contract, &mut rng)
    }

    #[test]
    fn the_certificate_round_trips_and_refuses_any_truncation_or_trailing_byte() {
        let cert = certificate();
        let bytes = cert.to_bytes();
        assert_eq!(ContractPublicKeys::from_bytes(&bytes).unwrap(), cert);
        for len in 0..bytes.len() {
            assert!(ContractPublicKeys::from_bytes(&bytes[..len]).is_err());
        }
        let mut long = bytes;
        long.push(0);
        assert!(ContractPublicKeys::from_bytes(&long).is_err());
    }

    proptest! {
        #[test]
        fn decoding_never_panics_and_what_decodes_re_encodes_identically(
            bytes in proptest::collection::vec(any::<u8>(), 0..400),
            flip in any::<(usize, u8)>(),
        ) {
            if let Ok(cert) = ContractPublicKeys::from_bytes(&bytes) {
                prop_assert_eq!(cert.to_bytes(), bytes);
            }
            let mut good = certificate().to_bytes();
            let i = flip.0 % good.len();
            good[i] ^= flip.1 | 1;
            if let Ok(cert) = ContractPublicKeys::from_bytes(&good) {
                prop_assert_eq!(cert.to_bytes(), good);
            }
        }
    }
}
