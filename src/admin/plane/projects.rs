//! Projects: each with its signing keys, created, listed, shown, deleted, and its secret
//! regenerated or its previous secrets ended.

use super::*;

impl Admin {
    /// The caller's project `id`, or [`AdminError::NotFound`] for an unknown id, another
    /// integrator's project, or one outside the caller's scope ([`AdminError::Forbidden`]).
    pub fn project(&self, caller: &Caller, id: &ProjectId) -> Result<Arc<Project>, AdminError> {
        let not_found = || AdminError::NotFound {
            resource: "project",
            id: id.to_string(),
        };
        let project = self
            .inner
            .catalog
            .load()
            .by_id
            .get(id)
            .filter(|p| &p.integrator == caller.integrator())
            .cloned()
            .ok_or_else(not_found)?;
        caller
            .require_project(&project.id)
            .map_err(|_| AdminError::Forbidden {
                scope: format!("project:{}", project.id),
            })?;
        Ok(project)
    }

    /// A page of the caller's projects (those its credential may reach) in id order: at most
    /// `limit`, after the project id `after` (the previous page's cursor) when given.
    ///
    /// # Errors
    ///
    /// [`AdminError::Field`] for a `limit` outside `1..=`[`MAX_PAGE`] or a cursor that is not
    /// a project id.
    pub fn list_projects(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<Arc<Project>>, AdminError> {
        let limit = page_size(limit, MAX_PAGE)?;
        let after = after
            .map(|cursor| ProjectId::parse(cursor).map_err(|_| bad_cursor()))
            .transpose()?;
        let catalog = self.inner.catalog.load();
        let Some(ids) = catalog.by_integrator.get(caller.integrator()) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let ids = match &after {
            Some(after) => ids.range::<ProjectId, _>((Bound::Excluded(after), Bound::Unbounded)),
            None => ids.range::<ProjectId, _>(..),
        };
        Ok(Page::of(
            ids.filter(|id| caller.require_project(id).is_ok())
                .filter_map(|id| catalog.by_id.get(id).cloned()),
            limit,
            |p| p.id.to_string(),
        ))
    }

    /// Creates a project verified with `scheme` (one of [`SCHEMES`]) and its first signing
    /// secret, returned once.
    ///
    /// # Errors
    ///
    /// [`AdminError::Forbidden`] for a key limited to some projects,
    /// [`AdminError::Field`] for an unknown scheme or a name that is empty, longer than
    /// [`MAX_NAME_CHARS`] or holds control, bidirectional or invisible characters,
    /// [`AdminError::Conflict`] past
    /// [`AdminBuilder::max_projects`](super::AdminBuilder::max_projects),
    /// [`AdminError::RateLimited`], store and random failures.
    pub fn create_project(
        &self,
        caller: &Caller,
        name: Option<String>,
        scheme: &str,
    ) -> Result<NewProject, AdminError> {
        self.create_forwarding_project(caller, name, scheme, None)
    }

    /// [`create_project`](Admin::create_project), forwarding its verified deliveries to
    /// `upstream_url` when given (checked as [`set_project_upstream`](Admin::set_project_upstream)
    /// checks it), in the same change.
    ///
    /// # Errors
    ///
    /// As for [`create_project`](Admin::create_project), and [`AdminError::Field`]
    /// (`upstreamUrl`) for a URL that is malformed or not allowed.
    pub fn create_forwarding_project(
        &self,
        caller: &Caller,
        name: Option<String>,
        scheme: &str,
        upstream_url: Option<&str>,
    ) -> Result<NewProject, AdminError> {
        require_unlimited(caller)?;
        let name = check_name(name)?;
        let upstream = upstream_url
            .map(|url| self.check_upstream(url))
            .transpose()?;
        let verify_with = crate::scheme::by_name(scheme).ok_or_else(|| AdminError::Field {
            field: "scheme",
            reason: format!("is not a known scheme; one of: {}", SCHEMES.join(", ")),
        })?;
        self.admit(caller)?;
        let (signing_secret, secret) = new_signing_secret()?;
        let keyring = self.keyring().build(secret);
        let id = ProjectId::random();
        let now = self.now();
        let project = Project {
            id: id.clone(),
            integrator: caller.integrator().clone(),
            name,
            scheme: verify_with.name().to_owned(),
            created_at: now,
            keyring,
            upstream: upstream.clone().map(|url| Arc::new(Upstream::new(url))),
        };
        let row = ProjectRow::new(
            id.clone(),
            project.integrator.clone(),
            project.name.clone(),
            project.scheme.clone(),
            now,
            project.keyring.export(),
        )
        .upstream(upstream.map(|url| UpstreamRow::new(url.as_str(), None)));
        let event = AuditEvent::new(
            now,
            caller.integrator().clone(),
            actor(caller),
            AuditAction::ProjectCreated,
        )
        .project(&id)
        .new_key(project.keyring.current_id());
        let _turn = self.write_lock();
        let most = self.inner.max_projects;
        if self.inner.catalog.load().count(caller.integrator()) >= most {
            return Err(AdminError::Conflict(format!(
                "the integrator has {most} projects, the most allowed; delete one first"
            )));
        }
        self.inner
            .store
            .apply(Change::CreateProject(&row), &event)?;
        let verifier = verifier_for(
            verify_with,
            project.keyring.clone(),
            self.inner.public_base_url.as_deref(),
        );
        let project = Arc::new(project);
        self.inner.catalog.rcu(|catalog| {
            let mut catalog = Catalog::clone(catalog);
            catalog.insert(Arc::clone(&project));
            catalog
        });
        self.inner.projects.insert(id, verifier);
        Ok(NewProject {
            project: Project::clone(&project),
            signing_secret,
        })
    }

    /// Deletes a project and its keys; its webhooks are refused (404) from then on.
    ///
    /// # Errors
    ///
    /// As for [`project`](Admin::project), [`AdminError::Forbidden`] for a limited key, store
    /// failures; nothing is changed.
    pub fn delete_project(&self, caller: &Caller, id: &ProjectId) -> Result<(), AdminError> {
        require_unlimited(caller)?;
        let project = self.project(caller, id)?;
        self.admit(caller)?;
        let event = self
            .event_by(caller, AuditAction::ProjectDeleted)
            .project(&project.id)
            .old_keys(project.keys().iter().map(|k| &k.id));
        let _turn = self.write_lock();
        self.inner
            .store
            .apply(
                Change::DeleteProject {
                    integrator: caller.integrator(),
                    project: &project.id,
                },
                &event,
            )
            .map_err(|e| gone("project", id.as_str())(e.into()))?;
        self.inner.projects.remove(&project.id);
        self.inner.catalog.rcu(|catalog| {
            let mut catalog = Catalog::clone(catalog);
            catalog.remove(&project.id);
            catalog
        });
        Ok(())
    }

    /// Regenerates a project's signing secret: the old one keeps working for `grace` (0, the
    /// platforms' behaviour, ends it before this returns).
    ///
    /// # Errors
    ///
    /// As for [`project`](Admin::project); [`AdminError::Invalid`] for a grace period over
    /// [`MAX_GRACE`]; [`AdminError::Conflict`] when the live keys would exceed the cap; store
    /// and random failures. Nothing is changed on error: the old secret still verifies.
    pub fn regenerate_project_secret(
        &self,
        caller: &Caller,
        id: &ProjectId,
        grace: Duration,
    ) -> Result<Regenerated, AdminError> {
        let project = self.project(caller, id)?;
        self.admit(caller)?;
        let (secret, material) = new_signing_secret()?;
        let event = self
            .event_by(caller, AuditAction::ProjectSecretRegenerated)
            .project(&project.id);
        self.regenerate(
            &project.keyring,
            secret,
            material,
            grace,
            event,
            Owner::Project(caller.integrator(), &project.id),
        )
        .map_err(gone("project", id.as_str()))
    }

    /// Ends every grace key of a project at once (the previous secrets stop working now).
    /// Returns the ids ended; none is not an error.
    ///
    /// # Errors
    ///
    /// As for [`project`](Admin::project), store failures; nothing is changed.
    pub fn end_previous_secrets(
        &self,
        caller: &Caller,
        id: &ProjectId,
    ) -> Result<Vec<KeyId>, AdminError> {
        let project = self.project(caller, id)?;
        self.admit(caller)?;
        let _row = self.lock_row(&Owner::Project(caller.integrator(), &project.id));
        let ended = project.keyring.end_grace_durably(|pending| {
            let records = pending.records();
            let event = self
                .event_by(caller, AuditAction::ProjectSecretPreviousEnded)
                .project(&project.id)
                .old_keys(pending.ended());
            let owner = Owner::Project(caller.integrator(), &project.id);
            self.apply_keys(&owner, owner.change(&records), &event)
                .map(drop)
        });
        ended.map_err(|e| gone("project", id.as_str())(e.into()))
    }
}
