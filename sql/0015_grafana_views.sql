-- 0015_grafana_views: schema dmarcd_v1, the stable public interface that
-- Grafana (contrib/grafana) and your own SQL read (docs/views.md).
--
-- Schema dmarcd holds dmarcd's tables and functions, and they change with
-- dmarcd (rollup_daily is appended to and compacted, columns are added,
-- functions are replaced). dmarcd_v1 holds views over them whose columns
-- keep their names, types and meaning: a later migration only adds
-- columns (at the end) and views; a change that would break a query gets
-- a new schema, dmarcd_v2, beside this one.
--
-- Role dmarcd_grafana (NOLOGIN, like dmarcd_ingest and dmarcd_reader in
-- 0002) may read these views and nothing else: no table of dmarcd, no
-- raw mail, no IMAP state, not even USAGE on schema dmarcd. The views run
-- with their owner's rights (the role that ran dmarcd migrate), and what
-- they need of dmarcd's functions (the senders' classes, the readiness
-- verdict) goes through the three SECURITY DEFINER functions below,
-- which hand out exactly what the views show. dmarcd_reader may read the
-- views too.
--
-- Every count is bigint, every share numeric between 0 and 1 rounded to
-- 4 places, days are UTC dates and `time` is that day's UTC midnight as
-- timestamptz (for Grafana's $__timeFilter and $__timeGroupAlias).

CREATE SCHEMA dmarcd_v1;

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dmarcd_grafana')
	THEN
		CREATE ROLE dmarcd_grafana NOLOGIN;
	END IF;
END $$;

-- v1_source_rows - dmarcd.source_rows() of one domain and day, with the
-- owner's rights: the views' per-day senders. A sender depends only on
-- its row's key, not on the days read together, so per day is the same
-- as over a window, and a view filtered on days calls it for those days
-- only.
CREATE FUNCTION dmarcd.v1_source_rows(p_domain text, p_day date)
RETURNS TABLE (day date, source_ip inet, header_from text,
    disposition text, auth smallint, receiver_pass boolean,
    dkim_domain text, spf_domain text, override text, messages bigint,
    class text, sender text, platform text, ptr text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, dmarcd, pg_temp
AS $$
	SELECT * FROM dmarcd.source_rows(p_domain, p_day, p_day + 1)
$$;

-- v1_readiness - dmarcd.readiness() over the 30 complete days before
-- now, as `dmarcd readiness DOMAIN` and the API judge it by default.
CREATE FUNCTION dmarcd.v1_readiness(p_domain text) RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, dmarcd, pg_temp
AS $$
	SELECT dmarcd.readiness(p_domain, 30, now())
$$;

-- sender_class - a sender's class over any days from its messages of
-- each class (dmarcd.sender_class: the class of most of its mail; ties
-- go aligned, unaligned, forwarded). Panels add sender_days up over the
-- time range and call this.
CREATE FUNCTION dmarcd_v1.sender_class(aligned bigint, forwarded bigint,
    unaligned bigint, unauthorised bigint) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, dmarcd, pg_temp AS $$
	SELECT dmarcd.sender_class(aligned, forwarded, unaligned,
	    unauthorised)
$$;

-- The domains: every policy domain with an aggregate or failure report.
CREATE VIEW dmarcd.v1_domain_list AS
	SELECT domain FROM dmarcd.reports GROUP BY domain
	UNION
	SELECT domain FROM dmarcd.failure_reports GROUP BY domain;

-- domain_days: per domain and UTC day, its messages and how they
-- authenticated (dmarcd's own verdict, from the auth bits; receiver_pass
-- is the receivers'). rollup_daily added up by domain and day.
CREATE VIEW dmarcd_v1.domain_days AS
	SELECT r.domain, r.day,
	    (r.day::timestamp AT TIME ZONE 'UTC') AS time,
	    sum(r.messages)::bigint AS messages,
	    coalesce(sum(r.messages) FILTER (WHERE r.auth & 3 <> 0), 0)::bigint
		AS dmarc_pass,
	    coalesce(sum(r.messages) FILTER (WHERE r.auth & 3 = 0), 0)::bigint
		AS dmarc_fail,
	    coalesce(sum(r.messages) FILTER (WHERE r.auth & 1 <> 0), 0)::bigint
		AS dkim_aligned,
	    coalesce(sum(r.messages) FILTER (WHERE r.auth & 2 <> 0), 0)::bigint
		AS spf_aligned,
	    coalesce(sum(r.messages) FILTER (WHERE r.auth & 4 <> 0), 0)::bigint
		AS dkim_pass,
	    coalesce(sum(r.messages) FILTER (WHERE r.auth & 8 <> 0), 0)::bigint
		AS spf_pass,
	    coalesce(sum(r.messages) FILTER (WHERE r.dkim_aligned OR
		r.spf_aligned), 0)::bigint AS receiver_pass,
	    coalesce(sum(r.messages) FILTER (WHERE
		r.disposition = 'quarantine'), 0)::bigint AS quarantined,
	    coalesce(sum(r.messages) FILTER (WHERE
		r.disposition = 'reject'), 0)::bigint AS rejected,
	    round(coalesce(sum(r.messages) FILTER (WHERE r.auth & 3 <> 0),
		0)::numeric / nullif(sum(r.messages), 0), 4)
		AS dmarc_pass_share
	FROM dmarcd.rollup_daily r
	GROUP BY r.domain, r.day
	HAVING sum(r.messages) <> 0;

-- readiness: one row per domain, the verdict of dmarcd readiness over
-- the 30 complete days before now.
CREATE VIEW dmarcd_v1.readiness AS
	SELECT d.domain, j->'verdict'->>'status' AS status,
	    j->'verdict'->>'next' AS next_step,
	    j->'verdict'->>'advice' AS advice,
	    j->>'current' AS current_step,
	    (j->>'days')::integer AS days,
	    (j->>'since')::date AS since, (j->>'until')::date AS until,
	    (j->>'data_days')::integer AS data_days,
	    (j->'legitimate'->>'messages')::bigint AS legitimate,
	    (j->'legitimate'->>'aligned')::bigint AS legitimate_aligned,
	    (j->'legitimate'->>'share')::numeric AS aligned_share,
	    (j->'forwarded'->>'messages')::bigint AS forwarded,
	    (j->'forwarded'->>'failing')::bigint AS forwarded_failing,
	    (j->'unauthorised'->>'messages')::bigint AS unauthorised,
	    (j->'impact'->>'messages_per_day')::numeric AS impact_per_day,
	    jsonb_array_length(j->'blockers') AS blockers,
	    jsonb_array_length(j->'minor') AS minor,
	    (j->'subdomains'->>'failing')::bigint AS subdomains_failing,
	    j->'policy'->>'p' AS p, j->'policy'->>'sp' AS sp,
	    j->'policy'->>'np' AS np, (j->'policy'->>'pct')::integer AS pct
	FROM dmarcd.v1_domain_list d
	CROSS JOIN LATERAL dmarcd.v1_readiness(d.domain) j;

-- readiness_days: readiness's trend, the legitimate mail per day.
CREATE VIEW dmarcd_v1.readiness_days AS
	SELECT d.domain, (t->>'day')::date AS day,
	    ((t->>'day')::date::timestamp AT TIME ZONE 'UTC') AS time,
	    (t->>'legitimate')::bigint AS legitimate,
	    (t->>'aligned')::bigint AS aligned,
	    (t->>'share')::numeric AS aligned_share,
	    (t->>'unauthorised')::bigint AS unauthorised
	FROM dmarcd.v1_domain_list d
	CROSS JOIN LATERAL dmarcd.v1_readiness(d.domain) j
	CROSS JOIN LATERAL jsonb_array_elements(j->'trend') t;

-- readiness_blockers: the legitimate senders some of whose mail fails,
-- blockers and minor ones, with their fix.
CREATE VIEW dmarcd_v1.readiness_blockers AS
	SELECT d.domain, b.minor, b.j->>'sender' AS sender,
	    b.j->>'platform' AS platform, b.j->>'class' AS class,
	    (b.j->>'messages')::bigint AS messages,
	    (b.j->>'failing')::bigint AS failing,
	    (b.j->>'failing_per_day')::numeric AS failing_per_day,
	    b.j->'fix'->>'summary' AS fix
	FROM dmarcd.v1_domain_list d
	CROSS JOIN LATERAL dmarcd.v1_readiness(d.domain) r
	CROSS JOIN LATERAL (
		SELECT false AS minor, x AS j
		FROM jsonb_array_elements(r->'blockers') x
		UNION ALL
		SELECT true, x FROM jsonb_array_elements(r->'minor') x) b;

-- domains: one row per domain, over all its days (what the time range
-- selects is in domain_days), with the policy it publishes and its
-- readiness.
CREATE VIEW dmarcd_v1.domains AS
	SELECT d.domain, t.first_day, t.last_day,
	    coalesce(t.days, 0) AS days,
	    coalesce(t.messages, 0) AS messages,
	    coalesce(t.dmarc_pass, 0) AS dmarc_pass,
	    round(t.dmarc_pass::numeric / nullif(t.messages, 0), 4)
		AS dmarc_pass_share,
	    coalesce(t.dkim_aligned, 0) AS dkim_aligned,
	    coalesce(t.spf_aligned, 0) AS spf_aligned,
	    coalesce(rp.reports, 0) AS reports,
	    coalesce(rp.reporters, 0) AS reporters,
	    rp.last_report, rp.last_ingested,
	    coalesce(f.failure_reports, 0) AS failure_reports,
	    f.last_failure,
	    j->'verdict'->>'status' AS readiness,
	    (j->'legitimate'->>'share')::numeric AS aligned_share,
	    j->'verdict'->>'next' AS next_step,
	    j->'policy'->>'p' AS p, j->'policy'->>'sp' AS sp,
	    j->'policy'->>'np' AS np, (j->'policy'->>'pct')::integer AS pct,
	    j->'policy'->>'adkim' AS adkim, j->'policy'->>'aspf' AS aspf,
	    j->'policy'->>'testing' AS testing,
	    (j->'policy'->>'seen')::timestamptz AS policy_seen
	FROM dmarcd.v1_domain_list d
	LEFT JOIN (SELECT domain, min(day) AS first_day, max(day) AS last_day,
		count(*) AS days, sum(messages)::bigint AS messages,
		sum(dmarc_pass)::bigint AS dmarc_pass,
		sum(dkim_aligned)::bigint AS dkim_aligned,
		sum(spf_aligned)::bigint AS spf_aligned
	    FROM dmarcd_v1.domain_days GROUP BY domain) t
	    ON t.domain = d.domain
	-- Reports counted once, whatever their revisions.
	LEFT JOIN (SELECT domain,
		count(*) FILTER (WHERE revision = 1) AS reports,
		count(DISTINCT org_name) AS reporters,
		max(end_time) AS last_report, max(ingested_at) AS last_ingested
	    FROM dmarcd.reports WHERE payload_sha256 IS NOT NULL
	    GROUP BY domain) rp ON rp.domain = d.domain
	LEFT JOIN (SELECT domain, count(*) AS failure_reports,
		max(coalesce(arrival_time, ingested_at)) AS last_failure
	    FROM dmarcd.failure_reports GROUP BY domain) f
	    ON f.domain = d.domain
	CROSS JOIN LATERAL dmarcd.v1_readiness(d.domain) j;

-- source_days: per domain, day and source, what dmarcd.source_days has
-- (the sender, its platform, the row's class and verdicts), read one day
-- at a time: a filter on domain and day (or time) reads those days only.
CREATE VIEW dmarcd_v1.source_days AS
	SELECT k.domain, k.day, (k.day::timestamp AT TIME ZONE 'UTC') AS time,
	    s.sender, s.platform, s.class, s.source_ip, s.ptr,
	    s.header_from, s.disposition,
	    s.auth & 3 <> 0 AS dmarc_pass, s.receiver_pass,
	    s.auth & 1 <> 0 AS dkim_aligned, s.auth & 2 <> 0 AS spf_aligned,
	    s.auth & 4 <> 0 AS dkim_pass, s.auth & 8 <> 0 AS spf_pass,
	    s.auth & 64 <> 0 AS guessed, s.dkim_domain, s.spf_domain,
	    s.override, s.messages
	FROM (SELECT domain, day FROM dmarcd.rollup_daily
	    GROUP BY domain, day) k
	CROSS JOIN LATERAL dmarcd.v1_source_rows(k.domain, k.day) s;

-- sender_days: per domain, day and sender, its messages by verdict and
-- by class. A sender's class over several days is
-- dmarcd_v1.sender_class() of the sums of aligned, forwarded, unaligned
-- and unauthorised.
CREATE VIEW dmarcd_v1.sender_days AS
	SELECT k.domain, k.day, (k.day::timestamp AT TIME ZONE 'UTC') AS time,
	    s.sender, max(s.platform) AS platform,
	    sum(s.messages)::bigint AS messages,
	    coalesce(sum(s.messages) FILTER (WHERE s.auth & 3 <> 0), 0)::bigint
		AS dmarc_pass,
	    coalesce(sum(s.messages) FILTER (WHERE s.auth & 3 = 0), 0)::bigint
		AS dmarc_fail,
	    coalesce(sum(s.messages) FILTER (WHERE s.receiver_pass),
		0)::bigint AS receiver_pass,
	    coalesce(sum(s.messages) FILTER (WHERE s.auth & 1 <> 0), 0)::bigint
		AS dkim_aligned,
	    coalesce(sum(s.messages) FILTER (WHERE s.auth & 2 <> 0), 0)::bigint
		AS spf_aligned,
	    coalesce(sum(s.messages) FILTER (WHERE s.class = 'aligned'),
		0)::bigint AS aligned,
	    coalesce(sum(s.messages) FILTER (WHERE s.class = 'forwarded'),
		0)::bigint AS forwarded,
	    coalesce(sum(s.messages) FILTER (WHERE s.class = 'unaligned'),
		0)::bigint AS unaligned,
	    coalesce(sum(s.messages) FILTER (WHERE s.class = 'unauthorised'),
		0)::bigint AS unauthorised,
	    count(DISTINCT s.source_ip) AS sources
	FROM (SELECT domain, day FROM dmarcd.rollup_daily
	    GROUP BY domain, day) k
	CROSS JOIN LATERAL dmarcd.v1_source_rows(k.domain, k.day) s
	GROUP BY k.domain, k.day, s.sender;

-- failure_reports: one row per failure (forensic) report, its fields
-- as stored, without the message body (kept only with keep_bodies: it is
-- the mail of someone else, not Grafana's).
CREATE VIEW dmarcd_v1.failure_reports AS
	SELECT f.domain, f.id,
	    coalesce(f.arrival_time, f.ingested_at) AS time,
	    (coalesce(f.arrival_time, f.ingested_at) AT TIME ZONE 'UTC')::date
		AS day,
	    f.arrival_time, f.ingested_at, f.arf, f.feedback_type,
	    f.user_agent, f.version, f.auth_failure, f.identity_alignment,
	    f.delivery_result, f.source_ip, f.source_ip_raw, f.source_port,
	    f.reporting_mta, f.original_mail_from, f.original_envelope_id,
	    f.original_rcpt_to, f.incidents, f.dkim_domain, f.dkim_identity,
	    f.dkim_selector, f.spf_dns, f.reported_domains, f.reported_uri,
	    f.authentication_results, f.h_from, f.h_to, f.h_subject, f.h_date,
	    f.h_message_id, f.h_dkim_signature, f.h_authentication_results,
	    f.warnings, f.duplicates, f.source
	FROM dmarcd.failure_reports f;

-- reports: one row per aggregate report stored (each revision is a row;
-- latest says which is the newest), with its lag: from the end of the
-- period it covers to when dmarcd stored it.
CREATE VIEW dmarcd_v1.reports AS
	SELECT r.domain, r.id, r.ingested_at AS time, r.org_name, r.email,
	    r.report_id, r.begin_time, r.end_time, r.ingested_at,
	    r.record_count, r.message_count, r.warning_count, r.duplicates,
	    r.revision, r.revision = max(r.revision) OVER (PARTITION BY
		r.domain, r.org_name, r.report_id, r.begin_time, r.end_time)
		AS latest,
	    r.schema, r.generator, r.source,
	    r.ingested_at - r.end_time AS lag,
	    extract(epoch FROM r.ingested_at - r.end_time)::double precision
		AS lag_seconds
	FROM dmarcd.reports r
	WHERE r.payload_sha256 IS NOT NULL;

-- rejected_inputs: inputs refused (the reason, not the bytes).
CREATE VIEW dmarcd_v1.rejected_inputs AS
	SELECT x.id, x.last_seen AS time, x.first_seen, x.last_seen,
	    x.attempts, x.error_code, x.error, x.source, x.location,
	    x.resolved_at, x.resolved_at IS NOT NULL AS resolved
	FROM dmarcd.rejected_inputs x;

-- ingest_log: one row per input dmarcd ingest, fetch or run handled.
CREATE VIEW dmarcd_v1.ingest_log AS
	SELECT l.id, l.at AS time, l.source, l.message_id, l.status,
	    l.reports, l.failure_reports, l.duplicates, l.revisions,
	    l.rejected, l.records, l.messages, l.duration_ms, l.error
	FROM dmarcd.ingest_log l;

-- mailboxes: each IMAP mailbox dmarcd fetch or run reads, and when it
-- was last read to its end (nothing of its UIDs or credentials).
CREATE VIEW dmarcd_v1.mailboxes AS
	SELECT m.account, m.mailbox, m.last_fetch_at, m.updated_at,
	    extract(epoch FROM now() - m.last_fetch_at)::double precision
		AS seconds_since_fetch
	FROM dmarcd.imap_mailboxes m;

-- Rights: the views and the functions above, nothing more.
REVOKE ALL ON FUNCTION dmarcd.v1_source_rows(text, date),
    dmarcd.v1_readiness(text),
    dmarcd_v1.sender_class(bigint, bigint, bigint, bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION dmarcd.v1_source_rows(text, date),
    dmarcd.v1_readiness(text),
    dmarcd_v1.sender_class(bigint, bigint, bigint, bigint)
    TO dmarcd_grafana, dmarcd_reader;
GRANT USAGE ON SCHEMA dmarcd_v1 TO dmarcd_grafana, dmarcd_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA dmarcd_v1
    TO dmarcd_grafana, dmarcd_reader;
-- Views a later migration adds (columns and views are only added) are
-- readable as soon as they exist.
ALTER DEFAULT PRIVILEGES IN SCHEMA dmarcd_v1
    GRANT SELECT ON TABLES TO dmarcd_grafana, dmarcd_reader;

-- Every SECURITY DEFINER function names pg_temp last in its search_path:
-- left out, PostgreSQL searches the caller's temporary schema first, and
-- any role may create temporary tables there to shadow a table the
-- function names without its schema (the functions of 0001, 0005, 0010
-- and 0014 name none, but the rule is the rule).
ALTER FUNCTION dmarcd.ensure_month(timestamptz)
    SET search_path = pg_catalog, dmarcd, pg_temp;
ALTER FUNCTION dmarcd.report_raw(text, bigint, integer)
    SET search_path = pg_catalog, dmarcd, pg_temp;
ALTER FUNCTION dmarcd.rollup_compact(integer, interval)
    SET search_path = pg_catalog, dmarcd, pg_temp;
