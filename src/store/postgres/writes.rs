//! Writes on PostgreSQL: each [`Change`] made in a transaction, keys sealed for their row, the
//! audit event appended and announced.

use deadpool_postgres::GenericClient;

use super::*;

impl PostgresStore {
    pub(super) fn seal_keys(
        &self,
        kind: &str,
        owner: &str,
        records: &[KeyRecord],
    ) -> Result<Vec<SealedKey>, StoreError> {
        records
            .iter()
            .enumerate()
            .map(|(position, record)| {
                let KeyMaterial::Secret(secret) = &record.material else {
                    return Err(StoreError::Invalid {
                        what: "key material",
                        reason: "only shared secrets are stored".into(),
                    });
                };
                let plain = secret.reveal().into_bytes();
                let aad = crypt::aad(kind, owner, record.id.as_str());
                Ok(SealedKey {
                    key_id: record.id.as_str().to_owned(),
                    position: position as i32,
                    created_at: nanos(record.created_at),
                    expires_at: record.expires_at.map(nanos),
                    material: self.sealer.seal(&aad, &plain)?,
                })
            })
            .collect()
    }

    /// The statements that make `change` (for a change of a row's keys, only while the row is
    /// at `expected`, when given), prepared, with the row's new version when it has one.
    pub(super) async fn plan<C: GenericClient>(
        &self,
        client: &C,
        change: Change<'_>,
        expected: Option<i64>,
    ) -> Result<(Vec<Step>, Option<i64>), StoreError> {
        let mut steps = Vec::new();
        let version = match change {
            // The project's version guards its key set only: the upstream is a setting, the
            // last one written wins.
            Change::SetProjectUpstream {
                integrator,
                project,
                upstream,
            } => {
                let sealed = self.seal_keys(
                    UPSTREAM,
                    project.as_str(),
                    &UpstreamRow::secret_records(upstream),
                )?;
                touching(
                    client,
                    &mut steps,
                    "project",
                    "UPDATE projects SET upstream_url = $1 WHERE id = $2 AND integrator = $3",
                    vec![
                        Box::new(upstream.map(|u| u.url.as_str().to_owned())),
                        Box::new(project.as_str().to_owned()),
                        Box::new(integrator.as_str().to_owned()),
                    ],
                )
                .await?;
                write_keys(client, &mut steps, UPSTREAM, project.as_str(), sealed).await?;
                None
            }
            Change::CreateIntegrator(row) => {
                let sealed = self.seal_keys(INTEGRATOR, row.id.as_str(), &row.secrets)?;
                steps.push(
                    Step::prepare(
                        client,
                        "INSERT INTO integrators (id, created_at) VALUES ($1, $2)",
                        vec![
                            Box::new(row.id.as_str().to_owned()),
                            Box::new(nanos(row.created_at)),
                        ],
                        Failure::Insert("integrator"),
                    )
                    .await?,
                );
                write_keys(client, &mut steps, INTEGRATOR, row.id.as_str(), sealed).await?;
                Some(1)
            }
            Change::SetIntegratorSecrets {
                integrator,
                secrets,
            } => {
                let sealed = self.seal_keys(INTEGRATOR, integrator.as_str(), secrets)?;
                steps.push(
                    Step::prepare(
                        client,
                        "WITH bumped AS (
                             UPDATE integrators SET version = version + 1
                             WHERE id = $1 AND ($2::bigint IS NULL OR version = $2)
                             RETURNING version)
                         SELECT coalesce((SELECT version FROM bumped), CASE
                             WHEN $2::bigint IS NOT NULL AND EXISTS (SELECT 1 FROM integrators WHERE id = $1)
                             THEN webhook_guard_refuse('WG409', 'integrator')
                             ELSE webhook_guard_refuse('WG404', 'integrator') END)",
                        vec![
                            Box::new(integrator.as_str().to_owned()),
                            Box::new(expected),
                        ],
                        Failure::Refused("integrator"),
                    )
                    .await?
                    .returning_version(),
                );
                write_keys(client, &mut steps, INTEGRATOR, integrator.as_str(), sealed).await?;
                None
            }
            Change::CreateProject(row) => {
                let sealed = self.seal_keys(PROJECT, row.id.as_str(), &row.keys)?;
                let upstream = row.upstream.as_ref();
                let resign = self.seal_keys(
                    UPSTREAM,
                    row.id.as_str(),
                    &UpstreamRow::secret_records(upstream),
                )?;
                integrator_exists(client, &mut steps, &row.integrator).await?;
                steps.push(
                    Step::prepare(
                        client,
                        "INSERT INTO projects (id, integrator, name, scheme, created_at, upstream_url)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        vec![
                            Box::new(row.id.as_str().to_owned()),
                            Box::new(row.integrator.as_str().to_owned()),
                            Box::new(row.name.clone()),
                            Box::new(row.scheme.clone()),
                            Box::new(nanos(row.created_at)),
                            Box::new(upstream.map(|u| u.url.as_str().to_owned())),
                        ],
                        Failure::Insert("project"),
                    )
                    .await?,
                );
                write_keys(client, &mut steps, PROJECT, row.id.as_str(), sealed).await?;
                write_keys(client, &mut steps, UPSTREAM, row.id.as_str(), resign).await?;
                Some(1)
            }
            Change::SetProjectKeys {
                integrator,
                project,
                keys,
            } => {
                let sealed = self.seal_keys(PROJECT, project.as_str(), keys)?;
                steps.push(
                    Step::prepare(
                        client,
                        "WITH bumped AS (
                             UPDATE projects SET version = version + 1
                             WHERE id = $1 AND integrator = $2 AND ($3::bigint IS NULL OR version = $3)
                             RETURNING version)
                         SELECT coalesce((SELECT version FROM bumped), CASE
                             WHEN $3::bigint IS NOT NULL
                                  AND EXISTS (SELECT 1 FROM projects WHERE id = $1 AND integrator = $2)
                             THEN webhook_guard_refuse('WG409', 'project')
                             ELSE webhook_guard_refuse('WG404', 'project') END)",
                        vec![
                            Box::new(project.as_str().to_owned()),
                            Box::new(integrator.as_str().to_owned()),
                            Box::new(expected),
                        ],
                        Failure::Refused("project"),
                    )
                    .await?
                    .returning_version(),
                );
                write_keys(client, &mut steps, PROJECT, project.as_str(), sealed).await?;
                None
            }
            Change::DeleteProject {
                integrator,
                project,
            } => {
                touching(
                    client,
                    &mut steps,
                    "project",
                    "DELETE FROM projects WHERE id = $1 AND integrator = $2",
                    vec![
                        Box::new(project.as_str().to_owned()),
                        Box::new(integrator.as_str().to_owned()),
                    ],
                )
                .await?;
                steps.push(
                    Step::prepare(
                        client,
                        "DELETE FROM keys WHERE owner_kind IN ($1, $2) AND owner = $3",
                        vec![
                            Box::new(PROJECT),
                            Box::new(UPSTREAM),
                            Box::new(project.as_str().to_owned()),
                        ],
                        Failure::Database,
                    )
                    .await?,
                );
                None
            }
            Change::CreateApiKey(key) => {
                integrator_exists(client, &mut steps, &key.integrator).await?;
                let projects: Option<Vec<String>> = key
                    .projects
                    .as_ref()
                    .map(|ids| ids.iter().map(|id| id.as_str().to_owned()).collect());
                steps.push(
                    Step::prepare(
                        client,
                        "INSERT INTO api_keys (id, integrator, name, digest, created_at, expires_at, projects, last_used)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        vec![
                            Box::new(key.id.as_str().to_owned()),
                            Box::new(key.integrator.as_str().to_owned()),
                            Box::new(key.name.clone()),
                            Box::new(key.digest.to_vec()),
                            Box::new(nanos(key.created_at)),
                            Box::new(key.expires_at.map(nanos)),
                            Box::new(projects),
                            Box::new(key.last_used.map(nanos)),
                        ],
                        Failure::Insert("API key"),
                    )
                    .await?,
                );
                Some(1)
            }
            Change::DeleteApiKey { integrator, id } => {
                touching(
                    client,
                    &mut steps,
                    "API key",
                    "DELETE FROM api_keys WHERE id = $1 AND integrator = $2",
                    vec![
                        Box::new(id.as_str().to_owned()),
                        Box::new(integrator.as_str().to_owned()),
                    ],
                )
                .await?;
                None
            }
        };
        Ok((steps, version))
    }

    /// Commits `change` and `event` in one transaction, announced on [`CHANGES_CHANNEL`]; the
    /// event's sequence number and the row's new version.
    ///
    /// One round trip: every statement is prepared first (once per connection), then `BEGIN`,
    /// the writers' lock, the change, the audit row and `COMMIT` go out together and the server
    /// runs them in that order (the lock first, so sequence numbers commit in order). A
    /// statement whose precondition fails raises (`webhook_guard_refuse`), which aborts the
    /// transaction: the statements after it fail and the `COMMIT` rolls back.
    pub(super) async fn apply_versioned(
        &self,
        client: &mut deadpool_postgres::Object,
        change: Change<'_>,
        expected: Option<i64>,
        event: &AuditEvent,
    ) -> Result<(u64, Option<i64>), StoreError> {
        let client: &deadpool_postgres::Object = client;
        let lock = Step::prepare(
            client,
            "SELECT pg_advisory_xact_lock($1)",
            vec![Box::new(WRITE_LOCK)],
            Failure::Database,
        )
        .await?;
        let (steps, created) = self.plan(client, change, expected).await?;
        let append = event_step(client, event).await?;
        // Every answer is awaited, failures too, before the connection goes back to the pool:
        // none of the pipeline's requests is left without the one reading its answer.
        let (begin, lock, steps, appended, commit) = tokio::join!(
            biased;
            async { client.batch_execute("BEGIN").await.map_err(pg) },
            lock.run(client),
            futures_util::future::join_all(steps.iter().map(|step| step.run(client))),
            append.run(client),
            async { client.batch_execute("COMMIT").await.map_err(pg) },
        );
        // The first failure in the order the server ran them is the one that aborted the rest.
        begin?;
        lock?;
        let mut versions = Vec::with_capacity(steps.len());
        for step in steps {
            versions.push(step?);
        }
        let seq = appended?;
        commit?;
        let seq = seq.ok_or_else(|| StoreError::Invalid {
            what: "audit event",
            reason: "the database returned no sequence number".into(),
        })?;
        Ok((
            seq as u64,
            versions.into_iter().flatten().next().or(created),
        ))
    }
}

