//! Helpers shared by the integration tests: Solana vote messages and wire transactions built
//! with Solana's own crates, and a signer with a soft sealing key and a dev platform key.
#![allow(dead_code)]

use keyward_crypto::{
    ChainId, IdentityPublicKey, SecretBytes, SolanaKeypair, SolanaPubkey, SolanaSignature,
};
use keyward_enclave::{DevPlatformKey, SealPurpose, SealedBlob, Sealer, SealingKey, VersionSet};
use keyward_vote::ancestry::AncestryPolicy;
use keyward_vote::message::decode_vote_message;
use keyward_vote::signer::RestoreError;
use keyward_vote::{
    Answer, Applied, Lockout, LockoutPolicy, Payload, Refusal, ServiceId, SignedRequest, Signer,
    SignerConfig, Tower, TowerExport, VoteKeyInfo,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use solana_address::Address;
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_message::{Message, VersionedMessage, v0};
use solana_vote_interface::instruction as vote_ix;
use solana_vote_interface::state::TowerSync;

/// The signer service id every test signer runs as.
pub const SERVICE: ServiceId = ServiceId([0x5e; 32]);
/// The measurement the test signers report in their evidence.
pub const MEASUREMENT: [u8; 32] = [7; 32];
/// The chain the test sealers seal for.
pub const CHAIN: &str = "solana-test";
/// Seed of the dev platform key, so a restored signer attests with the same platform.
pub const PLATFORM_SEED: u64 = 0x706c_6174;
/// The recent blockhash of every test message.
pub const BLOCKHASH: [u8; 32] = [0xbb; 32];

/// A keyward public key as a Solana address.
pub fn addr(key: &SolanaPubkey) -> Address {
    Address::new_from_array(key.0)
}

/// A Solana address as a keyward public key.
pub fn key_of(address: &Address) -> SolanaPubkey {
    SolanaPubkey(address.to_bytes())
}

/// A bank hash of 32 copies of `byte`.
pub fn hash(byte: u8) -> Hash {
    Hash::new_from_array([byte; 32])
}

/// A fresh random public key (a vote account, a stranger).
pub fn random_key(rng: &mut StdRng) -> SolanaPubkey {
    SolanaKeypair::generate(rng).pubkey()
}

/// A `TowerSync` with consecutive confirmations on `slots` (the last has 1), bank hash
/// `[hash_byte; 32]`.
pub fn tower_sync(slots: &[u64], root: Option<u64>, hash_byte: u8) -> TowerSync {
    TowerSync::new_from_slots(slots.to_vec(), hash(hash_byte), root)
}

/// The vote program's `TowerSync` instruction, built by Solana's own builder.
pub fn tower_sync_ix(
    vote_account: &SolanaPubkey,
    authority: &SolanaPubkey,
    sync: TowerSync,
) -> Instruction {
    vote_ix::tower_sync(&addr(vote_account), &addr(authority), sync)
}

/// The compute-budget program's `SetComputeUnitPrice` (tag 3, u64 little-endian, no accounts).
pub fn compute_unit_price(micro_lamports: u64) -> Instruction {
    let mut data = vec![3u8];
    data.extend_from_slice(&micro_lamports.to_le_bytes());
    Instruction::new_with_bytes(solana_sdk_ids::compute_budget::ID, &data, Vec::new())
}

/// A compute-budget instruction with raw `data` and no accounts.
pub fn compute_budget_raw(data: &[u8]) -> Instruction {
    Instruction::new_with_bytes(solana_sdk_ids::compute_budget::ID, data, Vec::new())
}

/// The legacy message of `instructions` paid by `payer`, compiled by Solana's own compiler.
pub fn legacy(instructions: &[Instruction], payer: &SolanaPubkey) -> Message {
    Message::new_with_blockhash(
        instructions,
        Some(&addr(payer)),
        &Hash::new_from_array(BLOCKHASH),
    )
}

/// The serialized legacy message of `instructions` paid by `payer`.
pub fn legacy_message(instructions: &[Instruction], payer: &SolanaPubkey) -> Vec<u8> {
    encode(&VersionedMessage::Legacy(legacy(instructions, payer)))
}

/// The v0 message of `instructions` paid by `payer`, with no address-table lookups.
pub fn v0_compiled(instructions: &[Instruction], payer: &SolanaPubkey) -> v0::Message {
    v0::Message::try_compile(
        &addr(payer),
        instructions,
        &[],
        Hash::new_from_array(BLOCKHASH),
    )
    .unwrap()
}

/// The serialized v0 message of `instructions` paid by `payer`.
pub fn v0_message(instructions: &[Instruction], payer: &SolanaPubkey) -> Vec<u8> {
    encode(&VersionedMessage::V0(v0_compiled(instructions, payer)))
}

/// A message's wire bytes (bincode, as Solana serializes it).
pub fn encode(message: &VersionedMessage) -> Vec<u8> {
    bincode::serialize(message).unwrap()
}

/// The legacy message of one `TowerSync` on `slots` (no root) for `vote_account`, authorised by
/// `authority` and paid by `identity`: both sign.
pub fn ts_message(
    identity: &SolanaPubkey,
    vote_account: &SolanaPubkey,
    authority: &SolanaPubkey,
    slots: &[u64],
    hash_byte: u8,
) -> Vec<u8> {
    legacy_message(
        &[tower_sync_ix(
            vote_account,
            authority,
            tower_sync(slots, None, hash_byte),
        )],
        identity,
    )
}

/// A wire transaction: `short_vec` signature count, one signature per required signer in the
/// message's order, then the message. `signatures` names each signer's signature.
pub fn wire_tx(message: &[u8], signatures: &[(SolanaPubkey, SolanaSignature)]) -> Vec<u8> {
    let signers = decode_vote_message(message).unwrap().signers;
    // Below 0x80, a short_vec length is one byte.
    assert!(signers.len() < 0x80);
    let mut tx = vec![u8::try_from(signers.len()).unwrap()];
    for signer in &signers {
        let (_, signature) = signatures
            .iter()
            .find(|(k, _)| k == signer)
            .unwrap_or_else(|| panic!("no signature for signer {signer}"));
        tx.extend_from_slice(&signature.0);
    }
    tx.extend_from_slice(message);
    tx
}

/// A wire transaction of `message` signed by every keypair in `keypairs`.
pub fn signed_tx(message: &[u8], keypairs: &[&SolanaKeypair]) -> Vec<u8> {
    let signatures: Vec<_> = keypairs
        .iter()
        .map(|k| (k.pubkey(), k.sign(message)))
        .collect();
    wire_tx(message, &signatures)
}

/// A tower under Solana's lockout rules from `(slot, confirmations)` pairs, oldest first.
pub fn tower(votes: &[(u64, u32)], root: Option<u64>) -> Tower {
    let votes = votes
        .iter()
        .map(|&(slot, confirmation_count)| Lockout {
            slot,
            confirmation_count,
        })
        .collect();
    Tower::from_parts(votes, root, &LockoutPolicy::SOLANA).unwrap()
}

/// The test signer configuration: Solana's lockout rules, the given ancestry policy.
pub fn config(ancestry: Option<AncestryPolicy>) -> SignerConfig {
    SignerConfig {
        service: SERVICE,
        lockout: LockoutPolicy::SOLANA,
        ancestry,
        measurement: MEASUREMENT,
        evidence_policy: None,
        identity_keys: Default::default(),
    }
}

/// The dev platform key (the same one every call).
pub fn platform() -> DevPlatformKey {
    DevPlatformKey::generate(&mut StdRng::seed_from_u64(PLATFORM_SEED))
}

/// The dev platform's public key.
pub fn platform_public() -> IdentityPublicKey {
    platform().public()
}

/// A sealer for the test chain under the soft sealing key `sealing_key`.
pub fn sealer(sealing_key: &[u8; 32]) -> Sealer {
    Sealer::new(
        &SealingKey::from_bytes(SecretBytes::new(*sealing_key)),
        ChainId::new(CHAIN).unwrap(),
        MEASUREMENT,
    )
}

/// A fresh signer with no records, and its sealing key's bytes (to restore it later).
pub fn new_signer(rng: &mut StdRng, ancestry: Option<AncestryPolicy>) -> (Signer, [u8; 32]) {
    let key = SealingKey::generate(rng);
    let bytes = *key.expose();
    let signer = Signer::restore(
        config(ancestry),
        Sealer::new(&key, ChainId::new(CHAIN).unwrap(), MEASUREMENT),
        Box::new(platform()),
        std::iter::empty::<(SolanaPubkey, &[u8])>(),
        [],
        None,
        0,
    )
    .unwrap();
    (signer, bytes)
}

/// A signer restored from `records` and the vote key `evidence` they name, under the sealing key
/// `sealing_key` and the same platform,
/// each record stored under the identity it names (when it opens), with a manifest that pins
/// exactly these records (as the signer's own would, had they been its last commit). The error is
/// the record's own, unwrapped from [`RestoreError::Record`].
pub fn restore<'a>(
    ancestry: Option<AncestryPolicy>,
    sealing_key: &[u8; 32],
    records: impl IntoIterator<Item = &'a [u8]>,
    evidence: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Signer, RestoreError> {
    let sealer = sealer(sealing_key);
    let mut pinned = VersionSet::new(SealPurpose::ValidatorRecord);
    let keyed: Vec<(SolanaPubkey, &[u8])> = records
        .into_iter()
        .map(|record| {
            let blob = SealedBlob::from_bytes(record.to_vec());
            let named = sealer
                .open(SealPurpose::ValidatorRecord, &blob, 0)
                .ok()
                .and_then(|o| o.plaintext.get(5..37).map(|b| b.try_into().unwrap()))
                .unwrap_or([0; 32]);
            pinned.insert(sealer.version_tag(SealPurpose::ValidatorRecord, &named, record));
            (SolanaPubkey(named), record)
        })
        .collect();
    let manifest = sealer.seal_manifest(&pinned, 1);
    Signer::restore(
        config(ancestry),
        sealer,
        Box::new(platform()),
        keyed,
        evidence,
        Some(manifest.as_bytes()),
        0,
    )
    .map_err(|e| match e {
        RestoreError::Record { error, .. } => *error,
        other => other,
    })
}

/// A request for `signer`'s service, signed by `identity`.
pub fn request(
    signer: &Signer,
    identity: &SolanaKeypair,
    nonce: u64,
    payload: Payload,
) -> SignedRequest {
    SignedRequest::sign(payload, signer.config().service, identity, nonce)
}

/// What a host does with a request: prepare it (stateless checks), then apply it.
pub fn submit(
    signer: &mut Signer,
    request: SignedRequest,
    rng: &mut StdRng,
) -> Result<Applied, Refusal> {
    let prepared = signer.config().prepare(request)?;
    signer.apply(&prepared, rng)
}

/// Signs `payload` as `identity` with `nonce` and submits it.
pub fn send(
    signer: &mut Signer,
    identity: &SolanaKeypair,
    nonce: u64,
    payload: Payload,
    rng: &mut StdRng,
) -> Result<Applied, Refusal> {
    let req = request(signer, identity, nonce, payload);
    submit(signer, req, rng)
}

/// `registerNode` for `vote_account`.
pub fn register(vote_account: &SolanaPubkey) -> Payload {
    Payload::RegisterNode {
        vote_account: *vote_account,
    }
}

/// `signVote` of `message` with no evidence.
pub fn sign_vote(message: &[u8]) -> Payload {
    sign_vote_with(message, Vec::new())
}

/// `signVote` of `message` with `evidence`.
pub fn sign_vote_with(message: &[u8], evidence: Vec<Vec<u8>>) -> Payload {
    Payload::SignVote {
        message: message.to_vec(),
        evidence,
    }
}

/// The vote key of a `registerNode` or `rotateVoteKey` answer.
pub fn vote_key_info(applied: &Applied) -> VoteKeyInfo {
    match &applied.answer {
        Answer::VoteKey(info) => info.clone(),
        other => panic!("expected a vote key, got {other:?}"),
    }
}

/// The signature of a `signVote` answer.
pub fn signature_of(applied: &Applied) -> SolanaSignature {
    match &applied.answer {
        Answer::Signature(signature) => *signature,
        other => panic!("expected a signature, got {other:?}"),
    }
}

/// The tower of a `deregisterNode` answer.
pub fn final_tower(applied: &Applied) -> TowerExport {
    match &applied.answer {
        Answer::FinalTower(export) => export.clone(),
        other => panic!("expected a final tower, got {other:?}"),
    }
}

/// A validator as the signer sees it: its identity keypair and its vote account.
pub struct Validator {
    /// The identity keypair that signs requests and pays for votes.
    pub identity: SolanaKeypair,
    /// The vote account.
    pub vote_account: SolanaPubkey,
}

impl Validator {
    /// A fresh validator.
    pub fn new(rng: &mut StdRng) -> Self {
        Self {
            identity: SolanaKeypair::generate(rng),
            vote_account: random_key(rng),
        }
    }

    /// The identity's public key.
    pub fn id(&self) -> SolanaPubkey {
        self.identity.pubkey()
    }

    /// A legacy `TowerSync` message on `slots` authorised by `vote_key`, paid by the identity.
    pub fn vote(&self, vote_key: &SolanaPubkey, slots: &[u64], hash_byte: u8) -> Vec<u8> {
        ts_message(&self.id(), &self.vote_account, vote_key, slots, hash_byte)
    }

    /// The wire transaction of `message` as the validator sent it: the identity's signature
    /// and the vote key's `vote_signature`.
    pub fn own_tx(
        &self,
        vote_key: &SolanaPubkey,
        message: &[u8],
        vote_signature: SolanaSignature,
    ) -> Vec<u8> {
        wire_tx(
            message,
            &[
                (self.id(), self.identity.sign(message)),
                (*vote_key, vote_signature),
            ],
        )
    }
}
