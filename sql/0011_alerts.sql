-- 0011_alerts: what `dmarcd alerts` raises and how its delivery is kept
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
--   unauthorised_sender  key: the sender (dmarcd.sender_stats: a
--                        platform, an organizational domain or a
--                        network). Classed unauthorised over the days
--                        [p_now's day - p_window, p_now's day], it sent
--                        at least p_min_messages messages then, and it
--                        sent none in the 90 days before.
--   aligned_share_drop   key: the ISO week of the last complete day
--                        (2026-W05). The aligned share of legitimate mail
--                        (senders classed aligned or unaligned, as
--                        dmarcd.readiness() counts it) over the 7
--                        complete days before p_now's day is lower than
--                        over the 30 days before those by more than
--                        p_drop percentage points, with at least
--                        p_min_messages legitimate messages in each. Not
--                        raised again for the domain while an earlier one
--                        is less than 30 days old: the days of a drop stay
--                        in the comparison for that long.
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
		SELECT p_now - make_interval(days => p_window) AS since,
		    dmarcd.day_of(p_now) AS today,
		    dmarcd.day_of(p_now) - p_window AS since_day
	),
	recent AS (
		-- Reporters seen in the window that were not seen before it.
		SELECT r.domain, r.org_name, min(r.begin_time) AS first_begin,
		    count(*) AS reports, sum(r.message_count) AS messages
		FROM dmarcd.reports r, w
		WHERE r.payload_sha256 IS NOT NULL
		    AND r.begin_time >= w.since AND r.begin_time <= p_now
		    AND NOT EXISTS (SELECT 1 FROM dmarcd.reports o
			WHERE o.domain = r.domain AND o.org_name = r.org_name
			    AND o.begin_time < w.since)
		GROUP BY r.domain, r.org_name
	),
	new_reporters AS (
		SELECT n.domain, 'new_reporter'::text AS kind,
		    n.org_name AS key,
		    jsonb_build_object('org_name', n.org_name,
			'first_report_begin', to_char(n.first_begin AT TIME
			    ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
			'reports', n.reports, 'messages', n.messages,
			'window_days', p_window) AS detail
		FROM recent n, w
		WHERE EXISTS (SELECT 1 FROM dmarcd.reports k
			WHERE k.domain = n.domain AND k.org_name <> n.org_name
			    AND k.payload_sha256 IS NOT NULL
			    AND k.begin_time < w.since)
	),
	-- Domains with mail in the days any kind looks at.
	active AS (
		SELECT DISTINCT r.domain FROM dmarcd.rollup_daily r, w
		WHERE r.day >= least(w.since_day, w.today - 37)
		    AND r.day <= w.today
	),
	unauthorised AS (
		SELECT a.domain, 'unauthorised_sender'::text AS kind,
		    s.sender AS key,
		    jsonb_strip_nulls(jsonb_build_object('sender', s.sender,
			'platform', s.platform, 'messages', s.messages,
			'unauthorised', s.unauthorised, 'ips', s.ips,
			'first_day', s.first_day, 'last_day', s.last_day,
			'top_ips', s.top_ips, 'window_days', p_window))
			AS detail
		FROM active a, w
		CROSS JOIN LATERAL dmarcd.sender_stats(a.domain, w.since_day,
		    w.today + 1) s
		WHERE s.class = 'unauthorised'
		    AND s.messages >= p_min_messages
		    AND NOT EXISTS (SELECT 1 FROM dmarcd.source_rows(a.domain,
			w.since_day - 90, w.since_day) o
			WHERE o.sender = s.sender)
	),
	-- Legitimate mail (senders classed aligned or unaligned) and how
	-- much of it passed, over the 7 complete days before today and the
	-- 30 days before those.
	shares AS (
		SELECT a.domain, rc.legit AS r_legit, rc.pass AS r_pass,
		    pv.legit AS p_legit, pv.pass AS p_pass
		FROM active a, w
		CROSS JOIN LATERAL (SELECT coalesce(sum(s.messages), 0)
			AS legit, coalesce(sum(s.dmarc_pass), 0) AS pass
		    FROM dmarcd.sender_stats(a.domain, w.today - 7, w.today) s
		    WHERE s.class IN ('aligned', 'unaligned')) rc
		CROSS JOIN LATERAL (SELECT coalesce(sum(s.messages), 0)
			AS legit, coalesce(sum(s.dmarc_pass), 0) AS pass
		    FROM dmarcd.sender_stats(a.domain, w.today - 37,
			w.today - 7) s
		    WHERE s.class IN ('aligned', 'unaligned')) pv
		WHERE rc.legit >= p_min_messages AND pv.legit >= p_min_messages
	),
	drops AS (
		SELECT sh.*, 100.0 * sh.r_pass / sh.r_legit AS recent_share,
		    100.0 * sh.p_pass / sh.p_legit AS previous_share
		FROM shares sh
	),
	share_drops AS (
		SELECT d.domain, 'aligned_share_drop'::text AS kind,
		    to_char(w.today - 1, 'IYYY-"W"IW') AS key,
		    jsonb_build_object(
			'recent_share', round(d.recent_share, 1),
			'previous_share', round(d.previous_share, 1),
			'drop_points', round(d.previous_share -
			    d.recent_share, 1),
			'recent_messages', d.r_legit,
			'recent_aligned', d.r_pass,
			'previous_messages', d.p_legit,
			'previous_aligned', d.p_pass,
			'recent_days', jsonb_build_array(w.today - 7,
			    w.today - 1),
			'previous_days', jsonb_build_array(w.today - 37,
			    w.today - 8)) AS detail
		FROM drops d, w
		WHERE d.previous_share - d.recent_share > p_drop
		    -- One drop, one alert: none while an earlier one is
		    -- still in the 30 days compared against.
		    AND NOT EXISTS (SELECT 1 FROM dmarcd.alerts x
			WHERE x.domain = d.domain
			    AND x.kind = 'aligned_share_drop'
			    AND x.raised_at > p_now - interval '30 days')
	)
	SELECT * FROM new_reporters
	UNION ALL SELECT * FROM unauthorised
	UNION ALL SELECT * FROM share_drops
$$;

GRANT EXECUTE ON FUNCTION dmarcd.alert_scan(timestamptz, bigint, numeric,
    integer) TO dmarcd_ingest;
-- The reader sees what was raised and its delivery, not last_error.
GRANT SELECT (next_attempt_at, given_up_at) ON dmarcd.alerts
    TO dmarcd_reader;
