//! The [`Store`] trait's calls on PostgreSQL (each write through [`writes`](super::writes)) and
//! the reads behind them: snapshots, rows decoded, keys opened.

use super::*;

impl PostgresStore {
    pub(super) fn open_key(
        &self,
        kind: &str,
        owner: &str,
        row: &Row,
    ) -> Result<KeyRecord, StoreError> {
        let key = StoredKey {
            key_id: row.get("key_id"),
            position: i64::from(row.get::<_, i32>("position")),
            created_at: row.get("created_at"),
            expires_at: row.get("expires_at"),
            sealed: row.get("material"),
        };
        key.open(&self.sealer, kind, owner)
    }

    pub(super) async fn load_async(&self) -> Result<State, StoreError> {
        let mut client = self.client().await?;
        // One snapshot: the rows, their keys and the log's end as of one moment.
        let tx = snapshot(&mut client).await?;
        let mut keys: std::collections::HashMap<(String, String), Vec<Row>> =
            std::collections::HashMap::new();
        for row in tx
            .query(
                "SELECT owner_kind, owner, key_id, position, created_at, expires_at, material
                 FROM keys ORDER BY owner_kind, owner, position",
                &[],
            )
            .await
            .map_err(pg)?
        {
            keys.entry((row.get(0), row.get(1))).or_default().push(row);
        }
        let mut keys_of = |kind: &str, owner: &str| -> Result<Vec<KeyRecord>, StoreError> {
            keys.remove(&(kind.to_owned(), owner.to_owned()))
                .unwrap_or_default()
                .iter()
                .map(|row| self.open_key(kind, owner, row))
                .collect()
        };
        let mut state = State::default();
        for row in tx
            .query(
                "SELECT id, created_at, version FROM integrators ORDER BY id",
                &[],
            )
            .await
            .map_err(pg)?
        {
            let id: String = row.get(0);
            let secrets = keys_of(INTEGRATOR, &id)?;
            let mut integrator =
                IntegratorRow::new(IntegratorId::new(&id), from_nanos(row.get(1)), secrets);
            integrator.version = row.get::<_, i64>(2) as u64;
            state.integrators.push(integrator);
        }
        for row in tx
            .query(
                "SELECT id, integrator, name, scheme, created_at, version, upstream_url
                 FROM projects ORDER BY id",
                &[],
            )
            .await
            .map_err(pg)?
        {
            let id: String = row.get(0);
            let keys = keys_of(PROJECT, &id)?;
            let upstream = match row.get::<_, Option<String>>(6) {
                Some(url) => Some(UpstreamRow::from_stored(url, keys_of(UPSTREAM, &id)?)),
                None => None,
            };
            state
                .projects
                .push(project_row(&row, parse_project(&id)?, keys, upstream));
        }
        for row in tx
            .query(
                "SELECT id, integrator, name, digest, created_at, expires_at, projects, last_used
                 FROM api_keys ORDER BY created_at, id",
                &[],
            )
            .await
            .map_err(pg)?
        {
            state.api_keys.push(api_key_row(&row)?);
        }
        state.seq = tx
            .query_one("SELECT coalesce(max(seq), 0) FROM audit", &[])
            .await
            .map_err(pg)?
            .get::<_, i64>(0) as u64;
        tx.commit().await.map_err(pg)?;
        Ok(state)
    }
}

/// A read-only transaction on one snapshot.
pub(super) async fn snapshot(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, StoreError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(pg)
}

/// The stored (sealed) keys of one owner, current first.
pub(super) async fn keys_in(
    tx: &deadpool_postgres::Transaction<'_>,
    kind: &str,
    owner: &str,
) -> Result<Vec<Row>, StoreError> {
    tx.query(
        "SELECT key_id, position, created_at, expires_at, material FROM keys
         WHERE owner_kind = $1 AND owner = $2 ORDER BY position",
        &[&kind, &owner],
    )
    .await
    .map_err(pg)
}