/// What a failed [`Step`] means.
#[derive(Clone, Copy)]
pub(super) enum Failure {
    /// The database's own error.
    Database,
    /// An insert of a row that must be new: a duplicate is [`StoreError::Exists`], a missing
    /// integrator [`StoreError::NotFound`].
    Insert(&'static str),
    /// A precondition checked by the statement itself (`webhook_guard_refuse`): `WG404` is
    /// [`StoreError::NotFound`], `WG409` [`StoreError::Conflict`].
    Refused(&'static str),
}

impl Failure {
    fn error(self, e: tokio_postgres::Error) -> StoreError {
        let code = e.code().map(SqlState::code);
        match (self, code) {
            (Self::Insert(what), Some(c)) if c == SqlState::UNIQUE_VIOLATION.code() => {
                StoreError::Exists { what }
            }
            (Self::Insert(_), Some(c)) if c == SqlState::FOREIGN_KEY_VIOLATION.code() => {
                StoreError::NotFound { what: "integrator" }
            }
            (Self::Refused(what), Some("WG404")) => StoreError::NotFound { what },
            (Self::Refused(what), Some("WG409")) => StoreError::Conflict { what },
            _ => pg(e),
        }
    }
}

/// A parameter of a [`Step`], owned so the step can wait in a pipeline.
pub(super) type Param = Box<dyn tokio_postgres::types::ToSql + Sync + Send>;

/// One statement of a write: prepared, with its parameters and what its failure means. Running
/// it sends it at once (its first poll), so steps joined in order go out in order.
pub(super) struct Step {
    statement: tokio_postgres::Statement,
    params: Vec<Param>,
    failure: Failure,
    /// Its first row's first column is a version (or a sequence number) to return.
    returns: bool,
}

impl Step {
    /// Prepares `sql` on `client` (once per connection: the cache answers after that).
    pub(super) async fn prepare<C: GenericClient>(
        client: &C,
        sql: &str,
        params: Vec<Param>,
        failure: Failure,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            statement: client.prepare_cached(sql).await.map_err(pg)?,
            params,
            failure,
            returns: false,
        })
    }

