//! API keys: created (shown once), listed a page at a time, deleted, their last uses saved.

use std::sync::PoisonError;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::rules::{bad_cursor, check_name, gone, page_size, require_unlimited};
use super::{
    actor, Admin, AdminError, NewApiKey, Page, MAX_API_KEYS, MAX_API_KEY_LIFETIME,
    MAX_KEY_PROJECTS, MAX_PAGE,
};
use crate::admin::credentials::{generate_api_key, ApiKeyId, ApiKeyRow, Caller};
use crate::projects::ProjectId;
use crate::store::{AuditAction, AuditEvent, Change, IntegratorId};

impl Admin {
    /// Creates an API key for the caller's integrator, limited to `projects` when given (1 to
    /// [`MAX_KEY_PROJECTS`], each the integrator's), expiring `lifetime` from now when given
    /// (at most [`MAX_API_KEY_LIFETIME`]). Returned once.
    ///
    /// # Errors
    ///
    /// [`AdminError::Forbidden`] for a caller whose own key is limited to some projects,
    /// [`AdminError::NotFound`] for a project that is not the integrator's,
    /// [`AdminError::Conflict`] past [`MAX_API_KEYS`] live keys, [`AdminError::Field`] for a
    /// zero or too long lifetime, an empty or too long project list or a bad name,
    /// [`AdminError::RateLimited`]; store and random failures. Nothing is changed on error.
    pub fn create_api_key(
        &self,
        caller: &Caller,
        name: Option<String>,
        projects: Option<Vec<ProjectId>>,
        lifetime: Option<Duration>,
    ) -> Result<NewApiKey, AdminError> {
        require_unlimited(caller)?;
        let name = check_name(name)?;
        if let Some(ids) = &projects {
            if ids.is_empty() || ids.len() > MAX_KEY_PROJECTS {
                return Err(AdminError::Field {
                    field: "projects",
                    reason: format!("must list 1 to {MAX_KEY_PROJECTS} project ids"),
                });
            }
            for id in ids {
                self.project(caller, id)?;
            }
        }
        let expires_at = match lifetime {
            None => None,
            Some(d) if d.is_zero() || d > MAX_API_KEY_LIFETIME => {
                return Err(AdminError::Field {
                    field: "expiresInSeconds",
                    reason: format!(
                        "must be from 1 to {} seconds",
                        MAX_API_KEY_LIFETIME.as_secs()
                    ),
                })
            }
            Some(d) => Some(
                chrono::Duration::from_std(d)
                    .ok()
                    .and_then(|d| self.now().checked_add_signed(d))
                    .ok_or_else(|| AdminError::Field {
                        field: "expiresInSeconds",
                        reason: "is too long".into(),
                    })?,
            ),
        };
        self.admit(caller)?;
        self.create_api_key_as(
            caller.integrator(),
            &actor(caller),
            name,
            projects,
            expires_at,
        )
    }

    pub(super) fn create_api_key_as(
        &self,
        integrator: &IntegratorId,
        actor: &str,
        name: Option<String>,
        projects: Option<Vec<ProjectId>>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<NewApiKey, AdminError> {
        let (id, key, digest) =
            generate_api_key().map_err(|e| AdminError::Random(e.to_string()))?;
        let now = self.now();
        let record = ApiKeyRow {
            id,
            integrator: integrator.clone(),
            name,
            digest,
            created_at: now,
            expires_at,
            projects,
            last_used: None,
        };
        let mut event =
            AuditEvent::new(now, integrator.clone(), actor, AuditAction::ApiKeyCreated).new_key(id);
        event.expires_at = expires_at;
        let _turn = self.write_lock();
        // Expired keys are kept for their history but do not count: they work no more.
        let live = self
            .inner
            .credentials
            .api_keys(integrator)
            .iter()
            .filter(|k| k.expires_at.is_none_or(|at| at > now))
            .count();
        if live >= MAX_API_KEYS {
            return Err(AdminError::Conflict(format!(
                "the integrator has {MAX_API_KEYS} API keys, the most allowed; delete one first"
            )));
        }
        self.inner
            .store
            .apply(Change::CreateApiKey(&record), &event)?;
        self.inner.credentials.insert_api_key(record.clone());
        Ok(NewApiKey { record, key })
    }

    /// A page of the caller's integrator's API keys in id order (never a key: ids, names,
    /// dates): at most `limit`, after the key id `after` (the previous page's cursor).
    ///
    /// # Errors
    ///
    /// [`AdminError::Forbidden`] for a key limited to some projects (it may not see the
    /// integrator's other keys), [`AdminError::Field`] for a `limit` outside
    /// `1..=`[`MAX_PAGE`] or a cursor that is not a key id.
    pub fn list_api_keys(
        &self,
        caller: &Caller,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<ApiKeyRow>, AdminError> {
        require_unlimited(caller)?;
        let limit = page_size(limit, MAX_PAGE)?;
        let after = after
            .map(|cursor| ApiKeyId::parse(cursor).map_err(|_| bad_cursor()))
            .transpose()?;
        let mut keys = self.inner.credentials.api_keys(caller.integrator());
        keys.sort_by_key(|k| k.id);
        Ok(Page::of(
            keys.into_iter().filter(|k| after.is_none_or(|a| k.id > a)),
            limit,
            |k| k.id.to_string(),
        ))
    }

    /// Deletes an API key of the caller's integrator; the very next request with it gets 401.
    ///
    /// # Errors
    ///
    /// [`AdminError::NotFound`] for an unknown id or another integrator's key,
    /// [`AdminError::Forbidden`] for a limited key, store failures; nothing is changed.
    pub fn delete_api_key(&self, caller: &Caller, id: &ApiKeyId) -> Result<(), AdminError> {
        require_unlimited(caller)?;
        let not_found = || AdminError::NotFound {
            resource: "apiKey",
            id: id.to_string(),
        };
        self.admit(caller)?;
        let _turn = self.write_lock();
        if !self
            .inner
            .credentials
            .api_keys(caller.integrator())
            .iter()
            .any(|k| k.id == *id)
        {
            return Err(not_found());
        }
        let event = self
            .event_by(caller, AuditAction::ApiKeyDeleted)
            .old_keys([id]);
        self.inner
            .store
            .apply(
                Change::DeleteApiKey {
                    integrator: caller.integrator(),
                    id,
                },
                &event,
            )
            .map_err(|e| gone("apiKey", id.as_str())(e.into()))?;
        self.inner.credentials.remove_api_key(id);
        Ok(())
    }

    /// Writes the API keys' last uses that changed since the last call to the store, so a
    /// restart keeps them; returns how many. `webhook-guard serve` calls it every minute and
    /// on shutdown. A use is never written on the request path: admin requests do not wait for
    /// a disk write that records them.
    ///
    /// # Errors
    ///
    /// [`AdminError::Store`]; the uses are then written by a later call.
    pub fn flush_last_uses(&self) -> Result<usize, AdminError> {
        let mut flushed = self
            .inner
            .flushed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let changed: Vec<_> = self
            .inner
            .credentials
            .last_uses()
            .into_iter()
            .filter(|(id, at)| flushed.get(id) != Some(at))
            .collect();
        if changed.is_empty() {
            return Ok(0);
        }
        self.inner.store.record_uses(&changed)?;
        flushed.extend(changed.iter().copied());
        Ok(changed.len())
    }
}
