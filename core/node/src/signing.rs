//! A gatekeeper's part in committee signatures (PROTOCOL §16.13): commit to FROST nonces for the
//! ledger's open signing runs, and sign the package the ledger fixes.
//!
//! Nonce safety is the whole difficulty: two signature shares made with one nonce reveal the key
//! share. So each run's nonces come from a fresh random seed that is sealed before its commitment
//! is submitted, and is replaced in the sealed state by the share it made before that share is
//! submitted. A restarted gatekeeper re-submits what it sealed; it never holds a seed that has
//! signed, so no ledger (even a forked one) can make it sign twice with one nonce.

use std::collections::BTreeMap;

use keyward_crypto::{DecodeError, IdentityPublicKey, Reader, SecretBytes, Writer};
use keyward_ledger::{Body, Registry, SignCommit, SignShare, SigningRun, Statement};
use keyward_threshold::{Committee, KeyShare, ShareIndex, SignatureShare, sign};

use crate::GatekeeperStep;
use crate::sealed::{count, secret};

/// The most runs a gatekeeper has nonce state for: it commits to no new run beyond this, so the
/// sealed state stays small (a run is certified within a few entries).
const MAX_OPEN: usize = 16;

/// Where this gatekeeper is in one run.
enum Nonce {
    /// Committed: the seed of its nonces, secret until it has signed. Boxed, so that the map
    /// moves a pointer, never a copy of the seed it cannot zeroize.
    Committed(Box<SecretBytes<32>>),
    /// Signed: the share (public once submitted); the seed is gone.
    Signed(SignatureShare),
}

/// Its nonce state per signing run (statement, attempt). Part of the sealed state.
#[derive(Default)]
pub(crate) struct Signing {
    runs: BTreeMap<(Statement, u16), Nonce>,
}

impl core::fmt::Debug for Signing {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Signing")
            .field("runs", &self.runs.len())
            .finish_non_exhaustive()
    }
}

impl Signing {
    /// Its next step in the open signing runs: `share_in` finds its share in a committee.
    /// Commitments and shares are `SealThenSubmit`: the host stores the state first.
    pub(crate) fn step<'a>(
        &mut self,
        registry: &Registry,
        me: &IdentityPublicKey,
        share_in: impl Fn(&Committee) -> Option<&'a KeyShare>,
        rng: &mut impl keyward_crypto::Rng,
    ) -> Option<GatekeeperStep> {
        self.forget_finished(registry, me);
        for (statement, run) in registry.signing() {
            let Some(state) = registry.epoch(statement.epoch()) else {
                continue;
            };
            let current = state.current();
            let (Some(index), Some(share)) = (current.index_of(me), share_in(current.committee()))
            else {
                continue;
            };
            if !state.holders().contains(me) || run.excluded().contains(me) {
                continue;
            }
            let key = (statement.clone(), run.attempt());
            let committed = run.commitments().contains_key(&index);
            let step = match self.runs.get(&key) {
                None if !committed && !run.chosen() && self.runs.len() < MAX_OPEN => {
                    let seed = Box::new(SecretBytes::random(rng));
                    let (_, commitment) = sign::commit(share, &seed);
                    self.runs.insert(key, Nonce::Committed(seed));
                    GatekeeperStep::SealThenSubmit(commit_body(statement, run, commitment))
                }
                // Sealed before a restart; the commitment did not land yet.
                Some(Nonce::Committed(seed)) if !committed && !run.chosen() => {
                    GatekeeperStep::Submit(commit_body(statement, run, sign::commit(share, seed).1))
                }
                Some(Nonce::Committed(seed)) if committed && run.chosen() => {
                    let Some(signed) = sign_run(
                        registry,
                        statement,
                        run,
                        current.committee(),
                        (index, share),
                        seed,
                    ) else {
                        continue;
                    };
                    self.runs.insert(key, Nonce::Signed(signed));
                    GatekeeperStep::SealThenSubmit(share_body(statement, run, signed))
                }
                Some(Nonce::Signed(signed)) if !run.shares().contains_key(&index) => {
                    GatekeeperStep::Submit(share_body(statement, run, *signed))
                }
                _ => continue,
            };
            return Some(step);
        }
        None
    }

    /// Forgets the state of runs that are over, restarted, or went on with other signers, and
    /// shares that have landed (public, and never needed again: its commitment is on the
    /// ledger, so it never commits to that attempt again). A forgotten seed never signed, so it
    /// needs no sealing away.
    fn forget_finished(&mut self, registry: &Registry, me: &IdentityPublicKey) {
        self.runs.retain(|(statement, attempt), nonce| {
            let Some(run) = registry.signing().get(statement) else {
                return false;
            };
            let index = registry
                .epoch(statement.epoch())
                .and_then(|s| s.current().index_of(me));
            let mine = index.is_some_and(|i| run.commitments().contains_key(&i));
            let landed = index.is_some_and(|i| run.shares().contains_key(&i));
            run.attempt() == *attempt
                && match nonce {
                    Nonce::Committed(_) => mine || !run.chosen(),
                    Nonce::Signed(_) => mine && !landed,
                }
        });
    }

    /// Writes `u16(count) || (statement || u16(attempt) || u8(0) || seed | u8(1) || share)*`.
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.u16(u16::try_from(self.runs.len()).expect("bounded by MAX_OPEN"));
        for ((statement, attempt), nonce) in &self.runs {
            statement.encode(w);
            w.u16(*attempt);
            match nonce {
                Nonce::Committed(seed) => w.u8(0).raw(seed.expose()),
                Nonce::Signed(share) => w.u8(1).raw(&share.to_bytes()),
            };
        }
    }

    /// Reads [`Signing::encode`].
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let n = count(r, "signing run count", MAX_OPEN)?;
        let mut runs = BTreeMap::new();
        for _ in 0..n {
            let key = (Statement::decode(r)?, r.u16("signing attempt")?);
            let nonce = match r.u8("nonce state")? {
                0 => Nonce::Committed(Box::new(secret(r, "nonce seed")?)),
                1 => Nonce::Signed(SignatureShare::from_bytes(&r.array("signature share")?)?),
                _ => {
                    return Err(DecodeError::Invalid {
                        field: "nonce state",
                        reason: "not 0 (committed) or 1 (signed)",
                    });
                }
            };
            runs.insert(key, nonce);
        }
        Ok(Self { runs })
    }
}

/// Its share of `run`, with the nonces from `seed`; `None` if the ledger's commitment for it is
/// not the one `seed` gives (never the case for its own entries).
fn sign_run(
    registry: &Registry,
    statement: &Statement,
    run: &SigningRun,
    committee: &Committee,
    (index, share): (ShareIndex, &KeyShare),
    seed: &SecretBytes<32>,
) -> Option<SignatureShare> {
    let (nonces, commitment) = sign::commit(share, seed);
    if run.commitments().get(&index) != Some(&commitment) {
        return None;
    }
    let message = registry
        .certified(statement)?
        .message(&registry.genesis().hash());
    sign::sign(share, committee, &message, run.commitments(), nonces).ok()
}

fn commit_body(
    statement: &Statement,
    run: &SigningRun,
    commitment: keyward_threshold::NonceCommitment,
) -> Body {
    Body::SignCommit(Box::new(SignCommit {
        statement: statement.clone(),
        attempt: run.attempt(),
        commitment,
    }))
}

fn share_body(statement: &Statement, run: &SigningRun, share: SignatureShare) -> Body {
    Body::SignShare(Box::new(SignShare {
        statement: statement.clone(),
        attempt: run.attempt(),
        share,
    }))
}
