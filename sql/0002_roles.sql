-- 0002_roles: two roles with no more rights than they need.
--
--   dmarcd_ingest  what dmarcd ingest uses: reads and writes report data,
--                  cannot change the schema.
--   dmarcd_reader  what the API and Grafana use: SELECT only.
--
-- They are created NOLOGIN: give them to login roles of your own
-- (GRANT dmarcd_ingest TO alice) or make them log in
-- (ALTER ROLE dmarcd_reader LOGIN PASSWORD '...'). Creating roles needs
-- CREATEROLE; without it the roles must exist beforehand, which is checked.

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dmarcd_ingest')
	THEN
		CREATE ROLE dmarcd_ingest NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dmarcd_reader')
	THEN
		CREATE ROLE dmarcd_reader NOLOGIN;
	END IF;
END $$;

GRANT USAGE ON SCHEMA dmarcd TO dmarcd_ingest, dmarcd_reader;

GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA dmarcd TO dmarcd_ingest;
GRANT DELETE ON dmarcd.rejected_inputs TO dmarcd_ingest;
GRANT EXECUTE ON FUNCTION dmarcd.ensure_month(timestamptz),
    dmarcd.report_days(timestamptz, timestamptz),
    dmarcd.rollup_add(text[], bigint[], timestamptz[], integer) TO dmarcd_ingest;
GRANT SELECT ON ALL TABLES IN SCHEMA dmarcd TO dmarcd_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA dmarcd
    GRANT SELECT ON TABLES TO dmarcd_reader;
-- The reader reads the data, not the raw mail (schema_migrations stays
-- readable: every command checks the schema version first).
REVOKE SELECT ON dmarcd.raw_chunks, dmarcd.raw_inputs FROM dmarcd_reader;
REVOKE INSERT, UPDATE ON dmarcd.schema_migrations FROM dmarcd_ingest;
