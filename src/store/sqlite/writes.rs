//! Writes on SQLite: each [`Change`] made in a transaction, keys sealed for their row, the audit
//! event appended.

use super::*;

impl SqliteStore {
    pub(super) fn write_keys(
        &self,
        tx: &Transaction<'_>,
        kind: &str,
        owner: &str,
        records: &[KeyRecord],
    ) -> Result<(), StoreError> {
        tx.prepare_cached("DELETE FROM keys WHERE owner_kind = ?1 AND owner = ?2")?
            .execute(params![kind, owner])?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO keys (owner_kind, owner, key_id, position, created_at, expires_at, material)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (position, record) in records.iter().enumerate() {
            let KeyMaterial::Secret(secret) = &record.material else {
                return Err(StoreError::Invalid {
                    what: "key material",
                    reason: "only shared secrets are stored".into(),
                });
            };
            let plain = secret.reveal().into_bytes();
            let aad = crypt::aad(kind, owner, record.id.as_str());
            let sealed = self.sealer.seal(&aad, &plain)?;
            insert.execute(params![
                kind,
                owner,
                record.id.as_str(),
                position as i64,
                nanos(record.created_at),
                record.expires_at.map(nanos),
                sealed,
            ])?;
        }
        Ok(())
    }

    /// Replaces a project's re-signing secret (none when `upstream` has none).
    pub(super) fn write_upstream_secret(
        &self,
        tx: &Transaction<'_>,
        project: &str,
        upstream: Option<&UpstreamRow>,
    ) -> Result<(), StoreError> {
        let records = UpstreamRow::secret_records(upstream);
        self.write_keys(tx, UPSTREAM, project, &records)
    }

    pub(super) fn apply_in(
        &self,
        tx: &Transaction<'_>,
        change: Change<'_>,
    ) -> Result<(), StoreError> {
        match change {
            Change::CreateIntegrator(row) => {
                insert_new(
                    tx,
                    "integrator",
                    "INSERT INTO integrators (id, created_at) VALUES (?1, ?2)",
                    params![row.id.as_str(), nanos(row.created_at)],
                )?;
                self.write_keys(tx, INTEGRATOR, row.id.as_str(), &row.secrets)
            }
            Change::SetIntegratorSecrets {
                integrator,
                secrets,
            } => {
                exists(
                    tx,
                    "integrator",
                    "SELECT 1 FROM integrators WHERE id = ?1",
                    params![integrator.as_str()],
                )?;
                self.write_keys(tx, INTEGRATOR, integrator.as_str(), secrets)
            }
            Change::CreateProject(row) => {
                exists(
                    tx,
                    "integrator",
                    "SELECT 1 FROM integrators WHERE id = ?1",
                    params![row.integrator.as_str()],
                )?;
                insert_new(
                    tx,
                    "project",
                    "INSERT INTO projects (id, integrator, name, scheme, created_at, upstream_url)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        row.id.as_str(),
                        row.integrator.as_str(),
                        row.name,
                        row.scheme,
                        nanos(row.created_at),
                        row.upstream.as_ref().map(|u| u.url.as_str()),
                    ],
                )?;
                self.write_upstream_secret(tx, row.id.as_str(), row.upstream.as_ref())?;
                self.write_keys(tx, PROJECT, row.id.as_str(), &row.keys)
            }
            Change::SetProjectKeys {
                integrator,
                project,
                keys,
            } => {
                exists(
                    tx,
                    "project",
                    "SELECT 1 FROM projects WHERE id = ?1 AND integrator = ?2",
                    params![project.as_str(), integrator.as_str()],
                )?;
                self.write_keys(tx, PROJECT, project.as_str(), keys)
            }
            Change::DeleteProject {
                integrator,
                project,
            } => {
                deleted(
                    tx,
                    "project",
                    "DELETE FROM projects WHERE id = ?1 AND integrator = ?2",
                    params![project.as_str(), integrator.as_str()],
                )?;
                tx.execute(
                    "DELETE FROM keys WHERE owner_kind = ?1 AND owner = ?2",
                    params![PROJECT, project.as_str()],
                )?;
                tx.execute(
                    "DELETE FROM keys WHERE owner_kind = ?1 AND owner = ?2",
                    params![UPSTREAM, project.as_str()],
                )?;
                Ok(())
            }
            Change::SetProjectUpstream {
                integrator,
                project,
                upstream,
            } => {
                let updated = tx.execute(
                    "UPDATE projects SET upstream_url = ?1 WHERE id = ?2 AND integrator = ?3",
                    params![
                        upstream.map(|u| u.url.as_str()),
                        project.as_str(),
                        integrator.as_str()
                    ],
                )?;
                if updated == 0 {
                    return Err(StoreError::NotFound { what: "project" });
                }
                self.write_upstream_secret(tx, project.as_str(), upstream)
            }
            Change::CreateApiKey(key) => {
                exists(
                    tx,
                    "integrator",
                    "SELECT 1 FROM integrators WHERE id = ?1",
                    params![key.integrator.as_str()],
                )?;
                let projects = key
                    .projects
                    .as_ref()
                    .map(|ids| project_list(ids))
                    .transpose()?;
                insert_new(
                    tx,
                    "API key",
                    "INSERT INTO api_keys (id, integrator, name, digest, created_at, expires_at, projects, last_used)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        key.id.as_str(),
                        key.integrator.as_str(),
                        key.name,
                        &key.digest[..],
                        nanos(key.created_at),
                        key.expires_at.map(nanos),
                        projects,
                        key.last_used.map(nanos),
                    ],
                )
            }
            Change::DeleteApiKey { integrator, id } => deleted(
                tx,
                "API key",
                "DELETE FROM api_keys WHERE id = ?1 AND integrator = ?2",
                params![id.as_str(), integrator.as_str()],
            ),
        }
    }
}

/// Appends `event` to the audit log in `tx`; its sequence number.
pub(super) fn append_event(tx: &Transaction<'_>, event: &AuditEvent) -> Result<u64, StoreError> {
    let old_keys = serde_json::to_string(&event.old_keys).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached(
        "INSERT INTO audit (at, integrator, actor, action, project, old_keys, new_key, grace_secs, expires_at, count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        nanos(event.at),
        event.integrator.as_str(),
        event.actor,
        event.action.as_str(),
        event.project.as_ref().map(ProjectId::as_str),
        old_keys,
        event.new_key,
        event.grace_secs.map(|s| s as i64),
        event.expires_at.map(nanos),
        event.count.map(|c| c.min(i64::MAX as u64) as i64),
    ])?;
    Ok(tx.last_insert_rowid() as u64)
}

/// Inserts a row that must be new.
pub(super) fn insert_new(
    tx: &Transaction<'_>,
    what: &'static str,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<(), StoreError> {
    match tx.prepare_cached(sql)?.execute(params) {
        Ok(_) => Ok(()),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation) => {
            Err(StoreError::Exists { what })
        }
        Err(e) => Err(e.into()),
    }
}

/// Fails with `NotFound` unless the query finds a row.
pub(super) fn exists(
    tx: &Transaction<'_>,
    what: &'static str,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<(), StoreError> {
    tx.prepare_cached(sql)?
        .query_row(params, |_| Ok(()))
        .optional()?
        .ok_or(StoreError::NotFound { what })
}

/// Fails with `NotFound` unless the statement deleted a row.
pub(super) fn deleted(
    tx: &Transaction<'_>,
    what: &'static str,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<(), StoreError> {
    match tx.prepare_cached(sql)?.execute(params)? {
        0 => Err(StoreError::NotFound { what }),
        _ => Ok(()),
    }
}
