#!/usr/bin/env bash
# What one regeneration's transaction costs PostgreSQL itself, without webhook-guard's client:
# pgbench (C, prepared statements, one connection) runs a bare one-row INSERT in autocommit and
# the statements a regeneration sends (BEGIN, the writers' lock, the versioned UPDATE, the key
# rows' DELETE and INSERT, the audit row with its pg_notify, COMMIT, in one pipeline), alternating,
# on a scratch database with the store's migrations. BENCHMARKS.md, "Regeneration vs commit".
#
#   bash scripts/pg-write-floor.sh [seconds per run, default 5] [rounds, default 3]
set -euo pipefail
secs=${1:-5}
rounds=${2:-3}
pgbench=$(ls /usr/lib/postgresql/*/bin/pgbench | tail -1)
conn=(-h 127.0.0.1 -U postgres)
db=wg_floor_$$
dir=$(mktemp -d)
trap 'psql -q "${conn[@]}" -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; rm -rf "$dir"' EXIT
psql -q "${conn[@]}" -d postgres -c "CREATE DATABASE $db" >/dev/null
cat "$(dirname "$0")"/../src/store/postgres/0*.sql | psql -q -v ON_ERROR_STOP=1 "${conn[@]}" -d "$db" >/dev/null
psql -q "${conn[@]}" -d "$db" >/dev/null <<'SQL'
CREATE TABLE bare (id bigserial PRIMARY KEY, body text NOT NULL);
INSERT INTO integrators VALUES ('int_a', 1);
INSERT INTO projects (id, integrator, scheme, created_at) VALUES ('prj_a', 'int_a', 'github', 1);
SQL
# pgbench reads ":name" as a variable: no "::" casts below.
cat > "$dir/bare.sql" <<'SQL'
INSERT INTO bare (body) VALUES ('a row of about the audit rows size');
SQL
cat > "$dir/regenerate.sql" <<'SQL'
\startpipeline
BEGIN;
SELECT pg_advisory_xact_lock(42);
WITH bumped AS (UPDATE projects SET version = version + 1 WHERE id = 'prj_a' AND integrator = 'int_a' RETURNING version) SELECT coalesce((SELECT version FROM bumped), webhook_guard_refuse('WG409', 'project'));
DELETE FROM keys WHERE owner_kind = 'project' AND owner = 'prj_a';
INSERT INTO keys (owner_kind, owner, key_id, position, created_at, expires_at, material) SELECT 'project', 'prj_a', k.id, k.position, k.created_at, k.expires_at, k.material FROM unnest(CAST(ARRAY['k1'] AS text[]), CAST(ARRAY[0] AS int4[]), CAST(ARRAY[1] AS int8[]), CAST(ARRAY[NULL] AS int8[]), ARRAY[CAST('\x00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff' AS bytea)]) AS k(id, position, created_at, expires_at, material);
WITH event AS (INSERT INTO audit (at, integrator, actor, action, project, old_keys, new_key, grace_secs) VALUES (1, 'int_a', 'api-key 7GkQ2mZp9aXc', 'project.secret.regenerated', 'prj_a', ARRAY['k0'], 'k1', 0) RETURNING seq) SELECT seq, pg_notify('webhook_guard_changes', CAST(seq AS text)) FROM event;
COMMIT;
\endpipeline
SQL
run() { # script, extra PGOPTIONS
    PGOPTIONS="$2" "$pgbench" "${conn[@]}" -n -M prepared -f "$dir/$1.sql" -T "$secs" "$db" 2>&1 |
        sed -n 's/^latency average = \(.*\) ms/\1/p'
}
for commit in on off; do
    for _ in $(seq "$rounds"); do
        b=$(run bare "-c synchronous_commit=$commit")
        r=$(run regenerate "-c synchronous_commit=$commit")
        echo "synchronous_commit=$commit  bare INSERT: $b ms  regeneration's transaction: $r ms  ratio: $(python3 -c "print(f'{$r/$b:.2f}')")"
    done
done
