-- 0004_revision_key: one row per revision of a report. Two collectors
-- storing two versions of one report at the same moment each took it for
-- the first (both revision 1, both counted in rollup_daily). With this
-- key the second waits for the first one's commit, meets its row and
-- stores its version as the next revision.
--
-- Rows stored twice under one revision before this key existed are
-- numbered again, in the order they were stored (clean data is left as
-- it is: its revisions are 1, 2, 3... already).
WITH n AS (
	SELECT domain, id, row_number() OVER (PARTITION BY domain, org_name,
	    report_id, begin_time, end_time ORDER BY revision, id) AS revision
	FROM dmarcd.reports)
UPDATE dmarcd.reports r SET revision = n.revision
FROM n
WHERE r.domain = n.domain AND r.id = n.id AND r.revision <> n.revision;

ALTER TABLE dmarcd.reports ADD CONSTRAINT reports_revision_key
    UNIQUE (domain, org_name, report_id, begin_time, end_time, revision);
