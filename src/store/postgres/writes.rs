//! Writes on PostgreSQL: each [`Change`] made in a transaction, keys sealed for their row, the
//! audit event appended and announced.

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

    /// Makes `change` in `tx`; for a change of a row's keys, only while the row is at
    /// `expected` (when given), returning the row's new version.
    pub(super) async fn apply_in(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        change: Change<'_>,
        expected: Option<i64>,
    ) -> Result<Option<i64>, StoreError> {
        match change {
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
                affected(
                    "project",
                    exec(
                        tx,
                        "UPDATE projects SET upstream_url = $1 WHERE id = $2 AND integrator = $3",
                        &[
                            &upstream.map(|u| u.url.as_str()),
                            &project.as_str(),
                            &integrator.as_str(),
                        ],
                    )
                    .await
                    .map_err(pg)?,
                )?;
                write_keys(tx, UPSTREAM, project.as_str(), &sealed).await?;
                Ok(None)
            }
            Change::CreateIntegrator(row) => {
                let sealed = self.seal_keys(INTEGRATOR, row.id.as_str(), &row.secrets)?;
                insert_new(
                    "integrator",
                    exec(
                        tx,
                        "INSERT INTO integrators (id, created_at) VALUES ($1, $2)",
                        &[&row.id.as_str(), &nanos(row.created_at)],
                    )
                    .await,
                )?;
                write_keys(tx, INTEGRATOR, row.id.as_str(), &sealed).await?;
                Ok(Some(1))
            }
            Change::SetIntegratorSecrets {
                integrator,
                secrets,
            } => {
                let sealed = self.seal_keys(INTEGRATOR, integrator.as_str(), secrets)?;
                let version = bump(
                    tx,
                    "integrator",
                    "UPDATE integrators SET version = version + 1
                     WHERE id = $1 AND ($2::bigint IS NULL OR version = $2) RETURNING version",
                    "SELECT 1 FROM integrators WHERE id = $1 AND $2::bigint IS NOT NULL",
                    &[&integrator.as_str(), &expected],
                )
                .await?;
                write_keys(tx, INTEGRATOR, integrator.as_str(), &sealed).await?;
                Ok(Some(version))
            }
            Change::CreateProject(row) => {
                let sealed = self.seal_keys(PROJECT, row.id.as_str(), &row.keys)?;
                let upstream = row.upstream.as_ref();
                let resign = self.seal_keys(
                    UPSTREAM,
                    row.id.as_str(),
                    &UpstreamRow::secret_records(upstream),
                )?;
                integrator_exists(tx, &row.integrator).await?;
                insert_new(
                    "project",
                    exec(
                        tx,
                        "INSERT INTO projects (id, integrator, name, scheme, created_at, upstream_url)
                         VALUES ($1, $2, $3, $4, $5, $6)",
                        &[
                            &row.id.as_str(),
                            &row.integrator.as_str(),
                            &row.name,
                            &row.scheme,
                            &nanos(row.created_at),
                            &upstream.map(|u| u.url.as_str()),
                        ],
                    )
                    .await,
                )?;
                write_keys(tx, PROJECT, row.id.as_str(), &sealed).await?;
                write_keys(tx, UPSTREAM, row.id.as_str(), &resign).await?;
                Ok(Some(1))
            }
            Change::SetProjectKeys {
                integrator,
                project,
                keys,
            } => {
                let sealed = self.seal_keys(PROJECT, project.as_str(), keys)?;
                let version = bump(
                    tx,
                    "project",
                    "UPDATE projects SET version = version + 1
                     WHERE id = $1 AND integrator = $2 AND ($3::bigint IS NULL OR version = $3)
                     RETURNING version",
                    "SELECT 1 FROM projects WHERE id = $1 AND integrator = $2 AND $3::bigint IS NOT NULL",
                    &[&project.as_str(), &integrator.as_str(), &expected],
                )
                .await?;
                write_keys(tx, PROJECT, project.as_str(), &sealed).await?;
                Ok(Some(version))
            }
            Change::DeleteProject {
                integrator,
                project,
            } => {
                affected(
                    "project",
                    exec(
                        tx,
                        "DELETE FROM projects WHERE id = $1 AND integrator = $2",
                        &[&project.as_str(), &integrator.as_str()],
                    )
                    .await
                    .map_err(pg)?,
                )?;
                exec(
                    tx,
                    "DELETE FROM keys WHERE owner_kind IN ($1, $2) AND owner = $3",
                    &[&PROJECT, &UPSTREAM, &project.as_str()],
                )
                .await
                .map_err(pg)?;
                Ok(None)
            }
            Change::CreateApiKey(key) => {
                integrator_exists(tx, &key.integrator).await?;
                let projects: Option<Vec<&str>> = key
                    .projects
                    .as_ref()
                    .map(|ids| ids.iter().map(ProjectId::as_str).collect());
                insert_new(
                    "API key",
                    exec(
                        tx,
                        "INSERT INTO api_keys (id, integrator, name, digest, created_at, expires_at, projects, last_used)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                        &[
                            &key.id.as_str(),
                            &key.integrator.as_str(),
                            &key.name,
                            &&key.digest[..],
                            &nanos(key.created_at),
                            &key.expires_at.map(nanos),
                            &projects,
                            &key.last_used.map(nanos),
                        ],
                    )
                    .await,
                )?;
                Ok(Some(1))
            }
            Change::DeleteApiKey { integrator, id } => {
                affected(
                    "API key",
                    exec(
                        tx,
                        "DELETE FROM api_keys WHERE id = $1 AND integrator = $2",
                        &[&id.as_str(), &integrator.as_str()],
                    )
                    .await
                    .map_err(pg)?,
                )?;
                Ok(None)
            }
        }
    }

    /// Commits `change` and `event` in one transaction, announced on [`CHANGES_CHANNEL`]; the
    /// event's sequence number and the row's new version.
    pub(super) async fn apply_versioned(
        &self,
        client: &mut deadpool_postgres::Object,
        change: Change<'_>,
        expected: Option<i64>,
        event: &AuditEvent,
    ) -> Result<(u64, Option<i64>), StoreError> {
        let tx = client.transaction().await.map_err(pg)?;
        // Pipelined: the writers' lock, the change and the audit row go out together and the
        // server runs them in that order (the lock first, so sequence numbers still commit in
        // order); the change's later statements follow its first answer. A failure anywhere
        // leaves the transaction uncommitted.
        let lock = async {
            exec(&tx, "SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                .await
                .map_err(pg)
        };
        let (_, version, seq) = tokio::try_join!(
            biased;
            lock,
            self.apply_in(&tx, change, expected),
            append_event(&tx, event),
        )?;
        tx.commit().await.map_err(pg)?;
        Ok((seq, version))
    }
}

