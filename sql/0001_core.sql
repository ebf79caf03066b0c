-- 0001_core: the tables of dmarcd.
--
-- Everything lives in schema dmarcd. Every table that holds a domain's data
-- carries the policy domain in each primary and unique key, so the schema
-- can be distributed by domain on Citus unchanged (docs/scaling.md).
-- Counts are bigint everywhere.

CREATE SCHEMA IF NOT EXISTS dmarcd;

-- Reporting organisations. Small; a reference table on Citus.
CREATE TABLE dmarcd.reporters (
	id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	org_name	text NOT NULL,
	email		text NOT NULL DEFAULT '',
	extra_contact_info text,
	first_seen	timestamptz NOT NULL DEFAULT now(),
	UNIQUE (org_name, email)
);

-- The raw bytes of every input a report or a rejection came from, as
-- received, compressed: inputs that are already gzip or zip are kept as
-- they are (encoding 'identity'), others are gzipped ('gzip'). Stored in
-- chunks so that neither side ever holds a whole input in memory.
-- domain is the policy domain of the reports in it, '' for rejected input.
CREATE TABLE dmarcd.raw_inputs (
	domain		text NOT NULL,
	sha256		bytea NOT NULL,		-- of the bytes as received
	size		bigint NOT NULL,	-- bytes as received
	stored_size	bigint NOT NULL,
	encoding	text NOT NULL CHECK (encoding IN ('identity', 'gzip')),
	source		text,
	received_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (domain, sha256)
);

CREATE TABLE dmarcd.raw_chunks (
	domain		text NOT NULL,
	sha256		bytea NOT NULL,
	seq		integer NOT NULL,
	data		bytea NOT NULL,
	PRIMARY KEY (domain, sha256, seq)
);
-- Already compressed: do not let TOAST try again.
ALTER TABLE dmarcd.raw_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- One row per aggregate report. Its key is (org_name, report_id, domain,
-- begin_time, end_time); the same key with the same payload again is a
-- duplicate (counted in duplicates), the same key with another payload a
-- revision (revision > 1, revision_of the first one), never merged.
CREATE TABLE dmarcd.reports (
	domain		text NOT NULL,
	id		bigint GENERATED ALWAYS AS IDENTITY,
	reporter_id	bigint NOT NULL,
	org_name	text NOT NULL,
	report_id	text NOT NULL,
	begin_time	timestamptz NOT NULL,
	end_time	timestamptz NOT NULL,
	payload_sha256	bytea,			-- NULL only while being stored
	payload_bytes	bigint NOT NULL DEFAULT 0,
	schema		text NOT NULL,		-- rfc7489 | dmarc-2.0
	namespace	text,
	version		text,
	email		text,
	extra_contact_info text,
	generator	text,
	errors		text[] NOT NULL DEFAULT '{}',
	record_count	bigint NOT NULL DEFAULT 0,
	message_count	bigint NOT NULL DEFAULT 0,
	warning_count	bigint NOT NULL DEFAULT 0,
	duplicates	bigint NOT NULL DEFAULT 0,
	last_duplicate_at timestamptz,
	revision	integer NOT NULL DEFAULT 1,
	revision_of	bigint,
	raw_sha256	bytea,
	source		text,			-- file, or mail Message-ID
	location	text,			-- where in the input
	ingested_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (domain, id),
	UNIQUE (domain, org_name, report_id, begin_time, end_time,
	    payload_sha256)
);
CREATE INDEX reports_time ON dmarcd.reports (domain, begin_time);
CREATE INDEX reports_raw ON dmarcd.reports (domain, raw_sha256);

-- policy_published, one per report, values normalised; *_raw when the
-- report spelled it differently.
CREATE TABLE dmarcd.policy_published (
	domain		text NOT NULL,
	report		bigint NOT NULL,
	adkim		text,
	aspf		text,
	p		text,
	sp		text,
	np		text,
	pct		integer,
	fo		text,
	testing		text,
	discovery_method text,
	raw		jsonb,
	PRIMARY KEY (domain, report)
);

-- Records, partitioned by month of their report's begin_time. Partitions
-- are made on demand by dmarcd.ensure_month().
CREATE TABLE dmarcd.records (
	domain		text NOT NULL,
	report_begin	timestamptz NOT NULL,
	report		bigint NOT NULL,
	idx		bigint NOT NULL,	-- 1-based within the report
	source_ip	inet,
	source_ip_raw	text,			-- only when not a valid address
	count		bigint NOT NULL,
	disposition	text,
	dkim		text,			-- policy_evaluated: pass | fail
	spf		text,
	reasons		text[],
	reason_comments	text[],
	header_from	text,
	envelope_from	text,
	envelope_to	text,
	PRIMARY KEY (domain, report_begin, report, idx)
) PARTITION BY RANGE (report_begin);

