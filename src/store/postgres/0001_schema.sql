-- webhook-guard on PostgreSQL, version 1. Times are nanoseconds since the Unix epoch (bigint),
-- as in the SQLite store, so a key read back by another instance is the key that was written.
CREATE TABLE integrators (
    id          text PRIMARY KEY,
    created_at  bigint NOT NULL,
    -- Raised by every change of the row or its keys; a write names the version it read.
    version     bigint NOT NULL DEFAULT 1
);
CREATE TABLE projects (
    id          text PRIMARY KEY,
    integrator  text NOT NULL REFERENCES integrators(id),
    name        text,
    scheme      text NOT NULL,
    created_at  bigint NOT NULL,
    version     bigint NOT NULL DEFAULT 1
);
CREATE INDEX projects_by_integrator ON projects(integrator);
-- Signing keys of projects and API-secret digests of integrators, sealed (store/crypt.rs).
CREATE TABLE keys (
    owner_kind  text NOT NULL,
    owner       text NOT NULL,
    key_id      text NOT NULL,
    position    integer NOT NULL,
    created_at  bigint NOT NULL,
    expires_at  bigint,
    material    bytea NOT NULL,
    PRIMARY KEY (owner_kind, owner, key_id)
);
CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    integrator  text NOT NULL REFERENCES integrators(id),
    name        text,
    digest      bytea NOT NULL,
    created_at  bigint NOT NULL,
    expires_at  bigint,
    projects    text[],
    last_used   bigint,
    version     bigint NOT NULL DEFAULT 1
);
-- One global sequence: every instance follows the log in seq order (store/feed.rs).
CREATE TABLE audit (
    seq         bigserial PRIMARY KEY,
    at          bigint NOT NULL,
    integrator  text NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    project     text,
    old_keys    text[] NOT NULL,
    new_key     text,
    grace_secs  bigint,
    expires_at  bigint,
    count       bigint
);
CREATE INDEX audit_by_integrator ON audit(integrator, seq);
