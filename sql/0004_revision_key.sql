-- 0004_revision_key: one row per revision of a report. Two collectors
-- storing two versions of one report at the same moment each took it for
-- the first (both revision 1, both counted in rollup_daily). With this
-- key the second waits for the first one's commit, meets its row and
-- stores its version as the next revision.
--
-- Rows stored as one revision before this key existed are numbered again
-- in the order they were stored, made revisions of the first, and the
-- rollup of their domains is worked out again from the newest revision
-- of each report. Clean data is left as it is: its revisions are 1, 2,
-- 3... already, and nothing is recomputed.
DO $$
DECLARE
	doms text[];
BEGIN
	WITH n AS (
		SELECT domain, id, row_number() OVER w AS revision,
		    min(id) OVER w AS first
		FROM dmarcd.reports
		WINDOW w AS (PARTITION BY domain, org_name, report_id,
		    begin_time, end_time ORDER BY revision, id ROWS BETWEEN
		    UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)),
	u AS (
		UPDATE dmarcd.reports r SET revision = n.revision,
		    revision_of = CASE WHEN n.revision > 1 THEN n.first END
		FROM n
		WHERE r.domain = n.domain AND r.id = n.id AND
		    r.revision <> n.revision
		RETURNING r.domain)
	SELECT array_agg(DISTINCT domain) INTO doms FROM u;
	IF doms IS NULL THEN
		RETURN;
	END IF;
	DELETE FROM dmarcd.rollup_daily WHERE domain = ANY (doms);
	PERFORM dmarcd.rollup_add(array_agg(l.domain), array_agg(l.id),
	    array_agg(l.begin_time))
	FROM (SELECT DISTINCT ON (domain, org_name, report_id, begin_time,
	    end_time) domain, id, begin_time
	    FROM dmarcd.reports
	    WHERE domain = ANY (doms) AND payload_sha256 IS NOT NULL
	    ORDER BY domain, org_name, report_id, begin_time, end_time,
	    revision DESC) l;
END $$;

ALTER TABLE dmarcd.reports ADD CONSTRAINT reports_revision_key
    UNIQUE (domain, org_name, report_id, begin_time, end_time, revision);