CREATE TABLE dmarcd.dkim_results (
	domain		text NOT NULL,
	report_begin	timestamptz NOT NULL,
	report		bigint NOT NULL,
	idx		bigint NOT NULL,
	n		smallint NOT NULL,
	auth_domain	text,
	selector	text,
	result		text,
	human_result	text,
	PRIMARY KEY (domain, report_begin, report, idx, n)
) PARTITION BY RANGE (report_begin);

CREATE TABLE dmarcd.spf_results (
	domain		text NOT NULL,
	report_begin	timestamptz NOT NULL,
	report		bigint NOT NULL,
	idx		bigint NOT NULL,
	n		smallint NOT NULL,
	auth_domain	text,
	scope		text,
	result		text,
	human_result	text,
	PRIMARY KEY (domain, report_begin, report, idx, n)
) PARTITION BY RANGE (report_begin);

-- Every repair the parser made: nothing is repaired silently.
CREATE TABLE dmarcd.report_warnings (
	domain		text NOT NULL,
	report		bigint NOT NULL,
	n		integer NOT NULL,
	line		bigint,
	text		text NOT NULL,
	count		bigint NOT NULL,
	PRIMARY KEY (domain, report, n)
);

-- Failure (forensic) reports. Key: the input they came in and where in it.
CREATE TABLE dmarcd.failure_reports (
	domain		text NOT NULL,		-- first Reported-Domain, lower case
	id		bigint GENERATED ALWAYS AS IDENTITY,
	raw_sha256	bytea NOT NULL,
	location	text NOT NULL DEFAULT '',
	arf		boolean NOT NULL,
	feedback_type	text,
	user_agent	text,
	version		text,
	auth_failure	text,
	identity_alignment text,
	delivery_result	text,
	source_ip	inet,
	source_ip_raw	text,
	source_port	text,
	arrival_date	text,
	arrival_time	timestamptz,
	original_mail_from text,
	original_envelope_id text,
	reporting_mta	text,
	incidents	bigint NOT NULL DEFAULT 1,
	dkim_domain	text,
	dkim_identity	text,
	dkim_selector	text,
	spf_dns		text,
	reported_domains text[],
	original_rcpt_to text[],
	authentication_results text[],
	reported_uri	text[],
	h_from		text,
	h_to		text,
	h_subject	text,
	h_date		text,
	h_message_id	text,
	h_dkim_signature text[],
	h_authentication_results text[],
	body		text,			-- only with keep_bodies
	warnings	text[],
	duplicates	bigint NOT NULL DEFAULT 0,
	source		text,
	ingested_at	timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (domain, id),
	UNIQUE (domain, raw_sha256, location)
);
CREATE INDEX failure_reports_time ON dmarcd.failure_reports
    (domain, arrival_time);

-- Inputs that were refused, with the reason; the raw bytes are in
-- raw_inputs under domain ''. Coordinator-local on Citus.
CREATE TABLE dmarcd.rejected_inputs (
	id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	raw_sha256	bytea NOT NULL,
	location	text NOT NULL DEFAULT '',
	source		text,
	error_code	text NOT NULL,
	error		text NOT NULL,
	first_seen	timestamptz NOT NULL DEFAULT now(),
	last_seen	timestamptz NOT NULL DEFAULT now(),
	attempts	bigint NOT NULL DEFAULT 1,
	resolved_at	timestamptz,		-- a retry stored it
	UNIQUE (raw_sha256, location)
);

-- One row per input handled by dmarcd ingest. Coordinator-local.
CREATE TABLE dmarcd.ingest_log (
	id		bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	at		timestamptz NOT NULL DEFAULT now(),
	source		text NOT NULL,
	message_id	text,
	raw_sha256	bytea,
	status		text NOT NULL,	-- stored|duplicate|revision|rejected|mixed|empty
	reports		bigint NOT NULL DEFAULT 0,
	failure_reports	bigint NOT NULL DEFAULT 0,
	duplicates	bigint NOT NULL DEFAULT 0,
	revisions	bigint NOT NULL DEFAULT 0,
	rejected	bigint NOT NULL DEFAULT 0,
	records		bigint NOT NULL DEFAULT 0,
	messages	bigint NOT NULL DEFAULT 0,
	duration_ms	double precision NOT NULL,
	error		text
);
CREATE INDEX ingest_log_raw ON dmarcd.ingest_log (raw_sha256);

-- The daily rollup the analytics and Grafana read. A report spanning
-- several UTC days is apportioned by the overlap of [begin, end) with each
-- day, in whole messages that add up to the report's count exactly.
CREATE TABLE dmarcd.rollup_daily (
	domain		text NOT NULL,
	day		date NOT NULL,
	source_ip	inet,
	header_from	text NOT NULL,
	dkim_aligned	boolean NOT NULL,
	spf_aligned	boolean NOT NULL,
	disposition	text NOT NULL,
	messages	bigint NOT NULL,
	CONSTRAINT rollup_daily_key UNIQUE NULLS NOT DISTINCT (domain, day,
	    source_ip, header_from, dkim_aligned, spf_aligned, disposition)
);