    fn returning_version(mut self) -> Self {
        self.returns = true;
        self
    }

    /// Runs the step on `client`: the value it returns, if it returns one.
    pub(super) async fn run<C: GenericClient>(
        &self,
        client: &C,
    ) -> Result<Option<i64>, StoreError> {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> =
            self.params.iter().map(|p| &**p as _).collect();
        let rows = client
            .query(&self.statement, &params)
            .await
            .map_err(|e| self.failure.error(e))?;
        Ok(match (self.returns, rows.first()) {
            (true, Some(row)) => Some(row.get(0)),
            _ => None,
        })
    }
}

/// A step running `dml` (an `UPDATE` or `DELETE` of `what`'s row) that fails the transaction
/// with `WG404` when it touches no row: the row is not there, or not the caller's.
async fn touching<C: GenericClient>(
    client: &C,
    steps: &mut Vec<Step>,
    what: &'static str,
    dml: &str,
    params: Vec<Param>,
) -> Result<(), StoreError> {
    // `what` is one of this file's constants, never a caller's text.
    let sql = format!(
        "WITH hit AS ({dml} RETURNING 1)
         SELECT CASE WHEN EXISTS (SELECT 1 FROM hit) THEN 0
                ELSE webhook_guard_refuse('WG404', '{what}') END"
    );
    steps.push(Step::prepare(client, &sql, params, Failure::Refused(what)).await?);
    Ok(())
}

