-- 0010_alerts: what `dmarcd alerts` raises and how its delivery is kept
-- (docs/alerts.md).
--
-- dmarcd.alert_scan(p_now, p_min_messages, p_drop, p_window) gives the
-- alerts that hold at p_now; dmarcd alerts inserts them into
-- dmarcd.alerts with ON CONFLICT DO NOTHING, so that (domain, kind, key)
-- is raised once, whatever the runs and processes. Each kind's key is
-- chosen so that one event is one key:
--
--   new_reporter         key: the reporter's org_name. Its first report
--                        for the domain began within the last p_window
--                        days (and not after p_now), and the domain was
--                        reported on by another reporter before that
--                        window: a new domain's first reports are no
--                        news, a new reporter beside known ones is.
--
-- delivery: attempts counts the requests made, next_attempt_at holds
-- back an alert after a failure (backoff), given_up_at marks one the
-- webhook refused too often; sent_at is set on a 2xx answer.

ALTER TABLE dmarcd.alerts
	ADD COLUMN next_attempt_at timestamptz,
	ADD COLUMN given_up_at timestamptz;
-- The delivery queue, oldest first.
CREATE INDEX alerts_pending ON dmarcd.alerts (id)
    WHERE sent_at IS NULL AND given_up_at IS NULL;
-- The rate limit counts what was sent in the last hour.
CREATE INDEX alerts_sent_at ON dmarcd.alerts (sent_at)
    WHERE sent_at IS NOT NULL;

CREATE FUNCTION dmarcd.alert_scan(p_now timestamptz, p_min_messages bigint,
    p_drop numeric, p_window integer)
RETURNS TABLE (domain text, kind text, key text, detail jsonb)
LANGUAGE sql STABLE
AS $$
	WITH w AS (
		SELECT p_now - make_interval(days => p_window) AS since
	),
	recent AS (
		-- Reporters seen in the window that were not seen before it.
		SELECT r.domain, r.org_name, min(r.begin_time) AS first_begin,
		    max(r.end_time) AS last_end, count(*) AS reports,
		    sum(r.message_count) AS messages
		FROM dmarcd.reports r, w
		WHERE r.payload_sha256 IS NOT NULL
		    AND r.begin_time >= w.since AND r.begin_time <= p_now
		    AND NOT EXISTS (SELECT 1 FROM dmarcd.reports o
			WHERE o.domain = r.domain AND o.org_name = r.org_name
			    AND o.begin_time < w.since)
		GROUP BY r.domain, r.org_name
	)
	SELECT n.domain, 'new_reporter'::text, n.org_name,
	    jsonb_build_object('org_name', n.org_name,
		'first_report_begin', to_char(n.first_begin AT TIME ZONE 'UTC',
		    'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
		'reports', n.reports, 'messages', n.messages,
		'window_days', p_window)
	FROM recent n, w
	WHERE EXISTS (SELECT 1 FROM dmarcd.reports k
		WHERE k.domain = n.domain AND k.org_name <> n.org_name
		    AND k.payload_sha256 IS NOT NULL
		    AND k.begin_time < w.since)
$$;

GRANT EXECUTE ON FUNCTION dmarcd.alert_scan(timestamptz, bigint, numeric,
    integer) TO dmarcd_ingest;
-- The reader sees what was raised and its delivery, not last_error.
GRANT SELECT (next_attempt_at, given_up_at) ON dmarcd.alerts
    TO dmarcd_reader;
