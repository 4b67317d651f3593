//! Kind 23: a wrong partial evaluation, revealed with its gatekeeper's signature (PROTOCOL
//! §16.12), slashes the gatekeeper.

use keyward_crypto::{IdentityPublicKey, SigningPurpose};
use keyward_threshold::PartialEvaluation;

use super::{Effect, Event, Registry, Role};
use crate::partial::{PartialReport, partial_message};
use crate::reject::Rejected;

impl Registry {
    pub(super) fn check_partial_report(
        &self,
        author: IdentityPublicKey,
        report: &PartialReport,
    ) -> Result<Effect, Rejected> {
        let bad = |reason| Err(Rejected::BadPartialReport(reason));
        // A classic-mode partial is the whole evaluation: revealing it reveals the key.
        self.check_threshold_mode("classic mode never reveals a partial evaluation")?;
        if !self
            .nodes
            .get(&author)
            .is_some_and(|n| n.is_active() && n.role == Role::Worker)
        {
            return Err(Rejected::WrongAuthor {
                kind: crate::Kind::PartialReport,
                needs: "an active worker",
            });
        }
        let request = &report.request;
        if self.partial_reports.contains(&report_key(report)) {
            return Err(Rejected::AlreadyReported);
        }
        let Some(current) = self.epoch(request.epoch).map(|s| s.current()) else {
            return Err(Rejected::UnknownEpoch {
                epoch: request.epoch,
            });
        };
        let Some(index) = current.index_of(&report.gatekeeper) else {
            return bad("the gatekeeper holds no share of the epoch's current committee");
        };
        if current.committee().verification_share(index) != Some(report.verification) {
            // Signed for a committee the epoch has left: nothing to check it against now.
            return bad("the partial is for another committee of the epoch");
        }
        // The cheap lookups above first; then the signature that makes the partial evidence.
        let message = partial_message(
            &self.genesis.hash(),
            request,
            &report.verification,
            &report.partial,
        );
        if report
            .gatekeeper
            .verify(
                SigningPurpose::PartialEvaluation,
                &message,
                &report.signature,
            )
            .is_err()
        {
            return bad("the gatekeeper's signature does not verify");
        }
        let valid = PartialEvaluation::from_bytes(&report.partial).is_ok_and(|partial| {
            partial.index == index
                && current
                    .committee()
                    .check_partial(&request.element(), &partial)
                    .is_ok()
        });
        if valid {
            return bad("the partial is valid");
        }
        let amount = self.slash_amount(&report.gatekeeper);
        Ok(Effect::PartialReport(Box::new(report.clone()), amount))
    }

    pub(super) fn commit_partial_report(
        &mut self,
        report: PartialReport,
        amount: u64,
    ) -> Vec<Event> {
        self.slash(&report.gatekeeper, amount);
        self.partial_reports.insert(report_key(&report));
        vec![Event::GatekeeperSlashed {
            gatekeeper: report.gatekeeper,
            amount,
            request: report.request,
        }]
    }
}

/// What makes a report a repeat: the same gatekeeper, request and verification share (after a
/// refresh, the same request answered wrongly under the new share is a new offence).
fn report_key(report: &PartialReport) -> super::PartialReportKey {
    (
        report.gatekeeper,
        report.request.epoch,
        report.request.cluster.clone(),
        report.request.generation,
        report.verification.to_bytes(),
    )
}