/// Runs `sql` in `tx` as a statement prepared once per connection: one round trip, not two.
pub(super) async fn exec(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<u64, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.execute(&statement, params).await
}

/// [`exec`] for a statement that returns at most one row.
pub(super) async fn query_opt(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Option<Row>, tokio_postgres::Error> {
    let statement = tx.prepare_cached(sql).await?;
    tx.query_opt(&statement, params).await
}

/// Raises a row's version with `update` (which names the expected version, or none); when it
/// touched nothing, `exists` tells a row at another version ([`StoreError::Conflict`]) from
/// none ([`StoreError::NotFound`]).
pub(super) async fn bump(
    tx: &deadpool_postgres::Transaction<'_>,
    what: &'static str,
    update: &str,
    exists: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<i64, StoreError> {
    if let Some(row) = query_opt(tx, update, params).await.map_err(pg)? {
        return Ok(row.get(0));
    }
    match query_opt(tx, exists, params).await.map_err(pg)? {
        Some(_) => Err(StoreError::Conflict { what }),
        None => Err(StoreError::NotFound { what }),
    }
}

/// A key sealed for its row, ready to insert.
pub(super) struct SealedKey {
    key_id: String,
    position: i32,
    created_at: i64,
    expires_at: Option<i64>,
    material: Vec<u8>,
}

pub(super) async fn write_keys(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: &str,
    owner: &str,
    keys: &[SealedKey],
) -> Result<(), StoreError> {
    let delete_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&kind, &owner];
    let delete = exec(
        tx,
        "DELETE FROM keys WHERE owner_kind = $1 AND owner = $2",
        &delete_params,
    );
    if keys.is_empty() {
        return delete.await.map(drop).map_err(pg);
    }
    // Every key in one statement, pipelined behind the delete.
    let ids: Vec<&str> = keys.iter().map(|k| k.key_id.as_str()).collect();
    let positions: Vec<i32> = keys.iter().map(|k| k.position).collect();
    let created: Vec<i64> = keys.iter().map(|k| k.created_at).collect();
    let expires: Vec<Option<i64>> = keys.iter().map(|k| k.expires_at).collect();
    let materials: Vec<&[u8]> = keys.iter().map(|k| k.material.as_slice()).collect();
    let insert_params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &kind, &owner, &ids, &positions, &created, &expires, &materials,
    ];
    let insert = exec(
        tx,
        "INSERT INTO keys (owner_kind, owner, key_id, position, created_at, expires_at, material)
         SELECT $1, $2, k.id, k.position, k.created_at, k.expires_at, k.material
         FROM unnest($3::text[], $4::int4[], $5::int8[], $6::int8[], $7::bytea[])
              AS k(id, position, created_at, expires_at, material)",
        &insert_params,
    );
    tokio::try_join!(biased; delete, insert).map_err(pg)?;
    Ok(())
}

