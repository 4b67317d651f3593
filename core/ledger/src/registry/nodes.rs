//! Kinds 1–4: gatekeepers and workers register and leave.

use keyward_crypto::IdentityPublicKey;

use super::{Effect, Event, Node, Registry, Role, Status};
use crate::body::{Kind, Registration};
use crate::entry::VendorStamp;
use crate::reject::Rejected;

impl Registry {
    pub(super) fn check_register(
        &self,
        author: IdentityPublicKey,
        reg: &Registration,
        gatekeeper: bool,
        vendor: VendorStamp,
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
        // Vendor evidence names the time its collateral was checked at. Evidence checked more
        // than the policy's age limit before the ledger's clock (old collateral, which may
        // predate a TCB recovery) is refused. Only times the vendor signed move that clock
        // (`commit_register`): `verified_at` is the envelope maker's word.
        let policy = self.genesis.config().policy(role);
        if let (Some(at), Some(vendor)) = (reg.evidence.verified_at(), &policy.vendor)
            && at.saturating_add(vendor.max_age_secs) < self.attested_until
        {
            return Err(Rejected::StaleEvidence {
                verified_at: at,
                ledger_time: self.attested_until,
                max_age_secs: vendor.max_age_secs,
            });
        }
        // Intel raises the TCB evaluation data number at each TCB recovery. Evidence evaluated
        // under a lower number than accepted evidence of its platform has collateral from before
        // a recovery the ledger has seen: refused, whatever time its envelope names.
        if let Some((platform, found)) = vendor.tcb_evaluation
            && let Some(&ledger) = self.tcb_evaluations.get(&platform)
            && found < ledger
        {
            return Err(Rejected::OutdatedTcbEvaluation {
                platform,
                found,
                ledger,
            });
        }
        Ok(Effect::Register(Node {
            role,
            channel: reg.channel,
            endpoint: reg.endpoint,
            stake: reg.stake,
            slashed: false,
            measurement: reg.evidence.measurement(),
            attested_at: reg.evidence.verified_at(),
            vendor,
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
        self.attested_until = self.attested_until.max(node.vendor.signed_at.unwrap_or(0));
        if let Some((platform, number)) = node.vendor.tcb_evaluation {
            let highest = self.tcb_evaluations.entry(platform).or_insert(number);
            *highest = (*highest).max(number);
        }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeSet;

    use keyward_crypto::{ChainId, ChannelKeypair, IdentityKeypair};
    use keyward_enclave::{AttestationPolicy, Evidence, EvidenceKind, EvidencePolicy, Platform};
    use rand::{SeedableRng, rngs::StdRng};

    use super::*;
    use crate::{Body, CodeId, Entry, EntryHash, GenesisConfig, Params, Position};

    /// When the TDX sample's collateral is checked.
    const SAMPLE_TIME: u64 = 1_750_332_747;
    /// When the TD 1.5 sample's collateral is checked.
    const TD15_TIME: u64 = 1_791_421_786;

    fn sample_data(name: &str) -> Vec<u8> {
        std::fs::read(format!(
            "{}/../attest/tests/data/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    fn tdx_sample() -> Evidence {
        let quote = sample_data("tdx_quote");
        let collateral = sample_data("tdx_quote_collateral.json");
        Evidence::vendor(EvidenceKind::Dcap, quote, collateral, SAMPLE_TIME).unwrap()
    }

    /// The TDX sample's newer sibling, a TD 1.5: its collateral is evaluated under TCB
    /// evaluation data number 20, the older sample's under 17.
    fn td15_sample() -> Evidence {
        let quote = sample_data("tdx_quote_td15ex");
        let collateral = sample_data("tdx_quote_td15ex_collateral.json");
        Evidence::vendor(EvidenceKind::Dcap, quote, collateral, TD15_TIME).unwrap()
    }

    /// What the registry tracks of verified vendor evidence.
    fn stamp(evidence: &Evidence) -> VendorStamp {
        VendorStamp::of(&evidence.vendor_claims().unwrap().unwrap())
    }

    /// A worker registration carrying `evidence`.
    fn registration(evidence: Evidence, rng: &mut StdRng) -> Registration {
        Registration {
            channel: ChannelKeypair::generate(rng).public(),
            endpoint: "10.0.0.1:1".parse().unwrap(),
            stake: Params::default().min_worker_stake,
            evidence,
        }
    }

    /// A registry whose workers' policy accepts the samples' platform and measurements.
    fn registry(rng: &mut StdRng, samples: &[&Evidence]) -> Registry {
        let council = IdentityKeypair::generate(rng);
        let claims: Vec<_> = samples
            .iter()
            .map(|sample| sample.vendor_claims().unwrap().unwrap())
            .collect();
        let config = GenesisConfig {
            chain: ChainId::new("clock-net").unwrap(),
            council: BTreeSet::from([council.public()]),
            threshold: 1,
            params: Params::default(),
            contract_codes: BTreeSet::from([CodeId::new("kv-store").unwrap()]),
            gatekeeper_policy: EvidencePolicy::default(),
            worker_policy: EvidencePolicy {
                vendor: Some(AttestationPolicy::strict(
                    vec![claims[0].platform],
                    claims.into_iter().map(|c| c.measurement).collect(),
                )),
                ..EvidencePolicy::default()
            },
        };
        let position = Position {
            height: 0,
            parent: EntryHash::ZERO,
            seq: 0,
        };
        let genesis = Entry::sign(&council, position, &Body::Genesis(Box::new(config)), rng);
        Registry::from_genesis(&genesis, &genesis.hash()).unwrap()
    }

    /// The ledger's clock is the latest time a vendor signed into accepted evidence: it only
    /// moves forward, and evidence checked more than the age limit before it is stale.
    #[test]
    fn vendor_evidence_checked_long_before_the_ledgers_time_is_stale() {
        let mut rng = StdRng::seed_from_u64(7);
        let sample = tdx_sample();
        let signed = stamp(&sample);
        let signed_at = signed.signed_at.unwrap();
        // The collateral's latest issue date: its QE identity's `issueDate`,
        // 2025-06-19T10:32:27Z, an hour before the sample was checked.
        assert_eq!(signed_at, 1_750_329_147);
        let mut registry = registry(&mut rng, &[&sample]);
        let max_age = AttestationPolicy::strict(Vec::new(), Vec::new()).max_age_secs;
        let registration = registration(sample, &mut rng);
        let author = IdentityKeypair::generate(&mut rng).public();

        registry.attested_until = SAMPLE_TIME + max_age;
        let Ok(Effect::Register(node)) =
            registry.check_register(author, &registration, false, signed)
        else {
            panic!("evidence within the age limit is accepted");
        };
        assert_eq!(node.attested_at, Some(SAMPLE_TIME));
        assert_eq!(node.vendor, signed);

        registry.attested_until = SAMPLE_TIME + max_age + 1;
        assert!(matches!(
            registry.check_register(author, &registration, false, signed),
            Err(Rejected::StaleEvidence {
                verified_at: SAMPLE_TIME,
                ..
            })
        ));
        // An accepted registration never moves the clock back...
        registry.commit_register(author, node.clone());
        assert_eq!(registry.attested_until, SAMPLE_TIME + max_age + 1);
        // ...and moves it forward, to the time the vendor signed.
        registry.attested_until = 0;
        let other = IdentityKeypair::generate(&mut rng).public();
        registry.commit_register(other, node);
        assert_eq!(registry.attested_until, signed_at);
    }

    /// An envelope's `verified_at` is its maker's word: dating it weeks ahead (within the
    /// collateral's validity) does not move the ledger's clock past what the vendor signed, so
    /// honest evidence registered afterwards is not stale.
    #[test]
    fn a_verification_time_ahead_does_not_move_the_ledgers_clock() {
        let mut rng = StdRng::seed_from_u64(9);
        let sample = tdx_sample();
        let late_at = SAMPLE_TIME + 20 * 86_400;
        let late = Evidence::vendor(
            EvidenceKind::Dcap,
            sample_data("tdx_quote"),
            sample_data("tdx_quote_collateral.json"),
            late_at,
        )
        .unwrap();
        let signed = stamp(&late);
        assert_eq!(signed, stamp(&sample));
        let mut registry = registry(&mut rng, &[&sample]);
        let early = IdentityKeypair::generate(&mut rng).public();
        let ahead = IdentityKeypair::generate(&mut rng).public();
        let Ok(Effect::Register(node)) =
            registry.check_register(ahead, &registration(late, &mut rng), false, signed)
        else {
            panic!("evidence dated ahead is accepted");
        };
        assert_eq!(node.attested_at, Some(late_at));
        registry.commit_register(ahead, node);
        assert_eq!(Some(registry.attested_until), signed.signed_at);
        assert!(
            registry
                .check_register(early, &registration(sample, &mut rng), false, signed)
                .is_ok(),
            "evidence checked at its real time is still current"
        );
    }

    /// Once evidence evaluated under a newer TCB evaluation data number is accepted, evidence of
    /// the same platform evaluated under an older one is refused, even where the clock rule
    /// would pass it (an envelope dated late, on a replay); other platforms are not affected.
    #[test]
    fn collateral_from_before_a_tcb_recovery_the_ledger_has_seen_is_refused() {
        let mut rng = StdRng::seed_from_u64(10);
        let (old, new) = (tdx_sample(), td15_sample());
        assert_eq!(stamp(&old).tcb_evaluation, Some((Platform::Tdx, 17)));
        assert_eq!(stamp(&new).tcb_evaluation, Some((Platform::Tdx, 20)));
        let mut registry = registry(&mut rng, &[&old, &new]);
        let mut ids = StdRng::seed_from_u64(11);
        let mut author = move || IdentityKeypair::generate(&mut ids).public();

        // Before any newer evidence, the older one registers.
        let older = registration(old.clone(), &mut rng);
        assert!(
            registry
                .check_register(author(), &older, false, stamp(&old))
                .is_ok()
        );
        let Ok(Effect::Register(node)) = registry.check_register(
            author(),
            &registration(new.clone(), &mut rng),
            false,
            stamp(&new),
        ) else {
            panic!("the newer evidence registers");
        };
        registry.commit_register(author(), node);
        // Take the clock back so only the new rule is at work: on a replay, the older evidence's
        // envelope could have named a time that passes the clock rule.
        registry.attested_until = 0;
        assert!(matches!(
            registry.check_register(author(), &older, false, stamp(&old)),
            Err(Rejected::OutdatedTcbEvaluation {
                platform: Platform::Tdx,
                found: 17,
                ledger: 20,
            })
        ));
        // An equal number passes, and the floor is per platform.
        assert!(
            registry
                .check_register(
                    author(),
                    &registration(new.clone(), &mut rng),
                    false,
                    stamp(&new)
                )
                .is_ok()
        );
        // The stamp SGX evidence under 17 would carry.
        let sgx = VendorStamp {
            tcb_evaluation: Some((Platform::Sgx, 17)),
            ..stamp(&old)
        };
        let Ok(Effect::Register(node)) = registry.check_register(author(), &older, false, sgx)
        else {
            panic!("SGX evidence under 17 registers");
        };
        // Accepting lower evidence of another platform never lowers the floor.
        registry.commit_register(author(), node);
        assert_eq!(registry.tcb_evaluations.get(&Platform::Tdx), Some(&20));
        assert_eq!(registry.tcb_evaluations.get(&Platform::Sgx), Some(&17));
    }

    /// A verifier with a clock refuses vendor evidence verified outside the age limit before
    /// its clock, or dated ahead of it.
    #[test]
    fn the_first_verifier_checks_the_evidence_time_against_its_clock() {
        let mut rng = StdRng::seed_from_u64(8);
        let sample = tdx_sample();
        let registry = registry(&mut rng, &[&sample]);
        let genesis = registry.genesis();
        let max_age = AttestationPolicy::strict(Vec::new(), Vec::new()).max_age_secs;
        let worker = IdentityKeypair::generate(&mut rng);
        let body = Body::WorkerRegister(Registration {
            channel: ChannelKeypair::generate(&mut rng).public(),
            endpoint: "10.0.0.1:1".parse().unwrap(),
            stake: Params::default().min_worker_stake,
            evidence: sample,
        });
        let position = Position {
            height: 1,
            parent: genesis.hash(),
            seq: 0,
        };
        let entry = Entry::sign(&worker, position, &body, &mut rng);
        // Built directly: the sample binds no keys of ours, so `Genesis::verify` refuses it.
        let verified =
            crate::entry::VerifiedEntry::new(entry, body, genesis.hash(), VendorStamp::default());
        for now in [SAMPLE_TIME, SAMPLE_TIME + max_age, SAMPLE_TIME - 60] {
            genesis.check_current(&verified, now).unwrap();
        }
        for now in [SAMPLE_TIME + max_age + 1, SAMPLE_TIME - 61] {
            assert_eq!(
                genesis.check_current(&verified, now),
                Err(Rejected::EvidenceNotCurrent {
                    verified_at: SAMPLE_TIME,
                    now,
                    max_age_secs: max_age,
                })
            );
        }
    }
}
