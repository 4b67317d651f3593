//! Kinds 1–4: gatekeepers and workers register and leave.

use keyward_crypto::IdentityPublicKey;

use super::{Effect, Event, Node, Registry, Role, Status};
use crate::body::{Kind, Registration};
use crate::reject::Rejected;

impl Registry {
    pub(super) fn check_register(
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
        // It would be removed at the rotation's end, and identities are single-use.
        if gatekeeper && self.rotation.is_some() {
            return Err(Rejected::RotationInProgress);
        }
        let params = &self.genesis.config().params;
        let (role, min) = if gatekeeper {
            let admitted = self.gatekeepers.len() < usize::from(params.bootstrap_gatekeepers);
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
            slashed: false,
            measurement: reg.evidence.measurement(),
            registered_at: self.height,
            status: Status::Active,
        }))
    }

    pub(super) fn check_deregister(
        &self,
        author: IdentityPublicKey,
        kind: Kind,
    ) -> Result<Effect, Rejected> {
        let gatekeeper = kind == Kind::GatekeeperDeregister;
        match self.nodes.get(&author) {
            Some(node)
                if node.is_active()
                    && matches!(node.role, Role::Gatekeeper { .. }) == gatekeeper =>
            {
                if gatekeeper {
                    self.check_gatekeeper_may_leave(&author)?;
                }
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

    pub(super) fn commit_register(&mut self, author: IdentityPublicKey, node: Node) -> Vec<Event> {
        if matches!(node.role, Role::Gatekeeper { .. }) {
            self.gatekeepers.insert(author);
        }
        let role = node.role;
        self.nodes.insert(author, node);
        vec![Event::Registered { id: author, role }]
    }

    pub(super) fn commit_deregister(
        &mut self,
        author: IdentityPublicKey,
        height: u64,
    ) -> Vec<Event> {
        let node = self
            .nodes
            .get_mut(&author)
            .expect("the check found an active node");
        node.status = Status::Deregistered { at: height };
        let role = node.role;
        self.forget_holder(&author);
        let mut events = vec![Event::Deregistered { id: author, role }];
        events.extend(self.leave_cluster(&author));
        events
    }
}