/// A read borrowing a connection: it owns everything else it needs.
pub(super) type Read<'c, T> =
    std::pin::Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'c>>;

pub(super) fn audit_event(row: &Row) -> Result<AuditEvent, StoreError> {
    let action = stored_action(row.get("action"))?;
    let mut event = AuditEvent::new(
        from_nanos(row.get("at")),
        IntegratorId::new(row.get("integrator")),
        row.get::<_, String>("actor"),
        action,
    );
    event.seq = row.get::<_, i64>("seq") as u64;
    event.project = row
        .get::<_, Option<&str>>("project")
        .map(parse_project)
        .transpose()?;
    event.old_keys = row.get("old_keys");
    event.new_key = row.get("new_key");
    event.grace_secs = row.get::<_, Option<i64>>("grace_secs").map(|s| s as u64);
    event.expires_at = row.get::<_, Option<i64>>("expires_at").map(from_nanos);
    event.count = row.get::<_, Option<i64>>("count").map(|c| c as u64);
    Ok(event)
}

pub(super) fn api_key_row(row: &Row) -> Result<ApiKeyRow, StoreError> {
    let invalid = |reason: &str| StoreError::Invalid {
        what: "API key",
        reason: reason.into(),
    };
    let id = ApiKeyId::parse(row.get("id")).map_err(|_| invalid("malformed id"))?;
    let digest: [u8; 32] = row
        .get::<_, Vec<u8>>("digest")
        .try_into()
        .map_err(|_| invalid("digest is not 32 bytes"))?;
    let projects = row
        .get::<_, Option<Vec<String>>>("projects")
        .map(|ids| ids.iter().map(|id| parse_project(id)).collect())
        .transpose()?;
    Ok(ApiKeyRow {
        id,
        integrator: IntegratorId::new(row.get("integrator")),
        name: row.get("name"),
        digest,
        created_at: from_nanos(row.get("created_at")),
        expires_at: row.get::<_, Option<i64>>("expires_at").map(from_nanos),
        projects,
        last_used: row.get::<_, Option<i64>>("last_used").map(from_nanos),
    })
}

impl Store for PostgresStore {
    fn load(&self) -> Result<State, StoreError> {
        self.block(self.load_async())
    }

    fn apply(&self, change: Change<'_>, event: &AuditEvent) -> Result<u64, StoreError> {
        self.apply_pinned(change, None, event).map(|(seq, _)| seq)
    }

    fn apply_at(
        &self,
        change: Change<'_>,
        version: u64,
        event: &AuditEvent,
    ) -> Result<(u64, u64), StoreError> {
        let expected = i64::try_from(version).unwrap_or(i64::MAX);
        let (seq, new) = self.apply_pinned(change, Some(expected), event)?;
        Ok((seq, new.map_or(version + 1, |v| v as u64)))
    }

    fn lock_writes(&self) -> Result<WriteLock, StoreError> {
        let held = PINNED.with(|p| matches!(&*p.borrow(), Some((id, _)) if *id == self.id));
        if held {
            // Already held by this thread: the outer lock releases it.
            return Ok(WriteLock::none());
        }
        let client = self.block(async {
            let client = self.client().await?;
            client
                .execute("SELECT pg_advisory_lock($1)", &[&WRITE_LOCK])
                .await
                .map_err(pg)?;
            Ok::<_, StoreError>(client)
        })?;
        PINNED.with(|p| *p.borrow_mut() = Some((self.id, client)));
        Ok(WriteLock::held(PinnedWrites {
            store: self.id,
            runtime: self.runtime().clone(),
        }))
    }

