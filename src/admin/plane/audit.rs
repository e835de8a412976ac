//! The audit log: read a page at a time (a limited key sees its projects' events only), and
//! pruned by age and count.

use super::rules::page_size;
use super::{Admin, AdminError, Page, MAX_AUDIT_PAGE};
use crate::admin::credentials::Caller;
use crate::store::{AuditAction, AuditEvent, AuditQuery, AuditRetention};

impl Admin {
    /// A page of the caller's integrator's audit events, newest first, as `query` asks; the
    /// next page's cursor is the last event's sequence number. A key limited to some projects
    /// sees only their events.
    ///
    /// # Errors
    ///
    /// [`AdminError::Field`] for a `limit` outside `1..=`[`MAX_AUDIT_PAGE`]; as for
    /// [`project`](Admin::project) for a project filter the caller may not read;
    /// [`AdminError::Store`] when the store cannot be read.
    pub fn audit(
        &self,
        caller: &Caller,
        query: AuditQuery,
    ) -> Result<Page<AuditEvent>, AdminError> {
        let mut query = query;
        let limit = page_size(query.limit, MAX_AUDIT_PAGE)?;
        if let Some(ids) = &query.projects {
            for id in ids {
                self.project(caller, id)?;
            }
        } else if let Some(scope) = caller.projects() {
            query.projects = Some(scope.to_vec());
        }
        query.limit = limit + 1;
        let events = self
            .inner
            .store
            .audit_matching(caller.integrator(), &query)?;
        Ok(Page::of(events.into_iter(), limit, |e| e.seq.to_string()))
    }

    /// Removes the audit events `retention` selects, integrator by integrator, each pruning
    /// recorded as an `audit.pruned` event with how many it removed; returns how many were
    /// removed. `webhook-guard serve` calls it every hour.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`]; integrators pruned before the failure stay pruned.
    pub fn prune_audit(&self, retention: AuditRetention) -> Result<u64, AdminError> {
        let mut removed = 0;
        for integrator in self.inner.credentials.integrator_ids() {
            let event = AuditEvent::new(
                self.now(),
                integrator.clone(),
                "retention",
                AuditAction::AuditPruned,
            );
            let n = self
                .inner
                .store
                .prune_audit(&integrator, retention, &event)?;
            if n > 0 {
                tracing::info!(integrator = %integrator, removed = n, "audit events pruned");
            }
            removed += n;
        }
        Ok(removed)
    }
}
