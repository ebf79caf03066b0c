-- 0018_admin_role: dmarcd_admin, the role that alone may change what
-- decides who reads the API and what it shows (issue 9, docs/security.md).
--
--   dmarcd_admin   what dmarcd token uses ([database] admin_conninfo):
--                  writes the API's tokens, the local sender map
--                  (docs/senders.md) and may delete refused inputs.
--
-- Until now dmarcd_ingest could write dmarcd.api_tokens (0007), so a
-- stolen daemon login could mint itself an API token for every domain,
-- or revoke everyone else's; and it could rewrite the platforms' fix
-- texts and links the status page shows. Ingest, fetch, run, resolve,
-- alerts and compact write none of these: they keep reading the tokens
-- (dmarcd run serves the API with [database] conninfo unless [api]
-- database is set) and the sender map (the platform triggers).
--
-- NOLOGIN like the roles of 0002: give it to a login role of your own
-- (GRANT dmarcd_admin TO alice), or make the tokens as the role that ran
-- dmarcd migrate. Creating it needs CREATEROLE; without it the role must
-- exist beforehand, and the message says so.

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dmarcd_admin')
	THEN
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = current_user
		    AND (rolsuper OR rolcreaterole)) THEN
			RAISE EXCEPTION 'role dmarcd_admin does not exist and % '
			    'may not create it', current_user
			    USING ERRCODE = 'insufficient_privilege',
			    HINT = 'a role with CREATEROLE runs CREATE ROLE '
			    'dmarcd_admin NOLOGIN; then dmarcd migrate again';
		END IF;
		CREATE ROLE dmarcd_admin NOLOGIN;
	END IF;
END $$;

GRANT USAGE ON SCHEMA dmarcd TO dmarcd_admin;
-- Every command checks the schema version first.
GRANT SELECT ON dmarcd.schema_migrations TO dmarcd_admin;

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON dmarcd.api_tokens
    FROM dmarcd_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON dmarcd.api_tokens TO dmarcd_admin;

REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON dmarcd.platforms,
    dmarcd.sender_rules FROM dmarcd_ingest;
GRANT SELECT, INSERT, UPDATE, DELETE ON dmarcd.platforms,
    dmarcd.sender_rules TO dmarcd_admin;
-- After editing local rules, refresh_platforms() (0008) clears the
-- derived platform columns, which their triggers fill in again.
GRANT UPDATE (platform) ON dmarcd.ip_names TO dmarcd_admin;
GRANT UPDATE (dkim_platform, spf_platform) ON dmarcd.domain_orgs
    TO dmarcd_admin;
GRANT EXECUTE ON FUNCTION dmarcd.refresh_platforms() TO dmarcd_admin;

-- dmarcd rejected retry marks them resolved (UPDATE); nothing of ingest
-- deletes one: a refused input and its reason go only by an admin's hand.
REVOKE DELETE ON dmarcd.rejected_inputs FROM dmarcd_ingest;
GRANT SELECT, DELETE ON dmarcd.rejected_inputs TO dmarcd_admin;
