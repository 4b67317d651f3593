//! The registry: the state every node computes from the entries, one verified entry at a time.
//!
//! [`Registry::apply`] runs a pure check that returns what the entry will change (an `Effect`),
//! then commits that effect, which cannot fail. So a refused entry changes nothing, by
//! construction. Only ordered maps are used and there is no clock: the same entries give the
//! same registry on every node.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use keyward_crypto::{ChannelPublicKey, IdentityPublicKey};

use crate::body::{Body, Kind, Registration};
use crate::entry::{Entry, EntryHash, VerifiedEntry};
use crate::genesis::Genesis;
use crate::reject::Rejected;

/// What a node is. Identities are single-use: one identity, one role, for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Holds MasterKey secrets and provisions ClusterKeys.
    Gatekeeper {
        /// Admitted to hold epoch secrets: one of the genesis's bootstrap gatekeepers (later
        /// also by council decision).
        admitted: bool,
    },
    /// Runs contracts.
    Worker,
}

impl Role {
    /// The role's name: `"gatekeeper"` or `"worker"`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Gatekeeper { .. } => "gatekeeper",
            Self::Worker => "worker",
        }
    }
}

/// Whether a node is still part of the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Registered and not gone.
    Active,
    /// Left at this height.
    Deregistered {
        /// The height of the entry that removed it.
        at: u64,
    },
}

/// A registered gatekeeper or worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its role.
    pub role: Role,
    /// Its attested X25519 channel key.
    pub channel: ChannelPublicKey,
    /// Its RPC address.
    pub endpoint: SocketAddr,
    /// Its declared stake.
    pub stake: u64,
    /// The measurement its evidence attested.
    pub measurement: [u8; 32],
    /// The height it registered at.
    pub registered_at: u64,
    /// Whether it is still active.
    pub status: Status,
}

impl Node {
    /// Registered and not gone.
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }
}

/// Something an applied entry changed, for hosts to react to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A node registered.
    Registered {
        /// Its identity.
        id: IdentityPublicKey,
        /// Its role (with admission, for a gatekeeper).
        role: Role,
    },
    /// A node left.
    Deregistered {
        /// Its identity.
        id: IdentityPublicKey,
        /// Its role.
        role: Role,
    },
}

/// The outcome of an applied entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Its height.
    pub height: u64,
    /// Its hash: the new head.
    pub hash: EntryHash,
    /// Its kind.
    pub kind: Kind,
    /// Its author.
    pub author: IdentityPublicKey,
    /// What it changed.
    pub events: Vec<Event>,
}

/// What a checked entry will change. Produced by the pure check, consumed by the infallible
/// commit.
enum Effect {
    Register(Node),
    Deregister,
}

/// The registry state after the entries applied so far.
///
/// Guarantees: it changes only through [`Registry::apply`], which either applies a whole entry
/// or refuses it and changes nothing; it holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    genesis: Arc<Genesis>,
    height: u64,
    head: EntryHash,
    next_seq: BTreeMap<IdentityPublicKey, u64>,
    nodes: BTreeMap<IdentityPublicKey, Node>,
    gatekeepers_registered: u64,
}

impl Registry {
    /// The registry after the genesis entry `entry`, which must hash to `pinned`.
    ///
    /// # Errors
    /// As [`Genesis::from_entry`].
    pub fn from_genesis(entry: &Entry, pinned: &EntryHash) -> Result<Self, Rejected> {
        let genesis = Genesis::from_entry(entry, pinned)?;
        Ok(Self {
            height: 1,
            head: genesis.hash(),
            next_seq: BTreeMap::from([(genesis.author(), 1)]),
            nodes: BTreeMap::new(),
            gatekeepers_registered: 0,
            genesis,
        })
    }

    /// Applies `entry`, or refuses it and changes nothing.
    ///
    /// # Errors
    /// The first rule the entry breaks, checked in this order: the ledger it was verified for,
    /// its height, parent and sequence number, then the rules of its kind.
    pub fn apply(&mut self, entry: VerifiedEntry) -> Result<Applied, Rejected> {
        let effect = self.check(&entry)?;
        Ok(self.commit(entry, effect))
    }

