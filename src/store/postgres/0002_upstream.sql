-- Where a project's verified deliveries are forwarded (the gateway); its re-signing secret, if
-- any, is a row of keys (owner_kind 'upstream', key id 'resign'), sealed like signing keys.
ALTER TABLE projects ADD COLUMN upstream_url text;
