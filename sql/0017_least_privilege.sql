-- 0017_least_privilege: dmarcd_ingest may change only what ingest, fetch,
-- resolve and treewalk change (docs/security.md); tests/integration/
-- privileges.py tries every other write and runs those commands as a role
-- with dmarcd_ingest only.
--
-- 0002 gave it UPDATE on every table. What is written once is never
-- updated: the raw bytes, the DKIM and SPF results, the warnings, the
-- ingest log, the reporters. Of a report, ingest fills in its sums once
-- the records are stored and counts duplicates; of a record, treewalk
-- rewrites the alignment; of a raw input, its stored size; of a policy,
-- when it was realigned. A stolen ingest login cannot rewrite who sent a
-- report, when, or what it said. (Revoking a table privilege also
-- revokes it from every column: the column grants come after.)

REVOKE UPDATE ON dmarcd.raw_chunks, dmarcd.dkim_results, dmarcd.spf_results,
    dmarcd.report_warnings, dmarcd.ingest_log, dmarcd.reporters
    FROM dmarcd_ingest;

REVOKE UPDATE ON dmarcd.reports FROM dmarcd_ingest;
GRANT UPDATE (payload_sha256, payload_bytes, record_count, message_count,
    warning_count, raw_sha256, duplicates, last_duplicate_at)
    ON dmarcd.reports TO dmarcd_ingest;

REVOKE UPDATE ON dmarcd.records FROM dmarcd_ingest;
GRANT UPDATE (auth, dkim_domain, spf_domain) ON dmarcd.records
    TO dmarcd_ingest;

REVOKE UPDATE ON dmarcd.raw_inputs FROM dmarcd_ingest;
GRANT UPDATE (stored_size) ON dmarcd.raw_inputs TO dmarcd_ingest;

REVOKE UPDATE ON dmarcd.policy_published FROM dmarcd_ingest;
GRANT UPDATE (realigned_at) ON dmarcd.policy_published TO dmarcd_ingest;

-- A function is executable by PUBLIC unless revoked: ensure_month, which
-- creates partitions with its owner's rights, was open to every role
-- (the API's and Grafana's included). Only ingest calls it.
REVOKE ALL ON FUNCTION dmarcd.ensure_month(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dmarcd.ensure_month(timestamptz) TO dmarcd_ingest;

-- The rollup's rows are appended and compacted (rollup_compact(), a
-- SECURITY DEFINER function), never updated by ingest: the sums the API
-- and Grafana read cannot be rewritten with an ingest login. Of a failure
-- report, ingest counts duplicates only.
REVOKE UPDATE ON dmarcd.rollup_daily FROM dmarcd_ingest;
REVOKE UPDATE ON dmarcd.failure_reports FROM dmarcd_ingest;
GRANT UPDATE (duplicates) ON dmarcd.failure_reports TO dmarcd_ingest;
