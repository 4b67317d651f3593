//! A small in-memory network for the ledger tests: a council, a dev platform key, a genesis and
//! the registry after it, with helpers that sign entries at the current head.
#![allow(clippy::unwrap_used, dead_code)] // test helpers; not every test file uses every one

use std::collections::BTreeSet;

use keyward_crypto::{ChainId, ChannelKeypair, ChannelPublicKey, IdentityKeypair};
use keyward_enclave::{BoundKey, DevPlatformKey, EvidencePolicy};
use keyward_hierarchy::{Epoch, MasterKey, verify_chain};
use keyward_ledger::*;
use rand::{SeedableRng, rngs::StdRng};

/// The measurement every test enclave reports.
pub const MEASUREMENT: [u8; 32] = [0x4d; 32];

pub struct Net {
    pub rng: StdRng,
    pub council: Vec<IdentityKeypair>,
    pub platform: DevPlatformKey,
    pub genesis: Entry,
    pub registry: Registry,
}

/// A dev policy that trusts `platform` and [`MEASUREMENT`].
pub fn dev_policy(platform: &DevPlatformKey) -> EvidencePolicy {
    EvidencePolicy {
        accept_insecure_dev: true,
        allowed_measurements: vec![MEASUREMENT],
        trusted_dev_platforms: vec![platform.public()],
        trusted_tpm_keys: Vec::new(),
        vendor: None,
    }
}

pub fn config(council: &[IdentityKeypair], platform: &DevPlatformKey) -> GenesisConfig {
    GenesisConfig {
        chain: ChainId::new("test-net").unwrap(),
        council: council.iter().map(IdentityKeypair::public).collect(),
        threshold: GenesisConfig::majority(council.len()),
        params: Params::default(),
        contract_codes: BTreeSet::from([CodeId::new("kv-store").unwrap()]),
        gatekeeper_policy: dev_policy(platform),
        worker_policy: dev_policy(platform),
    }
}

pub fn genesis_position() -> Position {
    Position {
        height: 0,
        parent: EntryHash::ZERO,
        seq: 0,
    }
}

/// Signs `body` as `author`, expects the refusal named `name`, and checks that the registry did
/// not change.
pub fn refused(net: &mut Net, author: &IdentityKeypair, body: &Body, name: &str) -> Rejected {
    let before = net.registry.clone();
    let err = net.submit(author, body).unwrap_err();
    assert_eq!(err.name(), name, "{err}");
    assert_eq!(net.registry, before, "a refused entry changed the registry");
    err
}

impl Net {
    pub fn new(seed: u64) -> Self {
        Self::with(seed, |_| {})
    }

    /// A network whose genesis `edit` adjusted.
    pub fn with(seed: u64, edit: impl FnOnce(&mut GenesisConfig)) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let council: Vec<_> = (0..3)
            .map(|_| IdentityKeypair::generate(&mut rng))
            .collect();
        let platform = DevPlatformKey::generate(&mut rng);
        let mut cfg = config(&council, &platform);
        edit(&mut cfg);
        let genesis = Entry::sign(
            &council[0],
            genesis_position(),
            &Body::Genesis(Box::new(cfg)),
            &mut rng,
        );
        let registry = Registry::from_genesis(&genesis, &genesis.hash()).unwrap();
        Self {
            rng,
            council,
            platform,
            genesis,
            registry,
        }
    }

    pub fn key(&mut self) -> IdentityKeypair {
        IdentityKeypair::generate(&mut self.rng)
    }

    /// The next position for `author`.
    pub fn position(&self, author: &IdentityKeypair) -> Position {
        Position {
            height: self.registry.next_height(),
            parent: self.registry.head(),
            seq: self.registry.next_seq(&author.public()),
        }
    }

    pub fn sign_at(&mut self, author: &IdentityKeypair, position: Position, body: &Body) -> Entry {
        Entry::sign(author, position, body, &mut self.rng)
    }

    pub fn sign(&mut self, author: &IdentityKeypair, body: &Body) -> Entry {
        let position = self.position(author);
        self.sign_at(author, position, body)
    }

    /// Verifies and applies `entry`.
    pub fn submit_entry(&mut self, entry: Entry) -> Result<Applied, Rejected> {
        let verified = self.registry.genesis().verify(entry)?;
        self.registry.apply(verified)
    }

    /// Council member `i` signs `body` at the head and submits it.
    pub fn as_council(&mut self, i: usize, body: &Body) -> Result<Applied, Rejected> {
        let entry = Entry::sign(
            &self.council[i],
            self.position(&self.council[i]),
            body,
            &mut self.rng,
        );
        self.submit_entry(entry)
    }

    /// Signs `body` at the head and submits it.
    pub fn submit(&mut self, author: &IdentityKeypair, body: &Body) -> Result<Applied, Rejected> {
        let entry = self.sign(author, body);
        self.submit_entry(entry)
    }

    /// A registration for `node` in `role` with evidence bound to this ledger's nonce.
    pub fn registration(
        &mut self,
        node: &IdentityKeypair,
        role: Role,
        endpoint: &str,
        stake: u64,
    ) -> Registration {
        let channel = ChannelKeypair::generate(&mut self.rng).public();
        self.registration_for(node, channel, role, endpoint, stake)
    }

    /// As [`Net::registration`], with a given channel key.
    pub fn registration_for(
        &mut self,
        node: &IdentityKeypair,
        channel: ChannelPublicKey,
        role: Role,
        endpoint: &str,
        stake: u64,
    ) -> Registration {
        let evidence = self
            .platform
            .attest(
                MEASUREMENT,
                &[
                    BoundKey::Identity(node.public()),
                    BoundKey::Channel(channel),
                ],
                &registration_nonce(&self.registry.genesis().hash(), role),
                &mut self.rng,
            )
            .unwrap();
        Registration {
            channel,
            endpoint: endpoint.parse().unwrap(),
            stake,
            evidence,
        }
    }

    pub fn gatekeeper_body(&mut self, node: &IdentityKeypair) -> Body {
        let stake = Params::default().min_gatekeeper_stake;
        Body::GatekeeperRegister(self.registration(
            node,
            Role::Gatekeeper { admitted: false },
            "127.0.0.1:9100",
            stake,
        ))
    }

    pub fn worker_body(&mut self, node: &IdentityKeypair) -> Body {
        let stake = Params::default().min_worker_stake;
        Body::WorkerRegister(self.registration(node, Role::Worker, "203.0.113.7:9200", stake))
    }
}