    fn changes_since(&self, after: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let after = after.min(i64::MAX as u64) as i64;
        let limit = limit.min(i64::MAX as usize) as i64;
        self.block(async {
            let client = self.client().await?;
            let select = client
                .prepare_cached(
                    "SELECT seq, at, integrator, actor, action, project, old_keys, new_key, grace_secs, expires_at, count
                     FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
                )
                .await
                .map_err(pg)?;
            client
                .query(&select, &[&after, &limit])
                .await
                .map_err(pg)?
                .iter()
                .map(audit_event)
                .collect()
        })
    }

    fn load_project(&self, id: &ProjectId) -> Result<Option<ProjectRow>, StoreError> {
        let rows = self.read_pinned_or_pooled({
            let id = id.as_str().to_owned();
            move |client| {
                Box::pin(async move {
                    let tx = snapshot(client).await?;
                    let row = tx
                        .query_opt(
                            "SELECT id, integrator, name, scheme, created_at, version, upstream_url
                             FROM projects WHERE id = $1",
                            &[&id],
                        )
                        .await
                        .map_err(pg)?;
                    let keys = keys_in(&tx, PROJECT, &id).await?;
                    let resign = keys_in(&tx, UPSTREAM, &id).await?;
                    tx.commit().await.map_err(pg)?;
                    Ok(row.map(|row| (row, keys, resign)))
                })
            }
        })?;
        let Some((row, keys, resign)) = rows else {
            return Ok(None);
        };
        let keys = keys
            .iter()
            .map(|key| self.open_key(PROJECT, id.as_str(), key))
            .collect::<Result<_, _>>()?;
        let upstream = match row.get::<_, Option<String>>(6) {
            Some(url) => {
                let resign = resign
                    .iter()
                    .map(|key| self.open_key(UPSTREAM, id.as_str(), key))
                    .collect::<Result<_, _>>()?;
                Some(UpstreamRow::from_stored(url, resign))
            }
            None => None,
        };
        Ok(Some(project_row(&row, id.clone(), keys, upstream)))
    }

    fn load_integrator(&self, id: &IntegratorId) -> Result<Option<IntegratorRow>, StoreError> {
        let rows = self.read_pinned_or_pooled({
            let id = id.as_str().to_owned();
            move |client| {
                Box::pin(async move {
                    let tx = snapshot(client).await?;
                    let row = tx
                        .query_opt(
                            "SELECT created_at, version FROM integrators WHERE id = $1",
                            &[&id],
                        )
                        .await
                        .map_err(pg)?;
                    let keys = keys_in(&tx, INTEGRATOR, &id).await?;
                    tx.commit().await.map_err(pg)?;
                    Ok(row.map(|row| (row, keys)))
                })
            }
        })?;
        let Some((row, keys)) = rows else {
            return Ok(None);
        };
        let secrets = keys
            .iter()
            .map(|key| self.open_key(INTEGRATOR, id.as_str(), key))
            .collect::<Result<_, _>>()?;
        let mut integrator = IntegratorRow::new(id.clone(), from_nanos(row.get(0)), secrets);
        integrator.version = row.get::<_, i64>(1) as u64;
        Ok(Some(integrator))
    }

    fn load_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKeyRow>, StoreError> {
        self.block(async {
            let client = self.client().await?;
            client
                .query_opt(
                    "SELECT id, integrator, name, digest, created_at, expires_at, projects, last_used
                     FROM api_keys WHERE id = $1",
                    &[&id.as_str()],
                )
                .await
                .map_err(pg)?
                .map(|row| api_key_row(&row))
                .transpose()
        })
    }