pub(super) async fn integrator_exists(
    tx: &deadpool_postgres::Transaction<'_>,
    id: &IntegratorId,
) -> Result<(), StoreError> {
    // FOR KEY SHARE: the integrator cannot vanish before this transaction commits.
    query_opt(
        tx,
        "SELECT 1 FROM integrators WHERE id = $1 FOR KEY SHARE",
        &[&id.as_str()],
    )
    .await
    .map_err(pg)?
    .map(drop)
    .ok_or(StoreError::NotFound { what: "integrator" })
}

/// Appends `event` in `tx` and announces it; its sequence number.
pub(super) async fn append_event(
    tx: &deadpool_postgres::Transaction<'_>,
    event: &AuditEvent,
) -> Result<u64, StoreError> {
    let insert = tx
        .prepare_cached(
            "WITH event AS (
                 INSERT INTO audit (at, integrator, actor, action, project, old_keys, new_key, grace_secs, expires_at, count)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING seq)
             SELECT seq, pg_notify($11, seq::text) FROM event",
        )
        .await
        .map_err(pg)?;
    let seq: i64 = tx
        .query_one(
            &insert,
            &[
                &nanos(event.at),
                &event.integrator.as_str(),
                &event.actor,
                &event.action.as_str(),
                &event.project.as_ref().map(ProjectId::as_str),
                &event.old_keys,
                &event.new_key,
                &event.grace_secs.map(|s| s.min(i64::MAX as u64) as i64),
                &event.expires_at.map(nanos),
                &event.count.map(|c| c.min(i64::MAX as u64) as i64),
                &CHANGES_CHANNEL,
            ],
        )
        .await
        .map_err(pg)?
        .get(0);
    Ok(seq as u64)
}

/// An insert that must add a row: a duplicate is [`StoreError::Exists`].
pub(super) fn insert_new(
    what: &'static str,
    result: Result<u64, tokio_postgres::Error>,
) -> Result<(), StoreError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(StoreError::Exists { what }),
        Err(e) if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) => {
            Err(StoreError::NotFound { what: "integrator" })
        }
        Err(e) => Err(pg(e)),
    }
}

/// A statement that must touch a row: none is [`StoreError::NotFound`].
pub(super) fn affected(what: &'static str, rows: u64) -> Result<(), StoreError> {
    match rows {
        0 => Err(StoreError::NotFound { what }),
        _ => Ok(()),
    }
}
