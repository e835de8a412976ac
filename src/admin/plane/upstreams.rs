//! Where a project's verified deliveries are forwarded (the gateway): set, removed, checked
//! against the operator's policy.

use super::*;

impl Admin {
    /// The upstream project `id`'s verified deliveries are forwarded to, for the gateway: one
    /// lock-free read.
    pub fn upstream(&self, id: &ProjectId) -> Option<Arc<Upstream>> {
        self.inner.catalog.load().by_id.get(id)?.upstream.clone()
    }

    /// Checks an upstream URL: its form, and that the [upstream
    /// policy](AdminBuilder::upstream_policy) allows every address it resolves to now.
    pub(super) fn check_upstream(&self, url: &str) -> Result<UpstreamUrl, AdminError> {
        let field = |reason: String| AdminError::Field {
            field: "upstreamUrl",
            reason,
        };
        let parsed: UpstreamUrl = url.parse().map_err(|e| field(format!("{e}")))?;
        self.inner
            .upstream_policy
            .check_url(&parsed)
            .map_err(|e| field(e.to_string()))?;
        Ok(parsed)
    }

    /// Forwards project `id`'s verified deliveries to `url` from now on (checked: an `http` or
    /// `https` URL without credentials whose every address the [upstream
    /// policy](AdminBuilder::upstream_policy) allows), re-signed with a new gateway-to-upstream
    /// secret when `resign` (returned once, `whsec_…`), or passed on as received.
    ///
    /// # Errors
    ///
    /// As for [`project`](Admin::project), [`AdminError::Forbidden`] for a limited key,
    /// [`AdminError::Field`] (`upstreamUrl`) for a URL that is malformed or not allowed, store
    /// and random failures; nothing is changed on error.
    pub fn set_project_upstream(
        &self,
        caller: &Caller,
        id: &ProjectId,
        url: &str,
        resign: bool,
    ) -> Result<Option<Zeroizing<String>>, AdminError> {
        require_unlimited(caller)?;
        let project = self.project(caller, id)?;
        let url = self.check_upstream(url)?;
        self.admit(caller)?;
        let (shown, secret) = if resign {
            let revealed = Secret::generate().map_err(|e| AdminError::Random(e.to_string()))?;
            let secret = revealed.secret();
            (Some(revealed.into_whsec()), Some(secret))
        } else {
            (None, None)
        };
        let row = UpstreamRow::new(url.as_str(), secret.clone());
        let upstream = match secret {
            Some(secret) => Upstream::new(url).resigned(secret),
            None => Upstream::new(url),
        };
        let mut event = self
            .event_by(caller, AuditAction::ProjectUpstreamSet)
            .project(&project.id);
        if resign {
            event = event.new_key("upstream-resign");
        }
        self.replace_upstream(caller, &project, Some((&row, upstream)), &event)
            .map_err(gone("project", id.as_str()))?;
        Ok(shown)
    }

    /// Stops forwarding project `id`'s deliveries: they are answered by the gateway again.
    /// Removing none is not an error.
    ///
    /// # Errors
    ///
    /// As for [`set_project_upstream`](Admin::set_project_upstream).
    pub fn remove_project_upstream(
        &self,
        caller: &Caller,
        id: &ProjectId,
    ) -> Result<(), AdminError> {
        require_unlimited(caller)?;
        let project = self.project(caller, id)?;
        self.admit(caller)?;
        let event = self
            .event_by(caller, AuditAction::ProjectUpstreamRemoved)
            .project(&project.id);
        self.replace_upstream(caller, &project, None, &event)
            .map_err(gone("project", id.as_str()))
    }

    /// Commits a project's new upstream, then serves it.
    pub(super) fn replace_upstream(
        &self,
        caller: &Caller,
        project: &Project,
        upstream: Option<(&UpstreamRow, Upstream)>,
        event: &AuditEvent,
    ) -> Result<(), AdminError> {
        let _turn = self.write_lock();
        let (row, upstream) = match upstream {
            Some((row, upstream)) => (Some(row), Some(Arc::new(upstream))),
            None => (None, None),
        };
        self.inner.store.apply(
            Change::SetProjectUpstream {
                integrator: caller.integrator(),
                project: &project.id,
                upstream: row,
            },
            event,
        )?;
        self.serve_upstream(&project.id, upstream);
        Ok(())
    }

    /// Forwards project `id`'s deliveries to `upstream` from now on (none: answers them).
    pub(in crate::admin) fn serve_upstream(&self, id: &ProjectId, upstream: Option<Arc<Upstream>>) {
        self.inner.catalog.rcu(|catalog| {
            let mut catalog = Catalog::clone(catalog);
            if let Some(current) = catalog.by_id.get(id) {
                let mut changed = Project::clone(current);
                changed.upstream = upstream.clone();
                catalog.insert(Arc::new(changed));
            }
            catalog
        });
    }
}

/// The upstream a stored row names.
pub(in crate::admin) fn upstream_from(
    row: &UpstreamRow,
) -> Result<Upstream, crate::gateway::PolicyError> {
    let upstream = Upstream::new(row.url.parse()?);
    Ok(match &row.secret {
        Some(secret) => upstream.resigned(secret.clone()),
        None => upstream,
    })
}