-- ensure_month - the partitions of records, dkim_results and spf_results
-- for the month holding t. CREATE TABLE + ATTACH PARTITION: attaching takes
-- only SHARE UPDATE EXCLUSIVE on the parent, so readers and other writers
-- go on; two collectors racing for the same month are both fine.
CREATE FUNCTION dmarcd.ensure_month(t timestamptz) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, dmarcd AS $$
DECLARE
	lo timestamptz := date_trunc('month', t AT TIME ZONE 'UTC')
	    AT TIME ZONE 'UTC';
	hi timestamptz := lo + interval '1 month';
	suffix text := to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
	parent text;
BEGIN
	FOREACH parent IN ARRAY ARRAY['records', 'dkim_results',
	    'spf_results'] LOOP
		IF to_regclass('dmarcd.' || parent || '_' || suffix)
		    IS NOT NULL THEN
			CONTINUE;
		END IF;
		BEGIN
			EXECUTE format('CREATE TABLE dmarcd.%I (LIKE dmarcd.%I '
			    'INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
			    parent || '_' || suffix, parent);
			EXECUTE format('ALTER TABLE dmarcd.%I ADD CHECK '
			    '(report_begin >= %L AND report_begin < %L)',
			    parent || '_' || suffix, lo, hi);
			EXECUTE format('ALTER TABLE dmarcd.%I ATTACH PARTITION '
			    'dmarcd.%I FOR VALUES FROM (%L) TO (%L)', parent,
			    parent || '_' || suffix, lo, hi);
		EXCEPTION WHEN duplicate_table OR unique_violation THEN
			NULL;	-- another collector made it meanwhile
		END;
	END LOOP;
END $$;

-- report_days - the UTC days a report's [begin, end) overlaps: for each,
-- the overlap as seconds [lo, hi) from begin, and the span. A report's
-- count n goes to a day as floor(n * hi / total) - floor(n * lo / total):
-- whole messages that add up to n exactly. A span of zero or less, or of
-- more than 62 days (implausible), counts as one second at begin.
CREATE FUNCTION dmarcd.report_days(b timestamptz, e timestamptz)
RETURNS TABLE (day date, lo bigint, hi bigint, total bigint)
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	WITH s AS (SELECT extract(epoch FROM b)::bigint AS b,
	    extract(epoch FROM e)::bigint AS e),
	t AS (SELECT s.b, CASE WHEN s.e - s.b <= 0 OR s.e - s.b > 62 * 86400
	    THEN s.b + 1 ELSE s.e END AS e FROM s)
	SELECT (to_timestamp(d) AT TIME ZONE 'UTC')::date,
	    greatest(d, t.b) - t.b, least(d + 86400, t.e) - t.b, t.e - t.b
	FROM t, generate_series(t.b - (((t.b % 86400) + 86400) % 86400),
	    t.e - 1, 86400) AS d
$$;

-- rollup_add - add the given reports' records to rollup_daily (sign 1),
-- or take them away again (-1: a revision replaces them). The days of
-- each report are worked out once (d), not once per record.
CREATE FUNCTION dmarcd.rollup_add(domains text[], ids bigint[],
    begins timestamptz[], sign integer DEFAULT 1) RETURNS void
LANGUAGE sql AS $$
	WITH d AS MATERIALIZED (
		SELECT k.domain, k.id, k.begin_time, x.day, x.lo, x.hi, x.total
		FROM unnest(domains, ids, begins) AS k(domain, id, begin_time)
		JOIN dmarcd.reports rp ON rp.domain = k.domain AND rp.id = k.id
		CROSS JOIN LATERAL dmarcd.report_days(rp.begin_time,
		    rp.end_time) x)
	INSERT INTO dmarcd.rollup_daily AS t (domain, day, source_ip,
	    header_from, dkim_aligned, spf_aligned, disposition, messages)
	SELECT r.domain, d.day, r.source_ip, coalesce(lower(r.header_from), ''),
	    coalesce(r.dkim = 'pass', false), coalesce(r.spf = 'pass', false),
	    coalesce(r.disposition, ''),
	    sign * sum(CASE WHEN d.lo = 0 AND d.hi = d.total THEN r.count ELSE
	        (div(r.count::numeric * d.hi, d.total) -
	        div(r.count::numeric * d.lo, d.total))::bigint END)
	FROM d JOIN dmarcd.records r ON r.domain = d.domain AND
	    r.report = d.id AND r.report_begin = d.begin_time
	GROUP BY 1, 2, 3, 4, 5, 6, 7
	HAVING sum(CASE WHEN d.lo = 0 AND d.hi = d.total THEN r.count ELSE
	    (div(r.count::numeric * d.hi, d.total) -
	    div(r.count::numeric * d.lo, d.total))::bigint END) <> 0
	ON CONFLICT ON CONSTRAINT rollup_daily_key
	DO UPDATE SET messages = t.messages + excluded.messages
$$;