    fn check(&self, v: &VerifiedEntry) -> Result<Effect, Rejected> {
        if v.genesis() != self.genesis.hash() {
            return Err(Rejected::WrongLedger {
                expected: self.genesis.hash(),
                found: v.genesis(),
            });
        }
        let entry = v.entry();
        let position = entry.position();
        if position.height != self.height {
            return Err(Rejected::WrongHeight {
                expected: self.height,
                found: position.height,
            });
        }
        if position.parent != self.head {
            return Err(Rejected::WrongParent {
                expected: self.head,
                found: position.parent,
            });
        }
        let author = entry.author();
        let next = self.next_seq(&author);
        if position.seq < next {
            return Err(Rejected::Replay {
                seq: position.seq,
                next,
            });
        }
        if position.seq > next {
            return Err(Rejected::SequenceGap {
                seq: position.seq,
                next,
            });
        }
        match v.body() {
            Body::GatekeeperRegister(reg) => self.check_register(author, reg, true),
            Body::WorkerRegister(reg) => self.check_register(author, reg, false),
            Body::GatekeeperDeregister => self.check_deregister(author, Kind::GatekeeperDeregister),
            Body::WorkerDeregister => self.check_deregister(author, Kind::WorkerDeregister),
            Body::Genesis(_) => Err(Rejected::UnexpectedGenesis),
        }
    }

    fn check_register(
        &self,
        author: IdentityPublicKey,
        reg: &Registration,
        gatekeeper: bool,
    ) -> Result<Effect, Rejected> {
        if let Some(node) = self.nodes.get(&author) {
            return Err(Rejected::AlreadyRegistered {
                role: node.role.name(),
            });
        }
        if self.genesis.config().council.contains(&author) {
            return Err(Rejected::RoleConflict);
        }
        let params = &self.genesis.config().params;
        let (role, min) = if gatekeeper {
            let admitted = self.gatekeepers_registered < u64::from(params.bootstrap_gatekeepers);
            (Role::Gatekeeper { admitted }, params.min_gatekeeper_stake)
        } else {
            (Role::Worker, params.min_worker_stake)
        };
        if reg.stake < min {
            return Err(Rejected::StakeTooLow {
                role: role.name(),
                min,
                found: reg.stake,
            });
        }
        Ok(Effect::Register(Node {
            role,
            channel: reg.channel,
            endpoint: reg.endpoint,
            stake: reg.stake,
            measurement: reg.evidence.measurement(),
            registered_at: self.height,
            status: Status::Active,
        }))
    }

    fn check_deregister(&self, author: IdentityPublicKey, kind: Kind) -> Result<Effect, Rejected> {
        let gatekeeper = kind == Kind::GatekeeperDeregister;
        match self.nodes.get(&author) {
            Some(node)
                if node.is_active()
                    && matches!(node.role, Role::Gatekeeper { .. }) == gatekeeper =>
            {
                Ok(Effect::Deregister)
            }
            _ => Err(Rejected::WrongAuthor {
                kind,
                needs: if gatekeeper {
                    "an active gatekeeper, itself"
                } else {
                    "an active worker, itself"
                },
            }),
        }
    }

    fn commit(&mut self, v: VerifiedEntry, effect: Effect) -> Applied {
        let entry = v.into_entry();
        let author = entry.author();
        let height = self.height;
        let events = match effect {
            Effect::Register(node) => {
                if matches!(node.role, Role::Gatekeeper { .. }) {
                    self.gatekeepers_registered += 1;
                }
                let role = node.role;
                self.nodes.insert(author, node);
                vec![Event::Registered { id: author, role }]
            }
            Effect::Deregister => {
                let node = self
                    .nodes
                    .get_mut(&author)
                    .expect("the check found an active node");
                node.status = Status::Deregistered { at: height };
                vec![Event::Deregistered {
                    id: author,
                    role: node.role,
                }]
            }
        };
        self.height += 1;
        self.head = entry.hash();
        self.next_seq.insert(author, entry.position().seq + 1);
        Applied {
            height,
            hash: entry.hash(),
            kind: entry.kind(),
            author,
            events,
        }
    }

    /// The verified genesis, to verify entries against (on any thread).
    pub fn genesis(&self) -> &Arc<Genesis> {
        &self.genesis
    }

    /// The height the next entry must have.
    pub fn next_height(&self) -> u64 {
        self.height
    }

    /// The hash of the last applied entry: the next entry's parent.
    pub fn head(&self) -> EntryHash {
        self.head
    }

    /// The sequence number `author`'s next entry must have.
    pub fn next_seq(&self, author: &IdentityPublicKey) -> u64 {
        self.next_seq.get(author).copied().unwrap_or(0)
    }

    /// The node registered as `id`, active or not.
    pub fn node(&self, id: &IdentityPublicKey) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// Every registered node, in identity order.
    pub fn nodes(&self) -> impl Iterator<Item = (&IdentityPublicKey, &Node)> {
        self.nodes.iter()
    }
}