    fn audit_matching(
        &self,
        integrator: &IntegratorId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let projects: Option<Vec<&str>> = query
            .projects
            .as_ref()
            .map(|ids| ids.iter().map(ProjectId::as_str).collect());
        let before = query.before.map(|b| b.min(i64::MAX as u64) as i64);
        let limit = query.limit.min(i64::MAX as usize) as i64;
        self.block(async {
            let client = self.client().await?;
            let select = client
                .prepare_cached(
                    "SELECT seq, at, integrator, actor, action, project, old_keys, new_key, grace_secs, expires_at, count
                     FROM audit WHERE integrator = $1 AND ($2::bigint IS NULL OR seq < $2)
                       AND ($4::text[] IS NULL OR project = ANY($4))
                       AND ($5::text IS NULL OR action = $5)
                     ORDER BY seq DESC LIMIT $3",
                )
                .await
                .map_err(pg)?;
            client
                .query(
                    &select,
                    &[
                        &integrator.as_str(),
                        &before,
                        &limit,
                        &projects,
                        &query.action.map(AuditAction::as_str),
                    ],
                )
                .await
                .map_err(pg)?
                .iter()
                .map(audit_event)
                .collect()
        })
    }

    fn prune_audit(
        &self,
        integrator: &IntegratorId,
        retention: AuditRetention,
        event: &AuditEvent,
    ) -> Result<u64, StoreError> {
        self.block(async {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(pg)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                .await
                .map_err(pg)?;
            let mut removed = 0;
            if let Some(before) = retention.older_than {
                removed += tx
                    .execute(
                        "DELETE FROM audit WHERE integrator = $1 AND at < $2",
                        &[&integrator.as_str(), &nanos(before)],
                    )
                    .await
                    .map_err(pg)?;
            }
            if let Some(keep) = retention.keep_newest {
                removed += tx
                    .execute(
                        "DELETE FROM audit WHERE integrator = $1 AND seq < (
                             SELECT coalesce(min(seq), 0) FROM (
                                 SELECT seq FROM audit WHERE integrator = $1
                                 ORDER BY seq DESC LIMIT $2) AS newest)",
                        &[&integrator.as_str(), &(keep.min(i64::MAX as u64) as i64)],
                    )
                    .await
                    .map_err(pg)?;
            }
            if removed > 0 {
                let mut event = event.clone();
                event.count = Some(removed);
                event_step(&tx, &event).await?.run(&tx).await?;
            }
            tx.commit().await.map_err(pg)?;
            Ok(removed)
        })
    }

    fn record_uses(&self, uses: &[(ApiKeyId, DateTime<Utc>)]) -> Result<(), StoreError> {
        let ids: Vec<&str> = uses.iter().map(|(id, _)| id.as_str()).collect();
        let times: Vec<i64> = uses.iter().map(|(_, at)| nanos(*at)).collect();
        self.block(async {
            let client = self.client().await?;
            // One statement: the uses land together or not at all. Not a change of
            // credentials: no audit event, no version.
            client
                .execute(
                    "UPDATE api_keys SET last_used = u.at
                     FROM unnest($1::text[], $2::bigint[]) AS u(id, at)
                     WHERE api_keys.id = u.id AND (last_used IS NULL OR last_used < u.at)",
                    &[&ids, &times],
                )
                .await
                .map_err(pg)?;
            Ok(())
        })
    }

    fn ping(&self) -> Result<(), StoreError> {
        self.block(async {
            let client = self.client().await?;
            client
                .query_one("SELECT count(*) FROM integrators", &[])
                .await
                .map_err(pg)?;
            Ok(())
        })
    }
}

pub(super) fn parse_project(id: &str) -> Result<ProjectId, StoreError> {
    ProjectId::parse(id).map_err(|e| StoreError::Invalid {
        what: "project id",
        reason: e.to_string(),
    })
}

/// A project row read as `SELECT id, integrator, name, scheme, created_at, version, …`, with
/// its keys and upstream read beside it.
fn project_row(
    row: &Row,
    id: ProjectId,
    keys: Vec<KeyRecord>,
    upstream: Option<UpstreamRow>,
) -> ProjectRow {
    let mut project = ProjectRow::new(
        id,
        IntegratorId::new(row.get(1)),
        row.get(2),
        row.get(3),
        from_nanos(row.get(4)),
        keys,
    )
    .upstream(upstream);
    project.version = row.get::<_, i64>(5) as u64;
    project
}