/// A node with both its keys, as its enclave would hold them.
pub struct Member {
    pub id: IdentityKeypair,
    pub channel: ChannelKeypair,
}

impl Member {
    pub fn public(&self) -> (keyward_crypto::IdentityPublicKey, ChannelPublicKey) {
        (self.id.public(), self.channel.public())
    }
}

impl Net {
    /// A new node in `role`, registered.
    pub fn join(&mut self, role: Role) -> Member {
        let member = Member {
            id: self.key(),
            channel: ChannelKeypair::generate(&mut self.rng),
        };
        let params = Params::default();
        let body = match role {
            Role::Gatekeeper { .. } => Body::GatekeeperRegister(self.registration_for(
                &member.id,
                member.channel.public(),
                role,
                "127.0.0.1:9100",
                params.min_gatekeeper_stake,
            )),
            Role::Worker => Body::WorkerRegister(self.registration_for(
                &member.id,
                member.channel.public(),
                role,
                "203.0.113.7:9200",
                params.min_worker_stake,
            )),
        };
        self.submit(&member.id, &body).unwrap();
        member
    }

    /// A new gatekeeper, registered.
    pub fn gatekeeper(&mut self) -> Member {
        self.join(Role::Gatekeeper { admitted: false })
    }

    /// A new worker, registered.
    pub fn worker(&mut self) -> Member {
        self.join(Role::Worker)
    }
}

/// The body creating `epoch` with `master`, the author first, sealed to `others`.
pub fn create(
    net: &mut Net,
    author: &Member,
    epoch: u64,
    master: &MasterKey,
    others: &[&Member],
) -> Body {
    let proposal = (epoch > 0).then_some(EntryHash([7; 32]));
    create_for(net, author, epoch, master, others, proposal)
}

/// As [`create`], for the rotation `proposal`.
pub fn create_for(
    net: &mut Net,
    author: &Member,
    epoch: u64,
    master: &MasterKey,
    others: &[&Member],
    proposal: Option<EntryHash>,
) -> Body {
    let genesis = net.registry.genesis().hash();
    let others: Vec<_> = others.iter().map(|m| m.public()).collect();
    Body::EpochCreate(Box::new(
        EpochCreate::new(
            &author.id,
            &genesis,
            Epoch(epoch),
            master,
            &others,
            proposal,
            &mut net.rng,
        )
        .unwrap(),
    ))
}

pub fn handoff(
    net: &mut Net,
    author: &Member,
    to: &Member,
    secrets: &[(Epoch, &MasterKey)],
) -> Body {
    let genesis = net.registry.genesis().hash();
    Body::EpochHandoff(
        EpochHandoff::new(&author.id, &genesis, to.public(), secrets, &mut net.rng).unwrap(),
    )
}

pub fn accept(epochs: &[u64]) -> Body {
    Body::EpochAccept(EpochAccept {
        epochs: epochs.iter().map(|&e| Epoch(e)).collect(),
    })
}

/// The epoch checksum chain verifies over every epoch's founding record.
pub fn chain_verifies(net: &Net) {
    let records: Vec<_> = net
        .registry
        .epochs()
        .iter()
        .map(|s| s.record().clone())
        .collect();
    let chain = net.registry.genesis().config().chain.clone();
    verify_chain(&chain, &records, &net.registry.checksum()).unwrap();
}