/// Replaces the keys of (`kind`, `owner`) with `keys`: a delete, then every key in one insert.
async fn write_keys<C: GenericClient>(
    client: &C,
    steps: &mut Vec<Step>,
    kind: &'static str,
    owner: &str,
    keys: Vec<SealedKey>,
) -> Result<(), StoreError> {
    steps.push(
        Step::prepare(
            client,
            "DELETE FROM keys WHERE owner_kind = $1 AND owner = $2",
            vec![Box::new(kind), Box::new(owner.to_owned())],
            Failure::Database,
        )
        .await?,
    );
    if keys.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = keys.iter().map(|k| k.key_id.clone()).collect();
    let positions: Vec<i32> = keys.iter().map(|k| k.position).collect();
    let created: Vec<i64> = keys.iter().map(|k| k.created_at).collect();
    let expires: Vec<Option<i64>> = keys.iter().map(|k| k.expires_at).collect();
    let materials: Vec<Vec<u8>> = keys.into_iter().map(|k| k.material).collect();
    steps.push(
        Step::prepare(
            client,
            "INSERT INTO keys (owner_kind, owner, key_id, position, created_at, expires_at, material)
             SELECT $1, $2, k.id, k.position, k.created_at, k.expires_at, k.material
             FROM unnest($3::text[], $4::int4[], $5::int8[], $6::int8[], $7::bytea[])
                  AS k(id, position, created_at, expires_at, material)",
            vec![
                Box::new(kind),
                Box::new(owner.to_owned()),
                Box::new(ids),
                Box::new(positions),
                Box::new(created),
                Box::new(expires),
                Box::new(materials),
            ],
            Failure::Database,
        )
        .await?,
    );
    Ok(())
}

/// A step that fails the transaction unless integrator `id` exists, and keeps it from vanishing
/// before the commit (`FOR KEY SHARE`).
async fn integrator_exists<C: GenericClient>(
    client: &C,
    steps: &mut Vec<Step>,
    id: &IntegratorId,
) -> Result<(), StoreError> {
    steps.push(
        Step::prepare(
            client,
            "WITH found AS (SELECT 1 FROM integrators WHERE id = $1 FOR KEY SHARE)
             SELECT CASE WHEN EXISTS (SELECT 1 FROM found) THEN 0
                    ELSE webhook_guard_refuse('WG404', 'integrator') END",
            vec![Box::new(id.as_str().to_owned())],
            Failure::Refused("integrator"),
        )
        .await?,
    );
    Ok(())
}

/// The step that appends `event` and announces it; it returns the event's sequence number.
pub(super) async fn event_step<C: GenericClient>(
    client: &C,
    event: &AuditEvent,
) -> Result<Step, StoreError> {
    Ok(Step::prepare(
        client,
        "WITH event AS (
             INSERT INTO audit (at, integrator, actor, action, project, old_keys, new_key, grace_secs, expires_at, count)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq)
         SELECT seq, pg_notify($11, seq::text) FROM event",
        vec![
            Box::new(nanos(event.at)),
            Box::new(event.integrator.as_str().to_owned()),
            Box::new(event.actor.clone()),
            Box::new(event.action.as_str()),
            Box::new(event.project.as_ref().map(|p| p.as_str().to_owned())),
            Box::new(event.old_keys.clone()),
            Box::new(event.new_key.clone()),
            Box::new(event.grace_secs.map(|s| s.min(i64::MAX as u64) as i64)),
            Box::new(event.expires_at.map(nanos)),
            Box::new(event.count.map(|c| c.min(i64::MAX as u64) as i64)),
            Box::new(CHANGES_CHANNEL),
        ],
        Failure::Database,
    )
    .await?
    .returning_version())
}

/// A key sealed for its row, ready to insert.
pub(super) struct SealedKey {
    key_id: String,
    position: i32,
    created_at: i64,
    expires_at: Option<i64>,
    material: Vec<u8>,
}
